//! roster: a Kubernetes operator for the leaver lifecycle of a learning platform's users.
//!
//! Architecture, from the inside out:
//! - [`crd`]: the API types (`roster.dev/v1alpha1`).
//! - [`controlplane`]: builds and runs a real kube-apiserver + etcd on loopback for
//!   tests and the demo.

pub mod controlplane;
pub mod lifecycle;
pub mod crd;
