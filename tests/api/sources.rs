//! Inbound sources: the sources API, and each kind end to end, from a real request to
//! `/ingest/…` to a real receiver getting the signed relayed event, with the request log telling
//! what happened to each request.

use crate::helpers::{spawn_app, Received, TestApp, TestReceiver, SECRET_A};
use herald_verify::Verifier;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub(crate) const CREATE_SOURCE: &str = "mutation ($i: CreateSourceInput!) { createSource(input: $i) { source { id name kind enabled ingestUrl events allowedUsers allowedServers hasVerifyToken hasSecret } errors { message path } } }";

/// A fixture of `tests/fixtures/inbound/`.
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/tests/fixtures/inbound/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The headers and body an `.http` fixture shows, lines ending with CRLF as on the wire.
fn http_fixture(path: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let text = String::from_utf8(fixture(path)).expect("UTF-8");
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with("###"))
        .skip_while(|l| l.trim().is_empty())
        .skip(1);
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header");
        if !k.eq_ignore_ascii_case("host") {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let body = lines.collect::<Vec<_>>().join("\r\n");
    (headers, format!("{}\r\n", body.trim_end()).into_bytes())
}

/// A source made with `input` (as admin); its ID and the path of its ingest URL.
pub(crate) async fn source(app: &TestApp, input: Value) -> (String, String) {
    let r = app.graphql(CREATE_SOURCE, json!({ "i": input })).await;
    let made = &r["data"]["createSource"];
    assert_eq!(made["errors"], json!([]), "{r}");
    let url = made["source"]["ingestUrl"].as_str().expect("ingestUrl");
    (
        made["source"]["id"].as_str().expect("id").to_owned(),
        path_of(url),
    )
}

/// The path of an ingest URL (tests reach herald on its random port, not its public URL).
fn path_of(url: &str) -> String {
    let at = url.find("/ingest/").unwrap_or_else(|| panic!("{url}"));
    url[at..].to_owned()
}

/// POSTs `body` to `path` with `headers`; the status and the JSON answer.
pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = app.http().post(app.url(path)).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("POST to the ingest URL");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The source's request log, newest first.
pub(crate) async fn requests(app: &TestApp, source: &str) -> Vec<Value> {
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { ... on Source { requests(first: 100) { nodes { id receivedAt outcome status message event } } } } }",
            json!({ "id": source }),
        )
        .await;
    r["data"]["node"]["requests"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("requests: {r}"))
        .clone()
}

/// The outcomes of the log, oldest first.
fn outcomes(log: &[Value]) -> Vec<&str> {
    log.iter()
        .rev()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect()
}

/// A webhook to `rx` for SOURCE events, signed with [`SECRET_A`].
async fn source_hook(app: &TestApp, rx: &TestReceiver) -> String {
    app.create_webhook(&rx.url(), &["SOURCE"], &[SECRET_A], 3)
        .await
}

/// The relayed delivery `got` verified under both schemes, as JSON.
fn verified(got: &Received) -> Value {
    let verifier = Verifier::new([SECRET_A]);
    let headers = got.header_pairs();
    verifier
        .verify(&headers, &got.body)
        .expect("Standard Webhooks signature");
    let rewatch: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !k.starts_with("webhook-"))
        .cloned()
        .collect();
    verifier
        .verify(&rewatch, &got.body)
        .expect("Rewatch signature");
    got.json()
}

