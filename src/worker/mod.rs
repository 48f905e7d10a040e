//! The delivery engine: hand-off or claim → send → record → reschedule.
//!
//! A content change writes its deliveries already claimed by the process making it (when that
//! process's engine has room for their webhooks) and hands them to the engine, which starts
//! them at once: the common path costs the database one insert and one record per delivery.
//! Everything else (retries, backlogs, deliveries handed back, other processes' work) is
//! claimed from the queue in rounds, per webhook. Two bounds hold throughout: a global number
//! of attempts in flight, and a per-webhook number, so a receiver that hangs holds at most its
//! own share while every other webhook keeps flowing. Each delivery is sent by its own task,
//! outside any transaction. Outcomes are recorded in batches, one transaction per round, which
//! runs beside the dispatch rather than in its way. Retries are scheduled in the database
//! (`next_attempt_at`), never slept on in-process.
//!
//! Durability: a claim holds a delivery for one lease (`claimed_until`). If the process dies
//! before the outcome is recorded, the delivery is claimable again when the lease runs out and
//! is attempted again: at-least-once, with the nonce for receivers to drop duplicates. A
//! handed-over delivery that cannot start while its lease still covers a whole attempt goes
//! back to the queue. On shutdown the dispatcher stops claiming, lets attempts in flight finish
//! for a grace period, records them, and hands back the rest.

pub mod listeners;
pub mod sender;

use crate::domain::delivery::{decide, Next};
use crate::domain::event;
use crate::domain::ids::{encode, Kind};
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::domain::webhook::LISTENER_SCHEME;
use crate::store::{Claimed, Fate, HandOff, Recorded, SharedStore};
use listeners::{ListenerHub, Pushed};
use sender::{Request, Sender};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tracing::{info_span, warn, Instrument};

/// What reaches the dispatcher from outside: webhooks with deliveries enqueued, and deliveries
/// handed over already claimed.
#[derive(Default)]
struct Wakeup {
    inbox: Mutex<Inbox>,
    notify: Notify,
}

#[derive(Default)]
struct Inbox {
    webhooks: HashSet<i64>,
    /// Claimed deliveries, each with when its claim runs out (ms).
    handed: Vec<(Claimed, i64)>,
}

impl Wakeup {
    fn wake(&self, webhook_ids: &[i64]) {
        if webhook_ids.is_empty() {
            return;
        }
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.webhooks.extend(webhook_ids);
        }
        self.notify.notify_one();
    }

    fn hand_off(&self, claims: Vec<Claimed>, until: i64) {
        if claims.is_empty() {
            return;
        }
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.handed.extend(claims.into_iter().map(|c| (c, until)));
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Inbox {
        self.inbox
            .lock()
            .map(|mut inbox| std::mem::take(&mut *inbox))
            .unwrap_or_default()
    }
}

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub disable_after: Duration,
    pub max_in_flight: usize,
    pub webhook_concurrency: usize,
    pub poll: Duration,
    /// On shutdown, how long attempts in flight may finish before they are handed back.
    pub shutdown_grace: Duration,
}

impl EngineConfig {
    /// How long a claim holds a delivery: twice the attempt's time limit plus a second, so only
    /// a worker that died (or hung far past its limit) loses its claim.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }
}

pub struct Engine {
    store: SharedStore,
    sender: Sender,
    config: EngineConfig,
    wakeup: Wakeup,
    /// What changes may claim for this engine (see [`HandOff`]), kept up to date by the
    /// dispatcher.
    terms: Mutex<Terms>,
    listeners: Arc<ListenerHub>,
}

/// The dispatcher's word on hand-offs: whether it takes any, and which webhooks it has no room
/// for.
#[derive(Default)]
struct Terms {
    full: bool,
    busy: Arc<HashSet<i64>>,
}

impl Engine {
    pub fn new(store: SharedStore, sender: Sender, config: EngineConfig) -> Self {
        Engine {
            store,
            sender,
            config,
            wakeup: Wakeup::default(),
            terms: Mutex::default(),
            listeners: Arc::default(),
        }
    }

    /// When a claim made now runs out.
    pub fn lease_until(&self, now: i64) -> i64 {
        now + ms(self.config.lease())
    }

    /// Connected `herald listen` sessions.
    pub fn listeners(&self) -> &Arc<ListenerHub> {
        &self.listeners
    }

    /// Wakes the dispatcher for these webhooks.
    pub fn wake(&self, webhook_ids: &[i64]) {
        self.wakeup.wake(webhook_ids);
    }

    /// What a change about to be written may claim for this engine: deliveries to webhooks it
    /// has room for, claimed for one lease.
    pub fn hand_off_terms(&self) -> HandOff {
        let Ok(terms) = self.terms.lock() else {
            return HandOff::default();
        };
        if terms.full {
            return HandOff::default();
        }
        HandOff {
            until: self.lease_until(now_ms()),
            except: terms.busy.clone(),
        }
    }

