//! `herald listen` sessions: a temporary listener webhook, its session in the hub, and the
//! reports of what the local receiver answered. A listener whose session is gone for longer
//! than the grace period (a CLI killed, or cut off and not back) is ended: disabled, its queued
//! deliveries failed, rather than left pending for a CLI that will not come back.

use super::hub::{Pushed, Report, Session};
use super::{Outbox, Parts, Result};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::time::now_ms;
use crate::domain::webhook::{
    parse_events, parse_secrets, NewWebhook, Webhook, WebhookEvent, WebhookUrl, MAX_RETRIES,
};
use crate::store::Actor;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The message of the attempt that ends each queued delivery of a listener that is gone.
pub const LISTENER_GONE: &str = "the listener disconnected";

/// A connected `herald listen` session: its webhook, and the deliveries pushed to it.
pub struct Listening {
    pub webhook: Webhook,
    pub deliveries: mpsc::Receiver<Pushed>,
    /// Keep it as long as the connection: dropped, it detaches the session.
    pub attachment: Attachment,
}

/// A session attached to a listener webhook. Dropped (the connection closed), it detaches,
/// and the listener is ended after the grace period unless a session attached again meanwhile,
/// to this process or another.
pub struct Attachment {
    _session: Session,
    parts: Arc<Parts>,
    webhook: WebhookId,
    token: String,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (parts, webhook) = (self.parts.clone(), self.webhook);
        let token = std::mem::take(&mut self.token);
        runtime.spawn(async move {
            tokio::time::sleep(parts.listener_grace).await;
            let now = now_ms();
            match parts.store.end_listener(webhook, &token, now, LISTENER_GONE).await {
                Ok(0) => {}
                Ok(ended) => tracing::info!(webhook.id = webhook.get(), ended, "a herald listen listener was ended: its CLI is gone"),
                Err(e) => tracing::warn!(webhook.id = webhook.get(), error = %e, "could not end a herald listen listener whose CLI is gone"),
            }
        });
    }
}

impl Outbox {
    /// Connects a `herald listen` session: to the listener webhook `listener` (deliveries
    /// queued meanwhile follow; an ended listener is enabled again), or to a new one subscribed
    /// to `events`. `NotFound` when `listener` is not a listener webhook of the actor's channel.
    pub async fn listen(
        &self,
        actor: &Actor,
        events: &[WebhookEvent],
        listener: Option<WebhookId>,
    ) -> Result<Listening> {
        let channel = actor.channel.id;
        let id = match listener {
            Some(id) => id,
            None => {
                let secret = format!("whl_{}", hex::encode(rand::random::<[u8; 24]>()));
                let new = NewWebhook {
                    url: WebhookUrl::listener(&hex::encode(rand::random::<[u8; 8]>())),
                    description: Some("herald listen (temporary)".into()),
                    events: parse_events(events)?,
                    secrets: parse_secrets(&[secret])?,
                    retries: MAX_RETRIES,
                    enabled: true,
                    listener: true,
                    event_types: None,
                };
                let store = &self.0.store;
                store.create_webhook(channel, actor.user.id, &new).await?.id
            }
        };
        let token = hex::encode(rand::random::<[u8; 16]>());
        let attached = self.0.store.attach_listener(channel, id, &token, now_ms());
        let webhook = attached.await?;
        let (session, deliveries) = self.0.hub.attach(webhook.id);
        self.0.engine.wake(&[webhook.id]);
        let attachment = Attachment {
            _session: session,
            parts: self.0.clone(),
            webhook: webhook.id,
            token,
        };
        Ok(Listening {
            webhook,
            deliveries,
            attachment,
        })
    }

    /// Takes what the local receiver answered to a delivery of the actor's channel pushed by
    /// this process. `Ok(false)` when no attempt was waiting for it.
    pub async fn report(
        &self,
        actor: &Actor,
        delivery: DeliveryId,
        report: Report,
    ) -> Result<bool> {
        self.0.store.delivery(actor.channel.id, delivery).await?;
        Ok(self.0.hub.report(delivery, report))
    }
}
