//! Health for GitOps tools, on statuses the operator wrote to the real API server:
//! the Argo CD health checks in `docs/argocd/` (Lua, run by Debian's `lua5.1`, the
//! dialect of Argo CD's gopher-lua, and `lua5.4`) give the expected status for each
//! phase and condition combination, with messages free of personal data; the
//! `argocd-cm` snippet carries the same scripts; and `kubectl wait
//! --for=condition=Ready` (the harness's kubectl) returns for each kind that has one.

use std::path::PathBuf;
use std::sync::Arc;

use kube::Api;
use roster::effects::memory::MemoryEffects;
use roster_api::{
    Departure, DeprovisionPolicy, DeprovisionPolicySpec, DirectoryUser, DirectoryUserSpec, Phase,
    Tenant, TenantSpec,
};
use serde_json::{Value, json};

use crate::support::{Operator, TestEnv, apply, kubectl, wait_object, wait_phase, wait_status};

/// A Lua table constructor for a JSON value, as Argo CD hands objects to its scripts
/// (objects and arrays become tables, null becomes nil).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    0x20..=0x7e => out.push(byte as char),
                    // Decimal escapes are the one byte escape Lua 5.1 and 5.4 share.
                    _ => out.push_str(&format!("\\{byte}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    format!(
                        "[{}] = {}",
                        lua_literal(&Value::from(k.as_str())),
                        lua_literal(v)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// The Lua interpreters on this machine (`.ci/run` installs both from Debian).
fn interpreters() -> Vec<&'static str> {
    let found: Vec<&str> = ["lua5.1", "lua5.4"]
        .into_iter()
        .filter(|lua| {
            std::process::Command::new(lua)
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no Lua interpreter: apt-get install lua5.1 lua5.4 (.ci/run does)"
    );
    found
}

fn script(name: &str) -> PathBuf {
    roster_testkit::repo_path("docs/argocd").join(name)
}

/// `(status, message)` of the health check `script_name` for `object`, the same from
/// every interpreter.
fn health(script_name: &str, object: &Value) -> (String, String) {
    let driver = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\n\", hs.message or \"\", \"\\n\")\n",
        lua_literal(object),
        lua_literal(&Value::from(script(script_name).to_str().unwrap()))
    );
    let file = std::env::temp_dir().join(format!(
        "roster-health-{}-{}.lua",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&file, driver).unwrap();
    let mut answers = Vec::new();
    for lua in interpreters() {
        let output = std::process::Command::new(lua).arg(&file).output().unwrap();
        assert!(
            output.status.success(),
            "{lua} {script_name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let mut lines = text.lines();
        let status = lines.next().unwrap_or_default().to_string();
        let message = lines.next().unwrap_or_default().to_string();
        answers.push((lua, status, message));
    }
    let _ = std::fs::remove_file(&file);
    let (_, status, message) = answers[0].clone();
    for (lua, s, m) in &answers {
        assert_eq!(
            (s, m),
            (&status, &message),
            "{lua} agrees with {}",
            answers[0].0
        );
    }
    (status, message)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The people of this test; their names and emails must never reach a health message.
fn person(tenant: &str, id: &str, active: bool) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: tenant.into(),
        employee_id: id.into(),
        full_name: format!("Healthcheck Person{id}"),
        email: format!("healthcheck.person{id}@example.com"),
        active,
        ..Default::default()
    }
}

async fn tenant(
    env: &TestEnv,
    name: &str,
    policy: DeprovisionPolicySpec,
    edit: impl FnOnce(&mut TenantSpec),
) {
    apply(
        &env.api::<DeprovisionPolicy>(),
        name,
        &DeprovisionPolicy::new(name, policy),
    )
    .await;
    let mut spec = crate::support::tenant_spec("http://127.0.0.1:1/api/v1");
    spec.policy_ref.name = name.into();
    edit(&mut spec);
    apply(&env.api::<Tenant>(), name, &Tenant::new(name, spec)).await;
}

fn policy(quarantine: &str, purge: &str) -> DeprovisionPolicySpec {
    DeprovisionPolicySpec {
        quarantine_period: quarantine.into(),
        purge_deadline: purge.into(),
        ..Default::default()
    }
}

async fn user(env: &TestEnv, name: &str, spec: DirectoryUserSpec) {
    apply(
        &env.api::<DirectoryUser>(),
        name,
        &DirectoryUser::new(name, spec),
    )
    .await;
}

/// The object as Argo CD reads it: the live JSON from the API server.
async fn live<K>(api: &Api<K>, name: &str) -> Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    serde_json::to_value(api.get(name).await.expect("get the object")).unwrap()
}

#[tokio::test]
async fn argo_cd_health_checks_read_real_statuses() {
    let env = TestEnv::new("health").await;
    crate::support::credentials_secret(&env).await;
    let mut cases: Vec<(String, &str, Value, &str)> = Vec::new();
    let users = env.api::<DirectoryUser>();
    let tenants = env.api::<Tenant>();

    // Before the operator has seen them: no status at all.
    tenant(&env, "acme", policy("1h", "2h"), |_| {}).await;
    user(&env, "e-new", person("acme", "new", true)).await;
    cases.push((
        "Tenant without status".into(),
        "health-tenant.lua",
        live(&tenants, "acme").await,
        "Progressing",
    ));
    cases.push((
        "DirectoryUser without status".into(),
        "health-directoryuser.lua",
        live(&users, "e-new").await,
        "Progressing",
    ));

    tenant(&env, "fast", policy("0s", "1s"), |_| {}).await;
    tenant(&env, "anon", policy("0s", "1h"), |_| {}).await;
    tenant(&env, "paused", policy("1h", "2h"), |t| t.suspend = true).await;
    tenant(
        &env,
        "dry",
        DeprovisionPolicySpec {
            dry_run: true,
            ..policy("0s", "1h")
        },
        |_| {},
    )
    .await;
    tenant(&env, "broken", policy("1h", "2h"), |t| {
        t.learning_platform.credentials_secret_ref.name = "no-such-secret".into();
    })
    .await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));

    user(&env, "e-active", person("acme", "active", true)).await;
    user(&env, "e-quarantined", person("acme", "quarantined", false)).await;
    user(&env, "e-departed", person("acme", "departed", true)).await;
    user(&env, "e-purged", person("fast", "purged", false)).await;
    user(
        &env,
        "e-deprovisioned",
        person("anon", "deprovisioned", false),
    )
    .await;
    user(&env, "e-paused", person("paused", "paused", false)).await;
    user(&env, "e-dry", person("dry", "dry", false)).await;
    user(&env, "e-orphan", person("nowhere", "orphan", true)).await;

    // Settled in each phase: Ready (roster_lifecycle's conditions), nothing running.
    let settled = |phase: Phase| {
        move |s: &roster_api::DirectoryUserStatus| {
            s.phase == phase
                && crate::support::condition(s, "Ready")
                    .is_some_and(|c| c.status == roster_api::ConditionStatus::True)
        }
    };
    // Active and still being provisioned (the account sync is one action): a real,
    // fleeting state, caught when it shows.
    let provisioning = wait_phase(&env, "e-active", Phase::Active).await;
    if provisioning
        .status
        .as_ref()
        .is_some_and(|s| !settled(Phase::Active)(s))
    {
        cases.push((
            "Active, being provisioned".into(),
            "health-directoryuser.lua",
            serde_json::to_value(&provisioning).unwrap(),
            "Progressing",
        ));
    }
    for (name, phase) in [
        ("e-active", Phase::Active),
        ("e-quarantined", Phase::Quarantined),
        ("e-deprovisioned", Phase::Deprovisioned),
        ("e-purged", Phase::Purged),
    ] {
        wait_status(&env, name, &format!("{phase} and Ready"), settled(phase)).await;
        // ...and the operator has seen its last spec change (the purge scrubs the spec).
        wait_object(users.clone(), name, "observedGeneration current", |u| {
            u.is_some_and(|u| {
                u.status.as_ref().and_then(|s| s.observed_generation) == u.metadata.generation
            })
        })
        .await;
        cases.push((
            format!("{phase}"),
            "health-directoryuser.lua",
            live(&users, name).await,
            "Healthy",
        ));
    }
    let quarantined = live(&users, "e-quarantined").await;
    for (case, name, condition, expected) in [
        ("tenant suspended", "e-paused", "Suspended", "Suspended"),
        ("policy in dry-run", "e-dry", "DryRun", "Healthy"),
        (
            "Stalled (no such Tenant)",
            "e-orphan",
            "Stalled",
            "Degraded",
        ),
    ] {
        wait_status(&env, name, condition, move |s| {
            crate::support::condition(s, condition)
                .is_some_and(|c| c.status == roster_api::ConditionStatus::True)
        })
        .await;
        cases.push((
            case.into(),
            "health-directoryuser.lua",
            live(&users, name).await,
            expected,
        ));
    }

    // A deleted user under onObjectDeletion: Quarantine carries on as a Departure.
    wait_status(
        &env,
        "e-departed",
        "Active and Ready",
        settled(Phase::Active),
    )
    .await;
    users
        .delete("e-departed", &Default::default())
        .await
        .unwrap();
    let departures = env.api::<Departure>();
    wait_object(
        departures.clone(),
        "e-departed",
        "a quarantined Departure",
        move |d| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(settled(Phase::Quarantined))
        },
    )
    .await;
    let departure = live(&departures, "e-departed").await;
    cases.push((
        "Departure, Quarantined".into(),
        "health-directoryuser.lua",
        departure,
        "Healthy",
    ));

    // Tenants.
    let ready = |t: Option<&Tenant>, want: &str| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "Ready" && format!("{:?}", c.status) == want)
        })
    };
    for (case, name, ready_status, expected) in [
        ("Tenant Ready", "acme", "True", "Healthy"),
        (
            "Tenant with a missing Secret",
            "broken",
            "False",
            "Degraded",
        ),
        ("Tenant suspended", "paused", "True", "Suspended"),
    ] {
        wait_object(tenants.clone(), name, "checked", move |t| {
            ready(t, ready_status)
        })
        .await;
        cases.push((
            case.into(),
            "health-tenant.lua",
            live(&tenants, name).await,
            expected,
        ));
    }
    // What the operator writes only for moments (a step running, failing and retried),
    // what needs a deletion or an edit not yet seen, and the Held phase (the guard that
    // holds users is not implemented yet, docs/lifecycle.md): real statuses, edited as
    // the operator would write them (the reasons and messages of roster_lifecycle).
    let mut edited = |name: &str,
                      base: &Value,
                      script: &'static str,
                      expected: &'static str,
                      edit: &dyn Fn(&mut Value)| {
        let mut object = base.clone();
        edit(&mut object);
        cases.push((name.into(), script, object, expected));
    };
    // Sets a condition, adding it when missing (`Reconciling` and `Stalled` are only
    // there while True).
    let set = |object: &mut Value, kind: &str, status: &str, reason: &str, message: &str| {
        let conditions = object["status"]["conditions"].as_array_mut().unwrap();
        if !conditions.iter().any(|c| c["type"] == kind) {
            let mut added = conditions[0].clone();
            added["type"] = kind.into();
            conditions.push(added);
        }
        for c in conditions {
            if c["type"] == kind {
                c["status"] = status.into();
                c["reason"] = reason.into();
                c["message"] = message.into();
            }
        }
    };
    const RUNNING: (&str, &str, &str, &str) = (
        "Reconciling",
        "True",
        "Progressing",
        "lifecycle steps are running or waiting to be retried",
    );
    const STEP_FAILED: (&str, &str, &str, &str) = (
        "Ready",
        "False",
        "StepFailed",
        "1 step(s) failed and will be retried; see status.steps",
    );
    for (case, phase, conditions, expected) in [
        (
            "Deprovisioning",
            "Deprovisioning",
            vec![
                (
                    "Ready",
                    "False",
                    "Progressing",
                    "full deprovisioning in progress",
                ),
                RUNNING,
            ],
            "Progressing",
        ),
        (
            "a step failed, retried",
            "Deprovisioning",
            vec![STEP_FAILED, RUNNING],
            "Progressing",
        ),
        (
            "a step failing 5 times",
            "Deprovisioning",
            vec![
                STEP_FAILED,
                (
                    "Stalled",
                    "True",
                    "StepFailing",
                    "TransferEvents failed 5 times (last error: HTTP 503)",
                ),
            ],
            "Degraded",
        ),
        (
            "Held",
            "Held",
            vec![(
                "Ready",
                "True",
                "Held",
                "held by the mass-deprovisioning guard until approved",
            )],
            "Suspended",
        ),
    ] {
        edited(
            case,
            &quarantined,
            "health-directoryuser.lua",
            expected,
            &|o| {
                o["status"]["phase"] = phase.into();
                for (kind, status, reason, message) in &conditions {
                    set(o, kind, status, reason, message);
                }
            },
        );
    }
    edited(
        "a spec edit not yet seen",
        &quarantined,
        "health-directoryuser.lua",
        "Progressing",
        &|o| {
            o["metadata"]["generation"] =
                json!(o["status"]["observedGeneration"].as_i64().unwrap() + 1);
        },
    );
    let acme = live(&tenants, "acme").await;
    edited(
        "Tenant with held users",
        &acme,
        "health-tenant.lua",
        "Healthy",
        &|o| {
            o["status"]["userCounts"]["held"] = json!(2);
        },
    );
    edited(
        "Tenant being deleted",
        &acme,
        "health-tenant.lua",
        "Progressing",
        &|o| {
            o["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z".into();
            set(
                o,
                "Ready",
                "False",
                "Exiting",
                "tenant exit, stage 2/3 (DeleteObjects): deleting the tenant's objects; 4 DirectoryUser(s), 0 Departure(s), 0 DirectoryGroup(s) remaining",
            );
        },
    );
    edited(
        "Tenant edit not yet seen",
        &acme,
        "health-tenant.lua",
        "Progressing",
        &|o| {
            o["metadata"]["generation"] =
                json!(o["status"]["observedGeneration"].as_i64().unwrap() + 1);
        },
    );

    // Every case, through every interpreter; no message carries a name or an email.
    let mut pii: Vec<String> = Vec::new();
    for list in [users.list(&Default::default()).await.unwrap().items] {
        for u in list {
            pii.push(u.spec.full_name.clone());
            pii.push(u.spec.email.clone());
        }
    }
    pii.push("Healthcheck".into());
    pii.push("@example.com".into());
    println!("{:<32} {:<12} message", "case", "health");
    for (name, script, object, expected) in &cases {
        let (status, message) = health(script, object);
        println!("{name:<32} {status:<12} {message}");
        assert_eq!(status, *expected, "{name}: {message}\n{object:#}");
        assert!(!message.is_empty(), "{name}: a message");
        for word in &pii {
            assert!(
                !message.contains(word.as_str()),
                "{name}: the message carries personal data: {message}"
            );
        }
    }
}

