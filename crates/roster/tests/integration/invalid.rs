//! The API server itself refuses invalid Tenants, DeprovisionPolicies and
//! DirectoryUsers, with a message that says what to change.
//!
//! One table: each case starts from a valid object of its kind, edits it, and names
//! a substring the refusal must contain (the CEL rule's message, or the OpenAPI
//! schema error for types, enums, lengths, ranges and required fields). Update cases
//! create the valid object first and then send the edited one as a replacement.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use roster_api::{DeprovisionPolicy, DirectoryUser, Tenant};
use serde_json::{Value, json};

use crate::support::TestEnv;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tenant,
    Policy,
    User,
}

impl Kind {
    fn resource(self) -> ApiResource {
        match self {
            Kind::Tenant => ApiResource::erase::<Tenant>(&()),
            Kind::Policy => ApiResource::erase::<DeprovisionPolicy>(&()),
            Kind::User => ApiResource::erase::<DirectoryUser>(&()),
        }
    }

    /// A valid object of this kind, exercising most optional fields.
    fn valid(self, name: &str) -> Value {
        let spec = match self {
            Kind::Tenant => json!({
                "displayName": "Acme Learning (fictional)",
                "policyRef": { "name": "standard" },
                "learningPlatform": {
                    "endpoint": "http://127.0.0.1:8081/api/v1",
                    "credentialsSecretRef": { "name": "acme-lms", "key": "token" }
                },
                "calendar": {
                    "provider": "Google",
                    "endpoint": "http://127.0.0.1:8082/calendar/v3",
                    "credentialsSecretRef": { "name": "acme-calendar", "key": "token" },
                    "fallbackOwner": { "employeeID": "00001" }
                },
                "locations": ["Berlin", "Lisbon"],
                "timeZone": "Europe/Berlin",
                "groupRules": [{
                    "group": "engineering",
                    "conditions": [{ "field": "department", "operator": "In", "values": ["Engineering"] }]
                }],
                "sources": {
                    "scim": { "tokenSecretRef": { "name": "acme-scim", "key": "token" } },
                    "csv": {
                        "host": "sftp.example.com",
                        "port": 22,
                        "path": "/exports/people.csv",
                        "credentialsSecretRef": { "name": "acme-sftp" },
                        "interval": "24h",
                        "columns": [{ "field": "employeeID", "header": "Personnel Number" }]
                    },
                    "hrAPI": {
                        "url": "https://hr.example.com/ccx/service/customreport2/acme/people",
                        "credentialsSecretRef": { "name": "acme-hr" },
                        "interval": "6h",
                        "mappings": [
                            { "from": "Employee_ID", "to": "employeeID" },
                            { "from": "Work_Email", "to": "email", "transform": "Lowercase" }
                        ]
                    }
                }
            }),
            Kind::Policy => json!({
                "quarantinePeriod": "30s",
                "purgeDeadline": "2m",
                "calendarOwnerOrder": ["Organizer", "CoOrganizers", "Presenters", "FallbackOwner"],
                "massDeprovisionGuard": { "enabled": true, "maxUsers": 10, "maxPercent": 20 }
            }),
            Kind::User => json!({
                "tenantRef": { "name": "acme" },
                "employeeID": "00042",
                "fullName": "Alex Example",
                "email": "alex.example@example.com",
                "pictureURL": "https://example.com/avatars/00042.png",
                "department": "Engineering",
                "title": "Engineer",
                "location": "Berlin",
                "managerEmail": "morgan.manager@example.com",
                "active": true,
                "source": "Manual"
            }),
        };
        let resource = self.resource();
        json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": { "name": name },
            "spec": spec,
        })
    }
}

enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}

struct Case {
    kind: Kind,
    what: &'static str,
    /// Create the valid object first, then replace it with the edited one.
    update: bool,
    edits: Vec<Edit>,
    expect: &'static str,
}

fn create(kind: Kind, what: &'static str) -> Case {
    Case {
        kind,
        what,
        update: false,
        edits: Vec::new(),
        expect: "",
    }
}

fn update(kind: Kind, what: &'static str) -> Case {
    Case {
        update: true,
        ..create(kind, what)
    }
}

impl Case {
    /// Sets the value at a JSON pointer below the object, creating parent objects.
    fn set(mut self, pointer: &'static str, value: Value) -> Self {
        self.edits.push(Edit::Set(pointer, value));
        self
    }

    fn remove(mut self, pointer: &'static str) -> Self {
        self.edits.push(Edit::Remove(pointer));
        self
    }

