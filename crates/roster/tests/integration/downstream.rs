//! Downstream outages (issue 15, point 2): the learning platform down for a while
//! (answering 503, or refusing connections), and a calendar whose calls hang until the
//! timeout. What the stand-ins hold and log at the end is the evidence: every leaver
//! done, every operation applied once, no duplicate, no deadline moved; the Tenant
//! says which connector is unreachable while it is; a revocation does not wait behind
//! other people's stuck hand-overs.
//!
//! The outage lasts `ROSTER_OUTAGE_SECS` seconds (30 by default; the `#[ignore]`d
//! variants run five minutes):
//! `ROSTER_OUTAGE_SECS=300 cargo test -p roster --test integration downstream -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use roster_api::{DirectoryUser, Phase, StepName, StepState, Tenant};
use roster_standins::calendar::CalendarSeed;
use roster_standins::calendar::google::{GoogleCalendarStandin, routes};
use roster_standins::lms::{Fault, LmsSeed, LmsStandIn, LmsState};

use crate::deprovisioning::{
    CalendarAt, LMS_TOKEN, assert_each_applied_once, create_user, deprovision_now, email, person,
    report, small_company, tenant,
};
use crate::support::{Operator, TestEnv, effects, wait_object, wait_phase, wait_status};

/// How the learning platform goes away.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Every request answered 503 (the stand-in's fault injection).
    Unavailable,
    /// The listener closed: connections are refused, then it comes back on the same port.
    Refused,
}

fn outage_length(default: Duration) -> Duration {
    std::env::var("ROSTER_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(default, Duration::from_secs)
}

/// The deadlines a leaver's status carries.
fn deadlines(user: &DirectoryUser) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let status = user.status.as_ref().expect("status");
    (status.deprovision_due_time, status.purge_due_time)
}

fn user_name(id: &str) -> String {
    format!("e-{}", id.to_ascii_lowercase())
}

/// The Tenant's `ConnectorsReachable` condition, once it has `ok` (waits, watching).
async fn wait_reachable(env: &TestEnv, ok: bool) -> roster_api::Condition {
    let want = roster_api::condition::ConditionStatus::from(ok);
    let tenant = wait_object(
        env.api::<Tenant>(),
        "acme",
        &format!("ConnectorsReachable={want:?}"),
        move |t: Option<&Tenant>| {
            t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.r#type == "ConnectorsReachable" && c.status == want)
            })
        },
    )
    .await
    .expect("the Tenant");
    tenant
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "ConnectorsReachable")
        .unwrap()
}

