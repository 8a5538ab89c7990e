//! roster, the operator: the imperative shell around the pure lifecycle.
//!
//! The workspace's crates, from the inside out (`docs/architecture.md` has the rules):
//! - `roster-api`: the API types (`roster.dev/v1alpha1`);
//! - `roster-lifecycle`: the pure state machine (no I/O, no clock);
//! - `roster-connectors`: typed clients of the learning platform and the calendars;
//! - this crate: [`controller`]s that feed the core and carry out its decisions,
//!   [`effects`] that reach the services through the connectors, [`probes`],
//!   [`metrics`], [`telemetry`], leader election ([`operator`]), the kube client's
//!   observation of the API server ([`apiserver`]) and [`clock`], the one place the
//!   wall clock is read.
//!
//! Architecture invariant: nothing here is test or demo equipment; the stand-ins, the
//! control-plane harness and the demo are crates that depend on this one, never the
//! other way round.

pub mod apiserver;
pub mod clock;
pub mod controller;
pub mod credentials;
pub mod effects;
pub mod events;
pub mod feeds;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod probes;
pub mod receipts;
pub mod scim;
pub mod shard;
pub mod telemetry;
