//! RFC 7644 §3.4.2.2 filters: a parser (recursive descent, with the RFC's precedence
//! `not` > `and` > `or`) and their evaluation against a canonical User.
//!
//! Operators and attribute names are case-insensitive; attribute paths may carry a
//! schema URN (`urn:ietf:params:scim:schemas:core:2.0:User:userName`). Besides the
//! RFC's `emails[type eq "work"]`, the parser takes Entra ID's
//! `emails[type eq "work"].value eq "…"`, which the RFC's ABNF does not allow but
//! Entra sends; it means "an element of emails with both", and is parsed as
//! `emails[type eq "work" and value eq "…"]`.
use std::cmp::Ordering;

use chrono::DateTime;
use serde_json::{Map, Number, Value};

use crate::error::ScimError;
use crate::schema::{self, Attr, Home, Kind, Type};

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses, brackets and `not` accepted.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons (`attr op value`, `attr pr`) in one filter. A chain of `and`s and
/// `or`s is a tree as deep as it is long, which the checks and the evaluation walk
/// recursively: this bounds their depth and cost.
pub const MAX_CLAUSES: usize = 100;
/// Longest attribute path, in bytes (filters, PATCH paths, `attributes`).
pub const MAX_PATH_LEN: usize = 256;

/// An attribute path: `[urn:]name[.sub]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn:…:]name[.sub]`. The URN is everything up to the last `:` (URNs
    /// contain dots, as in `2.0`, so the split at `:` comes first).
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_filter(format!(
                "an attribute path is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        // `get`, not an index: the text may be any UTF-8 (a PATCH path, `attributes`),
        // and byte 4 need not be a character boundary.
        let (urn, rest) = if text.len() > 4
            && text
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            match text.rfind(':') {
                Some(i) => (Some(text[..i].to_string()), &text[i + 1..]),
                None => (None, text),
            }
        } else {
            (None, text)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let valid = |s: &str| {
            let mut chars = s.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        // A URN is schema vocabulary: the characters of a word (so that no value, such
        // as an email, can travel in it into an error message).
        let valid_urn = |u: &str| u.bytes().all(is_word);
        if !valid(name)
            || sub.is_some_and(|s| !valid(s))
            || urn.as_deref().is_some_and(|u| !valid_urn(u))
        {
            return Err(ScimError::invalid_filter(
                "an attribute path must be [urn:]name[.subAttribute]",
            ));
        }
        Ok(Self {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    pub fn simple(name: &str) -> Self {
        Self {
            urn: None,
            name: name.to_string(),
            sub: None,
        }
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A comparison value: a JSON literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare(AttrPath, CompareOp, Literal),
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some element of the multi-valued (or complex) `attr` matches
    /// `filter`, whose paths are relative to the element.
    ValuePath(AttrPath, Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// `.sub` right after `]` (Entra's form).
    SubAttr(String),
    Word(String),
    Str(String),
    Num(Number),
}

fn lex(input: &str) -> Result<Vec<Token>, ScimError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            b']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            b'"' => {
                // A JSON string: find the closing quote, honouring escapes, and let
                // serde_json decode it.
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(ScimError::invalid_filter("unterminated string")),
                        Some(b'\\') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                let s: String = serde_json::from_str(&input[start..i])
                    .map_err(|_| ScimError::invalid_filter("invalid string literal"))?;
                tokens.push(Token::Str(s));
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let n: Number = input[start..i]
                    .parse()
                    .map_err(|_| ScimError::invalid_filter("invalid number"))?;
                tokens.push(Token::Num(n));
            }
            b'.' if tokens.last() == Some(&Token::CloseBracket) => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && is_word(bytes[i]) && bytes[i] != b'.' && bytes[i] != b':' {
                    i += 1;
                }
                if i == start {
                    return Err(ScimError::invalid_filter(
                        "expected a sub-attribute after ']'.",
                    ));
                }
                tokens.push(Token::SubAttr(input[start..i].to_string()));
            }
            c if c.is_ascii_alphabetic() || c == b'$' => {
                let start = i;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                tokens.push(Token::Word(input[start..i].to_string()));
            }
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "unexpected character at position {i}"
                )));
            }
        }
    }
    Ok(tokens)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'$')
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    clauses: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "filter nested deeper than {MAX_DEPTH}"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.atom()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.atom()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, ScimError> {
        match self.next() {
            Some(Token::Open) => {
                self.enter()?;
                let f = self.or()?;
                self.expect(Token::Close, "')'")?;
                self.depth -= 1;
                Ok(f)
            }
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("not") && self.peek() == Some(&Token::Open) =>
            {
                self.pos += 1;
                self.enter()?;
                let f = self.or()?;
                self.expect(Token::Close, "')'")?;
                self.depth -= 1;
                Ok(Filter::Not(Box::new(f)))
            }
            Some(Token::Word(w)) => {
                let path = AttrPath::parse(&w)?;
                if self.peek() == Some(&Token::OpenBracket) {
                    self.pos += 1;
                    if path.sub.is_some() {
                        return Err(ScimError::invalid_filter(
                            "a value filter applies to an attribute, not a sub-attribute",
                        ));
                    }
                    self.enter()?;
                    let inner = self.or()?;
                    self.expect(Token::CloseBracket, "']'")?;
                    self.depth -= 1;
                    if matches!(self.peek(), Some(Token::SubAttr(_))) {
                        // Entra: attr[filter].sub op value
                        let Some(Token::SubAttr(sub)) = self.next() else {
                            unreachable!()
                        };
                        let then = self.comparison(AttrPath::simple(&sub))?;
                        return Ok(Filter::ValuePath(
                            path,
                            Box::new(Filter::And(Box::new(inner), Box::new(then))),
                        ));
                    }
                    return Ok(Filter::ValuePath(path, Box::new(inner)));
                }
                self.comparison(path)
            }
            Some(_) => Err(ScimError::invalid_filter(format!(
                "expected an attribute path, 'not' or '(' at token {}",
                self.pos
            ))),
            None => Err(ScimError::invalid_filter("unexpected end of filter")),
        }
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(ScimError::invalid_filter(format!(
                "a filter may have at most {MAX_CLAUSES} comparisons"
            )));
        }
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => CompareOp::parse(&w).ok_or_else(|| {
                ScimError::invalid_filter(format!("unknown operator at token {}", self.pos))
            })?,
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "expected an operator after '{path}'"
                )));
            }
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Num(n)) => Literal::Num(n),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "expected a value (a string, number, true, false or null) after the operator on '{path}'"
                )));
            }
        };
        Ok(Filter::Compare(path, op, value))
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), ScimError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => Err(ScimError::invalid_filter(format!("expected {what}"))),
        }
    }
}

