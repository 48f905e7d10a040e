//! Webhook mutations (admins only).

use super::deliveries::{DeliveryObject, WebhookObject};
use super::scalars::Url;
use super::{
    actor, input_row, made, outcome, services, viewer, Problems, UserError, ViewerInterface,
    WebhookDeliveryStatus, WebhookEvent, ADMIN_ONLY,
};
use crate::domain::content::Role;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::{check_against, EventPatterns};
use crate::domain::ids::WebhookId;
use crate::domain::net::NetPolicy;
use crate::domain::webhook::{self as rules, NewWebhook, VerifyToken, WebhookPatch, WebhookUrl};
use crate::domain::Invalid;
use crate::store::ReplayFilter;
use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

#[derive(InputObject)]
pub struct CreateWebhookInput {
    pub client_mutation_id: Option<String>,
    /// Absolute `https://` URL (also `http://` in dev mode).
    pub url: Url,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// At least one.
    pub events: Vec<WebhookEvent>,
    /// 1 to 5 secrets, each 40 to 256 characters, no duplicates. Each signs every delivery.
    pub secrets: Vec<String>,
    /// Re-attempts after a failed attempt, 0 to 10; default 3.
    pub retries: Option<i32>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// When given, herald first checks the endpoint (`GET <url>?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
    /// must echo `{"hub.challenge": …}` within 2 s) and saves nothing if it does not.
    pub verify_token: Option<String>,
    /// Narrows `events` to these event names: exact (`video.deleted`) or a prefix ending in `*`
    /// (`plex.*`); 1 to 50, each matching some event of `events`. Absent: every event of
    /// `events`.
    pub event_types: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub client_mutation_id: Option<String>,
    pub webhook_id: ID,
    pub url: Option<Url>,
    /// `null` clears it.
    pub description: MaybeUndefined<String>,
    pub events: Option<Vec<WebhookEvent>>,
    /// Replaces the whole list: rotate with `[new, old]`, later `[new]`.
    pub secrets: Option<Vec<String>>,
    pub retries: Option<i32>,
    /// `false` disables it (`disabledReason: MANUAL`); `true` enables it again.
    pub enabled: Option<bool>,
    /// When given, the (new or current) URL must pass the endpoint handshake first.
    pub verify_token: Option<String>,
    /// Replaces the event-type filter; `null` removes it (every event of `events`).
    pub event_types: MaybeUndefined<Vec<String>>,
}

#[derive(InputObject)]
pub struct TestWebhookInput {
    pub client_mutation_id: Option<String>,
    pub webhook_id: ID,
}

#[derive(InputObject)]
pub struct RedeliverWebhookDeliveryInput {
    pub client_mutation_id: Option<String>,
    pub delivery_id: ID,
}

/// The payload of `testWebhook` and `redeliverWebhookDelivery`.
#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The delivery, with the attempt just made last in its `attempts`.
    pub delivery: Option<DeliveryObject>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RedeliverWebhookDeliveriesInput {
    pub client_mutation_id: Option<String>,
    pub webhook_id: ID,
    /// Which deliveries: `FAILED` (the default) or `SUCCEEDED`.
    pub status: Option<WebhookDeliveryStatus>,
    /// Only deliveries created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only deliveries created before this time.
    pub until: Option<DateTime<Utc>>,
}

/// The payload of `redeliverWebhookDeliveries`.
#[derive(SimpleObject)]
pub struct RedeliverWebhookDeliveriesPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// How many deliveries are being queued again.
    pub count: Option<i64>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct DeleteWebhookInput {
    pub client_mutation_id: Option<String>,
    pub webhook_id: ID,
}

#[derive(SimpleObject)]
pub struct CreateWebhookPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    pub webhook: Option<WebhookObject>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct UpdateWebhookPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    pub webhook: Option<WebhookObject>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The ID of the deleted webhook.
    pub deleted_webhook_id: Option<ID>,
    pub errors: Vec<UserError>,
}

fn retries(raw: Option<i32>) -> Result<Option<i64>, Invalid> {
    raw.map(|r| rules::parse_retries(i64::from(r))).transpose()
}

