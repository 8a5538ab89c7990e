//! The calendar connectors against the calendar stand-ins: Google Calendar v3
//! (`events.move`) and Microsoft Graph (re-create, then cancel), on the real wire
//! shapes. No Kubernetes API server is involved.
//!
//! The tests assert outcomes (who organizes what, who was told, what was applied
//! how many times), not the HTTP choreography. The clients hold what the services
//! issue (a Google service-account key, an Entra app's credentials) and mint their
//! tokens at the stand-ins' token endpoints.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use roster_api::CalendarProvider;
use roster_connectors::calendar::{
    CalendarConnector, CalendarError, CalendarEvent, EventKind, GoogleCalendar,
    GoogleCalendarConfig, GraphCalendar, GraphCalendarConfig, StaticToken, TokenSource,
    TransferOutcome, token_source_for,
};
use roster_standins::calendar::google::routes as google_routes;
use roster_standins::calendar::graph::routes as graph_routes;
use roster_standins::calendar::{
    CalendarSeed, Disposition, Fault, GoogleCalendarStandin, GraphCalendarStandin,
    NotificationKind, StandinEvent,
};

const LEAVER: &str = "avery.leaver@example.com";
const MANAGER: &str = "blake.manager@example.com";
const COHOST: &str = "casey.cohost@example.com";
const LEARNER: &str = "dana.learner@example.com";

/// Titles in the example seed: none may ever show up in an error.
const TITLES: &[&str] = &[
    "Onboarding cohort check-in",
    "Compliance training Q&A",
    "Leadership workshop",
];

fn seed() -> CalendarSeed {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/standins/calendar-seed.yaml"
    );
    CalendarSeed::from_yaml_file(path).expect("the example seed loads")
}

fn since() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

/// Per-user tokens minted with a new key of the stand-in's service account.
fn google_tokens(standin: &GoogleCalendarStandin) -> Arc<dyn TokenSource> {
    let key = standin.issue_service_account_key("roster");
    token_source(CalendarProvider::Google, standin.base_url(), &key)
}

/// App tokens of a newly registered app (client secret).
fn graph_tokens(standin: &GraphCalendarStandin) -> Arc<dyn TokenSource> {
    let credentials = standin.register_app();
    token_source(
        CalendarProvider::Microsoft,
        standin.base_url(),
        &credentials,
    )
}

fn token_source(provider: CalendarProvider, base: &str, credentials: &str) -> Arc<dyn TokenSource> {
    token_source_for(provider, base, credentials, Duration::from_secs(5))
        .expect("usable credentials")
        .expect("a token source")
}

fn google_client(standin: &GoogleCalendarStandin, page_size: u32) -> GoogleCalendar {
    google_client_with(standin, page_size, google_tokens(standin))
}

fn google_client_with(
    standin: &GoogleCalendarStandin,
    page_size: u32,
    token: Arc<dyn TokenSource>,
) -> GoogleCalendar {
    let config = GoogleCalendarConfig {
        base_url: standin.base_url().to_string(),
        timeout: Duration::from_secs(5),
        page_size,
        ..GoogleCalendarConfig::default()
    };
    GoogleCalendar::new(config, token).unwrap()
}

fn graph_client(standin: &GraphCalendarStandin, page_size: u32) -> GraphCalendar {
    graph_client_with(standin, page_size, graph_tokens(standin))
}

fn graph_client_with(
    standin: &GraphCalendarStandin,
    page_size: u32,
    token: Arc<dyn TokenSource>,
) -> GraphCalendar {
    let config = GraphCalendarConfig {
        base_url: standin.base_url().to_string(),
        timeout: Duration::from_secs(5),
        page_size,
        ..GraphCalendarConfig::default()
    };
    GraphCalendar::new(config, token).unwrap()
}

async fn google_seeded() -> GoogleCalendarStandin {
    let standin = GoogleCalendarStandin::start().await.unwrap();
    standin.seed(&seed()).unwrap();
    standin
}