    /// Takes deliveries a change claimed for this engine (under [`Engine::hand_off_terms`]),
    /// claimed until `until` (ms). Those it cannot start in time go back to the queue.
    pub fn hand_off(&self, claims: Vec<Claimed>, until: i64) {
        self.wakeup.hand_off(claims, until);
    }

    /// Publishes what changes may hand over. Nothing while outcomes wait to be recorded beyond
    /// [`MAX_UNRECORDED`]: the database is behind, so new deliveries wait in it rather than in
    /// memory.
    fn publish_terms(&self, slots: &Slots, unrecorded: usize) {
        let (full, busy) = slots.terms(unrecorded);
        if let Ok(mut terms) = self.terms.lock() {
            terms.full = full;
            if *terms.busy != busy {
                terms.busy = Arc::new(busy);
            }
        }
    }

    /// The outbound client (also used for endpoint handshakes).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Attempts a delivery claimed outside the dispatcher (a test ping, a redelivery) right
    /// away, and records the outcome.
    pub async fn attempt_now(&self, claim: Claimed) -> crate::store::Result<()> {
        let record = attempt(&self.sender, &self.listeners, &self.config, claim).await;
        self.store
            .record(
                std::slice::from_ref(&record),
                now_ms(),
                ms(self.config.disable_after),
            )
            .await?;
        if matches!(record.fate, Fate::Retry { .. }) {
            self.wakeup.wake(&[record.webhook_id]);
        }
        Ok(())
    }

    /// One database round: puts `back` in the queue again, then records `records` and claims
    /// `wants` in one transaction (see [`Store::settle`]).
    async fn round(
        &self,
        records: &[Recorded],
        back: &[(i64, i64, i64)],
        wants: &[(i64, i64)],
    ) -> crate::store::Result<Vec<Claimed>> {
        if !back.is_empty() {
            let claims: Vec<(i64, i64)> = back.iter().map(|(d, l, _)| (*d, *l)).collect();
            self.store.release(&claims).await?;
        }
        let now = now_ms();
        self.store
            .settle(
                records,
                wants,
                &self.listeners.connected(),
                now,
                now + ms(self.config.lease()),
                ms(self.config.disable_after),
            )
            .await
    }

    /// Starts an attempt of a claimed delivery in its own task; its outcome goes to `done`.
    fn spawn_attempt(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        done: &mpsc::UnboundedSender<Recorded>,
        claim: Claimed,
    ) {
        let (engine, done) = (self.clone(), done.clone());
        let span = info_span!(
            "attempt",
            delivery.id = claim.delivery_id,
            webhook.id = claim.webhook_id,
            attempt = claim.retries_made + 1
        );
        tasks.spawn(
            async move {
                let record =
                    attempt(&engine.sender, &engine.listeners, &engine.config, claim).await;
                let _ = done.send(record);
            }
            .instrument(span),
        );
    }

    /// Delivers until `shutdown` turns true.
    ///
    /// Deliveries handed over by this process's changes start at once, as room allows. Each
    /// round is one transaction: it records the attempts that finished since the last round and
    /// claims from the queue what there is room for. Rounds start when work is enqueued, when
    /// attempts finish (after a short linger that gathers more of them), when a retry this
    /// process scheduled falls due, or on the poll (which finds everything else that is due).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Recorded>();
        let mut slots = Slots::new(self.config.max_in_flight, self.config.webhook_concurrency);
        let mut candidates: HashSet<i64> = HashSet::new();
        let mut finished: Vec<Recorded> = Vec::new();
        let mut give_back: Vec<(i64, i64, i64)> = Vec::new();
        let mut retries = RetryTimers::default();
        // A steady interval: activity on the other branches cannot postpone it.
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll_due = true;
        let mut failures = 0u32;
        let mut tasks = tokio::task::JoinSet::new();
        // The database round in progress: it runs beside the dispatch, which keeps starting
        // handed-over deliveries meanwhile.
        let mut round: Option<tokio::task::JoinHandle<Round>> = None;
        // A handed-off delivery must start while its claim still covers a whole attempt.
        let start_margin = ms(self.config.timeout) + 1_000;

