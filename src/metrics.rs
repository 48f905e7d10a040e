//! herald's metrics, in Prometheus' text format at `GET /metrics` (encoded by the
//! `prometheus-client` crate).
//!
//! What the delivery path counts is counted on atomics that were created, with their labels,
//! when the [`Metrics`] were: an attempt costs a few relaxed atomic additions, never a lock, a
//! map lookup or an allocation. Every label takes its values from a closed set (results, status
//! classes, event names, reasons): no URL, ID or other unbounded value is ever a label. What
//! only the database knows (the queue's depth, the disabled webhooks) is read when Prometheus
//! scrapes, in one query, and so are the process's own figures.
//!
//! Each [`App`](crate::app::App) has its own [`Metrics`] (nothing is global), so several herald
//! instances in one process (the tests) count apart.

mod histogram;
mod process;

use histogram::Histogram;
use process::Process;

use crate::domain::delivery::{AttemptResult, Fate};
use crate::domain::event::EventName;
use crate::domain::source::{Outcome, SourceKind};
use crate::store::{QueueStats, SharedStore};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::{Metric, Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

type Labels = Vec<(&'static str, &'static str)>;

/// The attempt results, in the order of [`Metrics::attempts`]' rows.
const RESULTS: [AttemptResult; 5] = [
    AttemptResult::Success,
    AttemptResult::RequestFailure,
    AttemptResult::RequestTimeout,
    AttemptResult::ConnectionError,
    AttemptResult::Unknown,
];

/// The classes of a receiver's HTTP status, `none` when it gave none (a timeout, a refused
/// connection).
const STATUS_CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `kind` label of an ingest request: its source's kind, or `unknown` for a token of no
/// source (the last row of [`Metrics::ingested`]).
const INGEST_KINDS: [&str; 7] = [
    "strava",
    "plex",
    "jellyfin",
    "emby",
    "standard_webhooks",
    "github",
    "unknown",
];

/// The `outcome` label of an ingest request: what its log line says, or `error` when herald
/// could not record it (answered 503).
const INGEST_OUTCOMES: [&str; 5] = ["accepted", "duplicate", "filtered", "rejected", "error"];

/// Why herald disabled a webhook, as the `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledBy {
    /// Its deliveries all failed for `HERALD_DISABLE_AFTER_SECS`.
    Failing,
    /// Its receiver answered `410 Gone`.
    Gone,
}

impl DisabledBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledBy::Failing => "failing",
            DisabledBy::Gone => "gone",
        }
    }
}

/// The metrics of one herald instance. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    /// By [`RESULTS`] then [`STATUS_CLASSES`].
    attempts: Vec<[Counter; 6]>,
    attempt_seconds: Histogram,
    /// Succeeded, failed.
    finished: [Counter; 2],
    /// By [`EventName::ALL`].
    events: Vec<Counter>,
    /// By [`DisabledBy`]: failing, gone.
    disabled_by_herald: [Counter; 2],
    replayed: Counter,
    /// By [`INGEST_KINDS`] then [`INGEST_OUTCOMES`].
    ingested: Vec<[Counter; 5]>,
    /// Deliveries (with their attempts), events.
    pruned: [Counter; 2],
    rounds: Counter,
    slow_rounds: Counter,
    round_seconds: Histogram,
    in_flight: Gauge,
    unrecorded: Gauge,
    refusing_hand_offs: Gauge,
    // Read at scrape time.
    queued: Gauge,
    oldest_due_seconds: Gauge<f64, AtomicU64>,
    paused: Gauge,
    /// Failing, manual.
    disabled: [Gauge; 2],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A counter of `family` with these labels, created now so that counting never looks it up.
fn counter(family: &Family<Labels, Counter>, labels: Labels) -> Counter {
    family.get_or_create_owned(&labels)
}