async fn graph_seeded() -> GraphCalendarStandin {
    let standin = GraphCalendarStandin::start().await.unwrap();
    standin.seed(&seed()).unwrap();
    standin
}

async fn listed(connector: &dyn CalendarConnector, owner: &str) -> Vec<CalendarEvent> {
    connector
        .list_owned_upcoming(owner, since(), Utc::now())
        .await
        .expect("listing succeeds")
}

fn find<'a>(events: &'a [CalendarEvent], id: &str) -> &'a CalendarEvent {
    events
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("event {id} listed"))
}

fn ids(events: &[CalendarEvent]) -> Vec<&str> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids
}

/// Neither `Display` nor `Debug` of an error names a person or an event.
fn assert_pii_free(error: &CalendarError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains('@'), "an address leaked: {text}");
        assert!(!text.contains("example.com"), "a domain leaked: {text}");
        for title in TITLES {
            assert!(!text.contains(title), "a title leaked: {text}");
        }
    }
}

// ---- Google Calendar v3 ------------------------------------------------------------

#[tokio::test]
async fn google_lists_one_item_per_series_and_only_events_the_owner_organizes() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;

    // Not the focus-time block, not the event the leaver is only invited to, not the
    // past one, and the series' moved and cancelled occurrences ride with the series.
    assert_eq!(ids(&events), ["allday0001", "series0001", "single0001"]);
    let series = find(&events, "series0001");
    assert_eq!(series.kind, EventKind::SeriesMaster);
    assert!(series.recurring() && series.organizer_is_owner && series.summary_present);
    assert_eq!(
        series.starts_at,
        Some("2030-01-07T08:00:00Z".parse().unwrap())
    );
    assert_eq!(
        series.attendee_emails().collect::<Vec<_>>(),
        [COHOST, LEARNER, "room-214@example.com"]
    );
    assert!(series.attendees[2].resource);
    assert!(find(&events, "allday0001").all_day);

    // The listing asked for default events without expanding series.
    let calls = standin.control().calls_to(google_routes::LIST_EVENTS);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].owner.as_deref(), Some(LEAVER));
    assert_eq!(calls[0].disposition, Disposition::Read);

    // Debug output of a listed event never shows addresses or titles.
    let debug = format!("{events:?}");
    assert!(!debug.contains('@') && !TITLES.iter().any(|t| debug.contains(t)));
}

#[tokio::test]
async fn google_listing_follows_every_page() {
    let standin = GoogleCalendarStandin::start().await.unwrap();
    let start: DateTime<Utc> = "2030-04-01T09:00:00Z".parse().unwrap();
    for day in 0..7 {
        let at = start + TimeDelta::days(day);
        standin
            .insert(StandinEvent::at(LEAVER, at, at + TimeDelta::hours(1)).with_attendee(LEARNER))
            .unwrap();
        // Interleave events the leaver only attends.
        standin
            .insert(StandinEvent::at(MANAGER, at, at + TimeDelta::hours(1)).with_attendee(LEAVER))
            .unwrap();
    }
    let client = google_client(&standin, 3);
    let events = listed(&client, LEAVER).await;
    assert_eq!(events.len(), 7);
    assert!(events.iter().all(|e| e.organizer_is_owner));
    // 14 visible items, 3 per page.
    assert_eq!(
        standin.control().calls_to(google_routes::LIST_EVENTS).len(),
        5
    );
}

