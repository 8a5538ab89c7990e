//! Fault injection and rate limiting: how the stand-in misbehaves on demand.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One injected fault. It applies to requests whose operation matches `target`:
///
/// - an operation ID of the contract (`revokeAccess`, `removeEventAttendee`, …);
/// - a route template, with `*` matching any run of characters
///   (`/users/{employeeId}/access/revoke`, `/events/*`, `*`);
/// - either of the above prefixed by a method (`DELETE /events/*`).
///
/// Effects, checked in this order for every matching request: `latencyMs` is added;
/// with probability `throttleRate` the answer is `429` with `Retry-After:
/// retryAfterSecs`; with probability `errorRate` the answer is `errorStatus` (5xx) —
/// before the request is applied, or, with `errorAfterApply`, after it was applied
/// and its result stored under the idempotency key (a lost response). `times` bounds
/// how many requests the fault affects; it is removed when spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    pub target: String,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    #[serde(default)]
    pub error_after_apply: bool,
    #[serde(default)]
    pub throttle_rate: f64,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

fn default_error_status() -> u16 {
    503
}

fn default_retry_after() -> u64 {
    1
}

impl Fault {
    /// A fault on `target` that does nothing yet; add effects with the builders.
    pub fn on(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            latency_ms: 0,
            error_rate: 0.0,
            error_status: default_error_status(),
            error_after_apply: false,
            throttle_rate: 0.0,
            retry_after_secs: default_retry_after(),
            times: None,
        }
    }

    /// Adds `latency` to every matching request.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency_ms = latency.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// Answers every matching request with `status` (500–599) without applying it.
    pub fn fail(self, status: u16) -> Self {
        self.fail_rate(1.0, status)
    }

    /// Answers a share `rate` (0–1) of matching requests with `status` (500–599).
    pub fn fail_rate(mut self, rate: f64, status: u16) -> Self {
        self.error_rate = rate;
        self.error_status = status;
        self
    }

    /// Errors happen after the request was applied (the response is lost).
    pub fn after_apply(mut self) -> Self {
        self.error_after_apply = true;
        self
    }

    /// Answers every matching request with 429 and `Retry-After: retry_after` (whole seconds).
    pub fn throttle(self, retry_after: Duration) -> Self {
        self.throttle_rate(1.0, retry_after)
    }

    /// Answers a share `rate` (0–1) of matching requests with 429.
    pub fn throttle_rate(mut self, rate: f64, retry_after: Duration) -> Self {
        self.throttle_rate = rate;
        self.retry_after_secs = retry_after.as_secs();
        self
    }

    /// Affects only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Why the fault cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.target.trim().is_empty() {
            return Err("target must not be empty".into());
        }
        if !(500..=599).contains(&self.error_status) {
            return Err("errorStatus must be a 5xx status".into());
        }
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("throttleRate", self.throttle_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        Ok(())
    }

    /// Whether the fault applies to `operation` (`method`, route `template`).
    pub fn matches(&self, method: &str, template: &str, operation: &str) -> bool {
        let target = self.target.trim();
        let (want_method, pattern) = match target.split_once(' ') {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, target),
        };
        if want_method.is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return false;
        }
        pattern == operation || glob(pattern, template)
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = rest.split_last().expect("a '*' yields two parts");
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

/// What the faults decided for one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fired {
    pub latency: Duration,
    pub throttle: Option<Duration>,
    pub error: Option<u16>,
    pub error_after_apply: bool,
}

