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

// ---- What the real services require (issue 17) -------------------------------------

/// The applied token requests of a stand-in: the subject (Google) or client (Graph)
/// each was for.
fn minted(calls: Vec<roster_standins::calendar::CallRecord>) -> Vec<String> {
    calls
        .into_iter()
        .filter(|c| c.disposition == Disposition::Applied)
        .map(|c| c.owner.unwrap_or_default())
        .collect()
}

fn json_field(json: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value[field].as_str().unwrap().to_string()
}

#[tokio::test]
async fn google_move_says_content_length_zero_which_google_requires() {
    let standin = google_seeded().await;
    let tokens = google_tokens(&standin);
    // A bodiless POST as reqwest sends it by default: Google's front end answers 411.
    let token = tokens.bearer_token(LEAVER, Utc::now()).await.unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/calendars/{LEAVER}/events/single0001/move?destination={COHOST}",
            standin.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 411);
    assert!(standin.event("single0001").unwrap().organized_by(LEAVER));

    // The connector announces the empty body, and the move goes through.
    let client = google_client_with(&standin, 250, tokens);
    let events = listed(&client, LEAVER).await;
    let outcome = client
        .transfer(find(&events, "single0001"), LEAVER, COHOST, "k", Utc::now())
        .await
        .unwrap();
    assert!(matches!(outcome, TransferOutcome::Transferred { .. }));
    let statuses: Vec<u16> = standin
        .control()
        .calls_to(google_routes::MOVE_EVENT)
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [411, 200]);
}

#[tokio::test]
async fn google_tokens_are_minted_per_impersonated_user_and_cached_until_near_expiry() {
    let standin = google_seeded().await;
    let tokens = google_tokens(&standin);
    let client = google_client_with(&standin, 250, tokens.clone());
    let t0 = Utc::now();
    client
        .list_owned_upcoming(LEAVER, since(), t0)
        .await
        .unwrap();
    client
        .list_owned_upcoming(LEAVER, since(), t0 + TimeDelta::minutes(1))
        .await
        .unwrap();
    client.check_calendar(MANAGER, t0).await.unwrap();
    // One signed assertion per impersonated user, the second listing from the cache.
    assert_eq!(
        minted(standin.control().calls_to(google_routes::TOKEN)),
        [LEAVER, MANAGER]
    );

    // 56 minutes on (on both clocks) the hour-long token is due: a new one is minted.
    standin
        .control()
        .advance_clock(Duration::from_secs(56 * 60));
    let later = t0 + TimeDelta::minutes(56);
    client
        .list_owned_upcoming(LEAVER, since(), later)
        .await
        .unwrap();
    assert_eq!(
        minted(standin.control().calls_to(google_routes::TOKEN)),
        [LEAVER, MANAGER, LEAVER]
    );

    // A delegated token opens its own user's calendar, no one else's.
    let leaver_token = tokens.bearer_token(LEAVER, later).await.unwrap();
    let status = |calendar: &str| {
        let url = format!("{}/calendars/{calendar}/events", standin.base_url());
        let token = leaver_token.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(LEAVER).await, 200);
    assert_eq!(status(MANAGER).await, 404);

    // A token the service no longer accepts (401) is replaced on the spot.
    standin.revoke_tokens();
    client.check_calendar(MANAGER, later).await.unwrap();
    assert_eq!(
        minted(standin.control().calls_to(google_routes::TOKEN)).len(),
        4
    );
}

