//! Each lifecycle step's time, and why it failed, per step and connector.
//!
//! A step runs with a [`Recorder`] of its own (see [`run`]), so the downstream calls it
//! makes are noted: the step's `connector` is the calendar service when it called one
//! (the calendar hand-over also calls the learning platform), else the learning
//! platform, else `none` (no call: in-memory effects, nothing to do, or a failure
//! before the first call). A failed step's labels are what the effects say about the
//! error ([`failed`]: the connector that failed and its error's category); effects that
//! say nothing get the last failed call's connector and a category from its status.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use roster_api::StepName;
use roster_connectors::http::{self, Ending, Service};
use roster_lifecycle::Outcome;

use super::downstream::Recorder;
use super::{Metrics, StepConnectorLabels, StepFailureLabels};

tokio::task_local! {
    /// The notes of the step the current task runs.
    static STEP: Arc<Notes>;
}

/// What one step's calls and its effects said.
#[derive(Debug, Default)]
pub struct Notes {
    seen: Mutex<Seen>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    calendar: Option<Service>,
    learning_platform: bool,
    last_failed: Option<(Service, Ending)>,
    /// (connector, category) as the effects reported the error.
    failure: Option<(&'static str, &'static str)>,
}

impl Notes {
    pub(super) fn called(&self, service: Service, ending: Ending) {
        let mut seen = self.lock();
        match service {
            Service::GoogleCalendar | Service::GoogleToken => {
                seen.calendar = Some(Service::GoogleCalendar)
            }
            Service::MicrosoftGraph | Service::MicrosoftToken => {
                seen.calendar = Some(Service::MicrosoftGraph)
            }
            Service::LearningPlatform => seen.learning_platform = true,
            Service::HrApi | Service::Sftp => {}
        }
        if !ending.succeeded() {
            seen.last_failed = Some((service, ending));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The effects' word on why the running step failed: the connector
/// (`learning-platform`, `google-calendar`, `microsoft-graph`, or `none` for a
/// configuration problem) and the connector error's category. No-op outside a step.
pub fn failed(connector: &'static str, category: &'static str) {
    let _ = STEP.try_with(|notes| notes.lock().failure = Some((connector, category)));
}

/// Runs one step's effects call, recording its downstream calls, its time and (if it
/// failed) its failure.
pub async fn run<F: Future<Output = Outcome>>(
    metrics: &Arc<Metrics>,
    step: StepName,
    call: F,
) -> Outcome {
    let notes = Arc::new(Notes::default());
    let recorder = Arc::new(Recorder::for_step(metrics.clone(), notes.clone()));
    let started = Instant::now();
    let outcome = http::observed(recorder, STEP.scope(notes.clone(), call)).await;
    let seconds = started.elapsed().as_secs_f64();
    let seen = *notes.lock();
    let step_name = step.as_str();
    metrics
        .step_seconds
        .get_or_create(&StepConnectorLabels {
            step: step_name,
            connector: connector(&seen),
        })
        .observe(seconds);
    if matches!(outcome, Outcome::Failed { .. }) {
        let (connector, category) = failure(&seen);
        metrics
            .step_failures
            .get_or_create(&StepFailureLabels {
                step: step_name,
                connector,
                category,
            })
            .inc();
    }
    outcome
}

fn connector(seen: &Seen) -> &'static str {
    match (seen.calendar, seen.learning_platform) {
        (Some(calendar), _) => calendar.as_str(),
        (None, true) => Service::LearningPlatform.as_str(),
        (None, false) => "none",
    }
}

fn failure(seen: &Seen) -> (&'static str, &'static str) {
    if let Some(failure) = seen.failure {
        return failure;
    }
    match seen.last_failed {
        Some((service, ending)) => (service.as_str(), category(ending)),
        None => ("none", "unknown"),
    }
}

/// A category from how a call ended, named as the connectors name their errors.
fn category(ending: Ending) -> &'static str {
    match ending {
        Ending::Status(429) => "rate_limited",
        Ending::Status(401 | 403) => "unauthorized",
        Ending::Status(404 | 410) => "not_found",
        Ending::Status(408 | 500..=599) => "unavailable",
        Ending::Status(_) => "rejected",
        Ending::Failed("timeout") => "timeout",
        Ending::Failed(_) => "transport",
        Ending::Done => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(calls: &[(Service, Ending)], failure: Option<(&'static str, &'static str)>) -> Seen {
        let notes = Notes::default();
        for (service, ending) in calls {
            notes.called(*service, *ending);
        }
        notes.lock().failure = failure;
        *notes.lock()
    }

    #[test]
    fn the_step_connector_is_the_most_specific_service_called() {
        let lms = (Service::LearningPlatform, Ending::Status(200));
        let token = (Service::GoogleToken, Ending::Status(200));
        let graph = (Service::MicrosoftGraph, Ending::Status(200));
        for (calls, expected) in [
            (vec![], "none"),
            (vec![lms], "learning-platform"),
            (vec![lms, token, lms], "google-calendar"),
            (vec![graph, lms], "microsoft-graph"),
        ] {
            assert_eq!(connector(&seen(&calls, None)), expected, "{calls:?}");
        }
    }

    #[test]
    fn a_failure_is_what_the_effects_said_else_the_last_failed_call() {
        let failed = (Service::LearningPlatform, Ending::Status(503));
        let timed_out = (Service::GoogleCalendar, Ending::Failed("timeout"));
        let ok = (Service::LearningPlatform, Ending::Status(204));
        for (calls, said, expected) in [
            (vec![], None, ("none", "unknown")),
            (
                vec![ok],
                Some(("none", "configuration")),
                ("none", "configuration"),
            ),
            (vec![failed, ok], None, ("learning-platform", "unavailable")),
            (
                vec![failed, timed_out],
                None,
                ("google-calendar", "timeout"),
            ),
            (
                vec![failed],
                Some(("learning-platform", "rate_limited")),
                ("learning-platform", "rate_limited"),
            ),
        ] {
            assert_eq!(failure(&seen(&calls, said)), expected, "{calls:?} {said:?}");
        }
    }

    #[test]
    fn categories_follow_the_status() {
        for (ending, expected) in [
            (Ending::Status(429), "rate_limited"),
            (Ending::Status(401), "unauthorized"),
            (Ending::Status(404), "not_found"),
            (Ending::Status(502), "unavailable"),
            (Ending::Status(408), "unavailable"),
            (Ending::Status(422), "rejected"),
            (Ending::Failed("timeout"), "timeout"),
            (Ending::Failed("connect"), "transport"),
        ] {
            assert_eq!(category(ending), expected, "{ending:?}");
        }
    }

    #[tokio::test]
    async fn a_step_is_timed_and_its_failure_counted_with_the_effects_labels() {
        let metrics = Arc::new(Metrics::default());
        let outcome = run(&metrics, StepName::RemoveFromGroups, async {
            http::observe(Service::LearningPlatform, async {}, |_| Ending::Status(429)).await;
            failed("learning-platform", "rate_limited");
            Outcome::Failed {
                error: "rate limited".into(),
                retry_after: None,
                unreachable: false,
            }
        })
        .await;
        assert!(matches!(outcome, Outcome::Failed { .. }));
        let text = metrics.encode();
        for line in [
            r#"roster_step_duration_seconds_count{step="RemoveFromGroups",connector="learning-platform"} 1"#,
            r#"roster_step_failures_total{step="RemoveFromGroups",connector="learning-platform",category="rate_limited"} 1"#,
            r#"roster_downstream_requests_total{connector="learning-platform",class="4xx",code="429"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        // Outside a step, a failure note goes nowhere.
        failed("learning-platform", "timeout");
    }
}
