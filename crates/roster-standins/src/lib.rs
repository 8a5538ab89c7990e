//! Stand-ins: in-process servers that implement the contracts of services which
//! cannot be reached from here (the learning platform, calendar providers), with
//! realistic behaviour, fault injection and a call log. They are test and demo
//! equipment, used by the integration tests and the demo; roster never talks to
//! them in production.
pub mod calendar;
pub mod hr;
pub mod lms;
