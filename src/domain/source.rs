//! Inbound sources (SPEC §8): URLs that third-party services call, whose requests herald turns
//! into events of its own. What a source is, the rules of its settings, its request log, and
//! the relayed events' names and payloads.

use super::event_types::EventPatterns;
use super::ids::{ChannelId, SourceId};
use super::webhook::VerifyToken;
use super::{plain_text, Invalid};
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;

mod relayed;

pub use relayed::*;

/// The most characters of a source's name.
pub const MAX_NAME_LEN: usize = 100;
/// The most entries of `allowedUsers` or `allowedServers`.
pub const MAX_ALLOWED: usize = 50;
/// The most characters of one `allowedUsers` or `allowedServers` entry.
pub const MAX_ALLOWED_LEN: usize = 256;
/// A signed source's secret: at least this many characters...
pub const MIN_SECRET_LEN: usize = 16;
/// ...and at most this many.
pub const MAX_SECRET_LEN: usize = 256;

/// Which service calls a source, and so how its requests are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Strava,
    Plex,
    Jellyfin,
    Emby,
    StandardWebhooks,
    Github,
}

impl SourceKind {
    pub const ALL: [SourceKind; 6] = [
        SourceKind::Strava,
        SourceKind::Plex,
        SourceKind::Jellyfin,
        SourceKind::Emby,
        SourceKind::StandardWebhooks,
        SourceKind::Github,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Strava => "STRAVA",
            SourceKind::Plex => "PLEX",
            SourceKind::Jellyfin => "JELLYFIN",
            SourceKind::Emby => "EMBY",
            SourceKind::StandardWebhooks => "STANDARD_WEBHOOKS",
            SourceKind::Github => "GITHUB",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The first part of the names of the events relayed from sources of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            SourceKind::Strava => "strava",
            SourceKind::Plex => "plex",
            SourceKind::Jellyfin => "jellyfin",
            SourceKind::Emby => "emby",
            SourceKind::StandardWebhooks => "inbound",
            SourceKind::Github => "github",
        }
    }

    /// Whether its requests carry a signature, checked with the source's `secret`.
    pub fn signed(self) -> bool {
        matches!(self, SourceKind::StandardWebhooks | SourceKind::Github)
    }

    /// The `events` a source of this kind relays when none are given, in the provider's own
    /// names: the playback events of the media servers (their progress reports, many a minute,
    /// left out), everything else for the rest.
    pub fn default_events(self) -> &'static [&'static str] {
        match self {
            SourceKind::Plex => &[
                "media.play",
                "media.pause",
                "media.resume",
                "media.stop",
                "media.scrobble",
                "media.rate",
            ],
            SourceKind::Jellyfin => &["PlaybackStart", "PlaybackStop"],
            SourceKind::Emby => &[
                "playback.start",
                "playback.pause",
                "playback.unpause",
                "playback.stop",
            ],
            SourceKind::Strava | SourceKind::StandardWebhooks | SourceKind::Github => &["*"],
        }
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn truncated(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// A signed source's secret: 16 to 256 characters. For `STANDARD_WEBHOOKS`, a `whsec_` secret
/// is the base64 of the key (as Standard Webhooks libraries read it); any other secret's UTF-8
/// bytes are the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecret(String);

impl std::fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceSecret(redacted)")
    }
}