impl Fired {
    /// Short PII-free label for the call log.
    pub fn label(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.latency.is_zero() {
            parts.push(format!("latency {}ms", self.latency.as_millis()));
        }
        if self.throttle.is_some() {
            parts.push("throttle".to_string());
        }
        if let Some(status) = self.error {
            parts.push(if self.error_after_apply {
                format!("error {status} after apply")
            } else {
                format!("error {status}")
            });
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Installed faults, in the order added.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    next_id: u64,
    installed: Vec<(u64, Fault)>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        self.installed.push((self.next_id, fault));
        self.next_id
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.installed.len();
        self.installed.retain(|(i, _)| *i != id);
        before != self.installed.len()
    }

    pub fn clear(&mut self) {
        self.installed.clear();
    }

    pub fn list(&self) -> Vec<(u64, Fault)> {
        self.installed.clone()
    }

    /// Rolls the dice of every matching fault and spends their `times`.
    pub fn fire(&mut self, method: &str, template: &str, operation: &str) -> Fired {
        let mut fired = Fired::default();
        for (_, fault) in &mut self.installed {
            if !fault.matches(method, template, operation) {
                continue;
            }
            let mut hit = false;
            if fault.latency_ms > 0 {
                fired.latency += Duration::from_millis(fault.latency_ms);
                hit = true;
            }
            if fired.throttle.is_none() && roll(fault.throttle_rate) {
                fired.throttle = Some(Duration::from_secs(fault.retry_after_secs));
                hit = true;
            }
            if fired.error.is_none() && roll(fault.error_rate) {
                fired.error = Some(fault.error_status);
                fired.error_after_apply = fault.error_after_apply;
                hit = true;
            }
            if hit && let Some(times) = fault.times.as_mut() {
                *times = times.saturating_sub(1);
            }
        }
        self.installed.retain(|(_, f)| f.times != Some(0));
        fired
    }
}

fn roll(rate: f64) -> bool {
    rate >= 1.0 || (rate > 0.0 && rand::random::<f64>() < rate)
}

/// A real rate limit: at most `limit` API requests per `window` (fixed windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub limit: u32,
    #[serde(with = "millis")]
    #[serde(rename = "windowMs")]
    pub window: Duration,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Nominal limit advertised on injected 429s when no real limit is configured
/// (the 25 requests/s a gallery app must take).
pub(crate) const NOMINAL_LIMIT: u32 = 25;

/// The fixed-window counter of a [`RateLimit`].
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    pub limit: Option<RateLimit>,
    window_start: Option<Instant>,
    used: u32,
}

/// The limiter's verdict for one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
    pub allowed: bool,
}

impl Limiter {
    pub fn set(&mut self, limit: Option<RateLimit>) {
        self.limit = limit;
        self.window_start = None;
        self.used = 0;
    }

    /// Counts one request; `None` when no limit is configured.
    pub fn take(&mut self, now: Instant) -> Option<Quota> {
        let limit = self.limit?;
        let start = match self.window_start {
            Some(start) if now.duration_since(start) < limit.window => start,
            _ => {
                self.window_start = Some(now);
                self.used = 0;
                now
            }
        };
        let reset = limit.window.saturating_sub(now.duration_since(start));
        let allowed = self.used < limit.limit;
        if allowed {
            self.used += 1;
        }
        Some(Quota {
            limit: limit.limit,
            remaining: limit.limit - self.used,
            reset,
            allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_operations_templates_globs_and_methods() {
        let t = "/events/{eventId}/attendees/{employeeId}";
        assert!(Fault::on("removeEventAttendee").matches("DELETE", t, "removeEventAttendee"));
        assert!(Fault::on(t).matches("DELETE", t, "removeEventAttendee"));
        assert!(Fault::on("/events/*").matches("DELETE", t, "x"));
        assert!(Fault::on("*").matches("GET", "/tenant", "x"));
        assert!(Fault::on("*/attendees/*").matches("DELETE", t, "x"));
        assert!(Fault::on("delete /events/*").matches("DELETE", t, "x"));
        assert!(!Fault::on("GET /events/*").matches("DELETE", t, "x"));
        assert!(!Fault::on("/sessions/*").matches("DELETE", t, "x"));
        assert!(!Fault::on("revokeAccess").matches("DELETE", t, "removeEventAttendee"));
    }

    #[test]
    fn times_are_spent_and_the_fault_removed() {
        let mut faults = Faults::default();
        faults.add(Fault::on("*").fail(500).times(2));
        assert_eq!(faults.fire("GET", "/x", "x").error, Some(500));
        assert_eq!(faults.fire("GET", "/x", "x").error, Some(500));
        assert_eq!(faults.fire("GET", "/x", "x").error, None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn fixed_window_limiter() {
        let mut limiter = Limiter::default();
        let now = Instant::now();
        assert!(limiter.take(now).is_none());
        limiter.set(Some(RateLimit {
            limit: 2,
            window: Duration::from_secs(10),
        }));
        assert!(limiter.take(now).unwrap().allowed);
        let second = limiter.take(now).unwrap();
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        assert!(!limiter.take(now).unwrap().allowed);
        assert!(limiter.take(now + Duration::from_secs(11)).unwrap().allowed);
    }
}