/// A metric without labels, registered as `name`.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// A metric with one label, registered as `name`, one series per value, each created now.
fn labelled<M: Metric + Clone + Default + TypedMetric, const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [M; N] {
    let family = Family::<Labels, M>::default();
    let series = values.map(|v| family.get_or_create_owned(&vec![(label, v)]));
    registry.register(name, help, family);
    series
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        // Process metrics keep their usual names; herald's own are `herald_…`.
        root.register_collector(Box::new(Process::new()));
        let registry = root.sub_registry_with_prefix("herald");

        let family = Family::<Labels, Counter>::default();
        let attempts = RESULTS
            .iter()
            .map(|r| {
                STATUS_CLASSES.map(|class| {
                    counter(
                        &family,
                        vec![("result", r.as_str()), ("status_class", class)],
                    )
                })
            })
            .collect();
        registry.register(
            "attempts",
            "Attempts made, by result and by the class of the receiver's HTTP status",
            family,
        );
        let attempt_seconds = Histogram::new(&ATTEMPT_BUCKETS);
        registry.register_with_unit(
            "attempt_duration",
            "How long attempts took, from the request's start to the answer's end",
            Unit::Seconds,
            attempt_seconds.clone(),
        );

        let finished = labelled(
            registry,
            "deliveries_finished",
            "Deliveries that reached a final status (a redelivery that ends again counts again)",
            "status",
            ["succeeded", "failed"],
        );
        let events = labelled(
            registry,
            "events",
            "Events emitted, by name (each is delivered to every subscribed webhook)",
            "event",
            EventName::ALL.map(|e| e.fixed_name().unwrap_or_default()),
        )
        .to_vec();
        let disabled_by_herald = labelled(
            registry,
            "webhooks_disabled_by_herald",
            "Webhooks herald disabled: failing for HERALD_DISABLE_AFTER_SECS, or gone (410)",
            "reason",
            [DisabledBy::Failing.as_str(), DisabledBy::Gone.as_str()],
        );
        let replayed = registered(
            registry,
            "deliveries_replayed",
            "Deliveries queued again by redeliverWebhookDeliveries",
        );
        let family = Family::<Labels, Counter>::default();
        let ingested = INGEST_KINDS
            .iter()
            .map(|kind| {
                INGEST_OUTCOMES
                    .map(|outcome| counter(&family, vec![("kind", kind), ("outcome", outcome)]))
            })
            .collect();
        registry.register(
            "ingest_requests",
            "Requests to sources' ingest URLs, by source kind (unknown: a token of no source) and outcome",
            family,
        );
        let pruned = labelled(
            registry,
            "retention_deleted",
            "Rows deleted by retention (HERALD_RETENTION_DAYS): deliveries (each with its attempts) and events",
            "kind",
            ["deliveries", "events"],
        );
        let rounds = registered(
            registry,
            "engine_rounds",
            "Database rounds of the delivery engine (record outcomes, claim due deliveries)",
        );
        let slow_rounds = registered(
            registry,
            "engine_slow_rounds",
            "Engine rounds slower than 500 ms (each is also logged)",
        );
        let round_seconds = Histogram::new(&ROUND_BUCKETS);
        registry.register_with_unit(
            "engine_round_duration",
            "How long the engine's database rounds took",
            Unit::Seconds,
            round_seconds.clone(),
        );
        let in_flight = registered(
            registry,
            "engine_in_flight",
            "Attempts in flight in this process",
        );
        let unrecorded = registered(
            registry,
            "engine_unrecorded_outcomes",
            "Attempt outcomes waiting to be recorded: recording back-pressure (past 65536 the engine starts nothing new)",
        );
        let refusing_hand_offs = registered(
            registry,
            "engine_refusing_hand_offs",
            "1 while the engine is too far behind to take deliveries straight from changes (they wait in the queue)",
        );
        let queued = registered(
            registry,
            "queued_deliveries",
            "Deliveries PENDING or RETRYING, due or not, of every webhook",
        );
        let oldest_due_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "oldest_due_delivery_age",
            "How long the oldest delivery that is due (to an enabled webhook) has waited; 0 when none is",
            Unit::Seconds,
            oldest_due_seconds.clone(),
        );
        let paused = registered(
            registry,
            "webhooks_paused",
            "Webhooks this process's circuit breaker holds back for now",
        );
        let disabled = labelled(
            registry,
            "webhooks_disabled",
            "Webhooks disabled now, by reason (FAILING: by herald; MANUAL: by an admin)",
            "reason",
            ["failing", "manual"],
        );

        Metrics {
            registry: root,
            attempts,
            attempt_seconds,
            finished,
            events,
            disabled_by_herald,
            replayed,
            ingested,
            pruned,
            rounds,
            slow_rounds,
            round_seconds,
            in_flight,
            unrecorded,
            refusing_hand_offs,
            queued,
            oldest_due_seconds,
            paused,
            disabled,
        }
    }

    /// Counts an attempt: its result, the class of the status the receiver answered, how long
    /// it took, and the delivery's fate when final.
    pub fn attempt(&self, result: AttemptResult, code: Option<u16>, took: Duration, fate: Fate) {
        let row = RESULTS.iter().position(|r| *r == result).unwrap_or(4);
        let class = match code {
            Some(c @ 100..=599) => usize::from(c / 100),
            _ => 0,
        };
        if let Some(counter) = self.attempts.get(row).and_then(|r| r.get(class)) {
            counter.inc();
        }
        self.attempt_seconds.observe(took);
        let last = match fate {
            Fate::Succeeded => self.finished.first(),
            Fate::Failed { .. } => self.finished.get(1),
            Fate::Retry { .. } => None,
        };
        if let Some(counter) = last {
            counter.inc();
        }
    }

    /// Counts an emitted event.
    pub fn event(&self, name: EventName) {
        if let Some(i) = EventName::ALL.iter().position(|e| *e == name) {
            self.events[i].inc();
        }
    }

    /// Counts a webhook herald disabled.
    pub fn disabled_by_herald(&self, why: DisabledBy) {
        self.disabled_by_herald[usize::from(why == DisabledBy::Gone)].inc();
    }

    /// Counts deliveries queued again by a replay.
    pub fn replayed(&self, n: u64) {
        self.replayed.inc_by(n);
    }

    /// Counts a request to an ingest URL: the kind of its source (`None`: no source has its
    /// token) and its outcome (`None`: it could not be recorded).
    pub fn ingested(&self, kind: Option<SourceKind>, outcome: Option<Outcome>) {
        let row = kind
            .and_then(|k| SourceKind::ALL.iter().position(|x| *x == k))
            .unwrap_or(INGEST_KINDS.len() - 1);
        let column = match outcome {
            Some(Outcome::Accepted) => 0,
            Some(Outcome::Duplicate) => 1,
            Some(Outcome::Filtered) => 2,
            Some(Outcome::Rejected) => 3,
            None => 4,
        };
        if let Some(counter) = self.ingested.get(row).and_then(|r| r.get(column)) {
            counter.inc();
        }
    }

    /// Counts what retention deleted: deliveries (with their attempts) and events.
    pub fn pruned(&self, deliveries: u64, events: u64) {
        self.pruned[0].inc_by(deliveries);
        self.pruned[1].inc_by(events);
    }

    /// Counts one round of the engine, slow or not.
    pub fn round(&self, took: Duration, slow: bool) {
        self.rounds.inc();
        if slow {
            self.slow_rounds.inc();
        }
        self.round_seconds.observe(took);
    }

    /// The engine's state, as it publishes it after each turn.
    pub fn engine(&self, in_flight: usize, unrecorded: usize, refusing_hand_offs: bool) {
        self.in_flight.set(gauge(in_flight));
        self.unrecorded.set(gauge(unrecorded));
        self.refusing_hand_offs.set(i64::from(refusing_hand_offs));
    }

    /// The whole exposition, the database's figures read now (`paused`: webhooks this
    /// process's breaker holds back).
    pub async fn scrape(&self, store: &SharedStore, paused: usize) -> Result<String, ScrapeError> {
        let QueueStats {
            queued,
            oldest_due_ms,
            disabled_failing,
            disabled_manual,
        } = store
            .queue_stats(crate::domain::time::now_ms())
            .await
            .map_err(ScrapeError::Store)?;
        self.queued.set(queued);
        self.oldest_due_seconds
            .set(oldest_due_ms.map_or(0.0, |ms| ms.max(0) as f64 / 1000.0));
        self.paused.set(gauge(paused));
        self.disabled[0].set(disabled_failing);
        self.disabled[1].set(disabled_manual);
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .map_err(|_| ScrapeError::Encode)?;
        Ok(out)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("reading the queue's figures: {0}")]
    Store(crate::store::StoreError),
    #[error("encoding the metrics failed")]
    Encode,
}

