//! This gateway's side of presence: it counts its sessions per user and what each shows, and
//! tells the book (`PresenceCases::set`) what the user shows here whenever that changes.
//!
//! One task per process, fed by a channel, so sessions never wait on the book and the book
//! hears about a user in order. A user whose last session here closed (or went invisible) is
//! told offline only after a grace period, so a reconnect or a page reload does not flap;
//! coming online is told at once. Every few seconds the task renews this node's word in the
//! book (a cluster's book forgets a node that stops), and says everything again when the book
//! had forgotten it (Redis lost its data, or took this node for dead).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use harmony_core::presence::{SessionCounts, Shown, Status};
use harmony_core::usecases::PresenceCases;
use harmony_core::UserId;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A session's word: it came (`from: None`), left (`to: None`) or changed what it shows.
#[derive(Debug)]
struct Said {
    user: UserId,
    from: Option<Shown>,
    to: Option<Shown>,
}

/// What sessions hold to tell the presence task about themselves. Cheap to clone; telling never
/// blocks (an unbounded channel: one entry per session event, drained in batches).
#[derive(Clone)]
pub struct PresenceTracker {
    tx: mpsc::UnboundedSender<Said>,
}

impl PresenceTracker {
    /// A tracker and the task that serves it (run it with [`PresenceTask::run`]).
    pub fn new(cases: PresenceCases, timing: PresenceTiming) -> (Self, PresenceTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, PresenceTask::new(rx, cases, timing))
    }

    /// A session of `user` started (showing `online`).
    pub fn opened(&self, user: UserId) {
        self.tell(user, None, Some(Shown::Online));
    }

    /// A session of `user` that showed `shown` ended.
    pub fn closed(&self, user: UserId, shown: Shown) {
        self.tell(user, Some(shown), None);
    }

    /// A session of `user` now shows `to` instead of `from`.
    pub fn switched(&self, user: UserId, from: Shown, to: Shown) {
        if from != to {
            self.tell(user, Some(from), Some(to));
        }
    }

    fn tell(&self, user: UserId, from: Option<Shown>, to: Option<Shown>) {
        // The task lives as long as the process; after it stops nothing needs telling.
        let _ = self.tx.send(Said { user, from, to });
    }
}

/// How the presence task paces itself.
#[derive(Clone, Copy, Debug)]
pub struct PresenceTiming {
    /// How long a user with no session shown here stays as they were before going offline.
    pub grace: Duration,
    /// How often this node renews its word in the book (a third of the book's expiry).
    pub upkeep_every: Duration,
}

/// Changes told to the book at once, at most.
const CONCURRENT_SETS: usize = 32;
/// Session events taken from the channel per round, at most.
const BATCH: usize = 4096;

pub struct PresenceTask {
    rx: mpsc::UnboundedReceiver<Said>,
    cases: PresenceCases,
    timing: PresenceTiming,
    counts: HashMap<UserId, SessionCounts>,
    /// What the book holds as this node's word, per user (absent: offline).
    told: HashMap<UserId, Status>,
    /// Users with nothing shown here any more, and when they go offline.
    leaving: HashMap<UserId, Instant>,
}

impl PresenceTask {
    fn new(
        rx: mpsc::UnboundedReceiver<Said>,
        cases: PresenceCases,
        timing: PresenceTiming,
    ) -> Self {
        Self {
            rx,
            cases,
            timing,
            counts: HashMap::new(),
            told: HashMap::new(),
            leaving: HashMap::new(),
        }
    }

    /// Serves the tracker until `stop`. On stop it tells nothing: a restarting node's users
    /// reconnect elsewhere, and the book forgets this node's word by itself.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut upkeep = tokio::time::interval(self.timing.upkeep_every);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut said = Vec::with_capacity(BATCH);
        loop {
            let next_leave = self.leaving.values().min().copied();
            let mut touched: HashSet<UserId> = HashSet::new();
            tokio::select! {
                () = stop.cancelled() => return,
                n = self.rx.recv_many(&mut said, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    for Said { user, from, to } in said.drain(..) {
                        let counts = self.counts.entry(user).or_default();
                        if let Some(from) = from {
                            counts.remove(from);
                        }
                        if let Some(to) = to {
                            counts.add(to);
                        }
                        if counts.is_empty() {
                            self.counts.remove(&user);
                        }
                        touched.insert(user);
                    }
                }
                () = sleep_until(next_leave) => {
                    let now = Instant::now();
                    touched.extend(self.leaving.iter().filter(|(_, at)| **at <= now).map(|(u, _)| *u));
                }
                _ = upkeep.tick() => {
                    match self.cases.upkeep().await {
                        Ok(true) => {
                            tracing::info!("the presence book had forgotten this node; telling it again");
                            self.told.clear();
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "presence upkeep failed"),
                    }
                    // Whatever is not as it should be: a failed set, a forgotten book.
                    touched.extend(self.counts.keys().copied());
                    touched.extend(self.told.keys().copied());
                }
            }
            self.settle(touched).await;
        }
    }

    /// Tells the book what changed for `users`, after their grace where they are leaving.
    async fn settle(&mut self, users: HashSet<UserId>) {
        let now = Instant::now();
        let mut sets = Vec::new();
        for user in users {
            let want = self
                .counts
                .get(&user)
                .map_or(Status::Offline, |c| c.status());
            let have = self.told.get(&user).copied().unwrap_or(Status::Offline);
            if want == have {
                self.leaving.remove(&user);
                continue;
            }
            if want == Status::Offline {
                let at = *self.leaving.entry(user).or_insert(now + self.timing.grace);
                if at > now {
                    continue;
                }
            }
            self.leaving.remove(&user);
            sets.push((user, want));
        }
        let cases = &self.cases;
        let done: Vec<(UserId, Status, bool)> = futures_util::stream::iter(sets)
            .map(|(user, want)| async move {
                let result = cases.set(user, want).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, %user, "presence not recorded; retried at the next upkeep");
                }
                (user, want, result.is_ok())
            })
            .buffer_unordered(CONCURRENT_SETS)
            .collect()
            .await;
        for (user, status, ok) in done {
            if !ok {
                if status == Status::Offline {
                    // Tried again after a pause rather than a whole grace period later.
                    self.leaving
                        .insert(user, Instant::now() + self.timing.upkeep_every);
                }
                continue;
            }
            if status == Status::Offline {
                self.told.remove(&user);
            } else {
                self.told.insert(user, status);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
