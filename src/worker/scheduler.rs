//! The dispatcher's bookkeeping: which attempts may start, and how many deliveries to claim.
//!
//! Two bounds hold throughout: attempts in flight overall (`max_in_flight`), and per webhook
//! (its share, `per_webhook_max`, or less while its [breaker](super::breaker) is open). Room
//! held for the claims of the round in progress counts as in flight. Deliveries handed over
//! already claimed wait here for room, up to [`WAITING`] times the room in flight.

use super::breaker::Breakers;
use crate::domain::delivery::Fate;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::store::{Claimed, Lease, Quota, Recorded};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// Past this many outcomes waiting to be recorded, the engine starts nothing new: the database
/// is behind, and deliveries wait in it rather than in memory. High enough to ride out a stall
/// of a few seconds without sending every new delivery down the slower claim path.
pub(super) const MAX_UNRECORDED: usize = 65_536;

/// Handed-over deliveries in flight and waiting, overall and per webhook, as a multiple of the
/// room in flight (see [`Scheduler::full`]).
const WAITING: usize = 2;

/// Claims wait until at least this fraction (1/n) of the engine's room is free (see
/// [`Scheduler::claim_quotas`]).
const CLAIM_BATCH: usize = 16;

/// A handed-over delivery going back to the queue unattempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HandBack {
    pub delivery: DeliveryId,
    pub lease: i64,
    pub webhook: WebhookId,
}

impl HandBack {
    fn of(claim: &Claimed) -> Self {
        HandBack {
            delivery: claim.delivery_id,
            lease: claim.lease,
            webhook: claim.webhook_id,
        }
    }

    pub(super) fn as_lease(&self) -> Lease {
        Lease {
            delivery: self.delivery,
            lease: self.lease,
        }
    }
}

/// The quotas of one round.
#[derive(Debug, Default)]
pub(super) struct ClaimQuotas(Vec<Quota>);

impl ClaimQuotas {
    fn push(&mut self, quota: Quota) {
        self.0.push(quota);
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Quota> + '_ {
        self.0.iter().copied()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn as_slice(&self) -> &[Quota] {
        &self.0
    }

    /// The quotas as `(webhook, limit)` pairs, for tests to compare.
    #[cfg(test)]
    pub(super) fn pairs(&self) -> Vec<(i64, i64)> {
        self.0.iter().map(|q| (q.webhook.get(), q.limit)).collect()
    }
}

/// What [`Scheduler::start_waiting`] did with the handed-over deliveries that waited.
pub(super) struct StartedWaiting {
    /// Started: their attempts are to be spawned.
    pub started: Vec<Claimed>,
    /// Going back to the queue: too late to start within their claim, beyond their webhook's
    /// share (in flight and waiting together), or for a webhook its breaker paused.
    pub to_hand_back: Vec<HandBack>,
}

/// A delivery handed over claimed, waiting for room.
struct Waiting {
    claim: Claimed,
    /// When it must have started (ms), or go back to the queue.
    start_by: i64,
}

pub(super) struct Scheduler {
    max_in_flight: usize,
    per_webhook_max: usize,
    /// The lease of each attempt in flight, by delivery id.
    in_flight: HashMap<DeliveryId, i64>,
    in_flight_per_webhook: HashMap<WebhookId, usize>,
    breakers: Breakers,
    /// Per webhook, in the order handed over.
    waiting: HashMap<WebhookId, VecDeque<Waiting>>,
    waiting_count: usize,
    /// Room held for the claims of the round in progress, per webhook.
    reserved: HashMap<WebhookId, usize>,
    reserved_count: usize,
    /// The last webhook claimed for: the next claims start after it.
    last_served: WebhookId,
}

impl Scheduler {
    pub(super) fn new(max_in_flight: usize, per_webhook_max: usize) -> Self {
        Scheduler {
            max_in_flight,
            per_webhook_max,
            in_flight: HashMap::new(),
            in_flight_per_webhook: HashMap::new(),
            breakers: Breakers::default(),
            waiting: HashMap::new(),
            waiting_count: 0,
            reserved: HashMap::new(),
            reserved_count: 0,
            last_served: WebhookId(i64::MIN),
        }
    }

    /// Attempts in flight.
    pub(super) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Holds room for a round's claims until it ends.
    pub(super) fn reserve(&mut self, quotas: &ClaimQuotas) {
        for q in quotas.iter() {
            let n = usize::try_from(q.limit).unwrap_or(0);
            *self.reserved.entry(q.webhook).or_default() += n;
            self.reserved_count += n;
        }
    }

