//! Plex Media Server: `multipart/form-data`, the JSON in the part `payload`, a `thumb` image
//! with some events (read past, never kept).

use super::body::{int, json_object, media_type, multipart_field, text};
use super::playback::{media_kind, relay, Media, Named, Playback};
use super::{Outcome, Rejection, Request};
use crate::domain::source::SourceSettings;
use serde_json::{Map, Value};

pub(super) async fn event(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    if media_type(req).as_deref() != Some("multipart/form-data") {
        return Err(Rejection::new(
            415,
            "Plex sends multipart/form-data with the JSON in a part named \"payload\"",
        ));
    }
    let payload = multipart_field(req, "payload").await?.ok_or_else(|| {
        Rejection::bad("the multipart/form-data body has no part named \"payload\"")
    })?;
    let json = json_object(&payload, "the \"payload\" part")?;
    let event =
        text(json.value.get("event")).ok_or_else(|| Rejection::bad("the payload has no event"))?;
    let playback = playback(&json.value, &event);
    // Plex sends no id and no time: the same payload can be a new event (a track played
    // again), so nothing marks a resend.
    relay(source, &event, &event, &playback, None, json.text)
}

fn state(event: &str) -> Option<&'static str> {
    Some(match event {
        "media.play" | "playback.started" => "play",
        "media.pause" => "pause",
        "media.resume" => "resume",
        "media.stop" => "stop",
        "media.scrobble" => "scrobble",
        "media.rate" => "rate",
        "library.new" | "library.on.deck" => "new",
        _ => return None,
    })
}

fn playback(p: &Map<String, Value>, event: &str) -> Playback {
    let part = |name: &str| p.get(name).and_then(Value::as_object);
    let named = |name: &str, id: &str, title: &str| Named {
        id: text(part(name).and_then(|o| o.get(id))),
        name: text(part(name).and_then(|o| o.get(title))),
    };
    let meta = part("Metadata");
    let m = |field: &str| meta.and_then(|o| o.get(field));
    let kind = media_kind(text(m("type")));
    let episode = kind.as_deref() == Some("episode");
    let (imdb, tmdb, tvdb) = guids(meta);
    Playback {
        state: state(event),
        user: named("Account", "id", "title"),
        server: named("Server", "uuid", "title"),
        player: named("Player", "uuid", "title"),
        media: Media {
            kind,
            title: text(m("title")),
            year: int(m("year")),
            show: episode.then(|| text(m("grandparentTitle"))).flatten(),
            season: episode.then(|| int(m("parentIndex"))).flatten(),
            episode: episode.then(|| int(m("index"))).flatten(),
            imdb,
            tmdb,
            tvdb,
        },
        position_ms: int(m("viewOffset")),
        duration_ms: int(m("duration")),
    }
}

