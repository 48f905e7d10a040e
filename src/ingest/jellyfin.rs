//! Jellyfin's Webhook plugin (Generic destination): JSON, sent as `text/plain` unless the user
//! adds a `Content-Type` header, from "Send All Properties" (native types) or a template
//! (everything a string, `"True"`, `""` for what is missing).

use super::body::{field_ci, int, json_object, text};
use super::playback::{media_kind, relay, ticks_ms, Media, Named, Playback};
use super::{Outcome, Rejection, Request};
use crate::domain::source::SourceSettings;
use serde_json::{Map, Value};

pub(super) fn event(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let json = json_object(&req.body, "the body")?;
    let p = &json.value;
    let kind = text(p.get("NotificationType"))
        .ok_or_else(|| Rejection::bad("the body has no NotificationType"))?;
    let playback = playback(p, &kind);
    let dedupe_key = text(p.get("UtcTimestamp")).map(|at| {
        let part = |f: &str| text(p.get(f)).unwrap_or_default();
        format!(
            "{}:{}:{}:{kind}:{at}",
            part("ServerId"),
            part("UserId"),
            part("ItemId")
        )
    });
    relay(
        source,
        &kind,
        &dotted(&kind),
        &playback,
        dedupe_key,
        json.text,
    )
}

/// A notification type in dotted lower case: `PlaybackStart` → `playback.start`.
fn dotted(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 4);
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('.');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A flag, as Send All Properties (`true`) or a template (`"True"`) writes it.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn state(p: &Map<String, Value>, kind: &str) -> Option<&'static str> {
    Some(match kind {
        "PlaybackStart" => "play",
        "PlaybackProgress" if flag(p.get("IsPaused")) => "pause",
        "PlaybackProgress" => "play",
        "PlaybackStop" => "stop",
        "ItemAdded" => "new",
        "UserDataSaved" => match text(p.get("SaveReason")).as_deref() {
            Some("UpdateUserRating") => "rate",
            Some("TogglePlayed") if flag(p.get("Played")) => "scrobble",
            _ => return None,
        },
        _ => return None,
    })
}

fn playback(p: &Map<String, Value>, kind: &str) -> Playback {
    let t = |f: &str| text(p.get(f));
    let n = |f: &str| int(p.get(f));
    let id = |provider: &str| text(field_ci(p, &format!("Provider_{provider}")));
    Playback {
        state: state(p, kind),
        user: Named {
            id: t("UserId"),
            name: t("NotificationUsername").or_else(|| t("Username")),
        },
        server: Named {
            id: t("ServerId"),
            name: t("ServerName"),
        },
        player: Named {
            id: t("DeviceId"),
            name: t("DeviceName").or_else(|| t("ClientName")),
        },
        media: Media {
            kind: media_kind(t("ItemType")),
            title: t("Name"),
            year: n("Year"),
            show: t("SeriesName"),
            season: n("SeasonNumber"),
            episode: n("EpisodeNumber"),
            imdb: id("imdb"),
            tmdb: id("tmdb"),
            tvdb: id("tvdb"),
        },
        position_ms: ticks_ms(n("PlaybackPositionTicks")),
        duration_ms: ticks_ms(n("RunTimeTicks")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, post, settings};
    use super::*;
    use crate::domain::source::SourceKind;
    use crate::ingest::Relayed;
    use serde_json::json;

    fn relayed(body: &[u8], content_type: &str) -> Relayed {
        let mut req = post(body);
        req.headers = vec![("content-type".into(), content_type.into())];
        match event(&settings(SourceKind::Jellyfin), &req) {
            Ok(Outcome::Relay(r)) => r,
            other => panic!("not relayed: {other:?}"),
        }
    }

    #[test]
    fn send_all_properties_sent_as_text_plain_becomes_jellyfin_playback_start() {
        let body = fixture("jellyfin/playbackstart-episode.send-all-properties.moviepilot.json");
        let r = relayed(&body, "text/plain; charset=utf-8");
        assert_eq!(r.name.as_str(), "jellyfin.playback.start");
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(playback["state"], "play");
        assert_eq!(playback["user"]["name"], "Jeaven");
        assert_eq!(playback["media"]["type"], "episode");
        assert_eq!(playback["media"]["show"], "灼灼风流");
        assert_eq!(playback["media"]["ids"]["tmdb"], "229210");
        assert_eq!(playback["positionMs"], 100);
        assert_eq!(playback["durationMs"], 2_707_498);
    }

    #[test]
    fn a_stopped_movie_has_its_ids_position_and_duration() {
        let body = fixture("jellyfin/playbackstop-movie.send-all-properties.constructed.json");
        let r = relayed(&body, "application/json");
        assert_eq!(r.name.as_str(), "jellyfin.playback.stop");
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(
            playback,
            json!({
                "state": "stop",
                "user": {"id": "9783d2432b0d40a8a716b6aa46012345", "name": "alice"},
                "server": {"id": "d79d3a6261614419a114595a58512345", "name": "living-room"},
                "player": {"id": "TW96aWxsYS81LjAgKFdpbmRvd3MgTlQgMTAuMDsgV2luNjQ7IHg2NCk", "name": "Firefox"},
                "media": {"type": "movie", "title": "Inception", "year": 2010, "show": null,
                          "season": null, "episode": null,
                          "ids": {"imdb": "tt1375666", "tmdb": "27205", "tvdb": null}},
                "positionMs": 8_612_000,
                "durationMs": 8_880_000
            })
        );
        assert!(r.dedupe_key.is_some());
    }

    #[test]
    fn a_templates_strings_read_like_native_values() {
        let body = br#"{"NotificationType":"PlaybackStop","ServerId":"s1","UserId":"u1","NotificationUsername":"bob","ItemType":"Episode","Name":"Pilot","SeriesName":"Show","SeasonNumber":"1","EpisodeNumber":"2","Year":"","provider_imdb":"tt1","PlaybackPositionTicks":"600000000","RunTimeTicks":"","PlayedToCompletion":"True"}"#;
        let r = relayed(body, "text/plain");
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(playback["media"]["season"], 1);
        assert_eq!(playback["media"]["episode"], 2);
        assert_eq!(playback["media"]["year"], Value::Null);
        assert_eq!(playback["media"]["ids"]["imdb"], "tt1");
        assert_eq!(playback["positionMs"], 60_000);
        assert_eq!(
            r.dedupe_key, None,
            "no UtcTimestamp, nothing to tell a resend by"
        );
    }

    #[test]
    fn progress_reports_are_filtered_by_default_and_types_are_dotted() {
        let body = br#"{"NotificationType":"PlaybackProgress","UserId":"u"}"#;
        let outcome = event(&settings(SourceKind::Jellyfin), &post(body));
        assert!(
            matches!(outcome, Ok(Outcome::Filtered { .. })),
            "{outcome:?}"
        );
        assert_eq!(dotted("UserDataSaved"), "user.data.saved");
        let none = event(&settings(SourceKind::Jellyfin), &post(b"{\"Name\":\"x\"}"));
        assert_eq!(none.map_err(|e| e.status), Err(400));
    }
}
