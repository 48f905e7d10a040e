//! Webhooks: where to send, with which secrets, for which events.

use super::event_types::EventPatterns;
use super::ids::{ChannelId, UserId, WebhookId};
use super::net::NetPolicy;
use super::{plain_text, Invalid};
use std::net::IpAddr;

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 1000;
pub const MIN_SECRET_LEN: usize = 40;
pub const MAX_SECRET_LEN: usize = 256;
pub const MAX_SECRETS: usize = 5;
pub const MAX_RETRIES: i64 = 10;
pub const DEFAULT_RETRIES: i64 = 3;
/// The URL scheme of `herald listen` webhooks.
pub const LISTENER_SCHEME: &str = "herald-listen";

/// What a webhook subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    Video,
    Collection,
    Member,
    Group,
    Comment,
    Highlight,
    /// Every event relayed from the channel's inbound sources.
    Source,
    /// herald's own notices about the channel's webhooks (`webhook.disabled`): opt-in.
    Webhook,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 8] = [
        WebhookEvent::Video,
        WebhookEvent::Collection,
        WebhookEvent::Member,
        WebhookEvent::Group,
        WebhookEvent::Comment,
        WebhookEvent::Highlight,
        WebhookEvent::Source,
        WebhookEvent::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Video => "VIDEO",
            WebhookEvent::Collection => "COLLECTION",
            WebhookEvent::Member => "MEMBER",
            WebhookEvent::Group => "GROUP",
            WebhookEvent::Comment => "COMMENT",
            WebhookEvent::Highlight => "HIGHLIGHT",
            WebhookEvent::Source => "SOURCE",
            WebhookEvent::Webhook => "WEBHOOK",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Why a webhook is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// herald disabled it: its receiver answered 410, or failed for too long.
    Failing,
    /// An admin disabled it.
    Manual,
    /// Rewatch's reason for a webhook disabled when its account's status changed. A herald
    /// channel has no account status, so herald never sets it (and no stored row holds it);
    /// it is here so that clients written against Rewatch's schema can name it.
    AccountStatus,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Failing => "FAILING",
            DisabledReason::Manual => "MANUAL",
            DisabledReason::AccountStatus => "ACCOUNT_STATUS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "FAILING" => Some(DisabledReason::Failing),
            "MANUAL" => Some(DisabledReason::Manual),
            "ACCOUNT_STATUS" => Some(DisabledReason::AccountStatus),
            _ => None,
        }
    }
}

