//! Validated settings: the DeprovisionPolicy and Tenant specs, parsed once into the
//! types the state machine reads. Pure: no client required.

use chrono::Duration;
use chrono_tz::Tz;
use thiserror::Error;

use roster_api::policy::{CalendarOwnerCandidate, DeprovisionActions, MassDeprovisionGuard};
use roster_api::tenant::GroupRule;
use roster_api::{DeprovisionPolicySpec, ObjectDeletionMode, RuleTransferTarget, TenantSpec};

/// The legal maximum for removing PII after termination.
pub const MAX_PURGE_DEADLINE: Duration = Duration::days(30);

/// A DeprovisionPolicy the state machine can use.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub quarantine: Duration,
    pub purge_deadline: Duration,
    pub actions: DeprovisionActions,
    pub rule_transfer_target: RuleTransferTarget,
    pub calendar_owner_order: Vec<CalendarOwnerCandidate>,
    pub on_object_deletion: ObjectDeletionMode,
    pub guard: MassDeprovisionGuard,
    pub dry_run: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidPolicy {
    #[error("{field} is not a duration such as 168h or 30s")]
    Duration { field: &'static str },
    #[error("purgeDeadline is longer than 720h")]
    PurgeTooLong,
    #[error("quarantinePeriod is longer than purgeDeadline")]
    QuarantineTooLong,
}

impl Policy {
    /// Checks what the CRD's CEL rules check too, so a policy written before the rules
    /// existed (or with validation bypassed) still cannot drive the machine wrongly.
    pub fn from_spec(spec: &DeprovisionPolicySpec) -> Result<Self, InvalidPolicy> {
        let quarantine =
            parse_duration(&spec.quarantine_period).ok_or(InvalidPolicy::Duration {
                field: "quarantinePeriod",
            })?;
        let purge_deadline =
            parse_duration(&spec.purge_deadline).ok_or(InvalidPolicy::Duration {
                field: "purgeDeadline",
            })?;
        if purge_deadline > MAX_PURGE_DEADLINE {
            return Err(InvalidPolicy::PurgeTooLong);
        }
        if quarantine > purge_deadline {
            return Err(InvalidPolicy::QuarantineTooLong);
        }
        Ok(Self {
            quarantine,
            purge_deadline,
            actions: spec.actions.clone(),
            rule_transfer_target: spec.rule_transfer_target,
            calendar_owner_order: spec.calendar_owner_order.clone(),
            on_object_deletion: spec.on_object_deletion,
            guard: spec.mass_deprovision_guard.clone(),
            dry_run: spec.dry_run,
        })
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::from_spec(&DeprovisionPolicySpec::default()).expect("the default policy is valid")
    }
}

/// Parses the Go-style durations the CRDs accept (`168h`, `1h30m`, `45s`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'h' | b'm' | b's'))
    {
        return None;
    }
    let std = humantime::parse_duration(text).ok()?;
    Duration::from_std(std).ok()
}

/// The parts of a Tenant the state machine reads.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantSettings {
    /// Zone in which date-only HR fields are read.
    pub time_zone: Tz,
    /// No outbound side effects while true.
    pub suspended: bool,
    pub locations: Vec<String>,
    pub group_rules: Vec<GroupRule>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidTenant {
    #[error("timeZone is not a known IANA time zone")]
    TimeZone,
}

impl TenantSettings {
    pub fn from_spec(spec: &TenantSpec) -> Result<Self, InvalidTenant> {
        Ok(Self {
            time_zone: spec
                .time_zone
                .parse()
                .map_err(|_| InvalidTenant::TimeZone)?,
            suspended: spec.suspend,
            locations: spec.locations.clone(),
            group_rules: spec.group_rules.clone(),
        })
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            suspended: false,
            locations: Vec::new(),
            group_rules: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("168h"), Some(Duration::days(7)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("2s"), Some(Duration::seconds(2)));
        assert_eq!(parse_duration("0s"), Some(Duration::zero()));
        for bad in ["", "7d", "1 h", "-1h", "h", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn policy_bounds_are_enforced() {
        let mut spec = DeprovisionPolicySpec::default();
        assert!(Policy::from_spec(&spec).is_ok());
        spec.purge_deadline = "721h".into();
        assert_eq!(Policy::from_spec(&spec), Err(InvalidPolicy::PurgeTooLong));
        spec.purge_deadline = "24h".into();
        assert_eq!(
            Policy::from_spec(&spec),
            Err(InvalidPolicy::QuarantineTooLong)
        );
        spec.quarantine_period = "7d".into();
        assert_eq!(
            Policy::from_spec(&spec),
            Err(InvalidPolicy::Duration {
                field: "quarantinePeriod"
            })
        );
    }
}
