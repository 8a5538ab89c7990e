//! The DirectoryUser controller. A reconcile runs in stages, one module each:
//! [`gather`] (Tenant and policy from the stores) → [`decide`] (the pure core, on fresh
//! state when side effects are due) → [`persist`] (PII scrub, status) → [`announce`]
//! (Events, metrics) → [`run`] (the actions, each recorded before the next) → release
//! the finalizer → sleep until the core's next deadline.

mod announce;
mod decide;
pub mod departure;
mod due;
mod gather;
pub mod guard;
mod persist;
mod run;
mod slots;

pub use due::DueTransitions;
pub use slots::{StageTwoSlots, Waiter};

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tracing::{instrument, warn};

use roster_api::{Departure, DeprovisionPolicy, DirectoryUser, Phase, Tenant};

use super::stored::{self, StoredUser};
use super::written::Freshness;
use super::{Context, Error, FINALIZER, Options, Result, jitter};
use decide::Decided;
use gather::Gathered;
pub(super) use persist::Home;
use roster_lifecycle::erasure::RecordHome;

pub(crate) const KIND: &str = "DirectoryUser";

/// Builds and runs the controller until `shutdown` resolves.
pub async fn controller(
    options: &Options,
    context: Arc<Context>,
    user_stream: impl Stream<Item = Arc<StoredUser>> + Send + 'static,
    tenant_stream: impl Stream<Item = Result<Tenant, watcher::Error>> + Send + 'static,
    policy_stream: impl Stream<Item = Result<DeprovisionPolicy, watcher::Error>> + Send + 'static,
    departure_stream: impl Stream<Item = Result<Departure, watcher::Error>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let users = context.users.clone();
    let tenants = context.tenants.clone();
    let by_tenant = context.directory.clone();
    let by_policy = context.directory.clone();
    let by_manager = context.directory.clone();
    let by_departure = context.directory.clone();
    let queued = Queued(context.metrics.queues.clone());
    let (queued_tenant, queued_policy, queued_departure) =
        (queued.clone(), queued.clone(), queued.clone());
    let in_store = users.clone();
    // A user's change also wakes their reports (one watch, teed): a manager who arrives
    // or gets an account after their reports resolves them.
    let (reports_tx, reports_rx) = futures::channel::mpsc::unbounded();
    let user_stream = user_stream.inspect(move |user| {
        // Gone from the store (deleted): kube-runtime will not reconcile it.
        let named = stored::user_ref(user);
        queued.object(&named, in_store.contains(&named));
        for report in gather::reports_of(&by_manager, user) {
            queued.of_ref(&report);
            let _ = reports_tx.unbounded_send(report);
        }
    });
    // A Tenant change (suspend, time zone, policyRef...) wakes exactly its users.
    let tenant_wakes = tenant_stream
        .filter_map(|t| async move { t.ok() })
        .flat_map(move |tenant| {
            futures::stream::iter(queued_tenant.all(users_of_tenant(&by_tenant, &tenant)))
        });
    // A policy change wakes the users of every tenant that uses it.
    let policy_wakes = policy_stream
        .filter_map(|p| async move { p.ok() })
        .flat_map(move |policy| {
            futures::stream::iter(
                queued_policy.all(
                    super::tenants_using(&tenants, &policy)
                        .into_iter()
                        .flat_map(|t| users_of_tenant(&by_policy, &t))
                        .collect(),
                ),
            )
        });
    // The end of an API server outage retries what it held up.
    let all_users = users.clone();
    let recovered = options
        .apiserver
        .recoveries()
        .flat_map(move |()| futures::stream::iter(all_users.refs()));
    // Every trigger that can name many users at once goes through one paced queue
    // (`controller::pace`): the users of a start or resync (and the reports each of
    // their managers wakes), a Tenant's or a policy's change, the end of an API
    // server outage. It hands nothing over before the stores are filled: kube-runtime
    // holds what it gets before its own store is (a start's every user, as the list
    // arrives), and a reconcile before the others are only comes back later.
    let own = user_stream.map(|user| stored::user_ref(&user));
    let triggers = futures::stream::select_all([
        own.boxed(),
        reports_rx.boxed(),
        tenant_wakes.boxed(),
        policy_wakes.boxed(),
        recovered.boxed(),
    ]);
    let filled = context.clone();
    let in_store = users.clone();
    let paced = context.pace.clone().queue(
        triggers,
        super::pace::LIMIT,
        move || filled.users.is_ready() && stores_ready(&filled),
        // A user gone from the store (deleted) is not reconciled: it waits for nothing.
        move |user| in_store.contains(user),
    );
    // The users' own changes come through `paced`.
    let controller = Controller::for_stream(futures::stream::pending(), users.store().clone())
        .reconcile_on(paced.map(stored::stored_ref))
        // A released stage-2 slot (or receipt turn) wakes the user waiting longest.
        .reconcile_on(context.stage_two.woken_users().map(stored::stored_ref))
        .reconcile_on(context.receipt_turn.woken_users().map(stored::stored_ref))
        .with_config(Config::default().concurrency(options.concurrency))
        // A Departure that appears or goes wakes the objects of the same person: one that
        // waited for it takes over, or takes the lifecycle back.
        .watches_stream(departure_stream, move |departure: Departure| {
            let record = &departure.spec.record;
            queued_departure
                .all(by_departure.with_employee_id(
                    &departure.namespace().unwrap_or_default(),
                    &record.tenant_ref.name,
                    &record.employee_id,
                ))
                .into_iter()
                .map(stored::stored_ref)
        })
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "directoryuser reconcile stream");
            }
        })
        .await;
}

