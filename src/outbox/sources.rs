//! Inbound sources: their settings, and every request to an ingest URL. A request is read by
//! [`crate::ingest`]; what it came to (its log line, and the event it became with its
//! deliveries) is written in one transaction, whose deliveries are handed to the engine like a
//! content change's before the provider gets its answer.

use super::{detached, Outbox, Result};
use crate::domain::ids::SourceId;
use crate::domain::source::{
    generate_token, plausible_token, Outcome, Source, SourcePatch, SourceRequest, SourceSettings,
};
use crate::domain::time::now_ms;
use crate::domain::token::hash;
use crate::ingest::{self, Rejection};
use crate::store::{Actor, Received};
use serde_json::{json, Value};

/// A source with the token of its ingest URL, which exists only here: herald keeps its hash.
#[derive(Debug, Clone)]
pub struct WithToken {
    pub source: Source,
    pub token: String,
}

/// What to answer a request to an ingest URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    fn error(status: u16, message: &str) -> Self {
        Answer {
            status,
            body: json!({ "errors": [{ "message": message }] }),
        }
    }
}

/// A request whose body was not read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Larger than [`ingest::MAX_BODY_BYTES`].
    TooLarge,
    /// Cut off or otherwise unreadable.
    Broken,
}

impl Outbox {
    /// Creates a source; returns it with the token of its ingest URL.
    pub async fn create_source(&self, actor: &Actor, new: &SourceSettings) -> Result<WithToken> {
        let token = generate_token();
        let store = &self.0.store;
        let source = store
            .create_source(actor.channel.id, new, &hash(&token))
            .await?;
        Ok(WithToken { source, token })
    }

    pub async fn update_source(
        &self,
        actor: &Actor,
        id: SourceId,
        patch: &SourcePatch,
    ) -> Result<Source> {
        Ok(self
            .0
            .store
            .update_source(actor.channel.id, id, patch)
            .await?)
    }

    /// Gives the source a new ingest URL; the old one is refused from now on.
    pub async fn rotate_source_token(&self, actor: &Actor, id: SourceId) -> Result<WithToken> {
        let token = generate_token();
        let store = &self.0.store;
        let source = store
            .rotate_source_token(actor.channel.id, id, &hash(&token))
            .await?;
        Ok(WithToken { source, token })
    }

    pub async fn delete_source(&self, actor: &Actor, id: SourceId) -> Result<()> {
        Ok(self.0.store.delete_source(actor.channel.id, id).await?)
    }

    /// Takes a request to the ingest URL with `token`: reads it as its source's kind says,
    /// writes what it came to, hands the deliveries of the event it became to the engine, and
    /// says what to answer. A token of no source is answered 403 and nothing is written.
    pub async fn ingest(
        &self,
        token: &str,
        request: std::result::Result<ingest::Request, Unread>,
    ) -> Answer {
        let metrics = &self.0.metrics;
        let unknown = || {
            metrics.ingested(None, Some(Outcome::Rejected));
            Answer::error(403, "No source has this ingest URL (was it rotated?)")
        };
        if !plausible_token(token) {
            return unknown();
        }
        let (source, channel) = match self.0.store.source_by_token(&hash(token)).await {
            Ok(Some(found)) => found,
            Ok(None) => return unknown(),
            Err(e) => {
                tracing::error!(error = %e, "looking up an ingest token failed");
                metrics.ingested(None, None);
                return Answer::error(503, "Internal error; try again");
            }
        };
        let kind = source.settings.kind;
        let source_id = source.id.get();
        let at = now_ms();
        let mut handshake = None;
        let received = match request {
            _ if !source.settings.enabled => rejected(403, "the source is disabled"),
            Err(Unread::TooLarge) => rejected(
                413,
                &format!("the body is larger than {} bytes", ingest::MAX_BODY_BYTES),
            ),
            Err(Unread::Broken) => rejected(400, "the body could not be read"),
            Ok(req) => match ingest::read(&source.settings, &req).await {
                Ok(ingest::Outcome::Relay(relayed)) => Received::Relay(relayed),
                Ok(ingest::Outcome::Filtered { message }) => Received::Logged {
                    outcome: Outcome::Filtered,
                    status: 200,
                    message,
                },
                Ok(ingest::Outcome::Handshake { challenge }) => {
                    handshake = Some(challenge);
                    Received::Logged {
                        outcome: Outcome::Accepted,
                        status: 200,
                        message: "answered Strava's subscription handshake".into(),
                    }
                }
                Err(Rejection { status, message }) => rejected(status, &message),
            },
        };
        let parts = self.0.clone();
        let written = detached(async move {
            let terms = parts.engine.hand_off_terms();
            let store = &parts.store;
            let changed = store
                .record_source_request(&terms, &source, &channel, at, &received)
                .await?;
            parts
                .engine
                .hand_over(changed.claimed, changed.claimed_until);
            parts.engine.wake(&changed.enqueued);
            Ok(changed.value)
        })
        .await;
        match written {
            Ok(line) => {
                metrics.ingested(Some(kind), Some(line.outcome));
                answer(&line, handshake)
            }
            Err(super::Error::NotFound) => unknown(),
            Err(e) => {
                tracing::error!(error = %e, source.id = source_id, "recording an ingest request failed");
                metrics.ingested(Some(kind), None);
                Answer::error(503, "Internal error; try again")
            }
        }
    }
}

fn rejected(status: u16, message: &str) -> Received {
    Received::Logged {
        outcome: Outcome::Rejected,
        status,
        message: message.to_owned(),
    }
}

/// What to answer for a request written as `line`.
fn answer(line: &SourceRequest, handshake: Option<String>) -> Answer {
    let status = u16::try_from(line.status).unwrap_or(500);
    if let Some(challenge) = handshake {
        return Answer {
            status,
            body: json!({ "hub.challenge": challenge }),
        };
    }
    if line.outcome == Outcome::Rejected {
        return Answer::error(status, &line.message);
    }
    Answer {
        status,
        body: json!({
            "outcome": line.outcome.as_str(),
            "event": line.event,
            "message": line.message,
        }),
    }
}
