//! `roster demo`, run as a newcomer would, without a terminal: the built binary, its
//! own control plane and stand-ins, stdout piped.
//!
//! The first run on a machine builds kube-apiserver and etcd (minutes); the waits
//! below allow for that before the control plane is ready, and are tight after.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use roster_standins::lms::LmsSeed;

/// Until the control plane is ready: long enough to build it from source.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// From a ready control plane to the end of the demo (it takes about 45 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// A running `roster demo`; killed (with everything it started) if the test fails.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    output: Vec<String>,
}

impl Demo {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roster-demo"))
            .args(["--plain", "--timeout", "150s"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start roster demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            output: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `found`, for at most `timeout`.
    fn read_until(&mut self, what: &str, timeout: Duration, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    println!("{line}");
                    let hit = found(&line);
                    self.output.push(line);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "{what}: not seen within {timeout:?}; output so far:\n{}",
                        self.text()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{what}: the demo's output ended; output:\n{}", self.text())
                }
            }
        }
    }

    /// Reads the rest of the output and waits for the exit, for at most `timeout`.
    fn finish(&mut self, timeout: Duration) -> (i32, Duration) {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    println!("{line}");
                    self.output.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "the demo did not finish within {timeout:?}:\n{}",
                        self.text()
                    )
                }
            }
        }
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the demo") {
                return (status.code().unwrap_or(-1), started.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "the demo closed stdout but did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self) -> String {
        self.output.join("\n")
    }

    /// The control plane's directory, from the printed kubeconfig path.
    fn control_plane_dir(&self) -> String {
        self.output
            .iter()
            .find_map(|l| l.trim().strip_prefix("export KUBECONFIG="))
            .and_then(|path| Path::new(path).parent())
            .map(|dir| dir.display().to_string())
            .expect("the demo prints the kubeconfig path")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGKILL: the control plane's processes die with it (parent-death signal).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn control_plane_ready(line: &str) -> bool {
    line.contains("control plane ready")
}

/// `12:00:00Z  e-1007    Active -> Quarantined (...)`.
fn phase_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some(time), Some(user), Some(_from), Some(arrow)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    time.ends_with('Z') && user.starts_with("e-") && arrow == "->"
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Direct children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces, so split after ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let parent: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let child: Option<u32> = head.split_whitespace().next().and_then(|p| p.parse().ok());
        if let (Some(parent), Some(child)) = (parent, child)
            && parent == pid
        {
            children.push(child);
        }
    }
    children
}

#[test]
fn the_demo_runs_end_to_end_without_a_terminal() {
    let mut demo = Demo::start(&[]);
    demo.read_until("the control plane", BUILD_TIMEOUT, control_plane_ready);
    let (code, _) = demo.finish(RUN_TIMEOUT);
    let output = demo.text();
    assert_eq!(code, 0, "exit code; output:\n{output}");

    // The lifecycle, phase by phase, including a reversal.
    for phase in [
        "Active -> Quarantined (Deactivated",
        // A termination date past the purge deadline, and deprovision-now, leave no
        // quarantine: the revocation and Deprovisioning are one write.
        "-> Deprovisioning (TerminationDateReached; access revoked",
        "-> Deprovisioning (DeprovisionNowRequested; access revoked",
        "Active -> Quarantined (ObjectDeleted",
        "-> Deprovisioning (QuarantineEnded",
        "-> Deprovisioned (StepsCompleted",
        "-> Purged (PIIPurged",
        "Quarantined -> Active (QuarantineReversed",
        "RestoreAccess: access restored",
        "object deleted at once; the lifecycle continues on Departure",
        "Departure deleted after the purge: nothing of the person is left in the cluster",
        // The joiner and the mover.
        "joiner: account created at the learning platform",
        "profile synced at the learning platform",
        "groups at the learning platform: +berlin-office",
        "groups at the learning platform: -engineering",
        // The identity provider's SCIM sequence.
        "POST /Users (employeeNumber 1030",
        "→ 201, id e-1030",
        "PUT /Users/e-1030 (title changed) → 200",
        "→ 200, active false: the deactivation",
        // The HR feed: the report stand-in, pulled by the Tenant's hrAPI source.
        "HR report stand-in at http://127.0.0.1:",
        "the Tenant's hrAPI source pulls 2 people from it (e-2101, e-2102)",
    ] {
        assert!(
            output.contains(phase),
            "no {phase:?} in the output:\n{output}"
        );
    }
    assert!(output.lines().any(phase_line), "no phase lines:\n{output}");
    assert!(
        output.contains("export KUBECONFIG="),
        "kubeconfig not shown"
    );
    assert!(
        output.contains(
            "every scripted leaver is Purged or back to Active; the joiner, the mover and the HR feed's people are in sync"
        ),
        "{output}"
    );

    // The summary, read from the stand-ins.
    for part in [
        "What changed downstream",
        "events transferred with events.move",
        "to the fallback owner",
        "attendee seats freed",
        "assignment rules moved",
        "group memberships left",
        // The scripted joiner, the identity provider's SCIM joiner and the HR feed's two.
        "4 accounts created at the learning platform",
        "sent (only the changed fields)",
        "outstanding assignments removed",
        "users anonymized",
        "engagement records kept",
        "0 changes applied twice",
        "PIIPurged",
    ] {
        assert!(
            output.contains(part),
            "no {part:?} in the summary:\n{output}"
        );
    }

    // Names and emails never appear: only employee IDs, object names and roles.
    let seed = LmsSeed::from_path(roster_testkit::repo_path(
        "examples/standins/demo-lms-seed.yaml",
    ))
    .expect("read the demo seed");
    let mut personal = BTreeSet::new();
    for user in &seed.users {
        personal.extend(user.full_name.clone());
        personal.extend(user.email.clone());
    }
    for value in &personal {
        assert!(
            !output.contains(value.as_str()),
            "the output holds personal data from the seed"
        );
    }
    assert!(
        !output.contains("@example.com"),
        "the output holds an email"
    );
}

#[test]
fn ctrl_c_stops_everything_within_ten_seconds() {
    let mut demo = Demo::start(&[]);
    demo.read_until("the control plane", BUILD_TIMEOUT, control_plane_ready);
    demo.read_until("a first phase change", RUN_TIMEOUT, phase_line);
    let dir = demo.control_plane_dir();
    let pid = demo.child.id();
    let started: Vec<u32> = children_of(pid);
    let control_plane = processes_mentioning(&dir);
    assert!(
        control_plane.len() >= 2,
        "etcd and kube-apiserver should be running under {dir}: {control_plane:?}"
    );

    // SAFETY: signalling the child process this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    let (code, took) = demo.finish(Duration::from_secs(10));
    assert!(took <= Duration::from_secs(10), "stopping took {took:?}");
    assert_eq!(code, 130, "exit code after SIGINT:\n{}", demo.text());

    let left = processes_mentioning(&dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    for child in started {
        let alive = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        let same = std::fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir));
        assert!(
            !(alive && same),
            "child {child} of the demo is still running"
        );
    }
    assert!(
        !Path::new(&dir).exists(),
        "the control plane's directory {dir} was not removed"
    );
}
