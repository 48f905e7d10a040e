//! Webhook changes, and the endpoint handshake that may come before one.

use super::{detached, Error, Outbox, Result};
use crate::domain::ids::WebhookId;
use crate::domain::webhook::{NewWebhook, VerifyToken, Webhook, WebhookPatch};
use crate::domain::Invalid;
use crate::store::{Actor, Batch, ReplayFilter};
use std::time::Duration;

/// Deliveries one round of a replay queues again: one short transaction.
const REPLAY_BATCH: i64 = 500;
/// The pause between two rounds of a replay, which lets the engine and other writers in.
const REPLAY_PAUSE: Duration = Duration::from_millis(20);

impl Outbox {
    /// Creates a webhook; with a verify token, only once its URL passed the handshake.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        new: &NewWebhook,
        verify: Option<&VerifyToken>,
    ) -> Result<Webhook> {
        if let Some(token) = verify {
            self.handshake(new.url.as_str(), token).await?;
        }
        let (channel, user) = (actor.channel.id, actor.user.id);
        Ok(self.0.store.create_webhook(channel, user, new).await?)
    }

    /// Changes a webhook; with a verify token, only once its (new or current) URL passed the
    /// handshake. A webhook enabled again is woken: its queued deliveries resume; one given a
    /// URL starts afresh, its circuit breaker closed.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: WebhookId,
        patch: WebhookPatch,
        verify: Option<&VerifyToken>,
    ) -> Result<Webhook> {
        let channel = actor.channel.id;
        if let Some(token) = verify {
            let url = match &patch.url {
                Some(url) => url.as_str().to_owned(),
                None => self.0.store.webhook(channel, id).await?.url,
            };
            self.handshake(&url, token).await?;
        }
        let parts = self.0.clone();
        detached(async move {
            let hook = parts.store.update_webhook(channel, id, &patch).await?;
            if patch.url.is_some() {
                parts.engine.reset(hook.id);
            } else if hook.enabled && patch.enabled == Some(true) {
                parts.engine.wake(&[hook.id]);
            }
            Ok(hook)
        })
        .await
    }

    /// Queues again every delivery of the webhook that `filter` matches (same nonce and body, a
    /// full set of retries), in the background, a bounded batch at a time, and returns at once
    /// how many there are. Deliveries written after the call are left out. A replay cut off by
    /// a restart has queued part of them; asking again queues the rest.
    pub async fn replay(&self, actor: &Actor, id: WebhookId, filter: ReplayFilter) -> Result<i64> {
        let (count, up_to) = self
            .0
            .store
            .replay_count(actor.channel.id, id, &filter)
            .await?;
        if count == 0 {
            return Ok(0);
        }
        let parts = self.0.clone();
        tokio::spawn(async move {
            let mut after = Some(0);
            while let Some(from) = after {
                let now = crate::domain::time::now_ms();
                let batch = parts
                    .store
                    .replay_batch(id, &filter, from, up_to, now, REPLAY_BATCH)
                    .await;
                match batch {
                    Ok(Batch { done, next }) => {
                        parts.metrics.replayed(done);
                        parts.engine.wake(&[id]);
                        after = next;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, webhook.id = id.get(), "a replay stopped; ask for it again to queue the rest");
                        return;
                    }
                }
                tokio::time::sleep(REPLAY_PAUSE).await;
            }
        });
        Ok(count)
    }

    /// Deletes a webhook with its queued deliveries and its delivery log.
    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        Ok(self.0.store.delete_webhook(actor.channel.id, id).await?)
    }

    /// The endpoint handshake; a failure is the verify token's problem, said in a sentence.
    async fn handshake(&self, url: &str, token: &VerifyToken) -> Result<()> {
        self.0
            .engine
            .handshake(url, token.as_str())
            .await
            .map_err(|why| {
                Error::Invalid(Invalid::new(
                    "verifyToken",
                    format!("The endpoint failed verification: {why}"),
                ))
            })
    }
}
