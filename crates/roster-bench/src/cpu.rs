//! CPU time of the run's processes (the operator, kube-apiserver, etcd and the bench
//! itself), from `/proc/<pid>/stat`: on a machine of few cores they share, a stage's
//! split says which of them it waited for.
use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

/// The processes to account, by name.
pub struct Processes(Vec<(&'static str, u32)>);

/// CPU seconds each process had used at one moment.
pub struct Sample {
    at: Instant,
    seconds: BTreeMap<&'static str, f64>,
}

impl Processes {
    pub fn new(operator: u32, plane: &roster_testkit::ControlPlane) -> Self {
        let mut all = vec![("operator", operator), ("bench", std::process::id())];
        all.extend(plane.pids());
        Self(all)
    }

    pub fn sample(&self) -> Sample {
        Sample {
            at: Instant::now(),
            seconds: self
                .0
                .iter()
                .filter_map(|(name, pid)| Some((*name, cpu_seconds(*pid)?)))
                .collect(),
        }
    }
}

impl Sample {
    /// Each process's CPU seconds since `before`, and their sum against the machine's
    /// cores over the same time.
    pub fn since(&self, before: &Sample) -> Value {
        let elapsed = self.at.duration_since(before.at).as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let used: BTreeMap<&str, f64> = self
            .seconds
            .iter()
            .filter_map(|(name, s)| Some((*name, s - before.seconds.get(name)?)))
            .collect();
        let total: f64 = used.values().sum();
        json!({
            "seconds": used,
            "cores": cores,
            "machine_busy": total / (elapsed * cores).max(f64::EPSILON),
        })
    }
}

/// One line: each process's share of the machine, e.g. "kube-apiserver 61%, ...".
pub fn summary(cpu: &Value) -> String {
    let Some(seconds) = cpu["seconds"].as_object() else {
        return "no CPU figures".into();
    };
    let total: f64 = seconds.values().filter_map(Value::as_f64).sum();
    let mut parts: Vec<(String, f64)> = seconds
        .iter()
        .filter_map(|(name, s)| Some((name.clone(), s.as_f64()?)))
        .collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let split: Vec<String> = parts
        .iter()
        .map(|(name, s)| {
            format!(
                "{name} {s:.1} s ({:.0}%)",
                100.0 * s / total.max(f64::EPSILON)
            )
        })
        .collect();
    format!(
        "CPU {}; the machine {:.0}% busy",
        split.join(", "),
        100.0 * cpu["machine_busy"].as_f64().unwrap_or_default()
    )
}

/// utime + stime of `pid` (fields 14 and 15 of `/proc/<pid>/stat`, after the command
/// name, which may hold spaces: counted from its closing parenthesis).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_s_cpu_time_is_read() {
        assert!(super::cpu_seconds(std::process::id()).is_some());
        assert!(super::cpu_seconds(u32::MAX).is_none());
    }
}
