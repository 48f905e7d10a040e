//! The bounds, the waiting hand-offs and the retry timers, through the scheduler's own calls.

use super::*;
use crate::worker::breaker;
use crate::worker::testing::{claim, done, ids, set};

fn sorted_leases(s: &Scheduler) -> Vec<(i64, i64)> {
    let pair = |l: Lease| (l.delivery.get(), l.lease);
    let mut left: Vec<(i64, i64)> = s.unfinished().map(pair).collect();
    left.sort_unstable();
    left
}

fn back(delivery: i64, webhook: i64) -> HandBack {
    HandBack {
        delivery: DeliveryId(delivery),
        lease: 7,
        webhook: WebhookId(webhook),
    }
}

#[test]
fn handed_over_deliveries_start_within_the_bounds_and_the_rest_wait() {
    let mut s = Scheduler::new(4, 2);
    s.add_waiting(claim(1, 1), 1_000);
    s.add_waiting(claim(2, 1), 1_000);
    s.add_waiting(claim(3, 2), 1_000);
    s.add_waiting(claim(4, 3), 1_000);
    s.add_waiting(claim(5, 3), 1_000);
    let out = s.start_waiting(Instant::now(), 0);
    assert_eq!(
        ids(&out.started),
        vec![1, 2, 3, 4],
        "four in flight at most"
    );
    assert!(out.to_hand_back.is_empty());
    assert!(
        !s.full(),
        "four in flight and one waiting: room for three more to wait"
    );
    s.add_waiting(claim(6, 1), 1_000);
    s.add_waiting(claim(7, 1), 1_000);
    s.add_waiting(claim(8, 3), 1_000);
    assert!(
        s.full(),
        "four in flight and four waiting fill an engine of four"
    );
    assert_eq!(
        s.busy_webhooks(),
        set(&[1]),
        "webhook 1 has a share in flight and a share waiting; webhook 3 room for one more"
    );
    assert!(s.claim_quotas(&set(&[1, 2, 3]), Instant::now()).is_empty());
    s.finish(&done(3, 2, true), Instant::now());
    let out = s.start_waiting(Instant::now(), 0);
    assert_eq!(
        ids(&out.started),
        vec![5],
        "a waiting one starts when there is room"
    );
    s.add_waiting(claim(9, 2), 1_000);
    assert_eq!(
        sorted_leases(&s),
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
    let mut s = Scheduler::new(100, 2);
    for d in 1..=6 {
        s.add_waiting(claim(d, 1), 50);
    }
    s.add_waiting(claim(10, 2), 10);
    let mut out = s.start_waiting(Instant::now(), 20);
    out.to_hand_back.sort_unstable();
    assert_eq!(ids(&out.started), vec![1, 2]);
    assert_eq!(
        out.to_hand_back,
        vec![back(5, 1), back(6, 1), back(10, 2)],
        "webhook 1's share is two in flight and two waiting; 10 is too late"
    );

    let t0 = Instant::now();
    for d in 0..i64::from(breaker::TRIP) {
        s.start(DeliveryId(100 + d), WebhookId(9), 0);
        s.finish(&done(100 + d, 9, false), t0);
    }
    s.add_waiting(claim(6, 9), 1_000);
    let out = s.start_waiting(t0, 0);
    assert!(out.started.is_empty());
    assert_eq!(
        out.to_hand_back,
        vec![back(6, 9)],
        "a paused webhook's deliveries go back to the queue"
    );
    assert!(s.busy_webhooks().contains(&WebhookId(9)));
}

#[test]
fn nothing_is_handed_over_while_outcomes_wait_to_be_recorded() {
    let s = Scheduler::new(10, 4);
    assert!(!s.refuses_all_hand_offs(MAX_UNRECORDED));
    assert!(
        s.refuses_all_hand_offs(MAX_UNRECORDED + 1),
        "the database is behind"
    );
}

#[test]
fn a_round_holds_room_for_its_claims() {
    let mut s = Scheduler::new(10, 4);
    let quotas = s.claim_quotas(&set(&[1]), Instant::now());
    assert_eq!(quotas.pairs(), [(1, 4)]);
    s.reserve(&quotas);
    for d in 1..=4 {
        s.add_waiting(claim(d, 1), 1_000);
    }
    let out = s.start_waiting(Instant::now(), 0);
    assert!(
        out.started.is_empty(),
        "the round may claim webhook 1's whole share"
    );
    assert!(
        out.to_hand_back.is_empty(),
        "the handed-over ones wait for the round"
    );
    assert!(
        s.busy_webhooks().contains(&WebhookId(1)),
        "webhook 1's share is held for the round and a share waits: nothing more is handed over"
    );
    s.unreserve(&quotas);
    assert!(
        !s.busy_webhooks().contains(&WebhookId(1)),
        "the round is over"
    );
    let out = s.start_waiting(Instant::now(), 0);
    assert_eq!(ids(&out.started), vec![1, 2, 3, 4]);
    assert!(
        !s.busy_webhooks().contains(&WebhookId(1)),
        "four in flight, none waiting"
    );
}

#[test]
fn retry_timers_hand_out_webhooks_when_due_in_order() {
    let mut t = RetryTimers::default();
    t.schedule(300, WebhookId(3));
    t.schedule(100, WebhookId(1));
    t.schedule(200, WebhookId(2));
    assert_eq!(t.next_due(), Some(100));
    assert_eq!(t.take_due(99), Vec::<WebhookId>::new());
    assert_eq!(t.take_due(200), vec![WebhookId(1), WebhookId(2)]);
    assert_eq!(t.next_due(), Some(300));
}

#[test]
fn room_is_bounded_overall_and_per_webhook() {
    let mut s = Scheduler::new(5, 3);
    assert_eq!(
        s.claim_quotas(&set(&[1, 2]), Instant::now()).pairs(),
        [(1, 3), (2, 2)]
    );
    s.start(DeliveryId(10), WebhookId(1), 0);
    s.start(DeliveryId(11), WebhookId(1), 0);
    assert_eq!(
        s.claim_quotas(&set(&[1, 2]), Instant::now()).pairs(),
        [(1, 1), (2, 2)]
    );
    s.finish(&done(10, 1, true), Instant::now());
    assert_eq!(sorted_leases(&s), vec![(11, 0)]);
}

#[test]
fn claims_come_in_batches_and_the_webhooks_take_turns() {
    let mut s = Scheduler::new(64, 8);
    for d in 0..7 {
        s.start(DeliveryId(d), WebhookId(1), 0);
    }
    assert_eq!(
        s.claim_quotas(&set(&[1, 2]), Instant::now()).pairs(),
        [(2, 8)],
        "room for one on webhook 1 is less than a quarter of its share: not worth a claim"
    );
    s.start(DeliveryId(7), WebhookId(1), 0);
    for d in 100..154 {
        s.start(DeliveryId(d), WebhookId(50 + d), 0);
    }
    assert_eq!(s.occupied(), 62);
    assert!(
        s.claim_quotas(&set(&[2]), Instant::now()).is_empty(),
        "2 of 64 free is less than a 16th: wait for more room"
    );

    let mut s = Scheduler::new(16, 8);
    assert_eq!(
        s.claim_quotas(&set(&[1, 2, 3]), Instant::now()).pairs(),
        [(1, 8), (2, 8)]
    );
    assert_eq!(
        s.claim_quotas(&set(&[1, 2, 3]), Instant::now()).pairs(),
        [(3, 8), (1, 8)],
        "the next claims start after the last webhook served"
    );
}
