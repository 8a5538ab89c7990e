//! Every call to a downstream service, counted and timed: the operator's side of the
//! connectors' [`Observer`] hook. The connectors read no clock; the recorder takes the
//! time when a call starts and when it ends. Installed around each side-effecting call
//! (a step, a sync call, the tenant exit) and around the HR feeds' scheduler.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use roster_connectors::http::{self, Ending, Observer, Service};

use super::steps::Notes;
use super::{DownstreamDurationLabels, DownstreamLabels, Metrics};

/// Records each call into `metrics` (and, within a step, into its notes).
pub struct Recorder {
    metrics: Arc<Metrics>,
    notes: Option<Arc<Notes>>,
}

impl Recorder {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            notes: None,
        }
    }

    pub(super) fn for_step(metrics: Arc<Metrics>, notes: Arc<Notes>) -> Self {
        Self {
            metrics,
            notes: Some(notes),
        }
    }
}

impl Observer for Recorder {
    fn started(&self, service: Service) -> Box<dyn FnOnce(Ending) + Send> {
        let metrics = self.metrics.clone();
        let notes = self.notes.clone();
        let started = Instant::now();
        Box::new(move |ending| {
            let seconds = started.elapsed().as_secs_f64();
            let (connector, class) = (service.as_str(), ending.class());
            metrics
                .downstream_requests
                .get_or_create(&DownstreamLabels {
                    connector,
                    class,
                    code: code(ending),
                })
                .inc();
            metrics
                .downstream_seconds
                .get_or_create(&DownstreamDurationLabels { connector, class })
                .observe(seconds);
            if let Some(notes) = notes {
                notes.called(service, ending);
            }
        })
    }
}

/// Runs `call` with every downstream request it makes recorded into `metrics`.
pub async fn observed<F: Future>(metrics: &Arc<Metrics>, call: F) -> F::Output {
    http::observed(Arc::new(Recorder::new(metrics.clone())), call).await
}

/// The `code` label: the status, `ok`, or why there was no answer.
pub fn code(ending: Ending) -> String {
    match ending {
        Ending::Status(status) => status.to_string(),
        Ending::Done => "ok".to_string(),
        Ending::Failed(why) => why.to_string(),
    }
}

/// How an SFTP fetch ended, for [`http::observe`].
pub fn sftp_ending<T>(result: &Result<T, crate::feeds::fetch::FetchError>) -> Ending {
    use crate::feeds::fetch::FetchError;
    match result {
        Ok(_) => Ending::Done,
        Err(error) => Ending::Failed(match error {
            FetchError::Timeout => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::HostKeyMismatch => "host_key_mismatch",
            FetchError::Unauthorized => "unauthorized",
            FetchError::NotFound => "not_found",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Read | FetchError::Status(_) | FetchError::Transport(_) => "read",
            FetchError::Settings(_) | FetchError::Refused(_) | FetchError::Credentials(_) => {
                "configuration"
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_counted_by_connector_class_and_code() {
        let metrics = Arc::new(Metrics::default());
        observed(&metrics, async {
            for ending in [
                Ending::Status(204),
                Ending::Status(503),
                Ending::Failed("timeout"),
            ] {
                http::observe(Service::LearningPlatform, async {}, |_| ending).await;
            }
            http::observe(Service::Sftp, async {}, |_| Ending::Done).await;
        })
        .await;
        // Outside an observed scope nothing is recorded.
        http::observe(Service::HrApi, async {}, |_| Ending::Status(200)).await;
        let text = metrics.encode();
        for line in [
            r#"roster_downstream_requests_total{connector="learning-platform",class="2xx",code="204"} 1"#,
            r#"roster_downstream_requests_total{connector="learning-platform",class="5xx",code="503"} 1"#,
            r#"roster_downstream_requests_total{connector="learning-platform",class="error",code="timeout"} 1"#,
            r#"roster_downstream_requests_total{connector="sftp",class="ok",code="ok"} 1"#,
            r#"roster_downstream_request_duration_seconds_count{connector="learning-platform",class="2xx"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("hr-api"), "{text}");
    }

    #[test]
    fn sftp_endings_name_the_failure_without_details() {
        use crate::feeds::fetch::FetchError;
        assert_eq!(sftp_ending::<()>(&Ok(())), Ending::Done);
        assert_eq!(
            sftp_ending::<()>(&Err(FetchError::Connect("refused"))),
            Ending::Failed("connect")
        );
        assert_eq!(
            sftp_ending::<()>(&Err(FetchError::Settings("x"))),
            Ending::Failed("configuration")
        );
    }
}
