//! RFC 7644 §3.5.2 PATCH on a canonical User, all or nothing: the operations run on a
//! copy, and the copy is returned only if every operation, and the validation of the
//! result, succeeded.
//!
//! Tolerances (PRODUCT.md, "Interop notes"):
//! - `op` in any case (Entra ID's `Replace`, `Add`, `Remove`);
//! - a path-less `add`/`replace` whose value's keys are themselves paths — plain
//!   (`active`), dotted (`name.givenName`), full URN
//!   (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`) or
//!   with a value filter (`emails[type eq "work"].value`): Okta's deactivation and
//!   Entra ID's merged replaces (with and without `aadOptscim062020`);
//! - `null` as a value of `replace` removes the attribute; read-only attributes inside a
//!   path-less value (`id`, `meta`) are ignored as in a PUT;
//! - a value filter of `eq`s that matches no element (`emails[type eq "work"].value`
//!   on a user without a work email) creates the element, which is what Entra ID
//!   expects from both `Add` and `Replace`;
//! - `remove` of a multi-valued attribute with a `value` removes just those elements.
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::resource::{self, Resource, normalize_value};
use crate::schema::{self, Attr, ENTERPRISE_SCHEMA, Home, Mutability, PATCH_OP_SCHEMA, Type};

/// Most operations in one request (more: 400 `tooMany`).
pub const MAX_OPERATIONS: usize = 1000;
/// Longest `path` of an operation, in bytes, value filter included (longer: 400
/// `invalidPath`).
pub const MAX_PATH_BYTES: usize = crate::filter::MAX_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// A PATCH target: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
struct Target {
    home: Home,
    attr: &'static Attr,
    filter: Option<Filter>,
    sub: Option<&'static Attr>,
}

fn parse_target(path: &str) -> Result<Target, ScimError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(ScimError::invalid_path(format!(
            "a path may be at most {MAX_PATH_BYTES} bytes long"
        )));
    }
    let invalid = || {
        ScimError::invalid_path(
            "a path must be [urn:]attribute[.subAttribute] or attribute[filter][.subAttribute]",
        )
    };
    let (attr_text, filter, sub_text) = match path.find('[') {
        None => (path, None, None),
        Some(open) => {
            let close = path.rfind(']').filter(|&c| c > open).ok_or_else(invalid)?;
            let rest = &path[close + 1..];
            let sub = match rest {
                "" => None,
                r if r.starts_with('.') && r.len() > 1 => Some(&r[1..]),
                _ => return Err(invalid()),
            };
            (
                &path[..open],
                Some(Filter::parse(&path[open + 1..close])?),
                sub,
            )
        }
    };
    let p = AttrPath::parse(attr_text.trim()).map_err(|_| invalid())?;
    let unknown = || ScimError::invalid_path(format!("unknown attribute '{p}'"));
    let (home, attr) = schema::user_attr(p.urn.as_deref(), &p.name).ok_or_else(unknown)?;
    if filter.is_some() && p.sub.is_some() {
        return Err(invalid());
    }
    let sub_name = p.sub.as_deref().or(sub_text);
    let sub = match sub_name {
        Some(s) => Some(attr.sub_attr(s).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "unknown attribute '{p}.{}'",
                crate::error::quoted_name(s)
            ))
        })?),
        None => None,
    };
    if let Some(f) = &filter {
        if !(attr.multi && attr.ty == Type::Complex) {
            return Err(ScimError::invalid_path(format!(
                "'{p}' is not a multi-valued complex attribute"
            )));
        }
        f.check(crate::schema::Kind::User, Some(attr))?;
    }
    if sub.is_some() && attr.ty != Type::Complex {
        return Err(unknown());
    }
    Ok(Target {
        home,
        attr,
        filter,
        sub,
    })
}

