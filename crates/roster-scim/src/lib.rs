//! roster's SCIM 2.0 service provider (RFC 7643, RFC 7644).
//!
//! Architecture invariant: the protocol modules ([`filter`], [`schema`], [`resource`],
//! [`patch`], [`mapping`], [`list`], [`error`], [`json`]) are pure: no I/O, no clock (the caller
//! passes `now`), no async. Only SCIM JSON lives here; the operator turns the result of
//! [`mapping`] into DirectoryUser objects.
//!
//! Stored resources are JSON objects in *canonical form* ([`resource::normalize`]):
//! attribute names in the schema's spelling, booleans as booleans, multi-valued
//! attributes as arrays, no `null`s, the enterprise extension under its URN. Every
//! tolerance for what identity providers send (PRODUCT.md, "Interop notes") is applied
//! once, on the way in, so filters and PATCH only ever see canonical data.
//!
//! [`http`] is the shell: an axum router over the [`store::Store`] trait, which the
//! operator implements on its caches and the API server.

pub mod error;
pub mod filter;
pub mod group;
pub mod http;
pub mod json;
pub mod list;
pub mod mapping;
pub mod objects;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod store;

pub use error::{ScimError, ScimType};
pub use filter::Filter;

#[cfg(test)]
mod hostile_input;
