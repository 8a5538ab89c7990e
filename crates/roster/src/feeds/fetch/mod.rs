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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use roster_testkit::sshd::Sshd;

    use super::FetchError;
    use super::sftp::{MAX_FILE_BYTES, SftpAuth, SftpTarget, fetch};

    fn target(sshd: &Sshd, path: String) -> SftpTarget {
        SftpTarget {
            host: "127.0.0.1".into(),
            port: sshd.port(),
            path,
            host_key: sshd.host_key().into(),
            username: sshd.user().into(),
            auth: SftpAuth::Key {
                private_key: sshd.client_key().into(),
                passphrase: None,
            },
            timeout: Duration::from_secs(20),
        }
    }

    /// A 1 GB file (sparse: no disk is used) is refused on its size, unread; a file
    /// whose size says nothing (a link to /dev/zero: size 0, endless) is cut at the
    /// limit by the bounded read. Regression: `sftp.read` read it whole.
    #[tokio::test]
    async fn a_1_gb_file_and_an_endless_one_are_refused_at_the_limit() {
        if roster_testkit::sshd::sshd_binary().is_none() {
            eprintln!("no sshd on this machine (.ci/run installs openssh-server): skipped");
            return;
        }
        let sshd = tokio::task::spawn_blocking(Sshd::start)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        let huge = sshd.files().join("huge.csv");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let started = Instant::now();
        let Err(err) = fetch(&target(&sshd, huge.display().to_string())).await else {
            panic!("a 1 GB file was fetched");
        };
        assert!(
            matches!(err, FetchError::TooLarge { limit } if limit == MAX_FILE_BYTES),
            "{err}"
        );
        assert_eq!(err.reason(), "FileTooLarge");
        println!("1 GB file refused in {:?}", started.elapsed());

        let endless = sshd.files().join("endless.csv");
        std::os::unix::fs::symlink("/dev/zero", &endless).unwrap();
        let started = Instant::now();
        let Err(err) = fetch(&target(&sshd, endless.display().to_string())).await else {
            panic!("an endless file was fetched");
        };
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("33554432 bytes"), "{err}");
        println!("endless file cut at the limit in {:?}", started.elapsed());
    }
}