    fn expect(mut self, substring: &'static str) -> Self {
        self.expect = substring;
        self
    }

    fn apply_edits(&self, object: &mut Value) {
        for edit in &self.edits {
            match edit {
                Edit::Set(pointer, value) => set(object, pointer, value.clone()),
                Edit::Remove(pointer) => remove(object, pointer),
            }
        }
    }
}

fn set(object: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let mut current = object;
    for part in parent.split('/').skip(1) {
        current = match current {
            Value::Object(map) => map.entry(part).or_insert_with(|| json!({})),
            Value::Array(items) => &mut items[part.parse::<usize>().expect("an array index")],
            other => panic!("cannot descend into {other} at {pointer}"),
        };
    }
    match current {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().expect("an array index")] = value,
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn remove(object: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let removed = object
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|map| map.remove(key));
    assert!(removed.is_some(), "nothing to remove at {pointer}");
}

fn long(n: usize) -> Value {
    Value::String("x".repeat(n))
}

fn cases() -> Vec<Case> {
    use Kind::{Policy, Tenant, User};
    vec![
        // Tenant
        create(Tenant, "displayName missing").remove("/spec/displayName").expect("spec.displayName: Required value"),
        create(Tenant, "displayName empty").set("/spec/displayName", json!("")).expect("spec.displayName in body should be at least 1 chars long"),
        create(Tenant, "displayName too long").set("/spec/displayName", long(257)).expect("spec.displayName: Too long"),
        create(Tenant, "policyRef missing").remove("/spec/policyRef").expect("spec.policyRef: Required value"),
        create(Tenant, "learningPlatform endpoint not http(s)")
            .set("/spec/learningPlatform/endpoint", json!("ftp://lms.example.com/api"))
            .expect("learningPlatform.endpoint must be an http(s) URL"),
        create(Tenant, "learningPlatform endpoint not a URL")
            .set("/spec/learningPlatform/endpoint", json!("lms.example.com"))
            .expect("learningPlatform.endpoint must be an http(s) URL"),
        create(Tenant, "learningPlatform credentials missing")
            .remove("/spec/learningPlatform/credentialsSecretRef")
            .expect("spec.learningPlatform.credentialsSecretRef: Required value"),
        create(Tenant, "credentials Secret key missing")
            .remove("/spec/learningPlatform/credentialsSecretRef/key")
            .expect("spec.learningPlatform.credentialsSecretRef.key: Required value"),
        create(Tenant, "calendar provider unknown")
            .set("/spec/calendar/provider", json!("Outlook"))
            .expect("spec.calendar.provider: Unsupported value: \"Outlook\""),
        create(Tenant, "calendar Google without fallbackOwner")
            .remove("/spec/calendar/fallbackOwner")
            .expect("calendar.fallbackOwner are required when calendar.provider is Google or Microsoft"),
        create(Tenant, "calendar Microsoft without endpoint")
            .set("/spec/calendar/provider", json!("Microsoft"))
            .remove("/spec/calendar/endpoint")
            .expect("calendar.endpoint, calendar.credentialsSecretRef and calendar.fallbackOwner are required"),
        create(Tenant, "calendar fallbackOwner an email address")
            .set("/spec/calendar/fallbackOwner/employeeID", json!("calendar-owner@example.com"))
            .expect("employeeID must start with a letter or digit and contain only letters, digits"),
        create(Tenant, "calendar fallbackOwner without an employee ID")
            .set("/spec/calendar/fallbackOwner", json!({}))
            .expect("spec.calendar.fallbackOwner.employeeID: Required value"),
        create(Tenant, "calendar endpoint not a URL")
            .set("/spec/calendar/endpoint", json!("www.googleapis.com/calendar/v3"))
            .expect("calendar.endpoint must be an http(s) URL"),
        create(Tenant, "timeZone with spaces")
            .set("/spec/timeZone", json!("Central European Time"))
            .expect("timeZone must be an IANA time zone name"),
        create(Tenant, "timeZone as an offset")
            .set("/spec/timeZone", json!("+01:00"))
            .expect("timeZone must be an IANA time zone name"),
        create(Tenant, "duplicate location")
            .set("/spec/locations", json!(["Berlin", "Berlin"]))
            .expect("spec.locations[1]: Duplicate value"),
        create(Tenant, "group rule without conditions")
            .set("/spec/groupRules/0/conditions", json!([]))
            .expect("spec.groupRules[0].conditions in body should have at least 1 items"),
        create(Tenant, "group rule on an unknown field")
            .set("/spec/groupRules/0/conditions/0/field", json!("salary"))
            .expect("spec.groupRules[0].conditions[0].field: Unsupported value: \"salary\""),
        create(Tenant, "group rule operator unknown")
            .set("/spec/groupRules/0/conditions/0/operator", json!("Equals"))
            .expect("spec.groupRules[0].conditions[0].operator: Unsupported value: \"Equals\""),
        create(Tenant, "hrAPI mappings without employeeID")
            .set("/spec/sources/hrAPI/mappings", json!([{ "from": "Work_Email", "to": "email" }]))
            .expect("hrAPI.mappings must map exactly one report field to employeeID"),
        create(Tenant, "hrAPI mappings with employeeID twice")
            .set(
                "/spec/sources/hrAPI/mappings",
                json!([{ "from": "Employee_ID", "to": "employeeID" }, { "from": "Worker_ID", "to": "employeeID" }]),
            )
            .expect("hrAPI.mappings must map exactly one report field to employeeID"),
        create(Tenant, "Secret name not an object name")
            .set("/spec/learningPlatform/credentialsSecretRef/name", json!("Not A Name!"))
            .expect("the Secret name must be an object name"),
        create(Tenant, "policyRef name not an object name")
            .set("/spec/policyRef/name", json!("Standard Policy"))
            .expect("name must be an object name"),
        create(Tenant, "empty location name")
            .set("/spec/locations", json!(["Berlin", ""]))
            .expect("spec.locations[1] in body should be at least 1 chars long"),
        create(Tenant, "csv columns with an unknown profile field")
            .set("/spec/sources/csv/columns", json!([{ "field": "shoeSize", "header": "Shoe Size" }]))
            .expect("spec.sources.csv.columns[0].field: Unsupported value: \"shoeSize\""),
        create(Tenant, "csv columns naming a field twice")
            .set(
                "/spec/sources/csv/columns",
                json!([{ "field": "email", "header": "Mail" }, { "field": "email", "header": "E-Mail" }]),
            )
            .expect("spec.sources.csv.columns[1]: Duplicate value"),
        create(Tenant, "csv columns with an empty header")
            .set("/spec/sources/csv/columns", json!([{ "field": "email", "header": "" }]))
            .expect("spec.sources.csv.columns[0].header in body should be at least 1 chars long"),
        create(Tenant, "csv credentialsSecretRef without a name")
            .set("/spec/sources/csv/credentialsSecretRef", json!({}))
            .expect("spec.sources.csv.credentialsSecretRef.name: Required value"),
        create(Tenant, "hrAPI url not a URL")
            .set("/spec/sources/hrAPI/url", json!("hr.example.com/report"))
            .expect("hrAPI.url must be an http(s) URL"),
        create(Tenant, "hrAPI mapping transform unknown")
            .set("/spec/sources/hrAPI/mappings/1/transform", json!("Capitalize"))
            .expect("spec.sources.hrAPI.mappings[1].transform: Unsupported value: \"Capitalize\""),
        create(Tenant, "csv interval below 1m")
            .set("/spec/sources/csv/interval", json!("30s"))
            .expect("csv.interval must be a duration of at least 1m"),
        create(Tenant, "csv interval in days")
            .set("/spec/sources/csv/interval", json!("1d"))
            .expect("csv.interval must be a duration of at least 1m"),
        create(Tenant, "csv port 0")
            .set("/spec/sources/csv/port", json!(0))
            .expect("spec.sources.csv.port in body should be greater than or equal to 1"),
        create(Tenant, "csv port above 65535")
            .set("/spec/sources/csv/port", json!(70000))
            .expect("spec.sources.csv.port in body should be less than or equal to 65535"),
        create(Tenant, "suspend not a boolean")
            .set("/spec/suspend", json!("yes"))
            .expect("spec.suspend in body must be of type boolean"),
        // DeprovisionPolicy
        create(Policy, "quarantinePeriod longer than purgeDeadline")
            .set("/spec/quarantinePeriod", json!("1h"))
            .set("/spec/purgeDeadline", json!("30m"))
            .expect("quarantinePeriod must not be longer than purgeDeadline"),
        create(Policy, "default quarantinePeriod (168h) longer than purgeDeadline")
            .remove("/spec/quarantinePeriod")
            .set("/spec/purgeDeadline", json!("48h"))
            .expect("quarantinePeriod must not be longer than purgeDeadline"),
        create(Policy, "purgeDeadline above 720h")
            .set("/spec/purgeDeadline", json!("721h"))
            .expect("purgeDeadline must be at most 720h"),
        create(Policy, "purgeDeadline 720h1s")
            .set("/spec/purgeDeadline", json!("720h1s"))
            .expect("purgeDeadline must be at most 720h"),
        create(Policy, "purgeDeadline in days")
            .set("/spec/purgeDeadline", json!("30d"))
            .expect("purgeDeadline has no day unit: write days as hours, e.g. 30d as 720h"),
        create(Policy, "quarantinePeriod in days")
            .set("/spec/quarantinePeriod", json!("7d"))
            .expect("quarantinePeriod has no day unit: write days as hours, e.g. 7d as 168h"),
        create(Policy, "quarantinePeriod mixing days and hours")
            .set("/spec/quarantinePeriod", json!("1d12h"))
            .expect("quarantinePeriod must be a duration such as 168h"),
        create(Policy, "quarantinePeriod in words")
            .set("/spec/quarantinePeriod", json!("7 days"))
            .expect("quarantinePeriod must be a duration such as 168h"),
        create(Policy, "quarantinePeriod negative")
            .set("/spec/quarantinePeriod", json!("-1h"))
            .expect("quarantinePeriod must be a duration such as 168h"),
        create(Policy, "quarantinePeriod repeating a unit (would overflow)")
            .set("/spec/quarantinePeriod", json!("999999h999999h"))
            .expect("quarantinePeriod must be a duration such as 168h"),
        create(Policy, "quarantinePeriod too long a string")
            .set("/spec/quarantinePeriod", json!("1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1"))
            .expect("spec.quarantinePeriod: Too long"),
        create(Policy, "calendarOwnerOrder with a duplicate")
            .set("/spec/calendarOwnerOrder", json!(["Organizer", "Presenters", "Organizer"]))
            .expect("calendarOwnerOrder must not list an entry twice"),
        create(Policy, "calendarOwnerOrder empty")
            .set("/spec/calendarOwnerOrder", json!([]))
            .expect("spec.calendarOwnerOrder in body should have at least 1 items"),
        create(Policy, "calendarOwnerOrder unknown candidate")
            .set("/spec/calendarOwnerOrder", json!(["Manager"]))
            .expect("spec.calendarOwnerOrder[0]: Unsupported value: \"Manager\""),
        create(Policy, "maxPercent 0")
            .set("/spec/massDeprovisionGuard/maxPercent", json!(0))
            .expect("spec.massDeprovisionGuard.maxPercent in body should be greater than or equal to 1"),
        create(Policy, "maxPercent 101")
            .set("/spec/massDeprovisionGuard/maxPercent", json!(101))
            .expect("spec.massDeprovisionGuard.maxPercent in body should be less than or equal to 100"),
        create(Policy, "maxUsers 0")
            .set("/spec/massDeprovisionGuard/maxUsers", json!(0))
            .expect("spec.massDeprovisionGuard.maxUsers in body should be greater than or equal to 1"),
        create(Policy, "onObjectDeletion unknown")
            .set("/spec/onObjectDeletion", json!("Never"))
            .expect("spec.onObjectDeletion: Unsupported value: \"Never\""),
        create(Policy, "ruleTransferTarget unknown")
            .set("/spec/ruleTransferTarget", json!("Nobody"))
            .expect("spec.ruleTransferTarget: Unsupported value: \"Nobody\""),
        // DirectoryUser
        create(User, "tenantRef missing").remove("/spec/tenantRef").expect("spec.tenantRef: Required value"),
        create(User, "tenantRef not an object name")
            .set("/spec/tenantRef/name", json!("Acme Corp"))
            .expect("name must be an object name"),
        create(User, "tenantRef a bare string (the v1alpha1 shape before the API review)")
            .set("/spec/tenantRef", json!("acme"))
            .expect("spec.tenantRef: Invalid value: \"string\": spec.tenantRef in body must be of type object"),
        create(User, "employeeID missing").remove("/spec/employeeID").expect("spec.employeeID: Required value"),
        create(User, "employeeID empty")
            .set("/spec/employeeID", json!(""))
            .expect("spec.employeeID in body should be at least 1 chars long"),
        create(User, "employeeID starting with a dash")
            .set("/spec/employeeID", json!("-00042"))
            .expect("employeeID must start with a letter or digit"),
        create(User, "employeeID with a space")
            .set("/spec/employeeID", json!("000 42"))
            .expect("employeeID must start with a letter or digit"),
        create(User, "employeeID too long").set("/spec/employeeID", long(65)).expect("spec.employeeID: Too long"),
        create(User, "employeeID a number").set("/spec/employeeID", json!(42)).expect("spec.employeeID in body must be of type string"),
        create(User, "fullName missing").remove("/spec/fullName").expect("spec.fullName: Required value"),
        create(User, "fullName too long").set("/spec/fullName", long(257)).expect("spec.fullName: Too long"),
        create(User, "email missing").remove("/spec/email").expect("spec.email: Required value"),
        create(User, "email without @").set("/spec/email", json!("alex.example")).expect("email must be an address"),
        create(User, "email without domain dot").set("/spec/email", json!("alex@example")).expect("email must be an address"),
        create(User, "managerEmail not an address")
            .set("/spec/managerEmail", json!("morgan manager@example.com"))
            .expect("managerEmail must be an address"),
        create(User, "pictureURL not http(s)")
            .set("/spec/pictureURL", json!("javascript:alert(1)"))
            .expect("pictureURL must be an http(s) URL"),
        create(User, "hireDate month 13")
            .set("/spec/hireDate", json!("2025-13-01"))
            .expect("spec.hireDate in body must be of type date"),
        create(User, "terminationDate February 30")
            .set("/spec/terminationDate", json!("2025-02-30"))
            .expect("spec.terminationDate in body must be of type date"),
        create(User, "terminationDate in day-first format")
            .set("/spec/terminationDate", json!("31.12.2025"))
            .expect("spec.terminationDate in body must be of type date"),
        create(User, "terminationDate with a time")
            .set("/spec/terminationDate", json!("2025-12-31T17:00:00Z"))
            .expect("spec.terminationDate in body must be of type date"),
        create(User, "source unknown").set("/spec/source", json!("Ldap")).expect("spec.source: Unsupported value: \"Ldap\""),
        create(User, "active as a string").set("/spec/active", json!("False")).expect("spec.active in body must be of type boolean"),
        update(User, "employeeID changed").set("/spec/employeeID", json!("00043")).expect("employeeID is immutable"),
        update(User, "tenantRef changed").set("/spec/tenantRef/name", json!("globex")).expect("tenantRef is immutable"),
    ]
}

