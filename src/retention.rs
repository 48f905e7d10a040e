//! Retention: the delivery log is kept for `HERALD_RETENTION_DAYS`. In the background, finished
//! deliveries (`SUCCEEDED`, `FAILED`) last changed before then are deleted with their attempts,
//! then the events no delivery refers to any more, in small batches (one short transaction
//! each, a pause between two): the writer, SQLite's above all, is never held long enough for
//! the API or the engine to notice. Queued deliveries are never deleted, however old.
//!
//! SQLite's file stops growing once retention keeps pace: it runs without `auto_vacuum`, so
//! deleted rows' pages go to the file's freelist and new rows reuse them. The file never
//! shrinks by itself (`VACUUM` does that, offline).

use crate::domain::time::now_ms;
use crate::metrics::Metrics;
use crate::store::{Batch, SharedStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Rows one batch deletes at most: a few milliseconds of the writer.
const BATCH: i64 = 500;
/// The pause between two batches, which lets every other writer in.
const PAUSE: Duration = Duration::from_millis(20);

/// The retention task of one process (several processes on one PostgreSQL database each run
/// one; their batches skip what another deleted).
pub struct Retention {
    store: SharedStore,
    metrics: Arc<Metrics>,
    keep: Duration,
    every: Duration,
}

impl Retention {
    /// Keeps finished deliveries for `keep`, looking for what to delete every `every`.
    pub fn new(store: SharedStore, metrics: Arc<Metrics>, keep: Duration, every: Duration) -> Self {
        Retention {
            store,
            metrics,
            keep,
            every,
        }
    }

    /// Runs a pass at start and every `every` until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.pass(&stop).await {
                tracing::warn!(error = %e, "retention could not delete old deliveries; it tries again later");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// One pass over the log: old finished deliveries, then unreferenced old events. Returns
    /// how many of each it deleted.
    pub async fn pass(&self, stop: &watch::Receiver<bool>) -> Result<(u64, u64), StoreError> {
        let before =
            now_ms().saturating_sub(i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX));
        let (mut deliveries, mut events) = (0, 0);
        let mut after = Some(0);
        while let Some(from) = after.filter(|_| !*stop.borrow()) {
            let Batch {
                done: deleted,
                next,
            } = self
                .store
                .prune_deliveries(before, now_ms(), from, BATCH)
                .await?;
            self.metrics.pruned(deleted, 0);
            deliveries += deleted;
            after = next;
            tokio::time::sleep(PAUSE).await;
        }
        let mut after = Some(0);
        while let Some(from) = after.filter(|_| !*stop.borrow()) {
            let Batch {
                done: deleted,
                next,
            } = self.store.prune_events(before, from, BATCH).await?;
            self.metrics.pruned(0, deleted);
            events += deleted;
            after = next;
            tokio::time::sleep(PAUSE).await;
        }
        if deliveries + events > 0 {
            tracing::info!(
                deliveries,
                events,
                "retention deleted old deliveries and events"
            );
        }
        Ok((deliveries, events))
    }
}