/// `docs/argocd/argocd-cm.yaml` carries exactly the scripts that are tested, under
/// Argo CD's keys for each kind.
#[test]
fn the_argocd_cm_snippet_carries_the_tested_scripts() {
    let text = std::fs::read_to_string(script("argocd-cm.yaml")).unwrap();
    let config: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(config["kind"], "ConfigMap");
    assert_eq!(config["metadata"]["name"], "argocd-cm");
    for (kind, file) in [
        ("DirectoryUser", "health-directoryuser.lua"),
        ("Departure", "health-directoryuser.lua"),
        ("Tenant", "health-tenant.lua"),
    ] {
        let key = format!("resource.customizations.health.roster.dev_{kind}");
        let embedded = config["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm.yaml has no {key}"));
        let file = std::fs::read_to_string(script(file)).unwrap();
        assert_eq!(embedded.trim(), file.trim(), "{key} is {file}");
    }
}

/// `kubectl wait --for=condition=Ready` returns for a Tenant, a DirectoryUser and a
/// Departure (DeprovisionPolicy has no status: the Tenant's `PolicyResolved` says
/// whether its policy is in use), and keeps waiting for one that is not Ready, whose
/// `Stalled` condition it can wait for instead.
#[tokio::test]
async fn kubectl_wait_for_ready_works_for_each_kind() {
    let env = TestEnv::new("kubectl-wait").await;
    crate::support::credentials_secret(&env).await;
    tenant(&env, "acme", policy("1h", "2h"), |_| {}).await;
    let _operator = Operator::start(&env.client, &env.namespace, Arc::new(MemoryEffects::new()));
    user(&env, "e-1", person("acme", "1", true)).await;
    user(&env, "e-2", person("acme", "2", true)).await;
    user(&env, "e-3", person("nowhere", "3", true)).await;
    tenant(&env, "fast", policy("0s", "1s"), |_| {}).await;
    user(&env, "e-4", person("fast", "4", false)).await;
    let ns = env.namespace.as_str();
    let wait = |args: &[&str]| {
        let mut all = vec!["wait", "-n", ns, "--timeout=60s"];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl(&args).await
    };
    run(wait(&["--for=condition=Ready", "tenant/acme"]))
        .await
        .assert_success("wait for the Tenant");
    run(wait(&["--for=condition=PolicyResolved", "tenant/acme"]))
        .await
        .assert_success("wait for the Tenant's policy");
    run(wait(&[
        "--for=condition=Ready",
        "directoryuser/e-1",
        "du/e-2",
    ]))
    .await
    .assert_success("wait for the users");
    // The user leaves: Ready again once quarantined.
    user(&env, "e-1", person("acme", "1", false)).await;
    run(wait(&[
        "--for=jsonpath={.status.phase}=Quarantined",
        "du/e-1",
    ]))
    .await
    .assert_success("wait for the quarantine");
    run(wait(&["--for=condition=Ready", "du/e-1"]))
        .await
        .assert_success("Ready in quarantine");
    run(wait(&["--for=condition=Purged", "du/e-4"]))
        .await
        .assert_success("wait for the purge");
    // A deleted user (onObjectDeletion: Quarantine): its Departure.
    env.api::<DirectoryUser>()
        .delete("e-2", &Default::default())
        .await
        .unwrap();
    run(wait(&["--for=delete", "du/e-2"]))
        .await
        .assert_success("the DirectoryUser goes at once");
    run(wait(&["--for=create", "departure/e-2"]))
        .await
        .assert_success("its Departure");
    run(wait(&["--for=condition=Ready", "departure/e-2"]))
        .await
        .assert_success("wait for the Departure");
    // Not Ready: kubectl keeps waiting (and times out); Stalled is there to wait for.
    run(wait(&["--for=condition=Stalled", "du/e-3"]))
        .await
        .assert_success("wait for Stalled");
    let mut short = wait(&["--for=condition=Ready", "du/e-3"]);
    short[3] = "--timeout=2s".into();
    let not_ready = run(short).await;
    assert!(
        !not_ready.success,
        "a stalled user is not Ready: {not_ready:?}"
    );
    let dpol = run(wait(&["--for=create", "deprovisionpolicy/acme"])).await;
    dpol.assert_success("a DeprovisionPolicy can be waited for to exist");
}