fn api(env: &TestEnv, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.namespace, &kind.resource())
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("test objects are valid DynamicObjects")
}

#[tokio::test]
async fn valid_base_objects_are_accepted() {
    let env = TestEnv::new("valid-base").await;
    for kind in [Kind::Tenant, Kind::Policy, Kind::User] {
        api(&env, kind)
            .create(&PostParams::default(), &object(kind.valid("valid")))
            .await
            .unwrap_or_else(|err| panic!("the valid {kind:?} was refused: {err}"));
    }
}

#[tokio::test]
async fn invalid_manifests_are_refused_with_a_helpful_message() {
    let env = TestEnv::new("invalid").await;
    let cases = cases();
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let name = format!("case-{index}");
        let api = api(&env, case.kind);
        let mut value = case.kind.valid(&name);
        if case.update {
            let created = api
                .create(&PostParams::default(), &object(value))
                .await
                .unwrap_or_else(|err| {
                    panic!(
                        "{}: creating the valid {:?} failed: {err}",
                        case.what, case.kind
                    )
                });
            value = serde_json::to_value(created).expect("objects serialize");
        }
        case.apply_edits(&mut value);
        let result = if case.update {
            api.replace(&name, &PostParams::default(), &object(value))
                .await
        } else {
            api.create(&PostParams::default(), &object(value)).await
        };
        match result {
            Ok(_) => failures.push(format!(
                "{:?} {}: accepted, expected a refusal with {:?}",
                case.kind, case.what, case.expect
            )),
            Err(kube::Error::Api(status))
                if status.code == 422 && status.message.contains(case.expect) =>
            {
                println!(
                    "refused as expected: {:?} {}: {}",
                    case.kind, case.what, status.message
                );
            }
            Err(kube::Error::Api(status)) => failures.push(format!(
                "{:?} {}: refused with {} {:?}, expected a 422 containing {:?}",
                case.kind, case.what, status.code, status.message, case.expect
            )),
            Err(err) => failures.push(format!(
                "{:?} {}: request failed: {err}",
                case.kind, case.what
            )),
        }
    }
    println!("{} invalid-manifest cases checked", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
