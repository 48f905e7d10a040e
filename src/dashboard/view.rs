//! The pages' frame (header, navigation, messages) and the small pieces every page uses:
//! badges, times, buttons that post a form. Everything is written through maud, which
//! escapes every value.

use super::assets;
use super::session::{Flash, Signed};
use crate::domain::delivery::{AttemptResult, DeliveryStatus};
use crate::domain::source::Outcome;
use crate::domain::time::from_ms;
use crate::store::Tally;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The section of the dashboard a page belongs to, lit in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Webhooks,
    Sources,
}

/// A signed-in page, which drops the message it showed.
pub struct Rendered {
    html: String,
    flash_shown: Option<bool>,
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        let mut response = Html(self.html).into_response();
        if let Some(secure) = self.flash_shown {
            response
                .headers_mut()
                .append(header::SET_COOKIE, Flash::shown(secure));
        }
        response
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · herald" }
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(assets::stylesheet_path());
        }
    }
}

/// A page for a signed-in admin: the header (channel, sections, who, sign-out), the message
/// left by the last change, then `body`.
pub fn page(s: &Signed, section: Section, title: &str, body: Markup) -> Rendered {
    let tab = |this: Section, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(section == this).then_some("page")] { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    div.bar {
                        a.brand href="/dashboard/webhooks" { span.logo { "h" } "herald" }
                        span.channel title=(s.actor.channel.subdomain) { (s.actor.channel.name) }
                        nav {
                            (tab(Section::Webhooks, "/dashboard/webhooks", "Webhooks"))
                            (tab(Section::Sources, "/dashboard/sources", "Sources"))
                        }
                        div.who {
                            span.email { (s.actor.user.email) }
                            form method="post" action="/dashboard/sign-out" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    @if let Some(f) = &s.flash { (flash(f)) }
                    (body)
                }
            }
        }
    };
    Rendered {
        html: markup.into_string(),
        flash_shown: s.flash.as_ref().map(|_| s.secure_cookies),
    }
}

/// A page outside a session: sign-in, and what went wrong.
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body.bare { main { (body) } }
            }
        }
        .into_string(),
    )
}

/// What an empty list says: there are no `things` yet, and the API's `mutation` makes one.
pub fn none_yet(things: &str, mutation: &str) -> Markup {
    html! {
        div.card.empty {
            p { "No " (things) " yet." }
            p.muted {
                "Create one with the API's " code { (mutation) } " mutation, in "
                a href="/api/graphql" { "GraphiQL" } "."
            }
        }
    }
}

/// The message left by the last change.
pub fn flash(f: &Flash) -> Markup {
    let class = if f.ok { "flash ok" } else { "flash problem" };
    html! { p class=(class) role="status" { (f.text) } }
}

/// A button that posts the session's form token to `action`, then comes `back` to a page.
pub fn button(s: &Signed, action: &str, label: &str, class: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="back" value=(back);
            button class=(class) type="submit" { (label) }
        }
    }
}

pub fn delivery_status(status: DeliveryStatus) -> Markup {
    let tone = match status {
        DeliveryStatus::Succeeded => "good",
        DeliveryStatus::Failed => "bad",
        DeliveryStatus::Pending | DeliveryStatus::Retrying => "wait",
    };
    badge(tone, status.as_str())
}

pub fn attempt_result(result: AttemptResult) -> Markup {
    let tone = match result {
        AttemptResult::Success => "good",
        _ => "bad",
    };
    badge(tone, result.as_str())
}

pub fn outcome(outcome: Outcome) -> Markup {
    let tone = match outcome {
        Outcome::Accepted => "good",
        Outcome::Rejected => "bad",
        Outcome::Duplicate | Outcome::Filtered => "quiet",
    };
    badge(tone, outcome.as_str())
}

/// A coloured label: `good` (green), `bad` (red), `wait` (amber), `quiet` (grey).
pub fn badge(tone: &str, text: &str) -> Markup {
    html! { span class={ "badge " (tone) } { (text) } }
}

/// A time as UTC to the second: `2025-06-01 12:03:04 UTC`.
pub fn utc(ms: i64) -> String {
    from_ms(ms).format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long ago (or, for a time to come, how soon) `ms` is from `now`: `3 min ago`,
/// `in 2 h`.
pub fn relative(ms: i64, now: i64) -> String {
    let secs = (now - ms) / 1000;
    let span = secs.abs();
    let amount = if span < 45 {
        return if secs >= 0 { "just now" } else { "in a moment" }.to_owned();
    } else if span < 90 * 60 {
        format!("{} min", (span + 30) / 60)
    } else if span < 36 * 3600 {
        format!("{} h", (span + 1800) / 3600)
    } else {
        format!("{} days", (span + 43_200) / 86_400)
    };
    if secs >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// A time, relative, with its UTC beneath.
pub fn when(ms: i64, now: i64) -> Markup {
    let at = from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    html! {
        time datetime=(at) title=(utc(ms)) {
            span.rel { (relative(ms, now)) }
            span.utc { (utc(ms)) }
        }
    }
}

/// A success rate: `98 %` of `1,204`, or a dash when nothing was attempted.
pub fn rate(t: Tally) -> Markup {
    if t.attempts == 0 {
        return html! { span.muted { "no attempts" } };
    }
    let percent = t.succeeded * 100 / t.attempts;
    let tone = match percent {
        95.. => "good",
        50.. => "wait",
        _ => "bad",
    };
    html! {
        span class={ "rate " (tone) } { (percent) " %" }
        " "
        span.muted.small { "of " (t.attempts) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_750_000_000_000;
        assert_eq!(relative(now - 5_000, now), "just now");
        assert_eq!(relative(now - 180_000, now), "3 min ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(relative(now - 4 * 86_400_000, now), "4 days ago");
        assert_eq!(relative(now + 600_000, now), "in 10 min");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    }
}
