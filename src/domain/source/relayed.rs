//! What becomes of a source's requests: the names and payloads of the events relayed, and the
//! request log.

use super::{truncated, Source, SourceKind};
use crate::domain::ids::{SourceId, SourceRequestId, Typed};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The prefixes of every relayed event's name.
pub fn relayed_prefixes() -> impl Iterator<Item = &'static str> {
    SourceKind::ALL.into_iter().map(SourceKind::prefix)
}

/// The most characters of a relayed event's name.
pub const MAX_EVENT_NAME_LEN: usize = 120;

/// The name of a relayed event: a kind's prefix, a dot, and the provider's event in lower
/// case, made of letters, digits, `.`, `_`, `-` and `:` (`plex.media.scrobble`,
/// `jellyfin.playback.start`, `github.pull_request`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayedName(Arc<str>);

impl RelayedName {
    /// The name of event `event` (as the provider names it, already in herald's spelling) of a
    /// source of `kind`; `Err` says why `event` cannot be part of a name.
    pub fn new(kind: SourceKind, event: &str) -> Result<Self, String> {
        let full = format!("{}.{}", kind.prefix(), event.to_ascii_lowercase());
        Self::parse(&full).ok_or_else(|| {
            format!(
                "the event type {:?} cannot be relayed: use up to {MAX_EVENT_NAME_LEN} characters, letters, digits, `.`, `_`, `-` or `:`",
                truncated(event, 60)
            )
        })
    }

    /// A whole relayed name, as stored.
    pub fn parse(full: &str) -> Option<Self> {
        let (prefix, rest) = full.split_once('.')?;
        let ok = relayed_prefixes().any(|p| p == prefix)
            && full.len() <= MAX_EVENT_NAME_LEN
            && !rest.is_empty()
            && !rest.starts_with('.')
            && !rest.ends_with('.')
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        ok.then(|| RelayedName(Arc::from(full)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What herald did with one request a source received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Relayed as an event (or, for a Strava handshake, answered).
    Accepted,
    /// A resend of a request already accepted: answered 200, relayed once.
    Duplicate,
    /// Left out by the source's `events`, `allowedUsers` or `allowedServers`: answered 200.
    Filtered,
    /// Refused: malformed, badly signed, too large; answered 4xx.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "ACCEPTED",
            Outcome::Duplicate => "DUPLICATE",
            Outcome::Filtered => "FILTERED",
            Outcome::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ACCEPTED" => Outcome::Accepted,
            "DUPLICATE" => Outcome::Duplicate,
            "FILTERED" => Outcome::Filtered,
            "REJECTED" => Outcome::Rejected,
            _ => return None,
        })
    }
}

/// An event to relay, as read from a source's request: its name, the kind's object and the
/// provider's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    pub name: RelayedName,
    /// What makes a resend of the same request recognisable (Strava's five fields, a delivery
    /// id): a second request with the same key is a duplicate. `None`: never a duplicate.
    pub dedupe_key: Option<String>,
    /// `activity`, `athlete`, `playback` or `data`.
    pub object_key: &'static str,
    /// The kind's object, as JSON text.
    pub object: String,
    /// The provider's JSON as received, for `raw`; `None` where the object is that JSON.
    pub raw: Option<String>,
}

/// The most characters of a request log message.
pub const MAX_MESSAGE_LEN: usize = 500;

/// One line of a source's request log.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    pub id: SourceRequestId,
    pub source_id: SourceId,
    pub received_at: i64,
    pub outcome: Outcome,
    /// The HTTP status herald answered with.
    pub status: i64,
    pub message: String,
    /// The name of the event the request became.
    pub event: Option<String>,
}

/// The frozen object part of a relayed event: `channel`, `source`, then the kind's object
/// under `object_key`, then `raw` when given. `object` and `raw` are JSON texts, each one JSON
/// value that the caller parsed: they are written as they are, so the provider's JSON reaches
/// receivers byte for byte.
pub fn relayed_data(
    channel: Value,
    source: &Source,
    object_key: &str,
    object: &str,
    raw: Option<&str>,
) -> String {
    let mut m = Map::new();
    m.insert("channel".into(), channel);
    m.insert(
        "source".into(),
        json!({
            "id": source.id.global(),
            "name": source.settings.name,
            "kind": source.settings.kind.as_str(),
        }),
    );
    let mut data = Value::Object(m).to_string();
    data.pop();
    for (key, text) in [(object_key, Some(object)), ("raw", raw)] {
        if let Some(text) = text {
            data.push(',');
            data.push_str(&Value::String(key.to_owned()).to_string());
            data.push(':');
            data.push_str(text.trim());
        }
    }
    data.push('}');
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ChannelId;
    use crate::domain::source::{default_events, SourceSettings};

    #[test]
    fn relayed_names_are_prefixed_lower_case_and_plain() {
        let n = RelayedName::new(SourceKind::Plex, "media.scrobble").expect("name");
        assert_eq!(n.as_str(), "plex.media.scrobble");
        assert_eq!(
            RelayedName::new(SourceKind::Github, "Pull_Request").map(|n| n.as_str().to_owned()),
            Ok("github.pull_request".to_owned())
        );
        assert!(RelayedName::new(SourceKind::StandardWebhooks, "a b").is_err());
        assert!(RelayedName::new(SourceKind::StandardWebhooks, "").is_err());
        assert!(RelayedName::new(SourceKind::StandardWebhooks, &"a".repeat(200)).is_err());
        assert!(RelayedName::parse("video.deleted").is_none());
        assert!(RelayedName::parse("inbound.user.created").is_some());
    }

    #[test]
    fn the_raw_json_is_kept_as_it_came() {
        let source = Source {
            id: SourceId(3),
            channel_id: ChannelId(1),
            settings: SourceSettings {
                name: "x".into(),
                kind: SourceKind::Plex,
                verify_token: None,
                secret: None,
                events: default_events(SourceKind::Plex),
                allowed_users: vec![],
                allowed_servers: vec![],
                enabled: true,
            },
            created_at: 0,
            updated_at: 0,
        };
        let data = relayed_data(
            json!({"name": "c"}),
            &source,
            "playback",
            r#"{"state":"play"}"#,
            Some("{\"b\": 1.0,  \"a\": [] }\n"),
        );
        assert_eq!(
            data,
            r#"{"channel":{"name":"c"},"source":{"id":"U291cmNlLTM=","name":"x","kind":"PLEX"},"playback":{"state":"play"},"raw":{"b": 1.0,  "a": [] }}"#
        );
        let parsed: Value = serde_json::from_str(&data).expect("JSON");
        assert_eq!(parsed["raw"]["b"], json!(1.0));
    }
}