fn events(raw: &[WebhookEvent]) -> Result<Vec<rules::WebhookEvent>, Invalid> {
    rules::parse_events(&raw.iter().map(|e| (*e).into()).collect::<Vec<_>>())
}

/// The verify token, when one is given.
fn verify_token(raw: Option<&str>) -> Result<Option<VerifyToken>, Invalid> {
    raw.map(VerifyToken::parse).transpose()
}

/// An `eventTypes` list.
fn event_types(raw: &[String]) -> Result<EventPatterns, Invalid> {
    EventPatterns::parse("eventTypes", raw)
}

fn parse_new(
    input: &CreateWebhookInput,
    net: &NetPolicy,
) -> Result<(NewWebhook, Option<VerifyToken>), Vec<UserError>> {
    let mut p = Problems::default();
    let url = p.check(WebhookUrl::parse(&input.url.0, net));
    let description = p.check(rules::parse_description(input.description.as_deref()));
    let events = p.check(events(&input.events));
    let secrets = p.check(rules::parse_secrets(&input.secrets));
    let retries = p.check(retries(input.retries));
    let token = p.check(verify_token(input.verify_token.as_deref()));
    let types = match &input.event_types {
        None => Some(None),
        Some(raw) => p.check(event_types(raw)).map(Some),
    };
    if let (Some(events), Some(Some(types))) = (&events, &types) {
        p.check(check_against(events, types));
    }
    match (url, description, events, secrets, retries, token, types) {
        (
            Some(url),
            Some(description),
            Some(events),
            Some(secrets),
            Some(retries),
            Some(token),
            Some(event_types),
        ) if p.0.is_empty() => {
            let new = NewWebhook {
                url,
                description,
                events,
                secrets,
                retries: retries.unwrap_or(rules::DEFAULT_RETRIES),
                enabled: input.enabled.unwrap_or(true),
                listener: false,
                event_types,
            };
            Ok((new, token))
        }
        _ => Err(p.0),
    }
}

/// A parsed `updateWebhook` input.
struct Update {
    id: WebhookId,
    patch: WebhookPatch,
    token: Option<VerifyToken>,
}

fn parse_patch(input: &UpdateWebhookInput, net: &NetPolicy) -> Result<Update, Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_row(&input.webhook_id, "webhookId"));
    let patch = WebhookPatch {
        url: input
            .url
            .as_ref()
            .and_then(|u| p.check(WebhookUrl::parse(&u.0, net))),
        description: match &input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(d) => p.check(rules::parse_description(Some(d))),
        },
        events: input.events.as_deref().and_then(|e| p.check(events(e))),
        secrets: input
            .secrets
            .as_deref()
            .and_then(|s| p.check(rules::parse_secrets(s))),
        retries: p.check(retries(input.retries)).flatten(),
        enabled: input.enabled,
        event_types: match &input.event_types {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(raw) => p.check(event_types(raw)).map(Some),
        },
    };
    let token = p.check(verify_token(input.verify_token.as_deref()));
    match (id, token) {
        (Some(id), Some(token)) if p.0.is_empty() => Ok(Update { id, patch, token }),
        _ => Err(p.0),
    }
}

/// A parsed `redeliverWebhookDeliveries` input.
fn parse_replay(
    input: &RedeliverWebhookDeliveriesInput,
) -> Result<(WebhookId, ReplayFilter), Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_row(&input.webhook_id, "webhookId"));
    let status: DeliveryStatus = input.status.map_or(DeliveryStatus::Failed, Into::into);
    if !matches!(status, DeliveryStatus::Failed | DeliveryStatus::Succeeded) {
        p.0.push(UserError::invalid(
            "status",
            "Only FAILED or SUCCEEDED deliveries can be redelivered: the others are queued already",
        ));
    }
    let (since, until) = (input.since, input.until);
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            p.0.push(UserError::invalid(
                "until",
                "until must not be before since",
            ));
        }
    }
    let filter = ReplayFilter {
        status,
        since: since.map(|t| t.timestamp_millis()),
        until: until.map(|t| t.timestamp_millis()),
    };
    p.done(id.map(|id| (id, filter)))
}

fn admin_only() -> Vec<UserError> {
    vec![UserError::forbidden(ADMIN_ONLY)]
}

#[derive(Default)]
pub struct WebhookMutations;

