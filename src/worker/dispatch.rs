//! The dispatch loop. Deliveries handed over by this process's changes start at once, as room
//! allows. Each database round is one transaction: it records the attempts that finished since
//! the last round and claims from the queue what there is room for. Rounds start when work is
//! enqueued, when attempts finish (after a short linger that gathers more of them), when a
//! retry this process scheduled falls due, or on the poll (which finds everything else that is
//! due). A round runs as a task of its own, beside the loop, which keeps starting handed-over
//! deliveries meanwhile.

use super::attempt::attempt;
use super::scheduler::{ClaimQuotas, HandBack, RetryTimers, Scheduler, MAX_UNRECORDED};
use super::{millis, Engine};
use crate::domain::delivery::{Attempt, AttemptResult, Fate};
use crate::domain::ids::WebhookId;
use crate::domain::time::now_ms;
use crate::store::{Claimed, Lease, Recorded, Round};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::{info_span, warn, Instrument};

/// After an attempt finishes, how long the dispatcher waits for more before its round: one
/// transaction then carries many outcomes, which keeps commits (SQLite's single writer above
/// all) few.
const LINGER: Duration = Duration::from_millis(3);
/// A round slower than this is logged: the database is the engine's bottleneck.
const SLOW_ROUND: Duration = Duration::from_millis(500);
/// The most outcomes one round records. Large enough that a backlog of outcomes is caught up
/// in big (cheaper per outcome) transactions.
const MAX_ROUND: usize = 16_384;

/// What reaches the dispatcher from outside, and the bell that wakes it.
#[derive(Default)]
pub(super) struct Intake {
    arrivals: Mutex<Arrivals>,
    notify: Notify,
}

#[derive(Default)]
struct Arrivals {
    /// Webhooks with deliveries enqueued.
    woken: HashSet<WebhookId>,
    handed_over: Vec<HandedOver>,
    /// Webhooks whose breaker is to close (woken too).
    closed: Vec<WebhookId>,
}

/// A delivery a change claimed for this engine.
struct HandedOver {
    claim: Claimed,
    /// When the claim runs out (ms).
    claimed_until: i64,
}

impl Intake {
    pub(super) fn wake(&self, webhook_ids: &[WebhookId]) {
        if webhook_ids.is_empty() {
            return;
        }
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals.woken.extend(webhook_ids);
        }
        self.notify.notify_one();
    }

    /// Closes a webhook's breaker and wakes the dispatcher for it.
    pub(super) fn close_breaker(&self, webhook: WebhookId) {
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals.closed.push(webhook);
            arrivals.woken.insert(webhook);
        }
        self.notify.notify_one();
    }

    pub(super) fn hand_off(&self, claims: Vec<Claimed>, claimed_until: i64) {
        if claims.is_empty() {
            return;
        }
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals
                .handed_over
                .extend(claims.into_iter().map(|claim| HandedOver {
                    claim,
                    claimed_until,
                }));
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Arrivals {
        self.arrivals
            .lock()
            .map(|mut arrivals| std::mem::take(&mut *arrivals))
            .unwrap_or_default()
    }
}

impl Engine {
    /// Delivers until `shutdown` turns true, then stops as the module documentation says.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut dispatcher = Dispatcher::new(self);
        while !*shutdown.borrow() {
            dispatcher.turn(&mut shutdown).await;
        }
        dispatcher.shut_down().await;
    }

    /// One database round, as a task of its own: puts `handed_back` in the queue again, then
    /// records `records` and claims by `quotas` in one transaction (see
    /// [`Store::record_and_claim`](crate::store::Store::record_and_claim)).
    async fn round(
        self: Arc<Self>,
        records: Vec<Recorded>,
        handed_back: Vec<HandBack>,
        quotas: ClaimQuotas,
    ) -> FinishedRound {
        let started = Instant::now();
        let claimed = self.record_and_claim(&records, &handed_back, &quotas).await;
        let took = started.elapsed();
        self.metrics.round(took, took > SLOW_ROUND);
        if took > SLOW_ROUND {
            warn!(
                took_ms = took.as_millis(),
                records = records.len(),
                handed_back = handed_back.len(),
                webhooks = quotas.len(),
                "a delivery round was slow"
            );
        }
        FinishedRound {
            records,
            handed_back,
            quotas,
            claimed,
        }
    }

    async fn record_and_claim(
        &self,
        records: &[Recorded],
        handed_back: &[HandBack],
        quotas: &ClaimQuotas,
    ) -> crate::store::Result<Vec<Claimed>> {
        if !handed_back.is_empty() {
            let leases: Vec<Lease> = handed_back.iter().map(HandBack::as_lease).collect();
            self.store.release(&leases).await?;
        }
        let now = now_ms();
        let done = self
            .store
            .record_and_claim(Round {
                records,
                quotas: quotas.as_slice(),
                listeners: &self.listeners.connected(),
                now,
                lease_until: now + millis(self.config.lease()),
                disable_after_ms: millis(self.config.disable_after),
            })
            .await?;
        self.disabled(&done.disabled);
        Ok(done.claimed)
    }
}