/// Applies a PatchOp body to a User. Returns the new User, or the first error (and
/// then nothing changed).
pub fn apply(res: &Resource, body: &Value) -> Result<Resource, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a PatchOp must be a JSON object"));
    };
    let get = |name: &str| {
        body.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(schemas) = get("schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {PATCH_OP_SCHEMA}"
            )));
        }
    }
    let ops = match get("Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "Operations must be a non-empty list",
            ));
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::bad(
            crate::ScimType::TooMany,
            format!("at most {MAX_OPERATIONS} operations per request"),
        ));
    }
    let mut work = res.clone();
    for (i, operation) in ops.iter().enumerate() {
        let Value::Object(operation) = operation else {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i} must be an object"
            )));
        };
        let field = |name: &str| {
            operation
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let op = match field("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: op must be add, replace or remove"
                )));
            }
        };
        let value = field("value").unwrap_or(&Value::Null);
        match field("path") {
            None | Some(Value::Null) => pathless(&mut work, op, value, i)?,
            Some(Value::String(p)) if p.trim().is_empty() => pathless(&mut work, op, value, i)?,
            Some(Value::String(p)) if p.trim().eq_ignore_ascii_case(ENTERPRISE_SCHEMA) => {
                // The extension as a whole: removed, or its attributes set one by one.
                match op {
                    Op::Remove => {
                        work.remove(ENTERPRISE_SCHEMA);
                    }
                    _ => pathless(
                        &mut work,
                        op,
                        &serde_json::json!({ ENTERPRISE_SCHEMA: value }),
                        i,
                    )?,
                }
            }
            Some(Value::String(p)) => {
                let target = parse_target(p.trim())?;
                if target.attr.mutability == Mutability::ReadOnly
                    || target
                        .sub
                        .is_some_and(|s| s.mutability == Mutability::ReadOnly)
                {
                    return Err(ScimError::mutability(format!(
                        "operation {i}: '{}' is read-only",
                        target.attr.name
                    )));
                }
                if op == Op::Add && value.is_null() {
                    return Err(ScimError::invalid_value(format!(
                        "operation {i}: add needs a value"
                    )));
                }
                run(&mut work, op, &target, value)?;
            }
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "operation {i}: path must be a string"
                )));
            }
        }
        // Each operation may add values: the lists stay bounded as they grow, so
        // that the next operation's work on them is bounded too.
        resource::check_value_counts(&work)?;
    }
    tidy(&mut work);
    resource::validate_user(&work)?;
    resource::set_schemas(&mut work);
    Ok(work)
}

/// A path-less add or replace: each key of the value is a path of its own.
fn pathless(work: &mut Resource, op: Op, value: &Value, i: usize) -> Result<(), ScimError> {
    if op == Op::Remove {
        return Err(ScimError::no_target(format!(
            "operation {i}: remove needs a path"
        )));
    }
    let Value::Object(value) = value else {
        return Err(ScimError::invalid_value(
            format!("operation {i}: a path-less {op:?} needs an object value").to_lowercase(),
        ));
    };
    for (key, v) in value {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
            let Value::Object(ext) = v else {
                if v.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(
                    "the enterprise extension must be an object",
                ));
            };
            for (k, sv) in ext {
                if k.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let target = parse_target(&format!("{ENTERPRISE_SCHEMA}:{k}"))?;
                run(work, op, &target, sv)?;
            }
            continue;
        }
        let target = parse_target(key)?;
        if matches!(
            target.attr.mutability,
            Mutability::ReadOnly | Mutability::WriteOnly
        ) {
            // As in a PUT: read-only attributes a client echoes back are ignored.
            continue;
        }
        run(work, op, &target, v)?;
    }
    Ok(())
}

fn container(work: &mut Resource, home: Home) -> &mut Map<String, Value> {
    match home {
        Home::Core => work,
        Home::Enterprise => work
            .entry(ENTERPRISE_SCHEMA)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("the enterprise extension is an object in canonical form"),
    }
}