    /// Frees the room [`Scheduler::reserve`] held, when the round has ended.
    pub(super) fn unreserve(&mut self, quotas: &ClaimQuotas) {
        for q in quotas.iter() {
            let n = usize::try_from(q.limit).unwrap_or(0);
            if let Some(r) = self.reserved.get_mut(&q.webhook) {
                *r = r.saturating_sub(n);
                if *r == 0 {
                    self.reserved.remove(&q.webhook);
                }
            }
            self.reserved_count = self.reserved_count.saturating_sub(n);
        }
    }

    /// Attempts in flight overall, with the room held for the round in progress.
    fn occupied(&self) -> usize {
        self.in_flight.len() + self.reserved_count
    }

    /// How many attempts a webhook may have in flight now.
    fn allowed(&self, webhook: WebhookId, now: Instant) -> usize {
        self.breakers.allowed(webhook, self.per_webhook_max, now)
    }

    /// Attempts in flight (or room held for them) and handed-over deliveries waiting, for one
    /// webhook.
    fn load(&self, webhook: WebhookId) -> usize {
        self.running(webhook) + self.waiting_for(webhook)
    }

    fn waiting_for(&self, webhook: WebhookId) -> usize {
        self.waiting.get(&webhook).map_or(0, VecDeque::len)
    }

    /// Attempts in flight for one webhook, with the room held for the round in progress.
    fn running(&self, webhook: WebhookId) -> usize {
        self.in_flight_for(webhook) + self.reserved.get(&webhook).copied().unwrap_or(0)
    }

    fn in_flight_for(&self, webhook: WebhookId) -> usize {
        self.in_flight_per_webhook
            .get(&webhook)
            .copied()
            .unwrap_or(0)
    }

    /// Takes a handed-over delivery, to start as soon as there is room (by `start_by`, ms).
    pub(super) fn add_waiting(&mut self, claim: Claimed, start_by: i64) {
        self.waiting_count += 1;
        self.waiting
            .entry(claim.webhook_id)
            .or_default()
            .push_back(Waiting { claim, start_by });
    }

    /// Starts the handed-over deliveries there is room for, and sends back those that cannot
    /// wait (see [`StartedWaiting`]).
    pub(super) fn start_waiting(&mut self, now: Instant, now_ms: i64) -> StartedWaiting {
        let mut out = StartedWaiting {
            started: Vec::new(),
            to_hand_back: Vec::new(),
        };
        if self.waiting_count == 0 {
            return out;
        }
        let mut webhooks: Vec<WebhookId> = self.waiting.keys().copied().collect();
        webhooks.sort_unstable();
        for w in webhooks {
            let allowed = self.allowed(w, now);
            let Some(mut queue) = self.waiting.remove(&w) else {
                continue;
            };
            self.waiting_count -= queue.len();
            while let Some(next) = queue.pop_front() {
                if next.start_by < now_ms {
                    out.to_hand_back.push(HandBack::of(&next.claim));
                } else if self.running(w) < allowed && self.occupied() < self.max_in_flight {
                    self.start(next.claim.delivery_id, w, next.claim.lease);
                    out.started.push(next.claim);
                } else {
                    queue.push_front(next);
                    break;
                }
            }
            // What waits and what is in flight together stay within WAITING times the webhook's
            // share (`allowed` is never more than the share).
            let keep = (WAITING * allowed).saturating_sub(self.in_flight_for(w));
            while queue.len() > keep {
                if let Some(last) = queue.pop_back() {
                    out.to_hand_back.push(HandBack::of(&last.claim));
                }
            }
            if !queue.is_empty() {
                self.waiting_count += queue.len();
                self.waiting.insert(w, queue);
            }
        }
        out
    }

    /// Whether changes may hand over nothing at all, with `unrecorded` outcomes waiting to be
    /// recorded.
    pub(super) fn refuses_all_hand_offs(&self, unrecorded: usize) -> bool {
        self.full() || unrecorded > MAX_UNRECORDED
    }

    /// Whether the engine has no room for more handed-over deliveries at all: as many waiting
    /// as may be in flight, beyond those in flight.
    ///
    /// They wait in memory rather than go to the queue, where each would cost the database a
    /// claim besides its insert and record. A waiting delivery holds its claim, and goes back to
    /// the queue if it cannot start while the claim still covers an attempt.
    fn full(&self) -> bool {
        self.occupied() + self.waiting_count >= WAITING * self.max_in_flight
    }