#[tokio::test]
async fn google_move_transfers_ownership_and_notifies_attendees() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;

    let series = find(&events, "series0001");
    let outcome = client
        .transfer(
            series,
            LEAVER,
            MANAGER,
            "user-1/calendar/series0001",
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        TransferOutcome::Transferred {
            event_id: "series0001".into()
        }
    );

    let moved = standin.event("series0001").unwrap();
    assert!(moved.organized_by(MANAGER));
    assert_eq!(
        moved.attendee_emails(),
        [COHOST, LEARNER, "room-214@example.com"]
    );
    // The whole series moved: its instances belong to the new organizer.
    assert_eq!(standin.instance_ids("series0001").len(), 10);
    assert!(!ids(&listed(&client, LEAVER).await).contains(&"series0001"));
    assert!(ids(&listed(&client, MANAGER).await).contains(&"series0001"));

    // Attendees were told (sendUpdates=all), the organizer was not.
    let update = standin
        .control()
        .notifications()
        .into_iter()
        .find(|n| n.event_id == "series0001")
        .expect("attendees notified");
    assert_eq!(update.kind, NotificationKind::Update);
    assert!(update.recipients.iter().any(|r| r == COHOST));
    assert!(!update.recipients.iter().any(|r| r == MANAGER));

    // The move carried the idempotency key and destination.
    let moves = standin.control().calls_to(google_routes::MOVE_EVENT);
    assert_eq!(moves.len(), 1);
    assert_eq!(
        moves[0].idempotency_key.as_deref(),
        Some("user-1/calendar/series0001")
    );
    assert_eq!(moves[0].destination.as_deref(), Some(MANAGER));
    assert_eq!(moves[0].disposition, Disposition::Applied);
}

#[tokio::test]
async fn google_move_drops_the_previous_owner_from_attendees() {
    let standin = GoogleCalendarStandin::start().await.unwrap();
    standin.add_user(COHOST);
    let at: DateTime<Utc> = "2030-05-06T10:00:00Z".parse().unwrap();
    let id = standin
        .insert(
            StandinEvent::at(LEAVER, at, at + TimeDelta::hours(1))
                .with_summary("Mentoring")
                .with_attendee(LEAVER)
                .with_attendee(COHOST)
                .with_attendee(LEARNER),
        )
        .unwrap();
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let outcome = client
        .transfer(find(&events, &id), LEAVER, COHOST, "k", Utc::now())
        .await
        .unwrap();
    assert!(matches!(outcome, TransferOutcome::Transferred { .. }));
    let moved = standin.event(&id).unwrap();
    assert!(moved.organized_by(COHOST));
    assert_eq!(moved.attendee_emails(), [COHOST, LEARNER]);
    // The leaver was removed quietly (the PATCH sends no cancellation).
    assert!(
        standin
            .control()
            .notifications()
            .iter()
            .all(|n| n.kind != NotificationKind::Cancellation)
    );
}

#[tokio::test]
async fn google_moving_one_instance_of_a_series_is_refused_for_good() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let instance_id = standin.instance_ids("series0001")[2].clone();
    let instance = CalendarEvent {
        id: instance_id,
        kind: EventKind::Occurrence,
        summary_present: true,
        organizer_is_owner: true,
        starts_at: None,
        all_day: false,
        attendees: Vec::new(),
    };
    let error = client
        .transfer(&instance, LEAVER, MANAGER, "k-instance", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::Rejected {
            status: 400,
            reason: "cannotChangeOrganizerOfInstance".into()
        }
    );
    assert!(!error.is_retryable());
    assert_eq!(error.retry_after(), None);
    assert_eq!(error.category(), "rejected");
    assert_pii_free(&error);
    assert!(standin.event("series0001").unwrap().organized_by(LEAVER));
    assert!(standin.duplicates().is_empty());
}

#[tokio::test]
async fn google_repeated_move_is_a_success_and_moves_once() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");

    let first = client
        .transfer(single, LEAVER, COHOST, "k-single", Utc::now())
        .await
        .unwrap();
    assert!(matches!(first, TransferOutcome::Transferred { .. }));
    let again = client
        .transfer(single, LEAVER, COHOST, "k-single", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        again,
        TransferOutcome::AlreadyTransferred {
            event_id: "single0001".into()
        }
    );
    assert!(standin.event("single0001").unwrap().organized_by(COHOST));
    let applied = standin
        .control()
        .calls_to(google_routes::MOVE_EVENT)
        .iter()
        .filter(|c| c.disposition == Disposition::Applied)
        .count();
    assert_eq!(applied, 1);
    assert!(
        standin.duplicates().is_empty(),
        "{:?}",
        standin.duplicates()
    );
}

