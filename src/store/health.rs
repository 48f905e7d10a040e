//! What the store remembers of its writes: a write refused because the disk is full (or the
//! database locked by another program) is not seen by a readiness check that only reads, so
//! the refusal itself is kept for `/readyz` to tell, until a write succeeds again or a while
//! has passed.

use super::{Result, Unavailable};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused write is told after it happened, when no write has succeeded since: the
/// disk may have been freed while nothing was written (a load balancer sends nothing to a
/// process that says it is not ready), so readiness does not wait for a write to find out.
const REMEMBERED: Duration = Duration::from_secs(60);

/// The last write refused for the database's state, unless a write succeeded after it.
#[derive(Default)]
pub(super) struct Health {
    refused: Mutex<Option<(Unavailable, Instant)>>,
    /// Whether `refused` may hold something: a successful write, the common case, then takes
    /// no lock.
    noted: AtomicBool,
}

impl Health {
    /// Notes how a write went, and hands its result on.
    pub(super) fn written<T>(&self, result: Result<T>) -> Result<T> {
        let refused = match &result {
            Ok(_) if !self.noted.load(Ordering::Relaxed) => return result,
            Ok(_) => None,
            Err(e) => match e.unavailable() {
                Some(cause @ (Unavailable::DiskFull | Unavailable::Locked)) => Some(cause),
                // Another failure says nothing of whether the database can write.
                _ => return result,
            },
        };
        let mut last = self
            .refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *last = refused.map(|cause| (cause, Instant::now()));
        self.noted.store(last.is_some(), Ordering::Relaxed);
        result
    }

    /// Why writes were refused lately, if they were and none has succeeded since.
    pub(super) fn refused(&self) -> Option<Unavailable> {
        let last = self
            .refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last.filter(|(_, at)| at.elapsed() < REMEMBERED)
            .map(|(cause, _)| cause)
    }
}
