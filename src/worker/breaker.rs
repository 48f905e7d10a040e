//! The circuit breaker. A webhook that just failed gets one attempt in flight at a time; after
//! [`TRIP`] failures in a row it gets none for a pause, then one probe, so a dead receiver with
//! a large backlog costs almost nothing while its deliveries wait. A success closes it, from
//! any path (a ping or a redelivery too), and so does a new URL.

use crate::domain::ids::WebhookId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Consecutive failures after which a webhook is paused.
pub(super) const TRIP: u32 = 10;
/// The first pause; each further trip doubles it, up to [`MAX_PAUSE`].
pub(super) const PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// A webhook whose latest attempts failed.
struct Failing {
    consecutive: u32,
    paused_until: Option<Instant>,
}

/// The breakers of the webhooks that are failing; the others have none.
#[derive(Default)]
pub(super) struct Breakers {
    failing: HashMap<WebhookId, Failing>,
    /// Grows whenever a pause begins or a breaker closes, so the pauses are published only
    /// when they changed.
    version: u64,
}

impl Breakers {
    /// How many attempts `webhook` may have in flight at `now`, `share` being what a healthy
    /// webhook gets: none while its breaker pauses it, one while it is failing.
    pub(super) fn allowed(&self, webhook: WebhookId, share: usize, now: Instant) -> usize {
        match self.failing.get(&webhook) {
            None => share,
            Some(Failing {
                paused_until: Some(until),
                ..
            }) if *until > now => 0,
            Some(_) => 1,
        }
    }

    /// Counts the outcome of an attempt to `webhook` that finished at `now`.
    pub(super) fn record(&mut self, webhook: WebhookId, succeeded: bool, now: Instant) {
        if succeeded {
            self.close(webhook);
            return;
        }
        let failing = self.failing.entry(webhook).or_insert(Failing {
            consecutive: 0,
            paused_until: None,
        });
        failing.consecutive += 1;
        if failing.consecutive >= TRIP {
            let trips = (failing.consecutive - TRIP).min(16);
            failing.paused_until = Some(now + PAUSE.saturating_mul(1 << trips).min(MAX_PAUSE));
            self.version += 1;
        }
    }

    /// Forgets a webhook's failures: it gets its whole share again.
    pub(super) fn close(&mut self, webhook: WebhookId) {
        if let Some(failing) = self.failing.remove(&webhook) {
            if failing.paused_until.is_some() {
                self.version += 1;
            }
        }
    }

    /// When each paused webhook may be tried again (some of those times may have passed).
    pub(super) fn pauses(&self) -> impl Iterator<Item = (WebhookId, Instant)> + '_ {
        let paused = self.failing.iter();
        paused.filter_map(|(w, f)| f.paused_until.map(|until| (*w, until)))
    }

    pub(super) fn version(&self) -> u64 {
        self.version
    }

    /// The webhooks that are failing, paused or not.
    pub(super) fn failing(&self) -> impl Iterator<Item = WebhookId> + '_ {
        self.failing.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::DeliveryId;
    use crate::worker::scheduler::Scheduler;
    use crate::worker::testing::{done, set};

    #[test]
    fn a_failing_webhook_gets_one_slot_then_a_pause_then_a_probe() {
        let mut s = Scheduler::new(100, 10);
        let t0 = Instant::now();
        s.start(DeliveryId(1), WebhookId(7), 0);
        s.finish(&done(1, 7, false), t0);
        assert_eq!(s.claim_quotas(&set(&[7]), t0).pairs(), [(7, 1)]);
        for d in 2..=TRIP as i64 {
            s.start(DeliveryId(d), WebhookId(7), 0);
            s.finish(&done(d, 7, false), t0);
        }
        assert!(s.claim_quotas(&set(&[7]), t0).is_empty(), "paused");
        assert_eq!(
            s.claim_quotas(&set(&[7]), t0 + PAUSE).pairs(),
            [(7, 1)],
            "one probe after the pause"
        );
        s.start(DeliveryId(99), WebhookId(7), 0);
        s.finish(&done(99, 7, false), t0 + PAUSE);
        assert!(
            s.claim_quotas(&set(&[7]), t0 + PAUSE * 2).is_empty(),
            "the pause doubles"
        );
        s.start(DeliveryId(100), WebhookId(7), 0);
        s.finish(&done(100, 7, true), t0);
        assert_eq!(
            s.claim_quotas(&set(&[7]), t0).pairs(),
            [(7, 10)],
            "a success closes the breaker"
        );
    }

    #[test]
    fn the_pause_stops_growing_at_a_minute() {
        let mut b = Breakers::default();
        let t0 = Instant::now();
        let hook = WebhookId(3);
        for _ in 0..TRIP + 20 {
            b.record(hook, false, t0);
        }
        assert_eq!(
            b.allowed(hook, 8, t0 + MAX_PAUSE - PAUSE),
            0,
            "still paused"
        );
        assert_eq!(b.allowed(hook, 8, t0 + MAX_PAUSE), 1, "one probe");
        assert_eq!(b.failing().collect::<Vec<_>>(), [hook]);
    }
}
