//! roster's integration tests: one binary, run against a real kube-apiserver and
//! etcd (built from the Go modules in `controlplane/`) that all tests share.
//!
//! Each test works in its own namespace (see [`support::TestEnv`]); nothing here
//! sleeps for a fixed time: waits watch a condition or poll state the API server
//! publishes asynchronously, always with a deadline.

mod api;
mod chart;
mod control_plane_faults;
mod crds;
mod departures;
mod deprovisioning;
mod erasure;
mod examples;
mod feeds;
mod guard;
mod health;
mod image;
mod invalid;
mod joiners;
mod kubectl;
mod lifecycle;
mod rbac;
mod scim;
mod scim_attacks;
mod scim_conformance;
mod sharding;
mod standin_calendar;
mod standin_lms;
mod support;
mod tenant;
mod tenant_exit;
