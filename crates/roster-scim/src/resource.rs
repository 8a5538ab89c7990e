//! Canonical Users: what a client sends, made into one shape (and refused when it
//! cannot be), versions (ETags), and the projection of `attributes` and
//! `excludedAttributes`.
//!
//! The tolerances (PRODUCT.md, "Interop notes"), all applied here and nowhere else:
//! - attribute names in any case (`USERNAME`, `emails.VALUE`) take the schema's spelling;
//! - booleans sent as `"True"`/`"False"` (Entra ID) become booleans;
//! - a multi-valued attribute sent as one object (OneLogin's `emails`) or one value
//!   becomes a one-element array;
//! - a single-valued complex attribute sent as a string or a one-element array
//!   (Entra ID's `manager`: `"id"`, `{"value":"id"}` or `[{"value":"id"}]`) becomes
//!   the object;
//! - `null`, `""`, `[]` and `{}` mean "no value" (RFC 7643 §2.5) and are dropped;
//! - a number or boolean where the schema has a string (`employeeNumber: 1234`) is
//!   kept as its text.
//!
//! Refused with 400: a body that is not an object, unknown attributes and extension
//! schemas (`invalidSyntax`), values of the wrong type (`invalidValue`). Read-only
//! attributes a client sends (`id`, `meta`, `groups`, `schemas`) are ignored, as
//! RFC 7644 §3.5.1 says for PUT; `password` is never stored.
use chrono::DateTime;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ScimError;
use crate::schema::{self, Attr, ENTERPRISE_SCHEMA, Home, Mutability, Type, USER_SCHEMA};

/// A User in canonical form.
pub type Resource = Map<String, Value>;

/// Most values of one multi-valued attribute (`emails`, `phoneNumbers`, …) a User
/// may have (more: 400 `invalidValue`). Identity providers send a handful; the bound
/// keeps the duplicate checks, which compare each value with the others, cheap.
pub const MAX_VALUES: usize = 100;

/// Refuses a User whose multi-valued attributes hold more than [`MAX_VALUES`] values.
pub fn check_value_counts(res: &Resource) -> Result<(), ScimError> {
    let ext = res.get(ENTERPRISE_SCHEMA).and_then(Value::as_object);
    for (name, value) in res.iter().chain(ext.into_iter().flatten()) {
        if let Value::Array(items) = value
            && items.len() > MAX_VALUES
        {
            return Err(too_many_values(name));
        }
    }
    Ok(())
}

fn too_many_values(name: &str) -> ScimError {
    let name = crate::error::quoted_name(name);
    ScimError::invalid_value(format!("'{name}' may have at most {MAX_VALUES} values"))
}

/// Normalizes a client's User body (POST or PUT) into canonical form, without
/// `id` and `meta` (the service assigns those).
pub fn normalize_user(body: &Value) -> Result<Resource, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a User must be a JSON object"));
    };
    let mut out = Resource::new();
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
            match value {
                Value::Null => {}
                Value::Object(ext) => {
                    let mut ext_out = Map::new();
                    for (k, v) in ext {
                        if k.eq_ignore_ascii_case("schemas") {
                            continue;
                        }
                        let (_, attr) = schema::user_attr(Some(ENTERPRISE_SCHEMA), k)
                            .ok_or_else(|| unknown(k))?;
                        if let Some(v) = normalize_value(attr, v)? {
                            ext_out.insert(attr.name.to_string(), v);
                        }
                    }
                    if !ext_out.is_empty() {
                        out.insert(ENTERPRISE_SCHEMA.to_string(), Value::Object(ext_out));
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(
                        "the enterprise extension must be an object",
                    ));
                }
            }
            continue;
        }
        let Some((Home::Core, attr)) = schema::user_attr(Some(USER_SCHEMA), key) else {
            return Err(unknown(key));
        };
        if matches!(
            attr.mutability,
            Mutability::ReadOnly | Mutability::WriteOnly
        ) {
            continue;
        }
        if let Some(v) = normalize_value(attr, value)? {
            out.insert(attr.name.to_string(), v);
        }
    }
    set_schemas(&mut out);
    Ok(out)
}

fn unknown(key: &str) -> ScimError {
    // Attribute names are schema vocabulary, not personal data; what is not a name
    // is left out anyway.
    let key = crate::error::quoted_name(key);
    ScimError::invalid_syntax(format!("unknown attribute '{key}'"))
}

