//! What the effects saw of each tenant's connectors: the shell half of the Tenant's
//! `ConnectorsReachable` condition ([`roster_lifecycle::reachability`] decides what it
//! says). Every call's result is recorded here, at the injected clock's time; when a
//! connector flips between reachable and unreachable, the Tenant is announced to every
//! subscriber (the Tenant controller), which then writes the condition once.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use roster_lifecycle::reachability::{self, CallResult, Connector, Observation};

use roster_connectors::calendar::CalendarError;
use roster_connectors::lms::LmsError;

/// A tenant, as `(namespace, name)`.
pub type TenantKey = (String, String);

#[derive(Default)]
struct Entry {
    observation: Observation,
    /// What was last announced: unreachable or not.
    announced: bool,
}

/// The observations of every tenant's connectors, and who wants to hear of flips.
#[derive(Default)]
pub struct Reachability {
    entries: Mutex<HashMap<(TenantKey, Connector), Entry>>,
    subscribers: Mutex<Vec<UnboundedSender<TenantKey>>>,
}

impl Reachability {
    /// Records one call's result; announces the tenant if the connector flipped.
    pub fn record(
        &self,
        tenant: &TenantKey,
        connector: Connector,
        result: CallResult,
        now: DateTime<Utc>,
    ) {
        let flipped = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let entry = entries.entry((tenant.clone(), connector)).or_default();
            reachability::record(&mut entry.observation, result, now);
            let down = reachability::is_unreachable(&entry.observation, now);
            let flipped = down != entry.announced;
            entry.announced = down;
            flipped
        };
        if flipped {
            self.subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|tx| tx.unbounded_send(tenant.clone()).is_ok());
        }
    }

    /// Whether calls to the connector are failing for longer than the grace now: the
    /// effects then send one try per attempt instead of retrying in place.
    pub fn is_unreachable(
        &self,
        tenant: &TenantKey,
        connector: Connector,
        now: DateTime<Utc>,
    ) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant.clone(), connector))
            .is_some_and(|e| reachability::is_unreachable(&e.observation, now))
    }

    /// The tenant's observed connectors.
    pub fn of(&self, tenant: &TenantKey) -> Vec<(Connector, Observation)> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, c), e)| (*c, e.observation.clone()))
            .collect()
    }

    /// Tenants whose connectors flipped from now on.
    pub fn subscribe(&self) -> UnboundedReceiver<TenantKey> {
        let (tx, rx) = unbounded();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }
}

/// What a connector error says about the service answering. `None`: the request never
/// left (an unusable URL or header), which says nothing either way.
pub(crate) trait Answer {
    fn call_result(&self) -> Option<CallResult>;
}

/// The category of a transport failure by its kind ([`roster_connectors::http::TransportFailure`]).
fn transport_category(kind: &str) -> Option<CallResult> {
    let category = match kind {
        "connect" => "connection failed",
        "timeout" => "timeout",
        "body" => "response cut off",
        // The service answered with a redirect the policy refused.
        "redirect" => return Some(CallResult::Answered),
        "request" => "request failed",
        _ => return None,
    };
    Some(CallResult::Unanswered { category })
}

fn server_error(status: u16) -> CallResult {
    let category = match status {
        500 => "HTTP 500",
        502 => "HTTP 502",
        503 => "HTTP 503",
        504 => "HTTP 504",
        408 => "HTTP 408",
        _ => "HTTP 5xx",
    };
    CallResult::Unanswered { category }
}

impl Answer for LmsError {
    fn call_result(&self) -> Option<CallResult> {
        match self {
            LmsError::Unavailable { status } if *status >= 500 => Some(server_error(*status)),
            LmsError::Timeout => Some(CallResult::Unanswered {
                category: "timeout",
            }),
            // The text starts with the failure's kind (see the client's `transport`).
            LmsError::Transport(text) => {
                transport_category(text.split(|c: char| !c.is_ascii_alphabetic()).next()?)
            }
            _ => Some(CallResult::Answered),
        }
    }
}

impl Answer for CalendarError {
    fn call_result(&self) -> Option<CallResult> {
        match self {
            CalendarError::Unavailable { status, .. } => Some(server_error(*status)),
            CalendarError::Timeout => Some(CallResult::Unanswered {
                category: "timeout",
            }),
            CalendarError::Transport { kind } => transport_category(kind),
            // Refused before any request was sent.
            CalendarError::NotTransferable { .. } | CalendarError::Config { .. } => None,
            _ => Some(CallResult::Answered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_the_service_answered() {
        let down = |category| Some(CallResult::Unanswered { category });
        let table: Vec<(Option<CallResult>, Option<CallResult>)> = vec![
            (
                LmsError::Unavailable { status: 503 }.call_result(),
                down("HTTP 503"),
            ),
            // 409: a request with the same key is still in flight; the platform answered.
            (
                LmsError::Unavailable { status: 409 }.call_result(),
                Some(CallResult::Answered),
            ),
            (LmsError::Timeout.call_result(), down("timeout")),
            (
                LmsError::Transport("connect: tcp connect error: Connection refused".into())
                    .call_result(),
                down("connection failed"),
            ),
            (
                LmsError::Transport("the base URL cannot carry a path".into()).call_result(),
                None,
            ),
            (
                LmsError::RateLimited { retry_after: None }.call_result(),
                Some(CallResult::Answered),
            ),
            (LmsError::NotFound.call_result(), Some(CallResult::Answered)),
            (
                CalendarError::Transport { kind: "connect" }.call_result(),
                down("connection failed"),
            ),
            (
                CalendarError::Unavailable {
                    status: 502,
                    retry_after: None,
                }
                .call_result(),
                down("HTTP 502"),
            ),
            (
                CalendarError::Unauthorized { status: 401 }.call_result(),
                Some(CallResult::Answered),
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_flip_is_announced_once_each_way() {
        use chrono::TimeZone;
        let at = |s: i64| {
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + chrono::Duration::seconds(s)
        };
        let reachability = Reachability::default();
        let mut changes = reachability.subscribe();
        let tenant = ("ns".to_string(), "acme".to_string());
        let down = CallResult::Unanswered {
            category: "HTTP 503",
        };
        for t in [0, 5, 11, 20, 30] {
            reachability.record(&tenant, Connector::LearningPlatform, down, at(t));
        }
        assert!(reachability.is_unreachable(&tenant, Connector::LearningPlatform, at(30)));
        reachability.record(
            &tenant,
            Connector::LearningPlatform,
            CallResult::Answered,
            at(31),
        );
        reachability.record(
            &tenant,
            Connector::LearningPlatform,
            CallResult::Answered,
            at(32),
        );
        let mut announced = Vec::new();
        while let Ok(key) = changes.try_recv() {
            announced.push(key);
        }
        assert_eq!(announced, vec![tenant.clone(), tenant]);
    }
}
