//! `herald listen` sessions: a temporary listener webhook, its session in the hub, and the
//! reports of what the local receiver answered.

use super::hub::{Pushed, Report, Session};
use super::{Error, Outbox, Result};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::webhook::{
    parse_events, parse_secrets, NewWebhook, Webhook, WebhookEvent, WebhookUrl, MAX_RETRIES,
};
use crate::store::{Actor, StoreError};
use tokio::sync::mpsc;

/// A connected `herald listen` session: its webhook, and the deliveries pushed to it. The
/// session detaches when this is dropped.
pub struct Listening {
    pub webhook: Webhook,
    pub session: Session,
    pub deliveries: mpsc::Receiver<Pushed>,
}

impl Outbox {
    /// Connects a `herald listen` session: to the listener webhook `listener` (deliveries
    /// queued meanwhile follow), or to a new one subscribed to `events`. `NotFound` when
    /// `listener` is not a listener webhook of the actor's channel.
    pub async fn listen(
        &self,
        actor: &Actor,
        events: &[WebhookEvent],
        listener: Option<WebhookId>,
    ) -> Result<Listening> {
        let channel = actor.channel.id;
        let webhook = match listener {
            Some(id) => match self.0.store.webhook(channel, id).await {
                Ok(w) if w.listener => w,
                Ok(_) | Err(StoreError::NotFound) => return Err(Error::NotFound),
                Err(e) => return Err(e.into()),
            },
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
                };
                self.0
                    .store
                    .create_webhook(channel, actor.user.id, &new)
                    .await?
            }
        };
        let (session, deliveries) = self.0.hub.attach(webhook.id);
        self.0.engine.wake(&[webhook.id]);
        Ok(Listening {
            webhook,
            session,
            deliveries,
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
