//! SCIM User ⇄ DirectoryUserSpec.
//!
//! | DirectoryUser      | from the SCIM User                                                        |
//! |--------------------|---------------------------------------------------------------------------|
//! | `employeeID`       | enterprise `employeeNumber`; without one, `scim-` and a digest of `externalId` (else of the SCIM `id`): never a name or an email |
//! | `fullName`         | `name.formatted`, else `name.givenName` + `name.familyName`, else `displayName`, else `userName` |
//! | `email`            | the primary email, else the `work` one, else the first, else an email-shaped `userName` |
//! | `pictureURL`       | the primary (else first) http(s) photo                                    |
//! | `title`            | `title`                                                                   |
//! | `department`       | enterprise `department`                                                   |
//! | `location`         | `locality` of the `work` (else primary, else first) address               |
//! | `managerEmail`     | the email of the user whose SCIM `id` is enterprise `manager.value`, resolved by the caller (the manager may arrive after their reports: the caller keeps [`Mapped::manager_id`] and resolves again later) |
//! | `active`           | `active` (absent: true)                                                   |
//! | `source`           | `SCIM`                                                                    |
//!
//! Errors never carry a value: only which attribute was unusable.
use roster_api::tenant::LocalObjectRef;
use roster_api::{DirectoryUserSpec, RecordSource};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ScimError;
use crate::resource::Resource;
use crate::schema::ENTERPRISE_SCHEMA;

/// A DirectoryUser spec made from a SCIM User, and what the caller must resolve.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub spec: DirectoryUserSpec,
    /// The manager's SCIM `id` (enterprise `manager.value`), when the User names one.
    pub manager_id: Option<String>,
}

fn str_at<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v?.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn ext(res: &Resource) -> Option<&Value> {
    res.get(ENTERPRISE_SCHEMA)
}

/// Whether `id` is a valid DirectoryUser `employeeID` (the CRD's rule).
pub fn valid_employee_id(id: &str) -> bool {
    let mut chars = id.chars();
    (1..=64).contains(&id.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn digest(s: &str, hex_len: usize) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..hex_len]
        .to_string()
}

/// What a stored User already has: its DirectoryUser's employee ID (immutable there)
/// and the `employeeNumber` its SCIM record had.
#[derive(Clone, Copy, Debug)]
pub struct Existing<'a> {
    pub employee_id: &'a str,
    pub employee_number: Option<&'a str>,
}

/// The enterprise `employeeNumber` of a User.
pub fn employee_number(res: &Resource) -> Option<&str> {
    str_at(ext(res), "employeeNumber")
}

/// The employee ID of a SCIM User. A new User takes its `employeeNumber`, else a
/// digest of its `externalId`, else of `seed`. A stored User keeps the ID it has, so
/// an `employeeNumber` that *is* the employee ID cannot change (`400 mutability`;
/// `/Schemas` calls it immutable); on a User created without one, `employeeNumber`
/// is plain data that may be set and changed, and the employee ID stays the digest.
pub fn employee_id(
    res: &Resource,
    seed: &str,
    existing: Option<Existing<'_>>,
) -> Result<String, ScimError> {
    let number = employee_number(res);
    if let Some(n) = number
        && !valid_employee_id(n)
    {
        return Err(ScimError::invalid_value(
            "employeeNumber must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    match (existing, number) {
        (
            Some(Existing {
                employee_id,
                employee_number: Some(p),
            }),
            Some(n),
        ) if p != n && p == employee_id => Err(ScimError::mutability(
            "employeeNumber is immutable: it is the person's employee ID in roster",
        )),
        (Some(e), _) => Ok(e.employee_id.to_string()),
        (None, Some(n)) => Ok(n.to_string()),
        (None, None) => {
            let seed = res
                .get("externalId")
                .and_then(Value::as_str)
                .unwrap_or(seed);
            Ok(format!("scim-{}", digest(seed, 24)))
        }
    }
}

pub use roster_api::directory_user::object_name;

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.contains(' ')
        && domain
            .split_once('.')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && s.len() <= 254
}

/// The element of a multi-valued attribute roster uses: the primary, else the one of
/// `preferred_type`, else the first.
fn pick<'a>(res: &'a Resource, attr: &str, preferred_type: Option<&str>) -> Option<&'a Value> {
    let items = res.get(attr)?.as_array()?;
    items
        .iter()
        .find(|i| i.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| {
            preferred_type.and_then(|t| {
                items.iter().find(|i| {
                    i.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(t))
                })
            })
        })
        .or_else(|| items.first())
}

