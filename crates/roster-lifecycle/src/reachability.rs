//! Whether a tenant's downstream services answer: what the Tenant's
//! `ConnectorsReachable` condition says, decided from what the effects observed.
//!
//! The shell records every call's result per tenant and connector ([`record`]); this
//! module decides, from those records and `now`, which connectors are unreachable and
//! what the condition says ([`condition`]). A connector is unreachable when every call
//! for at least [`GRACE`] failed without an answer from the service (no connection, a
//! timeout, or a 5xx): a single lost call, or the 30 % flaky calls the retries absorb,
//! does not flip the condition. Any answer that is not a 5xx (a 4xx, a 429) is the
//! service reaching back and counts as reachable.
//!
//! Invariant: the message holds the connector's name, the error category and the time
//! the failures began, all fixed for the length of one outage, never a counter or a
//! "time since" figure, so recomputing it during an outage writes nothing; never a URL
//! or a person.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// How long calls must have failed, without a single answer between, before the
/// connector is reported unreachable.
pub const GRACE: Duration = Duration::seconds(10);

/// The condition type on the Tenant.
pub const CONDITION_TYPE: &str = "ConnectorsReachable";

/// The downstream services a tenant's effects call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Connector {
    LearningPlatform,
    GoogleCalendar,
    MicrosoftGraph,
}

impl Connector {
    /// The name administrators know the service by.
    pub fn display_name(self) -> &'static str {
        match self {
            Connector::LearningPlatform => "learning platform",
            Connector::GoogleCalendar => "Google Calendar",
            Connector::MicrosoftGraph => "Microsoft Graph",
        }
    }
}

/// The result of one call as far as reachability goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The service answered (a success, or any refusal other than a 5xx).
    Answered,
    /// No answer from the service: `category` is a PII-free, URL-free label such as
    /// `HTTP 503`, `timeout` or `connection failed`.
    Unanswered { category: &'static str },
}

/// What the shell observed of one connector of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub last_success: Option<DateTime<Utc>>,
    /// The first failure of the current run of failures (`None` once a call is answered).
    pub failing_since: Option<DateTime<Utc>>,
    /// The category of the latest failure of the current run.
    pub last_error: Option<&'static str>,
}

/// Folds one call's result into the connector's observation.
pub fn record(observation: &mut Observation, result: CallResult, now: DateTime<Utc>) {
    match result {
        CallResult::Answered => {
            observation.last_success = Some(now);
            observation.failing_since = None;
            observation.last_error = None;
        }
        CallResult::Unanswered { category } => {
            observation.failing_since.get_or_insert(now);
            observation.last_error = Some(category);
        }
    }
}

/// Whether the connector counts as unreachable at `now`.
pub fn is_unreachable(observation: &Observation, now: DateTime<Utc>) -> bool {
    observation
        .failing_since
        .is_some_and(|since| now - since >= GRACE)
}

/// When a connector failing now becomes unreachable if nothing answers (the moment
/// the condition's holder should look again), if it is failing and not yet reported.
pub fn recheck_at(observation: &Observation, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let since = observation.failing_since?;
    (now - since < GRACE).then_some(since + GRACE)
}