fn run(work: &mut Resource, op: Op, t: &Target, value: &Value) -> Result<(), ScimError> {
    if t.attr.mutability == Mutability::WriteOnly {
        return Ok(()); // password: never stored
    }
    let attr = t.attr;
    let map = container(work, t.home);
    match (&t.filter, t.sub) {
        // attr
        (None, None) => {
            let new = normalize_value(attr, value)?;
            match (op, new) {
                (Op::Remove, _) => remove_values(map, attr, value)?,
                (Op::Add | Op::Replace, None) => {
                    if op == Op::Replace {
                        map.remove(attr.name);
                    }
                }
                (Op::Add, Some(Value::Array(items))) => {
                    let entry = map.entry(attr.name).or_insert_with(|| Value::Array(vec![]));
                    let list = entry.as_array_mut().expect("multi-valued is an array");
                    for item in items {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                    demote_primaries(list);
                }
                (_, Some(Value::Object(subs))) if !attr.multi => {
                    // A complex attribute: the given sub-attributes replace or add, the
                    // others stay (RFC 7644 §3.5.2.1, §3.5.2.3).
                    let entry = map
                        .entry(attr.name)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(existing) = entry {
                        existing.extend(subs);
                    }
                    if let Value::Object(raw) = value {
                        // Explicit nulls remove those sub-attributes.
                        for (k, v) in raw {
                            if (v.is_null() || v == "")
                                && let (Some(sub), Some(Value::Object(existing))) =
                                    (attr.sub_attr(k), map.get_mut(attr.name))
                            {
                                existing.remove(sub.name);
                            }
                        }
                    }
                }
                (_, Some(mut v)) => {
                    if let Value::Array(list) = &mut v {
                        demote_primaries(list);
                    }
                    map.insert(attr.name.to_string(), v);
                }
            }
        }
        // attr.sub (every element of a multi-valued attribute)
        (None, Some(sub)) => {
            let new = if op == Op::Remove {
                None
            } else {
                normalize_value(sub, value)?
            };
            if attr.multi {
                let list = map.entry(attr.name).or_insert_with(|| Value::Array(vec![]));
                let list = list.as_array_mut().expect("multi-valued is an array");
                if list.is_empty() && new.is_some() {
                    list.push(Value::Object(Map::new()));
                }
                for el in list.iter_mut().filter_map(Value::as_object_mut) {
                    set_sub(el, sub, new.clone());
                }
            } else {
                let el = map
                    .entry(attr.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(el) = el {
                    set_sub(el, sub, new);
                }
            }
        }
        // attr[filter] and attr[filter].sub
        (Some(filter), sub) => {
            let list = map.entry(attr.name).or_insert_with(|| Value::Array(vec![]));
            let list = list.as_array_mut().expect("multi-valued is an array");
            let matched: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, el)| {
                    el.as_object()
                        .is_some_and(|el| filter.matches_element(el, attr))
                })
                .map(|(i, _)| i)
                .collect();
            if op == Op::Remove {
                for &i in matched.iter().rev() {
                    match sub {
                        None => {
                            list.remove(i);
                        }
                        Some(sub) => {
                            if let Some(el) = list[i].as_object_mut() {
                                el.remove(sub.name);
                            }
                        }
                    }
                }
                return Ok(());
            }
            let new = match sub {
                Some(sub) => normalize_value(sub, value)?,
                None => normalize_value(attr, value)?.and_then(|v| match v {
                    Value::Array(mut a) if a.len() == 1 => a.pop(),
                    other => Some(other),
                }),
            };
            if matched.is_empty() {
                let Some(mut el) = eq_template(filter, attr) else {
                    return Err(ScimError::no_target(format!(
                        "no value of '{}' matches the path's filter",
                        attr.name
                    )));
                };
                match (sub, new) {
                    (_, None) => return Ok(()),
                    (Some(sub), Some(v)) => {
                        el.insert(sub.name.to_string(), v);
                    }
                    (None, Some(Value::Object(o))) => el.extend(o),
                    (None, Some(_)) => {
                        return Err(ScimError::invalid_value(format!(
                            "'{}' takes objects",
                            attr.name
                        )));
                    }
                }
                list.push(Value::Object(el));
            } else {
                for &i in &matched {
                    let Some(el) = list[i].as_object_mut() else {
                        continue;
                    };
                    match (sub, &new, op) {
                        (Some(sub), v, _) => set_sub(el, sub, v.clone()),
                        (None, Some(Value::Object(o)), Op::Add) => el.extend(o.clone()),
                        (None, Some(Value::Object(o)), _) => *el = o.clone(),
                        (None, None, _) => el.clear(),
                        (None, Some(_), _) => {
                            return Err(ScimError::invalid_value(format!(
                                "'{}' takes objects",
                                attr.name
                            )));
                        }
                    }
                }
                list.retain(|el| el.as_object().is_none_or(|o| !o.is_empty()));
            }
            demote_primaries(list);
        }
    }
    Ok(())
}