/// What `GET /metrics` needs.
#[derive(Clone)]
pub struct MetricsState {
    pub metrics: Arc<Metrics>,
    pub store: SharedStore,
    /// How many webhooks this process's breaker holds back now.
    pub paused: Arc<dyn Fn() -> usize + Send + Sync>,
}

/// `GET /metrics` alone: merged into the main router, or served on `HERALD_METRICS_LISTEN`.
pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<MetricsState>) -> Response {
    match state.metrics.scrape(&state.store, (state.paused)()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "could not answer a metrics scrape");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response()
        }
    }
}

/// Bounds of the attempt-duration buckets, in seconds: from a receiver on the same machine to
/// the longest time limit.
const ATTEMPT_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];
/// Bounds of the round-duration buckets, in seconds.
const ROUND_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 2.5,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_into_cumulative_buckets() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let mut registry = Registry::default();
        registry.register("took_seconds", "test", h);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encodes");
        assert!(out.contains("took_seconds_bucket{le=\"0.01\"} 2"), "{out}");
        assert!(out.contains("took_seconds_bucket{le=\"0.1\"} 3"), "{out}");
        assert!(out.contains("took_seconds_bucket{le=\"+Inf\"} 4"), "{out}");
        assert!(out.contains("took_seconds_count 4"), "{out}");
        assert!(out.contains("took_seconds_sum 3.065"), "{out}");
    }

    #[test]
    fn attempts_are_counted_by_result_and_status_class() {
        let m = Metrics::new();
        let took = Duration::from_millis(3);
        m.attempt(AttemptResult::Success, Some(204), took, Fate::Succeeded);
        m.attempt(
            AttemptResult::RequestFailure,
            Some(503),
            took,
            Fate::Retry { at: 0 },
        );
        m.attempt(
            AttemptResult::ConnectionError,
            None,
            took,
            Fate::Failed { gone: false },
        );
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)
            .expect("encodes");
        for line in [
            "herald_attempts_total{result=\"SUCCESS\",status_class=\"2xx\"} 1",
            "herald_attempts_total{result=\"REQUEST_FAILURE\",status_class=\"5xx\"} 1",
            "herald_attempts_total{result=\"CONNECTION_ERROR\",status_class=\"none\"} 1",
            "herald_deliveries_finished_total{status=\"succeeded\"} 1",
            "herald_deliveries_finished_total{status=\"failed\"} 1",
            "herald_attempt_duration_seconds_count 3",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }

    #[test]
    fn the_ingest_kinds_are_the_source_kinds_in_order_then_unknown() {
        let kinds: Vec<String> = SourceKind::ALL
            .iter()
            .map(|k| k.as_str().to_ascii_lowercase())
            .chain(["unknown".to_owned()])
            .collect();
        assert_eq!(kinds, INGEST_KINDS);
    }
}
