//! Child processes that cannot outlive the process that started them.
//!
//! Two mechanisms, because a test binary ends in several ways: an `atexit` hook stops
//! every registered child on a normal exit (the test harness never drops statics), and
//! `PR_SET_PDEATHSIG` kills them if the parent dies abruptly (a panic that aborts,
//! `kill -9`). The death signal fires when the *thread* that forked exits, so all
//! children are forked from one thread that lives as long as the process.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Starts `command` from the long-lived spawner thread, with a death signal set.
pub fn spawn(mut command: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and getppid are async-signal-safe and touch no Rust state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited before the child started"));
            }
            Ok(())
        });
    }
    let (reply, response) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((command, reply))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    let child = response
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))??;
    register_for_exit(child.id());
    Ok(child)
}

/// Like [`spawn`], with `root` as the child's root directory and `uid:gid` as its
/// user, as a container runtime would start an image's entrypoint (the image tests run
/// an unpacked OCI image this way). Needs root. The switch happens before the death
/// signal is set, which a change of credentials would otherwise clear; `command`'s
/// program is looked up inside `root`.
pub fn spawn_chrooted(
    mut command: Command,
    root: &std::path::Path,
    uid: u32,
    gid: u32,
) -> io::Result<Child> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let root = std::ffi::CString::new(root.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a NUL in the root path"))?;
    // SAFETY: chroot, chdir, setgroups, setgid and setuid are async-signal-safe; the
    // CString was allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let check = |result: libc::c_int| {
                if result == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            };
            check(libc::chroot(root.as_ptr()))?;
            check(libc::chdir(c"/".as_ptr()))?;
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))
        });
    }
    spawn(command)
}

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("roster-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The sender lives in a static, so this loop never ends: the thread
                // (and with it every child's death signal) lasts until the process does.
            })
            .expect("spawn the process-spawner thread");
        Mutex::new(tx)
    })
}

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` when the process exits (after its children are stopped).
pub fn remove_at_exit(dir: std::path::PathBuf) {
    register_exit_hook();
    if let Ok(mut dirs) = DIRS.lock() {
        dirs.push(dir);
    }
}

fn register_exit_hook() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(stop_children_at_exit) };
    });
}

fn register_for_exit(pid: u32) {
    register_exit_hook();
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(pid);
    }
}

/// Forgets a child that was stopped and reaped normally.
pub fn unregister(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain(|p| *p != pid);
    }
}

extern "C" fn stop_children_at_exit() {
    let pids = match CHILDREN.try_lock() {
        Ok(children) => children.clone(),
        Err(_) => return,
    };
    for pid in pids {
        // SAFETY: sending a signal to a pid we started; SIGKILL since exit must not hang.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }
    if let Ok(dirs) = DIRS.try_lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A free TCP port on 127.0.0.1. Another process may take it before we bind it; the
/// caller retries the start in that case.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