#[tokio::test]
async fn google_move_whose_response_was_lost_is_recognised_on_retry() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");
    standin.control().set_fault(
        google_routes::MOVE_EVENT,
        Fault::status(503).times(1).after_apply(),
    );

    let error = client
        .transfer(single, LEAVER, COHOST, "k-lost", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        CalendarError::Unavailable { status: 503, .. }
    ));
    assert!(error.is_retryable());
    // It did move, the caller just did not hear; the retry finds it moved.
    let retry = client
        .transfer(single, LEAVER, COHOST, "k-lost", Utc::now())
        .await
        .unwrap();
    assert!(matches!(retry, TransferOutcome::AlreadyTransferred { .. }));
    assert!(
        standin.duplicates().is_empty(),
        "{:?}",
        standin.duplicates()
    );
}

#[tokio::test]
async fn google_transfer_of_a_vanished_event_or_to_a_missing_calendar() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let mut gone = find(&events, "single0001").clone();
    gone.id = "deleted00001".into();
    assert_eq!(
        client
            .transfer(&gone, LEAVER, MANAGER, "k", Utc::now())
            .await
            .unwrap(),
        TransferOutcome::SourceGone
    );
    let error = client
        .transfer(
            find(&events, "single0001"),
            LEAVER,
            "nobody@example.com",
            "k",
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert_eq!(error, CalendarError::NotFound);
    assert_pii_free(&error);
    assert!(standin.event("single0001").unwrap().organized_by(LEAVER));
}

#[tokio::test]
async fn google_rate_limits_server_errors_and_timeouts_are_retryable() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let control = standin.control();

    control.set_fault(
        google_routes::LIST_EVENTS,
        Fault::rate_limited(Some(Duration::from_secs(3))).times(1),
    );
    let error = client
        .list_owned_upcoming(LEAVER, since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert!(error.is_retryable());
    assert_pii_free(&error);

    // Google also reports usage limits as 403.
    control.set_fault(google_routes::LIST_EVENTS, Fault::usage_limit().times(1));
    let error = client
        .list_owned_upcoming(LEAVER, since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error.category(), "rate_limited");

    let events = listed(&client, LEAVER).await;
    control.set_fault(google_routes::MOVE_EVENT, Fault::status(500).times(1));
    let error = client
        .transfer(
            find(&events, "single0001"),
            LEAVER,
            MANAGER,
            "k",
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::Unavailable {
            status: 500,
            retry_after: None
        }
    );
    assert!(error.is_retryable());
    assert_pii_free(&error);
    assert!(standin.event("single0001").unwrap().organized_by(LEAVER));

    // Slower than the client's timeout.
    control.set_fault(
        google_routes::LIST_EVENTS,
        Fault::latency(Duration::from_secs(2)),
    );
    let impatient = GoogleCalendar::new(
        GoogleCalendarConfig {
            base_url: standin.base_url().to_string(),
            timeout: Duration::from_millis(200),
            ..GoogleCalendarConfig::default()
        },
        google_tokens(&standin),
    )
    .unwrap();
    let error = impatient
        .list_owned_upcoming(LEAVER, since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error, CalendarError::Timeout);
    assert!(error.is_retryable());
}

#[tokio::test]
async fn google_refused_credentials_and_unknown_calendars() {
    let standin = google_seeded().await;
    // A token the stand-in never issued.
    let client = google_client_with(&standin, 250, Arc::new(StaticToken::new("the-wrong-token")));
    let error = client
        .list_owned_upcoming(LEAVER, since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error, CalendarError::Unauthorized { status: 401 });
    assert!(!error.is_retryable());

    let client = google_client(&standin, 250);
    assert_eq!(client.check_calendar(MANAGER, Utc::now()).await, Ok(()));
    let error = client
        .check_calendar("nobody@example.com", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error, CalendarError::NotFound);
    assert_pii_free(&error);
}

