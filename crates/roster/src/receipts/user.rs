//! The receipt of one person's purge, written once they are Purged and before their
//! record (DirectoryUser or Departure) goes; its name is then kept in their status.

use kube::ResourceExt;
use roster_api::{CalendarProvider, DirectoryUser, DirectoryUserStatus, Tenant};
use roster_lifecycle::erasure::{self, ReceiptFor, RecordHome};

use super::Covers;
use crate::controller::{Context, Error, Result};

/// Appends the person's receipt if they are purged and none is recorded yet; returns
/// its name. A crash after the append and before the name is recorded finds the same
/// receipt again (by the subject's UID), so none is written twice.
pub async fn for_purged(
    context: &Context,
    user: &DirectoryUser,
    tenant: &Tenant,
    status: &DirectoryUserStatus,
    home: RecordHome,
) -> Result<Option<String>> {
    if status.erasure_receipt.is_some() {
        return Ok(None);
    }
    let tenant_name = tenant.name_any();
    let tenant_uid = tenant.uid().unwrap_or_default();
    let subject_uid = user.uid().unwrap_or_default();
    // Cheap check first: most reconciles are of people who are not purged.
    if status.phase != roster_api::Phase::Purged {
        return Ok(None);
    }
    let key = super::signing_key(&context.client, tenant)
        .await
        .map_err(|e| Error::Receipts(e.to_string()))?;
    let Some(draft) = erasure::user_draft(
        ReceiptFor {
            tenant: &tenant_name,
            tenant_uid: &tenant_uid,
            key: key.as_ref().map(|(_, k)| &k[..]),
        },
        &user.spec.employee_id,
        &subject_uid,
        status,
        home,
        tenant.spec.calendar.provider != CalendarProvider::None,
    ) else {
        return Ok(None);
    };
    let namespace = user.namespace().ok_or(Error::MissingNamespace)?;
    match context
        .receipts
        .append(
            &context.client,
            &namespace,
            draft,
            Covers::Subject(&subject_uid),
            key.as_ref(),
        )
        .await
    {
        Ok(name) => Ok(Some(name)),
        // The namespace, receipts included, is being deleted: nothing to keep it for.
        Err(e) if e.namespace_terminating() => Ok(None),
        Err(e) => Err(Error::Receipts(e.to_string())),
    }
}