/// Deciding before the Tenant and policy stores are filled would report "tenant not
/// found" for every user at start-up. The streams that fill them are driven by the
/// running controller, so readiness is checked inside reconcile.
pub(super) fn stores_ready(context: &Context) -> bool {
    super::ready(&context.tenants)
        && super::ready(&context.policies)
        && super::ready(&context.departures)
}

fn users_of_tenant(
    directory: &crate::controller::directory::Directory,
    tenant: &Tenant,
) -> Vec<ObjectRef<DirectoryUser>> {
    directory.users_of(&tenant.namespace().unwrap_or_default(), &tenant.name_any())
}

async fn reconcile(stored: Arc<StoredUser>, context: Arc<Context>) -> Result<Action> {
    context
        .pace
        .started(crate::metrics::queue::key_of(&*stored));
    if !stores_ready(&context) {
        return Ok(Action::requeue(super::STORE_WAIT));
    }
    if let Some(wait) = context.wait_out_outage() {
        return Ok(wait);
    }
    let metrics = context.metrics.clone();
    let reconciling = metrics.reconciling(KIND_LABEL, crate::metrics::queue::key_of(&*stored));
    let result = match stored.user() {
        Ok(user) => reconcile_user(Arc::new(user), &context).await,
        Err(error) => Err(error.into()),
    };
    reconciling.finished(&result);
    result
}

/// The controller's name in metrics.
const KIND_LABEL: &str = "directoryuser";

/// Notes what the triggers hand the controller in its queue mirror
/// ([`crate::metrics::queue`]).
#[derive(Clone)]
struct Queued(Arc<crate::metrics::queue::Queues>);

impl Queued {
    fn object(&self, user: &ObjectRef<DirectoryUser>, present: bool) {
        let key = crate::metrics::queue::key_of_ref(user);
        if present {
            self.0.triggered(KIND_LABEL, key);
        } else {
            self.0.started(KIND_LABEL, key);
        }
    }

    fn of_ref(&self, user: &ObjectRef<DirectoryUser>) {
        self.0
            .triggered(KIND_LABEL, crate::metrics::queue::key_of_ref(user));
    }

    fn all(&self, users: Vec<ObjectRef<DirectoryUser>>) -> Vec<ObjectRef<DirectoryUser>> {
        for user in &users {
            self.of_ref(user);
        }
        users
    }
}

#[instrument(skip_all, fields(namespace = user.namespace(), user = user.name_any()))]
async fn reconcile_user(user: Arc<DirectoryUser>, context: &Context) -> Result<Action> {
    let namespace = user.namespace().ok_or(Error::MissingNamespace)?;
    let name = user.name_any();
    let api: Api<DirectoryUser> = Api::namespaced(context.client.clone(), &namespace);
    let deleting = user.metadata.deletion_timestamp.is_some();

    if context
        .due
        .reconciling(&ObjectRef::from_obj(&*user), context.clock.now())
    {
        // The last quarantine due is being written: the hand-overs may go on.
        context.stage_two.wake_free();
    }
    if context.written.freshness(KIND, &user, None) == Freshness::Behind {
        // The store holds an earlier write of roster's own; the last one's event wakes
        // this user again, and a decision on it needs no read.
        return Ok(Action::await_change());
    }
    if !user.finalizers().iter().any(|f| f == FINALIZER) {
        if deleting {
            return Ok(Action::await_change());
        }
        // The finalizer comes first: from here on a deletion waits for the lifecycle.
        // The object it returns is fresh: the lifecycle goes on with it at once.
        let written = persist::finalizer(&api, &name, true).await?;
        context.written.wrote(KIND, &written);
        return lifecycle(Arc::new(written), Home::User(api), context).await;
    }
    lifecycle(user, Home::User(api), context).await
}

