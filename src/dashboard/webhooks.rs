//! The channel's webhooks: where each one sends, whether it is enabled (and why not), whether
//! herald is holding it back, how its attempts went in the last hour and day; and the buttons
//! to enable, disable and ping it, and to send its failed deliveries again.

use super::failure::Failure;
use super::session::{redirect, Checked, Flash, Signed};
use super::view::{self, Section};
use super::Dashboard;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::ids::{Typed, WebhookId};
use crate::domain::time::now_ms;
use crate::domain::webhook::{DisabledReason, Webhook, WebhookPatch};
use crate::store::{Activity, Page, ReplayFilter, WebhookFilter};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};
use std::collections::HashMap;

/// The most webhooks the page lists.
const SHOWN: i64 = 200;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// `GET /dashboard/webhooks`.
pub async fn list(State(d): State<Dashboard>, s: Signed) -> Result<view::Rendered, Failure> {
    let channel = s.actor.channel.id;
    let hooks = d
        .store
        .list_webhooks(channel, &WebhookFilter::default(), Page::first(SHOWN + 1))
        .await?;
    let now = now_ms();
    let activity: HashMap<WebhookId, Activity> = d
        .store
        .webhook_activity(channel, now - DAY_MS, now - HOUR_MS)
        .await?
        .into_iter()
        .map(|a| (a.webhook, a))
        .collect();
    let back = "/dashboard/webhooks";
    let body = html! {
        div.heading {
            h1 { "Webhooks" }
            p.muted { "Success rates count the attempts of the last hour and of the last 24 hours." }
        }
        @if hooks.is_empty() {
            (view::none_yet("webhooks", "createWebhook"))
        } @else {
            div.card.table-wrap {
                table.webhooks {
                    thead { tr {
                        th { "Webhook" } th { "Status" } th.num.wide { "Last hour" }
                        th.num { "Last day" } th { "Last attempt" } th.actions { span.sr { "Actions" } }
                    } }
                    tbody {
                        @for hook in hooks.iter().take(SHOWN as usize) {
                            @let seen = activity.get(&hook.id);
                            tr {
                                td.hook { (summary(hook)) }
                                td { (state(&d, hook, now)) }
                                td.num.wide { (view::rate(seen.map(|a| a.recent).unwrap_or_default())) }
                                td.num { (view::rate(seen.map(|a| a.window).unwrap_or_default())) }
                                td {
                                    @if let Some(a) = seen {
                                        div.result {
                                            (view::attempt_result(a.last.result))
                                            @if let Some(code) = a.last.code { span.mono { "HTTP " (code) } }
                                        }
                                        (view::when(a.last.at, now))
                                    } @else {
                                        span.muted { "none in 24 h" }
                                    }
                                }
                                td.actions { (buttons(&s, hook, back)) }
                            }
                        }
                    }
                }
            }
            @if hooks.len() > SHOWN as usize {
                p.muted { "The first " (SHOWN) " webhooks are shown; the API lists them all." }
            }
        }
    };
    Ok(view::page(&s, Section::Webhooks, "Webhooks", body))
}

/// The link to a webhook's deliveries, its URL, description and events.
fn summary(hook: &Webhook) -> Markup {
    html! {
        a.url.mono href={ "/dashboard/webhooks/" (hook.id.get()) } title=(hook.url) { (hook.url) }
        @if let Some(text) = &hook.description { div.desc { (text) } }
        div.events {
            @for e in &hook.events { span.chip { (e.as_str()) } }
            @if let Some(types) = &hook.event_types {
                @for t in types.as_slice() { span.chip.narrow title="only these event names" { (t) } }
            }
            @if hook.listener { span.chip.listen { "herald listen" } }
        }
    }
}

/// Enabled or disabled (and why), and until when herald holds its deliveries back.
pub(super) fn state(d: &Dashboard, hook: &Webhook, now: i64) -> Markup {
    let paused = d.outbox.paused_until(hook.id);
    html! {
        @if hook.enabled {
            (view::badge("good", "ENABLED"))
        } @else {
            (view::badge("bad", "DISABLED"))
            div.why.small {
                @match hook.disabled_reason {
                    Some(DisabledReason::Failing) => "herald disabled it: its receiver kept failing, or answered 410 Gone",
                    Some(DisabledReason::Manual) => "an admin disabled it",
                    Some(DisabledReason::AccountStatus) => "its account's status changed",
                    None => "",
                }
            }
        }
        @if let Some(until) = paused {
            div.paused title="herald holds its deliveries back while its receiver keeps failing, then tries one" {
                (view::badge("wait", "PAUSED")) " until " (view::when(until, now))
            }
        }
    }
}

/// Enable or disable, and ping.
pub(super) fn buttons(s: &Signed, hook: &Webhook, back: &str) -> Markup {
    let base = format!("/dashboard/webhooks/{}", hook.id.get());
    html! {
        div.buttons {
            @if hook.enabled {
                (view::button(s, &format!("{base}/disable"), "Disable", "secondary", back))
            } @else {
                (view::button(s, &format!("{base}/enable"), "Enable", "secondary", back))
            }
            (view::button(s, &format!("{base}/ping"), "Test ping", "secondary", back))
        }
    }
}

/// Where a change's `back` field may lead: a dashboard page, nowhere else.
pub(super) fn back_to(change: &Checked, default: &str) -> String {
    change
        .field("back")
        .filter(|b| b.starts_with("/dashboard/") && !b.contains("//") && !b.contains('\\'))
        .unwrap_or(default)
        .to_owned()
}

/// `POST /dashboard/webhooks/{id}/{enable,disable,ping,redeliver-failed}`: the change the
/// GraphQL mutation of the same name makes (`updateWebhook`, `testWebhook`,
/// `redeliverWebhookDeliveries`), through the outbox.
pub async fn act(
    State(d): State<Dashboard>,
    Path((id, action)): Path<(String, String)>,
    change: Checked,
) -> Result<Response, Failure> {
    let id = WebhookId::new(id.parse().map_err(|_| Failure::NotFound)?);
    let own = format!("/dashboard/webhooks/{}", id.get());
    let back = back_to(&change, &own);
    let actor = &change.actor;
    let flash = match action.as_str() {
        "enable" | "disable" => {
            let enabled = action == "enable";
            let patch = WebhookPatch {
                enabled: Some(enabled),
                ..WebhookPatch::default()
            };
            let hook = d.outbox.update_webhook(actor, id, patch, None).await?;
            let done = if enabled { "enabled" } else { "disabled" };
            Flash::ok(format!("{} {done}.", hook.url))
        }
        "ping" => {
            let ping = d.outbox.ping(actor.clone(), id).await?;
            let to = format!("/dashboard/deliveries/{}", ping.id.get());
            let flash = match ping.status {
                DeliveryStatus::Succeeded => Flash::ok("Test ping sent: the receiver accepted it."),
                _ => Flash::problem("Test ping sent, and it failed: its attempt is below."),
            };
            return Ok(redirect(&d, &to, flash));
        }
        "redeliver-failed" => {
            let filter = ReplayFilter {
                status: DeliveryStatus::Failed,
                since: None,
                until: None,
            };
            match d.outbox.replay(actor, id, filter).await? {
                0 => Flash::ok("There are no failed deliveries to send again."),
                1 => Flash::ok("1 failed delivery is queued again."),
                n => Flash::ok(format!("{n} failed deliveries are queued again.")),
            }
        }
        _ => return Err(Failure::NotFound),
    };
    Ok(redirect(&d, &back, flash))
}

/// The webhook's global ID, as the API names it.
pub(super) fn global_id(hook: &Webhook) -> String {
    hook.id.global()
}
