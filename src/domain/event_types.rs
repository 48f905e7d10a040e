//! Lists of event-name patterns: a webhook's `eventTypes` and a source's `events`. A pattern is
//! a name (`video.deleted`, `media.scrobble`) or a prefix followed by one trailing `*`
//! (`plex.*`; `*` alone matches everything).

use super::event::EventName;
use super::source::relayed_prefixes;
use super::webhook::WebhookEvent;
use super::{plain_text, Invalid};

/// The most patterns in one list.
pub const MAX_PATTERNS: usize = 50;
/// The most characters of one pattern.
pub const MAX_PATTERN_LEN: usize = 100;

/// A checked list of patterns, in the order given, without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPatterns(Vec<String>);

impl EventPatterns {
    /// Parses a list for the input field `field`: 1 to 50 patterns, each 1 to 100 characters
    /// of letters, digits, `.`, `_`, `-` and `:`, with at most one `*`, at the end.
    pub fn parse(field: &'static str, raw: &[String]) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::new(field, m);
        if raw.is_empty() || raw.len() > MAX_PATTERNS {
            return Err(bad(format!(
                "give 1 to {MAX_PATTERNS} event names or patterns, not {}",
                raw.len()
            )));
        }
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for p in raw {
            let p = plain_text(field, field, p)?.trim();
            let stem = p.strip_suffix('*').unwrap_or(p);
            let well_formed = p.chars().count() <= MAX_PATTERN_LEN
                && !p.is_empty()
                && stem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
            if !well_formed {
                return Err(bad(format!(
                    "{p:?} is not an event name or pattern: use up to {MAX_PATTERN_LEN} letters, digits, `.`, `_`, `-` or `:`, optionally ending in one `*` (`plex.*`)"
                )));
            }
            if !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        }
        Ok(EventPatterns(out))
    }

    /// Patterns known to be well formed (herald's own defaults, or read back from the store).
    pub fn trusted<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        EventPatterns(patterns.into_iter().map(Into::into).collect())
    }

    /// Whether `name` matches one of the patterns.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| pattern_matches(p, name))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Whether one pattern matches `name`.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Whether `pattern` could match some name of which `prefix` is a prefix (`plex.*` and
/// `plex.media.scrobble` could for `plex.`; `video.*` could not).
pub fn could_match_under(pattern: &str, prefix: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => stem.starts_with(prefix) || prefix.starts_with(stem),
        None => pattern.starts_with(prefix) && pattern.len() > prefix.len(),
    }
}

/// Checks a webhook's `eventTypes` against its subscriptions: each pattern must match some
/// event that one of them brings (a channel event's name, or a relayed name under a source
/// kind's prefix), so a typo is refused rather than silently letting nothing through.
pub fn check_against(subscriptions: &[WebhookEvent], types: &EventPatterns) -> Result<(), Invalid> {
    for p in types.as_slice() {
        let channel_event = EventName::ALL.iter().any(|e| {
            e.subscribed_by()
                .is_some_and(|s| subscriptions.contains(&s) && pattern_matches(p, e.as_str()))
        });
        let relayed = subscriptions.contains(&WebhookEvent::Source)
            && relayed_prefixes().any(|prefix| could_match_under(p, &format!("{prefix}.")));
        if !(channel_event || relayed) {
            let names: Vec<&str> = subscriptions.iter().map(|s| s.as_str()).collect();
            return Err(Invalid::new(
                "eventTypes",
                format!(
                    "{p:?} matches no event of the webhook's subscriptions ({})",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &[&str]) -> Result<EventPatterns, Invalid> {
        let raw: Vec<String> = raw.iter().map(|s| (*s).to_owned()).collect();
        EventPatterns::parse("eventTypes", &raw)
    }

    #[test]
    fn names_and_trailing_stars_match() {
        let p = list(&["plex.*", "video.deleted"]).expect("valid");
        assert!(p.matches("plex.media.scrobble"));
        assert!(p.matches("video.deleted"));
        assert!(!p.matches("video.updated"));
        assert!(!p.matches("jellyfin.playback.stop"));
        assert!(list(&["*"]).expect("all").matches("anything.at.all"));
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert!(list(&[]).is_err());
        assert!(list(&["pl*ex"]).is_err(), "a star only at the end");
        assert!(list(&["**"]).is_err());
        assert!(list(&["has space"]).is_err());
        assert!(list(&[""]).is_err());
        assert!(list(&[&"a".repeat(101)]).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("e{i}")).collect();
        assert!(EventPatterns::parse("events", &many).is_err());
        assert_eq!(
            list(&["a", "a"]).map(|p| p.into_vec()),
            Ok(vec!["a".into()])
        );
        let e = list(&["a\u{0}"]).expect_err("NUL");
        assert_eq!(e.field, "eventTypes");
    }

    #[test]
    fn event_types_must_fit_the_subscriptions() {
        use WebhookEvent::{Collection, Source, Video};
        let ok = |subs: &[WebhookEvent], raw: &[&str]| {
            check_against(subs, &list(raw).expect("well formed")).is_ok()
        };
        assert!(ok(&[Video, Source], &["plex.*", "video.deleted"]));
        assert!(ok(&[Source], &["strava.activity.created", "*"]));
        assert!(!ok(&[Video], &["plex.*"]), "no SOURCE subscription");
        assert!(!ok(&[Video, Collection], &["vdeo.deleted"]));
        assert!(!ok(&[Source], &["spotify.*"]));
    }

    #[test]
    fn what_could_match_under_a_prefix() {
        assert!(could_match_under("plex.*", "plex."));
        assert!(could_match_under("*", "plex."));
        assert!(could_match_under("pl*", "plex."));
        assert!(could_match_under("plex.media.scrobble", "plex."));
        assert!(!could_match_under("plex.", "plex."));
        assert!(!could_match_under("video.*", "plex."));
    }
}