impl SourceSecret {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::new("secret", m);
        let raw = plain_text("secret", "secret", raw)?;
        let n = raw.chars().count();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&n) {
            return Err(bad(format!(
                "secret is {n} characters long; it must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"
            )));
        }
        if let Some(b64) = raw.strip_prefix("whsec_") {
            if BASE64.decode(b64).map_or(true, |key| key.is_empty()) {
                return Err(bad(
                    "a secret that starts with whsec_ must go on with base64 (the key)".into(),
                ));
            }
        }
        Ok(SourceSecret(raw.to_owned()))
    }

    /// A secret read back from the store (checked when it was written).
    pub fn stored(raw: String) -> Self {
        SourceSecret(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A source's name: 1 to 100 characters.
pub fn parse_name(raw: &str) -> Result<String, Invalid> {
    let name = plain_text("name", "name", raw)?.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(Invalid::new(
            "name",
            format!("name must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// `allowedUsers` or `allowedServers` (`field`): at most 50 entries of 1 to 256 characters;
/// repeats are dropped. Empty allows everyone.
pub fn parse_allowed(field: &'static str, raw: &[String]) -> Result<Vec<String>, Invalid> {
    if raw.len() > MAX_ALLOWED {
        return Err(Invalid::new(
            field,
            format!("give at most {MAX_ALLOWED} entries, not {}", raw.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for entry in raw {
        let entry = plain_text(field, field, entry)?.trim();
        if entry.is_empty() || entry.chars().count() > MAX_ALLOWED_LEN {
            return Err(Invalid::new(
                field,
                format!("each entry must be 1 to {MAX_ALLOWED_LEN} characters"),
            ));
        }
        if !out.iter().any(|o| o == entry) {
            out.push(entry.to_owned());
        }
    }
    Ok(out)
}

/// What a source is set to do: a whole, checked set of settings (see [`SourceSettings::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub name: String,
    pub kind: SourceKind,
    /// `STRAVA` only: the `hub.verify_token` of the subscription handshake.
    pub verify_token: Option<VerifyToken>,
    /// Signed kinds only.
    pub secret: Option<SourceSecret>,
    /// The provider's events relayed (patterns).
    pub events: EventPatterns,
    /// Media servers and Strava: the users whose requests are relayed (empty: everyone).
    pub allowed_users: Vec<String>,
    /// Media servers and Strava: the servers (Strava: subscription ids) relayed from.
    pub allowed_servers: Vec<String>,
    pub enabled: bool,
}

impl SourceSettings {
    /// Checks the rules between fields: a `STRAVA` source needs a `verifyToken` and only it
    /// takes one; a signed kind needs a `secret` and only they take one; `allowedUsers` and
    /// `allowedServers` are for the kinds whose requests name a user and a server.
    pub fn check(self) -> Result<Self, Vec<Invalid>> {
        let kind = self.kind;
        let mut problems = Vec::new();
        match (kind == SourceKind::Strava, self.verify_token.is_some()) {
            (true, false) => problems.push(Invalid::new(
                "verifyToken",
                "a STRAVA source needs a verifyToken (the verify_token you give Strava's push_subscriptions call)",
            )),
            (false, true) => problems.push(Invalid::new(
                "verifyToken",
                format!("verifyToken is only for STRAVA sources, not {}", kind.as_str()),
            )),
            _ => {}
        }
        match (kind.signed(), self.secret.is_some()) {
            (true, false) => problems.push(Invalid::new(
                "secret",
                format!("a {} source needs the secret its requests are signed with", kind.as_str()),
            )),
            (false, true) => problems.push(Invalid::new(
                "secret",
                format!(
                    "secret is only for STANDARD_WEBHOOKS and GITHUB sources; {} requests are not signed (the ingest URL's token is their secret)",
                    kind.as_str()
                ),
            )),
            _ => {}
        }
        if kind.signed() {
            for (field, list) in [
                ("allowedUsers", &self.allowed_users),
                ("allowedServers", &self.allowed_servers),
            ] {
                if !list.is_empty() {
                    problems.push(Invalid::new(
                        field,
                        format!("{field} is not for {} sources", kind.as_str()),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems)
        }
    }
}

/// A change to a source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourcePatch {
    pub name: Option<String>,
    pub kind: Option<SourceKind>,
    /// `Some(None)` clears it.
    pub verify_token: Option<Option<VerifyToken>>,
    /// `Some(None)` clears it.
    pub secret: Option<Option<SourceSecret>>,
    /// `Some(None)` sets the kind's default.
    pub events: Option<Option<EventPatterns>>,
    pub allowed_users: Option<Vec<String>>,
    pub allowed_servers: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl SourcePatch {
    /// The settings `current` has after this patch, checked as a whole. A new kind without new
    /// `events` gets the new kind's default events.
    pub fn apply(&self, current: &SourceSettings) -> Result<SourceSettings, Vec<Invalid>> {
        let kind = self.kind.unwrap_or(current.kind);
        let events = match &self.events {
            Some(Some(events)) => events.clone(),
            Some(None) => default_events(kind),
            None if kind != current.kind => default_events(kind),
            None => current.events.clone(),
        };
        SourceSettings {
            name: self.name.clone().unwrap_or_else(|| current.name.clone()),
            kind,
            verify_token: self
                .verify_token
                .clone()
                .unwrap_or_else(|| current.verify_token.clone()),
            secret: self
                .secret
                .clone()
                .unwrap_or_else(|| current.secret.clone()),
            events,
            allowed_users: self
                .allowed_users
                .clone()
                .unwrap_or_else(|| current.allowed_users.clone()),
            allowed_servers: self
                .allowed_servers
                .clone()
                .unwrap_or_else(|| current.allowed_servers.clone()),
            enabled: self.enabled.unwrap_or(current.enabled),
        }
        .check()
    }
}

/// A kind's default `events`.
pub fn default_events(kind: SourceKind) -> EventPatterns {
    EventPatterns::trusted(kind.default_events().iter().copied())
}

/// A stored source. Its ingest token is not here: herald keeps only its hash.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: SourceId,
    pub channel_id: ChannelId,
    pub settings: SourceSettings,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new ingest token: `src_` and 43 URL-safe characters (32 random bytes).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("src_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` has the shape of an ingest token (so that anything else is refused before
/// the database is asked).
pub fn plausible_token(token: &str) -> bool {
    token.len() == 47
        && token.starts_with("src_")
        && token[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: SourceKind) -> SourceSettings {
        SourceSettings {
            name: "x".into(),
            kind,
            verify_token: None,
            secret: None,
            events: default_events(kind),
            allowed_users: vec![],
            allowed_servers: vec![],
            enabled: true,
        }
    }

    #[test]
    fn kinds_need_what_their_requests_are_checked_with() {
        let fields = |kind| -> Vec<&str> {
            settings(kind)
                .check()
                .err()
                .unwrap_or_default()
                .iter()
                .map(|i| i.field)
                .collect()
        };
        assert_eq!(fields(SourceKind::Strava), ["verifyToken"]);
        assert_eq!(fields(SourceKind::Github), ["secret"]);
        assert_eq!(fields(SourceKind::StandardWebhooks), ["secret"]);
        assert!(fields(SourceKind::Plex).is_empty());
        let mut plex = settings(SourceKind::Plex);
        plex.secret = Some(SourceSecret::parse("0123456789abcdef").expect("secret"));
        plex.verify_token = Some(VerifyToken::parse("t").expect("token"));
        let errs = plex.check().expect_err("neither is for PLEX");
        assert_eq!(errs.len(), 2);
        let mut gh = settings(SourceKind::Github);
        gh.secret = Some(SourceSecret::parse("It's a Secret to Everybody").expect("secret"));
        gh.allowed_users = vec!["octocat".into()];
        let errs = gh.check().expect_err("no users for GitHub");
        assert_eq!(errs[0].field, "allowedUsers");
    }

    #[test]
    fn a_new_kind_brings_its_default_events() {
        let plex = settings(SourceKind::Plex);
        let patch = SourcePatch {
            kind: Some(SourceKind::Jellyfin),
            ..SourcePatch::default()
        };
        let after = patch.apply(&plex).expect("valid");
        assert_eq!(after.events.as_slice(), ["PlaybackStart", "PlaybackStop"]);
        let same = SourcePatch::default().apply(&plex).expect("valid");
        assert_eq!(same, plex);
    }

    #[test]
    fn secrets_names_and_lists_follow_the_rules() {
        assert!(SourceSecret::parse("short").is_err());
        assert!(SourceSecret::parse("whsec_!!!!not-base64!!!!").is_err());
        assert!(SourceSecret::parse("whsec_aGVyYWxkLXN0YW5kYXJkLXdlYmhvb2tzLXRlc3Qta2V5").is_ok());
        assert!(parse_name("  ").is_err());
        assert_eq!(parse_name(" Plex ").as_deref(), Ok("Plex"));
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        assert!(parse_allowed("allowedUsers", &many).is_err());
        assert_eq!(
            parse_allowed("allowedUsers", &["a".into(), "a".into()]),
            Ok(vec!["a".to_owned()])
        );
    }

    #[test]
    fn tokens_are_url_safe_and_recognisable() {
        let t = generate_token();
        assert!(plausible_token(&t), "{t}");
        assert_ne!(t, generate_token());
        assert!(!plausible_token("src_short"));
        assert!(!plausible_token(&format!("src_{}", "a/".repeat(22))));
    }
}
