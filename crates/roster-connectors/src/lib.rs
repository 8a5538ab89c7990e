//! Connectors: typed clients for the services roster's side effects reach (the
//! learning platform, calendars). Each speaks the service's documented HTTP contract
//! and reports errors the caller can act on (retry, back off, give up) without ever
//! carrying personal data.
pub mod calendar;
pub mod endpoint;
pub mod http;
pub mod lms;
