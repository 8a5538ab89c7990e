//! Throughput of the pure lifecycle: how many decisions per second one core makes
//! for users at rest, in quarantine, and running stage-2 steps, and how large a
//! user's persisted status is. Prints figures; asserts nothing.
//!
//! Run: `cargo bench --bench lifecycle`

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use roster_api::{DirectoryUserSpec, DirectoryUserStatus};
use roster_lifecycle::{Observed, Outcome, Policy, TenantSettings, record_outcome, step};

fn person(i: usize) -> DirectoryUserSpec {
    DirectoryUserSpec {
        tenant_ref: "acme".into(),
        employee_id: format!("{i:06}"),
        full_name: format!("Person {i}"),
        email: format!("person{i}@example.com"),
        ..Default::default()
    }
}

/// Decisions per second for `users`, each decided `rounds` times at `now`.
fn measure(
    label: &str,
    users: &[(DirectoryUserSpec, DirectoryUserStatus)],
    policy: &Policy,
    tenant: &TenantSettings,
    now: DateTime<Utc>,
) {
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        for (i, (spec, status)) in users.iter().enumerate() {
            let uid = format!("uid-{i}");
            let observed = Observed {
                uid: &uid,
                generation: Some(1),
                deleting: false,
                spec,
                status,
                requests: Default::default(),
                manager: Default::default(),
                guard: Default::default(),
            };
            black_box(step(&observed, policy, tenant, now));
        }
    }
    let elapsed = started.elapsed();
    let decisions = (users.len() * rounds) as f64;
    println!(
        "{label:<34} {:>10.0} decisions/s  {:>7.2} µs/decision",
        decisions / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / decisions
    );
}

fn main() {
    let policy = Policy::default();
    let tenant = TenantSettings {
        time_zone: "Europe/Berlin".parse().unwrap(),
        ..Default::default()
    };
    let t0: DateTime<Utc> = "2026-03-01T09:00:00Z".parse().unwrap();
    let n = 10_000;

    // Settle each population once, as the controller would, then measure re-deciding.
    let settle = |spec: DirectoryUserSpec, now: DateTime<Utc>| {
        let mut status = DirectoryUserStatus::default();
        for _ in 0..10 {
            let observed = Observed {
                uid: "uid",
                generation: Some(1),
                deleting: false,
                spec: &spec,
                status: &status,
                requests: Default::default(),
                manager: Default::default(),
                guard: Default::default(),
            };
            let decision = step(&observed, &policy, &tenant, now);
            status = decision.status;
            if decision.actions.is_empty() {
                break;
            }
            for action in decision.actions {
                record_outcome(
                    &mut status,
                    action.step,
                    Outcome::Succeeded {
                        summary: "done".into(),
                        warning: None,
                    },
                    now,
                );
            }
        }
        (spec, status)
    };
    let active: Vec<_> = (0..n).map(|i| settle(person(i), t0)).collect();
    let quarantined: Vec<_> = (0..n)
        .map(|i| {
            settle(
                DirectoryUserSpec {
                    active: false,
                    ..person(i)
                },
                t0,
            )
        })
        .collect();
    let terminating: Vec<_> = (0..n)
        .map(|i| {
            settle(
                DirectoryUserSpec {
                    termination_date: Some("2026-06-30".parse().unwrap()),
                    ..person(i)
                },
                t0,
            )
        })
        .collect();

    println!("roster lifecycle::step on one core, {n} users per population");
    measure(
        "active, at rest",
        &active,
        &policy,
        &tenant,
        t0 + chrono::Duration::seconds(60),
    );
    measure(
        "future termination (time zone)",
        &terminating,
        &policy,
        &tenant,
        t0,
    );
    measure(
        "quarantined, waiting",
        &quarantined,
        &policy,
        &tenant,
        t0 + chrono::Duration::hours(1),
    );
    measure(
        "quarantine ends (starts stage 2)",
        &quarantined,
        &policy,
        &tenant,
        t0 + chrono::Duration::days(8),
    );

    let (_, status) = &quarantined[0];
    let bytes = serde_json::to_vec(status).unwrap().len();
    println!("persisted status of a quarantined user: {bytes} bytes of JSON");
}