#[Object]
impl WebhookMutations {
    /// Creates a webhook. Admins only.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<CreateWebhookPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let parsed = if user.role == Role::Admin {
            parse_new(&input, &svc.net)
        } else {
            Err(admin_only())
        };
        let actor = actor(ctx)?;
        let change = parsed
            .as_ref()
            .map(|(new, token)| svc.outbox.create_webhook(actor, new, token.as_ref()))
            .map_err(Clone::clone);
        let (webhook, errors) = made(change, "url", WebhookObject).await?;
        Ok(CreateWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            webhook,
            errors,
        })
    }

    /// Changes a webhook. Admins only.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookInput,
    ) -> Result<UpdateWebhookPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let parsed = if user.role == Role::Admin {
            parse_patch(&input, &svc.net)
        } else {
            Err(admin_only())
        };
        let actor = actor(ctx)?;
        let change = parsed.map(|Update { id, patch, token }| async move {
            let token = token.as_ref();
            svc.outbox.update_webhook(actor, id, patch, token).await
        });
        let (webhook, errors) = made(change, "webhookId", WebhookObject).await?;
        Ok(UpdateWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            webhook,
            errors,
        })
    }

    /// Sends a `ping` event to the webhook now (enabled or not) and answers with the delivery
    /// and its first attempt's outcome. Pings are not retried. Admins only.
    async fn test_webhook(
        &self,
        ctx: &Context<'_>,
        input: TestWebhookInput,
    ) -> Result<WebhookDeliveryPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let (delivery, errors) = if user.role != Role::Admin {
            (None, admin_only())
        } else {
            match input_row(&input.webhook_id, "webhookId") {
                Err(e) => (None, vec![e.into()]),
                Ok(id) => {
                    let pinged = svc.outbox.ping(actor(ctx)?.clone(), id);
                    made(Ok(pinged), "webhookId", DeliveryObject).await?
                }
            }
        };
        Ok(WebhookDeliveryPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            delivery,
            errors,
        })
    }

    /// Sends a delivery again now, whatever its status: same nonce and body, fresh timestamp
    /// and signatures, the new attempt appended to its log. Admins only.
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookDeliveryInput,
    ) -> Result<WebhookDeliveryPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let (delivery, errors) = if user.role != Role::Admin {
            (None, admin_only())
        } else {
            match input_row(&input.delivery_id, "deliveryId") {
                Err(e) => (None, vec![e.into()]),
                Ok(id) => {
                    let sent = svc.outbox.redeliver(user.channel_id, id);
                    made(Ok(sent), "deliveryId", DeliveryObject).await?
                }
            }
        };
        Ok(WebhookDeliveryPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            delivery,
            errors,
        })
    }

    /// Queues again every delivery of the webhook with this status (`FAILED` by default), created
    /// between `since` and `until`: same nonce and body, a full set of retries. Answers at once
    /// with how many; they are queued in the background, a bounded batch at a time, so other
    /// webhooks keep flowing. Admins only.
    async fn redeliver_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookDeliveriesInput,
    ) -> Result<RedeliverWebhookDeliveriesPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let parsed = if user.role == Role::Admin {
            parse_replay(&input)
        } else {
            Err(admin_only())
        };
        let actor = actor(ctx)?;
        let change =
            parsed.map(|(id, filter)| async move { svc.outbox.replay(actor, id, filter).await });
        let (count, errors) = made(change, "webhookId", |n| n).await?;
        Ok(RedeliverWebhookDeliveriesPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            count,
            errors,
        })
    }

    /// Deletes a webhook with its queued deliveries and its delivery log. Admins only.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookInput,
    ) -> Result<DeleteWebhookPayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let errors = if user.role != Role::Admin {
            admin_only()
        } else {
            match input_row(&input.webhook_id, "webhookId") {
                Err(e) => vec![e.into()],
                Ok(id) => {
                    let deleted = svc.outbox.delete_webhook(actor(ctx)?, id).await;
                    outcome(deleted, "webhookId")?.err().unwrap_or_default()
                }
            }
        };
        Ok(DeleteWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            deleted_webhook_id: errors.is_empty().then(|| input.webhook_id.clone()),
            errors,
        })
    }
}