// ---- Microsoft Graph ---------------------------------------------------------------

#[tokio::test]
async fn graph_lists_series_masters_and_single_events_the_owner_organizes() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    // focus0001 is a default event to Graph (eventType is Google's).
    assert_eq!(
        ids(&events),
        ["allday0001", "focus0001", "series0001", "single0001"]
    );
    assert!(events.iter().all(|e| e.organizer_is_owner));
    let series = find(&events, "series0001");
    assert_eq!(series.kind, EventKind::SeriesMaster);
    assert_eq!(
        series.starts_at,
        Some("2030-01-07T08:00:00Z".parse().unwrap())
    );
    assert!(find(&events, "allday0001").all_day);
    // The leaver's copy of the manager's guest0001 has its own id and is not theirs.
    assert!(!events.iter().any(|e| e.id.starts_with("guest0001")));
}

#[tokio::test]
async fn graph_listing_follows_next_links() {
    let standin = GraphCalendarStandin::start().await.unwrap();
    let start: DateTime<Utc> = "2030-04-01T09:00:00Z".parse().unwrap();
    for day in 0..5 {
        let at = start + TimeDelta::days(day);
        standin
            .insert(StandinEvent::at(LEAVER, at, at + TimeDelta::hours(1)))
            .unwrap();
    }
    let client = graph_client(&standin, 2);
    assert_eq!(listed(&client, LEAVER).await.len(), 5);
    assert_eq!(
        standin.control().calls_to(graph_routes::LIST_EVENTS).len(),
        3
    );
}

#[tokio::test]
async fn graph_recreate_and_cancel_transfers_an_event_with_the_same_attendees() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    let original = standin.event("single0001").unwrap();

    let outcome = client
        .transfer(
            find(&events, "single0001"),
            LEAVER,
            COHOST,
            "user-1/calendar/single0001",
            Utc::now(),
        )
        .await
        .unwrap();
    let TransferOutcome::Transferred { event_id } = outcome else {
        panic!("expected a transfer, got {outcome:?}");
    };
    assert_ne!(event_id, "single0001");

    let copy = standin.event(&event_id).expect("the copy exists");
    assert!(copy.organized_by(COHOST));
    assert_eq!(copy.summary, original.summary);
    assert_eq!(copy.description, original.description);
    assert_eq!(copy.start.instant(), original.start.instant());
    assert_eq!(copy.end.instant(), original.end.instant());
    assert_eq!(copy.attendee_emails(), original.attendee_emails());
    assert_eq!(
        copy.attendees
            .iter()
            .map(|a| (a.optional, a.resource))
            .collect::<Vec<_>>(),
        original
            .attendees
            .iter()
            .map(|a| (a.optional, a.resource))
            .collect::<Vec<_>>()
    );

    // The original is cancelled and gone from the leaver's calendar.
    assert!(standin.event("single0001").is_none());
    assert!(standin.cancelled().iter().any(|e| e.id == "single0001"));
    assert!(!ids(&listed(&client, LEAVER).await).contains(&"single0001"));
    assert!(ids(&listed(&client, COHOST).await).contains(&event_id.as_str()));

    // Attendees got the new invitation and the cancellation with its comment.
    let notes = standin.control().notifications();
    let invitation = notes
        .iter()
        .find(|n| n.kind == NotificationKind::Invitation)
        .unwrap();
    assert_eq!(invitation.sender, COHOST);
    assert_eq!(invitation.recipients, [MANAGER, LEARNER]);
    let cancellation = notes
        .iter()
        .find(|n| n.kind == NotificationKind::Cancellation)
        .unwrap();
    assert_eq!(cancellation.event_id, "single0001");
    assert_eq!(cancellation.recipients, [MANAGER, LEARNER]);
    assert!(cancellation.comment.is_some());

    // The create carried Graph's idempotency field.
    let creates = standin.control().calls_to(graph_routes::CREATE_EVENT);
    assert_eq!(creates.len(), 1);
    let transaction_id = creates[0].transaction_id.clone().expect("a transactionId");
    assert_eq!(standin.transaction_id(&event_id), Some(transaction_id));
    assert_eq!(
        creates[0].idempotency_key.as_deref(),
        Some("user-1/calendar/single0001")
    );
}

