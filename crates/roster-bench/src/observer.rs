//! What the benchmark sees of the users, from its own watch: when each user was first
//! seen in each state, by the wall clock (the benchmark is equipment; the operator it
//! measures never reads this clock).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use roster_api::{DirectoryUser, Phase, StepName, StepState};

/// A state a user can be seen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    /// Has a phase: the operator adopted it.
    Adopted,
    Active,
    /// Its access revocation succeeded.
    Revoked,
    Deprovisioning,
    Purged,
}

#[derive(Default)]
struct User {
    seen: HashMap<Seen, DateTime<Utc>>,
    deprovision_due: Option<DateTime<Utc>>,
}

#[derive(Clone, Default)]
pub struct Observer {
    users: Arc<Mutex<HashMap<String, User>>>,
}

impl Observer {
    /// Watches the namespace's DirectoryUsers until the process ends.
    pub fn start(api: Api<DirectoryUser>) -> Self {
        let observer = Self::default();
        let users = observer.users.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let now = Utc::now();
                let object = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    Ok(_) => continue,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let Some(name) = object.metadata.name.clone() else {
                    continue;
                };
                let mut users = users.lock().expect("observer lock");
                let user = users.entry(name).or_default();
                record(user, &object, now);
            }
        });
        observer
    }

    /// Forgets when these users were seen in `states`, before a new episode.
    pub fn forget(&self, names: &[String], states: &[Seen]) {
        let mut users = self.users.lock().expect("observer lock");
        for name in names {
            if let Some(user) = users.get_mut(name) {
                for state in states {
                    user.seen.remove(state);
                }
            }
        }
    }

    /// How many of `names` have been seen in `state`.
    pub fn count(&self, names: &[String], state: Seen) -> usize {
        let users = self.users.lock().expect("observer lock");
        names
            .iter()
            .filter(|n| users.get(*n).is_some_and(|u| u.seen.contains_key(&state)))
            .count()
    }

    /// Waits until every one of `names` has been seen in `state`; fails after `limit`.
    pub async fn wait_all(
        &self,
        names: &[String],
        state: Seen,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let seen = self.count(names, state);
            if seen == names.len() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {seen} of {} users reached {state:?} within {limit:?}",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// When each of `names` was first seen in `state` (those seen).
    pub fn times(&self, names: &[String], state: Seen) -> Vec<(String, DateTime<Utc>)> {
        let users = self.users.lock().expect("observer lock");
        names
            .iter()
            .filter_map(|n| {
                let at = users.get(n)?.seen.get(&state)?;
                Some((n.clone(), *at))
            })
            .collect()
    }

    /// The deprovisioning deadline each of `names` last had in its status.
    pub fn deprovision_due(&self, names: &[String]) -> Vec<Option<DateTime<Utc>>> {
        let users = self.users.lock().expect("observer lock");
        names
            .iter()
            .map(|n| users.get(n).and_then(|u| u.deprovision_due))
            .collect()
    }
}

fn record(user: &mut User, object: &DirectoryUser, now: DateTime<Utc>) {
    let Some(status) = object.status.as_ref() else {
        return;
    };
    let mut mark = |state: Seen| {
        user.seen.entry(state).or_insert(now);
    };
    mark(Seen::Adopted);
    match status.phase {
        Phase::Active => mark(Seen::Active),
        Phase::Deprovisioning | Phase::Deprovisioned => mark(Seen::Deprovisioning),
        Phase::Purged => {
            mark(Seen::Deprovisioning);
            mark(Seen::Purged);
        }
        Phase::Held | Phase::Quarantined => {}
    }
    let revoked = status
        .steps
        .iter()
        .any(|s| s.name == StepName::RevokeAccess && s.state == StepState::Succeeded);
    if revoked && status.phase != Phase::Active {
        mark(Seen::Revoked);
    }
    if status.deprovision_due_time.is_some() {
        user.deprovision_due = status.deprovision_due_time;
    }
}