impl Filter {
    /// Parses a filter. Syntax errors are 400 `invalidFilter`.
    pub fn parse(input: &str) -> Result<Self, ScimError> {
        if input.len() > MAX_LEN {
            return Err(ScimError::invalid_filter(format!(
                "filter longer than {MAX_LEN} bytes"
            )));
        }
        let mut p = Parser {
            tokens: lex(input)?,
            pos: 0,
            depth: 0,
            clauses: 0,
        };
        let f = p.or()?;
        if p.pos < p.tokens.len() {
            return Err(ScimError::invalid_filter(format!(
                "unexpected token {} after a complete filter",
                p.pos
            )));
        }
        Ok(f)
    }

    /// Parses a filter on Users and checks it against the User schema: unknown
    /// attributes, and operators that make no sense for an attribute's type
    /// (`gt` on a boolean, a value path on a single-valued simple attribute), are
    /// 400 `invalidFilter` (RFC 7644 §3.4.2.2 allows either an error or no match;
    /// an error tells the administrator what to fix).
    pub fn parse_user(input: &str) -> Result<Self, ScimError> {
        Self::parse_for(Kind::User, input)
    }

    /// Parses a filter on resources of `kind` and checks it against their schema.
    pub fn parse_for(kind: Kind, input: &str) -> Result<Self, ScimError> {
        let f = Self::parse(input)?;
        f.check(kind, None)?;
        Ok(f)
    }

