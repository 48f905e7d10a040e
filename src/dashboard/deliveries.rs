//! One webhook's delivery log (newest first, filtered by status and event, a page at a time),
//! and one delivery: its body and headers as sent, every attempt, and the redeliver button.

use super::failure::{Failure, Filters};
use super::paging::Cursor;
use super::session::{redirect, Checked, Flash, Signed};
use super::view::{self, Section};
use super::webhooks::{back_to, buttons, global_id, state};
use super::Dashboard;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, USER_AGENT};
use crate::domain::event::{self, EventName};
use crate::domain::ids::{DeliveryId, Typed, WebhookId};
use crate::domain::time::now_ms;
use crate::domain::webhook::Webhook;
use crate::store::DeliveryFilter;
use axum::extract::{Path, State};
use axum::response::Response;
use herald_verify::{format_timestamp, header};
use maud::{html, Markup};
use serde::Deserialize;

/// The longest event name the filter takes.
const EVENT_NAME_CAP: usize = 200;

/// The delivery log's filters and page, from the query string.
#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    event: String,
    older_than: Option<i64>,
    newer_than: Option<i64>,
}

impl LogQuery {
    fn cursor(&self) -> Cursor {
        Cursor {
            older_than: self.older_than,
            newer_than: self.newer_than,
        }
    }

    fn filter(&self) -> Result<DeliveryFilter, Failure> {
        let status = match self.status.as_str() {
            "" => None,
            s => Some(DeliveryStatus::parse(s).ok_or(Failure::BadRequest(
                "The status filter is PENDING, RETRYING, FAILED or SUCCEEDED.",
            ))?),
        };
        let event = self.event.trim();
        if event.len() > EVENT_NAME_CAP {
            return Err(Failure::BadRequest("That event name is too long."));
        }
        Ok(DeliveryFilter {
            status,
            nonces: None,
            event: (!event.is_empty()).then(|| event.to_owned()),
        })
    }

    /// The query string of this filter at another page.
    fn link(&self, cursor: Cursor) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.status.is_empty() {
            q.append_pair("status", &self.status);
        }
        if !self.event.trim().is_empty() {
            q.append_pair("event", self.event.trim());
        }
        if let Some(id) = cursor.older_than {
            q.append_pair("older_than", &id.to_string());
        }
        if let Some(id) = cursor.newer_than {
            q.append_pair("newer_than", &id.to_string());
        }
        format!("?{}", q.finish())
    }
}