/// Twenty leavers, half of them triggered just before the platform goes away and half
/// while it is away; then it comes back. Prints the figures.
async fn platform_outage(outage: Outage, length: Duration) {
    let env = TestEnv::new(&format!("outage-{outage:?}")).await;
    let (seed, ids) = small_company(20);
    let mut lms = Some(
        LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, seed).unwrap())
            .await
            .unwrap(),
    );
    let state = lms.as_ref().unwrap().state().clone();
    let addr = lms.as_ref().unwrap().addr();
    tenant(&env, lms.as_ref().unwrap(), None, "M000", "0s", "2s").await;
    create_user(&env, person("M000", None)).await;
    for id in &ids {
        create_user(&env, person(id, Some("M000"))).await;
    }
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    for id in &ids {
        wait_phase(&env, &user_name(id), Phase::Active).await;
    }
    wait_reachable(&env, true).await;
    let (before, during) = ids.split_at(ids.len() / 2);

    // The first half leaves; the platform goes away as soon as one of them is revoked,
    // with the others somewhere in their steps.
    for id in before {
        deprovision_now(&env, &user_name(id)).await;
    }
    wait_status(&env, &user_name(&before[0]), "access revoked", |s| {
        s.steps
            .iter()
            .any(|s| s.name == StepName::RevokeAccess && s.state == StepState::Succeeded)
    })
    .await;
    let down_at = Utc::now();
    let started = Instant::now();
    let fault = match outage {
        Outage::Unavailable => Some(state.add_fault(Fault::on("*").fail(503))),
        Outage::Refused => {
            lms.take().unwrap().shutdown().await;
            None
        }
    };
    // The second half leaves while it is away.
    for id in during {
        deprovision_now(&env, &user_name(id)).await;
    }
    let users = env.api::<DirectoryUser>();
    let mut first_deadlines = Vec::new();
    for id in &ids {
        let user = wait_status(&env, &user_name(id), "deadlines set", |s| {
            s.purge_due_time.is_some()
        })
        .await;
        first_deadlines.push((id.clone(), deadlines(&user)));
    }
    let condition = wait_reachable(&env, false).await;
    let reported_after = started.elapsed();
    println!(
        "{outage:?}: ConnectorsReachable=False after {reported_after:.1?}: {} / {}",
        condition.reason, condition.message
    );
    assert_eq!(condition.reason, "Unreachable");
    assert!(condition.message.contains("learning platform"));
    let category = match outage {
        Outage::Unavailable => "HTTP 503",
        Outage::Refused => "connection failed",
    };
    assert!(
        condition.message.contains(category),
        "{}",
        condition.message
    );
    assert!(!condition.message.contains("http") && !condition.message.contains('@'));

    // The rest of the outage.
    tokio::time::sleep(length.saturating_sub(started.elapsed())).await;
    let up_at = Utc::now();
    let ended = Instant::now();
    match outage {
        Outage::Unavailable => {
            state.remove_fault(fault.unwrap());
        }
        Outage::Refused => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .expect("the stand-in's port again");
            lms = Some(LmsStandIn::start_on(listener, state.clone()).await.unwrap());
        }
    }
    let down_secs = (up_at - down_at).num_milliseconds() as f64 / 1000.0;
    let calls_while_down: Vec<_> = state
        .calls()
        .into_iter()
        .filter(|c| c.at >= down_at && c.at < up_at)
        .collect();
    let mut per_second = std::collections::BTreeMap::<i64, usize>::new();
    for c in &calls_while_down {
        *per_second.entry(c.at.timestamp()).or_default() += 1;
    }
    let peak = per_second.values().max().copied().unwrap_or(0);
    // The outage's second half: the steady rate once every step backs off.
    let half = down_at + (up_at - down_at) / 2;
    let late = calls_while_down.iter().filter(|c| c.at >= half).count();
    println!(
        "{outage:?}: down {down_secs:.1} s, {} calls reached the stand-in while down ({:.2}/s on average, peak {peak} in one second, {:.2}/s over its second half)",
        calls_while_down.len(),
        calls_while_down.len() as f64 / down_secs,
        late as f64 / (down_secs / 2.0)
    );

    let first_success = loop {
        if let Some(c) = state
            .calls()
            .into_iter()
            .find(|c| c.at >= up_at && c.status < 300 && c.method != "GET")
        {
            break c.at;
        }
        assert!(
            ended.elapsed() < Duration::from_secs(120),
            "no call resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "{outage:?}: first applied call {:.1} s after the end",
        (first_success - up_at).num_milliseconds() as f64 / 1000.0,
    );
    let condition = wait_reachable(&env, true).await;
    println!(
        "{outage:?}: ConnectorsReachable=True {:.1?} after the platform came back ({})",
        ended.elapsed(),
        condition.reason
    );
    for id in &ids {
        wait_phase(&env, &user_name(id), Phase::Purged).await;
    }
    println!(
        "{outage:?}: all {} leavers purged {:.1?} after the end",
        ids.len(),
        ended.elapsed()
    );
    report(
        &format!("{outage:?} outage of {down_secs:.0} s"),
        lms.as_ref().unwrap(),
        ids.len(),
    );

    // Nothing lost, nothing twice, no deadline moved.
    assert_each_applied_once(&state, ids.len());
    let mut lost = 0;
    // Tries of steps that failed (the stand-in cannot count what it refused).
    let mut failed_tries = 0;
    for (id, first) in &first_deadlines {
        let user = users.get(&user_name(id)).await.unwrap();
        assert_eq!(&deadlines(&user), first, "{id}'s deadlines moved");
        failed_tries += user
            .status
            .as_ref()
            .map_or(0, |s| s.steps.iter().map(|s| s.attempts - 1).sum::<i32>());
        if !state.user(id).is_some_and(|u| u.purged) {
            lost += 1;
        }
    }
    println!("{outage:?}: {failed_tries} failed step attempts in all; duplicates 0, lost {lost}");
    assert_eq!(lost, 0);
}

#[tokio::test]
async fn the_learning_platform_answering_503_for_a_while_delays_but_loses_nothing() {
    platform_outage(Outage::Unavailable, outage_length(Duration::from_secs(30))).await;
}

#[tokio::test]
async fn the_learning_platform_refusing_connections_for_a_while_delays_but_loses_nothing() {
    platform_outage(Outage::Refused, outage_length(Duration::from_secs(30))).await;
}

#[tokio::test]
#[ignore = "five minutes; run for the figures (docs/performance.md)"]
async fn the_learning_platform_answering_503_for_five_minutes() {
    platform_outage(Outage::Unavailable, outage_length(Duration::from_secs(300))).await;
}

#[tokio::test]
#[ignore = "five minutes; run for the figures (docs/performance.md)"]
async fn the_learning_platform_refusing_connections_for_five_minutes() {
    platform_outage(Outage::Refused, outage_length(Duration::from_secs(300))).await;
}