    pub(crate) fn check(&self, kind: Kind, parent: Option<&'static Attr>) -> Result<(), ScimError> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check(kind, parent)?;
                b.check(kind, parent)
            }
            Filter::Not(f) => f.check(kind, parent),
            Filter::Present(p) => resolve(kind, parent, p).map(|_| ()),
            Filter::Compare(p, op, lit) => {
                let mut attr = resolve(kind, parent, p)?;
                if attr.ty == Type::Complex && attr.multi {
                    // `emails co "x"` compares the elements' values.
                    attr = attr.sub_attr("value").unwrap_or(attr);
                }
                let ordered = matches!(
                    op,
                    CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
                );
                let textual = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
                let ok = match attr.ty {
                    Type::Boolean => {
                        !ordered && !textual && matches!(lit, Literal::Bool(_) | Literal::Null)
                    }
                    Type::Complex => false,
                    Type::Integer | Type::Decimal => {
                        !textual && matches!(lit, Literal::Num(_) | Literal::Null)
                    }
                    Type::DateTime => !textual && matches!(lit, Literal::Str(_) | Literal::Null),
                    Type::Binary => matches!(op, CompareOp::Eq | CompareOp::Ne),
                    Type::String | Type::Reference => {
                        matches!(lit, Literal::Str(_) | Literal::Null)
                    }
                };
                if !ok {
                    return Err(ScimError::invalid_filter(format!(
                        "'{p}' cannot be compared that way (it is of type {:?})",
                        attr.ty
                    )));
                }
                Ok(())
            }
            Filter::ValuePath(p, inner) => {
                if parent.is_some() {
                    return Err(ScimError::invalid_filter("value filters cannot be nested"));
                }
                let attr = resolve(kind, None, p)?;
                if attr.ty != Type::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "'{p}' has no sub-attributes to filter on"
                    )));
                }
                inner.check(kind, Some(attr))
            }
        }
    }

    /// Whether an element of the multi-valued attribute `attr` matches (the filter's
    /// paths are relative to the element, as inside `emails[...]`).
    pub fn matches_element(&self, element: &Map<String, Value>, attr: &'static Attr) -> bool {
        eval(self, Scope::Element(element, attr))
    }

    /// Whether a canonical User resource matches.
    pub fn matches(&self, resource: &Map<String, Value>) -> bool {
        self.matches_in(Kind::User, resource)
    }

    /// Whether a canonical resource of `kind` matches.
    pub fn matches_in(&self, kind: Kind, resource: &Map<String, Value>) -> bool {
        eval(self, Scope::Resource(resource, kind))
    }
}

/// Resolves a path to its attribute definition: relative to `parent` inside a value
/// filter, else against the User schema.
fn resolve(
    kind: Kind,
    parent: Option<&'static Attr>,
    p: &AttrPath,
) -> Result<&'static Attr, ScimError> {
    let unknown = || ScimError::invalid_filter(format!("unknown attribute '{p}'"));
    let top = match parent {
        Some(parent) => {
            if p.urn.is_some() || p.sub.is_some() {
                return Err(unknown());
            }
            return parent.sub_attr(&p.name).ok_or_else(unknown);
        }
        None => {
            schema::attr_of(kind, p.urn.as_deref(), &p.name)
                .ok_or_else(unknown)?
                .1
        }
    };
    match &p.sub {
        Some(s) => top.sub_attr(s).ok_or_else(unknown),
        None => Ok(top),
    }
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a Map<String, Value>, Kind),
    /// An element of a multi-valued attribute (inside `[...]`).
    Element(&'a Map<String, Value>, &'static Attr),
}

/// The values a path denotes in a scope, with the attribute's definition. A
/// multi-valued attribute yields each element; a complex multi-valued attribute named
/// without a sub-attribute yields its elements' `value`s (RFC 7644 §3.4.2.2).
fn values<'a>(scope: Scope<'a>, p: &AttrPath) -> Option<(Vec<&'a Value>, &'static Attr)> {
    match scope {
        Scope::Element(el, parent) => {
            let attr = parent.sub_attr(&p.name)?;
            Some((el.get(attr.name).into_iter().collect(), attr))
        }
        Scope::Resource(res, kind) => {
            let (home, top) = schema::attr_of(kind, p.urn.as_deref(), &p.name)?;
            let container = match home {
                Home::Core => Some(res),
                Home::Enterprise => res
                    .get(schema::ENTERPRISE_SCHEMA)
                    .and_then(Value::as_object),
            };
            let v = container.and_then(|c| c.get(top.name));
            let items: Vec<&Value> = match v {
                None => vec![],
                Some(Value::Array(a)) => a.iter().collect(),
                Some(v) => vec![v],
            };
            let sub_name = p
                .sub
                .as_deref()
                .or(if top.ty == Type::Complex && top.multi {
                    Some("value")
                } else {
                    None
                });
            match sub_name {
                Some(s) => {
                    let sub = top.sub_attr(s)?;
                    Some((
                        items.into_iter().filter_map(|i| i.get(sub.name)).collect(),
                        sub,
                    ))
                }
                None => Some((items, top)),
            }
        }
    }
}

