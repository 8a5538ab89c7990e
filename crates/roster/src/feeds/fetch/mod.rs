//! Fetchers, the shells that bring a feed's bytes in: [`sftp`] for the CSV file,
//! [`hr_api`] for the JSON report. They know transports, not records: what the bytes
//! mean is `roster_feeds`'. Errors carry no values, no URLs and no server text.

pub mod hr_api;
pub mod sftp;

/// Why nothing could be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Settings(&'static str),
    #[error("{0}")]
    Refused(&'static str),
    #[error("cannot connect: {0}")]
    Connect(&'static str),
    #[error(
        "the SFTP server presented a host key other than the one pinned in spec.sources.csv.hostKey; nothing was sent or fetched (if the server's key really changed, pin the new one: ssh-keyscan HOST)"
    )]
    HostKeyMismatch,
    #[error("the server refused the credentials")]
    Unauthorized,
    #[error("no file at the configured path (or no file matches its pattern)")]
    NotFound,
    #[error(
        "the file is larger than the limit of {limit} bytes; nothing was read past it or applied (split the export or filter it at the source)"
    )]
    TooLarge { limit: u64 },
    #[error("the file could not be read")]
    Read,
    #[error("timed out")]
    Timeout,
    #[error("the report answered HTTP {0}")]
    Status(u16),
    #[error("the report request failed: {0}")]
    Transport(&'static str),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
}

impl FetchError {
    /// A stable CamelCase reason for Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Settings(_) => "InvalidSettings",
            Self::Refused(_) => "EndpointRefused",
            Self::Connect(_) | Self::Timeout | Self::Transport(_) => "Unreachable",
            Self::HostKeyMismatch => "HostKeyMismatch",
            Self::Unauthorized => "Unauthorized",
            Self::NotFound => "FileNotFound",
            Self::TooLarge { .. } => "FileTooLarge",
            Self::Read | Self::Status(_) => "FetchFailed",
            Self::Credentials(e) => e.reason(),
        }
    }
}