    /// Webhooks with no room for more handed-over deliveries: a share in flight (or room held
    /// for a round's claims) and a share waiting, or failing. Room held for a round counts: a
    /// handed-over delivery could not start before the round ends, and those piling up behind
    /// it would go back to the queue, one more write each.
    pub(super) fn busy_webhooks(&self) -> HashSet<WebhookId> {
        let mut busy: HashSet<WebhookId> = self.breakers.failing().collect();
        busy.extend(
            self.in_flight_per_webhook
                .keys()
                .chain(self.waiting.keys())
                .chain(self.reserved.keys())
                .copied()
                .filter(|w| self.load(*w) >= WAITING * self.per_webhook_max),
        );
        busy
    }

    /// How many more attempts each candidate webhook may start now.
    ///
    /// Claims come in batches, because a claim costs a query per webhook whatever its size: a
    /// webhook is claimed for only once it has room for a quarter of its share, and nothing is
    /// claimed while less than [`CLAIM_BATCH`]th of the engine is free. The webhooks take
    /// turns, starting after the last one served, so under overload the engine's room goes
    /// round them all rather than to the lowest ids.
    pub(super) fn claim_quotas(
        &mut self,
        candidates: &HashSet<WebhookId>,
        now: Instant,
    ) -> ClaimQuotas {
        let mut budget = self
            .max_in_flight
            .saturating_sub(self.occupied() + self.waiting_count);
        if budget < (self.max_in_flight / CLAIM_BATCH).max(1) {
            return ClaimQuotas::default();
        }
        let mut ordered: Vec<WebhookId> = candidates.iter().copied().collect();
        ordered.sort_unstable();
        let first = ordered.partition_point(|w| *w <= self.last_served);
        ordered.rotate_left(first);
        let mut quotas = ClaimQuotas::default();
        for webhook in ordered {
            if budget == 0 {
                break;
            }
            let allowed = self.allowed(webhook, now);
            let n = allowed.saturating_sub(self.load(webhook)).min(budget);
            if n > 0 && n >= (allowed / 4).max(1) {
                quotas.push(Quota {
                    webhook,
                    limit: i64::try_from(n).unwrap_or(i64::MAX),
                });
                budget -= n;
                self.last_served = webhook;
            }
        }
        quotas
    }

    pub(super) fn start(&mut self, delivery: DeliveryId, webhook: WebhookId, lease: i64) {
        self.in_flight.insert(delivery, lease);
        *self.in_flight_per_webhook.entry(webhook).or_default() += 1;
    }

    /// The breakers, to read.
    pub(super) fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// Closes a webhook's breaker: a success elsewhere, or a new URL.
    pub(super) fn close_breaker(&mut self, webhook: WebhookId) {
        self.breakers.close(webhook);
    }

    /// Frees the attempt's room, and tells its webhook's breaker how it went.
    pub(super) fn finish(&mut self, done: &Recorded, now: Instant) {
        self.in_flight.remove(&done.attempt.delivery_id);
        if let Some(n) = self.in_flight_per_webhook.get_mut(&done.webhook_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight_per_webhook.remove(&done.webhook_id);
            }
        }
        self.breakers
            .record(done.webhook_id, done.fate == Fate::Succeeded, now);
    }

    /// Claims in flight or waiting.
    pub(super) fn unfinished(&self) -> impl Iterator<Item = Lease> + '_ {
        let in_flight = self
            .in_flight
            .iter()
            .map(|(&delivery, &lease)| Lease { delivery, lease });
        let waiting = self.waiting.values().flatten().map(|w| w.claim.lease());
        in_flight.chain(waiting)
    }
}

/// Due times of the retries this process scheduled, so each is claimed when it falls due rather
/// than at the next poll. Bounded: past [`RetryTimers::MAX`] entries the poll finds the rest.
#[derive(Default)]
pub(super) struct RetryTimers(BinaryHeap<Reverse<RetryDue>>);

/// Ordered by time first, as the heap needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RetryDue {
    at: i64,
    webhook: WebhookId,
}

impl RetryTimers {
    const MAX: usize = 65_536;

    pub(super) fn schedule(&mut self, at: i64, webhook: WebhookId) {
        if self.0.len() < Self::MAX {
            self.0.push(Reverse(RetryDue { at, webhook }));
        }
    }

    /// The earliest due time, if any.
    pub(super) fn next_due(&self) -> Option<i64> {
        self.0.peek().map(|Reverse(due)| due.at)
    }

    /// Takes the webhooks whose retries are due at `now`.
    pub(super) fn take_due(&mut self, now: i64) -> Vec<WebhookId> {
        let mut out = Vec::new();
        while let Some(Reverse(due)) = self.0.peek().copied() {
            if due.at > now {
                break;
            }
            self.0.pop();
            out.push(due.webhook);
        }
        out
    }
}

#[cfg(test)]
mod tests;