fn set_sub(el: &mut Map<String, Value>, sub: &Attr, v: Option<Value>) {
    match v {
        Some(v) => {
            el.insert(sub.name.to_string(), v);
        }
        None => {
            el.remove(sub.name);
        }
    }
}

/// `remove` of an attribute: all of it, or, with a value, just the matching elements
/// of a multi-valued attribute (compared by `value`, without regard to case where the
/// schema says so).
fn remove_values(
    map: &mut Map<String, Value>,
    attr: &'static Attr,
    value: &Value,
) -> Result<(), ScimError> {
    if !attr.multi || value.is_null() {
        map.remove(attr.name);
        return Ok(());
    }
    let Some(Value::Array(gone)) = normalize_value(attr, value)? else {
        return Ok(());
    };
    let key = |v: &Value| -> Option<String> {
        let s = v.get("value").and_then(Value::as_str)?;
        let folds = attr.sub_attr("value").is_some_and(Attr::folds_case);
        Some(if folds {
            s.to_lowercase()
        } else {
            s.to_string()
        })
    };
    let gone: Vec<Option<String>> = gone.iter().map(key).collect();
    if let Some(Value::Array(list)) = map.get_mut(attr.name) {
        list.retain(|el| !gone.contains(&key(el)) || key(el).is_none());
    }
    Ok(())
}

/// The element a filter of `eq`s describes (`type eq "work"` → `{"type": "work"}`).
fn eq_template(f: &Filter, attr: &'static Attr) -> Option<Map<String, Value>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, lit) if p.urn.is_none() && p.sub.is_none() => {
            let sub = attr.sub_attr(&p.name)?;
            let v = match lit {
                Literal::Str(s) => Value::String(s.clone()),
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Num(n) => Value::Number(n.clone()),
                Literal::Null => return None,
            };
            Some(Map::from_iter([(sub.name.to_string(), v)]))
        }
        Filter::And(a, b) => {
            let mut m = eq_template(a, attr)?;
            m.extend(eq_template(b, attr)?);
            Some(m)
        }
        _ => None,
    }
}

/// At most one element is `primary` (RFC 7643 §2.4): the last one set wins.
fn demote_primaries(list: &mut [Value]) {
    let last = list
        .iter()
        .rposition(|el| el.get("primary") == Some(&Value::Bool(true)));
    if let Some(last) = last {
        for (i, el) in list.iter_mut().enumerate() {
            if i != last
                && let Some(el) = el.as_object_mut()
                && el.get("primary") == Some(&Value::Bool(true))
            {
                el.remove("primary");
            }
        }
    }
}

/// Drops what became empty: `[]`, `{}`, an empty enterprise extension.
fn tidy(work: &mut Resource) {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Null => true,
            _ => false,
        }
    }
    if let Some(Value::Object(ext)) = work.get_mut(ENTERPRISE_SCHEMA) {
        ext.retain(|_, v| !empty(v));
    }
    work.retain(|_, v| !empty(v));
}

#[cfg(test)]
mod tests;
