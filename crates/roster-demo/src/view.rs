//! What the demo shows while it runs: every DirectoryUser's phase, trigger, next
//! deadline and last step, the demo's own actions, and Kubernetes Events.
//!
//! [`Tracker`] turns watched objects into log lines (`e-1007  Active -> Quarantined
//! (Deactivated; deprovisioning due 12:00:10Z)`); without a terminal these are printed
//! as they come, with one a [`Live`] table is redrawn in place. Lines name users by
//! object name (derived from the employee ID) and never carry names or emails.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write as _;

use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::ResourceExt;

use super::company::clock;
use roster_api::{
    ConditionStatus, Departure, DirectoryUser, Phase, Provisioning, StepName, StepState,
    SyncedProfile, Trigger,
};

/// How many Kubernetes Events the live view keeps on screen.
const RECENT_EVENTS: usize = 6;
/// How many log lines the live view keeps on screen.
const RECENT_LINES: usize = 8;

/// One line of progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub at: DateTime<Utc>,
    /// The object the line is about (or `demo` for the demo's own notes).
    pub who: String,
    pub text: String,
    /// A detail of the line before (a step result), shown indented.
    pub detail: bool,
}

impl Line {
    pub fn new(at: DateTime<Utc>, who: &str, text: impl Into<String>) -> Self {
        Self {
            at,
            who: who.to_string(),
            text: text.into(),
            detail: false,
        }
    }

    fn detail(at: DateTime<Utc>, who: &str, text: impl Into<String>) -> Self {
        Self {
            detail: true,
            ..Self::new(at, who, text)
        }
    }

    /// `12:00:03Z  e-1011    Active -> Quarantined (...)`.
    pub fn render(&self) -> String {
        format!(
            "{}  {:<9} {}{}",
            clock(self.at),
            self.who,
            if self.detail { "  " } else { "" },
            self.text
        )
    }
}

/// One DirectoryUser as the demo last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub phase: Phase,
    pub trigger: Option<Trigger>,
    pub next_deadline: Option<DateTime<Utc>>,
    pub last_step: Option<String>,
    /// The object is being deleted (Terminating).
    pub deleting: bool,
    /// The object is gone (after its purge, the finalizer was released).
    pub gone: bool,
    pub reversals: i32,
    /// Access was restored after the last reversal.
    pub restored: bool,
    /// Ever left Active.
    pub left: bool,
    /// How the platform account came under roster's management, once it has.
    pub provisioned: Option<Provisioning>,
    /// Digests of the profile last sent, and the groups applied at the platform.
    pub profile: SyncedProfile,
    pub platform_groups: Vec<String>,
    /// `.metadata.generation`: above 1 once the record was edited.
    pub generation: i64,
    /// Sync calls completed (status.account.syncCalls).
    pub sync_calls: i64,
    /// Provisioned, every computed group applied, nothing failing, Ready for this
    /// generation.
    pub in_sync: bool,
}