#[tokio::test]
async fn google_token_endpoint_checks_the_signed_assertion() {
    let standin = google_seeded().await;
    let now = Utc::now();
    // Key rotation: a second key is issued, the first deleted.
    let old_key = standin.issue_service_account_key("roster");
    let new_key = standin.issue_service_account_key("roster");
    standin.delete_service_account_key(&json_field(&old_key, "private_key_id"));
    let old = google_client_with(
        &standin,
        250,
        token_source(CalendarProvider::Google, standin.base_url(), &old_key),
    );
    let error = old.check_calendar(LEAVER, now).await.unwrap_err();
    assert_eq!(
        error,
        CalendarError::CredentialsRefused {
            status: 400,
            reason: "invalid_grant".into()
        }
    );
    assert!(!error.is_retryable());
    assert_pii_free(&error);
    let new = google_client_with(
        &standin,
        250,
        token_source(CalendarProvider::Google, standin.base_url(), &new_key),
    );
    assert_eq!(new.check_calendar(LEAVER, now).await, Ok(()));

    // An assertion for another audience, or one that expired, is refused.
    let mut elsewhere: serde_json::Value = serde_json::from_str(&new_key).unwrap();
    elsewhere["token_uri"] = format!("{}?for=someone-else", standin.token_uri()).into();
    let elsewhere = google_client_with(
        &standin,
        250,
        token_source(
            CalendarProvider::Google,
            standin.base_url(),
            &elsewhere.to_string(),
        ),
    );
    assert_eq!(
        elsewhere
            .check_calendar(LEAVER, now)
            .await
            .unwrap_err()
            .category(),
        "credentials_refused"
    );
    let stale = google_client_with(
        &standin,
        250,
        token_source(CalendarProvider::Google, standin.base_url(), &new_key),
    );
    assert_eq!(
        stale
            .check_calendar(LEAVER, now - TimeDelta::hours(2))
            .await
            .unwrap_err(),
        CalendarError::CredentialsRefused {
            status: 400,
            reason: "invalid_grant".into()
        }
    );

    // Domain-wide delegation that does not cover the calendar scope.
    standin.set_delegated_scopes(
        "roster",
        &["https://www.googleapis.com/auth/gmail.readonly"],
    );
    let undelegated = google_client_with(
        &standin,
        250,
        token_source(CalendarProvider::Google, standin.base_url(), &new_key),
    );
    assert_eq!(
        undelegated.check_calendar(LEAVER, now).await.unwrap_err(),
        CalendarError::CredentialsRefused {
            status: 401,
            reason: "unauthorized_client".into()
        }
    );
}

#[tokio::test]
async fn google_a_deleted_source_is_gone_not_an_error() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    // The leaver deleted it after the listing: Google still returns it, cancelled.
    assert!(standin.delete("single0001"));
    assert_eq!(
        client
            .transfer(
                find(&events, "single0001"),
                LEAVER,
                MANAGER,
                "k",
                Utc::now()
            )
            .await
            .unwrap(),
        TransferOutcome::SourceGone
    );
    assert!(standin.event("single0001").unwrap().organized_by(LEAVER));
    assert!(!ids(&listed(&client, LEAVER).await).contains(&"single0001"));
}

#[tokio::test]
async fn google_a_copy_the_new_owner_deleted_is_not_already_transferred() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");
    let first = client
        .transfer(single, LEAVER, COHOST, "k-del", Utc::now())
        .await
        .unwrap();
    assert!(matches!(first, TransferOutcome::Transferred { .. }));
    // The new owner deletes it; the leaver's calendar keeps a cancelled trace of it too.
    assert!(standin.delete("single0001"));
    standin.control().clear_calls();
    let again = client
        .transfer(single, LEAVER, COHOST, "k-del", Utc::now())
        .await
        .unwrap();
    assert_eq!(again, TransferOutcome::SourceGone);
    // Nothing was written to the deleted copy.
    assert!(
        standin
            .control()
            .calls_to(google_routes::PATCH_EVENT)
            .is_empty()
    );
    assert!(standin.is_deleted("single0001"));
}

#[tokio::test]
async fn google_refusals_keep_their_reason_and_only_credential_ones_are_unauthorized() {
    let standin = google_seeded().await;
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let single = find(&events, "single0001");
    for (reason, expected) in [
        (
            "forbiddenForNonOrganizer",
            CalendarError::Rejected {
                status: 403,
                reason: "forbiddenForNonOrganizer".into(),
            },
        ),
        (
            "requiredAccessLevel",
            CalendarError::Rejected {
                status: 403,
                reason: "requiredAccessLevel".into(),
            },
        ),
        (
            "insufficientPermissions",
            CalendarError::Unauthorized { status: 403 },
        ),
    ] {
        standin.control().set_fault(
            google_routes::MOVE_EVENT,
            Fault::refused(403, reason).times(1),
        );
        let error = client
            .transfer(single, LEAVER, MANAGER, "k", Utc::now())
            .await
            .unwrap_err();
        assert_eq!(error, expected, "{reason}");
        assert!(!error.is_retryable());
        assert_pii_free(&error);
    }
    assert!(standin.event("single0001").unwrap().organized_by(LEAVER));
}