#[tokio::test]
async fn a_strava_source_answers_the_handshake_relays_events_once_and_logs_each_request() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = source_hook(&app, &rx).await;
    let (id, path) = source(
        &app,
        json!({"name": "Strava", "kind": "STRAVA", "verifyToken": "STRAVA"}),
    )
    .await;

    let challenge = app
        .get(&format!(
            "{path}?hub.verify_token=STRAVA&hub.challenge=15f7d1a91c1f40f8a748fd134752feb3&hub.mode=subscribe"
        ))
        .await;
    assert_eq!(challenge.status(), 200);
    assert!(challenge.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("application/json"));
    let echoed: Value = challenge.json().await.expect("JSON");
    assert_eq!(
        echoed,
        json!({"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"})
    );
    let wrong = app
        .get(&format!(
            "{path}?hub.verify_token=NOPE&hub.challenge=x&hub.mode=subscribe"
        ))
        .await;
    assert_eq!(wrong.status(), 400);

    let body = fixture("strava/event-activity-update-title.json");
    let json = [("content-type", "application/json")];
    let (status, answer) = post(&app, &path, &json, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["event"], "strava.activity.updated");
    // Strava resends what it did not see answered: the same event, once.
    let (status, answer) = post(&app, &path, &json, body.clone()).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("DUPLICATE"))
    );
    // Deliveries are written before the answer: the log is complete now.
    assert_eq!(app.deliveries(&hook).await.len(), 1);

    let got = rx.wait_for(1).await;
    let payload = verified(&got[0]);
    assert_eq!(
        got[0].header("Rewatch-Hook-Delivery-Event"),
        "strava.activity.updated"
    );
    let keys: Vec<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["hookId", "nonce", "at", "event", "channel", "source", "activity", "raw"]
    );
    assert_eq!(
        payload["source"],
        json!({"id": id, "name": "Strava", "kind": "STRAVA"})
    );
    assert_eq!(payload["activity"]["id"], 1360128428);
    assert_eq!(payload["activity"]["updates"], json!({"title": "Messy"}));
    let raw_at = got[0]
        .body
        .windows(6)
        .position(|w| w == b"\"raw\":")
        .expect("raw")
        + 6;
    assert_eq!(
        &got[0].body[raw_at..got[0].body.len() - 1],
        String::from_utf8_lossy(&body).trim().as_bytes(),
        "raw is the provider's JSON byte for byte"
    );

    let (status, _) = post(
        &app,
        &path,
        &json,
        fixture("strava/event-athlete-deauthorize.json"),
    )
    .await;
    assert_eq!(status, 200);
    let got = rx.wait_for(2).await;
    let deauth = got
        .iter()
        .map(Received::json)
        .find(|p| p["event"] == "strava.athlete.updated")
        .expect("the deauthorization");
    assert_eq!(deauth["athlete"]["updates"], json!({"authorized": "false"}));

    let (status, answer) = post(&app, &path, &json, &b"{\"object_type\": \"club\"}"[..]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["errors"][0]["message"].as_str().is_some());

    let log = requests(&app, &id).await;
    assert_eq!(
        outcomes(&log),
        [
            "ACCEPTED",
            "REJECTED",
            "ACCEPTED",
            "DUPLICATE",
            "ACCEPTED",
            "REJECTED"
        ]
    );
    assert_eq!(
        log[5]["message"],
        "answered Strava's subscription handshake"
    );
    assert_eq!(log[3]["event"], "strava.activity.updated");
    assert!(
        log[3]["message"]
            .as_str()
            .expect("message")
            .contains("1 delivery"),
        "{log:#?}"
    );
    assert_eq!(log[0]["status"], 400);
    assert_eq!(log[0]["event"], Value::Null);
}

#[tokio::test]
async fn plex_multipart_requests_become_playback_events_and_filters_answer_200() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    source_hook(&app, &rx).await;
    let (id, path) = source(&app, json!({"name": "Plex", "kind": "PLEX"})).await;
    let (headers, body) = http_fixture("plex/multipart-request.http");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, answer) = post(&app, &path, &headers, body).await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("plex.media.play")),
        "{answer}"
    );
    let got = rx.wait_for(1).await;
    let payload = verified(&got[0]);
    assert_eq!(payload["playback"]["state"], "play");
    assert_eq!(
        payload["playback"]["user"],
        json!({"id": "1", "name": "elan"})
    );
    assert_eq!(payload["raw"]["Server"]["title"], "Office");
    assert!(
        !String::from_utf8_lossy(&got[0].body).contains("JPEG"),
        "the thumbnail is not kept"
    );

    // The personal archive: the owner's scrobbles only, the rest answered 200 so Plex stops.
    let (_, archive) = source(
        &app,
        json!({"name": "Archive", "kind": "PLEX", "events": ["media.scrobble"], "allowedUsers": ["elan"]}),
    )
    .await;
    let (status, answer) = post(
        &app,
        &archive,
        &headers,
        http_fixture("plex/multipart-request.http").1,
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("FILTERED")),
        "{answer}"
    );
    assert!(answer["message"]
        .as_str()
        .expect("why")
        .contains("media.play"));

    let (status, _) = post(
        &app,
        &path,
        &[("content-type", "application/json")],
        fixture("plex/media-play-track.plex-docs.json"),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(
        outcomes(&requests(&app, &id).await),
        ["ACCEPTED", "REJECTED"]
    );
}

