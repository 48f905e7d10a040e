//! The channel's inbound sources, and each one's request log: what herald did with every
//! request a service sent it.

use super::failure::{Failure, Filters};
use super::paging::Cursor;
use super::session::Signed;
use super::view::{self, Section};
use super::Dashboard;
use crate::domain::ids::{SourceId, Typed};
use crate::domain::source::{Outcome, SourceRequest};
use crate::domain::time::now_ms;
use crate::store::Page;
use axum::extract::{Path, State};
use maud::html;
use serde::Deserialize;

/// The most sources the page lists.
const SHOWN: i64 = 200;

const OUTCOMES: [Outcome; 4] = [
    Outcome::Accepted,
    Outcome::Duplicate,
    Outcome::Filtered,
    Outcome::Rejected,
];

/// `GET /dashboard/sources`.
pub async fn list(State(d): State<Dashboard>, s: Signed) -> Result<view::Rendered, Failure> {
    let sources = d
        .store
        .list_sources(s.actor.channel.id, Page::first(SHOWN + 1))
        .await?;
    let now = now_ms();
    let body = html! {
        div.heading {
            h1 { "Sources" }
            p.muted { "URLs that other services call; herald relays what they send as events." }
        }
        @if sources.is_empty() {
            (view::none_yet("sources", "createSource"))
        } @else {
            div.card.table-wrap {
                table {
                    thead { tr { th { "Source" } th { "Kind" } th { "Status" } th.wide { "Events" } th { "Created" } } }
                    tbody {
                        @for src in sources.iter().take(SHOWN as usize) {
                            tr {
                                td { a href={ "/dashboard/sources/" (src.id.get()) } { (src.settings.name) } }
                                td.mono { (src.settings.kind.as_str()) }
                                td {
                                    @if src.settings.enabled { (view::badge("good", "ENABLED")) }
                                    @else { (view::badge("bad", "DISABLED")) }
                                }
                                td.wide {
                                    @for e in src.settings.events.as_slice() { span.chip { (e) } }
                                }
                                td { (view::when(src.created_at, now)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(&s, Section::Sources, "Sources", body))
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    outcome: String,
    older_than: Option<i64>,
}

/// `GET /dashboard/sources/{id}`: the source's request log, newest first.
pub async fn requests(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    Filters(query): Filters<LogQuery>,
    s: Signed,
) -> Result<view::Rendered, Failure> {
    let outcome = match query.outcome.as_str() {
        "" => None,
        o => Some(Outcome::parse(o).ok_or(Failure::BadRequest(
            "The outcome filter is ACCEPTED, DUPLICATE, FILTERED or REJECTED.",
        ))?),
    };
    let channel = s.actor.channel.id;
    let id = SourceId::new(id.parse().map_err(|_| Failure::NotFound)?);
    let source = d.store.source(channel, id).await?;
    let cursor = Cursor {
        older_than: query.older_than,
        newer_than: None,
    };
    let rows = d
        .store
        .list_source_requests(channel, id, outcome, cursor.page())
        .await?;
    let page = cursor.split(rows, |r: &SourceRequest| r.id.get());
    let here = format!("/dashboard/sources/{}", source.id.get());
    let link = |older: Option<i64>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !query.outcome.is_empty() {
            q.append_pair("outcome", &query.outcome);
        }
        if let Some(id) = older {
            q.append_pair("older_than", &id.to_string());
        }
        format!("{here}?{}", q.finish())
    };
    let now = now_ms();
    let settings = &source.settings;
    let body = html! {
        nav.crumbs { a href="/dashboard/sources" { "Sources" } " / " span { (settings.name) } }
        div.card.hook-head {
            div.grow {
                h1 { (settings.name) " "
                    @if settings.enabled { (view::badge("good", "ENABLED")) } @else { (view::badge("bad", "DISABLED")) }
                }
                dl.facts {
                    dt { "ID" } dd.mono { (source.id.global()) }
                    dt { "Kind" } dd.mono { (settings.kind.as_str()) }
                    dt { "Events" } dd { @for e in settings.events.as_slice() { span.chip { (e) } } }
                    @if !settings.allowed_users.is_empty() {
                        dt { "Users" } dd { @for u in &settings.allowed_users { span.chip { (u) } } }
                    }
                    @if !settings.allowed_servers.is_empty() {
                        dt { "Servers" } dd { @for u in &settings.allowed_servers { span.chip { (u) } } }
                    }
                    dt { "Created" } dd { (view::when(source.created_at, now)) }
                }
                p.muted.small {
                    "herald keeps only a hash of the ingest URL's token, so the URL is not shown; "
                    code { "rotateSourceToken" } " gives a new one."
                }
            }
        }
        form.filters method="get" action=(here) {
            label { "Outcome "
                select name="outcome" {
                    option value="" selected[query.outcome.is_empty()] { "Any" }
                    @for o in OUTCOMES {
                        option value=(o.as_str()) selected[query.outcome == o.as_str()] { (o.as_str()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
            @if outcome.is_some() { a.clear href=(here) { "Clear" } }
        }
        div.card.table-wrap {
            @if page.rows.is_empty() {
                p.empty.muted {
                    @if outcome.is_some() { "No request matches this filter." } @else { "No requests yet." }
                }
            } @else {
                table {
                    thead { tr { th { "Received" } th { "Outcome" } th.num { "Answer" } th { "Event" } th { "Message" } } }
                    tbody {
                        @for r in &page.rows {
                            tr {
                                td { (view::when(r.received_at, now)) }
                                td { (view::outcome(r.outcome)) }
                                td.num.mono { (r.status) }
                                td.mono { @if let Some(e) = &r.event { (e) } @else { span.muted { "—" } } }
                                td.message { (r.message) }
                            }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if query.older_than.is_some() {
                a.button.secondary href=(link(None)) { "← Newest" }
            }
            @if let Some(id) = page.older {
                a.button.secondary href=(link(Some(id))) rel="next" { "Older →" }
            }
        }
    };
    Ok(view::page(&s, Section::Sources, &settings.name, body))
}
