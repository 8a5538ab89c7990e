//! The schemas roster serves (RFC 7643 §4.1 User, §4.3 enterprise extension), as data:
//! normalization, filters and PATCH read attribute types from here, and `/Schemas`
//! renders the same tables, so what is advertised is what is enforced.
use serde_json::{Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The resource types served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    User,
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

/// One attribute of a schema.
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Type,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    /// `server` uniqueness (userName); everything else is `none`.
    pub unique: bool,
    pub sub: &'static [Attr],
    pub description: &'static str,
}

impl Attr {
    /// A sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
    /// Whether the value can be compared as text without regard to case.
    pub fn folds_case(&self) -> bool {
        matches!(self.ty, Type::String | Type::Reference) && !self.case_exact
    }
    fn render(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.ty.as_str(),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability.as_str(),
            "returned": if self.mutability == Mutability::WriteOnly { "never" } else if self.name == "id" { "always" } else { "default" },
            "uniqueness": if self.unique { "server" } else { "none" },
        });
        if !self.sub.is_empty() {
            v["subAttributes"] = self.sub.iter().map(Attr::render).collect();
        }
        if self.ty == Type::Reference {
            v["referenceTypes"] = json!(["external"]);
        }
        v
    }
}

const fn attr(name: &'static str, ty: Type, description: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub: &[],
        description,
    }
}

const fn complex(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
    Attr {
        sub,
        ..attr(name, Type::Complex, description)
    }
}

const fn multi(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
    Attr {
        multi: true,
        ..complex(name, sub, description)
    }
}

const fn read_only(a: Attr) -> Attr {
    Attr {
        mutability: Mutability::ReadOnly,
        ..a
    }
}

const fn case_exact(a: Attr) -> Attr {
    Attr {
        case_exact: true,
        ..a
    }
}

/// value, display, type, primary: the sub-attributes of most multi-valued attributes.
const PLURAL: &[Attr] = &[
    attr("value", Type::String, "The value."),
    attr("display", Type::String, "A human-readable name."),
    attr("type", Type::String, "A label such as 'work' or 'home'."),
    attr(
        "primary",
        Type::Boolean,
        "Whether this is the primary value.",
    ),
];

/// emails: as [`PLURAL`], with `value` required (roster needs an address).
const EMAIL: &[Attr] = &[
    Attr {
        required: true,
        ..attr("value", Type::String, "The email address.")
    },
    attr("display", Type::String, "A human-readable name."),
    attr("type", Type::String, "A label such as 'work' or 'home'."),
    attr(
        "primary",
        Type::Boolean,
        "Whether this is the primary address.",
    ),
];

const NAME: &[Attr] = &[
    attr(
        "formatted",
        Type::String,
        "The full name, formatted for display.",
    ),
    attr("familyName", Type::String, "The family name."),
    attr("givenName", Type::String, "The given name."),
    attr("middleName", Type::String, "The middle name."),
    attr("honorificPrefix", Type::String, "The honorific prefix."),
    attr("honorificSuffix", Type::String, "The honorific suffix."),
];

const ADDRESS: &[Attr] = &[
    attr("formatted", Type::String, "The full address."),
    attr("streetAddress", Type::String, "The street address."),
    attr(
        "locality",
        Type::String,
        "The city or locality; roster's location.",
    ),
    attr("region", Type::String, "The state or region."),
    attr("postalCode", Type::String, "The postal code."),
    attr("country", Type::String, "The country."),
    attr("type", Type::String, "A label such as 'work'."),
    attr(
        "primary",
        Type::Boolean,
        "Whether this is the primary address.",
    ),
];

const GROUP_REF: &[Attr] = &[
    read_only(attr("value", Type::String, "The group's id.")),
    read_only(attr("$ref", Type::Reference, "The group's URI.")),
    read_only(attr("display", Type::String, "The group's name.")),
    read_only(attr("type", Type::String, "direct or indirect.")),
];

const META: &[Attr] = &[
    read_only(case_exact(attr(
        "resourceType",
        Type::String,
        "The resource type.",
    ))),
    read_only(attr(
        "created",
        Type::DateTime,
        "When the resource was created.",
    )),
    read_only(attr(
        "lastModified",
        Type::DateTime,
        "When the resource last changed.",
    )),
    read_only(case_exact(attr(
        "location",
        Type::Reference,
        "The resource's URI.",
    ))),
    read_only(case_exact(attr(
        "version",
        Type::String,
        "The resource's version (ETag).",
    ))),
];

