//! Webhook mutations (admins only).

use super::objects::WebhookObject;
use super::{
    input_id, internal, outcome, services, viewer, UserError, ViewerObject, WebhookEvent,
    ADMIN_ONLY,
};
use crate::domain::content::Role;
use crate::domain::ids::Kind;
use crate::domain::net::NetPolicy;
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

/// Collects every rule an input breaks, so one answer lists all there is to fix.
#[derive(Default)]
struct Problems(Vec<UserError>);

impl Problems {
    fn check<T>(&mut self, r: Result<T, Invalid>) -> Option<T> {
        r.map_err(|e| self.0.push(e.into())).ok()
    }
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
        let parsed = if user.role == Role::Admin {
            parse_new(&input, &svc.net)
        } else {
            Err(admin_only())
        };
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
        let parsed = if user.role == Role::Admin {
            parse_patch(&input, &svc.net)
        } else {
            Err(admin_only())
        };
        let (webhook, errors) = match parsed {
            Err(errors) => (None, errors),
            Ok((id, patch)) => match outcome(
                svc.store.update_webhook(user.channel_id, id, &patch).await,
                "webhookId",
            )? {
                Ok(w) => {
                    if w.enabled && patch.enabled == Some(true) {
                        // Deliveries queued while it was disabled resume now.
                        svc.wakeup.wake(&[w.id]);
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
