//! The hub of connected `herald listen` sessions. A delivery to a listener webhook is pushed
//! down its session's connection with its headers and body; the CLI forwards it to the local
//! URL and reports the answer, which becomes the attempt's outcome. The GraphQL subscription
//! attaches sessions (through the outbox), the engine pushes deliveries down them.

use crate::domain::delivery::{AttemptOutcome, AttemptResult, Response};
use crate::domain::ids::{DeliveryId, WebhookId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A delivery as pushed to a listener.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub delivery_id: DeliveryId,
    pub nonce: String,
    pub event: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What the local receiver answered, as the CLI reports it.
#[derive(Debug, Clone)]
pub struct Report {
    pub code: Option<u16>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    /// Set when the local receiver could not be reached.
    pub error: Option<String>,
}

/// How many deliveries may wait in one session's queue.
const SESSION_QUEUE: usize = 1024;

#[derive(Default)]
pub struct ListenerHub {
    /// The session of each connected listener webhook.
    sessions: Mutex<HashMap<WebhookId, AttachedSession>>,
    /// Where the report of each pushed delivery goes, by delivery id.
    pending: Mutex<HashMap<DeliveryId, oneshot::Sender<Report>>>,
    next_session: AtomicU64,
}

/// The session attached for a webhook, and the way down to its connection.
struct AttachedSession {
    id: u64,
    tx: mpsc::Sender<Pushed>,
}

/// A connected session; detaches when dropped (the connection closed).
pub struct Session {
    hub: Arc<ListenerHub>,
    webhook_id: WebhookId,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut s) = self.hub.sessions.lock() {
            if s.get(&self.webhook_id)
                .is_some_and(|attached| attached.id == self.id)
            {
                s.remove(&self.webhook_id);
            }
        }
    }
}

impl ListenerHub {
    /// Connects a session for a listener webhook, replacing an earlier one.
    pub fn attach(self: &Arc<Self>, webhook_id: WebhookId) -> (Session, mpsc::Receiver<Pushed>) {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(webhook_id, AttachedSession { id, tx });
        }
        (
            Session {
                hub: self.clone(),
                webhook_id,
                id,
            },
            rx,
        )
    }

    /// Ends every session (their streams finish, so `herald listen` reconnects elsewhere or later).
    pub fn close_all(&self) {
        if let Ok(mut s) = self.sessions.lock() {
            s.clear();
        }
    }

    /// Listener webhooks connected to this process.
    pub fn connected(&self) -> Vec<WebhookId> {
        self.sessions
            .lock()
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Takes a report for a delivery pushed by this process. False when none is awaited.
    pub fn report(&self, delivery_id: DeliveryId, report: Report) -> bool {
        let waiting = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&delivery_id));
        waiting.is_some_and(|tx| tx.send(report).is_ok())
    }

    /// Pushes a delivery to its listener and waits (at most `timeout`) for the report.
    pub async fn deliver(
        &self,
        webhook_id: WebhookId,
        pushed: Pushed,
        timeout: Duration,
    ) -> Response {
        let at = Utc::now();
        let started = Instant::now();
        let fail = |result, message: String| Response {
            outcome: AttemptOutcome {
                result,
                code: None,
                message: Some(message),
                retry_after: None,
            },
            at,
            duration: started.elapsed(),
            response_body: None,
        };
        let session = self
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(&webhook_id).map(|attached| attached.tx.clone()));
        let Some(session) = session else {
            return fail(
                AttemptResult::ConnectionError,
                "herald listen is not connected".into(),
            );
        };
        let delivery_id = pushed.delivery_id;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(delivery_id, tx);
        }
        let answer = async {
            session
                .send(pushed)
                .await
                .map_err(|_| "herald listen disconnected".to_owned())?;
            rx.await
                .map_err(|_| "herald listen disconnected before reporting".to_owned())
        };
        let result = tokio::time::timeout(timeout, answer).await;
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&delivery_id);
        }
        match result {
            Err(_) => fail(
                AttemptResult::RequestTimeout,
                format!(
                    "herald listen reported nothing within {} ms",
                    timeout.as_millis()
                ),
            ),
            Ok(Err(why)) => fail(AttemptResult::ConnectionError, why),
            Ok(Ok(report)) => report.into_response(at),
        }
    }
}

impl Report {
    /// The attempt's outcome: the local receiver's answer stands for the receiver's.
    fn into_response(self, at: DateTime<Utc>) -> Response {
        let outcome = match (self.error, self.code) {
            (Some(e), _) => AttemptOutcome {
                result: AttemptResult::ConnectionError,
                code: None,
                message: Some(format!("local receiver: {e}")),
                retry_after: None,
            },
            (None, Some(code)) if (200..300).contains(&code) => AttemptOutcome {
                result: AttemptResult::Success,
                code: Some(code),
                message: None,
                retry_after: None,
            },
            (None, code) => AttemptOutcome {
                result: AttemptResult::RequestFailure,
                code,
                message: Some(format!(
                    "local receiver answered {}",
                    code.map_or("nothing".into(), |c| c.to_string())
                )),
                retry_after: None,
            },
        };
        Response {
            outcome,
            at,
            duration: Duration::from_millis(u64::try_from(self.duration_ms).unwrap_or(0)),
            response_body: self.response_body,
        }
    }
}
