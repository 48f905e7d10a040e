//! Webhook mutations (admins only).

use super::objects::{DeliveryObject, WebhookObject};
use super::Services;
use super::{
    input_id, internal, outcome, services, viewer, Problems, UserError, ViewerObject, WebhookEvent,
    ADMIN_ONLY,
};
use crate::domain::content::Role;
use crate::domain::ids::Kind;
use crate::domain::net::NetPolicy;
use crate::domain::time::now_ms;
use crate::domain::webhook::{self as rules, NewWebhook, WebhookPatch, WebhookUrl};
use crate::domain::Invalid;
use crate::store::StoreError;
use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID};

#[derive(InputObject)]
pub struct CreateWebhookInput {
    pub client_mutation_id: Option<String>,
    /// Absolute `https://` URL (also `http://` in dev mode).
    pub url: String,
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
}

#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub client_mutation_id: Option<String>,
    pub webhook_id: ID,
    pub url: Option<String>,
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
    pub viewer: ViewerObject,
    /// The delivery, with the attempt just made last in its `attempts`.
    pub delivery: Option<DeliveryObject>,
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
    pub viewer: ViewerObject,
    pub webhook: Option<WebhookObject>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct UpdateWebhookPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerObject,
    pub webhook: Option<WebhookObject>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerObject,
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

fn parse_new(input: &CreateWebhookInput, net: &NetPolicy) -> Result<NewWebhook, Vec<UserError>> {
    let mut p = Problems::default();
    let url = p.check(WebhookUrl::parse(&input.url, net));
    let description = p.check(rules::parse_description(input.description.as_deref()));
    let events = p.check(events(&input.events));
    let secrets = p.check(rules::parse_secrets(&input.secrets));
    let retries = p.check(retries(input.retries));
    match (url, description, events, secrets, retries) {
        (Some(url), Some(description), Some(events), Some(secrets), Some(retries))
            if p.0.is_empty() =>
        {
            Ok(NewWebhook {
                url,
                description,
                events,
                secrets,
                retries: retries.unwrap_or(rules::DEFAULT_RETRIES),
                enabled: input.enabled.unwrap_or(true),
                listener: false,
            })
        }
        _ => Err(p.0),
    }
}

fn parse_patch(
    input: &UpdateWebhookInput,
    net: &NetPolicy,
) -> Result<(i64, WebhookPatch), Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_id(Kind::Webhook, &input.webhook_id, "webhookId"));
    let patch = WebhookPatch {
        url: input
            .url
            .as_deref()
            .and_then(|u| p.check(WebhookUrl::parse(u, net))),
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
    };
    match id {
        Some(id) if p.0.is_empty() => Ok((id, patch)),
        _ => Err(p.0),
    }
}

const MAX_VERIFY_TOKEN_LEN: usize = 256;

/// Runs the endpoint handshake when a verify token is given.
async fn handshake(svc: &Services, url: &str, token: Option<&str>) -> Result<(), Vec<UserError>> {
    let Some(token) = token else {
        return Ok(());
    };
    crate::domain::plain_text("verifyToken", "verifyToken", token).map_err(|e| vec![e.into()])?;
    if token.is_empty() || token.chars().count() > MAX_VERIFY_TOKEN_LEN {
        return Err(vec![UserError::at(
            "verifyToken",
            format!("verifyToken must be 1 to {MAX_VERIFY_TOKEN_LEN} characters"),
        )]);
    }
    svc.engine
        .sender()
        .handshake(url, token)
        .await
        .map_err(|why| {
            vec![UserError::at(
                "verifyToken",
                format!("The endpoint failed verification: {why}"),
            )]
        })
}

/// Attempts a claimed delivery now and answers with the delivery as it is afterwards.
async fn attempt_now(
    svc: &Services,
    channel_id: i64,
    claimed: Result<crate::store::Claimed, StoreError>,
    id_field: &str,
) -> Result<(Option<DeliveryObject>, Vec<UserError>)> {
    let claim = match outcome(claimed, id_field)? {
        Ok(c) => c,
        Err(errors) => return Ok((None, errors)),
    };
    let id = claim.delivery_id;
    svc.engine.attempt_now(claim).await.map_err(internal)?;
    let delivery = svc.store.delivery(channel_id, id).await.map_err(internal)?;
    Ok((Some(DeliveryObject(delivery)), Vec::new()))
}

