//! The HR CSV file over SFTP (russh + russh-sftp, pure Rust). The server's host key
//! must be the one pinned in the Tenant (`spec.sources.csv.hostKey`): an unknown or
//! changed key ends the connection before any credential is sent. The user logs in
//! with a private key or a password from the source's Secret. A glob in the file
//! name picks the newest matching file (`roster_feeds::files`).

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;

use super::FetchError;

/// Files larger than this are refused (a runaway export must not exhaust memory):
/// the feeds' limit, checked on the file's size and again while reading, so a file
/// that grows (or a server that misreports its size) is never read past it.
pub const MAX_FILE_BYTES: u64 = roster_feeds::limits::MAX_FILE_BYTES as u64;

/// How to reach the file.
#[derive(Clone)]
pub struct SftpTarget {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// The pinned host key (`ssh-ed25519 AAAA…`, optionally with the host in front).
    pub host_key: String,
    pub username: String,
    pub auth: SftpAuth,
    /// Bound on connecting, logging in and on each SFTP request.
    pub timeout: Duration,
}

/// How the user logs in.
#[derive(Clone)]
pub enum SftpAuth {
    /// An OpenSSH (or PuTTY) private key, with its passphrase if it has one.
    Key {
        private_key: String,
        passphrase: Option<String>,
    },
    Password(String),
}

/// The file fetched: its bytes and the name it was found under (no PII: HR file names
/// are configuration).
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub path: String,
}

/// Parses a pinned host key: `type base64`, with an optional host (known_hosts line)
/// before it and an optional comment after it.
pub fn parse_host_key(text: &str) -> Result<PublicKey, FetchError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))
        .ok_or(FetchError::Settings("csv.hostKey is not an SSH public key (expected e.g. \"ssh-ed25519 AAAA…\", as ssh-keyscan prints it)"))?;
    let base64 = words.get(start + 1).ok_or(FetchError::Settings(
        "csv.hostKey has no key data after its type",
    ))?;
    russh::keys::parse_public_key_base64(base64)
        .map_err(|_| FetchError::Settings("csv.hostKey's key data cannot be read"))
}

struct Pinned {
    key: PublicKey,
    /// Set when the server presented another key.
    refused: Arc<std::sync::atomic::AtomicBool>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let matches = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data() == self.key.key_data(),
            PublicKeyOrCertificate::Certificate(_) => false,
        };
        if !matches {
            self.refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(matches)
    }
}

/// Fetches the file.
/// The SFTP host as the operator's endpoint policy sees it: the host of an
/// `https://HOST/` URL (SSH is always encrypted and its host key pinned, so the http
/// rules do not apply; the allowed hosts and the never-called addresses do).
pub fn host_url(host: &str) -> Option<url::Url> {
    let host = host.trim();
    let bracketed = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url = url::Url::parse(&format!("https://{bracketed}/")).ok()?;
    (url.host_str().is_some() && url.path() == "/").then_some(url)
}

/// Checks the SFTP host against the operator's endpoint policy before anything is
/// read or sent.
pub fn check_host(
    endpoints: &roster_connectors::endpoint::EndpointPolicy,
    host: &str,
) -> Result<(), FetchError> {
    let url = host_url(host).ok_or(FetchError::Settings(
        "csv.host is not a host name or address",
    ))?;
    endpoints.check("sources.csv.host", &url).map_err(|_| {
        FetchError::Refused(
            "sources.csv.host is refused by the operator's endpoint policy (--allowed-endpoint-hosts); nothing was fetched",
        )
    })
}

pub async fn fetch(target: &SftpTarget) -> Result<Fetched, FetchError> {
    tokio::time::timeout(target.timeout * 4, fetch_inner(target))
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// Reads the file, at most one byte past [`MAX_FILE_BYTES`] (which refuses it).
async fn read_bounded(sftp: &SftpSession, path: &str) -> Result<Vec<u8>, FetchError> {
    use tokio::io::AsyncReadExt;
    let file = sftp.open(path).await.map_err(|_| FetchError::Read)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|_| FetchError::Read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FetchError::TooLarge {
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(bytes)
}

async fn fetch_inner(target: &SftpTarget) -> Result<Fetched, FetchError> {
    let pinned = parse_host_key(&target.host_key)?;
    let addrs: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|_| FetchError::Connect("the host name does not resolve"))?
            .collect();
    let addr = addrs
        .iter()
        .copied()
        .find(|a| roster_connectors::endpoint::permitted(a.ip()))
        .ok_or(FetchError::Refused(
            "csv.host resolves only to link-local, metadata or unspecified addresses, which roster never calls",
        ))?;
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(target.timeout),
        ..Default::default()
    });
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler = Pinned {
        key: pinned,
        refused: refused.clone(),
    };
    let mut session =
        match tokio::time::timeout(target.timeout, client::connect(config, addr, handler)).await {
            Err(_) => return Err(FetchError::Timeout),
            Ok(Ok(session)) => session,
            Ok(Err(_)) if refused.load(std::sync::atomic::Ordering::Relaxed) => {
                return Err(FetchError::HostKeyMismatch);
            }
            Ok(Err(_)) => return Err(FetchError::Connect("the SSH handshake failed")),
        };
    let auth = match &target.auth {
        SftpAuth::Password(password) => session
            .authenticate_password(&target.username, password)
            .await
            .map_err(|_| FetchError::Connect("the SSH login failed"))?,
        SftpAuth::Key {
            private_key,
            passphrase,
        } => {
            let key = russh::keys::decode_secret_key(private_key, passphrase.as_deref()).map_err(
                |_| {
                    FetchError::Settings(
                        "the Secret's privateKey cannot be read as an OpenSSH private key",
                    )
                },
            )?;
            let hash = if key.algorithm().is_rsa() {
                session
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
            } else {
                None
            };
            session
                .authenticate_publickey(
                    &target.username,
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|_| FetchError::Connect("the SSH login failed"))?
        }
    };
    if !auth.success() {
        return Err(FetchError::Unauthorized);
    }
    let channel = session
        .channel_open_session()
        .await
        .map_err(|_| FetchError::Connect("the SSH session channel was refused"))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|_| FetchError::Connect("the server refused the sftp subsystem"))?;
    let sftp = SftpSession::new(channel.into_stream())
        .await
        .map_err(|_| FetchError::Connect("the SFTP session did not start"))?;
    sftp.set_timeout(target.timeout.as_secs().max(1));
    let path = match roster_feeds::files::glob_parts(&target.path) {
        None => target.path.clone(),
        Some((dir, pattern)) => {
            let entries: Vec<roster_feeds::files::Entry> = sftp
                .read_dir(dir)
                .await
                .map_err(|_| FetchError::NotFound)?
                .map(|e| {
                    let meta = e.metadata();
                    roster_feeds::files::Entry {
                        name: e.file_name(),
                        modified: u64::from(meta.mtime.unwrap_or(0)),
                        is_file: e.file_type().is_file(),
                    }
                })
                .collect();
            let newest =
                roster_feeds::files::newest(pattern, &entries).ok_or(FetchError::NotFound)?;
            format!("{}/{}", dir.trim_end_matches('/'), newest.name)
        }
    };
    let meta = sftp
        .metadata(path.as_str())
        .await
        .map_err(|_| FetchError::NotFound)?;
    if meta.size.is_some_and(|s| s > MAX_FILE_BYTES) {
        return Err(FetchError::TooLarge {
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = read_bounded(&sftp, &path).await?;
    let _ = sftp.close().await;
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(Fetched { bytes, path })
}
