//! A tenant's exit (the documents' "full deletion" of a customer): which stage runs
//! next, as a function of what the Tenant's status has recorded. The controller carries
//! the stage out and records its completion before asking again, so a restart or a
//! leader change mid-way neither repeats nor skips a stage.
//!
//! Order: the learning platform's `DELETE /tenant` first (it removes every person's
//! data, engagement records included; the calendars need nothing, see
//! docs/lifecycle.md), then the tenant's objects in the cluster, then the receipt that
//! ends the erasure chain, then the Tenant is released.

use chrono::{DateTime, Duration, Utc};
use roster_api::{ExitObjectCounts, ExitStage, ExitStageRecord, TenantExitStatus};

use crate::machine::backoff;

/// What the controller does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStep {
    /// Record the exit's start in status (nothing outbound yet): users see the Tenant
    /// leaving before any call is made, and stop starting calls of their own.
    Begin,
    /// Call the platform's `DELETE /tenant` with this key.
    ErasePlatform { idempotency_key: String },
    /// Delete the remaining objects (their count is recorded first, once).
    DeleteObjects,
    /// Every object is gone: record the stage.
    ObjectsGone,
    /// Write the exit's receipt (it ends the chain) and record the stage.
    SealReceipts,
    /// Every stage is recorded: release the Tenant.
    Release,
    /// Nothing to do before `until` (a backoff), or until the Tenant changes (`None`:
    /// suspended).
    Wait { until: Option<DateTime<Utc>> },
}

/// The next step and how the Tenant's `Ready` condition reads meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitDecision {
    pub step: ExitStep,
    /// PII-free: stage names, counts, timestamps and error categories only.
    pub message: String,
}

/// What the exit depends on besides its recorded status.
#[derive(Clone, Copy, Debug)]
pub struct ExitObserved<'a> {
    pub tenant_uid: &'a str,
    pub exit: Option<&'a TenantExitStatus>,
    /// `spec.suspend`: no outbound call while set.
    pub suspended: bool,
    /// The tenant's objects still in the cluster (from a fresh list).
    pub remaining: ExitObjectCounts,
    pub now: DateTime<Utc>,
}

/// The idempotency key of a stage's outbound call: derived from the Tenant's UID, so a
/// retry, a restart or another leader sends the same key.
pub fn idempotency_key(tenant_uid: &str, stage: ExitStage) -> String {
    format!("{tenant_uid}/exit/{}", stage.as_str())
}