/// What a joiner's or mover's status says happened at the platform. Adopted accounts
/// that were never edited stay quiet (the whole seeded company is adopted at start).
fn account_lines(row: &mut Row, user: &DirectoryUser, now: DateTime<Utc>) -> Vec<Line> {
    let Some(status) = &user.status else {
        return Vec::new();
    };
    let name = user.name_any();
    let account = &status.account;
    let generation = user.metadata.generation.unwrap_or_default();
    // Only what a sync call did: anonymization and group removal of leavers clear
    // these too, and their own steps report that.
    let synced = account.sync_calls > row.sync_calls;
    let loud = synced && (account.provisioned == Some(Provisioning::Created) || generation > 1);
    let mut lines = Vec::new();
    if account.provisioned != row.provisioned && account.provisioned == Some(Provisioning::Created)
    {
        lines.push(Line::new(
            now,
            &name,
            "joiner: account created at the learning platform",
        ));
    }
    if loud && row.provisioned.is_some() && account.profile != row.profile {
        lines.push(Line::detail(
            now,
            &name,
            "profile synced at the learning platform (only the changed fields)",
        ));
    }
    if loud && account.groups != row.platform_groups {
        let added = account
            .groups
            .iter()
            .filter(|g| !row.platform_groups.contains(g));
        let removed = row
            .platform_groups
            .iter()
            .filter(|g| !account.groups.contains(g));
        let change: Vec<String> = added
            .map(|g| format!("+{g}"))
            .chain(removed.map(|g| format!("-{g}")))
            .collect();
        lines.push(Line::detail(
            now,
            &name,
            format!("groups at the learning platform: {}", change.join(" ")),
        ));
    }
    row.provisioned = account.provisioned;
    row.profile = account.profile.clone();
    row.platform_groups = account.groups.clone();
    row.generation = generation;
    row.sync_calls = account.sync_calls;
    row.in_sync = account.provisioned.is_some()
        && account.failures == 0
        && status.groups.iter().all(|g| account.groups.contains(g))
        && status.observed_generation == user.metadata.generation
        && status
            .conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == ConditionStatus::True);
    lines
}

/// Everything watched so far.
#[derive(Debug, Default)]
pub struct Tracker {
    pub rows: BTreeMap<String, Row>,
    /// Step results already reported: (user, episode, step, state, attempts).
    reported: HashSet<(String, i32, StepName, String, i32)>,
    lines: VecDeque<Line>,
    events: VecDeque<String>,
    seen_events: HashSet<(String, i32)>,
    /// Kubernetes Events seen, by reason.
    pub event_counts: BTreeMap<String, usize>,
    /// When the first user reached Purged.
    pub first_purged: Option<DateTime<Utc>>,
}

impl Tracker {
    /// Folds in a new version of a user; returns what changed, as lines.
    pub fn apply(&mut self, user: &DirectoryUser, now: DateTime<Utc>) -> Vec<Line> {
        let name = user.name_any();
        let mut lines = Vec::new();
        let row = self.rows.entry(name.clone()).or_default();
        let deleting = user.metadata.deletion_timestamp.is_some();
        if deleting && !row.deleting {
            row.deleting = true;
            lines.push(Line::new(
                now,
                &name,
                "object Terminating (held by roster's finalizer)",
            ));
        }
        let Some(status) = &user.status else {
            self.record(&lines);
            return lines;
        };
        if status.phase != row.phase {
            let text = transition(row.phase, status.phase, status.trigger, status, now);
            lines.push(Line::new(now, &name, text));
            if status.phase != Phase::Active {
                row.left = true;
            }
            if status.phase == Phase::Active {
                row.restored = false;
            }
            if status.phase == Phase::Purged && self.first_purged.is_none() {
                self.first_purged = Some(now);
            }
        }
        lines.extend(account_lines(row, user, now));
        row.phase = status.phase;
        row.trigger = status.trigger;
        row.next_deadline = status.next_deadline;
        row.reversals = status.reversals;
        for step in &status.steps {
            let state = format!("{:?}", step.state);
            let key = (
                name.clone(),
                status.episode,
                step.name,
                state,
                step.attempts,
            );
            let text = match step.state {
                StepState::Succeeded => format!(
                    "{:?}: {}",
                    step.name,
                    step.summary.as_deref().unwrap_or("done")
                ),
                StepState::Failed => format!(
                    "{:?} failed (attempt {}): {}{}",
                    step.name,
                    step.attempts,
                    step.last_error.as_deref().unwrap_or("unknown error"),
                    step.next_retry_time
                        .map(|at| format!("; retry at {}", clock(at)))
                        .unwrap_or_default()
                ),
                StepState::Pending | StepState::Skipped => continue,
            };
            if self.reported.insert(key) {
                if step.name == StepName::RestoreAccess && step.state == StepState::Succeeded {
                    row.restored = true;
                }
                row.last_step = Some(text.clone());
                lines.push(Line::detail(now, &name, text));
            }
        }
        self.record(&lines);
        lines
    }

