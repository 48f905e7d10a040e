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
//!
//! The engine takes its work from the outbox, through [`Deliverer`], which it implements:
//! deliveries handed over, webhooks to wake, attempts asked for now. It pushes deliveries to
//! `herald listen` sessions through the outbox's hub.
//!
//! The parts: `dispatch` runs the loop and the database rounds; `scheduler` keeps the bounds,
//! the waiting hand-offs and the retry timers; `breaker` holds back a failing webhook;
//! `attempt` makes one attempt; [`sender`] is the outbound HTTP client.

mod attempt;
mod breaker;
mod dispatch;
mod scheduler;
pub mod sender;
#[cfg(test)]
mod testing;

use crate::domain::delivery::Fate;
use crate::domain::ids::WebhookId;
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::metrics::{DisabledBy, Metrics};
use crate::outbox::hub::ListenerHub;
use crate::outbox::{Deliverer, HandshakeFailed};
use crate::store::{Claimed, Disabled, HandOff, SharedStore, StoreError};
use async_trait::async_trait;
use dispatch::Intake;
use scheduler::Scheduler;
use sender::Sender;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Delivers the queued deliveries of the whole database, and those this process's changes
/// hand to it (see the module documentation). [`Engine::run`] drives it; the outbox reaches it
/// as a [`Deliverer`].
pub struct Engine {
    store: SharedStore,
    sender: Sender,
    config: EngineConfig,
    intake: Intake,
    /// What changes may claim for this engine (see [`HandOff`]), kept up to date by the
    /// dispatcher.
    hand_off_limits: Mutex<HandOffLimits>,
    listeners: Arc<ListenerHub>,
    metrics: Arc<Metrics>,
}

/// The dispatcher's word on hand-offs (whether it takes none, and which webhooks it has no room
/// for), and its breakers' pauses.
#[derive(Default)]
struct HandOffLimits {
    refuse_all: bool,
    busy_webhooks: Arc<HashSet<WebhookId>>,
    /// When each paused webhook may be tried again (ms), as of `breakers_version`.
    paused: HashMap<WebhookId, i64>,
    breakers_version: u64,
}

impl Engine {
    /// An engine delivering the queue of `store`, and to the `herald listen` sessions of `hub`,
    /// counting what it does in `metrics`.
    pub fn new(
        store: SharedStore,
        sender: Sender,
        config: EngineConfig,
        hub: Arc<ListenerHub>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Engine {
            store,
            sender,
            config,
            intake: Intake::default(),
            hand_off_limits: Mutex::default(),
            listeners: hub,
            metrics,
        }
    }

    /// Says that herald disabled these webhooks: a warning each, and the metric. (The
    /// `webhook.disabled` deliveries the store queued are found by the next poll.)
    fn disabled(&self, disabled: &[Disabled]) {
        for d in disabled {
            let (why, reason) = if d.gone {
                (DisabledBy::Gone, "its receiver answered 410 Gone")
            } else {
                (
                    DisabledBy::Failing,
                    "every delivery failed for HERALD_DISABLE_AFTER_SECS",
                )
            };
            tracing::warn!(
                webhook.id = d.webhook.get(),
                "herald disabled a webhook: {reason}; enable it again with updateWebhook"
            );
            self.metrics.disabled_by_herald(why);
        }
    }

    /// How many webhooks the circuit breakers hold back now.
    pub fn paused_count(&self) -> usize {
        let now = now_ms();
        self.hand_off_limits
            .lock()
            .map(|limits| limits.paused.values().filter(|until| **until > now).count())
            .unwrap_or(0)
    }

    /// Publishes what changes may hand over. Nothing while more outcomes wait to be recorded
    /// than [`scheduler::MAX_UNRECORDED`]: the database is behind, so new deliveries wait in it
    /// rather than in memory.
    fn publish_hand_off_limits(&self, scheduler: &Scheduler, unrecorded: usize) {
        let refuse_all = scheduler.refuses_all_hand_offs(unrecorded);
        self.metrics
            .engine(scheduler.in_flight_count(), unrecorded, refuse_all);
        let busy = scheduler.busy_webhooks();
        if let Ok(mut limits) = self.hand_off_limits.lock() {
            limits.refuse_all = refuse_all;
            if *limits.busy_webhooks != busy {
                limits.busy_webhooks = Arc::new(busy);
            }
            let breakers = scheduler.breakers();
            if limits.breakers_version != breakers.version() {
                limits.breakers_version = breakers.version();
                let (now, now_ms) = (Instant::now(), now_ms());
                let at = |until: Instant| now_ms + millis(until.saturating_duration_since(now));
                let paused = breakers.pauses().map(|(w, until)| (w, at(until)));
                limits.paused = paused.collect();
            }
        }
    }
}

#[async_trait]
impl Deliverer for Engine {
    fn hand_off_terms(&self) -> HandOff {
        let Ok(limits) = self.hand_off_limits.lock() else {
            return HandOff::none();
        };
        if limits.refuse_all {
            return HandOff::none();
        }
        HandOff {
            until: self.lease_until(now_ms()),
            except: limits.busy_webhooks.clone(),
        }
    }

    fn hand_over(&self, claims: Vec<Claimed>, claimed_until: i64) {
        self.intake.hand_off(claims, claimed_until);
    }

    fn wake(&self, webhooks: &[WebhookId]) {
        self.intake.wake(webhooks);
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + millis(self.config.lease())
    }

    async fn attempt_now(&self, claim: Claimed) -> Result<(), StoreError> {
        let record = attempt::attempt(self, claim).await;
        let disabled = self
            .store
            .record(
                std::slice::from_ref(&record),
                now_ms(),
                millis(self.config.disable_after),
            )
            .await?;
        self.disabled(&disabled);
        match record.fate {
            // The receiver is back: its queued deliveries need not wait out a pause.
            Fate::Succeeded => self.intake.close_breaker(record.webhook_id),
            Fate::Retry { .. } => self.intake.wake(&[record.webhook_id]),
            Fate::Failed { .. } => {}
        }
        Ok(())
    }

    fn reset(&self, webhook: WebhookId) {
        self.intake.close_breaker(webhook);
    }

    fn paused_until(&self, webhook: WebhookId) -> Option<i64> {
        let limits = self.hand_off_limits.lock().ok()?;
        limits.paused.get(&webhook).copied()
    }

    fn attempt_timeout(&self) -> Duration {
        self.sender.timeout()
    }

    async fn handshake(&self, url: &str, token: &str) -> Result<(), HandshakeFailed> {
        Ok(self.sender.handshake(url, token).await?)
    }
}

/// A duration in whole milliseconds, as the store keeps times.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