#[tokio::test]
async fn graph_retried_create_with_the_same_transaction_id_does_not_duplicate() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");

    // The copy is made but the response is lost.
    standin.control().set_fault(
        graph_routes::CREATE_EVENT,
        Fault::status(504).times(1).after_apply(),
    );
    let error = client
        .transfer(single, LEAVER, COHOST, "k-retry", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        CalendarError::Unavailable { status: 504, .. }
    ));
    assert_eq!(standin.events_organized_by(COHOST).len(), 1);
    assert!(standin.event("single0001").is_some(), "not cancelled yet");

    // Then the cancel fails once too.
    standin
        .control()
        .set_fault(graph_routes::CANCEL_EVENT, Fault::status(503).times(1));
    let error = client
        .transfer(single, LEAVER, COHOST, "k-retry", Utc::now())
        .await
        .unwrap_err();
    assert!(error.is_retryable());

    let outcome = client
        .transfer(single, LEAVER, COHOST, "k-retry", Utc::now())
        .await
        .unwrap();
    let TransferOutcome::Transferred { event_id } = outcome else {
        panic!("expected a transfer, got {outcome:?}");
    };
    let copies = standin.events_organized_by(COHOST);
    assert_eq!(copies.len(), 1, "exactly one copy");
    assert_eq!(copies[0].id, event_id);
    assert!(standin.event("single0001").is_none());

    let creates = standin.control().calls_to(graph_routes::CREATE_EVENT);
    let dispositions: Vec<Disposition> = creates.iter().map(|c| c.disposition).collect();
    assert_eq!(
        dispositions,
        [
            Disposition::Applied,
            Disposition::Replayed,
            Disposition::Replayed
        ]
    );
    assert!(
        creates
            .iter()
            .all(|c| c.event_id.as_deref() == Some(&event_id))
    );
    assert!(
        standin.duplicates().is_empty(),
        "{:?}",
        standin.duplicates()
    );

    // A transfer repeated after it completed finds nothing left to do.
    assert_eq!(
        client
            .transfer(single, LEAVER, COHOST, "k-retry", Utc::now())
            .await
            .unwrap(),
        TransferOutcome::SourceGone
    );
    assert_eq!(standin.events_organized_by(COHOST).len(), 1);
}

#[tokio::test]
async fn graph_duplicates_report_shows_a_meeting_created_twice() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");
    // A caller that changes its key between retries defeats transactionId.
    standin
        .control()
        .set_fault(graph_routes::CANCEL_EVENT, Fault::status(503).times(1));
    client
        .transfer(single, LEAVER, COHOST, "k-a", Utc::now())
        .await
        .unwrap_err();
    client
        .transfer(single, LEAVER, COHOST, "k-b", Utc::now())
        .await
        .unwrap();
    let report = standin.duplicates();
    assert_eq!(report.duplicates.len(), 1, "{report:?}");
    assert_eq!(report.duplicates[0].times, 2);
}

