//! GraphiQL at `GET /api/graphql`: every file it needs comes from herald, so it works without
//! internet access. One test drives a real headless Chromium in which every host but loopback is
//! unreachable; it needs `chromium` and `chromedriver` and is skipped without them, unless
//! `HERALD_REQUIRE_BROWSER=1` (as in CI) makes their absence a failure.

use crate::helpers::{eventually, loaded_urls, screenshot, spawn_app, Browser, DEADLINE};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The asset paths the page loads, as written in it (relative to `/api/graphql`).
fn asset_paths(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("graphql/assets/"))
        .map(|s| format!("/api/{s}"))
        .collect()
}

#[tokio::test]
async fn graphiql_is_served_by_herald_gzipped_and_cached_for_a_year() {
    let app = spawn_app().await;
    let page = app.get("/api/graphql").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(!html.contains("//"), "no absolute URL in the page: {html}");
    assert!(html.contains("Bearer <paste your token>"), "{html}");

    let paths = asset_paths(&html);
    assert_eq!(
        paths.len(),
        4,
        "React, ReactDOM, GraphiQL's script and style: {paths:?}"
    );
    for path in &paths {
        let gzip = app
            .http()
            .get(app.url(path))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .expect("asset");
        assert_eq!(gzip.status(), 200, "{path}");
        assert_eq!(gzip.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(gzip.headers()["vary"], "accept-encoding", "{path}");
        assert_eq!(
            gzip.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        let compressed = gzip.bytes().await.expect("body");
        assert_eq!(&compressed[..2], &[0x1f, 0x8b], "{path} is gzip");

        let plain = app.get(path).await;
        assert_eq!(plain.status(), 200, "{path}");
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let expected_type = if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(plain.headers()["content-type"], expected_type, "{path}");
        let body = plain.bytes().await.expect("body");
        assert!(
            body.len() > compressed.len(),
            "{path}: {} bytes plain, {} gzip'ed",
            body.len(),
            compressed.len()
        );
    }

    let missing = app.get("/api/graphql/assets/graphiql-0.0.1.min.js").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn graphiql_runs_a_query_in_a_browser_cut_off_from_the_internet() {
    let app = spawn_app().await;
    let expected = app.graphql("{ viewer { id } }", json!({})).await;
    // Started last: nothing may fail between here and `run`, which always quits it.
    let Some(browser) = Browser::start().await else {
        return;
    };
    let page = app.url("/api/graphql");
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let token = app.token.clone();
    let origin = app.url("/");

    browser
        .run(move |client| async move {
            // The check means something only if a CDN would be out of reach.
            let cdn = client
                .goto("https://unpkg.com/graphiql@3.9.0/graphiql.min.js")
                .await;
            let error = cdn
                .expect_err("the browser reached the internet")
                .to_string();
            assert!(error.contains("net::ERR_"), "{error}");

            client.goto(&page).await.expect("open GraphiQL");
            client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::Css(".graphiql-query-editor .CodeMirror"))
                .await
                .expect("GraphiQL renders its query editor");
            let headers = editor_text(&client, "headers").await;
            assert!(headers.contains("Bearer <paste your token>"), "{headers}");
            // Loading the schema with the placeholder shows what to do.
            wait_for_response(&client, |r| {
                r["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Paste an API token"))
            })
            .await;
            screenshot(&client, &screenshots.join("graphiql-opened.png")).await;

            set_query(&client, "{ viewer { id } }").await;
            set_editor(
                &client,
                "headers",
                &json!({ "Authorization": format!("Bearer {token}") }).to_string(),
            )
            .await;
            run(&client).await;
            wait_for_response(&client, |r| *r == expected).await;

            // The schema is loaded again with the pasted token: the docs list the root types.
            client
                .find(Locator::Css(
                    ".graphiql-sidebar button[aria-label$='Documentation Explorer']",
                ))
                .await
                .expect("docs button")
                .click()
                .await
                .expect("open the docs");
            let root = client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::Css(".graphiql-doc-explorer-root-type"))
                .await
                .expect("the docs show the schema");
            assert!(root.text().await.expect("text").contains("query"));
            screenshot(&client, &screenshots.join("graphiql-result.png")).await;

            // Subscriptions go over the WebSocket, with the token from the same headers.
            set_query(&client, "subscription { listen { kind } }").await;
            run(&client).await;
            wait_for_response(&client, |r| r["data"]["listen"]["kind"] == "READY").await;

            for url in loaded_urls(&client).await {
                assert!(url.starts_with(&origin), "the page loaded {url}");
            }
        })
        .await;
}

async fn run(client: &Client) {
    client
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("run button")
        .click()
        .await
        .expect("click run");
}

/// A GraphiQL editor, `query`, `headers` or `response`, found by the class GraphiQL gives it.
fn editor_selector(editor: &str) -> &'static str {
    match editor {
        "query" => ".graphiql-query-editor .CodeMirror",
        "headers" => ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror",
        "response" => ".graphiql-response .CodeMirror",
        other => panic!("no editor {other}"),
    }
}

async fn editor_text(client: &Client, editor: &str) -> String {
    client
        .execute(
            "return document.querySelector(arguments[0]).CodeMirror.getValue()",
            vec![json!(editor_selector(editor))],
        )
        .await
        .unwrap_or_else(|e| panic!("read the {editor} editor: {e}"))
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Replaces an editor's text the way typing does: GraphiQL sees CodeMirror's change events.
async fn set_editor(client: &Client, editor: &str, text: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).CodeMirror.setValue(arguments[1])",
            vec![json!(editor_selector(editor)), json!(text)],
        )
        .await
        .unwrap_or_else(|e| panic!("write the {editor} editor: {e}"));
}

/// Replaces the query, then waits until GraphiQL has parsed it (it does so 100 ms after an
/// edit): until then, the run button would run the previous one.
async fn set_query(client: &Client, query: &str) {
    set_editor(client, "query", query).await;
    eventually(DEADLINE, || async {
        let parsed = client
            .execute(
                "return document.querySelector(arguments[0]).CodeMirror.documentAST?.loc?.source?.body",
                vec![json!(editor_selector("query"))],
            )
            .await
            .expect("read the parsed query");
        if parsed == json!(query) {
            Ok(())
        } else {
            Err(format!("GraphiQL has parsed {parsed}, not {query:?}"))
        }
    })
    .await;
}

/// The JSON in GraphiQL's response pane, once `done` holds for it; fails at the deadline.
async fn wait_for_response(client: &Client, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    eventually(DEADLINE, || async move {
        let text = editor_text(client, "response").await;
        match serde_json::from_str::<Value>(&text).ok().filter(done) {
            Some(response) => Ok(response),
            None => Err(format!("GraphiQL's response pane shows {text:?}")),
        }
    })
    .await
}