/// The attributes every resource has (RFC 7643 §3.1).
pub const COMMON: &[Attr] = &[
    read_only(case_exact(Attr {
        multi: true,
        ..attr("schemas", Type::Reference, "The schemas of the resource.")
    })),
    read_only(case_exact(Attr {
        required: true,
        ..attr(
            "id",
            Type::String,
            "The service provider's identifier of the resource.",
        )
    })),
    case_exact(attr(
        "externalId",
        Type::String,
        "The client's identifier of the resource.",
    )),
    read_only(complex("meta", META, "Resource metadata.")),
];

/// RFC 7643 §4.1, the core User schema.
pub const USER: &[Attr] = &[
    Attr {
        required: true,
        unique: true,
        ..attr(
            "userName",
            Type::String,
            "Unique identifier of the user, often an email address. Compared without regard to case.",
        )
    },
    complex("name", NAME, "The components of the user's name."),
    attr("displayName", Type::String, "The name to display."),
    attr("nickName", Type::String, "The casual name."),
    attr("profileUrl", Type::Reference, "The user's online profile."),
    attr("title", Type::String, "The job title."),
    attr(
        "userType",
        Type::String,
        "The relationship to the organization.",
    ),
    attr("preferredLanguage", Type::String, "The preferred language."),
    attr(
        "locale",
        Type::String,
        "The default location for localization.",
    ),
    attr("timezone", Type::String, "The time zone (IANA)."),
    attr(
        "active",
        Type::Boolean,
        "Whether the user is active; false starts deprovisioning.",
    ),
    Attr {
        mutability: Mutability::WriteOnly,
        ..attr(
            "password",
            Type::String,
            "Never stored and never returned by roster.",
        )
    },
    // Required by roster (a DirectoryUser has an email), not by RFC 7643; a userName
    // that is an email address is accepted instead, as a tolerance.
    Attr {
        required: true,
        ..multi(
            "emails",
            EMAIL,
            "Email addresses; the primary (else work, else first) is roster's email. Required by roster; an email-shaped userName is accepted instead.",
        )
    },
    multi("phoneNumbers", PLURAL, "Phone numbers."),
    multi("ims", PLURAL, "Instant messaging addresses."),
    multi(
        "photos",
        PLURAL,
        "Photo URLs; the primary (else first) is roster's pictureURL.",
    ),
    multi(
        "addresses",
        ADDRESS,
        "Physical addresses; the work (else primary) locality is roster's location.",
    ),
    read_only(multi(
        "groups",
        GROUP_REF,
        "Groups of the user (read-only).",
    )),
    multi("entitlements", PLURAL, "Entitlements."),
    multi("roles", PLURAL, "Roles."),
    multi("x509Certificates", PLURAL, "X.509 certificates."),
];

const MANAGER: &[Attr] = &[
    attr("value", Type::String, "The manager's SCIM id."),
    attr("$ref", Type::Reference, "The manager's URI."),
    read_only(attr(
        "displayName",
        Type::String,
        "The manager's display name.",
    )),
];

/// RFC 7643 §4.3, the enterprise User extension.
pub const ENTERPRISE: &[Attr] = &[
    Attr {
        mutability: Mutability::Immutable,
        ..attr(
            "employeeNumber",
            Type::String,
            "The employee number: roster's employeeID (the mapping key).",
        )
    },
    attr("costCenter", Type::String, "The cost center."),
    attr("organization", Type::String, "The organization."),
    attr("division", Type::String, "The division."),
    attr("department", Type::String, "The department."),
    complex(
        "manager",
        MANAGER,
        "The user's manager (its value is the manager's SCIM id).",
    ),
];

/// A Group's member (RFC 7643 §4.2): a User of the tenant, by SCIM id.
const MEMBER: &[Attr] = &[
    Attr {
        mutability: Mutability::Immutable,
        ..case_exact(attr("value", Type::String, "The member's id."))
    },
    Attr {
        mutability: Mutability::Immutable,
        ..case_exact(attr("$ref", Type::Reference, "The URI of the member."))
    },
    read_only(attr("display", Type::String, "The member's display name.")),
    Attr {
        mutability: Mutability::Immutable,
        ..attr("type", Type::String, "The member's resource type: User.")
    },
];

/// RFC 7643 §4.2, the core Group schema.
pub const GROUP: &[Attr] = &[
    Attr {
        required: true,
        unique: true,
        ..attr(
            "displayName",
            Type::String,
            "The group's name, unique in the tenant; what the Tenant's group rules match (field groups).",
        )
    },
    multi("members", MEMBER, "The Users in the group."),
];

/// Where an attribute lives in a canonical resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    /// Top level: common and core attributes.
    Core,
    /// Under the enterprise extension's URN key.
    Enterprise,
}