fn admin_only() -> Vec<UserError> {
    vec![UserError::general(ADMIN_ONLY)]
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
        let mut parsed = if user.role == Role::Admin {
            parse_new(&input, &svc.net)
        } else {
            Err(admin_only())
        };
        if let Ok(new) = &parsed {
            if let Err(e) = handshake(svc, new.url.as_str(), input.verify_token.as_deref()).await {
                parsed = Err(e);
            }
        }
        let (webhook, errors) = match parsed {
            Err(errors) => (None, errors),
            Ok(new) => match outcome(
                svc.store
                    .create_webhook(user.channel_id, user.id, &new)
                    .await,
                "url",
            )? {
                Ok(w) => (Some(WebhookObject(w)), Vec::new()),
                Err(errors) => (None, errors),
            },
        };
        Ok(CreateWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
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
        let mut parsed = if user.role == Role::Admin {
            parse_patch(&input, &svc.net)
        } else {
            Err(admin_only())
        };
        if let (Ok((id, patch)), Some(token)) = (&parsed, input.verify_token.as_deref()) {
            let url = match &patch.url {
                Some(u) => Some(u.as_str().to_owned()),
                None => found_url(svc, user.channel_id, *id).await?,
            };
            if let Some(url) = url {
                if let Err(e) = handshake(svc, &url, Some(token)).await {
                    parsed = Err(e);
                }
            }
        }
        let (webhook, errors) = match parsed {
            Err(errors) => (None, errors),
            Ok((id, patch)) => match outcome(
                svc.store.update_webhook(user.channel_id, id, &patch).await,
                "webhookId",
            )? {
                Ok(w) => {
                    if w.enabled && patch.enabled == Some(true) {
                        // Deliveries queued while it was disabled resume now.
                        svc.engine.wake(&[w.id]);
                    }
                    (Some(WebhookObject(w)), Vec::new())
                }
                Err(errors) => (None, errors),
            },
        };
        Ok(UpdateWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
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
            match input_id(Kind::Webhook, &input.webhook_id, "webhookId") {
                Err(e) => (None, vec![e.into()]),
                Ok(id) => {
                    let now = now_ms();
                    let claimed = svc
                        .store
                        .claim_ping(
                            user.channel_id,
                            user.id,
                            id,
                            now,
                            svc.engine.lease_until(now),
                        )
                        .await;
                    attempt_now(svc, user.channel_id, claimed, "webhookId").await?
                }
            }
        };
        Ok(WebhookDeliveryPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
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
            match input_id(Kind::WebhookDelivery, &input.delivery_id, "deliveryId") {
                Err(e) => (None, vec![e.into()]),
                Ok(id) => {
                    let claimed = svc
                        .store
                        .claim_delivery(user.channel_id, id, svc.engine.lease_until(now_ms()))
                        .await;
                    attempt_now(svc, user.channel_id, claimed, "deliveryId").await?
                }
            }
        };
        Ok(WebhookDeliveryPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
            delivery,
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
            match input_id(Kind::Webhook, &input.webhook_id, "webhookId") {
                Err(e) => vec![e.into()],
                Ok(id) => match svc.store.delete_webhook(user.channel_id, id).await {
                    Ok(()) => Vec::new(),
                    Err(StoreError::NotFound) => {
                        vec![UserError::at("webhookId", "No object found")]
                    }
                    Err(e) => return Err(internal(e)),
                },
            }
        };
        Ok(DeleteWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerObject(user.clone()),
            deleted_webhook_id: errors.is_empty().then(|| input.webhook_id.clone()),
            errors,
        })
    }
}

/// The current URL of a webhook, `None` when it does not exist (the update then reports it).
async fn found_url(svc: &Services, channel_id: i64, id: i64) -> Result<Option<String>> {
    Ok(super::found(svc.store.webhook(channel_id, id).await)?.map(|w| w.url))
}
