//! Stable names of the API's enums: the wire value, usable as a metric label, an Event
//! reason or part of an idempotency key. Never `format!("{:?}")`, whose output is not
//! part of any contract.

/// Implements `as_str` (the serialized value) and `Display` for a fieldless enum.
macro_rules! wire_names {
    ($($ty:ident { $($variant:ident $(= $wire:literal)?),+ $(,)? })+) => {$(
        impl $ty {
            /// The value as serialized in the API (and in labels, reasons and keys).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => wire_names!(@wire $variant $($wire)?),)+
                }
            }

            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
    (@wire $variant:ident) => { stringify!($variant) };
    (@wire $variant:ident $wire:literal) => { $wire };
}

use crate::directory_user::{Phase, Provisioning, RecordSource, StepName, StepState, Trigger};
use crate::policy::{CalendarOwnerCandidate, ObjectDeletionMode, RuleTransferTarget};
use crate::tenant::CalendarProvider;

wire_names! {
    Phase { Active, Held, Quarantined, Deprovisioning, Deprovisioned, Purged }
    Trigger { Deactivated, TerminationDate, DeprovisionNow, ObjectDeleted }
    StepName {
        RevokeAccess, RestoreAccess, TransferCalendarEvents, TransferRules,
        RemoveFromEvents, RemoveFromGroups, RemoveAssignments, Anonymize, Purge,
    }
    StepState { Pending, Succeeded, Failed, Skipped }
    RecordSource { Manual, Scim = "SCIM", Csv = "CSV", HrApi = "HRAPI" }
    Provisioning { Created, Adopted }
    CalendarOwnerCandidate { Organizer, CoOrganizers, Presenters, FallbackOwner }
    RuleTransferTarget { Manager, FallbackOwner }
    ObjectDeletionMode { Quarantine, Immediate }
    CalendarProvider { None, Google, Microsoft }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` is the wire value: a rename in serde must rename it too.
    fn check<T: serde::Serialize + Copy>(all: &[T], name: impl Fn(T) -> &'static str) {
        for value in all {
            let wire = serde_json::to_value(value).expect("serializes");
            assert_eq!(wire, serde_json::Value::from(name(*value)));
        }
    }

    #[test]
    fn names_are_the_serialized_values() {
        check(Phase::ALL, Phase::as_str);
        check(Trigger::ALL, Trigger::as_str);
        check(StepName::ALL, StepName::as_str);
        check(StepState::ALL, StepState::as_str);
        check(RecordSource::ALL, RecordSource::as_str);
        check(CalendarOwnerCandidate::ALL, CalendarOwnerCandidate::as_str);
        check(RuleTransferTarget::ALL, RuleTransferTarget::as_str);
        check(ObjectDeletionMode::ALL, ObjectDeletionMode::as_str);
        check(CalendarProvider::ALL, CalendarProvider::as_str);
        assert_eq!(Phase::Quarantined.to_string(), "Quarantined");
    }
}
