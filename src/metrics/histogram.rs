//! A Prometheus histogram on atomics, for the delivery path.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A histogram on atomics: `observe` is two relaxed additions and a bucket's, no lock (the
/// crate's own histogram takes a mutex per observation).
#[derive(Debug, Clone)]
pub(super) struct Histogram(Arc<HistogramParts>);

#[derive(Debug)]
pub(super) struct HistogramParts {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(HistogramParts {
            bounds,
            buckets,
            sum_micros: AtomicU64::new(0),
        }))
    }

    pub(super) fn observe(&self, took: Duration) {
        let parts = &self.0;
        let secs = took.as_secs_f64();
        let i = parts.bounds.partition_point(|b| *b < secs);
        if let Some(bucket) = parts.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        parts.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let parts = &self.0;
        let bounds = parts.bounds.iter().copied().chain([f64::INFINITY]);
        // Each bucket's own count: the encoder makes them cumulative.
        let buckets: Vec<(f64, u64)> = bounds
            .zip(parts.buckets.iter())
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = parts.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
