//! SCIM Groups (RFC 7643 §4.2): canonical Group resources, a Group's PATCH, and its
//! members.
//!
//! A Group is stored without its members: a member is a User whose DirectoryUser
//! `spec.groups` names the Group's `displayName`, so the Tenant's group rules see
//! memberships where they see every other field, and a Group's members are a lookup
//! ([`crate::store::Index::Group`]), not a list that can drift from the Users. This
//! module only computes; the HTTP layer writes the Users whose membership changed.
//!
//! Tolerances: `op` in any case; Okta's path-less `replace` with `id` and
//! `displayName`; Entra ID's `Remove` of `members` with a `value` list, and
//! `members[value eq "…"]` paths; `type: "User"` on members (nested Groups are refused:
//! roster's members are people).
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::ScimError;
use crate::filter::Filter;
use crate::resource::Resource;
use crate::schema::{self, GROUP_SCHEMA, PATCH_OP_SCHEMA};

/// Longest `displayName` (the DirectoryGroup's and the DirectoryUser's limit).
pub const MAX_DISPLAY_NAME: usize = 256;
/// Most members one request may name.
pub const MAX_MEMBERS: usize = 10_000;

/// A Group's members by id, each as its element (`value`, and `$ref`, `type`,
/// `display` as the client sent them).
pub type Members = BTreeMap<String, Value>;

/// One SCIM Group as stored: its canonical resource (with `id` and `meta`, without
/// `members`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRecord {
    pub id: String,
    pub resource: Resource,
}

impl GroupRecord {
    pub fn display_name(&self) -> &str {
        self.resource
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A Group body (POST, PUT) in canonical form, and the member ids it names.
pub fn normalize(body: &Value) -> Result<(Resource, Members), ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a Group must be a JSON object"));
    };
    let mut res = Resource::new();
    let mut members = Members::new();
    for (key, value) in body {
        match key.to_ascii_lowercase().as_str() {
            // Read-only (RFC 7644 §3.5.1: ignored in a PUT, and in a POST).
            "schemas" | "id" | "meta" => {}
            "displayname" => set_text(&mut res, "displayName", value)?,
            "externalid" => set_text(&mut res, "externalId", value)?,
            "members" => members = members_in(value)?,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "unknown Group attribute '{}'",
                    crate::error::quoted_name(key)
                )));
            }
        }
    }
    validate(&res)?;
    res.insert("schemas".into(), json!([GROUP_SCHEMA]));
    Ok((res, members))
}

/// Every Group has a displayName that fits.
pub fn validate(res: &Resource) -> Result<(), ScimError> {
    match res.get("displayName").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => Ok(()),
        _ => Err(ScimError::invalid_value("a Group needs a displayName")),
    }
}

fn set_text(res: &mut Resource, name: &str, value: &Value) -> Result<(), ScimError> {
    match value {
        Value::Null => {
            res.remove(name);
            Ok(())
        }
        Value::String(s) if s.chars().count() <= MAX_DISPLAY_NAME => {
            res.insert(name.into(), Value::String(s.clone()));
            Ok(())
        }
        Value::String(_) => Err(ScimError::invalid_value(format!(
            "{name} is longer than {MAX_DISPLAY_NAME} characters"
        ))),
        _ => Err(ScimError::invalid_value(format!("{name} must be a string"))),
    }
}

/// The elements of a `members` value (a list of `{"value": id, ...}`, or one such
/// object), by id, in canonical spelling.
fn members_in(value: &Value) -> Result<Members, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => vec![],
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id}",
            ));
        }
    };
    if items.len() > MAX_MEMBERS {
        return Err(ScimError::bad(
            crate::ScimType::TooMany,
            format!("at most {MAX_MEMBERS} members per request"),
        ));
    }
    let mut members = Members::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(ScimError::invalid_value("a member must be {\"value\": id}"));
        };
        let mut element = Map::new();
        for (key, v) in m {
            let canonical = match key.to_ascii_lowercase().as_str() {
                "value" => "value",
                "$ref" => "$ref",
                "type" => "type",
                "display" => "display",
                _ => {
                    return Err(ScimError::invalid_syntax(format!(
                        "unknown member attribute '{}'",
                        crate::error::quoted_name(key)
                    )));
                }
            };
            match v {
                Value::String(text) => {
                    element.insert(canonical.into(), Value::String(text.clone()));
                }
                Value::Null => {}
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "a member's {canonical} must be a string"
                    )));
                }
            }
        }
        if element
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
        {
            return Err(ScimError::invalid_value(
                "only Users can be members (nested Groups are not supported)",
            ));
        }
        let id = element
            .get("value")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ScimError::invalid_value("a member needs a value (the User's id)"))?;
        members.insert(id, Value::Object(element));
    }
    Ok(members)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies a PatchOp to a Group and its members, all or nothing. Returns the new
