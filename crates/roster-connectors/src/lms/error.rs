//! What can go wrong calling the learning platform, sorted by what the caller should
//! do about it. Nothing here ever carries a name or an email address: the `Display`
//! text holds status codes, problem titles (sanitized) and error kinds only.

use std::time::Duration;

/// An error from [`LmsClient`](super::LmsClient).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LmsError {
    /// 429: slow down; retry after `retry_after` (from `Retry-After`) if given.
    #[error("rate limited by the learning platform{}", fmt_after(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the platform could not handle the request now; retry with backoff. Also a
    /// 409 telling that a request with the same idempotency key is still in flight.
    #[error("learning platform unavailable (HTTP {status})")]
    Unavailable { status: u16 },
    /// No response within the client's timeout; retry (the idempotency key makes it safe).
    #[error("learning platform request timed out")]
    Timeout,
    /// 4xx other than 404 and 429 (bad request, unauthorized, conflict, unprocessable,
    /// idempotency key reused for another request): retrying the same request cannot help.
    #[error("learning platform rejected the request (HTTP {status}: {title})")]
    Rejected { status: u16, title: String },
    /// 409 `user-exists`: creating a person whose employee ID the platform already has.
    #[error("the learning platform already has an account with this employee ID")]
    AlreadyExists,
    /// 404: the person, or the resource a read asked for, does not exist. (Removals of
    /// things already gone succeed instead.)
    #[error("not found at the learning platform")]
    NotFound,
    /// The request did not get an HTTP response (connection refused or reset, TLS, DNS).
    #[error("learning platform transport error: {0}")]
    Transport(String),
    /// A success response whose body does not match the contract.
    #[error("learning platform response could not be decoded: {0}")]
    Decode(String),
}

fn fmt_after(after: Option<Duration>) -> String {
    match after {
        Some(after) => format!(" (retry after {}s)", after.as_secs_f64()),
        None => String::new(),
    }
}

impl LmsError {
    /// How long the platform asked the caller to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LmsError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same request (same idempotency key) may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            LmsError::RateLimited { .. }
            | LmsError::Unavailable { .. }
            | LmsError::Timeout
            | LmsError::Transport(_) => true,
            LmsError::Rejected { .. }
            | LmsError::AlreadyExists
            | LmsError::NotFound
            | LmsError::Decode(_) => false,
        }
    }

    /// A stable, low-cardinality, PII-free label (metrics, status reasons).
    pub fn category(&self) -> &'static str {
        match self {
            LmsError::RateLimited { .. } => "rate_limited",
            LmsError::Unavailable { .. } => "unavailable",
            LmsError::Timeout => "timeout",
            LmsError::Rejected { .. } => "rejected",
            LmsError::AlreadyExists => "already_exists",
            LmsError::NotFound => "not_found",
            LmsError::Transport(_) => "transport",
            LmsError::Decode(_) => "decode",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_and_categories() {
        let limited = LmsError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(limited.category(), "rate_limited");
        assert!(limited.to_string().contains("retry after 2s"));
        let rejected = LmsError::Rejected {
            status: 422,
            title: "Invalid profile".into(),
        };
        assert!(!rejected.is_retryable());
        assert_eq!(rejected.retry_after(), None);
        assert!(!LmsError::NotFound.is_retryable());
        assert!(LmsError::Timeout.is_retryable());
    }
}
