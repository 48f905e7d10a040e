//! `herald listen` over GraphQL: the `listen` subscription pushes the deliveries of a
//! temporary listener webhook to the CLI, and `reportListenerAttempt` takes back what the local
//! receiver answered.

use super::{
    actor, input_row, internal, outcome, require_admin, services, viewer, UserError, ViewerObject,
    WebhookEvent,
};
use crate::domain::content::Role;
use crate::domain::delivery::RESPONSE_BODY_CAP;
use crate::domain::ids::{Typed, WebhookId};
use crate::outbox::hub::{Pushed, Report};
use crate::outbox::{self, Listening};
use async_graphql::futures_util::stream::{self, Stream, StreamExt};
use async_graphql::{
    Context, Enum, Error, InputObject, Object, Result, SimpleObject, Subscription, ID,
};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ListenerMessageKind {
    /// The listener is connected; `webhookId` and `secret` are set.
    Ready,
    /// A delivery to forward; `delivery` is set.
    Delivery,
}

#[derive(SimpleObject, Clone)]
pub struct ListenerHeader {
    pub name: String,
    pub value: String,
}

/// A delivery to forward unchanged: these headers and this body.
#[derive(SimpleObject, Clone)]
pub struct ListenerDelivery {
    pub delivery_id: ID,
    pub nonce: String,
    pub event: String,
    pub headers: Vec<ListenerHeader>,
    pub body: String,
}

#[derive(SimpleObject, Clone)]
pub struct ListenerMessage {
    pub kind: ListenerMessageKind,
    /// The listener webhook (pass it as `listenerId` to reconnect without losing deliveries).
    pub webhook_id: ID,
    /// The secret deliveries are signed with (on `READY`).
    pub secret: Option<String>,
    pub delivery: Option<ListenerDelivery>,
}

fn message(webhook_id: &ID, p: Pushed) -> ListenerMessage {
    ListenerMessage {
        kind: ListenerMessageKind::Delivery,
        webhook_id: webhook_id.clone(),
        secret: None,
        delivery: Some(ListenerDelivery {
            delivery_id: ID(p.delivery_id.global()),
            nonce: p.nonce,
            event: p.event,
            headers: p
                .headers
                .into_iter()
                .map(|(name, value)| ListenerHeader { name, value })
                .collect(),
            body: p.body,
        }),
    }
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Registers a temporary listener webhook for `events` (default: all) and streams its
    /// deliveries, for `herald listen`. With `listenerId`, reconnects to an existing listener:
    /// deliveries queued meanwhile follow. Admins only.
    async fn listen(
        &self,
        ctx: &Context<'_>,
        events: Option<Vec<WebhookEvent>>,
        listener_id: Option<ID>,
    ) -> Result<impl Stream<Item = ListenerMessage>> {
        let (svc, actor) = (services(ctx)?, actor(ctx)?);
        require_admin(&actor.user)?;
        let listener = match listener_id {
            Some(id) => Some(WebhookId::decode(&id).ok_or_else(|| Error::new("No object found"))?),
            None => None,
        };
        let events: Vec<_> = events
            .unwrap_or_else(|| {
                vec![
                    WebhookEvent::Video,
                    WebhookEvent::Collection,
                    WebhookEvent::Source,
                ]
            })
            .into_iter()
            .map(Into::into)
            .collect();
        let Listening {
            webhook: hook,
            deliveries: rx,
            attachment,
        } = match svc.outbox.listen(actor, &events, listener).await {
            Ok(listening) => listening,
            Err(outbox::Error::NotFound) => {
                return Err(Error::new("No listener found with that ID"))
            }
            Err(outbox::Error::Invalid(e)) => return Err(Error::new(e.message)),
            Err(e) => return Err(internal(e)),
        };
        let webhook_id = ID(hook.id.global());
        let ready = ListenerMessage {
            kind: ListenerMessageKind::Ready,
            webhook_id: webhook_id.clone(),
            secret: hook.secrets.first().cloned(),
            delivery: None,
        };
        // The attachment lives as long as the stream: when the client goes, it detaches.
        let deliveries = stream::unfold(
            (rx, attachment, webhook_id),
            |(mut rx, attachment, webhook_id)| async move {
                let pushed = rx.recv().await?;
                Some((message(&webhook_id, pushed), (rx, attachment, webhook_id)))
            },
        );
        Ok(stream::once(async move { ready }).chain(deliveries))
    }
}

#[derive(InputObject)]
pub struct ReportListenerAttemptInput {
    pub client_mutation_id: Option<String>,
    pub delivery_id: ID,
    /// The local receiver's HTTP status; absent when it could not be reached.
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// The start of the local answer (cut to 4096 bytes).
    pub response_body: Option<String>,
    /// Why the local receiver could not be reached.
    pub error: Option<String>,
}

#[derive(SimpleObject)]
pub struct ReportListenerAttemptPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerObject,
    /// Whether an attempt was waiting for this report (it becomes the attempt's outcome).
    pub accepted: bool,
    pub errors: Vec<UserError>,
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[derive(Default)]
pub struct ListenMutations;

#[Object]
impl ListenMutations {
    /// What the local receiver answered to a delivery pushed by `listen`. Admins only.
    async fn report_listener_attempt(
        &self,
        ctx: &Context<'_>,
        input: ReportListenerAttemptInput,
    ) -> Result<ReportListenerAttemptPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let mut accepted = false;
        let errors = if user.role != Role::Admin {
            vec![UserError::general(super::ADMIN_ONLY)]
        } else {
            match input_row(&input.delivery_id, "deliveryId") {
                Err(e) => vec![e.into()],
                Ok(id) => {
                    let report = Report {
                        code: input.status_code.and_then(|c| u16::try_from(c).ok()),
                        duration_ms: i64::from(input.duration_ms.max(0)),
                        response_body: input.response_body.map(|b| cut(b, RESPONSE_BODY_CAP)),
                        error: input.error.map(|e| cut(e, 1000)),
                    };
                    let taken = svc.outbox.report(actor(ctx)?, id, report).await;
                    match outcome(taken, "deliveryId")? {
                        Ok(taken) => {
                            accepted = taken;
                            Vec::new()
                        }
                        Err(errors) => errors,
                    }
                }
            }
        };
        Ok(ReportListenerAttemptPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
            accepted,
            errors,
        })
    }
}