#[tokio::test]
async fn jellyfin_text_plain_and_emby_json_or_multipart_become_their_events() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    source_hook(&app, &rx).await;
    let (_, jellyfin) = source(&app, json!({"name": "Jellyfin", "kind": "JELLYFIN"})).await;
    let (_, emby) = source(&app, json!({"name": "Emby", "kind": "EMBY"})).await;

    let body = fixture("jellyfin/playbackstop-movie.send-all-properties.constructed.json");
    let (status, answer) = post(
        &app,
        &jellyfin,
        &[("content-type", "text/plain; charset=utf-8")],
        body,
    )
    .await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("jellyfin.playback.stop")),
        "{answer}"
    );
    let (status, answer) = post(
        &app,
        &emby,
        &[("content-type", "application/json")],
        fixture("emby/playback-stop-movie.emby-4.7.13.moviepilot.json"),
    )
    .await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("emby.playback.stop")),
        "{answer}"
    );
    let (headers, body) = http_fixture("emby/legacy-multipart-request.http");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, answer) = post(&app, &emby, &headers, body).await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("emby.playback.start")),
        "{answer}"
    );

    let got = rx.wait_for(3).await;
    let by_event = |name: &str| {
        got.iter()
            .map(verified)
            .find(|p| p["event"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let stop = by_event("jellyfin.playback.stop");
    assert_eq!(stop["playback"]["media"]["ids"]["imdb"], "tt1375666");
    assert_eq!(stop["playback"]["positionMs"], 8_612_000);
    assert_eq!(stop["source"]["kind"], "JELLYFIN");
    let movie = by_event("emby.playback.stop");
    assert_eq!(movie["playback"]["media"]["title"], "蜘蛛侠：纵横宇宙");
    let episode = by_event("emby.playback.start");
    assert_eq!(episode["playback"]["media"]["episode"], 11);
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn signed_sources_relay_what_verifies_refuse_the_rest_with_401_and_drop_replays() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    source_hook(&app, &rx).await;
    let gh_secret = "It's a Secret to Everybody";
    let (gh_id, github) = source(
        &app,
        json!({"name": "GitHub", "kind": "GITHUB", "secret": gh_secret}),
    )
    .await;
    let body = br#"{"ref":"refs/heads/main","commits":[]}"#;
    let sig = github_signature(gh_secret, body);
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-hub-signature-256", sig.as_str()),
    ];
    let (status, answer) = post(&app, &github, &headers, &body[..]).await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("github.push")),
        "{answer}"
    );
    let (status, answer) = post(&app, &github, &headers, &body[..]).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("DUPLICATE"))
    );
    let forged = github_signature("another secret entirely", body);
    let mut bad = headers;
    bad[3].1 = forged.as_str();
    bad[2].1 = "another-delivery";
    let (status, _) = post(&app, &github, &bad, &body[..]).await;
    assert_eq!(status, 401);
    let log = requests(&app, &gh_id).await;
    assert_eq!(outcomes(&log), ["ACCEPTED", "DUPLICATE", "REJECTED"]);
    assert!(log[0]["message"]
        .as_str()
        .expect("why")
        .contains("X-Hub-Signature-256"));

    // A herald webhook's own deliveries, relayed by another: Standard Webhooks, the webhook's
    // secret as is.
    let sw_secret = "a-standard-webhooks-secret-of-some-length";
    let (sw_id, standard) = source(
        &app,
        json!({"name": "Billing", "kind": "STANDARD_WEBHOOKS", "secret": sw_secret}),
    )
    .await;
    let body = br#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;
    let now = chrono::Utc::now().timestamp();
    let signature = herald_verify::standard_signature(sw_secret.as_bytes(), "msg_1", now, body);
    let ts = now.to_string();
    let headers = [
        ("content-type", "application/json"),
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let (status, answer) = post(&app, &standard, &headers, &body[..]).await;
    assert_eq!(
        (status, answer["event"].as_str()),
        (200, Some("inbound.invoice.paid")),
        "{answer}"
    );
    let (status, _) = post(&app, &standard, &headers, &body[..]).await;
    assert_eq!(status, 200, "a replay is a duplicate");
    let stale = (now - 600).to_string();
    let old_sig = herald_verify::standard_signature(sw_secret.as_bytes(), "msg_2", now - 600, body);
    let replayed = [
        ("webhook-id", "msg_2"),
        ("webhook-timestamp", stale.as_str()),
        ("webhook-signature", old_sig.as_str()),
    ];
    let (status, _) = post(&app, &standard, &replayed, &body[..]).await;
    assert_eq!(status, 401, "an old signature is refused");
    // A captured signature under a new id, to get past the duplicate check: the id is signed.
    let swapped = [headers[0], ("webhook-id", "msg_3"), headers[2], headers[3]];
    let (status, _) = post(&app, &standard, &swapped, &body[..]).await;
    assert_eq!(
        status, 401,
        "a signature replayed under another id is refused"
    );
    assert_eq!(
        outcomes(&requests(&app, &sw_id).await),
        ["ACCEPTED", "DUPLICATE", "REJECTED", "REJECTED"]
    );

    let got = rx.wait_for(2).await;
    let relayed: Vec<Value> = got.iter().map(verified).collect();
    let push = relayed
        .iter()
        .find(|p| p["event"] == "github.push")
        .expect("push");
    assert_eq!(push["data"]["ref"], "refs/heads/main");
    assert!(
        push.get("raw").is_none(),
        "a signed kind's data is the body itself"
    );
}

#[tokio::test]
async fn copies_of_one_strava_event_arriving_at_once_become_one_event() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = source_hook(&app, &rx).await;
    let (id, path) = source(
        &app,
        json!({"name": "Strava", "kind": "STRAVA", "verifyToken": "t"}),
    )
    .await;
    let body = fixture("strava/event-activity-create.json");
    let copies = (0..20).map(|_| {
        post(
            &app,
            &path,
            &[("content-type", "application/json")],
            body.clone(),
        )
    });
    let answers = futures_util::future::join_all(copies).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let accepted = answers
        .iter()
        .filter(|(_, a)| a["outcome"] == "ACCEPTED")
        .count();
    assert_eq!(accepted, 1, "{answers:?}");
    assert_eq!(app.db.count("SELECT COUNT(*) FROM events").await, 1);
    assert_eq!(app.deliveries(&hook).await.len(), 1);
    let log = requests(&app, &id).await;
    assert_eq!(
        log.iter().filter(|r| r["outcome"] == "DUPLICATE").count(),
        19
    );
}