impl Home {
    pub fn urn(self) -> &'static str {
        match self {
            Self::Core => USER_SCHEMA,
            Self::Enterprise => ENTERPRISE_SCHEMA,
        }
    }
}

fn find(table: &'static [Attr], name: &str) -> Option<&'static Attr> {
    table.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A top-level attribute of the User resource type. `urn` is the schema the path
/// names (`None` for an unqualified name: core first, then, as a tolerance, the
/// enterprise extension).
pub fn user_attr(urn: Option<&str>, name: &str) -> Option<(Home, &'static Attr)> {
    match urn {
        Some(u) if u.eq_ignore_ascii_case(USER_SCHEMA) => find(COMMON, name)
            .or_else(|| find(USER, name))
            .map(|a| (Home::Core, a)),
        Some(u) if u.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) => {
            find(ENTERPRISE, name).map(|a| (Home::Enterprise, a))
        }
        Some(_) => None,
        None => find(COMMON, name)
            .or_else(|| find(USER, name))
            .map(|a| (Home::Core, a))
            .or_else(|| find(ENTERPRISE, name).map(|a| (Home::Enterprise, a))),
    }
}

/// A top-level attribute of the Group resource type (core schema only).
pub fn group_attr(urn: Option<&str>, name: &str) -> Option<(Home, &'static Attr)> {
    match urn {
        Some(u) if !u.eq_ignore_ascii_case(GROUP_SCHEMA) => None,
        _ => find(COMMON, name)
            .or_else(|| find(GROUP, name))
            .map(|a| (Home::Core, a)),
    }
}

/// A top-level attribute of a resource type.
pub fn attr_of(kind: Kind, urn: Option<&str>, name: &str) -> Option<(Home, &'static Attr)> {
    match kind {
        Kind::User => user_attr(urn, name),
        Kind::Group => group_attr(urn, name),
    }
}

/// The `/Schemas` resources.
pub fn schemas(base: &str) -> Vec<Value> {
    let render = |id: &str, name: &str, description: &str, attrs: &[&[Attr]]| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attrs.iter().flat_map(|t| t.iter()).filter(|a| !matches!(a.name, "id" | "meta" | "schemas")).map(Attr::render).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    };
    vec![
        render(USER_SCHEMA, "User", "User Account", &[COMMON, USER]),
        render(
            ENTERPRISE_SCHEMA,
            "EnterpriseUser",
            "Enterprise User",
            &[ENTERPRISE],
        ),
        render(GROUP_SCHEMA, "Group", "Group", &[COMMON, GROUP]),
    ]
}

/// The `/ResourceTypes` resources.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// The `/ServiceProviderConfig` resource. `max_results` is the page limit the HTTP
/// layer enforces (its body limit has no field here: `bulk.maxPayloadSize` is about
/// bulk, which roster does not support, and strict clients refuse unknown members).
pub fn service_provider_config(base: &str, max_results: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/roster-dev/roster/blob/main/docs/scim.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "One bearer token per tenant, from the Secret named by the Tenant's spec.sources.scim.tokenSecretRef.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_resolve_without_regard_to_case_and_with_urns() {
        type Case<'a> = (Option<&'a str>, &'a str, Option<(Home, &'a str)>);
        let cases: &[Case] = &[
            (None, "username", Some((Home::Core, "userName"))),
            (None, "USERNAME", Some((Home::Core, "userName"))),
            (None, "externalid", Some((Home::Core, "externalId"))),
            (
                Some(USER_SCHEMA),
                "userName",
                Some((Home::Core, "userName")),
            ),
            (
                Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
                "emails",
                Some((Home::Core, "emails")),
            ),
            (
                Some(ENTERPRISE_SCHEMA),
                "employeeNumber",
                Some((Home::Enterprise, "employeeNumber")),
            ),
            (
                None,
                "employeenumber",
                Some((Home::Enterprise, "employeeNumber")),
            ),
            (Some(ENTERPRISE_SCHEMA), "userName", None),
            (Some("urn:example:other"), "userName", None),
            (None, "shoeSize", None),
        ];
        for (urn, name, want) in cases {
            let got = user_attr(*urn, name).map(|(h, a)| (h, a.name));
            assert_eq!(got, *want, "{urn:?} {name}");
        }
    }

    #[test]
    fn schemas_render_every_attribute_but_id_and_meta() {
        let s = schemas("/scim/v2/acme");
        assert_eq!(s[0]["id"], USER_SCHEMA);
        assert_eq!(s[0]["attributes"].as_array().unwrap().len(), 1 + USER.len());
        assert_eq!(
            s[1]["attributes"].as_array().unwrap().len(),
            ENTERPRISE.len()
        );
        let user_name = &s[0]["attributes"][1];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
    }
}