    /// A user's object is gone.
    pub fn deleted(&mut self, user: &DirectoryUser, now: DateTime<Utc>) -> Vec<Line> {
        let name = user.name_any();
        let row = self.rows.entry(name.clone()).or_default();
        if row.gone {
            return Vec::new();
        }
        let handed_over = user
            .status
            .as_ref()
            .is_some_and(|s| matches!(s.phase, Phase::Quarantined | Phase::Held));
        if handed_over {
            let lines = vec![Line::new(
                now,
                &name,
                format!(
                    "object deleted at once; the lifecycle continues on Departure {name} (kubectl get departures)"
                ),
            )];
            self.record(&lines);
            return lines;
        }
        row.gone = true;
        let lines = vec![Line::new(
            now,
            &name,
            "object deleted from the cluster (purged first, then the finalizer was released)",
        )];
        self.record(&lines);
        lines
    }

    /// A Departure is gone: purged (the end), or taken back by a re-created record.
    pub fn departure_gone(&mut self, departure: &Departure, now: DateTime<Utc>) -> Vec<Line> {
        let name = departure.name_any();
        let purged = departure
            .status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Purged);
        let row = self.rows.entry(name.clone()).or_default();
        if !purged || row.gone {
            return Vec::new();
        }
        row.gone = true;
        let lines = vec![Line::new(
            now,
            &name,
            "Departure deleted after the purge: nothing of the person is left in the cluster",
        )];
        self.record(&lines);
        lines
    }

    /// A demo action or note.
    pub fn note(&mut self, line: Line) -> Vec<Line> {
        let lines = vec![line];
        self.record(&lines);
        lines
    }

    /// A Kubernetes Event about a DirectoryUser. Warnings become lines; every Event
    /// is counted and shown in the live view.
    pub fn event(&mut self, event: &KubeEvent, now: DateTime<Utc>) -> Vec<Line> {
        let count = event.series.as_ref().map_or(1, |s| s.count);
        let key = (event.uid().unwrap_or_else(|| event.name_any()), count);
        if !self.seen_events.insert(key) {
            return Vec::new();
        }
        let reason = event.reason.clone().unwrap_or_default();
        let type_ = event.type_.clone().unwrap_or_default();
        let who = event
            .regarding
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let note = event.note.clone().unwrap_or_default();
        *self.event_counts.entry(reason.clone()).or_default() += 1;
        let at = event
            .event_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| event.series.as_ref().map(|s| s.last_observed_time.0))
            .and_then(|t| DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond() as u32))
            .unwrap_or(now);
        self.events.push_back(format!(
            "{}  {who:<9} {type_:<7} {reason}: {note}",
            clock(at)
        ));
        while self.events.len() > RECENT_EVENTS {
            self.events.pop_front();
        }
        if type_ == "Warning" {
            let lines = vec![Line::detail(now, &who, format!("Warning {reason}: {note}"))];
            self.record(&lines);
            return lines;
        }
        Vec::new()
    }

    fn record(&mut self, lines: &[Line]) {
        self.lines.extend(lines.iter().cloned());
        while self.lines.len() > RECENT_LINES {
            self.lines.pop_front();
        }
    }

    /// The users worth a row in the table: everyone who left, has a deadline, or is
    /// about to be acted on; the rest are summed up in one line.
    fn visible(&self, watched: &HashSet<String>) -> (Vec<(&String, &Row)>, usize) {
        let mut shown = Vec::new();
        let mut quiet = 0;
        for (name, row) in &self.rows {
            if row.left || row.next_deadline.is_some() || row.deleting || watched.contains(name) {
                shown.push((name, row));
            } else {
                quiet += 1;
            }
        }
        (shown, quiet)
    }

    /// The live view's frame.
    pub fn frame(
        &self,
        header: &[String],
        watched: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let mut frame: Vec<String> = header.to_vec();
        frame.push(String::new());
        frame.push(format!(
            "{:<9} {:<15} {:<16} {:<22} {}",
            "USER", "PHASE", "TRIGGER", "NEXT DEADLINE", "LAST STEP"
        ));
        let (shown, quiet) = self.visible(watched);
        for (name, row) in shown {
            let phase = if row.gone {
                "(deleted)".to_string()
            } else {
                format!("{:?}", row.phase)
            };
            let trigger = row
                .trigger
                .map(|t| format!("{t:?}"))
                .unwrap_or_else(|| "-".into());
            frame.push(format!(
                "{name:<9} {phase:<15} {trigger:<16} {:<22} {}",
                deadline(row.next_deadline, now),
                row.last_step.as_deref().unwrap_or("-")
            ));
        }
        if quiet > 0 {
            frame.push(format!(
                "{:<9} {:<15} (nothing scheduled)",
                format!("+{quiet}"),
                "Active"
            ));
        }
        frame.push(String::new());
        frame.push("Latest".to_string());
        frame.extend(self.lines.iter().map(|l| format!("  {}", l.render())));
        frame.push(String::new());
        let total: usize = self.event_counts.values().sum();
        frame.push(format!("Kubernetes Events ({total} so far)"));
        frame.extend(self.events.iter().map(|e| format!("  {e}")));
        frame
    }
}