        while !*shutdown.borrow() {
            let inbox = self.wakeup.take();
            candidates.extend(inbox.webhooks);
            for (claim, until) in inbox.handed {
                slots.queue(claim, until - start_margin);
            }
            candidates.extend(retries.due(now_ms()));
            if poll_due {
                poll_due = false;
                candidates.extend(self.listeners.connected());
                match self.store.due_webhooks(now_ms()).await {
                    Ok(ids) => candidates.extend(ids),
                    Err(e) => warn!(error = %e, "could not look for due deliveries"),
                }
            }
            while let Ok(r) = done_rx.try_recv() {
                slots.finish(&r, Instant::now());
                finished.push(r);
            }
            let (ready, late) = slots.start_ready(Instant::now(), now_ms());
            for claim in ready {
                self.spawn_attempt(&mut tasks, &done_tx, claim);
            }
            give_back.extend(late);
            if round.is_none() {
                // While outcomes wait to be recorded, claim nothing more: record first.
                let wants = if finished.len() > MAX_UNRECORDED {
                    Vec::new()
                } else {
                    slots.wants(&candidates, Instant::now())
                };
                if !wants.is_empty() || !finished.is_empty() || !give_back.is_empty() {
                    slots.reserve(&wants);
                    // A round records at most MAX_ROUND outcomes, so it stays bounded.
                    let rest = finished.split_off(finished.len().min(MAX_ROUND));
                    let records = std::mem::replace(&mut finished, rest);
                    let back = std::mem::take(&mut give_back);
                    let engine = self.clone();
                    round = Some(tokio::spawn(async move {
                        let started = Instant::now();
                        let result = engine.round(&records, &back, &wants).await;
                        let took = started.elapsed();
                        if took > SLOW_ROUND {
                            warn!(
                                took_ms = took.as_millis(),
                                records = records.len(),
                                handed_back = back.len(),
                                webhooks = wants.len(),
                                "a delivery round was slow"
                            );
                        }
                        Round {
                            records,
                            back,
                            wants,
                            result,
                        }
                    }));
                }
            }
            self.publish_terms(&slots, finished.len());
            while tasks.try_join_next().is_some() {}
            if failures > 0 && round.is_none() {
                // The database is failing: do not hammer it.
                tokio::time::sleep(Duration::from_millis(50 * u64::from(failures.min(20)))).await;
            }
            let next_retry = retries.next().map(|at| {
                let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
            tokio::select! {
                _ = self.wakeup.notify.notified() => {}
                Some(r) = done_rx.recv() => {
                    slots.finish(&r, Instant::now());
                    finished.push(r);
                    // Gather the attempts finishing right after this one into the same round.
                    let until = tokio::time::Instant::now() + LINGER;
                    while finished.len() < MAX_ROUND {
                        match tokio::time::timeout_at(until, done_rx.recv()).await {
                            Ok(Some(r)) => {
                                slots.finish(&r, Instant::now());
                                finished.push(r);
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                joined = async {
                    match round.as_mut() {
                        Some(handle) => handle.await,
                        None => std::future::pending().await,
                    }
                }, if round.is_some() => {
                    round = None;
                    let Round { mut records, mut back, wants, result } = match joined {
                        Ok(done) => done,
                        Err(e) => {
                            // A round does not panic by design; if one did, its records are lost
                            // from memory, and the leases bring their deliveries back.
                            warn!(error = %e, "a delivery round failed");
                            failures += 1;
                            continue;
                        }
                    };
                    slots.unreserve(&wants);
                    match result {
                        Ok(claimed) => {
                            failures = 0;
                            for r in &records {
                                if let Fate::Retry { at } = r.fate {
                                    retries.schedule(at, r.webhook_id);
                                }
                            }
                            candidates.extend(back.iter().map(|(_, _, w)| *w));
                            let mut got: HashMap<i64, i64> = HashMap::new();
                            for c in &claimed {
                                *got.entry(c.webhook_id).or_default() += 1;
                            }
                            for (w, asked) in &wants {
                                if got.get(w).copied().unwrap_or(0) < *asked {
                                    candidates.remove(w); // drained for now
                                }
                            }
                            for claim in claimed {
                                slots.start(claim.delivery_id, claim.webhook_id, claim.lease);
                                self.spawn_attempt(&mut tasks, &done_tx, claim);
                            }
                        }
                        Err(e) => {
                            // Everything goes into the next round; the leases keep the
                            // deliveries safe meanwhile.
                            failures += 1;
                            warn!(error = %e, failures, "could not record and claim deliveries");
                            records.append(&mut finished);
                            finished = records;
                            back.append(&mut give_back);
                            give_back = back;
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_retry.unwrap_or_else(tokio::time::Instant::now)), if next_retry.is_some() => {}
                _ = poll.tick() => poll_due = true,
                _ = shutdown.changed() => {}
            }
        }

        // Shutdown: end listener sessions, let attempts in flight finish for a grace period,
        // record what finished, and hand back the rest.
        self.listeners.close_all();
        if let Some(handle) = round.take() {
            if let Ok(Round {
                mut records,
                back,
                wants,
                result,
            }) = handle.await
            {
                slots.unreserve(&wants);
                match result {
                    Ok(claimed) => {
                        for claim in claimed {
                            slots.start(claim.delivery_id, claim.webhook_id, claim.lease);
                            self.spawn_attempt(&mut tasks, &done_tx, claim);
                        }
                    }
                    Err(_) => {
                        records.append(&mut finished);
                        finished = records;
                        give_back.extend(back);
                    }
                }
            }
        }
        let _ = tokio::time::timeout(self.config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        while let Ok(r) = done_rx.try_recv() {
            slots.finish(&r, Instant::now());
            finished.push(r);
        }
        for attempt in 0..5u64 {
            match self
                .store
                .record(&finished, now_ms(), ms(self.config.disable_after))
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, attempt, "could not record the last attempts; their deliveries are retried when their lease ends");
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
            }
        }
        for (claim, until) in self.wakeup.take().handed {
            slots.queue(claim, until);
        }
        let mut unfinished = slots.unfinished();
        unfinished.extend(give_back.iter().map(|(d, l, _)| (*d, *l)));
        if !unfinished.is_empty() {
            if let Err(e) = self.store.release(&unfinished).await {
                warn!(error = %e, count = unfinished.len(), "could not hand back deliveries; they are retried when their lease ends");
            }
        }
    }
}

/// A finished database round: what it was given, and the claims it made (or its error).
struct Round {
    records: Vec<Recorded>,
    /// Handed-over deliveries it put back in the queue, as `(delivery id, lease, webhook id)`.
    back: Vec<(i64, i64, i64)>,
    wants: Vec<(i64, i64)>,
    result: crate::store::Result<Vec<Claimed>>,
}

/// Due times of the retries this process scheduled, so each is claimed when it falls due rather
/// than at the next poll. Bounded: past [`RetryTimers::MAX`] entries the poll finds the rest.
#[derive(Default)]
struct RetryTimers(std::collections::BinaryHeap<std::cmp::Reverse<(i64, i64)>>);

impl RetryTimers {
    const MAX: usize = 65_536;

    fn schedule(&mut self, at: i64, webhook: i64) {
        if self.0.len() < Self::MAX {
            self.0.push(std::cmp::Reverse((at, webhook)));
        }
    }

    /// The earliest due time, if any.
    fn next(&self) -> Option<i64> {
        self.0.peek().map(|std::cmp::Reverse((at, _))| *at)
    }

    /// Takes the webhooks whose retries are due at `now`.
    fn due(&mut self, now: i64) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse((at, webhook))) = self.0.peek().copied() {
            if at > now {
                break;
            }
            self.0.pop();
            out.push(webhook);
        }
        out
    }
}

/// After an attempt finishes, how long the dispatcher waits for more before its round: one
/// transaction then carries many outcomes, which keeps commits (SQLite's single writer above
/// all) few.
const LINGER: Duration = Duration::from_millis(3);
/// A round slower than this is logged: the database is the engine's bottleneck.
const SLOW_ROUND: Duration = Duration::from_millis(500);
/// The most outcomes one round records. Large enough that a backlog of outcomes is caught up
/// in big (cheaper per outcome) transactions.
const MAX_ROUND: usize = 16_384;
/// Past this many outcomes waiting to be recorded, the engine starts nothing new: the database
/// is behind, and deliveries wait in it rather than in memory. High enough that a stall of a
/// few seconds (a cold cache, a slow disk flush) is ridden out without switching every new
/// delivery to the slower claim path (outcomes are a few hundred bytes each).
const MAX_UNRECORDED: usize = 65_536;

/// Handed-over deliveries in flight and waiting, overall and per webhook, as a multiple of the
/// room in flight (see [`Slots::full`]).
const WAITING: usize = 2;

/// Claims wait until at least this fraction (1/n) of the engine's room is free (see
/// [`Slots::wants`]).
const CLAIM_BATCH: usize = 16;

/// Consecutive failures after which a webhook is paused.
const BREAKER_TRIP: u32 = 10;
/// The first pause; each further trip doubles it, up to [`BREAKER_MAX_PAUSE`].
const BREAKER_PAUSE: Duration = Duration::from_secs(1);
const BREAKER_MAX_PAUSE: Duration = Duration::from_secs(60);

/// The dispatcher's bookkeeping: attempts in flight, overall and per webhook, and a circuit
/// breaker per failing webhook. A webhook that just failed gets one attempt in flight at a
/// time; after [`BREAKER_TRIP`] failures in a row it gets none for a pause (then one probe), so a
/// dead receiver with a large backlog costs almost nothing while its deliveries wait.
struct Slots {
    max_in_flight: usize,
    per_webhook_max: usize,
    /// delivery id -> (webhook id, lease)
    in_flight: HashMap<i64, (i64, i64)>,
    per_webhook: HashMap<i64, usize>,
    /// webhook id -> (consecutive failures, paused until)
    failing: HashMap<i64, (u32, Option<Instant>)>,
    /// Deliveries handed over claimed, per webhook, waiting for room: each with the time (ms)
    /// by which it must start or go back to the queue.
    ready: HashMap<i64, VecDeque<(Claimed, i64)>>,
    ready_count: usize,
    /// Room held for the claims of the round in progress, per webhook.
    reserved: HashMap<i64, usize>,
    reserved_count: usize,
    /// The last webhook claimed for: the next claims start after it.
    turn: i64,
}

impl Slots {
    fn new(max_in_flight: usize, per_webhook_max: usize) -> Self {
        Slots {
            max_in_flight,
            per_webhook_max,
            in_flight: HashMap::new(),
            per_webhook: HashMap::new(),
            failing: HashMap::new(),
            ready: HashMap::new(),
            ready_count: 0,
            reserved: HashMap::new(),
            reserved_count: 0,
            turn: i64::MIN,
        }
    }

    /// Holds room for a round's claims until it ends.
    fn reserve(&mut self, wants: &[(i64, i64)]) {
        for (w, n) in wants {
            let n = usize::try_from(*n).unwrap_or(0);
            *self.reserved.entry(*w).or_default() += n;
            self.reserved_count += n;
        }
    }

    fn unreserve(&mut self, wants: &[(i64, i64)]) {
        for (w, n) in wants {
            let n = usize::try_from(*n).unwrap_or(0);
            if let Some(r) = self.reserved.get_mut(w) {
                *r = r.saturating_sub(n);
                if *r == 0 {
                    self.reserved.remove(w);
                }
            }
            self.reserved_count = self.reserved_count.saturating_sub(n);
        }
    }

    /// Attempts in flight overall, with the room held for the round in progress.
    fn busy_slots(&self) -> usize {
        self.in_flight.len() + self.reserved_count
    }

    /// How many attempts a webhook may have in flight now: none while its breaker pauses it,
    /// one while it is failing.
    fn cap(&self, webhook: i64, now: Instant) -> usize {
        match self.failing.get(&webhook) {
            None => self.per_webhook_max,
            Some((_, Some(until))) if *until > now => 0,
            Some(_) => 1,
        }
    }

    /// Attempts in flight (or room held for them) and handed-over deliveries waiting, for one
    /// webhook.
    fn load(&self, webhook: i64) -> usize {
        self.running(webhook) + self.waiting(webhook)
    }

    /// Handed-over deliveries waiting to start, for one webhook.
    fn waiting(&self, webhook: i64) -> usize {
        self.ready.get(&webhook).map_or(0, VecDeque::len)
    }

    /// Attempts in flight for one webhook, with the room held for the round in progress.
    fn running(&self, webhook: i64) -> usize {
        self.in_flight_of(webhook) + self.reserved.get(&webhook).copied().unwrap_or(0)
    }

    /// Attempts in flight for one webhook.
    fn in_flight_of(&self, webhook: i64) -> usize {
        self.per_webhook.get(&webhook).copied().unwrap_or(0)
    }

    /// Takes a handed-over delivery, to start as soon as there is room (by `start_by`, ms).
    fn queue(&mut self, claim: Claimed, start_by: i64) {
        self.ready_count += 1;
        self.ready
            .entry(claim.webhook_id)
            .or_default()
            .push_back((claim, start_by));
    }

    /// Starts the handed-over deliveries there is room for. Returns them, and those that go
    /// back to the queue as `(delivery id, lease, webhook id)`: too late to start within their
    /// claim, beyond their webhook's share (in flight and waiting together), or for a webhook
    /// its breaker paused.
    fn start_ready(&mut self, now: Instant, now_ms: i64) -> (Vec<Claimed>, Vec<(i64, i64, i64)>) {
        let (mut started, mut back) = (Vec::new(), Vec::new());
        if self.ready_count == 0 {
            return (started, back);
        }
        let mut webhooks: Vec<i64> = self.ready.keys().copied().collect();
        webhooks.sort_unstable();
        for w in webhooks {
            let cap = self.cap(w, now);
            let Some(mut queue) = self.ready.remove(&w) else {
                continue;
            };
            self.ready_count -= queue.len();
            while let Some((claim, start_by)) = queue.pop_front() {
                if start_by < now_ms {
                    back.push((claim.delivery_id, claim.lease, w));
                } else if self.running(w) < cap && self.busy_slots() < self.max_in_flight {
                    self.start(claim.delivery_id, w, claim.lease);
                    started.push(claim);
                } else {
                    queue.push_front((claim, start_by));
                    break;
                }
            }
            // What waits and what is in flight together stay within WAITING times the webhook's
            // share (`cap` is never more than the share).
            let keep = (WAITING * cap).saturating_sub(self.in_flight_of(w));
            while queue.len() > keep {
                if let Some((claim, _)) = queue.pop_back() {
                    back.push((claim.delivery_id, claim.lease, w));
                }
            }
            if !queue.is_empty() {
                self.ready_count += queue.len();
                self.ready.insert(w, queue);
            }
        }
        (started, back)
    }

    /// Whether changes may hand over nothing at all, and the webhooks they may not hand over
    /// to, with `unrecorded` outcomes waiting to be recorded.
    fn terms(&self, unrecorded: usize) -> (bool, HashSet<i64>) {
        (self.full() || unrecorded > MAX_UNRECORDED, self.busy())
    }

    /// Whether the engine has no room for more handed-over deliveries at all: as many waiting
    /// as may be in flight, beyond those in flight.
    ///
    /// Handed-over deliveries wait in memory rather than go to the queue, because a delivery
    /// that goes through the queue costs the database a claim besides its insert and record:
    /// under overload (more offered than the engine can send), slots free a few at a time,
    /// and a change arriving just then found no room and wrote its deliveries unclaimed. A
    /// waiting delivery holds its claim, and goes back to the queue if it cannot start while
    /// the claim still covers an attempt.
    fn full(&self) -> bool {
        self.busy_slots() + self.ready_count >= WAITING * self.max_in_flight
    }

    /// Webhooks with no room for more handed-over deliveries: a share in flight (or room held
    /// for a round's claims) and a share waiting, or failing. Room held for
    /// a round counts: a handed-over delivery could not start before the round ends, and those
    /// piling up behind it would go back to the queue, one more write each.
    fn busy(&self) -> HashSet<i64> {
        let mut busy: HashSet<i64> = self.failing.keys().copied().collect();
        busy.extend(
            self.per_webhook
                .keys()
                .chain(self.ready.keys())
                .chain(self.reserved.keys())
                .copied()
                .filter(|w| self.load(*w) >= WAITING * self.per_webhook_max),
        );
        busy
    }

    /// How many more attempts each candidate webhook may start now.
    ///
    /// Claims come in batches: a webhook is claimed for only once it has room for a quarter of
    /// its share, and nothing is claimed while less than [`CLAIM_BATCH`]th of the engine is
    /// free. A claim's cost is mostly per webhook (finding its due deliveries), so under
    /// overload, when slots free up a few at a time, claiming each as it frees cost a query per
    /// delivery. The webhooks take turns, starting after the last one served, so under overload
    /// the engine's room goes round them all rather than to the lowest ids.
    fn wants(&mut self, candidates: &HashSet<i64>, now: Instant) -> Vec<(i64, i64)> {
        let mut budget = self
            .max_in_flight
            .saturating_sub(self.busy_slots() + self.ready_count);
        if budget < (self.max_in_flight / CLAIM_BATCH).max(1) {
            return Vec::new();
        }
        let mut ordered: Vec<i64> = candidates.iter().copied().collect();
        ordered.sort_unstable();
        let first = ordered.partition_point(|w| *w <= self.turn);
        ordered.rotate_left(first);
        let mut wants = Vec::new();
        for w in ordered {
            if budget == 0 {
                break;
            }
            let cap = self.cap(w, now);
            let n = cap.saturating_sub(self.load(w)).min(budget);
            if n > 0 && n >= (cap / 4).max(1) {
                wants.push((w, i64::try_from(n).unwrap_or(i64::MAX)));
                budget -= n;
                self.turn = w;
            }
        }
        wants
    }

    fn start(&mut self, delivery: i64, webhook: i64, lease: i64) {
        self.in_flight.insert(delivery, (webhook, lease));
        *self.per_webhook.entry(webhook).or_default() += 1;
    }

    fn finish(&mut self, done: &Recorded, now: Instant) {
        self.in_flight.remove(&done.delivery_id);
        if let Some(n) = self.per_webhook.get_mut(&done.webhook_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_webhook.remove(&done.webhook_id);
            }
        }
        if done.fate == Fate::Succeeded {
            self.failing.remove(&done.webhook_id);
            return;
        }
        let entry = self.failing.entry(done.webhook_id).or_insert((0, None));
        entry.0 += 1;
        if entry.0 >= BREAKER_TRIP {
            let trips = (entry.0 - BREAKER_TRIP).min(16);
            entry.1 = Some(
                now + BREAKER_PAUSE
                    .saturating_mul(1 << trips)
                    .min(BREAKER_MAX_PAUSE),
            );
        }
    }

    /// Claims in flight or waiting, as `(delivery id, lease)`.
    fn unfinished(&self) -> Vec<(i64, i64)> {
        self.in_flight
            .iter()
            .map(|(d, (_, lease))| (*d, *lease))
            .chain(
                self.ready
                    .values()
                    .flatten()
                    .map(|(c, _)| (c.delivery_id, c.lease)),
            )
            .collect()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sends one claimed delivery (over HTTP, or to its `herald listen` session) and decides what
/// becomes of it.
async fn attempt(
    sender: &Sender,
    listeners: &ListenerHub,
    config: &EngineConfig,
    claim: Claimed,
) -> Recorded {
    let hook_id = encode(Kind::Webhook, claim.webhook_id);
    let event_name = claim.event.as_str();
    let body = bytes::Bytes::from(event::body(
        &hook_id,
        &claim.nonce,
        claim.event_at,
        event_name,
        &claim.data,
    ));
    let request = Request {
        url: &claim.url,
        hook_id: &hook_id,
        event: event_name,
        nonce: &claim.nonce,
        secrets: &claim.secrets,
        body: &body,
    };
    let response = if claim.url.starts_with(LISTENER_SCHEME) {
        let pushed = Pushed {
            delivery_id: claim.delivery_id,
            nonce: claim.nonce.clone(),
            event: event_name.to_owned(),
            headers: sender::header_pairs(&request, chrono::Utc::now()),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        listeners
            .deliver(claim.webhook_id, pushed, config.timeout)
            .await
    } else {
        sender.send(&request).await
    };
    let unit: f64 = rand::random();
    let next = decide(
        &response.outcome,
        claim.retries_made,
        claim.max_retries,
        &config.retry,
        unit,
    );
    let at = response.at.timestamp_millis();
    let fate = match next {
        Next::Succeeded => Fate::Succeeded,
        Next::Retry(delay) => Fate::Retry {
            at: now_ms() + ms(delay),
        },
        Next::Failed { gone } => Fate::Failed { gone },
    };
    Recorded {
        delivery_id: claim.delivery_id,
        webhook_id: claim.webhook_id,
        lease: claim.lease,
        at,
        url: claim.url,
        code: response.outcome.code.map(i64::from),
        result: response.outcome.result,
        message: response.outcome.message,
        duration_ms: ms(response.duration),
        response_body: response.response_body,
        fate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(delivery: i64, webhook: i64, ok: bool) -> Recorded {
        Recorded {
            delivery_id: delivery,
            webhook_id: webhook,
            lease: 0,
            at: 0,
            url: String::new(),
            code: None,
            result: crate::domain::delivery::AttemptResult::Unknown,
            message: None,
            duration_ms: 0,
            response_body: None,
            fate: if ok {
                Fate::Succeeded
            } else {
                Fate::Failed { gone: false }
            },
        }
    }

    fn claim(delivery: i64, webhook: i64) -> Claimed {
        Claimed {
            delivery_id: delivery,
            webhook_id: webhook,
            lease: 7,
            nonce: String::new(),
            event: crate::domain::event::EventName::VideoUpdated,
            event_at: 0,
            data: Arc::from(""),
            retries_made: 0,
            max_retries: 0,
            url: String::new(),
            secrets: Vec::new(),
        }
    }

    fn ids(claims: &[Claimed]) -> Vec<i64> {
        claims.iter().map(|c| c.delivery_id).collect()
    }

    #[test]
    fn handed_over_deliveries_start_within_the_bounds_and_the_rest_wait() {
        let mut s = Slots::new(4, 2);
        s.queue(claim(1, 1), 1_000);
        s.queue(claim(2, 1), 1_000);
        s.queue(claim(3, 2), 1_000);
        s.queue(claim(4, 3), 1_000);
        s.queue(claim(5, 3), 1_000);
        let (started, back) = s.start_ready(Instant::now(), 0);
        assert_eq!(ids(&started), vec![1, 2, 3, 4], "four in flight at most");
        assert!(back.is_empty());
        assert!(
            !s.full(),
            "four in flight and one waiting: room for three more to wait"
        );
        s.queue(claim(6, 1), 1_000);
        s.queue(claim(7, 1), 1_000);
        s.queue(claim(8, 3), 1_000);
        assert!(
            s.full(),
            "four in flight and four waiting fill an engine of four"
        );
        assert_eq!(
            s.busy(),
            set(&[1]),
            "webhook 1 has a share in flight and a share waiting; webhook 3 room for one more"
        );
        assert!(s.wants(&set(&[1, 2, 3]), Instant::now()).is_empty());
        s.finish(&done(3, 2, true), Instant::now());
        let (started, _) = s.start_ready(Instant::now(), 0);
        assert_eq!(
            ids(&started),
            vec![5],
            "a waiting one starts when there is room"
        );
        s.queue(claim(9, 2), 1_000);
        let mut left = s.unfinished();
        left.sort_unstable();
        assert_eq!(
            left,
            vec![
                (1, 7),
                (2, 7),
                (4, 7),
                (5, 7),
                (6, 7),
                (7, 7),
                (8, 7),
                (9, 7)
            ],
            "waiting ones are handed back too"
        );
    }

    #[test]
    fn handed_over_deliveries_go_back_when_late_beyond_the_share_or_paused() {
        let mut s = Slots::new(100, 2);
        for d in 1..=6 {
            s.queue(claim(d, 1), 50);
        }
        s.queue(claim(10, 2), 10);
        let (started, mut back) = s.start_ready(Instant::now(), 20);
        back.sort_unstable();
        assert_eq!(ids(&started), vec![1, 2]);
        assert_eq!(
            back,
            vec![(5, 7, 1), (6, 7, 1), (10, 7, 2)],
            "webhook 1's share is two in flight and two waiting; 10 is too late"
        );

        let t0 = Instant::now();
        for d in 0..i64::from(BREAKER_TRIP) {
            s.start(100 + d, 9, 0);
            s.finish(&done(100 + d, 9, false), t0);
        }
        s.queue(claim(6, 9), 1_000);
        let (started, back) = s.start_ready(t0, 0);
        assert!(started.is_empty());
        assert_eq!(
            back,
            vec![(6, 7, 9)],
            "a paused webhook's deliveries go back to the queue"
        );
        assert!(s.busy().contains(&9));
    }

    #[test]
    fn nothing_is_handed_over_while_outcomes_wait_to_be_recorded() {
        let s = Slots::new(10, 4);
        assert!(!s.terms(MAX_UNRECORDED).0);
        assert!(s.terms(MAX_UNRECORDED + 1).0, "the database is behind");
    }

    #[test]
    fn a_round_holds_room_for_its_claims() {
        let mut s = Slots::new(10, 4);
        let wants = s.wants(&set(&[1]), Instant::now());
        assert_eq!(wants, vec![(1, 4)]);
        s.reserve(&wants);
        for d in 1..=4 {
            s.queue(claim(d, 1), 1_000);
        }
        let (started, back) = s.start_ready(Instant::now(), 0);
        assert!(
            started.is_empty(),
            "the round may claim webhook 1's whole share"
        );
        assert!(back.is_empty(), "the handed-over ones wait for the round");
        assert!(
            s.busy().contains(&1),
            "webhook 1's share is held for the round and a share waits: nothing more is handed over"
        );
        s.unreserve(&wants);
        assert!(!s.busy().contains(&1), "the round is over");
        let (started, _) = s.start_ready(Instant::now(), 0);
        assert_eq!(ids(&started), vec![1, 2, 3, 4]);
        assert!(!s.busy().contains(&1), "four in flight, none waiting");
    }

    fn set(ids: &[i64]) -> HashSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn retry_timers_hand_out_webhooks_when_due_in_order() {
        let mut t = RetryTimers::default();
        t.schedule(300, 3);
        t.schedule(100, 1);
        t.schedule(200, 2);
        assert_eq!(t.next(), Some(100));
        assert_eq!(t.due(99), Vec::<i64>::new());
        assert_eq!(t.due(200), vec![1, 2]);
        assert_eq!(t.next(), Some(300));
    }

    #[test]
    fn room_is_bounded_overall_and_per_webhook() {
        let mut s = Slots::new(5, 3);
        assert_eq!(s.wants(&set(&[1, 2]), Instant::now()), vec![(1, 3), (2, 2)]);
        s.start(10, 1, 0);
        s.start(11, 1, 0);
        assert_eq!(s.wants(&set(&[1, 2]), Instant::now()), vec![(1, 1), (2, 2)]);
        s.finish(&done(10, 1, true), Instant::now());
        assert_eq!(s.unfinished(), vec![(11, 0)]);
    }

    #[test]
    fn claims_come_in_batches_and_the_webhooks_take_turns() {
        let mut s = Slots::new(64, 8);
        for d in 0..7 {
            s.start(d, 1, 0);
        }
        assert_eq!(
            s.wants(&set(&[1, 2]), Instant::now()),
            vec![(2, 8)],
            "room for one on webhook 1 is less than a quarter of its share: not worth a claim"
        );
        s.start(7, 1, 0);
        for d in 100..154 {
            s.start(d, 50 + d, 0);
        }
        assert_eq!(s.busy_slots(), 62);
        assert!(
            s.wants(&set(&[2]), Instant::now()).is_empty(),
            "2 of 64 free is less than a 16th: wait for more room"
        );

        let mut s = Slots::new(16, 8);
        assert_eq!(
            s.wants(&set(&[1, 2, 3]), Instant::now()),
            vec![(1, 8), (2, 8)]
        );
        assert_eq!(
            s.wants(&set(&[1, 2, 3]), Instant::now()),
            vec![(3, 8), (1, 8)],
            "the next claims start after the last webhook served"
        );
    }

    #[test]
    fn a_failing_webhook_gets_one_slot_then_a_pause_then_a_probe() {
        let mut s = Slots::new(100, 10);
        let t0 = Instant::now();
        s.start(1, 7, 0);
        s.finish(&done(1, 7, false), t0);
        assert_eq!(s.wants(&set(&[7]), t0), vec![(7, 1)]);
        for d in 2..=BREAKER_TRIP as i64 {
            s.start(d, 7, 0);
            s.finish(&done(d, 7, false), t0);
        }
        assert!(s.wants(&set(&[7]), t0).is_empty(), "paused");
        assert_eq!(
            s.wants(&set(&[7]), t0 + BREAKER_PAUSE),
            vec![(7, 1)],
            "one probe after the pause"
        );
        s.start(99, 7, 0);
        s.finish(&done(99, 7, false), t0 + BREAKER_PAUSE);
        assert!(
            s.wants(&set(&[7]), t0 + BREAKER_PAUSE * 2).is_empty(),
            "the pause doubles"
        );
        s.start(100, 7, 0);
        s.finish(&done(100, 7, true), t0);
        assert_eq!(
            s.wants(&set(&[7]), t0),
            vec![(7, 10)],
            "a success closes the breaker"
        );
    }
}