fn row_id(raw: &str) -> Result<i64, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /dashboard/webhooks/{id}`: the webhook and its delivery log.
pub async fn list(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    Filters(query): Filters<LogQuery>,
    s: Signed,
) -> Result<view::Rendered, Failure> {
    let channel = s.actor.channel.id;
    let hook = d
        .store
        .webhook(channel, WebhookId::new(row_id(&id)?))
        .await?;
    let filter = query.filter()?;
    let rows = d
        .store
        .list_deliveries(channel, hook.id, &filter, query.cursor().page())
        .await?;
    let page = query.cursor().split(rows, |r: &Delivery| r.id.get());
    let now = now_ms();
    let here = format!("/dashboard/webhooks/{}", hook.id.get());
    let filtered = filter.status.is_some() || filter.event.is_some();
    let body = html! {
        nav.crumbs { a href="/dashboard/webhooks" { "Webhooks" } " / " span.mono { (hook.url) } }
        div.card.hook-head {
            div.grow {
                h1.url.mono { (hook.url) }
                @if let Some(text) = &hook.description { p.desc { (text) } }
                dl.facts {
                    dt { "ID" } dd.mono { (global_id(&hook)) }
                    dt { "Events" } dd { @for e in &hook.events { span.chip { (e.as_str()) } } }
                    dt { "Retries" } dd { (hook.retries) }
                    dt { "Created" } dd { (view::when(hook.created_at, now)) }
                }
            }
            div.side {
                (state(&d, &hook, now))
                (buttons(&s, &hook, &here))
                (view::button(&s, &format!("{here}/redeliver-failed"), "Redeliver all failed", "secondary", &here))
            }
        }
        form.filters method="get" action=(here) {
            label { "Status "
                select name="status" {
                    option value="" selected[query.status.is_empty()] { "Any" }
                    @for st in [DeliveryStatus::Pending, DeliveryStatus::Retrying, DeliveryStatus::Failed, DeliveryStatus::Succeeded] {
                        option value=(st.as_str()) selected[query.status == st.as_str()] { (st.as_str()) }
                    }
                }
            }
            label { "Event "
                input.mono type="text" name="event" value=(query.event.trim()) list="event-names"
                    placeholder="any event" maxlength=(EVENT_NAME_CAP);
            }
            datalist #event-names {
                @for name in event_names(&hook) { option value=(name) {} }
            }
            button.secondary type="submit" { "Filter" }
            @if filtered { a.clear href=(here) { "Clear" } }
        }
        div.card.table-wrap {
            @if page.rows.is_empty() {
                p.empty.muted {
                    @if filtered { "No delivery matches these filters." } @else { "No deliveries yet." }
                }
            } @else {
                table.deliveries {
                    thead { tr {
                        th { "Status" } th { "Event" } th.wide { "Nonce" } th.num { "Attempts" }
                        th { "Created" } th.wide { "Next attempt" }
                    } }
                    tbody {
                        @for x in &page.rows {
                            @let link = format!("/dashboard/deliveries/{}", x.id.get());
                            tr {
                                td { a href=(link) { (view::delivery_status(x.status)) } }
                                td { a.mono href=(link) { (x.event.as_str()) } }
                                td.wide.mono.small { (x.nonce.get(..12).unwrap_or(&x.nonce)) "…" }
                                td.num { (x.attempts) }
                                td { (view::when(x.created_at, now)) }
                                td.wide {
                                    @if matches!(x.status, DeliveryStatus::Pending | DeliveryStatus::Retrying) {
                                        (view::when(x.next_attempt_at, now))
                                    } @else { span.muted { "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if let Some(id) = page.newer {
                a.button.secondary href=(query.link(Cursor { newer_than: Some(id), older_than: None })) rel="prev" { "← Newer" }
            }
            @if let Some(id) = page.older {
                a.button.secondary href=(query.link(Cursor { older_than: Some(id), newer_than: None })) rel="next" { "Older →" }
            }
        }
    };
    Ok(view::page(&s, Section::Webhooks, &hook.url, body))
}

/// The event names the webhook's subscriptions take, for the filter's suggestions.
fn event_names(hook: &Webhook) -> Vec<&'static str> {
    let mut names = vec!["ping"];
    names.extend(
        EventName::ALL
            .iter()
            .filter(|e| e.subscribed_by().is_some_and(|s| hook.events.contains(&s)))
            .filter_map(EventName::fixed_name),
    );
    names
}

/// `GET /dashboard/deliveries/{id}`.
pub async fn one(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    s: Signed,
) -> Result<view::Rendered, Failure> {
    let channel = s.actor.channel.id;
    let delivery = d
        .store
        .delivery(channel, DeliveryId::new(row_id(&id)?))
        .await?;
    let hook = d.store.webhook(channel, delivery.webhook_id).await?;
    let data = d.store.event_data(delivery.event_id).await?;
    // Attempts recorded after the delivery was read are left for the next read (as the API
    // does), so the delivery and its attempts tell one story.
    let known = usize::try_from(delivery.attempts).unwrap_or(0);
    let attempts: Vec<Attempt> = d
        .store
        .attempts(delivery.id)
        .await?
        .into_iter()
        .take(known)
        .collect();
    let hook_id = delivery.webhook_id.global();
    let body = event::body(
        &hook_id,
        &delivery.nonce,
        delivery.event_at,
        delivery.event.as_str(),
        &data,
    );
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    let now = now_ms();
    let here = format!("/dashboard/deliveries/{}", delivery.id.get());
    let webhook_page = format!("/dashboard/webhooks/{}", hook.id.get());
    let queued = matches!(
        delivery.status,
        DeliveryStatus::Pending | DeliveryStatus::Retrying
    );
    let page = html! {
        nav.crumbs {
            a href="/dashboard/webhooks" { "Webhooks" } " / "
            a.mono href=(webhook_page) { (hook.url) } " / "
            span { "Delivery " (delivery.id.get()) }
        }
        div.card.hook-head {
            div.grow {
                h1 { span.mono { (delivery.event.as_str()) } " " (view::delivery_status(delivery.status)) }
                dl.facts {
                    dt { "ID" } dd.mono { (delivery.id.global()) }
                    dt { "Nonce" } dd.mono { (delivery.nonce) }
                    dt { "URL" } dd.mono { (delivery.url) }
                    dt { "Created" } dd { (view::when(delivery.created_at, now)) }
                    @if queued {
                        dt { "Next attempt" } dd { (view::when(delivery.next_attempt_at, now)) }
                    }
                    dt { "Attempts" } dd { (attempts.len()) }
                }
            }
            div.side {
                (view::button(&s, &format!("{here}/redeliver"), "Redeliver now", "primary", &here))
                p.muted.small { "Same nonce and body, a new attempt with a fresh timestamp and signatures." }
            }
        }
        section.card {
            h2 { "Attempts" }
            @if attempts.is_empty() {
                p.muted { "No attempt yet." }
            }
            ol.attempts {
                @for (n, a) in attempts.iter().enumerate() {
                    li.attempt {
                        div.line {
                            span.n { "#" (n + 1) }
                            (view::attempt_result(a.result))
                            @if let Some(code) = a.code { span.code.mono { "HTTP " (code) } }
                            span.muted { (a.duration_ms) " ms" }
                            (view::when(a.at, now))
                        }
                        @if let Some(message) = &a.message { p.message { (message) } }
                        @if a.url != delivery.url { p.small.mono.muted { "to " (a.url) } }
                        @if let Some(answer) = &a.response_body {
                            @if !answer.is_empty() {
                                details open[n + 1 == attempts.len()] {
                                    summary { "Response body" }
                                    pre.body { (answer) }
                                }
                            }
                        }
                        details {
                            summary { "Headers sent" }
                            (headers(&delivery, &hook_id, hook.secrets.len(), a.at))
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Body" }
            pre.body { (pretty) }
        }
    };
    Ok(view::page(&s, Section::Webhooks, "Delivery", page))
}

/// The headers of an attempt made at `at`, as herald sends them. The signatures are not kept
/// (they are made with the webhook's secrets at the time): they are shown as what they are.
fn headers(delivery: &Delivery, hook_id: &str, secrets: usize, at: i64) -> Markup {
    let when = crate::domain::time::from_ms(at);
    let signatures = format!("{secrets} signature(s), one per secret: not kept");
    let json = "application/json; charset=utf-8";
    let rows: [(&str, String); 11] = [
        ("Content-Type", json.to_owned()),
        ("Accept", json.to_owned()),
        ("User-Agent", USER_AGENT.to_owned()),
        (header::HOOK_ID, hook_id.to_owned()),
        (header::EVENT, delivery.event.as_str().to_owned()),
        (header::NONCE, delivery.nonce.clone()),
        (header::TIMESTAMP, format_timestamp(when)),
        (header::SIGNATURES, signatures.clone()),
        (header::WEBHOOK_ID, delivery.nonce.clone()),
        (header::WEBHOOK_TIMESTAMP, when.timestamp().to_string()),
        (header::WEBHOOK_SIGNATURE, signatures),
    ];
    html! {
        table.headers.mono {
            @for (name, value) in &rows { tr { th { (name) } td { (value) } } }
        }
    }
}

/// `POST /dashboard/deliveries/{id}/redeliver`: `redeliverWebhookDelivery`, through the
/// outbox; waits for the attempt, then shows the delivery with it.
pub async fn redeliver(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    change: Checked,
) -> Result<Response, Failure> {
    let id = DeliveryId::new(row_id(&id)?);
    let channel = change.actor.channel.id;
    let delivery = d.outbox.redeliver(channel, id).await?;
    let back = back_to(&change, &format!("/dashboard/deliveries/{}", id.get()));
    let flash = match delivery.status {
        DeliveryStatus::Succeeded => Flash::ok("Redelivered: the receiver accepted it."),
        _ => Flash::problem("Redelivered, and the attempt failed: see the latest attempt."),
    };
    Ok(redirect(&d, &back, flash))
}