/// `Active -> Quarantined (Deactivated; deprovisioning due 12:00:10Z)`: the same
/// reasons roster's Events carry.
fn transition(
    from: Phase,
    to: Phase,
    trigger: Option<Trigger>,
    status: &roster_api::DirectoryUserStatus,
    now: DateTime<Utc>,
) -> String {
    let due = |at: Option<DateTime<Utc>>| {
        at.map(|at| {
            if (at - now).num_hours().abs() >= 12 {
                at.format("%Y-%m-%d %H:%M:%SZ").to_string()
            } else {
                clock(at)
            }
        })
        .unwrap_or_else(|| "-".into())
    };
    let triggered = match trigger {
        Some(Trigger::Deactivated) => "Deactivated",
        Some(Trigger::TerminationDate) => "TerminationDateReached",
        Some(Trigger::DeprovisionNow) => "DeprovisionNowRequested",
        Some(Trigger::ObjectDeleted) => "ObjectDeleted",
        None => "Triggered",
    };
    let why = match (from, to) {
        (Phase::Active | Phase::Held, Phase::Quarantined) => format!(
            "{triggered}; access revoked; deprovisioning due {}",
            due(status.deprovision_due_time)
        ),
        // The revocation and the end of a quarantine with no time left (deprovision-now,
        // or a purge deadline already passed) are written together.
        (Phase::Active | Phase::Held, Phase::Deprovisioning) => {
            format!("{triggered}; access revoked; no quarantine left: handing over and removing")
        }
        (_, Phase::Held) => "held by the mass-deprovisioning guard until approved".into(),
        (Phase::Quarantined, Phase::Active) => "QuarantineReversed; restoring access".into(),
        (Phase::Held, Phase::Active) => "TriggerCleared".into(),
        (_, Phase::Active) => "Reactivated; restoring access".into(),
        (_, Phase::Deprovisioning) => "QuarantineEnded; handing over and removing".into(),
        (_, Phase::Deprovisioned) => {
            format!("StepsCompleted; purge due {}", due(status.purge_due_time))
        }
        (_, Phase::Purged) => "PIIPurged; personal data gone downstream and from the object".into(),
        (_, Phase::Quarantined) => {
            format!("deprovisioning due {}", due(status.deprovision_due_time))
        }
    };
    format!("{from:?} -> {to:?} ({why})")
}

/// `12:00:10Z (in 7s)`, or the date for far deadlines.
fn deadline(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let left = (at - now).num_seconds();
    if left.abs() > 12 * 3600 {
        at.format("%Y-%m-%d %H:%MZ").to_string()
    } else if left > 0 {
        format!("{} (in {left}s)", clock(at))
    } else {
        format!("{} (due)", clock(at))
    }
}

