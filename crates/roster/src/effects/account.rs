//! Joiner and mover calls over HTTP: the core's [`SyncOp`]s carried out against the
//! learning platform. Decisions (what to send, which groups) were taken by the core;
//! this module only maps them onto the contract's requests.

use kube::ResourceExt;
use roster_connectors::lms::{CreateOutcome, LmsError, ProfilePatch, User, UserProfile};
use roster_lifecycle::sync::{Profile, SyncOp, SyncOutcome, SyncedField};

use super::SyncRequest;
use super::platform::{PlatformEffects, StepError};

impl PlatformEffects {
    pub(super) async fn run_sync(&self, request: SyncRequest<'_>) -> SyncOutcome {
        match self.sync_call(&request).await {
            Ok(outcome) => outcome,
            Err(error) => SyncOutcome::Failed {
                retry_after: error
                    .retry_after()
                    .and_then(|d| chrono::Duration::from_std(d).ok()),
                unreachable: error.unreachable(),
                error: error.to_string(),
            },
        }
    }

    async fn sync_call(&self, request: &SyncRequest<'_>) -> Result<SyncOutcome, StepError> {
        let c = self.connectors(request.tenant).await?;
        let lms = &c.lms;
        let tenant = request.tenant;
        let me = request.user.spec.employee_id.as_str();
        let key = request.action.idempotency_key.as_str();
        match &request.action.op {
            SyncOp::Provision(profile) => {
                let body = user_profile(profile);
                let created = self
                    .request(tenant, "lms", || lms.create_user(me, &body, key))
                    .await?;
                if created == CreateOutcome::Created {
                    return Ok(SyncOutcome::Done);
                }
                let existing = self.request(tenant, "lms", || lms.get_user(me)).await?;
                if existing.anonymized || existing.purged {
                    // Never re-provision someone the platform already deprovisioned: a
                    // returning person comes back through their DirectoryUser (rehire).
                    return Err(StepError::Config(
                        "the learning platform's account with this employee ID was anonymized by an earlier deprovisioning; roster does not adopt it (a returning person is rehired on their existing DirectoryUser)".into(),
                    ));
                }
                let uid = request.user.uid().unwrap_or_default();
                Ok(SyncOutcome::Adopted(held_profile(&existing).digests(&uid)))
            }
            SyncOp::Update(changes) => {
                let patch = profile_patch(changes);
                self.request(tenant, "lms", || lms.update_user(me, &patch, key))
                    .await?;
                Ok(SyncOutcome::Done)
            }
            SyncOp::AddToGroup(group) => {
                match self
                    .request(tenant, "lms", || lms.add_group_member(group, me, key))
                    .await
                {
                    Ok(()) => Ok(SyncOutcome::Done),
                    Err(LmsError::NotFound) => Err(StepError::Config(format!(
                        "group {group:?} does not exist at the learning platform (or the account is gone); create the group there or correct the Tenant's group rule"
                    ))),
                    Err(e) => Err(e.into()),
                }
            }
            SyncOp::RemoveFromGroup(group) => {
                self.request(tenant, "lms", || lms.remove_group_member(group, me, key))
                    .await?;
                Ok(SyncOutcome::Done)
            }
        }
    }
}

/// The contract's full profile for a new account.
fn user_profile(profile: &Profile) -> UserProfile {
    let text = |field| profile.get(field).map(str::to_string);
    UserProfile {
        full_name: text(SyncedField::FullName).unwrap_or_default(),
        email: text(SyncedField::Email).unwrap_or_default(),
        picture_url: text(SyncedField::PictureUrl),
        department: text(SyncedField::Department),
        title: text(SyncedField::Title),
        location: text(SyncedField::Location),
        manager_employee_id: text(SyncedField::Manager),
        hire_date: profile
            .get(SyncedField::HireDate)
            .and_then(|d| d.parse().ok()),
        termination_date: None,
    }
}

/// A merge patch of exactly the changed fields.
fn profile_patch(
    changes: &[(SyncedField, Option<roster_lifecycle::sync::Personal>)],
) -> ProfilePatch {
    let mut patch = ProfilePatch::default();
    for (field, value) in changes {
        let value = value.as_ref().map(|v| v.expose().to_string());
        match field {
            // Required at the platform: the core never clears them (the CRD requires them).
            SyncedField::FullName => patch.full_name = value,
            SyncedField::Email => patch.email = value,
            SyncedField::PictureUrl => patch.picture_url = Some(value),
            SyncedField::HireDate => {
                patch.hire_date = Some(value.and_then(|d| d.parse().ok()));
            }
            SyncedField::Department => patch.department = Some(value),
            SyncedField::Title => patch.title = Some(value),
            SyncedField::Location => patch.location = Some(value),
            SyncedField::Manager => patch.manager_employee_id = Some(value),
        }
    }
    patch
}

/// The profile an adopted account holds at the platform, in the core's terms.
fn held_profile(user: &User) -> Profile {
    let mut profile = Profile::default();
    let hire_date = user.hire_date.map(|d| d.to_string());
    profile.set(SyncedField::FullName, user.full_name.as_deref());
    profile.set(SyncedField::Email, user.email.as_deref());
    profile.set(SyncedField::PictureUrl, user.picture_url.as_deref());
    profile.set(SyncedField::HireDate, hire_date.as_deref());
    profile.set(SyncedField::Department, user.department.as_deref());
    profile.set(SyncedField::Title, user.title.as_deref());
    profile.set(SyncedField::Location, user.location.as_deref());
    profile.set(SyncedField::Manager, user.manager_employee_id.as_deref());
    profile
}