/// `stuck` leavers who each organize one calendar event, a manager M000 (the fallback
/// owner), and one more person, N001, who leaves later.
fn calendar_company(stuck: usize) -> (LmsSeed, CalendarSeed, Vec<String>) {
    let ids: Vec<String> = (1..=stuck).map(|i| format!("S{i:03}")).collect();
    let everyone: Vec<String> = ["M000".to_string(), "N001".to_string()]
        .into_iter()
        .chain(ids.iter().cloned())
        .collect();
    let mut lms = String::from("users:\n");
    for id in &everyone {
        lms += &format!(
            "  - {{ employeeId: {id}, fullName: Person {id}, email: {}, calendarAccess: true }}\n",
            email(id)
        );
    }
    lms += "events:\n";
    let mut calendar = format!(
        "users: [{}]\nevents:\n",
        everyone
            .iter()
            .map(|id| email(id))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for id in &ids {
        lms += &format!(
            "  - {{ id: ev-{id}, title: Course, startsAt: \"+5d\", organizer: {id}, capacity: 3, calendarEventId: cal-{id}, calendarOwner: {id} }}\n"
        );
        calendar += &format!(
            "  - {{ id: cal-{id}, organizer: {}, summary: Course, start: \"2030-02-04T09:00:00Z\", end: \"2030-02-04T10:00:00Z\" }}\n",
            email(id)
        );
    }
    (
        LmsSeed::from_yaml_str(&lms).unwrap(),
        CalendarSeed::from_yaml_str(&calendar).unwrap(),
        ids,
    )
}

#[tokio::test]
async fn a_revocation_does_not_wait_behind_hand_overs_stuck_on_a_calendar() {
    let env = TestEnv::new("no-hol").await;
    let concurrency = usize::from(roster::controller::Options::default().concurrency);
    // More stuck leavers than reconciles run at once.
    let (lms_seed, calendar_seed, stuck) = calendar_company(concurrency + 4);
    let lms = LmsStandIn::start(LmsState::with_seed(LMS_TOKEN, lms_seed).unwrap())
        .await
        .unwrap();
    let google = GoogleCalendarStandin::start().await.unwrap();
    google.seed(&calendar_seed).unwrap();
    tenant(
        &env,
        &lms,
        Some(CalendarAt::google(&google)),
        "M000",
        "0s",
        "1h",
    )
    .await;
    for id in ["M000", "N001"]
        .iter()
        .copied()
        .chain(stuck.iter().map(String::as_str))
    {
        create_user(&env, person(id, None)).await;
    }
    let _operator = Operator::start(&env.client, &env.namespace, effects(&env));
    wait_phase(&env, "e-n001", Phase::Active).await;
    for id in &stuck {
        wait_phase(&env, &user_name(id), Phase::Active).await;
    }

    // Listing a calendar now takes a minute: longer than the connector's timeout (10 s),
    // so every hand-over hangs in it until the timeout, four tries in a row.
    google.control().set_fault(
        routes::LIST_EVENTS,
        roster_standins::calendar::Fault::latency(Duration::from_secs(60)),
    );
    for id in &stuck {
        deprovision_now(&env, &user_name(id)).await;
    }
    for id in &stuck {
        wait_phase(&env, &user_name(id), Phase::Deprovisioning).await;
    }
    // Every stage-2 slot is taken: that many hand-overs have read the platform and
    // wait on the calendar.
    let slots = concurrency - concurrency / 4;
    let waiting = crate::support::poll(
        "hand-overs waiting on the calendar",
        Duration::from_millis(100),
        || {
            let n = lms.state().calls_of("listInvolvements").len();
            async move { (n >= slots).then_some(n) }
        },
    )
    .await;

    let asked = Instant::now();
    deprovision_now(&env, "e-n001").await;
    let revoked = wait_status(&env, "e-n001", "access revoked", |s| {
        s.steps
            .iter()
            .any(|s| s.name == StepName::RevokeAccess && s.state == StepState::Succeeded)
    })
    .await;
    let latency = asked.elapsed();
    // Proof that it did not wait for them: no stuck hand-over has finished a try yet
    // (each try waits out four 10 s timeouts).
    let users = env.api::<DirectoryUser>();
    let mut still_stuck = 0;
    for id in &stuck {
        let user = users.get(&user_name(id)).await.unwrap();
        let calendar = user
            .status
            .as_ref()
            .and_then(|s| {
                s.steps
                    .iter()
                    .find(|s| s.name == StepName::TransferCalendarEvents)
            })
            .expect("the calendar step");
        if calendar.state == StepState::Pending {
            still_stuck += 1;
        }
    }
    let status = revoked.status.unwrap();
    println!(
        "revocation behind {} stuck hand-overs ({waiting} waiting in calendar calls, {concurrency} reconciles, {slots} stage-2 slots): seen {latency:.2?} after the request (trigger to revocation in status: {} ms); {still_stuck} still stuck",
        stuck.len(),
        status
            .steps
            .iter()
            .find(|s| s.name == StepName::RevokeAccess)
            .and_then(|s| s.completion_time)
            .zip(status.trigger_time)
            .map_or(-1, |(done, trigger)| (done - trigger).num_milliseconds()),
    );
    assert_eq!(
        still_stuck,
        stuck.len(),
        "the revocation waited until stuck hand-overs gave up"
    );

    // The calendar answers again: every hand-over completes, each event moved once.
    google.control().clear_faults();
    for id in &stuck {
        wait_phase(&env, &user_name(id), Phase::Deprovisioned).await;
        assert_eq!(
            google.event(&format!("cal-{id}")).map(|e| e.organizer),
            Some(email("M000"))
        );
    }
    wait_phase(&env, "e-n001", Phase::Deprovisioned).await;
    assert!(google.duplicates().is_empty(), "{:?}", google.duplicates());
    assert!(lms.state().duplicates().is_empty());
    assert_eq!(lms.state().applied_count("revokeAccess"), stuck.len() + 1);
}
