//! The one shape of Plex's, Jellyfin's and Emby's events (SPEC §8.3): `playback`.

use super::{relayed_name, unless_filtered, Origin, Outcome, Rejection, Relayed};
use crate::domain::source::SourceSettings;
use serde_json::{json, Value};

/// Who or what, by id and name; either may be unknown.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Named {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// What was played.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Media {
    /// `movie`, `episode`, `track`, or the provider's own word in lower case.
    pub kind: Option<String>,
    pub title: Option<String>,
    pub year: Option<i64>,
    pub show: Option<String>,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub imdb: Option<String>,
    pub tmdb: Option<String>,
    pub tvdb: Option<String>,
}

/// One playback event of a media server.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Playback {
    /// `play`, `pause`, `resume`, `stop`, `scrobble`, `rate` or `new`.
    pub state: Option<&'static str>,
    pub user: Named,
    pub server: Named,
    pub player: Named,
    pub media: Media,
    pub position_ms: Option<i64>,
    pub duration_ms: Option<i64>,
}

impl Playback {
    /// The `playback` object, keys in the documented order; what the provider did not give is
    /// `null`.
    pub fn to_json(&self) -> Value {
        let named = |n: &Named| json!({ "id": n.id, "name": n.name });
        let m = &self.media;
        json!({
            "state": self.state,
            "user": named(&self.user),
            "server": named(&self.server),
            "player": named(&self.player),
            "media": {
                "type": m.kind,
                "title": m.title,
                "year": m.year,
                "show": m.show,
                "season": m.season,
                "episode": m.episode,
                "ids": { "imdb": m.imdb, "tmdb": m.tmdb, "tvdb": m.tvdb },
            },
            "positionMs": self.position_ms,
            "durationMs": self.duration_ms,
        })
    }
}

/// A media type in herald's words: Jellyfin's and Emby's .NET class names (`Movie`, `Episode`,
/// `Audio`) and Plex's words, in lower case, `Audio` as `track`.
pub(super) fn media_kind(raw: Option<String>) -> Option<String> {
    raw.map(|k| match k.to_ascii_lowercase().as_str() {
        "audio" => "track".to_owned(),
        other => other.to_owned(),
    })
}

/// .NET ticks (100 ns) in milliseconds.
pub(super) fn ticks_ms(ticks: Option<i64>) -> Option<i64> {
    ticks.map(|t| t / 10_000)
}

/// What a media server's request comes to: `playback` relayed as `<kind>.<name>` (the
/// provider's `event` in herald's spelling), with the provider's JSON `raw`, unless the
/// source's settings leave it out.
pub(super) fn relay(
    source: &SourceSettings,
    event: &str,
    name: &str,
    playback: &Playback,
    dedupe_key: Option<String>,
    raw: String,
) -> Result<Outcome, Rejection> {
    let relayed = Relayed {
        name: relayed_name(source.kind, name)?,
        dedupe_key,
        object_key: "playback",
        object: playback.to_json().to_string(),
        raw: Some(raw),
    };
    let origin = Origin {
        user: [playback.user.id.as_deref(), playback.user.name.as_deref()],
        server: playback.server.id.as_deref(),
    };
    Ok(unless_filtered(source, event, &origin, relayed))
}