/// resource and member ids.
pub fn patch(
    res: &Resource,
    members: &Members,
    body: &Value,
) -> Result<(Resource, Members), ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a PatchOp must be a JSON object"));
    };
    let get = |m: &Map<String, Value>, name: &str| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if let Some(schemas) = get(body, "schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(PATCH_OP_SCHEMA)));
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "a PatchOp's schemas must list {PATCH_OP_SCHEMA}"
            )));
        }
    }
    let Some(Value::Array(ops)) = get(body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "a PatchOp needs an Operations list",
        ));
    };
    if ops.len() > crate::patch::MAX_OPERATIONS {
        return Err(ScimError::bad(
            crate::ScimType::TooMany,
            format!("at most {} operations", crate::patch::MAX_OPERATIONS),
        ));
    }
    let mut work = res.clone();
    let mut now = members.clone();
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(op) = op else {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i} is not an object"
            )));
        };
        let kind = match get(op, "op")
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        {
            Some(o) if o == "add" => Op::Add,
            Some(o) if o == "replace" => Op::Replace,
            Some(o) if o == "remove" => Op::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: op must be add, replace or remove"
                )));
            }
        };
        let value = get(op, "value");
        let path = get(op, "path").and_then(|p| p.as_str().map(str::trim).map(str::to_string));
        match path.as_deref().filter(|p| !p.is_empty()) {
            None => {
                let (Op::Add | Op::Replace) = kind else {
                    return Err(ScimError::no_target(format!(
                        "operation {i}: a remove needs a path"
                    )));
                };
                let Some(Value::Object(fields)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "operation {i}: a path-less {} needs an object value",
                        if kind == Op::Add { "add" } else { "replace" }
                    )));
                };
                for (key, v) in &fields {
                    match key.to_ascii_lowercase().as_str() {
                        // Okta sends the id along with the new displayName.
                        "id" | "schemas" | "meta" => {}
                        _ => run(&mut work, &mut now, kind, key, Some(v.clone()), i)?,
                    }
                }
            }
            Some(path) => run(&mut work, &mut now, kind, path, value, i)?,
        }
    }
    validate(&work)?;
    Ok((work, now))
}

fn run(
    work: &mut Resource,
    members: &mut Members,
    kind: Op,
    path: &str,
    value: Option<Value>,
    i: usize,
) -> Result<(), ScimError> {
    let path = path
        .strip_prefix(GROUP_SCHEMA)
        .map(|p| p.trim_start_matches(':'))
        .unwrap_or(path);
    if let Some(inner) = path
        .strip_prefix("members[")
        .or_else(|| path.strip_prefix("Members["))
        .and_then(|p| p.strip_suffix(']'))
    {
        // `members[value eq "id"]`: only a remove makes sense (RFC 7644 §3.5.2.2).
        if kind != Op::Remove {
            return Err(ScimError::invalid_path(format!(
                "operation {i}: members[...] can only be removed"
            )));
        }
        let filter = Filter::parse(inner)?;
        let attr = schema::group_attr(None, "members")
            .map(|(_, a)| a)
            .ok_or_else(|| ScimError::invalid_path("members"))?;
        filter.check(schema::Kind::Group, Some(attr))?;
        members.retain(|_, element| {
            !element
                .as_object()
                .is_some_and(|el| filter.matches_element(el, attr))
        });
        return Ok(());
    }
    match (path.to_ascii_lowercase().as_str(), kind) {
        ("displayname", Op::Add | Op::Replace) => {
            set_text(work, "displayName", &value.unwrap_or(Value::Null))
        }
        ("displayname", Op::Remove) => Err(ScimError::mutability(format!(
            "operation {i}: displayName is required and cannot be removed"
        ))),
        ("externalid", Op::Add | Op::Replace) => {
            set_text(work, "externalId", &value.unwrap_or(Value::Null))
        }
        ("externalid", Op::Remove) => {
            work.remove("externalId");
            Ok(())
        }
        ("members", Op::Add) => {
            members.extend(members_in(&value.unwrap_or(Value::Null))?);
            Ok(())
        }
        ("members", Op::Replace) => {
            *members = members_in(&value.unwrap_or(Value::Null))?;
            Ok(())
        }
        ("members", Op::Remove) => {
            match value {
                // Entra ID: remove these members.
                Some(v) if !v.is_null() => {
                    for id in members_in(&v)?.keys() {
                        members.remove(id);
                    }
                }
                None | Some(_) => members.clear(),
            }
            Ok(())
        }
        ("id" | "meta" | "schemas", _) => Err(ScimError::mutability(format!(
            "operation {i}: '{path}' is read-only"
        ))),
        _ => Err(ScimError::invalid_path(format!(
            "operation {i}: unknown Group attribute '{}'",
            crate::error::quoted_name(path)
        ))),
    }
}

/// The members a Group names that are not Users (yet): kept with the Group, as
/// `members` of its stored resource, until a User with that id is created (identity
/// providers may add a member before they create it; RFC 7644 does not ask a server
/// to refuse that).
pub fn pending(res: &Resource) -> Members {
    res.get("members")
        .and_then(|m| members_in(m).ok())
        .unwrap_or_default()
}

/// Sets the pending members of a stored Group resource.
pub fn set_pending(res: &mut Resource, pending: &Members) {
    if pending.is_empty() {
        res.remove("members");
    } else {
        res.insert("members".into(), pending.values().cloned().collect());
    }
}

/// A User's element in a Group's `members`.
pub fn user_member(id: &str, base: &str) -> Value {
    json!({"value": id, "type": "User", "$ref": format!("{base}/Users/{id}")})
}

/// The Group as returned: its members (the Users in it and the pending ones, sorted
/// ids), `meta.location` and `meta.version`.
pub fn render(record: &GroupRecord, users: &[String], base: &str) -> Resource {
    let mut res = record.resource.clone();
    let mut members = pending(&record.resource);
    for id in users {
        members.insert(id.clone(), user_member(id, base));
    }
    if members.is_empty() {
        res.remove("members");
    } else {
        res.insert("members".into(), members.into_values().collect());
    }
    let version = version(&record.resource, users);
    if let Some(Value::Object(meta)) = res.get_mut("meta") {
        meta.insert(
            "location".into(),
            Value::String(format!("{base}/Groups/{}", record.id)),
        );
        meta.insert("version".into(), Value::String(version));
    }
    res
}

/// The Group's version: its content and its members, so that a membership change
/// is a new ETag.
pub fn version(res: &Resource, members: &[String]) -> String {
    let mut content = res.clone();
    content.insert("members".into(), json!(members));
    crate::resource::version(&content)
}

#[cfg(test)]
mod tests;
