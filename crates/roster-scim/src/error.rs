//! RFC 7644 §3.12 error responses.
//!
//! A detail names attributes, operators and positions, never a value a client sent:
//! values are personal data (names, emails) and error bodies end up in IdP logs.
use serde_json::{Value, json};

/// An attribute name a client sent, as an error detail may quote it: the leading
/// characters that can be in a name or URN (so a value filter or anything after a
/// space stays out), at most 64 of them.
pub fn quoted_name(text: &str) -> String {
    text.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '$' | '-'))
        .take(64)
        .collect()
}

/// The schema URN of an error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// RFC 7644 Table 9: the `scimType` of a 400 (and 409) error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// A SCIM error: an HTTP status, an optional `scimType` and a PII-free detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" {}", t.as_str())).unwrap_or_default())]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// 429: the tenant's request rate is over its limit; try again after `seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                429,
                None,
                "too many requests for this tenant; retry after the Retry-After seconds",
            )
        }
    }
    /// 503: not serving yet (the caches are filling); try again after `seconds`.
    pub fn unavailable(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                503,
                None,
                "not ready yet; retry after the Retry-After seconds",
            )
        }
    }
    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 412: the `If-Match` version is stale.
    pub fn precondition_failed() -> Self {
        Self::new(
            412,
            None,
            "the resource changed since the version in If-Match; read it again",
        )
    }

    /// The RFC 7644 §3.12 body. `status` is a string, as the RFC's examples (and the
    /// clients that follow them) have it.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::from(t.as_str());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_status_as_a_string_and_the_scim_type() {
        let body = ScimError::invalid_filter("unexpected end of filter").body();
        assert_eq!(
            body,
            json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "unexpected end of filter",
            })
        );
        let body = ScimError::not_found("no such user").body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }
}
