//! Emby: JSON (4.9's "application/json" content type), or `multipart/form-data` (or a
//! URL-encoded form) with the JSON in the field `data` (4.8 and older).

use super::body::{field_ci, form_json, int, json_object, text, Json};
use super::playback::{media_kind, relay, ticks_ms, Media, Named, Playback};
use super::{Outcome, Rejection, Request};
use crate::domain::source::SourceSettings;
use serde_json::{Map, Value};

pub(super) async fn event(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let json: Json = match form_json(req, "data").await? {
        Some(json) => json,
        None => json_object(&req.body, "the body")?,
    };
    let p = &json.value;
    let event = text(p.get("Event")).ok_or_else(|| Rejection::bad("the body has no Event"))?;
    let playback = playback(p, &event);
    let at = |o: &str, f: &str| text(p.get(o).and_then(|v| v.get(f))).unwrap_or_default();
    // `Date` has 100 ns resolution: the same event sent again has the same one.
    let dedupe_key = text(p.get("Date")).map(|date| {
        let (server, user) = (at("Server", "Id"), at("User", "Id"));
        let (item, session) = (at("Item", "Id"), at("Session", "Id"));
        format!("{server}:{event}:{user}:{item}:{session}:{date}")
    });
    relay(source, &event, &event, &playback, dedupe_key, json.text)
}

fn state(event: &str) -> Option<&'static str> {
    Some(match event {
        "playback.start" => "play",
        "playback.pause" => "pause",
        "playback.unpause" => "resume",
        "playback.stop" => "stop",
        "playback.scrobble" | "item.markplayed" => "scrobble",
        "item.rate" => "rate",
        "library.new" => "new",
        _ => return None,
    })
}

fn playback(p: &Map<String, Value>, event: &str) -> Playback {
    let obj = |name: &str| p.get(name).and_then(Value::as_object);
    let named = |part: &str, id: &str, name: &str| Named {
        id: text(obj(part).and_then(|o| o.get(id))),
        name: text(obj(part).and_then(|o| o.get(name))),
    };
    let item = obj("Item");
    let i = |f: &str| item.and_then(|o| o.get(f));
    let ids = item
        .and_then(|o| o.get("ProviderIds"))
        .and_then(Value::as_object);
    let id = |provider: &str| text(ids.and_then(|ids| field_ci(ids, provider)));
    let position = obj("PlaybackInfo").and_then(|o| o.get("PositionTicks"));
    Playback {
        state: state(event),
        user: named("User", "Id", "Name"),
        server: named("Server", "Id", "Name"),
        player: named("Session", "DeviceId", "DeviceName"),
        media: Media {
            kind: media_kind(text(i("Type"))),
            title: text(i("Name")),
            year: int(i("ProductionYear")),
            show: text(i("SeriesName")),
            season: int(i("ParentIndexNumber")),
            episode: int(i("IndexNumber")),
            imdb: id("Imdb"),
            tmdb: id("Tmdb"),
            tvdb: id("Tvdb"),
        },
        position_ms: ticks_ms(int(position)),
        duration_ms: ticks_ms(int(i("RunTimeTicks"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, http_fixture, post, settings};
    use super::*;
    use crate::domain::source::SourceKind;
    use crate::ingest::Relayed;
    use serde_json::json;

    async fn relayed(req: &Request) -> Relayed {
        match event(&settings(SourceKind::Emby), req).await {
            Ok(Outcome::Relay(r)) => r,
            other => panic!("not relayed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_json_body_becomes_emby_playback_stop() {
        let req = post(&fixture(
            "emby/playback-stop-movie.emby-4.7.13.moviepilot.json",
        ));
        let r = relayed(&req).await;
        assert_eq!(r.name.as_str(), "emby.playback.stop");
        let playback: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(
            playback,
            json!({
                "state": "stop",
                "user": {"id": "e6a9dd89fd954d689870e7e0e3e72947", "name": "admin"},
                "server": {"id": "f40a5bd0c6b64051bdbed00580fa1118", "name": "PN41"},
                "player": {"id": "30239450-1748-4855-9799-de3544fc2744", "name": "Microsoft Edge Windows"},
                "media": {"type": "movie", "title": "蜘蛛侠：纵横宇宙", "year": 2023, "show": null,
                          "season": null, "episode": null,
                          "ids": {"imdb": "tt9362722", "tmdb": "569094", "tvdb": null}},
                "positionMs": 1_743_179,
                "durationMs": 8_043_959
            })
        );
    }

    #[tokio::test]
    async fn the_older_multipart_data_part_reads_the_same_as_json() {
        let legacy = relayed(&http_fixture("emby/legacy-multipart-request.http")).await;
        let json = relayed(&post(&fixture(
            "emby/playback-start-episode.emby-4.7.13.moviepilot.json",
        )))
        .await;
        assert_eq!(legacy.name.as_str(), "emby.playback.start");
        assert_eq!(legacy.object, json.object);
        assert_eq!(legacy.dedupe_key, json.dedupe_key);
        let playback: Value = serde_json::from_str(&legacy.object).expect("JSON");
        assert_eq!(playback["media"]["show"], "长风渡");
        assert_eq!(playback["media"]["season"], 1);
        assert_eq!(playback["media"]["episode"], 11);
    }

    #[tokio::test]
    async fn a_form_without_data_is_refused() {
        let mut req = post(b"other=1");
        req.headers = vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        let e = event(&settings(SourceKind::Emby), &req)
            .await
            .expect_err("no data");
        assert_eq!(e.status, 400);
    }
}