/// Set once the live view must not draw again (the demo is stopping).
static SILENCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops every live view from drawing; a frame being drawn right now completes first.
pub fn silence() {
    let _stdout = std::io::stdout().lock();
    SILENCED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A table redrawn in place on a terminal.
#[derive(Debug, Default)]
pub struct Live {
    drawn: usize,
}

impl Live {
    /// Replaces the previous frame with `frame`, clipped to the terminal.
    pub fn draw(&mut self, frame: &[String]) {
        let (columns, rows) = terminal_size();
        let height = frame.len().min(rows.saturating_sub(1).max(1));
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}F", self.drawn));
        }
        out.push_str("\x1b[J");
        for line in &frame[..height] {
            out.extend(line.chars().take(columns.saturating_sub(1).max(20)));
            out.push('\n');
        }
        let mut stdout = std::io::stdout().lock();
        if SILENCED.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.drawn = height;
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    /// Leaves the last frame on screen; what comes next prints below it.
    pub fn finish(&mut self) {
        self.drawn = 0;
    }
}

/// Columns and rows of the terminal on stdout (100 x 40 if unknown).
fn terminal_size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ fills a plain struct we own; the call has no other effect.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 && size.ws_row > 0 {
        (usize::from(size.ws_col), usize::from(size.ws_row))
    } else {
        (100, 40)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_api::{DirectoryUserSpec, DirectoryUserStatus, StepStatus};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn user(status: DirectoryUserStatus) -> DirectoryUser {
        let mut user = DirectoryUser::new(
            "e-1007",
            DirectoryUserSpec {
                tenant_ref: "acme".into(),
                employee_id: "1007".into(),
                full_name: "Rowan Sampleton".into(),
                email: "rowan.sampleton@example.com".into(),
                ..Default::default()
            },
        );
        user.status = Some(status);
        user
    }

    #[test]
    fn phase_changes_and_steps_become_lines_once() {
        let mut tracker = Tracker::default();
        let now = at("2030-01-01T12:00:00Z");
        assert!(
            tracker
                .apply(&user(DirectoryUserStatus::default()), now)
                .is_empty()
        );
        let quarantined = DirectoryUserStatus {
            phase: Phase::Quarantined,
            trigger: Some(Trigger::Deactivated),
            deprovision_due_time: Some(at("2030-01-01T12:00:10Z")),
            steps: vec![StepStatus {
                name: StepName::RevokeAccess,
                state: StepState::Succeeded,
                attempts: 1,
                idempotency_key: "k".into(),
                last_error: None,
                summary: Some("access revoked".into()),
                completion_time: None,
                next_retry_time: None,
            }],
            ..Default::default()
        };
        let lines = tracker.apply(&user(quarantined.clone()), now);
        let text: Vec<String> = lines.iter().map(Line::render).collect();
        assert_eq!(
            text,
            [
                "12:00:00Z  e-1007    Active -> Quarantined (Deactivated; access revoked; deprovisioning due 12:00:10Z)",
                "12:00:00Z  e-1007      RevokeAccess: access revoked",
            ]
        );
        assert!(
            tracker.apply(&user(quarantined), now).is_empty(),
            "reported once"
        );
        assert!(tracker.rows["e-1007"].left);
        let frame = tracker.frame(&[], &HashSet::new(), now).join("\n");
        assert!(frame.contains("Quarantined"));
        assert!(!frame.contains("Rowan") && !frame.contains("example.com"));
    }

    #[test]
    fn deadlines_read_as_countdowns() {
        let now = at("2030-01-01T12:00:00Z");
        assert_eq!(
            deadline(Some(at("2030-01-01T12:00:07Z")), now),
            "12:00:07Z (in 7s)"
        );
        assert_eq!(
            deadline(Some(at("2099-12-30T23:00:00Z")), now),
            "2099-12-30 23:00Z"
        );
        assert_eq!(deadline(None, now), "-");
    }
}