fn bounded(value: Option<&str>, max: usize, attr: &str) -> Result<Option<String>, ScimError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ScimError::invalid_value(format!(
            "{attr} is longer than {max} characters"
        ))),
        Some(v) => Ok(Some(v.to_string())),
        None => Ok(None),
    }
}

/// Maps a canonical User to a DirectoryUser spec of `tenant`. `manager_email` looks up
/// the email of the user with a SCIM id (None when not known yet).
pub fn to_directory_user(
    res: &Resource,
    tenant: &str,
    employee_id: String,
    manager_email: impl Fn(&str) -> Option<String>,
) -> Result<Mapped, ScimError> {
    let name = res.get("name");
    let joined = {
        let parts: Vec<&str> = [str_at(name, "givenName"), str_at(name, "familyName")]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join(" "))
        }
    };
    let user_name = res.get("userName").and_then(Value::as_str).map(str::trim);
    let full_name = str_at(name, "formatted")
        .map(str::to_string)
        .or(joined)
        .or_else(|| {
            res.get("displayName")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| user_name.map(str::to_string))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ScimError::invalid_value("a User needs a name, a displayName or a userName")
        })?;
    let full_name = bounded(Some(&full_name), 256, "the full name")?.expect("some");
    let email = pick(res, "emails", Some("work"))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .or(user_name.filter(|u| looks_like_email(u)))
        .filter(|e| looks_like_email(e))
        .ok_or_else(|| {
            ScimError::invalid_value(
                "a User needs an email address: emails, or a userName that is one",
            )
        })?
        .to_string();
    let picture_url = res
        .get("photos")
        .and_then(Value::as_array)
        .and_then(|photos| {
            photos
                .iter()
                .filter_map(|p| p.get("value").and_then(Value::as_str))
                .find(|u| {
                    (u.starts_with("https://") || u.starts_with("http://"))
                        && !u.contains(' ')
                        && u.len() <= 2048
                })
        })
        .map(str::to_string);
    let location = pick(res, "addresses", Some("work"))
        .and_then(|a| a.get("locality"))
        .and_then(Value::as_str);
    let manager_id = ext(res)
        .and_then(|e| e.get("manager"))
        .and_then(|m| m.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let manager_email = manager_id
        .as_deref()
        .and_then(&manager_email)
        .filter(|e| looks_like_email(e));
    let spec = DirectoryUserSpec {
        tenant_ref: LocalObjectRef {
            name: tenant.to_string(),
        },
        employee_id,
        full_name,
        email,
        picture_url,
        hire_date: None,
        termination_date: None,
        department: bounded(str_at(ext(res), "department"), 256, "department")?,
        title: bounded(res.get("title").and_then(Value::as_str), 256, "title")?,
        location: bounded(location, 256, "the work address's locality")?,
        manager_email,
        active: res.get("active").and_then(Value::as_bool).unwrap_or(true),
        source: RecordSource::Scim,
        // Memberships are written through /Groups, never through the User.
        groups: Vec::new(),
    };
    Ok(Mapped { spec, manager_id })
}

/// A SCIM User (canonical, without `id` and `meta`) for a DirectoryUser that SCIM did
/// not write (applied by hand or from Git), so that an identity provider looking for
/// the person by `userName` finds them instead of creating a duplicate.
pub fn from_directory_user(spec: &DirectoryUserSpec) -> Resource {
    let mut res = json!({
        "userName": spec.email,
        "name": {"formatted": spec.full_name},
        "displayName": spec.full_name,
        "active": spec.active,
        "emails": [{"value": spec.email, "type": "work", "primary": true}],
        ENTERPRISE_SCHEMA: {"employeeNumber": spec.employee_id},
    });
    if let Some(t) = &spec.title {
        res["title"] = json!(t);
    }
    if let Some(d) = &spec.department {
        res[ENTERPRISE_SCHEMA]["department"] = json!(d);
    }
    if let Some(l) = &spec.location {
        res["addresses"] = json!([{"type": "work", "locality": l}]);
    }
    if let Some(p) = &spec.picture_url {
        res["photos"] = json!([{"value": p, "type": "photo", "primary": true}]);
    }
    let mut res = res.as_object().expect("an object").clone();
    crate::resource::set_schemas(&mut res);
    res
}

#[cfg(test)]
mod tests;
