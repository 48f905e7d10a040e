//! Hostile requests to ingest URLs: malformed multipart bodies, huge parts, wrong content
//! types, invalid UTF-8, deep JSON. Each gets a clear 4xx, the process goes on, and nothing is
//! stored but the request's `REJECTED` line.

use crate::helpers::{spawn_app, TestApp};
use crate::sources::{post, requests, source};
use serde_json::json;

/// A multipart body with one part named `name`, `boundary` as declared.
fn part(boundary: &str, name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
        .into_bytes();
    b.extend_from_slice(content);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

/// Bodies that are not JSON objects, in as many ways as a provider or an attacker might send.
fn broken_json() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"{".to_vec(),
        b"{\"a\":}".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"{\"NotificationType\": \"\xc3\x28\"}".to_vec(),
        b"\x00\x00\x00".to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(300), "}".repeat(300)).into_bytes(),
    ];
    for i in 0..60 {
        // Truncations of a real body.
        let whole =
            br#"{"Event":"playback.stop","User":{"Name":"admin","Id":"1"},"Server":{"Id":"s"}}"#;
        bodies.push(whole[..(i * 4 / 3).min(whole.len() - 1)].to_vec());
    }
    bodies
}

/// Multipart bodies Plex could never have sent, with the content type each claims.
fn broken_multipart() -> Vec<(String, Vec<u8>)> {
    let b = "hostile-boundary";
    let ct = format!("multipart/form-data; boundary={b}");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("multipart/form-data".into(), part(b, "payload", b"{}")),
        (
            "multipart/form-data; boundary=".into(),
            part(b, "payload", b"{}"),
        ),
        (ct.clone(), b"no boundary anywhere".to_vec()),
        (
            ct.clone(),
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{{\"event\":"
            )
            .into_bytes(),
        ),
        (ct.clone(), part(b, "thumb", b"\xff\xd8\xff")),
        (ct.clone(), part(b, "payload", b"\xff\xfe not UTF-8")),
        (
            ct.clone(),
            part(b, "payload", b"{\"event\": \"media play\"}"),
        ),
        (
            ct.clone(),
            part(b, "payload", b"{\"Account\": {\"id\": 1}}"),
        ),
        (ct.clone(), part(b, "payload", "[".repeat(5000).as_bytes())),
        (
            ct.clone(),
            [part(b, "payload", b"{}"), part(b, "payload", b"{}")].concat(),
        ),
        (
            "application/json".into(),
            b"{\"event\":\"media.play\"}".to_vec(),
        ),
        ("text/plain".into(), b"payload={}".to_vec()),
        (
            "application/x-www-form-urlencoded".into(),
            b"payload=%7B%7D".to_vec(),
        ),
    ];
    let mut many = Vec::new();
    for i in 0..40 {
        many.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    many.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    cases.push((ct.clone(), many));
    for i in 0..60 {
        // Every cut of a real request's head.
        let whole = part(
            b,
            "payload",
            br#"{"event":"media.play","Account":{"id":1,"title":"elan"}}"#,
        );
        cases.push((ct.clone(), whole[..(i * 3).min(whole.len() - 10)].to_vec()));
    }
    cases
}

async fn refused(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let (status, answer) = post(app, path, &[("content-type", content_type)], body).await;
    assert!(
        (400..500).contains(&status),
        "{content_type}: answered {status} {answer}"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    status
}

#[tokio::test]
async fn hundreds_of_malformed_requests_are_each_refused_and_logged_and_nothing_else_is_stored() {
    let app = spawn_app().await;
    let (plex_id, plex) = source(&app, json!({"name": "Plex", "kind": "PLEX"})).await;
    let (_, jellyfin) = source(&app, json!({"name": "Jellyfin", "kind": "JELLYFIN"})).await;
    let (_, emby) = source(&app, json!({"name": "Emby", "kind": "EMBY"})).await;
    let (_, strava) = source(
        &app,
        json!({"name": "Strava", "kind": "STRAVA", "verifyToken": "t"}),
    )
    .await;
    let mut sent = 0;
    for (content_type, body) in broken_multipart() {
        refused(&app, &plex, &content_type, body).await;
        sent += 1;
    }
    for path in [&jellyfin, &emby, &strava] {
        for body in broken_json() {
            refused(&app, path, "application/json", body).await;
            sent += 1;
        }
    }
    for content_type in [
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ] {
        refused(&app, &emby, content_type, b"data=%7B".to_vec()).await;
        sent += 1;
    }
    assert!(sent >= 250, "{sent} requests");

    // Past the body limit: 413, whatever the part.
    let huge = part(
        "b",
        "thumb",
        &vec![b'x'; herald::ingest::MAX_BODY_BYTES + 1],
    );
    assert_eq!(
        refused(&app, &plex, "multipart/form-data; boundary=b", huge).await,
        413
    );
    sent += 1;

    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the process is fine"
    );
    assert_eq!(app.db.count("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(app.db.count("SELECT COUNT(*) FROM source_keys").await, 0);
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM source_requests WHERE outcome = 'REJECTED' AND event_id IS NULL")
            .await,
        sent,
        "one REJECTED line per request, and nothing else"
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) FROM source_requests").await,
        sent
    );
    let log = requests(&app, &plex_id).await;
    assert_eq!(log[0]["status"], 413);
    assert!(
        log[0]["message"]
            .as_str()
            .expect("why")
            .contains("larger than"),
        "{}",
        log[0]
    );
}