/// A finished database round: what it was given, and the claims it made (or its error).
struct FinishedRound {
    records: Vec<Recorded>,
    handed_back: Vec<HandBack>,
    quotas: ClaimQuotas,
    claimed: crate::store::Result<Vec<Claimed>>,
}

/// What ended the dispatcher's wait.
enum Woken {
    /// Work arrived through the [`Intake`].
    Notified,
    AttemptFinished(Recorded),
    RoundFinished(Result<FinishedRound, JoinError>),
    RetryDue,
    PollDue,
    ShutdownChanged,
}

/// The dispatch loop's state, between turns.
struct Dispatcher {
    engine: Arc<Engine>,
    scheduler: Scheduler,
    /// Outcomes of attempts, from their tasks.
    outcome_tx: mpsc::UnboundedSender<Recorded>,
    outcome_rx: mpsc::UnboundedReceiver<Recorded>,
    tasks: JoinSet<()>,
    /// Webhooks that may have deliveries due: the next round claims for them.
    candidates: HashSet<WebhookId>,
    /// Outcomes not yet given to a round.
    unrecorded: Vec<Recorded>,
    /// Handed-over deliveries to put back in the queue at the next round.
    to_hand_back: Vec<HandBack>,
    retries: RetryTimers,
    /// A steady interval: activity on the other branches cannot postpone it.
    poll: tokio::time::Interval,
    poll_due: bool,
    /// Rounds failed in a row.
    failures: u32,
    /// The database round in progress.
    round: Option<JoinHandle<FinishedRound>>,
    /// A handed-over delivery must start while its claim still covers a whole attempt.
    start_margin: i64,
}