/// Checks what a stored User must have: a `userName`.
pub fn validate_user(res: &Resource) -> Result<(), ScimError> {
    match res.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        _ => Err(ScimError::invalid_value("userName is required")),
    }
}

/// Sets `schemas`: the core schema, and the enterprise extension when the User has it.
pub fn set_schemas(res: &mut Resource) {
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    if res.contains_key(ENTERPRISE_SCHEMA) {
        schemas.push(Value::from(ENTERPRISE_SCHEMA));
    }
    res.insert("schemas".into(), Value::Array(schemas));
}

/// Normalizes one attribute's value. `None` is "no value".
pub fn normalize_value(attr: &'static Attr, v: &Value) -> Result<Option<Value>, ScimError> {
    if attr.multi {
        let items: Vec<&Value> = match v {
            Value::Null => return Ok(None),
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        if items.len() > MAX_VALUES {
            return Err(too_many_values(attr.name));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(n) = normalize_single(attr, item)?
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    if attr.ty == Type::Complex
        && let Value::Array(a) = v
    {
        return match a.as_slice() {
            [] => Ok(None),
            [one] => normalize_single(attr, one),
            _ => Err(ScimError::invalid_value(format!(
                "'{}' takes one value, not a list",
                attr.name
            ))),
        };
    }
    normalize_single(attr, v)
}

fn normalize_single(attr: &'static Attr, v: &Value) -> Result<Option<Value>, ScimError> {
    let wrong =
        || ScimError::invalid_value(format!("'{}' must be of type {:?}", attr.name, attr.ty));
    Ok(match (attr.ty, v) {
        (_, Value::Null) => None,
        (Type::Complex, Value::Object(o)) => {
            let mut out = Map::new();
            for (k, sv) in o {
                let sub = attr
                    .sub_attr(k)
                    .ok_or_else(|| unknown(&format!("{}.{k}", attr.name)))?;
                if let Some(n) = normalize_single(sub, sv)? {
                    out.insert(sub.name.to_string(), n);
                }
            }
            if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        // A bare value for a complex attribute is its `value` (Entra's manager string,
        // a list of plain email strings).
        (Type::Complex, Value::String(_) | Value::Number(_))
            if attr.sub_attr("value").is_some() =>
        {
            let mut out = Map::new();
            if let Some(n) = normalize_single(attr.sub_attr("value").expect("checked"), v)? {
                out.insert("value".into(), n);
            }
            if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        (Type::Complex, _) => return Err(wrong()),
        (Type::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Some(Value::Bool(true))
        }
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Some(Value::Bool(false))
        }
        (Type::Boolean, _) => return Err(wrong()),
        (Type::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
        (Type::Decimal, Value::Number(_)) => Some(v.clone()),
        (Type::Integer | Type::Decimal, _) => return Err(wrong()),
        (_, Value::String(s)) if s.is_empty() => None,
        (Type::DateTime, Value::String(s)) => {
            DateTime::parse_from_rfc3339(s).map_err(|_| wrong())?;
            Some(v.clone())
        }
        (Type::String | Type::Reference | Type::Binary, Value::String(_)) => Some(v.clone()),
        // A number past 2^53 was rounded when it was read: its text would not be what
        // the client meant (an employee number losing digits), so it is refused.
        (Type::String, Value::Number(n))
            if n.as_f64()
                .is_some_and(|f| f.abs() >= 9.007_199_254_740_992e15)
                && n.is_f64() =>
        {
            return Err(ScimError::invalid_value(format!(
                "'{}' is a number too large to keep exactly; send it as a string",
                attr.name
            )));
        }
        (Type::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (Type::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        _ => return Err(wrong()),
    })
}

/// The version of a User (its weak ETag): a digest of its content without `meta`,
/// over sorted keys so that the same content always has the same version.
pub fn version(res: &Resource) -> String {
    fn feed(h: &mut Sha256, v: &Value) {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                h.update(b"{");
                for k in keys {
                    h.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                    h.update(b":");
                    feed(h, &o[k]);
                }
                h.update(b"}");
            }
            Value::Array(a) => {
                h.update(b"[");
                for x in a {
                    feed(h, x);
                    h.update(b",");
                }
                h.update(b"]");
            }
            other => h.update(other.to_string().as_bytes()),
        }
    }
    let mut h = Sha256::new();
    let mut content = res.clone();
    content.remove("meta");
    feed(&mut h, &Value::Object(content));
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether an `If-Match` header value admits a resource of version `current`
/// (`*`, or one of its comma-separated tags; weak comparison, RFC 9110 §13.1.1).
pub fn if_match(header: &str, current: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(current))
}

/// An attribute named in `attributes` or `excludedAttributes`: where it lives, the
/// attribute and the sub-attribute.
type Selected = (Home, &'static Attr, Option<&'static Attr>);

/// Applies `attributes` / `excludedAttributes` (comma-separated attribute paths,
/// RFC 7644 §3.4.2.5) to a User about to be returned. `id` and `schemas` are always
/// returned. Unknown attribute names are 400 `invalidPath`.
pub fn project(
    res: &Resource,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Resource, ScimError> {
    project_in(schema::Kind::User, res, attributes, excluded)
}

/// [`project`] for a resource of `kind`.
pub fn project_in(
    kind: schema::Kind,
    res: &Resource,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Resource, ScimError> {
    let parse = |list: &str| -> Result<Vec<Selected>, ScimError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|p| {
                let path = crate::filter::AttrPath::parse(p)
                    .map_err(|_| ScimError::invalid_path("attributes must be attribute paths"))?;
                let (home, attr) = schema::attr_of(kind, path.urn.as_deref(), &path.name)
                    .ok_or_else(|| {
                        ScimError::invalid_path(format!("unknown attribute '{path}'"))
                    })?;
                let sub = match &path.sub {
                    Some(s) => Some(attr.sub_attr(s).ok_or_else(|| {
                        ScimError::invalid_path(format!("unknown attribute '{path}'"))
                    })?),
                    None => None,
                };
                Ok((home, attr, sub))
            })
            .collect()
    };
    if let Some(list) = attributes.filter(|s| !s.trim().is_empty()) {
        let wanted = parse(list)?;
        let mut out = Resource::new();
        for key in ["id", "schemas"] {
            if let Some(v) = res.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        for (home, attr, sub) in wanted {
            let src = match home {
                Home::Core => Some(res),
                Home::Enterprise => res.get(ENTERPRISE_SCHEMA).and_then(Value::as_object),
            };
            let Some(value) = src.and_then(|m| m.get(attr.name)) else {
                continue;
            };
            let picked = match sub {
                None => value.clone(),
                Some(sub) => match value {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|i| match i.get(sub.name) {
                                Some(v) => serde_json::json!({ sub.name: v }),
                                None => Value::Object(Map::new()),
                            })
                            .collect(),
                    ),
                    Value::Object(o) => match o.get(sub.name) {
                        Some(v) => serde_json::json!({ sub.name: v }),
                        None => continue,
                    },
                    _ => continue,
                },
            };
            let dst = match home {
                Home::Core => &mut out,
                Home::Enterprise => out
                    .entry(ENTERPRISE_SCHEMA)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("an object"),
            };
            merge_into(dst, attr.name, picked);
        }
        // Elements that had none of the requested sub-attributes.
        for v in out.values_mut() {
            if let Value::Array(items) = v {
                items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
            }
        }
        return Ok(out);
    }
    let mut out = res.clone();
    if let Some(list) = excluded.filter(|s| !s.trim().is_empty()) {
        for (home, attr, sub) in parse(list)? {
            if attr.name == "id" || attr.name == "schemas" {
                continue;
            }
            let dst = match home {
                Home::Core => Some(&mut out),
                Home::Enterprise => out
                    .get_mut(ENTERPRISE_SCHEMA)
                    .and_then(Value::as_object_mut),
            };
            let Some(dst) = dst else { continue };
            match sub {
                None => {
                    dst.remove(attr.name);
                }
                Some(sub) => match dst.get_mut(attr.name) {
                    Some(Value::Array(items)) => items
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(|i| {
                            i.remove(sub.name);
                        }),
                    Some(Value::Object(o)) => {
                        o.remove(sub.name);
                    }
                    _ => {}
                },
            }
        }
    }
    Ok(out)
}

fn merge_into(dst: &mut Map<String, Value>, key: &str, value: Value) {
    match (dst.get_mut(key), value) {
        (Some(Value::Object(a)), Value::Object(b)) => a.extend(b),
        (Some(Value::Array(a)), Value::Array(b)) => {
            for (x, y) in a.iter_mut().zip(b) {
                if let (Value::Object(x), Value::Object(y)) = (x, y) {
                    x.extend(y);
                }
            }
        }
        (_, value) => {
            dst.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests;
