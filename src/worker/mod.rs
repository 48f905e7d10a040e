//! The delivery engine: claim → send → record → reschedule.
//!
//! One dispatcher claims due deliveries in short transactions, per webhook and within two
//! bounds: a global number of attempts in flight, and a per-webhook number, so a receiver that
//! hangs holds at most its own share while every other webhook keeps flowing. Each claimed
//! delivery is sent by its own task, outside any transaction. Outcomes go to one recorder task
//! that writes them in batches (one transaction for many attempts). Retries are scheduled in the
//! database (`next_attempt_at`), never slept on in-process.
//!
//! Durability: a claim pushes a delivery's due time one lease ahead. If the process dies before
//! the outcome is recorded, the delivery is due again when the lease runs out and is attempted
//! again: at-least-once, with the nonce for receivers to drop duplicates. On shutdown the
//! dispatcher stops claiming, lets attempts in flight finish for a grace period, records them,
//! and hands back the rest.

pub mod listeners;
pub mod sender;

use crate::domain::delivery::{decide, Next};
use crate::domain::event;
use crate::domain::ids::{encode, Kind};
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::domain::webhook::LISTENER_SCHEME;
use crate::store::{Claimed, Fate, Recorded, SharedStore};
use listeners::{ListenerHub, Pushed};
use sender::{Request, Sender};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tracing::{info_span, warn, Instrument};

/// Tells the dispatcher that deliveries were enqueued for these webhooks.
#[derive(Default)]
struct Wakeup {
    webhooks: Mutex<HashSet<i64>>,
    notify: Notify,
}

impl Wakeup {
    pub fn wake(&self, webhook_ids: &[i64]) {
        if webhook_ids.is_empty() {
            return;
        }
        if let Ok(mut set) = self.webhooks.lock() {
            set.extend(webhook_ids);
        }
        self.notify.notify_one();
    }

    fn take(&self) -> HashSet<i64> {
        self.webhooks
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
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
    listeners: Arc<ListenerHub>,
}

impl Engine {
    pub fn new(store: SharedStore, sender: Sender, config: EngineConfig) -> Self {
        Engine {
            store,
            sender,
            config,
            wakeup: Wakeup::default(),
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

    /// Delivers until `shutdown` turns true.
    ///
    /// Each round is one transaction: it records the attempts that finished since the last
    /// round and claims what there is room for. Rounds start when work is enqueued, when
    /// attempts finish (after a short linger that gathers more of them), when a retry this
    /// process scheduled falls due, or on the poll (which finds everything else that is due).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Recorded>();
        let mut slots = Slots::new(self.config.max_in_flight, self.config.webhook_concurrency);
        let mut candidates: HashSet<i64> = HashSet::new();
        let mut finished: Vec<Recorded> = Vec::new();
        let mut retries = RetryTimers::default();
        // A steady interval: activity on the other branches cannot postpone it.
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll_due = true;
        let mut failures = 0u32;
        let mut tasks = tokio::task::JoinSet::new();

        while !*shutdown.borrow() {
            candidates.extend(self.wakeup.take());
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
            let wants = slots.wants(&candidates, Instant::now());
            let mut round_failed = false;
            if !wants.is_empty() || !finished.is_empty() {
                let now = now_ms();
                let lease_until = now + ms(self.config.lease());
                let listeners = self.listeners.connected();
                match self
                    .store
                    .settle(
                        &finished,
                        &wants,
                        &listeners,
                        now,
                        lease_until,
                        ms(self.config.disable_after),
                    )
                    .await
                {
                    Ok(claimed) => {
                        failures = 0;
                        for r in &finished {
                            if let Fate::Retry { at } = r.fate {
                                retries.schedule(at, r.webhook_id);
                            }
                        }
                        finished.clear();
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
                            let (engine, done_tx) = (self.clone(), done_tx.clone());
                            let span = info_span!(
                                "attempt",
                                delivery.id = claim.delivery_id,
                                webhook.id = claim.webhook_id,
                                attempt = claim.retries_made + 1
                            );
                            tasks.spawn(
                                async move {
                                    let record = attempt(
                                        &engine.sender,
                                        &engine.listeners,
                                        &engine.config,
                                        claim,
                                    )
                                    .await;
                                    let _ = done_tx.send(record);
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Err(e) => {
                        // The outcomes stay in `finished` for the next round; their leases keep
                        // the deliveries safe meanwhile.
                        round_failed = true;
                        failures += 1;
                        warn!(error = %e, failures, "could not record and claim deliveries");
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
            if !round_failed && !slots.wants(&candidates, Instant::now()).is_empty() {
                continue; // more work is ready and there is room for it
            }
            if failures > 0 {
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
                _ = tokio::time::sleep_until(next_retry.unwrap_or_else(tokio::time::Instant::now)), if next_retry.is_some() => {}
                _ = poll.tick() => poll_due = true,
                _ = shutdown.changed() => {}
            }
        }

        // Shutdown: end listener sessions, let attempts in flight finish for a grace period,
        // record what finished, and hand back the rest.
        self.listeners.close_all();
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
        let unfinished = slots.unfinished();
        if !unfinished.is_empty() {
            if let Err(e) = self.store.release(&unfinished, now_ms()).await {
                warn!(error = %e, count = unfinished.len(), "could not hand back deliveries; they are retried when their lease ends");
            }
        }
    }
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
/// The most outcomes one round records.
const MAX_ROUND: usize = 2048;

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
}

impl Slots {
    fn new(max_in_flight: usize, per_webhook_max: usize) -> Self {
        Slots {
            max_in_flight,
            per_webhook_max,
            in_flight: HashMap::new(),
            per_webhook: HashMap::new(),
            failing: HashMap::new(),
        }
    }

    /// How many more attempts each candidate webhook may start now.
    fn wants(&self, candidates: &HashSet<i64>, now: Instant) -> Vec<(i64, i64)> {
        let mut budget = self.max_in_flight.saturating_sub(self.in_flight.len());
        let mut ordered: Vec<i64> = candidates.iter().copied().collect();
        ordered.sort_unstable();
        let mut wants = Vec::new();
        for w in ordered {
            if budget == 0 {
                break;
            }
            let cap = match self.failing.get(&w) {
                None => self.per_webhook_max,
                Some((_, Some(until))) if *until > now => 0,
                Some(_) => 1,
            };
            let n = cap
                .saturating_sub(self.per_webhook.get(&w).copied().unwrap_or(0))
                .min(budget);
            if n > 0 {
                wants.push((w, i64::try_from(n).unwrap_or(i64::MAX)));
                budget -= n;
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

    /// Claims in flight, as `(delivery id, lease)`.
    fn unfinished(&self) -> Vec<(i64, i64)> {
        self.in_flight
            .iter()
            .map(|(d, (_, lease))| (*d, *lease))
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
    let body = event::body(
        &hook_id,
        &claim.nonce,
        claim.event_at,
        event_name,
        &claim.data,
    );
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
            body: body.clone(),
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