impl Dispatcher {
    fn new(engine: Arc<Engine>) -> Self {
        let (outcome_tx, outcome_rx) = mpsc::unbounded_channel();
        let config = &engine.config;
        let scheduler = Scheduler::new(config.max_in_flight, config.webhook_concurrency);
        let mut poll = tokio::time::interval(config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let start_margin = millis(config.timeout) + 1_000;
        Dispatcher {
            engine,
            scheduler,
            outcome_tx,
            outcome_rx,
            tasks: JoinSet::new(),
            candidates: HashSet::new(),
            unrecorded: Vec::new(),
            to_hand_back: Vec::new(),
            retries: RetryTimers::default(),
            poll,
            poll_due: true,
            failures: 0,
            round: None,
            start_margin,
        }
    }

    /// One turn: take in what arrived, start what there is room for, start a round unless one
    /// is running, publish the hand-off limits, then wait for something to happen.
    async fn turn(&mut self, shutdown: &mut watch::Receiver<bool>) {
        self.take_arrivals();
        self.candidates.extend(self.retries.take_due(now_ms()));
        if self.poll_due {
            self.poll_due = false;
            self.poll_queue().await;
        }
        self.take_outcomes();
        self.start_waiting();
        if self.round.is_none() {
            self.start_round();
        }
        self.engine
            .publish_hand_off_limits(&self.scheduler, self.unrecorded.len());
        while self.tasks.try_join_next().is_some() {}
        if self.failures > 0 && self.round.is_none() {
            // The database is failing: do not hammer it.
            let pause = Duration::from_millis(50 * u64::from(self.failures.min(20)));
            tokio::time::sleep(pause).await;
        }
        match self.wait(shutdown).await {
            Woken::AttemptFinished(record) => self.gather_outcomes(record).await,
            Woken::RoundFinished(joined) => self.end_round(joined),
            Woken::PollDue => self.poll_due = true,
            Woken::Notified | Woken::RetryDue | Woken::ShutdownChanged => {}
        }
    }

    fn take_arrivals(&mut self) {
        let arrivals = self.engine.intake.take();
        for webhook in arrivals.closed {
            self.scheduler.close_breaker(webhook);
        }
        self.candidates.extend(arrivals.woken);
        for h in arrivals.handed_over {
            self.scheduler
                .add_waiting(h.claim, h.claimed_until - self.start_margin);
        }
    }

    /// Looks for everything due: the poll finds what no other path announces.
    async fn poll_queue(&mut self) {
        self.candidates.extend(self.engine.listeners.connected());
        match self.engine.store.due_webhooks(now_ms()).await {
            Ok(ids) => self.candidates.extend(ids),
            Err(e) => warn!(error = %e, "could not look for due deliveries"),
        }
    }

    fn take_outcome(&mut self, record: Recorded) {
        self.scheduler.finish(&record, Instant::now());
        self.unrecorded.push(record);
    }

    /// Takes in the outcomes already sent, without waiting.
    fn take_outcomes(&mut self) {
        while let Ok(record) = self.outcome_rx.try_recv() {
            self.take_outcome(record);
        }
    }

    /// Takes in a finished attempt, and those finishing right after it, so that one round
    /// records them all.
    async fn gather_outcomes(&mut self, first: Recorded) {
        self.take_outcome(first);
        let until = tokio::time::Instant::now() + LINGER;
        while self.unrecorded.len() < MAX_ROUND {
            match tokio::time::timeout_at(until, self.outcome_rx.recv()).await {
                Ok(Some(record)) => self.take_outcome(record),
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn start_waiting(&mut self) {
        let out = self.scheduler.start_waiting(Instant::now(), now_ms());
        for claim in out.started {
            self.spawn_attempt(claim);
        }
        self.to_hand_back.extend(out.to_hand_back);
    }

    /// Starts a round when there is anything to record, hand back or claim.
    fn start_round(&mut self) {
        // While outcomes wait to be recorded, claim nothing more: record first.
        let quotas = if self.unrecorded.len() > MAX_UNRECORDED {
            ClaimQuotas::default()
        } else {
            self.scheduler
                .claim_quotas(&self.candidates, Instant::now())
        };
        if quotas.is_empty() && self.unrecorded.is_empty() && self.to_hand_back.is_empty() {
            return;
        }
        self.scheduler.reserve(&quotas);
        // A round records at most MAX_ROUND outcomes, so it stays bounded.
        let rest = self
            .unrecorded
            .split_off(self.unrecorded.len().min(MAX_ROUND));
        let records = std::mem::replace(&mut self.unrecorded, rest);
        let handed_back = std::mem::take(&mut self.to_hand_back);
        let round = self.engine.clone().round(records, handed_back, quotas);
        self.round = Some(tokio::spawn(round));
    }

    /// Waits for the next thing to act on.
    async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> Woken {
        let next_retry = self.retries.next_due().map(|at| {
            let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(wait)
        });
        let Dispatcher {
            engine,
            outcome_rx,
            round,
            poll,
            ..
        } = self;
        tokio::select! {
            _ = engine.intake.notify.notified() => Woken::Notified,
            Some(record) = outcome_rx.recv() => Woken::AttemptFinished(record),
            joined = async {
                match round.as_mut() {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            }, if round.is_some() => Woken::RoundFinished(joined),
            _ = tokio::time::sleep_until(next_retry.unwrap_or_else(tokio::time::Instant::now)), if next_retry.is_some() => Woken::RetryDue,
            _ = poll.tick() => Woken::PollDue,
            _ = shutdown.changed() => Woken::ShutdownChanged,
        }
    }

    /// Takes in a finished round: starts what it claimed, or keeps its work for the next round
    /// when it failed.
    fn end_round(&mut self, joined: Result<FinishedRound, JoinError>) {
        self.round = None;
        let FinishedRound {
            records,
            mut handed_back,
            quotas,
            claimed,
        } = match joined {
            Ok(done) => done,
            Err(e) => {
                // A round does not panic by design; if one did, its records are lost from
                // memory, and the leases bring their deliveries back.
                warn!(error = %e, "a delivery round failed");
                self.failures += 1;
                return;
            }
        };
        self.scheduler.unreserve(&quotas);
        match claimed {
            Ok(claimed) => {
                self.failures = 0;
                for r in &records {
                    if let Fate::Retry { at } = r.fate {
                        self.retries.schedule(at, r.webhook_id);
                    }
                }
                self.candidates
                    .extend(handed_back.iter().map(|b| b.webhook));
                self.drop_drained(&quotas, &claimed);
                self.start_claimed(claimed);
            }
            Err(e) => {
                // Everything goes into the next round; the leases keep the deliveries safe
                // meanwhile.
                self.failures += 1;
                warn!(error = %e, failures = self.failures, "could not record and claim deliveries");
                self.keep_unrecorded(records);
                handed_back.append(&mut self.to_hand_back);
                self.to_hand_back = handed_back;
            }
        }
    }

    /// Forgets the candidates a round found fewer due deliveries for than it asked: drained
    /// for now.
    fn drop_drained(&mut self, quotas: &ClaimQuotas, claimed: &[Claimed]) {
        let mut got: HashMap<WebhookId, i64> = HashMap::new();
        for c in claimed {
            *got.entry(c.webhook_id).or_default() += 1;
        }
        for q in quotas.iter() {
            if got.get(&q.webhook).copied().unwrap_or(0) < q.limit {
                self.candidates.remove(&q.webhook);
            }
        }
    }

    fn start_claimed(&mut self, claimed: Vec<Claimed>) {
        for claim in claimed {
            self.scheduler
                .start(claim.delivery_id, claim.webhook_id, claim.lease);
            self.spawn_attempt(claim);
        }
    }

    /// Puts the outcomes of a failed round before those gathered since.
    fn keep_unrecorded(&mut self, mut records: Vec<Recorded>) {
        records.append(&mut self.unrecorded);
        self.unrecorded = records;
    }

    /// Starts an attempt of a claimed delivery in its own task; its outcome comes back through
    /// `outcome_rx`, also when the task is cut off (see [`InFlight`]).
    fn spawn_attempt(&mut self, claim: Claimed) {
        let engine = self.engine.clone();
        let in_flight = InFlight::new(&claim, self.outcome_tx.clone());
        let span = info_span!(
            "attempt",
            delivery.id = claim.delivery_id.get(),
            webhook.id = claim.webhook_id.get(),
            attempt = claim.retries_made + 1
        );
        self.tasks.spawn(
            async move {
                let record = attempt(&engine, claim).await;
                in_flight.finish(record);
            }
            .instrument(span),
        );
    }

    /// Stops: ends listener sessions, lets attempts in flight finish for a grace period,
    /// records what finished and what was cut off, and hands back the rest.
    async fn shut_down(mut self) {
        self.engine.listeners.close_all();
        self.end_round_on_shutdown().await;
        let grace = self.engine.config.shutdown_grace;
        let tasks = &mut self.tasks;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        // Attempts still in flight are cut off; each task, once dropped, sends its attempt as
        // cut (see `InFlight`), to be recorded below.
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.take_outcomes();
        self.record_last().await;
        self.hand_back_unfinished().await;
    }

    /// Waits for the round in progress: what it claimed is attempted within the grace period,
    /// and if it failed, its work is recorded or handed back with the rest.
    async fn end_round_on_shutdown(&mut self) {
        let Some(handle) = self.round.take() else {
            return;
        };
        let Ok(round) = handle.await else {
            return;
        };
        self.scheduler.unreserve(&round.quotas);
        match round.claimed {
            Ok(claimed) => self.start_claimed(claimed),
            Err(_) => {
                self.keep_unrecorded(round.records);
                self.to_hand_back.extend(round.handed_back);
            }
        }
    }

    /// Records the last outcomes, trying a few times: those not recorded are attempted again
    /// when their lease ends.
    async fn record_last(&self) {
        let disable_after = millis(self.engine.config.disable_after);
        for attempt in 0..5u64 {
            match self
                .engine
                .store
                .record(&self.unrecorded, now_ms(), disable_after)
                .await
            {
                Ok(disabled) => {
                    self.engine.disabled(&disabled);
                    break;
                }
                Err(e) => {
                    warn!(error = %e, attempt, "could not record the last attempts; their deliveries are retried when their lease ends");
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
            }
        }
    }

    /// Hands back the claims that were never attempted: waiting, handed over, or in flight
    /// past the grace period.
    async fn hand_back_unfinished(&mut self) {
        for h in self.engine.intake.take().handed_over {
            self.scheduler.add_waiting(h.claim, h.claimed_until);
        }
        let unfinished: Vec<Lease> = self
            .scheduler
            .unfinished()
            .chain(self.to_hand_back.iter().map(HandBack::as_lease))
            .collect();
        if !unfinished.is_empty() {
            if let Err(e) = self.engine.store.release(&unfinished).await {
                warn!(error = %e, count = unfinished.len(), "could not hand back deliveries; they are retried when their lease ends");
            }
        }
    }
}

/// What the delivery log says of an attempt cut off by shutdown.
pub(super) const CUT_OFF: &str = "herald stopped during the attempt";

/// An attempt in flight, whose outcome reaches the dispatcher however its task ends: what the
/// attempt came to, or, if the task is dropped before (aborted when the shutdown grace period
/// runs out), an `UNKNOWN` attempt ([`CUT_OFF`]): the receiver may or may not have had it. The
/// delivery stays queued, due at once, so it is attempted again after the restart
/// (at-least-once; the nonce lets the receiver drop the duplicate).
struct InFlight {
    /// What the log keeps of the attempt if it is cut off; `None` once it finished.
    cut: Option<Recorded>,
    started: Instant,
    done: mpsc::UnboundedSender<Recorded>,
}

impl InFlight {
    fn new(claim: &Claimed, done: mpsc::UnboundedSender<Recorded>) -> Self {
        let cut = Recorded {
            attempt: Attempt {
                delivery_id: claim.delivery_id,
                at: now_ms(),
                url: claim.url.clone(),
                code: None,
                result: AttemptResult::Unknown,
                message: Some(CUT_OFF.to_owned()),
                duration_ms: 0,
                response_body: None,
            },
            webhook_id: claim.webhook_id,
            lease: claim.lease,
            fate: Fate::Retry { at: 0 },
        };
        InFlight {
            cut: Some(cut),
            started: Instant::now(),
            done,
        }
    }

    /// The attempt finished: its outcome goes to the dispatcher.
    fn finish(mut self, record: Recorded) {
        self.cut = None;
        let _ = self.done.send(record);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // A panicking attempt was not cut off by a stop: its lease brings the delivery back.
        let Some(mut cut) = self.cut.take().filter(|_| !std::thread::panicking()) else {
            return;
        };
        cut.attempt.duration_ms = millis(self.started.elapsed());
        cut.fate = Fate::Retry { at: now_ms() };
        let _ = self.done.send(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::DeliveryId;
    use crate::worker::testing::{claim, done};

    #[tokio::test]
    async fn an_attempt_cut_off_is_sent_as_unknown_and_due_again() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let before = now_ms();
        let task = tokio::spawn({
            let in_flight = InFlight::new(&claim(1, 2), tx.clone());
            async move {
                std::future::pending::<()>().await;
                in_flight.finish(done(1, 2, true));
            }
        });
        task.abort();
        let _ = task.await;
        let cut = rx.recv().await.expect("the cut attempt");
        assert_eq!(cut.attempt.delivery_id, DeliveryId(1));
        assert_eq!(cut.webhook_id, WebhookId(2));
        assert_eq!(cut.lease, 7, "recorded under the claim's lease");
        assert_eq!(cut.attempt.result, AttemptResult::Unknown);
        assert_eq!(cut.attempt.message.as_deref(), Some(CUT_OFF));
        assert!(cut.attempt.at >= before);
        assert!(matches!(cut.fate, Fate::Retry { at } if at >= before && at <= now_ms()));

        // An attempt that finishes sends its outcome, and nothing else.
        InFlight::new(&claim(3, 2), tx).finish(done(3, 2, true));
        let finished = rx.recv().await.expect("the outcome");
        assert_eq!(finished.fate, Fate::Succeeded);
        assert!(rx.recv().await.is_none(), "nothing more");
    }
}