/// The next stage of the exit.
pub fn next(observed: ExitObserved<'_>) -> ExitDecision {
    let Some(exit) = observed.exit else {
        return ExitDecision {
            step: ExitStep::Begin,
            message: "tenant exit starting".into(),
        };
    };
    let Some(stage) = current_stage(exit) else {
        return ExitDecision {
            step: ExitStep::Release,
            message: "tenant exit complete: releasing the Tenant".into(),
        };
    };
    let number = ExitStage::ALL.iter().position(|s| *s == stage).unwrap_or(0) + 1;
    let total = ExitStage::ALL.len();
    let remaining = observed.remaining;
    let counts = format!(
        "{} DirectoryUser(s), {} Departure(s), {} DirectoryGroup(s) remaining",
        remaining.users, remaining.departures, remaining.groups
    );
    let head = format!("tenant exit, stage {number}/{total} ({})", stage.as_str());
    if let Some(until) = exit.next_retry_time.filter(|t| *t > observed.now) {
        return ExitDecision {
            step: ExitStep::Wait { until: Some(until) },
            message: format!(
                "{head}: failed {} time(s) in a row ({}); retrying at {}; {counts}",
                exit.attempts,
                exit.last_error.as_deref().unwrap_or("unknown error"),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
    }
    match stage {
        ExitStage::ErasePlatform if observed.suspended => ExitDecision {
            step: ExitStep::Wait { until: None },
            message: format!(
                "{head}: waiting, spec.suspend is true (no outbound calls); set it to false to continue; {counts}"
            ),
        },
        ExitStage::ErasePlatform => ExitDecision {
            step: ExitStep::ErasePlatform {
                idempotency_key: idempotency_key(observed.tenant_uid, stage),
            },
            message: format!("{head}: erasing the tenant at the learning platform; {counts}"),
        },
        ExitStage::DeleteObjects if remaining == ExitObjectCounts::default() => ExitDecision {
            step: ExitStep::ObjectsGone,
            message: format!("{head}: every object deleted"),
        },
        ExitStage::DeleteObjects => ExitDecision {
            step: ExitStep::DeleteObjects,
            message: format!("{head}: deleting the tenant's objects; {counts}"),
        },
        ExitStage::SealReceipts => ExitDecision {
            step: ExitStep::SealReceipts,
            message: format!("{head}: writing the exit's erasure receipt"),
        },
    }
}

/// The first stage not recorded as completed.
pub fn current_stage(exit: &TenantExitStatus) -> Option<ExitStage> {
    ExitStage::ALL
        .into_iter()
        .find(|stage| !exit.completed.iter().any(|r| r.stage == *stage))
}

/// The exit's status when it starts.
pub fn begin(now: DateTime<Utc>) -> TenantExitStatus {
    TenantExitStatus {
        start_time: now,
        ..TenantExitStatus::default()
    }
}

/// Records `stage` as completed (once), clearing the failure streak.
pub fn record_done(
    exit: &mut TenantExitStatus,
    stage: ExitStage,
    idempotency_key: Option<String>,
    now: DateTime<Utc>,
) {
    if !exit.completed.iter().any(|r| r.stage == stage) {
        exit.completed.push(ExitStageRecord {
            stage,
            completion_time: now,
            idempotency_key,
        });
    }
    exit.attempts = 0;
    exit.last_error = None;
    exit.next_retry_time = None;
}

/// Records a failed attempt of the current stage: retried after the lifecycle's
/// backoff or the service's `Retry-After`, whichever is longer.
pub fn record_failure(
    exit: &mut TenantExitStatus,
    error: String,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
) {
    exit.attempts += 1;
    let wait = backoff(exit.attempts).max(retry_after.unwrap_or_else(Duration::zero));
    exit.last_error = Some(error);
    exit.next_retry_time = Some(now + wait);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn done(stages: &[ExitStage]) -> TenantExitStatus {
        let mut exit = begin(at(0));
        for stage in stages {
            record_done(&mut exit, *stage, None, at(1));
        }
        exit
    }

    const SOME: ExitObjectCounts = ExitObjectCounts {
        users: 3,
        departures: 1,
        groups: 2,
    };
    const NONE: ExitObjectCounts = ExitObjectCounts {
        users: 0,
        departures: 0,
        groups: 0,
    };

    /// recorded stages | suspended | objects left | next step
    #[test]
    fn the_next_stage_follows_what_status_recorded() {
        use ExitStage::*;
        let key = ExitStep::ErasePlatform {
            idempotency_key: "uid-1/exit/ErasePlatform".into(),
        };
        let rows: Vec<(Option<&[ExitStage]>, bool, ExitObjectCounts, ExitStep)> = vec![
            (None, false, SOME, ExitStep::Begin),
            (None, true, SOME, ExitStep::Begin),
            (Some(&[]), false, SOME, key.clone()),
            (Some(&[]), false, NONE, key.clone()),
            (Some(&[]), true, SOME, ExitStep::Wait { until: None }),
            (Some(&[ErasePlatform]), false, SOME, ExitStep::DeleteObjects),
            // Deleting objects makes no outbound call: suspend does not hold it.
            (Some(&[ErasePlatform]), true, SOME, ExitStep::DeleteObjects),
            (Some(&[ErasePlatform]), false, NONE, ExitStep::ObjectsGone),
            (
                Some(&[ErasePlatform, DeleteObjects]),
                false,
                NONE,
                ExitStep::SealReceipts,
            ),
            (
                Some(&[ErasePlatform, DeleteObjects, SealReceipts]),
                false,
                NONE,
                ExitStep::Release,
            ),
        ];
        for (recorded, suspended, remaining, expected) in rows {
            let exit = recorded.map(done);
            let decision = next(ExitObserved {
                tenant_uid: "uid-1",
                exit: exit.as_ref(),
                suspended,
                remaining,
                now: at(10),
            });
            assert_eq!(
                decision.step, expected,
                "recorded {recorded:?}, suspended {suspended}, remaining {remaining:?}"
            );
        }
    }

    #[test]
    fn a_failure_waits_for_its_backoff_then_retries_with_the_same_key() {
        let mut exit = done(&[]);
        record_failure(&mut exit, "learning platform: 503".into(), None, at(10));
        record_failure(&mut exit, "learning platform: 503".into(), None, at(11));
        assert_eq!(exit.next_retry_time, Some(at(13)));
        let observe = |now| {
            next(ExitObserved {
                tenant_uid: "uid-1",
                exit: Some(&exit),
                suspended: false,
                remaining: SOME,
                now,
            })
        };
        let waiting = observe(at(12));
        assert_eq!(
            waiting.step,
            ExitStep::Wait {
                until: Some(at(13))
            }
        );
        assert!(
            waiting.message.contains("failed 2 time(s)"),
            "{}",
            waiting.message
        );
        assert!(waiting.message.contains("3 DirectoryUser(s)"));
        assert_eq!(
            observe(at(13)).step,
            ExitStep::ErasePlatform {
                idempotency_key: "uid-1/exit/ErasePlatform".into()
            }
        );
    }

    #[test]
    fn retry_after_longer_than_the_backoff_wins() {
        let mut exit = done(&[]);
        record_failure(&mut exit, "429".into(), Some(Duration::seconds(30)), at(0));
        assert_eq!(exit.next_retry_time, Some(at(30)));
    }

    #[test]
    fn completing_a_stage_is_recorded_once_and_clears_the_failures() {
        let mut exit = done(&[]);
        record_failure(&mut exit, "503".into(), None, at(0));
        record_done(&mut exit, ExitStage::ErasePlatform, Some("k".into()), at(5));
        record_done(&mut exit, ExitStage::ErasePlatform, Some("k".into()), at(9));
        assert_eq!(exit.completed.len(), 1);
        assert_eq!(exit.completed[0].completion_time, at(5));
        assert_eq!((exit.attempts, exit.last_error.clone()), (0, None));
        assert_eq!(current_stage(&exit), Some(ExitStage::DeleteObjects));
    }

    #[test]
    fn keys_come_from_the_tenant_uid_and_the_stage() {
        assert_eq!(
            idempotency_key("0b6e", ExitStage::ErasePlatform),
            "0b6e/exit/ErasePlatform"
        );
    }
}