/// An absolute `https://` URL (also `http://` in dev mode), without user-info, at most 2048
/// characters as stored (normalised and percent-encoded), whose host is not a literal
/// non-public address outside the allowed networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str, policy: &NetPolicy) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::new("url", m);
        let raw = plain_text("url", "URL", raw)?.trim();
        let url = url::Url::parse(raw)
            .map_err(|e| bad(format!("URL is not a valid absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.dev => {}
            "http" => {
                return Err(bad(
                    "URL must use https:// (http:// is allowed only in dev mode, HERALD_DEV=true)"
                        .into(),
                ))
            }
            other => return Err(bad(format!("URL must use https://, not {other}://"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("URL must not contain a user name or password".into()));
        }
        let ip: Option<IpAddr> = match url.host() {
            None => return Err(bad("URL must have a host".into())),
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                (d == "localhost" || d.ends_with(".localhost"))
                    .then_some(IpAddr::from([127, 0, 0, 1]))
            }
        };
        if let Some(ip) = ip {
            policy
                .check(ip)
                .map_err(|why| bad(format!("URL host is not allowed: {why}")))?;
        }
        // The limit holds for what is stored and sent: the URL normalised, with non-ASCII
        // characters percent-encoded (an `é` becomes the six characters `%C3%A9`).
        let stored = url.to_string();
        if stored.len() > MAX_URL_LEN {
            return Err(bad(format!(
                "URL must be at most {MAX_URL_LEN} characters once normalised and percent-encoded; this one is {}",
                stored.len()
            )));
        }
        Ok(WebhookUrl(stored))
    }

    /// The URL of a `herald listen` webhook: deliveries go down its connection, not over HTTP.
    pub fn listener(session: &str) -> Self {
        WebhookUrl(format!("{LISTENER_SCHEME}://{session}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A signing secret: 40 to 256 characters. Its UTF-8 bytes are the HMAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a whole secrets list: 1 to 5 secrets, each 40 to 256 characters, no duplicates.
pub fn parse_secrets(raw: &[String]) -> Result<Vec<Secret>, Invalid> {
    let bad = |m: String| Invalid::new("secrets", m);
    if raw.is_empty() || raw.len() > MAX_SECRETS {
        return Err(bad(format!(
            "give 1 to {MAX_SECRETS} secrets, not {}",
            raw.len()
        )));
    }
    let mut out: Vec<Secret> = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        plain_text("secrets", &format!("secret {}", i + 1), s)?;
        let n = s.chars().count();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&n) {
            return Err(bad(format!(
                "secret {} is {n} characters long; each secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters",
                i + 1
            )));
        }
        if out.iter().any(|o| o.0 == *s) {
            return Err(bad(format!(
                "secret {} repeats an earlier one; secrets must be distinct",
                i + 1
            )));
        }
        out.push(Secret(s.clone()));
    }
    Ok(out)
}

/// Parses the subscribed events: at least one; repeats are dropped.
pub fn parse_events(raw: &[WebhookEvent]) -> Result<Vec<WebhookEvent>, Invalid> {
    let mut out = Vec::new();
    for e in raw {
        if !out.contains(e) {
            out.push(*e);
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(
            "events",
            "subscribe to at least one event (VIDEO, COLLECTION, MEMBER, GROUP, COMMENT, HIGHLIGHT, SOURCE)",
        ));
    }
    Ok(out)
}

/// Re-attempts after a failed attempt: 0 to 10.
pub fn parse_retries(raw: i64) -> Result<i64, Invalid> {
    if (0..=MAX_RETRIES).contains(&raw) {
        Ok(raw)
    } else {
        Err(Invalid::new(
            "retries",
            format!("retries must be between 0 and {MAX_RETRIES}, not {raw}"),
        ))
    }
}

/// A description of at most 1000 characters; blank becomes none.
pub fn parse_description(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    let raw = raw
        .map(|d| plain_text("description", "description", d))
        .transpose()?;
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => Err(Invalid::new(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_LEN} characters"),
        )),
        Some(d) => Ok(Some(d.to_owned())),
    }
}

/// The most characters of an endpoint handshake's verify token.
pub const MAX_VERIFY_TOKEN_LEN: usize = 256;

/// The token an endpoint handshake sends (`hub.verify_token`): 1 to 256 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyToken(String);

impl VerifyToken {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = super::plain_text("verifyToken", "verifyToken", raw)?;
        if raw.is_empty() || raw.chars().count() > MAX_VERIFY_TOKEN_LEN {
            return Err(Invalid::new(
                "verifyToken",
                format!("verifyToken must be 1 to {MAX_VERIFY_TOKEN_LEN} characters"),
            ));
        }
        Ok(VerifyToken(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook as a caller gives it, validated.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub description: Option<String>,
    pub events: Vec<WebhookEvent>,
    pub secrets: Vec<Secret>,
    pub retries: i64,
    pub enabled: bool,
    /// A temporary webhook of `herald listen`.
    pub listener: bool,
    /// The event names it takes, among its subscriptions' (`None`: all of them).
    pub event_types: Option<EventPatterns>,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<WebhookUrl>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub events: Option<Vec<WebhookEvent>>,
    pub secrets: Option<Vec<Secret>>,
    pub retries: Option<i64>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears the filter.
    pub event_types: Option<Option<EventPatterns>>,
}

/// A stored webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: WebhookId,
    pub channel_id: ChannelId,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEvent>,
    pub secrets: Vec<String>,
    pub retries: i64,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    pub creator_id: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub listener: bool,
    pub event_types: Option<EventPatterns>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> NetPolicy {
        NetPolicy::default()
    }

    #[test]
    fn urls_follow_the_rules() {
        assert!(WebhookUrl::parse("https://example.com/hook", &prod()).is_ok());
        assert!(WebhookUrl::parse("http://example.com/hook", &prod()).is_err());
        assert!(WebhookUrl::parse("ftp://example.com/hook", &prod()).is_err());
        assert!(WebhookUrl::parse("https://user:pw@example.com/", &prod()).is_err());
        assert!(WebhookUrl::parse("/relative", &prod()).is_err());
        assert!(WebhookUrl::parse("https://127.0.0.1/", &prod()).is_err());
        assert!(WebhookUrl::parse("https://[::1]/", &prod()).is_err());
        assert!(WebhookUrl::parse("https://localhost:3000/", &prod()).is_err());
        assert!(WebhookUrl::parse("https://api.localhost/", &prod()).is_err());
        assert!(WebhookUrl::parse("https://169.254.169.254/latest", &prod()).is_err());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(WebhookUrl::parse(&long, &prod()).is_err());
        let dev = NetPolicy {
            dev: true,
            allowed: vec![],
        };
        assert!(WebhookUrl::parse("http://localhost:3000/hook", &dev).is_ok());
    }

    #[test]
    fn the_length_limit_holds_for_the_url_as_stored() {
        // 2,043 characters as given; each `é` is stored percent-encoded, as `%C3%A9`.
        let accented = format!("https://a.io/{}", "é".repeat(2030));
        assert!(accented.chars().count() <= MAX_URL_LEN);
        let err = WebhookUrl::parse(&accented, &prod()).expect_err("too long once encoded");
        assert!(err.message.contains("12193"), "{}", err.message);
        let at_limit = format!("https://a.io/{}", "a".repeat(MAX_URL_LEN - 13));
        let url = WebhookUrl::parse(&at_limit, &prod()).expect("at the limit");
        assert_eq!(url.as_str().len(), MAX_URL_LEN);
        // Normalisation can also shorten a URL: what counts is what is kept.
        let dotted = format!("https://a.io/{}x", "./".repeat(MAX_URL_LEN));
        assert_eq!(
            WebhookUrl::parse(&dotted, &prod()).map(WebhookUrl::into_string),
            Ok("https://a.io/x".to_owned())
        );
    }

    #[test]
    fn secrets_follow_the_rules() {
        let ok = "a".repeat(40);
        assert!(parse_secrets(std::slice::from_ref(&ok)).is_ok());
        assert!(parse_secrets(&[]).is_err());
        assert!(parse_secrets(&["a".repeat(39)]).is_err());
        assert!(parse_secrets(&["a".repeat(257)]).is_err());
        assert!(parse_secrets(&[ok.clone(), ok.clone()]).is_err());
        let six: Vec<String> = (0..6).map(|i| format!("{i}").repeat(40)).collect();
        assert!(parse_secrets(&six).is_err());
        // Characters, not bytes: 40 two-byte characters are enough.
        assert!(parse_secrets(&["é".repeat(40)]).is_ok());
    }

    #[test]
    fn retries_events_and_description_follow_the_rules() {
        assert!(parse_retries(0).is_ok() && parse_retries(10).is_ok());
        assert!(parse_retries(-1).is_err() && parse_retries(11).is_err());
        assert!(parse_events(&[]).is_err());
        assert_eq!(
            parse_events(&[WebhookEvent::Video, WebhookEvent::Video]).map(|e| e.len()),
            Ok(1)
        );
        assert_eq!(parse_description(Some("  ")), Ok(None));
        assert!(parse_description(Some(&"d".repeat(1001))).is_err());
    }
}