/// What the `ConnectorsReachable` condition says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The condition from every connector's observation (order does not matter: the
/// message lists connectors in a fixed order).
pub fn condition(observations: &[(Connector, Observation)], now: DateTime<Utc>) -> Verdict {
    let mut down: Vec<&(Connector, Observation)> = observations
        .iter()
        .filter(|(_, o)| is_unreachable(o, now))
        .collect();
    down.sort_by_key(|(c, _)| *c);
    if down.is_empty() {
        return Verdict {
            ok: true,
            reason: "Reachable",
            message: String::new(),
        };
    }
    let parts: Vec<String> = down
        .iter()
        .map(|(connector, o)| {
            let since = o
                .failing_since
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default();
            format!(
                "{} unreachable since {since} ({})",
                connector.display_name(),
                o.last_error.unwrap_or("no answer")
            )
        })
        .collect();
    Verdict {
        ok: false,
        reason: "Unreachable",
        message: format!(
            "{}; the steps that need it wait and are retried with backoff",
            parts.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    const DOWN: CallResult = CallResult::Unanswered {
        category: "HTTP 503",
    };

    /// Calls as (seconds, result).
    type History<'a> = &'a [(i64, CallResult)];
    /// Observations, the time to judge them at, and what the condition should say.
    type Case = (Vec<(Connector, Observation)>, i64, Verdict);

    /// Replays `calls` (seconds, result) into one observation.
    fn observed(calls: &[(i64, CallResult)]) -> Observation {
        let mut o = Observation::default();
        for (t, result) in calls {
            record(&mut o, *result, at(*t));
        }
        o
    }

    #[test]
    fn reachability_over_call_histories() {
        use CallResult::Answered;
        let refused = CallResult::Unanswered {
            category: "connection failed",
        };
        // (calls, now, unreachable, recheck_at)
        let table: &[(History, i64, bool, Option<i64>)] = &[
            (&[], 100, false, None),
            (&[(0, Answered)], 100, false, None),
            // One failure: not yet, look again when the grace ends.
            (&[(0, Answered), (5, DOWN)], 6, false, Some(15)),
            // Failing for the whole grace: unreachable, counted from the first failure.
            (&[(0, Answered), (5, DOWN), (9, DOWN)], 15, true, None),
            (&[(5, DOWN), (30, refused)], 40, true, None),
            // An answer in between starts the count again.
            (&[(0, DOWN), (8, Answered), (9, DOWN)], 15, false, Some(19)),
            // Back: the first answer ends the outage.
            (&[(0, DOWN), (60, DOWN), (61, Answered)], 62, false, None),
        ];
        for (calls, now, unreachable, recheck) in table {
            let o = observed(calls);
            assert_eq!(
                is_unreachable(&o, at(*now)),
                *unreachable,
                "{calls:?} at {now}"
            );
            assert_eq!(
                recheck_at(&o, at(*now)),
                recheck.map(at),
                "{calls:?} at {now}"
            );
        }
    }

    #[test]
    fn the_condition_names_each_connector_down_with_its_error_and_start() {
        let lms = observed(&[(0, DOWN), (20, DOWN)]);
        let calendar = observed(&[
            (
                3,
                CallResult::Unanswered {
                    category: "timeout",
                },
            ),
            (
                25,
                CallResult::Unanswered {
                    category: "timeout",
                },
            ),
        ]);
        let graph_up = observed(&[(1, CallResult::Answered)]);
        let table: Vec<Case> = vec![
            (
                vec![],
                30,
                Verdict {
                    ok: true,
                    reason: "Reachable",
                    message: String::new(),
                },
            ),
            (
                vec![(Connector::MicrosoftGraph, graph_up.clone())],
                30,
                Verdict {
                    ok: true,
                    reason: "Reachable",
                    message: String::new(),
                },
            ),
            (
                vec![(Connector::LearningPlatform, lms.clone())],
                5,
                Verdict {
                    ok: true,
                    reason: "Reachable",
                    message: String::new(),
                },
            ),
            (
                vec![(Connector::LearningPlatform, lms.clone())],
                30,
                Verdict {
                    ok: false,
                    reason: "Unreachable",
                    message:
                        "learning platform unreachable since 2026-03-01T09:00:00Z (HTTP 503); \
                              the steps that need it wait and are retried with backoff"
                            .into(),
                },
            ),
            (
                vec![
                    (Connector::GoogleCalendar, calendar.clone()),
                    (Connector::LearningPlatform, lms.clone()),
                ],
                30,
                Verdict {
                    ok: false,
                    reason: "Unreachable",
                    message:
                        "learning platform unreachable since 2026-03-01T09:00:00Z (HTTP 503); \
                              Google Calendar unreachable since 2026-03-01T09:00:03Z (timeout); \
                              the steps that need it wait and are retried with backoff"
                            .into(),
                },
            ),
        ];
        for (observations, now, expected) in table {
            assert_eq!(
                condition(&observations, at(now)),
                expected,
                "{observations:?}"
            );
        }
    }

    #[test]
    fn the_message_does_not_change_while_the_outage_lasts() {
        let mut o = observed(&[(0, DOWN)]);
        let first = condition(&[(Connector::LearningPlatform, o.clone())], at(11));
        for t in 12..300 {
            record(&mut o, DOWN, at(t));
            assert_eq!(
                condition(&[(Connector::LearningPlatform, o.clone())], at(t)),
                first
            );
        }
    }
}
