//! `herald serve` stopped by SIGTERM while an attempt is in flight: once the grace period runs
//! out, the cut attempt is in the delivery log as `UNKNOWN`, and the delivery is made again
//! after the restart.

use crate::helpers::{
    cli_token, closed_port, eventually, graphql_at, herald_on, Process, Reply, TestDb,
    TestReceiver, DEADLINE, SECRET_A,
};
use serde_json::{json, Value};
use std::time::Duration;

/// `herald serve` on `db` at `address`, logging at `info`, with a grace period of 200 ms and
/// attempts that may take 10 s; once it says it listens.
async fn serve(db: &TestDb, address: &str) -> Process {
    let mut serve = Process::spawn_logged(
        herald_on(&db.url)
            .arg("serve")
            .env("RUST_LOG", "info")
            .env("HERALD_LISTEN", address)
            .env("HERALD_DEV", "true")
            .env("HERALD_DELIVERY_TIMEOUT_MS", "10000")
            .env("HERALD_SHUTDOWN_GRACE_MS", "200")
            .env("HERALD_POLL_MS", "50"),
    );
    serve.expect_line("herald is listening").await;
    serve
}

#[tokio::test]
async fn an_attempt_cut_off_by_sigterm_is_logged_as_unknown_and_made_again_after_restart() {
    let db = TestDb::new().await;
    let token = cli_token(&db.url).await;
    let receiver = TestReceiver::start().await;
    // The first attempt never gets an answer in time; the next one does.
    receiver.script([Reply::ok_after(Duration::from_secs(60))]);
    let address = format!("127.0.0.1:{}", closed_port());
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let graphql = |query: &'static str, variables: Value| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move { graphql_at(&http, &base, &token, query, variables).await }
    };

    let mut server = serve(&db, &address).await;
    let r = graphql(
        "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
        json!({"i": {"url": receiver.url(), "events": ["COLLECTION"], "secrets": [SECRET_A], "retries": 0}}),
    )
    .await;
    let hook = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    graphql(
        "mutation { createCollection(input: {name: \"Cut off\"}) { errors { message } } }",
        json!({}),
    )
    .await;
    let first = receiver.wait_for(1).await;

    // SIGTERM while the attempt hangs: herald waits out its grace period and stops.
    let status = server.stop_with("TERM").await;
    assert!(status.success(), "{status}: {}", server.log());

    // After the restart the delivery is made again at once, with the same nonce and body.
    let _server = serve(&db, &address).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(first[0].body, got[1].body);
    // The second attempt's record follows its answer.
    let log = eventually(DEADLINE, || async {
        let log = graphql(
            "query ($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 10) { nodes {
                status retries attempts { result message code } } } } } }",
            json!({ "id": hook }),
        )
        .await;
        let done = log["data"]["node"]["deliveries"]["nodes"][0]["status"] == "SUCCEEDED";
        if done {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;
    let deliveries = &log["data"]["node"]["deliveries"]["nodes"];
    assert_eq!(deliveries.as_array().map(Vec::len), Some(1), "{log}");
    let delivery = &deliveries[0];
    let attempts = &delivery["attempts"];
    assert_eq!(
        attempts[0],
        json!({ "result": "UNKNOWN", "message": "herald stopped during the attempt", "code": null }),
        "{log}"
    );
    assert_eq!(attempts[1]["result"], "SUCCESS", "{log}");
    assert_eq!(delivery["status"], "SUCCEEDED", "{log}");
}