#[tokio::test]
async fn google_modified_instances_no_longer_list_the_previous_owner() {
    let standin = GoogleCalendarStandin::start().await.unwrap();
    for user in [LEAVER, MANAGER, COHOST, LEARNER] {
        standin.add_user(user);
    }
    let seed = CalendarSeed::from_yaml_str(&format!(
        r#"
events:
  - id: weekly0001
    organizer: {LEAVER}
    summary: Mentoring circle
    start: "2030-03-04T10:00:00"
    end: "2030-03-04T11:00:00"
    timeZone: Europe/Berlin
    recurrence: {{ frequency: weekly, count: 4 }}
    attendees: [{{ email: {LEAVER} }}, {{ email: {COHOST} }}, {{ email: {LEARNER} }}]
    exceptions:
      - originalStart: "2030-03-11T10:00:00"
        summary: Mentoring circle (guest speaker)
        attendees: [{{ email: {LEAVER} }}, {{ email: {LEARNER} }}, {{ email: guest@example.org }}]
"#
    ))
    .unwrap();
    standin.seed(&seed).unwrap();
    let client = google_client(&standin, 250);
    let events = listed(&client, LEAVER).await;
    let outcome = client
        .transfer(
            find(&events, "weekly0001"),
            LEAVER,
            MANAGER,
            "k-weekly",
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, TransferOutcome::Transferred { .. }));
    let moved = standin.event("weekly0001").unwrap();
    assert!(moved.organized_by(MANAGER));
    assert_eq!(moved.attendee_emails(), [COHOST, LEARNER]);
    // The modified occurrence had its own list: the leaver is gone from it too, the
    // guest stays.
    let modified: Vec<_> = moved
        .instances()
        .into_iter()
        .filter(|i| i.modified)
        .collect();
    assert_eq!(modified.len(), 1);
    let mut emails: Vec<String> = modified[0]
        .attendees
        .iter()
        .map(|a| a.email.to_ascii_lowercase())
        .collect();
    emails.sort();
    assert_eq!(emails, ["dana.learner@example.com", "guest@example.org"]);
    assert!(moved.instances().iter().all(|i| {
        !i.attendees
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(LEAVER))
    }));
}

/// A weekly series in Berlin that began 20 days ago (three occurrences in the past,
/// the next tomorrow), with a retitled and a cancelled occurrence in the past and a
/// moved, retitled one and a cancelled one ahead.
fn series_under_way() -> (StandinEvent, Vec<DateTime<Utc>>) {
    use roster_standins::calendar::{Exception, Recurrence, When};
    let first_day = (Utc::now() - TimeDelta::days(20)).date_naive();
    let at = |k: i64| {
        When::local(
            (first_day + TimeDelta::days(7 * k))
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            "Europe/Berlin",
        )
        .unwrap()
    };
    let moved = at(4);
    let moved_to = match &moved {
        When::Timed { local, zone } => When::local(*local + TimeDelta::hours(1), zone).unwrap(),
        other => other.clone(),
    };
    let event = StandinEvent::new(LEAVER, at(0), at(0).plus_minutes(45))
        .with_id("weekly0002")
        .with_summary("Onboarding check-in")
        .with_attendee(COHOST)
        .with_attendee(LEARNER)
        .with_recurrence(Recurrence::weekly(10))
        .with_exception(Exception {
            summary: Some("Check-in (retitled)".into()),
            ..Exception::of(at(1))
        })
        .with_exception(Exception::cancelled(at(2)))
        .with_exception(Exception {
            start: Some(moved_to.clone()),
            end: Some(moved_to.plus_minutes(45)),
            summary: Some("Check-in (moved)".into()),
            ..Exception::of(moved)
        })
        .with_exception(Exception::cancelled(at(6)));
    let starts = (0..10).map(|k| at(k).instant()).collect();
    (event, starts)
}

