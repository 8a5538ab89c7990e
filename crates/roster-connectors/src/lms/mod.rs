//! The learning platform's HTTP contract, as documented in
//! `docs/learning-platform.openapi.yaml`, and a client for it.
//!
//! - One base URL per tenant (e.g. `https://lms.example.com/api/v1`); every request
//!   carries `Authorization: Bearer <token>`.
//! - People are addressed by employee ID, never by email.
//! - Every mutating request carries an `Idempotency-Key`; repeating it returns the
//!   stored first response with `Idempotent-Replayed: true` and does not apply again.
//! - Removing something already gone is a success (204), not a 404.
//! - Errors are RFC 7807 problem documents that never echo names or emails; 429s carry
//!   `Retry-After` and `RateLimit-Limit` / `RateLimit-Remaining`.

mod client;
mod error;
mod model;

pub use client::LmsClient;
pub use error::LmsError;
pub use model::{
    Access, Assignment, AssignmentStatus, CalendarLink, CreateOutcome, EngagementKind,
    EngagementRecord, EventRole, Group, Involvement, InvolvementKind, List, NewUser, Problem,
    ProfilePatch, Role, Rule, RuleTransfer, UpsertOutcome, User, UserProfile,
};

/// Header carrying the caller's idempotency key on every mutating request (the shared
/// [`crate::http::IDEMPOTENCY_KEY`]).
pub use crate::http::IDEMPOTENCY_KEY;

/// Response header set (to `true`) when a response is the stored result of an earlier
/// request with the same idempotency key.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// Content type of `PATCH /users/{employeeId}` (RFC 7396).
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Prefix of every problem `type` URI of the contract.
pub const PROBLEM_TYPE_BASE: &str = "https://roster.dev/problems/lms/";