#[tokio::test]
async fn graph_occurrences_travel_with_their_series() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    let series = find(&events, "series0001");
    let original = standin.event("series0001").unwrap();

    // An occurrence is never transferred on its own, whatever the caller claims.
    let occurrence = CalendarEvent {
        id: format!("series0001_{}", "20300128T080000"),
        kind: EventKind::Occurrence,
        ..series.clone()
    };
    let error = client
        .transfer(&occurrence, LEAVER, MANAGER, "k-occ", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error.category(), "not_transferable");
    assert!(!error.is_retryable());
    assert_pii_free(&error);
    let mislabelled = CalendarEvent {
        kind: EventKind::Single,
        ..occurrence
    };
    let error = client
        .transfer(&mislabelled, LEAVER, MANAGER, "k-occ", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error.category(), "not_transferable");
    assert!(
        standin
            .control()
            .calls_to(graph_routes::CREATE_EVENT)
            .is_empty()
    );

    // The series moves as one: one create, and the original cancelled as a whole (it
    // has not begun). Its moved and cancelled occurrences are carried over to the
    // copy, one occurrence at a time.
    let outcome = client
        .transfer(series, LEAVER, MANAGER, "k-series", Utc::now())
        .await
        .unwrap();
    let TransferOutcome::Transferred { event_id } = outcome else {
        panic!("expected a transfer, got {outcome:?}");
    };
    assert_eq!(
        standin.control().calls_to(graph_routes::CREATE_EVENT).len(),
        1
    );
    assert_eq!(
        standin
            .control()
            .calls_to(graph_routes::CANCEL_EVENT)
            .iter()
            .filter(|c| c.event_id.as_deref() == Some("series0001"))
            .count(),
        1
    );
    let copy = standin.event(&event_id).unwrap();
    assert!(copy.organized_by(MANAGER));
    assert_eq!(copy.recurrence, original.recurrence);
    // Same wall-clock time in the same zone, so DST does not shift the series.
    assert_eq!(copy.start, original.start);
    assert_eq!(copy.attendee_emails(), original.attendee_emails());
    assert_eq!(copy.instances().len(), 10);
    assert!(
        standin
            .events_organized_by(LEAVER)
            .iter()
            .all(|e| e.id != "series0001")
    );
}

#[tokio::test]
async fn graph_rate_limits_and_server_errors() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let control = standin.control();

    control.set_fault(
        graph_routes::LIST_EVENTS,
        Fault::rate_limited(Some(Duration::from_secs(7))).times(1),
    );
    let error = client
        .list_owned_upcoming(LEAVER, since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert_pii_free(&error);

    let events = listed(&client, LEAVER).await;
    control.set_fault(graph_routes::CREATE_EVENT, Fault::usage_limit().times(1));
    let error = client
        .transfer(find(&events, "single0001"), LEAVER, COHOST, "k", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(error.category(), "rate_limited");
    assert!(error.retry_after().is_some());

    control.set_fault(graph_routes::GET_EVENT, Fault::status(503).times(1));
    let error = client
        .transfer(find(&events, "single0001"), LEAVER, COHOST, "k", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        CalendarError::Unavailable { status: 503, .. }
    ));
    assert!(error.is_retryable());
    assert_pii_free(&error);

    // Nothing was transferred by the failed attempts.
    assert!(standin.events_organized_by(COHOST).is_empty());
    assert!(standin.event("single0001").is_some());
}

#[tokio::test]
async fn graph_errors_never_name_the_user() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    // Graph's message for an unknown user contains the address; the error must not.
    // (An unknown user is a calendar nobody can hand events over from or to: not
    // `NotFound`, which a transfer would count as done.)
    let error = client
        .list_owned_upcoming("nobody@example.com", since(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::MailboxUnavailable {
            reason: "ErrorInvalidUser".into()
        }
    );
    assert_pii_free(&error);

    let events = listed(&client, LEAVER).await;
    let error = client
        .transfer(
            find(&events, "single0001"),
            LEAVER,
            "nobody@example.com",
            "k",
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::MailboxUnavailable {
            reason: "ErrorInvalidUser".into()
        }
    );
    assert_pii_free(&error);
    assert!(standin.event("single0001").is_some());
}