#[tokio::test]
async fn graph_a_series_under_way_is_handed_over_from_now_on() {
    use roster_connectors::calendar::graph::TRANSFER_MARKER;
    let standin = GraphCalendarStandin::start().await.unwrap();
    for user in [LEAVER, MANAGER, COHOST, LEARNER] {
        standin.add_user(user);
    }
    let (series, starts) = series_under_way();
    standin.insert(series).unwrap();
    let client = graph_client(&standin, 50);
    let events = listed_from_now(&client, LEAVER).await;
    let outcome = client
        .transfer(
            find(&events, "weekly0002"),
            LEAVER,
            MANAGER,
            "k-under-way",
            Utc::now(),
        )
        .await
        .unwrap();
    let TransferOutcome::Transferred { event_id } = outcome else {
        panic!("expected a transfer, got {outcome:?}");
    };

    // The past stays with the leaver, as it happened: the series ends before the next
    // occurrence, its past changes intact, and it was not cancelled.
    let original = standin.event("weekly0002").expect("the original is kept");
    assert!(standin.cancelled().is_empty());
    let kept: Vec<_> = original.instances();
    assert_eq!(
        kept.iter()
            .map(|i| i.original_start.instant())
            .collect::<Vec<_>>(),
        starts[..3]
    );
    assert_eq!(kept[1].summary.as_deref(), Some("Check-in (retitled)"));
    assert!(kept[2].cancelled);
    assert_eq!(
        standin.extended_property("weekly0002", TRANSFER_MARKER),
        Some(format!(
            "{} {event_id}",
            roster_connectors::calendar::graph::transaction_id("k-under-way", "weekly0002")
        ))
    );

    // The new owner's series starts at the next occurrence and runs to the last, with
    // the moved occurrence moved and the cancelled one cancelled.
    let copy = standin.event(&event_id).unwrap();
    assert!(copy.organized_by(MANAGER));
    assert_eq!(copy.attendee_emails(), [COHOST, LEARNER]);
    let ahead = copy.instances();
    assert_eq!(
        ahead
            .iter()
            .map(|i| i.original_start.instant())
            .collect::<Vec<_>>(),
        starts[3..]
    );
    let moved = &ahead[1];
    assert!(moved.modified && !moved.cancelled);
    assert_eq!(moved.summary.as_deref(), Some("Check-in (moved)"));
    assert_eq!(
        moved.start.instant(),
        starts[4] + TimeDelta::hours(1),
        "the moved occurrence keeps its new time"
    );
    assert!(
        ahead[3].cancelled,
        "the cancelled occurrence stays cancelled"
    );
    assert_eq!(ahead.iter().filter(|i| i.cancelled).count(), 1);
    assert!(
        standin.duplicates().is_empty(),
        "{:?}",
        standin.duplicates()
    );

    // A retry finds the copy it made (the series is marked), and makes nothing new.
    let again = client
        .transfer(
            find(&events, "weekly0002"),
            LEAVER,
            MANAGER,
            "k-under-way",
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(again, TransferOutcome::AlreadyTransferred { event_id });
    assert_eq!(standin.events_organized_by(MANAGER).len(), 1);
}

#[tokio::test]
async fn graph_a_series_whose_end_was_lost_completes_on_retry() {
    let standin = GraphCalendarStandin::start().await.unwrap();
    for user in [LEAVER, MANAGER, COHOST, LEARNER] {
        standin.add_user(user);
    }
    let (mut series, _) = series_under_way();
    // Without the moved occurrence, ending the original is the only PATCH.
    series
        .exceptions
        .retain(|e| e.cancelled || e.original_start.instant() < Utc::now());
    standin.insert(series).unwrap();
    let client = graph_client(&standin, 50);
    let events = listed_from_now(&client, LEAVER).await;
    // Ending the original takes effect, but the answer is lost.
    standin.control().set_fault(
        graph_routes::PATCH_EVENT,
        Fault::status(504).times(1).after_apply(),
    );
    let series = find(&events, "weekly0002");
    let error = client
        .transfer(series, LEAVER, MANAGER, "k-lost-end", Utc::now())
        .await
        .unwrap_err();
    assert!(error.is_retryable());
    assert!(
        standin
            .extended_property(
                "weekly0002",
                roster_connectors::calendar::graph::TRANSFER_MARKER
            )
            .is_some(),
        "the original was ended and marked"
    );
    let retry = client
        .transfer(series, LEAVER, MANAGER, "k-lost-end", Utc::now())
        .await
        .unwrap();
    let copies = standin.events_organized_by(MANAGER);
    assert_eq!(copies.len(), 1, "exactly one copy");
    assert_eq!(
        retry,
        TransferOutcome::AlreadyTransferred {
            event_id: copies[0].id.clone()
        }
    );
    assert!(
        standin.duplicates().is_empty(),
        "{:?}",
        standin.duplicates()
    );
}

#[tokio::test]
async fn graph_a_finished_numbered_series_is_not_listed() {
    use roster_standins::calendar::{Recurrence, When};
    let standin = GraphCalendarStandin::start().await.unwrap();
    let start = Utc::now() - TimeDelta::days(60);
    standin
        .insert(
            StandinEvent::new(
                LEAVER,
                When::utc(start),
                When::utc(start + TimeDelta::hours(1)),
            )
            .with_id("over0001")
            .with_recurrence(Recurrence::weekly(3)),
        )
        .unwrap();
    standin
        .insert(
            StandinEvent::new(
                LEAVER,
                When::utc(start),
                When::utc(start + TimeDelta::hours(1)),
            )
            .with_id("ongoing0001")
            .with_recurrence(Recurrence::weekly(30)),
        )
        .unwrap();
    let client = graph_client(&standin, 50);
    let events = client
        .list_owned_upcoming(LEAVER, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(ids(&events), ["ongoing0001"]);
}

#[tokio::test]
async fn graph_a_teams_meeting_is_re_created_with_a_join_link_of_its_own() {
    let standin = GraphCalendarStandin::start().await.unwrap();
    for user in [LEAVER, COHOST, LEARNER] {
        standin.add_user(user);
    }
    let at: DateTime<Utc> = "2030-05-06T10:00:00Z".parse().unwrap();
    let id = standin
        .insert(
            StandinEvent::at(LEAVER, at, at + TimeDelta::hours(1))
                .with_summary("Quarterly review")
                .with_description("<p>Agenda: numbers, then questions.</p>")
                .with_attendee(LEARNER)
                .with_online_meeting(),
        )
        .unwrap();
    let old_link = standin.event(&id).unwrap().online_meeting.unwrap();
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    let outcome = client
        .transfer(find(&events, &id), LEAVER, COHOST, "k-teams", Utc::now())
        .await
        .unwrap();
    let TransferOutcome::Transferred { event_id } = outcome else {
        panic!("expected a transfer, got {outcome:?}");
    };
    let copy = standin.event(&event_id).unwrap();
    let new_link = copy.online_meeting.clone().expect("an online meeting");
    assert_ne!(new_link, old_link, "the new organizer's own meeting");
    let body = copy.description.unwrap();
    assert!(
        !body.contains(&old_link),
        "the old join link was copied: {body}"
    );
    assert_eq!(body.matches("meetup-join").count(), 1, "{body}");
    assert!(body.contains(&new_link));
    assert!(body.contains("Agenda: numbers, then questions."));
}

#[tokio::test]
async fn graph_a_missing_or_unlicensed_mailbox_is_not_a_transfer() {
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    // The leaver's licence was removed after the listing.
    standin.unlicense(LEAVER);
    let error = client
        .transfer(find(&events, "single0001"), LEAVER, COHOST, "k", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::MailboxUnavailable {
            reason: "MailboxNotEnabledForRESTAPI".into()
        }
    );
    assert!(!error.is_retryable());
    assert_pii_free(&error);
    assert_eq!(
        client
            .list_owned_upcoming(LEAVER, since(), Utc::now())
            .await
            .unwrap_err()
            .category(),
        "mailbox_unavailable"
    );
    assert!(standin.events_organized_by(COHOST).is_empty());

    // A leaver removed from the directory: the same.
    let standin = graph_seeded().await;
    let client = graph_client(&standin, 50);
    let events = listed(&client, LEAVER).await;
    standin.remove_user(LEAVER);
    assert_eq!(
        client
            .transfer(find(&events, "allday0001"), LEAVER, COHOST, "k", Utc::now())
            .await
            .unwrap_err(),
        CalendarError::MailboxUnavailable {
            reason: "ErrorInvalidUser".into()
        }
    );
    assert!(standin.events_organized_by(COHOST).is_empty());
}

#[tokio::test]
async fn graph_app_tokens_come_from_the_client_credentials_grant_and_are_cached() {
    let standin = graph_seeded().await;
    let credentials = standin.register_app();
    let client_id = json_field(&credentials, "clientId");
    let client = graph_client_with(
        &standin,
        50,
        token_source(
            CalendarProvider::Microsoft,
            standin.base_url(),
            &credentials,
        ),
    );
    let t0 = Utc::now();
    client
        .list_owned_upcoming(LEAVER, since(), t0)
        .await
        .unwrap();
    client.check_calendar(MANAGER, t0).await.unwrap();
    // One app token serves every mailbox.
    assert_eq!(
        minted(standin.control().calls_to(graph_routes::TOKEN)),
        std::slice::from_ref(&client_id)
    );
    standin
        .control()
        .advance_clock(Duration::from_secs(56 * 60));
    client
        .check_calendar(MANAGER, t0 + TimeDelta::minutes(56))
        .await
        .unwrap();
    assert_eq!(
        minted(standin.control().calls_to(graph_routes::TOKEN)).len(),
        2
    );

    // A rotated secret: once the token is gone, the old secret no longer mints one.
    standin.rotate_secret(&client_id).unwrap();
    standin.revoke_tokens();
    let error = client
        .check_calendar(MANAGER, t0 + TimeDelta::minutes(56))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CalendarError::CredentialsRefused {
            status: 401,
            reason: "invalid_client.AADSTS7000215".into()
        }
    );
    assert_pii_free(&error);

    // A certificate instead of a secret (a signed client assertion).
    let credentials = standin.register_app_with_certificate();
    let client_id = json_field(&credentials, "clientId");
    let client = graph_client_with(
        &standin,
        50,
        token_source(
            CalendarProvider::Microsoft,
            standin.base_url(),
            &credentials,
        ),
    );
    let now = Utc::now() + TimeDelta::minutes(56);
    assert_eq!(listed_at(&client, LEAVER, now).await.len(), 4);

    // An application access policy that leaves a mailbox out.
    standin.restrict_app_to(&client_id, &[LEAVER]);
    assert!(
        client
            .list_owned_upcoming(LEAVER, since(), now)
            .await
            .is_ok()
    );
    assert_eq!(
        client.check_calendar(MANAGER, now).await.unwrap_err(),
        CalendarError::Unauthorized { status: 403 }
    );
}

/// What the connector lists from now on (for events relative to today).
async fn listed_from_now(connector: &dyn CalendarConnector, owner: &str) -> Vec<CalendarEvent> {
    let now = Utc::now();
    connector
        .list_owned_upcoming(owner, now, now)
        .await
        .expect("listing succeeds")
}

async fn listed_at(
    connector: &dyn CalendarConnector,
    owner: &str,
    now: DateTime<Utc>,
) -> Vec<CalendarEvent> {
    connector
        .list_owned_upcoming(owner, since(), now)
        .await
        .expect("listing succeeds")
}

#[tokio::test]
async fn graph_front_end_refuses_a_post_without_a_length_too() {
    let standin = graph_seeded().await;
    let tokens = graph_tokens(&standin);
    let token = tokens.bearer_token(LEAVER, Utc::now()).await.unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/users/{LEAVER}/events/single0001/cancel",
            standin.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 411);
    assert!(standin.event("single0001").is_some(), "not cancelled");
    let token_endpoint = format!(
        "{}/{}/oauth2/v2.0/token",
        standin.authority_host(),
        standin.tenant_id()
    );
    let response = reqwest::Client::new()
        .post(token_endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 411);
}