/// The lifecycle of one person, wherever it is kept (see [`Home`]): the DirectoryUser,
/// or the Departure that carries it on after a deletion.
pub(super) async fn lifecycle(
    user: Arc<DirectoryUser>,
    home: Home,
    context: &Context,
) -> Result<Action> {
    let namespace = user.namespace().ok_or(Error::MissingNamespace)?;
    let name = user.name_any();
    let deleting = user.metadata.deletion_timestamp.is_some();

    if let Some((reason, note)) = gather::leaves_without_platform(&user, &namespace, context) {
        announce::released_without_platform(context, &user, reason, note).await;
        home.release(&name).await?;
        return Ok(Action::await_change());
    }
    if gather::tenant_exiting(&user, &namespace, context) {
        // The Tenant's changes wake this person again.
        return Ok(Action::await_change());
    }

    let inputs = match gather::gather(&user, &namespace, context) {
        Gathered::Ready(inputs) => inputs,
        Gathered::Blocked { reason, message } => {
            persist::blocked(
                &home,
                &user,
                reason,
                message,
                context.clock.now(),
                &context.written,
            )
            .await?;
            // The Tenant and policy watches wake this user when that changes.
            return Ok(Action::await_change());
        }
    };

    if let Home::User(api) = &home
        && let Some(action) = departure::take_back(api, &user, &namespace, context).await?
    {
        return Ok(action);
    }

    let now = context.clock.now();
    // The manager's candidates: the tenant's users with that email (a lookup).
    let directory = match user.spec.manager_email.as_deref() {
        Some(email) => super::directory::resolve(
            &context.users,
            &context
                .directory
                .with_email(&namespace, &user.spec.tenant_ref.name, email),
        ),
        None => Vec::new(),
    };
    let Decided {
        user: mut persisted,
        mut decision,
    } = decide::decide(
        &home,
        user,
        &inputs,
        &directory,
        &context.written,
        context,
        now,
    )
    .await?;

    // Decide, write, run, and decide again on what this reconcile itself wrote (known
    // to be fresh: no read), until nothing is due now. The last result of each run is
    // written together with the status that follows from it.
    let mut rounds = 0;
    let mut no_slot = false;
    // Transitions decided but not yet written (see `defer` below).
    let mut unannounced = Vec::new();
    let status = loop {
        // PII goes before the status that says it is gone. (A Departure is deleted once
        // purged, with the record it holds.)
        if decision.scrub_pii
            && let Home::User(api) = &home
        {
            persist::scrub_pii(api, &name).await?;
            if persisted
                .status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Purged)
            {
                announce::pii_reapplied(context, &persisted).await;
            }
        }
        let mut status = decision.status.clone();
        let work = !decision.sync.is_empty() || !decision.actions.is_empty();
        // A deadline reached: its transition is written now, and the hand-over steps
        // wait for this user's next turn, so that every other deadline of the same
        // moment (and every revocation) is written before them.
        let yields = decision
            .transitions
            .iter()
            .any(|t| t.to == Phase::Deprovisioning);
        // The first decision of a reconcile holds no call's result yet, only what
        // follows from the persisted status: it is written together with its first
        // call's result (one write, not two). Each call's key comes from persisted
        // state (the episode, the sync count), so a crash before that write decides
        // the same calls with the same keys again; a later round writes first, as its
        // status holds the results of the round before.
        let defer = work && !yields && rounds == 0 && !decision.scrub_pii;
        unannounced.extend(decision.transitions.iter().cloned());
        if !defer {
            persisted = persist::status(&home, persisted, &status, &context.written).await?;
            announce::transitions(context, &persisted, &unannounced, &status).await;
            unannounced.clear();
        }
        if !work || yields || rounds == MAX_ROUNDS {
            break status;
        }
        rounds += 1;
        let synced = run::sync(
            &home,
            context,
            &persisted,
            &inputs,
            &decision.sync,
            &mut status,
        )
        .await?;
        if synced && !decision.actions.is_empty() {
            if !decision.sync.is_empty() {
                // The last sync result is durable before the first step runs.
                persisted = persist::step_result(&home, &name, &status, &context.written).await?;
            }
            let ran = run::actions(
                &home,
                context,
                &persisted,
                &inputs,
                &decision.actions,
                &mut status,
            )
            .await?;
            if ran == run::Ran::NoSlot {
                no_slot = true;
                if !unannounced.is_empty() || persisted.status.as_ref() != Some(&status) {
                    persisted =
                        persist::status(&home, persisted, &status, &context.written).await?;
                    announce::transitions(context, &persisted, &unannounced, &status).await;
                    unannounced.clear();
                }
                break status;
            }
        }
        if deleting
            && matches!(home, Home::User(_))
            && departure::hands_over(&inputs.policy, &status)
        {
            // A deleted user's lifecycle moves to its Departure now (below), which
            // carries on from there.
            persisted = persist::step_result(&home, &name, &status, &context.written).await?;
            break status;
        }
        let mut next = (*persisted).clone();
        next.status = Some(status);
        let now = context.clock.now();
        decision = decide::step(&next, &inputs, &directory, now);
        decision = decide::guarded(context, &next, &inputs, &directory, decision, now).await?;
    };
    // Proof of erasure: the receipt is written (once) before the record goes.
    let mut status = status;
    let kept_in = match home {
        Home::User(_) => RecordHome::DirectoryUser,
        Home::Departure(_) => RecordHome::Departure,
    };
    // Appends go one at a time: wait for the turn outside the reconcile slots.
    let turn = if status.phase == Phase::Purged && status.erasure_receipt.is_none() {
        match context.receipt_turn.try_take(Some(home.waiter(&persisted))) {
            Some(turn) => Some(turn),
            None => return Ok(Action::requeue(slots::fallback_wait())),
        }
    } else {
        None
    };
    if let Some(receipt) =
        crate::receipts::user::for_purged(context, &persisted, &inputs.tenant, &status, kept_in)
            .await?
    {
        status.erasure_receipt = Some(receipt);
        persisted = persist::step_result(&home, &name, &status, &context.written).await?;
    }
    drop(turn);
    if let Home::User(api) = &home
        && deleting
        && departure::hands_over(&inputs.policy, &status)
        && departure::hand_over(api, &persisted, &status, context).await?
    {
        // The DirectoryUser is gone once handed over: nothing of it to remember.
        context.written.forget(home.kind(), &persisted);
        return Ok(Action::await_change());
    }
    if decision.release {
        home.release(&name).await?;
        context.written.forget(home.kind(), &persisted);
    }
    context.reset_failures(&persisted.uid().unwrap_or_default());

    if no_slot {
        return Ok(Action::requeue(slots::fallback_wait()));
    }
    if !decision.actions.is_empty() || !decision.sync.is_empty() {
        // Rounds left over (a long chain): go on at once.
        return Ok(Action::requeue(Duration::ZERO));
    }
    let now = context.clock.now();
    Ok(match decision.wake_at {
        Some(at) => {
            let delay = (at - now).to_std().unwrap_or(Duration::ZERO) + jitter();
            if let Home::User(_) = home
                && status.phase == Phase::Quarantined
                && status.deprovision_due_time == Some(at)
            {
                context.due.register(ObjectRef::from_obj(&*persisted), at);
            }
            let key = crate::metrics::queue::key_of(&*persisted);
            context.metrics.queues.later(home.controller(), key, delay);
            Action::requeue(delay)
        }
        None => Action::await_change(),
    })
}

/// Decisions a reconcile carries out before it lets other users have its turn.
const MAX_ROUNDS: usize = 6;

fn error_policy(user: Arc<StoredUser>, error: &Error, context: Arc<Context>) -> Action {
    context.count_error(KIND_LABEL, error);
    let delay = context.failure_backoff(&user.uid().unwrap_or_default());
    let key = crate::metrics::queue::key_of(&*user);
    context.metrics.queues.later(KIND_LABEL, key, delay);
    warn!(category = error.category(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
