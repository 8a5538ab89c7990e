//! roster: a Kubernetes operator for the leaver lifecycle of a learning platform's users.
//!
//! Architecture, from the inside out:
//! - [`crd`]: the API types (`roster.dev/v1alpha1`).
//! - [`lifecycle`]: the pure leaver state machine (no I/O, no clock).
//! - [`controller`]: the kube-runtime shells that feed it and carry out its decisions.
//! - [`effects`]: the connector interface side effects go through.
//! - [`clock`]: the one place the wall clock is read.
//! - [`controlplane`]: builds and runs a real kube-apiserver + etcd on loopback for
//!   tests and the demo.
//! - [`demo`]: `roster demo`, the whole lifecycle on one machine with stand-ins.

pub mod clock;
pub mod connectors;
pub mod controller;
pub mod controlplane;
pub mod crd;
pub mod demo;
pub mod effects;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod operator;
pub mod standins;
pub mod telemetry;