/// The IMDb, TMDB and TVDB ids: from the `Guid` list of Plex's newer agents
/// (`imdb://tt14765720`), or the legacy agents' `guid`
/// (`com.plexapp.agents.imdb://tt0111161?lang=en`, `…themoviedb://278`, `…thetvdb://81189/1/2`).
fn guids(meta: Option<&Map<String, Value>>) -> (Option<String>, Option<String>, Option<String>) {
    let (mut imdb, mut tmdb, mut tvdb) = (None, None, None);
    let listed = meta
        .and_then(|m| m.get("Guid"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("id").and_then(Value::as_str));
    let legacy = meta.and_then(|m| m.get("guid")).and_then(Value::as_str);
    for guid in listed.chain(legacy) {
        let Some((scheme, rest)) = guid.split_once("://") else {
            continue;
        };
        let id = rest.split(['?', '/']).next().filter(|id| !id.is_empty());
        let slot = match scheme.rsplit('.').next().unwrap_or(scheme) {
            "imdb" => &mut imdb,
            "tmdb" | "themoviedb" => &mut tmdb,
            "tvdb" | "thetvdb" => &mut tvdb,
            _ => continue,
        };
        if slot.is_none() {
            *slot = id.map(str::to_owned);
        }
    }
    (imdb, tmdb, tvdb)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, http_fixture, multipart, settings};
    use super::*;
    use crate::domain::source::SourceKind;
    use serde_json::json;

    async fn read(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
        event(source, req).await
    }

    #[tokio::test]
    async fn the_multipart_request_becomes_plex_media_play_without_its_thumbnail() {
        let req = http_fixture("plex/multipart-request.http");
        let Ok(Outcome::Relay(r)) = read(&settings(SourceKind::Plex), &req).await else {
            panic!("not relayed");
        };
        assert_eq!(r.name.as_str(), "plex.media.play");
        assert!(!r.object.contains("JPEG") && !r.raw.as_deref().unwrap_or("").contains("JPEG"));
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(playback["state"], "play");
        assert_eq!(playback["user"], json!({"id": "1", "name": "elan"}));
        assert_eq!(playback["media"]["type"], "track");
        assert_eq!(playback["media"]["show"], Value::Null);
    }

    #[tokio::test]
    async fn a_scrobbled_episode_carries_its_show_and_ids() {
        let body = fixture("plex/media-scrobble-episode.moviepilot.json");
        let req = multipart(&[("payload", &body), ("thumb", b"\xff\xd8\xff\xe0 not text")]);
        let Ok(Outcome::Relay(r)) = read(&settings(SourceKind::Plex), &req).await else {
            panic!("not relayed");
        };
        assert_eq!(r.name.as_str(), "plex.media.scrobble");
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(
            playback,
            json!({
                "state": "scrobble",
                "user": {"id": "31646104", "name": "播放"},
                "server": {"id": "xxxx", "name": "Media-Server"},
                "player": {"id": "wu0uoa1ujfq90t0c5p9f7fw0", "name": "MagicBook"},
                "media": {"type": "episode", "title": "The World's Strongest Senior", "year": 2021,
                          "show": "范马刃牙", "season": 1, "episode": 1,
                          "ids": {"imdb": "tt14765720", "tmdb": "3087250", "tvdb": "8530933"}},
                "positionMs": null,
                "durationMs": 1500000
            })
        );
    }

    #[tokio::test]
    async fn only_the_owners_scrobbles_get_through_an_archives_filters() {
        let mut archive = settings(SourceKind::Plex);
        archive.events = crate::domain::event_types::EventPatterns::trusted(["media.scrobble"]);
        archive.allowed_users = vec!["播放".into()];
        let scrobble = multipart(&[(
            "payload",
            &fixture("plex/media-scrobble-episode.moviepilot.json"),
        )]);
        assert!(matches!(
            read(&archive, &scrobble).await,
            Ok(Outcome::Relay(_))
        ));
        let play = multipart(&[("payload", &fixture("plex/media-play-track.plex-docs.json"))]);
        assert!(matches!(
            read(&archive, &play).await,
            Ok(Outcome::Filtered { .. })
        ));
        archive.events = crate::domain::event_types::EventPatterns::trusted(["*"]);
        let Ok(Outcome::Filtered { message }) = read(&archive, &play).await else {
            panic!("another user");
        };
        assert!(message.contains("elan"), "{message}");
    }

    #[tokio::test]
    async fn what_is_not_plexs_multipart_is_refused() {
        let plex = settings(SourceKind::Plex);
        let mut json_body =
            super::super::tests::post(&fixture("plex/media-play-track.plex-docs.json"));
        json_body.headers = vec![("content-type".into(), "application/json".into())];
        assert_eq!(
            read(&plex, &json_body).await.map_err(|e| e.status),
            Err(415)
        );
        let no_payload = multipart(&[("thumb", b"x")]);
        assert_eq!(
            read(&plex, &no_payload).await.map_err(|e| e.status),
            Err(400)
        );
        let twice = multipart(&[("payload", b"{}"), ("payload", b"{}")]);
        assert_eq!(read(&plex, &twice).await.map_err(|e| e.status), Err(400));
        let not_json = multipart(&[("payload", b"{\"event\": ")]);
        assert_eq!(read(&plex, &not_json).await.map_err(|e| e.status), Err(400));
        let no_event = multipart(&[("payload", b"{\"Account\": {}}")]);
        assert_eq!(read(&plex, &no_event).await.map_err(|e| e.status), Err(400));
    }

    #[test]
    fn legacy_agents_guids_give_ids_too() {
        let meta = json!({"guid": "com.plexapp.agents.imdb://tt0111161?lang=en"});
        assert_eq!(guids(meta.as_object()).0.as_deref(), Some("tt0111161"));
        let meta = json!({"guid": "com.plexapp.agents.thetvdb://81189/1/2?lang=en"});
        assert_eq!(guids(meta.as_object()).2.as_deref(), Some("81189"));
    }
}
