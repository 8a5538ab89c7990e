//! Errors of the controller shells, each with a stable category for logs and metrics.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("object has no namespace")]
    MissingNamespace,
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot serialize status: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("erasure receipt: {0}")]
    Receipts(String),
    #[error(transparent)]
    Unpack(#[from] super::stored::UnpackError),
}

impl Error {
    /// A stable, low-cardinality name for metrics labels and log fields.
    pub fn category(&self) -> &'static str {
        match self {
            Self::MissingNamespace => "invalid_object",
            Self::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Self::Kube(kube::Error::Api(status)) if status.code == 404 => "not_found",
            Self::Kube(_) => "api",
            Self::Serialize(_) => "serialize",
            Self::Receipts(_) => "receipts",
            Self::Unpack(_) => "unpack",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