fn eval(f: &Filter, scope: Scope<'_>) -> bool {
    match f {
        Filter::And(a, b) => eval(a, scope) && eval(b, scope),
        Filter::Or(a, b) => eval(a, scope) || eval(b, scope),
        Filter::Not(f) => !eval(f, scope),
        Filter::Present(p) => values(scope, p).is_some_and(|(vs, _)| vs.iter().any(|v| present(v))),
        Filter::Compare(p, op, lit) => match values(scope, p) {
            None => false,
            Some((vs, attr)) => {
                if let Literal::Null = lit {
                    // `eq null` is "not present"; `ne null` is "present".
                    let any = vs.iter().any(|v| present(v));
                    return match op {
                        CompareOp::Eq => !any,
                        CompareOp::Ne => any,
                        _ => false,
                    };
                }
                if *op == CompareOp::Ne {
                    // ne: no value equals (an absent attribute is "not equal").
                    return !vs.iter().any(|v| compare(v, CompareOp::Eq, lit, attr));
                }
                vs.iter().any(|v| compare(v, *op, lit, attr))
            }
        },
        Filter::ValuePath(p, inner) => {
            let Scope::Resource(res, kind) = scope else {
                return false;
            };
            let Some((home, attr)) = schema::attr_of(kind, p.urn.as_deref(), &p.name) else {
                return false;
            };
            let container = match home {
                Home::Core => Some(res),
                Home::Enterprise => res
                    .get(schema::ENTERPRISE_SCHEMA)
                    .and_then(Value::as_object),
            };
            match container.and_then(|c| c.get(attr.name)) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_object)
                    .any(|el| eval(inner, Scope::Element(el, attr))),
                Some(Value::Object(el)) => eval(inner, Scope::Element(el, attr)),
                _ => false,
            }
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Compares one stored value with a literal (the operator is not `ne`).
pub(crate) fn compare(v: &Value, op: CompareOp, lit: &Literal, attr: &Attr) -> bool {
    match (v, lit) {
        (Value::Bool(b), Literal::Bool(l)) => op == CompareOp::Eq && b == l,
        (Value::Number(n), Literal::Num(l)) => {
            let (Some(a), Some(b)) = (n.as_f64(), l.as_f64()) else {
                return false;
            };
            ordered(a.partial_cmp(&b), op)
        }
        (Value::String(s), Literal::Str(l)) => {
            if attr.ty == Type::DateTime {
                let (Ok(a), Ok(b)) = (
                    DateTime::parse_from_rfc3339(s),
                    DateTime::parse_from_rfc3339(l),
                ) else {
                    return false;
                };
                return ordered(Some(a.cmp(&b)), op);
            }
            let (a, b) = if attr.folds_case() {
                (s.to_lowercase(), l.to_lowercase())
            } else {
                (s.clone(), l.clone())
            };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordered(Some(a.cmp(&b)), op),
            }
        }
        _ => false,
    }
}

fn ordered(o: Option<Ordering>, op: CompareOp) -> bool {
    let Some(o) = o else { return false };
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// The `userName` an `eq` filter looks for, when the filter is exactly
/// `userName eq "…"` (the lookup Okta and Entra make): the store answers it from an
/// index instead of a scan. Likewise [`Filter::eq_lookup`] for any attribute.
impl Filter {
    pub fn eq_lookup(&self, name: &str) -> Option<&str> {
        self.eq_lookup_in(Kind::User, name)
    }

    pub fn eq_lookup_in(&self, kind: Kind, name: &str) -> Option<&str> {
        match self {
            Filter::Compare(p, CompareOp::Eq, Literal::Str(s))
                if p.sub.is_none()
                    && schema::attr_of(kind, p.urn.as_deref(), &p.name)
                        .is_some_and(|(_, a)| a.name == name) =>
            {
                Some(s)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
