//! A real SFTP server for the feed tests: OpenSSH's `sshd` on loopback with its own
//! host key, config and authorized client key, serving `internal-sftp`.
//!
//! `sshd` comes from Debian's `openssh-server` (`.ci/run` installs it when missing);
//! `ssh-keygen` makes the keys. The server runs as the current user, logging in only
//! that user, with public-key authentication only (or, from
//! [`Sshd::start_with_password_user`], also a system user with a password); files to
//! serve go under [`Sshd::files`]. It is stopped (and its directory removed) on drop, and never
//! outlives the test process ([`crate::process`]).

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::process;

/// How long sshd may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Error)]
pub enum SshdError {
    #[error(
        "sshd is not installed (looked for /usr/sbin/sshd and sshd on PATH): apt-get install openssh-server"
    )]
    NotInstalled,
    #[error("sshd I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("sshd did not accept connections within {READY_TIMEOUT:?}; its log:\n{log}")]
    NotReady { log: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SshdError + '_ {
    move |source| SshdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A running sshd.
pub struct Sshd {
    dir: PathBuf,
    child: Option<Child>,
    port: u16,
    user: String,
    host_key: String,
    client_key: String,
    /// The user that logs in with a password, and the password, if any.
    password_login: Option<(String, String)>,
}

/// The system user [`Sshd::start_with_password_user`] logs in with a password.
pub const PASSWORD_USER: &str = "roster-sftp-test";

/// The sshd binary, if installed.
pub fn sshd_binary() -> Option<PathBuf> {
    let standard = PathBuf::from("/usr/sbin/sshd");
    if standard.is_file() {
        return Some(standard);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("sshd"))
            .find(|p| p.is_file())
    })
}

impl Sshd {
    /// Starts a fresh server with new host and client keys. Blocking.
    pub fn start() -> Result<Self, SshdError> {
        Self::start_inner(None)
    }

    /// Like [`Sshd::start`], and also lets the system user [`PASSWORD_USER`] log in
    /// with a password (new each start). sshd checks passwords against the system's
    /// user database, so the user is created (once; `useradd`, no home, `/bin/sh`) and
    /// its password set with `chpasswd`: this needs root, as CI runs.
    pub fn start_with_password_user() -> Result<Self, SshdError> {
        let password = format!("pw-{:016x}", rand::random::<u64>());
        ensure_password_user(PASSWORD_USER, &password)?;
        Self::start_inner(Some((PASSWORD_USER.to_string(), password)))
    }

    fn start_inner(password_login: Option<(String, String)>) -> Result<Self, SshdError> {
        let binary = sshd_binary().ok_or(SshdError::NotInstalled)?;
        let dir = std::env::temp_dir().join(format!(
            "roster-sshd-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(dir.join("files")).map_err(io(&dir))?;
        process::remove_at_exit(dir.clone());
        // sshd's privilege-separation directory.
        let run = Path::new("/run/sshd");
        if !run.is_dir() {
            fs::create_dir_all(run).map_err(io(run))?;
        }
        keygen(&dir.join("host_key"))?;
        keygen(&dir.join("client_key"))?;
        let client_pub = dir.join("client_key.pub");
        fs::copy(&client_pub, dir.join("authorized_keys")).map_err(io(&client_pub))?;
        let host_pub = dir.join("host_key.pub");
        let host_key = read_public(&host_pub)?;
        let client_key_path = dir.join("client_key");
        let client_key = fs::read_to_string(&client_key_path).map_err(io(&client_key_path))?;
        let user = current_user();
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = process::free_port().map_err(io(&dir))?;
            let config = dir.join("sshd_config");
            let password_user = password_login.as_ref().map(|(u, _)| u.as_str());
            fs::write(&config, config_text(&dir, port, &user, password_user))
                .map_err(io(&config))?;
            let log = dir.join("sshd.log");
            let log_file = fs::File::create(&log).map_err(io(&log))?;
            let mut command = Command::new(&binary);
            command
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file);
            let mut child = process::spawn(command).map_err(io(&binary))?;
            let deadline = Instant::now() + READY_TIMEOUT;
            let mut ready = false;
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    ready = true;
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if ready {
                return Ok(Self {
                    dir,
                    child: Some(child),
                    port,
                    user,
                    host_key,
                    client_key,
                    password_login,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            process::unregister(child.id());
            last_log = fs::read_to_string(&log).unwrap_or_default();
        }
        Err(SshdError::NotReady { log: last_log })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that may log in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The host's public key, as `ssh-keyscan` prints it (`ssh-ed25519 AAAA…`).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The user and password that log in with a password
    /// ([`Sshd::start_with_password_user`]).
    pub fn password_login(&self) -> Option<(&str, &str)> {
        self.password_login
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The authorized client's private key (OpenSSH format).
    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    /// The directory whose files the server serves, by absolute path.
    pub fn files(&self) -> PathBuf {
        self.dir.join("files")
    }

    /// Writes a file to serve and returns its path on the server.
    pub fn put(&self, name: &str, contents: &[u8]) -> Result<String, SshdError> {
        let path = self.files().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&path, contents).map_err(io(&path))?;
        Ok(path.display().to_string())
    }

    /// A fresh key pair that the server does not know (for refusal tests):
    /// (private key, public key line).
    pub fn other_key(&self) -> Result<(String, String), SshdError> {
        let path = self
            .dir
            .join(format!("other-{:08x}", rand::random::<u32>()));
        keygen(&path)?;
        let private = fs::read_to_string(&path).map_err(io(&path))?;
        let public = read_public(&path.with_extension("pub"))?;
        Ok((private, public))
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            process::unregister(child.id());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn config_text(dir: &Path, port: u16, user: &str, password_user: Option<&str>) -> String {
    let d = dir.display();
    let (password, users) = match password_user {
        Some(other) => ("yes", format!("{user} {other}")),
        None => ("no", user.to_string()),
    };
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_key\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication {password}\n\
         PermitEmptyPasswords no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         StrictModes no\n\
         AllowUsers {users}\n\
         Subsystem sftp internal-sftp\n\
         LogLevel VERBOSE\n"
    )
}

/// Creates the system user `name` when missing and sets its password.
fn ensure_password_user(name: &str, password: &str) -> Result<(), SshdError> {
    let run = |program: &str, args: &[&str], stdin: Option<String>| -> Result<(), SshdError> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(io(Path::new(program)))?;
        if let Some(text) = stdin {
            use std::io::Write as _;
            if let Some(mut pipe) = child.stdin.take() {
                pipe.write_all(text.as_bytes())
                    .map_err(io(Path::new(program)))?;
            }
        }
        let output = child.wait_with_output().map_err(io(Path::new(program)))?;
        if !output.status.success() {
            return Err(SshdError::Command {
                command: format!("{program} (password login needs root)"),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(())
    };
    let exists = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        run(
            "useradd",
            &["--system", "--no-create-home", "--shell", "/bin/sh", name],
            None,
        )?;
    }
    run("chpasswd", &[], Some(format!("{name}:{password}\n")))
}

/// An ed25519 key pair at `path` (private) and `path.pub`, without a passphrase.
fn keygen(path: &Path) -> Result<(), SshdError> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "roster-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(io(path))?;
    if !output.status.success() {
        return Err(SshdError::Command {
            command: "ssh-keygen".into(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}

/// `type base64` of a `.pub` file (without the comment).
fn read_public(path: &Path) -> Result<String, SshdError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// The login name of the current user.
fn current_user() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}
