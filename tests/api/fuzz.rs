//! Generated hostile requests: a few hundred, from a seeded generator, against a real herald.
//! Malformed bodies, batches, bad tokens, odd content types, unknown fields, wrong types, deep
//! nesting, huge strings, and every mutation with input that is wrong in at least one way (bad
//! IDs, other channels' IDs, NULs, invalid URLs, too many secrets, negative retries, wrong enum
//! values…), sent as variables or written inline. Each must be answered below 500 with a JSON
//! body, with an `errors` array when it failed; herald must still answer afterwards, and its
//! database must be as it was.
//!
//! The seed is printed; `HERALD_FUZZ_SEED=<seed> cargo test --test api fuzz` replays a run.

use crate::helpers::{closed_url, spawn_app, token_for, TestApp, DEADLINE, SECRET_A, SECRET_B};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use herald::domain::content::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Requests in one run: enough to reach every generator many times, few enough for a few
/// seconds on either backend.
const REQUESTS: usize = 300;

#[tokio::test]
async fn hostile_requests_get_json_errors_and_change_nothing() {
    let seed = std::env::var("HERALD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("fuzz seed {seed}: HERALD_FUZZ_SEED={seed} cargo test --test api fuzz replays it");
    let app = spawn_app().await;
    let fixture = Fixture::new(&app).await;
    let before = snapshot(&app.db.url).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    for n in 0..REQUESTS {
        let case = generate(&mut rng, &fixture);
        let answer = send(&app, &case).await;
        if let Err(why) = answer.and_then(|(status, body)| check(&case, status, &body)) {
            panic!(
                "seed {seed}, request {n} ({}): {why}\nrequest body: {}",
                case.what,
                excerpt(&String::from_utf8_lossy(&case.body))
            );
        }
    }
    let elapsed = started.elapsed();

    assert_eq!(app.get("/healthz").await.status(), 200, "seed {seed}");
    let r = app.graphql("{ viewer { id } }", json!({})).await;
    assert!(r["data"]["viewer"]["id"].is_string(), "seed {seed}: {r}");
    let after = snapshot(&app.db.url).await;
    for (table, rows) in &before {
        assert_eq!(
            Some(rows),
            after.get(table),
            "seed {seed}: table {table} changed"
        );
    }
    assert_eq!(before.len(), after.len(), "seed {seed}: tables appeared");
    eprintln!("fuzz: {REQUESTS} requests in {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// One request and what it must get back.

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status, with an `errors` array.
    Status(u16),
    /// Refused: another status than 200, or an `errors` array at the top or in a mutation's
    /// payload.
    Failed,
    /// Any answer, as long as it is one (reads with odd arguments, whose result may be empty).
    Answer,
}

struct Case {
    what: String,
    authorization: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
}

impl Case {
    /// A request as the admin, in JSON.
    fn admin(fixture: &Fixture, what: impl Into<String>, body: Vec<u8>, expect: Expect) -> Case {
        Case {
            what: what.into(),
            authorization: Some(format!("Bearer {}", fixture.admin).into_bytes()),
            content_type: Some("application/json"),
            body,
            expect,
        }
    }
}

/// Sends `case`; returns the status and the body, or why there was no answer.
async fn send(app: &TestApp, case: &Case) -> Result<(u16, String), String> {
    let mut request = app
        .http()
        .post(app.url("/api/graphql"))
        .body(case.body.clone());
    if let Some(auth) = &case.authorization {
        let value = HeaderValue::from_bytes(auth).map_err(|e| format!("generator: {e}"))?;
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(content_type) = case.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let answer = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    };
    match tokio::time::timeout(DEADLINE, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("no answer (did herald panic?): {e}")),
        Err(_) => Err(format!("no answer within {DEADLINE:?}")),
    }
}

/// Whether an answer is acceptable for `case`.
fn check(case: &Case, status: u16, text: &str) -> Result<(), String> {
    let shown = || format!("{status} {}", excerpt(text));
    if status >= 500 {
        return Err(format!("a server error: {}", shown()));
    }
    let body: Value =
        serde_json::from_str(text).map_err(|_| format!("not a JSON body: {}", shown()))?;
    let errors = match body.get("errors") {
        None => None,
        Some(Value::Array(errors))
            if !errors.is_empty() && errors.iter().all(|e| e["message"].is_string()) =>
        {
            Some(errors)
        }
        Some(_) => return Err(format!("`errors` is not a list of messages: {}", shown())),
    };
    if status != 200 && errors.is_none() {
        return Err(format!("an error status without `errors`: {}", shown()));
    }
    let ok = match case.expect {
        Expect::Status(expected) => status == expected,
        Expect::Failed => status != 200 || errors.is_some() || payload_errors(&body),
        Expect::Answer => errors.is_some() || body.get("data").is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {:?}, got {}", case.expect, shown()))
    }
}

/// Whether a field of `data` is a mutation payload with errors.
fn payload_errors(body: &Value) -> bool {
    body["data"].as_object().is_some_and(|fields| {
        fields
            .values()
            .any(|f| f["errors"].as_array().is_some_and(|e| !e.is_empty()))
    })
}

fn excerpt(text: &str) -> String {
    if text.len() <= 600 {
        return text.to_owned();
    }
    let cut = (0..=600)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

// ---------------------------------------------------------------------------------------------
// What the requests aim at.

/// Real objects to aim at: a channel with content and webhooks (created after the content, so
/// nothing is queued for delivery and nothing moves while the requests run), and another
/// channel whose IDs must be "not found".
struct Fixture {
    admin: String,
    member: String,
    webhook: String,
    video: String,
    collection: String,
    child: String,
    users: Vec<String>,
    foreign: Foreign,
    /// A loopback URL where nothing listens: no request can reach beyond the machine.
    url: String,
}

struct Foreign {
    webhook: String,
    video: String,
    collection: String,
    user: String,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let url = closed_url();
        let hook = |events: Value, secret: &str, enabled: bool| json!({ "url": url, "events": events, "secrets": [secret], "enabled": enabled });
        let [video, collection, _draft] = made(
            app,
            &app.token,
            "mutation { v: createVideo(input: {title: \"Kept\", duration: 60}) { video { id } }
               c: createCollection(input: {name: \"Kept\"}) { collection { id } }
               d: createVideo(input: {title: \"Draft\", draft: true}) { video { id } } }",
            json!({}),
        )
        .await;
        // Mutations run in order: the webhooks come after the last event.
        let [child, webhook, _disabled] = made(
            app,
            &app.token,
            "mutation ($p: ID, $a: CreateWebhookInput!, $b: CreateWebhookInput!) {
               c: createCollection(input: {name: \"Child\", parentId: $p}) { collection { id } }
               a: createWebhook(input: $a) { webhook { id } }
               b: createWebhook(input: $b) { webhook { id } } }",
            json!({
                "p": collection,
                "a": hook(json!(["VIDEO", "COLLECTION"]), SECRET_A, true),
                "b": hook(json!(["VIDEO"]), SECRET_B, false),
            }),
        )
        .await;
        let intruder = token_for(&app.store, "other", "intruder@example.com", Role::Admin).await;
        let [their_video, their_collection, their_webhook] = made(
            app,
            &intruder,
            "mutation ($a: CreateWebhookInput!) {
               v: createVideo(input: {title: \"Theirs\"}) { video { id } }
               c: createCollection(input: {name: \"Theirs\"}) { collection { id } }
               a: createWebhook(input: $a) { webhook { id } } }",
            json!({ "a": hook(json!(["VIDEO"]), SECRET_A, true) }),
        )
        .await;
        let viewer = |token: String| async move {
            let r = app.graphql_as(&token, "{ viewer { id } }", json!({})).await;
            r["data"]["viewer"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("viewer: {r}"))
                .to_owned()
        };
        Fixture {
            admin: app.token.clone(),
            member: app.member_token.clone(),
            webhook,
            video,
            collection,
            child,
            users: vec![
                viewer(app.token.clone()).await,
                viewer(app.member_token.clone()).await,
            ],
            foreign: Foreign {
                webhook: their_webhook,
                video: their_video,
                collection: their_collection,
                user: viewer(intruder).await,
            },
            url,
        }
    }
}

/// Runs `mutation` with `token`; returns the ID of the object each of its fields made, in order.
async fn made<const N: usize>(
    app: &TestApp,
    token: &str,
    mutation: &str,
    variables: Value,
) -> [String; N] {
    let r = app.graphql_as(token, mutation, variables).await;
    let ids: Vec<String> = r["data"]
        .as_object()
        .map(|fields| {
            fields
                .values()
                .filter_map(|payload| payload.as_object()?.values().find_map(|o| o["id"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    ids.try_into()
        .unwrap_or_else(|_| panic!("{N} objects made: {r}"))
}

/// Every row of every table, as text, by table; `api_tokens.last_used_at` left out, as
/// authenticating a request stamps it.
async fn snapshot(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if url.starts_with("postgres") {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%'",
        )
        .fetch_all(&mut c)
        .await
        .expect("tables");
        for table in tables {
            let sql = format!("SELECT (to_jsonb(t) - 'last_used_at')::text FROM \"{table}\" AS t");
            let mut rows: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&mut c)
                .await
                .expect("rows");
            rows.sort();
            out.insert(table, rows);
        }
    } else {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .fetch_all(&mut c)
        .await
        .expect("tables");
        for table in tables {
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM pragma_table_info(?) WHERE name <> 'last_used_at'",
            )
            .bind(&table)
            .fetch_all(&mut c)
            .await
            .expect("columns");
            let row = columns
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            let mut rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\""))
                    .fetch_all(&mut c)
                    .await
                    .expect("rows");
            rows.sort();
            out.insert(table, rows);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The generators.

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn generate(rng: &mut StdRng, f: &Fixture) -> Case {
    match rng.random_range(0..100) {
        0..50 => bad_mutation(rng, f),
        50..62 => hostile_document(rng, f),
        62..72 => malformed_body(rng, f),
        72..82 => bad_authorization(rng, f),
        82..90 => odd_content_type(rng, f),
        90..95 => batch(rng, f),
        _ => odd_read(rng, f),
    }
}

/// A valid mutation that would change something: what the requests refused for their headers
/// carry, so that a refusal that let it through shows in the database.
fn harmful(f: &Fixture) -> Vec<u8> {
    json!({
        "query": "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
        "variables": { "i": { "webhookId": f.webhook, "enabled": false } },
    })
    .to_string()
    .into_bytes()
}

fn bad_authorization(rng: &mut StdRng, f: &Fixture) -> Case {
    let garbage: String = (0..rng.random_range(1..80))
        .map(|_| char::from(rng.random_range(b'!'..=b'~')))
        .collect();
    let mut flipped = f.admin.clone().into_bytes();
    let i = rng.random_range(0..flipped.len());
    flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8_lossy(&flipped).into_owned();
    let auth: Option<Vec<u8>> = match rng.random_range(0..12) {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(b"Bearer".to_vec()),
        3 => Some(b"Bearer ".to_vec()),
        4 => Some(format!("Bearer {garbage}").into_bytes()),
        5 => Some(format!("Token token=\"{garbage}\"").into_bytes()),
        6 => Some(format!("Bearer {flipped}").into_bytes()),
        7 => Some(format!("Bearer {}x", f.admin).into_bytes()),
        8 => Some(format!("Basic {}", BASE64.encode(format!("admin:{}", f.admin))).into_bytes()),
        9 => Some(format!("Bearer {}", "x".repeat(rng.random_range(1_000..20_000))).into_bytes()),
        10 => Some([b"Bearer ".as_slice(), &[0xE9, 0xFF, 0x80]].concat()),
        _ => Some(format!("Token token=\"{}", f.admin).into_bytes()),
    };
    let shown = auth
        .as_ref()
        .map(|a| excerpt(&String::from_utf8_lossy(a)))
        .unwrap_or_else(|| "none".into());
    Case {
        what: format!("Authorization {shown}"),
        authorization: auth,
        content_type: Some("application/json"),
        body: harmful(f),
        expect: Expect::Status(401),
    }
}

fn odd_content_type(rng: &mut StdRng, f: &Fixture) -> Case {
    let content_type = *pick(
        rng,
        &[
            None,
            Some(""),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/graphql"),
            Some("application/json; charset=latin1"),
            Some("application/json; charset=utf-16"),
            Some("application/jsonp"),
            Some("application/json-patch+json"),
            Some("*/*"),
            Some("application/json; charset"),
            Some("json"),
        ],
    );
    Case {
        what: format!("Content-Type {content_type:?}"),
        authorization: Some(format!("Bearer {}", f.admin).into_bytes()),
        content_type,
        body: harmful(f),
        expect: Expect::Status(415),
    }
}

fn malformed_body(rng: &mut StdRng, f: &Fixture) -> Case {
    let valid = harmful(f);
    let (what, body, expect): (&str, Vec<u8>, Expect) = match rng.random_range(0..16) {
        0 => ("empty", Vec::new(), Expect::Failed),
        1 => {
            let cut = rng.random_range(1..valid.len());
            ("truncated", valid[..cut].to_vec(), Expect::Failed)
        }
        2 => (
            "random bytes",
            (0..rng.random_range(1..500)).map(|_| rng.random()).collect(),
            Expect::Failed,
        ),
        3 => (
            "a lone surrogate",
            br#"{"query": "{ viewer { id } }\ud800"}"#.to_vec(),
            Expect::Failed,
        ),
        4 => ("a string", b"\"mutation { deleteWebhook }\"".to_vec(), Expect::Failed),
        5 => ("query is a number", br#"{"query": 5}"#.to_vec(), Expect::Failed),
        6 => ("query is null", br#"{"query": null}"#.to_vec(), Expect::Failed),
        7 => ("no query", br#"{"variables": {}}"#.to_vec(), Expect::Failed),
        8 => {
            let depth = rng.random_range(200..100_000);
            let x = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            (
                "deeply nested arrays",
                format!(r#"{{"query": "{{ viewer {{ id }} }}", "variables": {{"x": {x}}}}}"#)
                    .into_bytes(),
                Expect::Failed,
            )
        }
        9 => {
            let depth = rng.random_range(200..20_000);
            let x = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            (
                "deeply nested variables",
                format!(r#"{{"query": "{{ viewer {{ id }} }}", "variables": {{"x": {x}}}}}"#)
                    .into_bytes(),
                Expect::Failed,
            )
        }
        10 => (
            "not UTF-8 in a string",
            [br#"{"query": "{ viewer { id } } "#.as_slice(), &[0xC3, 0x28, 0xFF], b"\"}"].concat(),
            Expect::Failed,
        ),
        11 => (
            "a number out of range",
            br#"{"query": "{ viewer { id } }", "variables": {"n": 1e999}}"#.to_vec(),
            Expect::Failed,
        ),
        12 => (
            "trailing garbage",
            [valid.as_slice(), b"}}{{"].concat(),
            Expect::Failed,
        ),
        13 => (
            "over the body limit",
            format!(
                r#"{{"query": "{{ viewer {{ id }} }}", "x": "{}"}}"#,
                "a".repeat(herald::http::MAX_BODY_BYTES + rng.random_range(1..100_000))
            )
            .into_bytes(),
            Expect::Status(413),
        ),
        14 => (
            "variables are not an object",
            json!({ "query": "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }", "variables": pick(rng, &[json!("i"), json!([1, 2]), json!(7)]) })
                .to_string()
                .into_bytes(),
            Expect::Failed,
        ),
        _ => (
            "UTF-16 with a byte order mark",
            [&[0xFF, 0xFE][..], &valid.iter().flat_map(|&b| [b, 0]).collect::<Vec<u8>>()].concat(),
            Expect::Failed,
        ),
    };
    Case::admin(f, format!("malformed body: {what}"), body, expect)
}

fn batch(rng: &mut StdRng, f: &Fixture) -> Case {
    let items: Vec<Value> = (0..rng.random_range(1..40))
        .map(|_| {
            if rng.random_bool(0.5) {
                json!({ "query": "{ viewer { id } }" })
            } else {
                serde_json::from_slice(&harmful(f)).unwrap_or(Value::Null)
            }
        })
        .collect();
    Case::admin(
        f,
        format!("a batch of {}", items.len()),
        Value::Array(items).to_string().into_bytes(),
        Expect::Failed,
    )
}

/// Documents that are not valid GraphQL, or that the limits refuse.
fn hostile_document(rng: &mut StdRng, f: &Fixture) -> Case {
    let n = rng.random_range(17..400);
    let (what, query, expect): (&str, String, Expect) = match rng.random_range(0..16) {
        0 => ("an unknown root field", "{ nope }".into(), Expect::Failed),
        1 => ("an unknown field", "{ viewer { id nope } }".into(), Expect::Failed),
        2 => (
            "deeply nested selections",
            format!("{{ {}{} }}", "viewer { ".repeat(n * 10), "}".repeat(n * 10)),
            Expect::Failed,
        ),
        3 => (
            "nesting past the depth limit",
            format!(
                "{{ __schema {{ types {{ {}name{} }} }} }}",
                "fields { type { ofType { ".repeat(n / 3 + 6),
                " } } }".repeat(n / 3 + 6)
            ),
            Expect::Failed,
        ),
        4 => (
            "hundreds of aliases, over 5000 fields",
            format!(
                "{{ {} }}",
                (0..rng.random_range(720..800))
                    .map(|i| format!("a{i}: channel {{ id name subdomain url description createdAt }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Expect::Failed,
        ),
        5 => (
            "a fragment cycle",
            "query { ...A } fragment A on Query { ...B } fragment B on Query { viewer { id } ...A }".into(),
            Expect::Failed,
        ),
        6 => {
            let levels = rng.random_range(14..40);
            let mut q = String::from("query { ...F1 }");
            for l in 1..levels {
                q.push_str(&format!(" fragment F{l} on Query {{ ...F{m} ...F{m} }}", m = l + 1));
            }
            q.push_str(&format!(" fragment F{levels} on Query {{ viewer {{ id }} }}"));
            ("a fragment bomb", q, Expect::Failed)
        }
        7 => ("an unknown directive", "{ viewer @nope { id } }".into(), Expect::Failed),
        8 => ("a directive of the wrong type", "{ viewer @skip(if: \"yes\") { id } }".into(), Expect::Failed),
        9 => ("two anonymous operations", "{ viewer { id } } { channel { id } }".into(), Expect::Failed),
        10 => ("a subscription over POST", "subscription { nope }".into(), Expect::Failed),
        11 => ("a mutation as a query", "query { deleteWebhook(input: {webhookId: \"x\"}) { errors { message } } }".into(), Expect::Failed),
        12 => (
            "random characters",
            (0..rng.random_range(1..300))
                .map(|_| char::from(rng.random_range(b' '..=b'~')))
                .collect(),
            Expect::Failed,
        ),
        13 => ("a NUL in the document", "{ viewer { id } }\u{0}{ nope }".into(), Expect::Failed),
        14 => ("an undeclared variable", "{ node(id: $x) { id } }".into(), Expect::Failed),
        _ => (
            "a missing variable",
            "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }".into(),
            Expect::Failed,
        ),
    };
    let mut body = json!({ "query": query });
    if rng.random_bool(0.2) {
        body["operationName"] = json!(pick(rng, &["Nope", "", "\u{0}"]));
    }
    Case::admin(
        f,
        format!("document: {what}"),
        body.to_string().into_bytes(),
        expect,
    )
}

/// Reads with odd arguments: they may find nothing, or be refused, but they change nothing.
fn odd_read(rng: &mut StdRng, f: &Fixture) -> Case {
    let id = bad_id(rng, f, "Webhook");
    let (query, variables) = match rng.random_range(0..7) {
        0 => ("query ($id: ID!) { node(id: $id) { id __typename } }", json!({ "id": id })),
        1 => (
            "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": (0..rng.random_range(0..150)).map(|_| bad_id(rng, f, "Video")).collect::<Vec<_>>() }),
        ),
        2 => (
            "query ($n: Int) { channel { webhooks(first: $n) { nodes { id } } } }",
            json!({ "n": pick(rng, &[json!(-1), json!(0), json!(101), json!(1_000_000), json!(2_147_483_648_i64), json!("ten")]) }),
        ),
        3 => (
            "query ($a: String) { channel { videos(after: $a) { nodes { id } } } }",
            json!({ "a": pick(rng, &[json!("garbage"), json!("\u{0}"), json!(BASE64.encode("cursor:-1")), json!("x".repeat(50_000))]) }),
        ),
        4 => (
            "query ($id: ID!, $s: WebhookDeliveryStatus) { node(id: $id) { ... on Webhook { deliveries(status: $s) { nodes { id } } } } }",
            json!({ "id": f.webhook, "s": pick(rng, &["NOPE", "succeeded", ""]) }),
        ),
        5 => (
            "query ($id: ID!, $n: [String!]) { node(id: $id) { ... on Webhook { deliveries(nonces: $n) { nodes { id } } } } }",
            json!({ "id": f.webhook, "n": [pick(rng, &["\u{0}", "zz", "", "0123456789012345678901234567890123456789"])] }),
        ),
        _ => (
            "query ($e: WebhookEvent) { channel { webhooks(event: $e, enabled: true) { nodes { id } } } }",
            json!({ "e": pick(rng, &["video", "NOPE", "VIDEO_ADDED_TO_CHANNEL"]) }),
        ),
    };
    let body = json!({ "query": query, "variables": variables })
        .to_string()
        .into_bytes();
    Case::admin(f, format!("read: {query}"), body, Expect::Answer)
}

// ---------------------------------------------------------------------------------------------
// Mutations with bad input.

/// An ID that names no object of `kind` in the admin's channel: garbage, another spelling, a
/// row that does not exist, another type's object, another channel's object.
fn bad_id(rng: &mut StdRng, f: &Fixture, kind: &str) -> String {
    let other = |k: &str| match k {
        "Video" => f.video.clone(),
        "Collection" => f.collection.clone(),
        "User" => f.users[0].clone(),
        _ => f.webhook.clone(),
    };
    match rng.random_range(0..14) {
        0 => String::new(),
        1 => "not base64!".into(),
        2 => "\u{0}".into(),
        3 => BASE64.encode(format!("{kind}-0")),
        4 => BASE64.encode(format!("{kind}--1")),
        5 => BASE64.encode(format!("{kind}-99999999999999999999999")),
        6 => BASE64.encode(format!("{kind}-4242")),
        7 => BASE64.encode(format!("{kind}-1\u{0}")),
        8 => "x".repeat(rng.random_range(1_000..50_000)),
        9 => other(if kind == "Video" {
            "Collection"
        } else {
            "Video"
        }),
        10 => other(if kind == "Webhook" { "User" } else { "Webhook" }),
        11 => {
            BASE64
                .encode(format!("{kind}-1"))
                .trim_end_matches('=')
                .to_owned()
                + "!"
        }
        _ => match kind {
            "Video" => f.foreign.video.clone(),
            "Collection" => f.foreign.collection.clone(),
            "User" => f.foreign.user.clone(),
            _ => f.foreign.webhook.clone(),
        },
    }
}

const NUL: &str = "a\u{0}b";

fn long(n: usize) -> String {
    "é".repeat(n)
}

/// A string that is not a valid webhook URL.
fn bad_url(rng: &mut StdRng) -> Value {
    json!(match rng.random_range(0..14) {
        0 => String::new(),
        1 => "not a url".into(),
        2 => "ftp://127.0.0.1/hook".into(),
        3 => "https://user:password@127.0.0.1/hook".into(),
        4 => format!(
            "https://127.0.0.1/{}",
            "a".repeat(rng.random_range(2_040..10_000))
        ),
        5 => "javascript:alert(1)".into(),
        6 => format!("https://127.0.0.1/{NUL}"),
        7 => "herald-listen://session".into(),
        8 => "//127.0.0.1/hook".into(),
        9 => "https://".into(),
        10 => "file:///etc/passwd".into(),
        11 => "https://127.0.0.1:99999/hook".into(),
        12 => format!("https://127.0.0.1/{}", long(400)),
        _ => "data:text/plain,hello".into(),
    })
}

fn bad_secrets(rng: &mut StdRng) -> Value {
    match rng.random_range(0..8) {
        0 => json!([]),
        1 => json!((0..6).map(|i| format!("{SECRET_A}{i}")).collect::<Vec<_>>()),
        2 => json!(["too short"]),
        3 => json!(["s".repeat(257)]),
        4 => json!([SECRET_A, SECRET_B, SECRET_A]),
        5 => json!([format!("{SECRET_A}{NUL}")]),
        6 => json!([5]),
        _ => json!([null]),
    }
}

/// One of `values`.
fn one_of(rng: &mut StdRng, values: &[Value]) -> Value {
    pick(rng, values).clone()
}

fn bad_retries(rng: &mut StdRng) -> Value {
    one_of(
        rng,
        &[
            json!(-1),
            json!(11),
            json!(-2_147_483_648_i64),
            json!(2_147_483_648_i64),
            json!(1.5),
            json!("3"),
            json!(true),
        ],
    )
}

fn bad_text(rng: &mut StdRng, max: usize) -> Value {
    match rng.random_range(0..4) {
        0 => json!(NUL),
        1 => json!(long(max + 1)),
        2 => json!("x".repeat(rng.random_range(max + 1..max + 20_000))),
        _ => json!(7),
    }
}

/// A required text that is empty, blank or otherwise wrong.
fn bad_required_text(rng: &mut StdRng, max: usize) -> Value {
    match rng.random_range(0..3) {
        0 => json!(""),
        1 => json!(" \t\n "),
        _ => bad_text(rng, max),
    }
}

fn bad_ids(rng: &mut StdRng, f: &Fixture, kind: &str) -> Value {
    match rng.random_range(0..4) {
        0 => json!((0..101)
            .map(|i| BASE64.encode(format!("{kind}-{i}")))
            .collect::<Vec<_>>()),
        1 => json!([null]),
        _ => json!([bad_id(rng, f, kind)]),
    }
}

/// A mutation, an input made valid from the fixture, and the ways to spoil that input: each
/// sets a field to a wrong value, or removes a required one.
struct Mutation {
    name: &'static str,
    valid: Value,
    spoilers: Vec<(&'static str, Option<Value>)>,
    /// Admins only: a member is refused even with a valid input.
    admin_only: bool,
}

impl Mutation {
    fn new(name: &'static str, valid: Value, admin_only: bool) -> Mutation {
        Mutation {
            name,
            valid,
            spoilers: Vec::new(),
            admin_only,
        }
    }

    fn spoil(mut self, field: &'static str, wrong: Value) -> Mutation {
        self.spoilers.push((field, Some(wrong)));
        self
    }

    fn require(mut self, field: &'static str) -> Mutation {
        self.spoilers.push((field, None));
        self
    }

    /// Spoilers of the fields that createWebhook and updateWebhook share.
    fn webhook_fields(self, rng: &mut StdRng) -> Mutation {
        let events = [
            json!([]),
            json!(["NOPE"]),
            json!(["video"]),
            json!([null]),
            json!(5),
        ];
        // The last token is a fine one, but nothing answers the handshake at the URL.
        let tokens = [
            json!(""),
            json!(NUL),
            json!("t".repeat(257)),
            json!("token"),
        ];
        self.spoil("url", bad_url(rng))
            .spoil("description", bad_text(rng, 1000))
            .spoil("events", one_of(rng, &events))
            .spoil("secrets", bad_secrets(rng))
            .spoil("retries", bad_retries(rng))
            .spoil("enabled", one_of(rng, &[json!("yes"), json!(1)]))
            .spoil("verifyToken", one_of(rng, &tokens))
            .spoil("nope", json!(1))
    }

    /// Spoilers of the fields that createVideo and updateVideo share.
    fn video_fields(self, rng: &mut StdRng, f: &Fixture) -> Mutation {
        let visibility = [json!("PUBLIC"), json!("on_channel"), json!(1)];
        let at = [
            json!("yesterday"),
            json!("2024-13-45T00:00:00Z"),
            json!(""),
            json!(5),
        ];
        let duration = [json!(-1), json!(31_622_401), json!(1e300), json!("long")];
        self.spoil("title", bad_required_text(rng, 300))
            .spoil("summary", bad_text(rng, 10_000))
            .spoil("visibility", one_of(rng, &visibility))
            .spoil("presentedAt", one_of(rng, &at))
            .spoil("duration", one_of(rng, &duration))
            .spoil("collectionIds", bad_ids(rng, f, "Collection"))
            .spoil("taggedUserIds", bad_ids(rng, f, "User"))
            .spoil("nope", json!(1))
    }

    /// Spoilers of the fields that createCollection and updateCollection share.
    fn collection_fields(self, rng: &mut StdRng, f: &Fixture) -> Mutation {
        self.spoil("name", bad_required_text(rng, 255))
            .spoil("description", bad_text(rng, 1000))
            .spoil("secret", one_of(rng, &[json!("yes"), json!(0)]))
            .spoil("parentId", json!(bad_id(rng, f, "Collection")))
            .spoil("adminIds", bad_ids(rng, f, "User"))
            .spoil("memberIds", bad_ids(rng, f, "User"))
            .spoil("nope", json!(1))
    }

    /// A mutation whose input is one ID of `kind` (valid: the fixture's object of that kind).
    fn of_id(
        rng: &mut StdRng,
        f: &Fixture,
        name: &'static str,
        field: &'static str,
        kind: &str,
    ) -> Mutation {
        let valid = match kind {
            "Video" => json!({ field: f.video }),
            "Collection" => json!({ field: f.collection }),
            "Webhook" => json!({ field: f.webhook }),
            _ => json!({}),
        };
        let admin_only = kind == "Webhook" || kind == "WebhookDelivery";
        Mutation::new(name, valid, admin_only).spoil(field, json!(bad_id(rng, f, kind)))
    }
}

fn mutation(rng: &mut StdRng, f: &Fixture) -> Mutation {
    let mut user = || pick(rng, &f.users).clone();
    let (admin, member) = (user(), user());
    match rng.random_range(0..13) {
        0 => Mutation::new(
            "createWebhook",
            json!({ "url": f.url, "events": ["VIDEO"], "secrets": [SECRET_B], "retries": 3,
                    "description": "d", "enabled": true }),
            true,
        )
        .webhook_fields(rng)
        .require("url")
        .require("events")
        .require("secrets"),
        1 => Mutation::new(
            "updateWebhook",
            json!({ "webhookId": f.webhook, "url": f.url, "description": "changed",
                    "events": ["COLLECTION"], "secrets": [SECRET_B], "retries": 5, "enabled": false }),
            true,
        )
        .webhook_fields(rng)
        .spoil("webhookId", json!(bad_id(rng, f, "Webhook")))
        .require("webhookId"),
        2 => Mutation::of_id(rng, f, "deleteWebhook", "webhookId", "Webhook"),
        3 => Mutation::of_id(rng, f, "testWebhook", "webhookId", "Webhook"),
        4 => Mutation::of_id(
            rng,
            f,
            "redeliverWebhookDelivery",
            "deliveryId",
            "WebhookDelivery",
        ),
        5 => Mutation::new(
            "createVideo",
            json!({ "title": "New", "summary": "s", "visibility": "PRIVATE",
                    "presentedAt": "2024-01-01T00:00:00Z", "duration": 12.5,
                    "collectionIds": [f.collection], "taggedUserIds": [member] }),
            false,
        )
        .video_fields(rng, f)
        .require("title")
        .spoil("draft", json!("no")),
        6 => Mutation::of_id(rng, f, "publishVideo", "videoId", "Video"),
        7 => Mutation::new(
            "updateVideo",
            json!({ "videoId": f.video, "title": "Changed", "summary": "changed",
                    "visibility": "PRIVATE", "duration": 1, "collectionIds": [f.child],
                    "taggedUserIds": [member] }),
            false,
        )
        .video_fields(rng, f)
        .spoil("videoId", json!(bad_id(rng, f, "Video"))),
        8 => Mutation::of_id(rng, f, "deleteVideo", "videoId", "Video"),
        9 => Mutation::new(
            "createCollection",
            json!({ "name": "New", "description": "d", "secret": true, "parentId": f.collection,
                    "adminIds": [admin], "memberIds": [member] }),
            false,
        )
        .collection_fields(rng, f)
        .require("name"),
        10 => Mutation::new(
            "updateCollection",
            json!({ "collectionId": pick(rng, &[&f.collection, &f.child]), "name": "Changed",
                    "description": "changed", "secret": true, "parentId": null,
                    "adminIds": [admin], "memberIds": [member] }),
            false,
        )
        .collection_fields(rng, f)
        .spoil("collectionId", json!(bad_id(rng, f, "Collection")))
        // Its own parent, or its child's child.
        .spoil("parentId", json!(f.child)),
        11 => Mutation::of_id(rng, f, "deleteCollection", "collectionId", "Collection"),
        _ => Mutation::new(
            "reportListenerAttempt",
            json!({ "durationMs": 5, "statusCode": 200 }),
            true,
        )
        .spoil("deliveryId", json!(bad_id(rng, f, "WebhookDelivery"))),
    }
}

fn bad_mutation(rng: &mut StdRng, f: &Fixture) -> Case {
    let m = mutation(rng, f);
    let mut input = m.valid.as_object().cloned().unwrap_or_default();
    // A member asking for an admin-only mutation is refused whatever the input.
    let as_member = m.admin_only && rng.random_bool(0.2);
    let spoils = if as_member {
        rng.random_range(0..=1)
    } else {
        rng.random_range(1..=3)
    };
    let mut spoiled = Vec::new();
    for _ in 0..spoils {
        let (field, value) = pick(rng, &m.spoilers).clone();
        match value {
            Some(v) => input.insert(field.to_owned(), v),
            None => input.remove(field),
        };
        spoiled.push(field);
    }
    if rng.random_bool(0.3) {
        let id = pick(
            rng,
            &[json!("c-1"), json!(NUL), json!(long(5_000)), json!(5)],
        )
        .clone();
        input.insert("clientMutationId".into(), id);
    }
    let mut input_type = m.name.to_owned();
    input_type[..1].make_ascii_uppercase();
    let selection = "clientMutationId errors { message path }";
    let inline = rng.random_bool(0.3);
    let body = if inline {
        let query = format!(
            "mutation {{ {}(input: {}) {{ {selection} }} }}",
            m.name,
            literal(&Value::Object(input), false)
        );
        json!({ "query": query })
    } else {
        let query = format!(
            "mutation ($i: {input_type}Input!) {{ {}(input: $i) {{ {selection} }} }}",
            m.name
        );
        json!({ "query": query, "variables": { "i": Value::Object(input) } })
    };
    let expect = if m.name == "reportListenerAttempt" && !as_member {
        // An unknown delivery's report is taken as one nobody waits for (`accepted: false`).
        Expect::Answer
    } else {
        Expect::Failed
    };
    let token = if as_member { &f.member } else { &f.admin };
    Case {
        what: format!(
            "{}{} ({}), spoiled: {}",
            m.name,
            if as_member { " as a member" } else { "" },
            if inline { "inline" } else { "variables" },
            spoiled.join(", ")
        ),
        authorization: Some(format!("Token token=\"{token}\"").into_bytes()),
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        expect,
    }
}

/// `value` written as a GraphQL input literal; strings of the enum fields are written bare.
fn literal(value: &Value, is_enum: bool) -> String {
    match value {
        Value::String(s)
            if is_enum
                && !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            s.clone()
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| literal(i, is_enum))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", literal(v, k == "events" || k == "visibility")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // JSON's scalars are written as GraphQL's, escapes included.
        other => other.to_string(),
    }
}
