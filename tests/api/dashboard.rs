//! The dashboard at `/dashboard`: sign-in with an admin's API token, the session cookie and
//! its end, the checks on every change (form token, origin), escaping, channels kept apart;
//! and, in a real headless Chromium, an admin finding a failed delivery and redelivering it.

use crate::helpers::{
    collection, eventually, first_is, loaded_urls, screenshot, spawn_app, spawn_app_with,
    token_for, webhook_id, Browser, Reply, TestApp, TestReceiver, DEADLINE, SECRET_A,
};
use fantoccini::Locator;
use herald::domain::content::Role;
use herald::domain::ids::{DeliveryId, Typed};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;
use std::path::PathBuf;

/// A client that shows each answer as it is, redirects included.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `POST /dashboard/sign-in` with `token`, from herald's own page.
async fn sign_in(app: &TestApp, token: &str) -> reqwest::Response {
    client()
        .post(app.url("/dashboard/sign-in"))
        .header("Origin", app.url(""))
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign in")
}

/// The `Set-Cookie` of the cookie `name`, whole.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// A signed-in browser, reduced to its session cookie.
struct Session<'a> {
    app: &'a TestApp,
    cookie: String,
}

impl<'a> Session<'a> {
    async fn of(app: &'a TestApp, token: &str) -> Session<'a> {
        let answer = sign_in(app, token).await;
        assert_eq!(answer.status(), 303, "an admin's token signs in");
        let cookie = set_cookie(answer.headers(), "herald_session").expect("a session cookie");
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        Session { app, cookie }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(self.app.url(path))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("GET")
    }

    /// A page's status and HTML.
    async fn page(&self, path: &str) -> (u16, String) {
        let answer = self.get(path).await;
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("HTML"))
    }

    /// The session's form token, as the pages carry it.
    async fn csrf(&self) -> String {
        let (status, html) = self.page("/dashboard/webhooks").await;
        assert_eq!(status, 200, "{html}");
        let at = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
        html[at..].split('"').next().expect("its end").to_owned()
    }

    /// `POST path` with `fields`, from `origin` (herald's own when `None`): the answer.
    async fn send(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        client()
            .post(self.app.url(path))
            .header("Cookie", &self.cookie)
            .header(
                "Origin",
                origin.map_or_else(|| self.app.url(""), str::to_owned),
            )
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// [`Session::send`]'s status.
    async fn post(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> u16 {
        self.send(path, fields, origin).await.status().as_u16()
    }
}

#[tokio::test]
async fn only_an_admins_token_signs_in() {
    let app = spawn_app().await;
    let unknown = sign_in(&app, "hrld_not-a-token").await;
    assert_eq!(unknown.status(), 401);
    assert!(set_cookie(unknown.headers(), "herald_session").is_none());
    assert!(unknown
        .text()
        .await
        .expect("page")
        .contains("unknown, or it was revoked"));

    let member = sign_in(&app, &app.member_token).await;
    assert_eq!(member.status(), 403);
    assert!(set_cookie(member.headers(), "herald_session").is_none());
    let page = member.text().await.expect("page");
    assert!(page.contains("Only channel admins may sign in"), "{page}");

    let empty = sign_in(&app, "  ").await;
    assert_eq!(empty.status(), 401);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_scoped_to_the_dashboard() {
    let app = spawn_app().await;
    let answer = sign_in(&app, &app.token).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()[LOCATION], "/dashboard/webhooks");
    let cookie = set_cookie(answer.headers(), "herald_session").expect("cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "dev mode serves plain HTTP: {cookie}"
    );
    // Only a hash of the session id is kept.
    let id = cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .expect("id")
        .1;
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT COUNT(*) FROM dashboard_sessions WHERE session_hash = '{id}'"
            ))
            .await,
        0
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM dashboard_sessions")
            .await,
        1
    );

    let session = Session {
        app: &app,
        cookie: cookie.split(';').next().expect("pair").to_owned(),
    };
    let page = session.get("/dashboard/webhooks").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII");
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self'"),
        "{csp}"
    );
    assert!(page.text().await.expect("page").contains("Example Channel"));

    let anonymous = client()
        .get(app.url("/dashboard/webhooks"))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()[LOCATION], "/dashboard/sign-in");
}

#[tokio::test]
async fn outside_dev_mode_the_session_cookie_is_secure() {
    let app = spawn_app_with(|c| c.dev = false).await;
    let answer = sign_in(&app, &app.token).await;
    let cookie = set_cookie(answer.headers(), "herald_session").expect("cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_change_needs_the_sessions_form_token_and_herald_as_its_origin() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 0).await;
    let disable = format!("/dashboard/webhooks/{}/disable", webhook_id(&hook).get());
    let session = Session::of(&app, &app.token).await;
    let csrf = session.csrf().await;

    assert_eq!(
        session.post(&disable, &[], None).await,
        403,
        "no form token"
    );
    let wrong = "0".repeat(csrf.len());
    assert_eq!(session.post(&disable, &[("csrf", &wrong)], None).await, 403);
    let elsewhere = Some("https://evil.example");
    assert_eq!(
        session.post(&disable, &[("csrf", &csrf)], elsewhere).await,
        403
    );
    let other = Session::of(&app, &app.token).await;
    assert_eq!(
        other.post(&disable, &[("csrf", &csrf)], None).await,
        403,
        "another session's token"
    );
    assert_eq!(app.webhook(&hook, "enabled").await["enabled"], true);

    let done = session.send(&disable, &[("csrf", &csrf)], None).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[LOCATION], "/dashboard/webhooks/1");
    let now = app.webhook(&hook, "enabled disabledReason").await;
    assert_eq!(now, json!({ "enabled": false, "disabledReason": "MANUAL" }));
    // The page the change leads to says what was done, once.
    let flash = set_cookie(done.headers(), "herald_flash").expect("a message");
    let flash = flash.split(';').next().expect("pair");
    let shown = Session {
        app: &app,
        cookie: format!("{}; {flash}", session.cookie),
    };
    let answer = shown.get("/dashboard/webhooks").await;
    let dropped = set_cookie(answer.headers(), "herald_flash").expect("dropped");
    assert!(dropped.contains("Max-Age=0"), "{dropped}");
    let page = answer.text().await.expect("page");
    assert!(page.contains("/hook disabled."), "{page}");
    assert!(page.contains("an admin disabled it"), "{page}");
}

#[tokio::test]
async fn signing_out_ends_the_session_in_the_database() {
    let app = spawn_app().await;
    let session = Session::of(&app, &app.token).await;
    let csrf = session.csrf().await;
    assert_eq!(
        session
            .post("/dashboard/sign-out", &[("csrf", &csrf)], None)
            .await,
        303
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM dashboard_sessions")
            .await,
        0
    );
    // The cookie kept by a copy of the browser no longer works.
    let replayed = session.get("/dashboard/webhooks").await;
    assert_eq!(replayed.status(), 303);
    assert_eq!(replayed.headers()[LOCATION], "/dashboard/sign-in");
}

#[tokio::test]
async fn a_revoked_tokens_session_is_refused() {
    let app = spawn_app().await;
    let token = token_for(&app.store, "example", "second@example.com", Role::Admin).await;
    let session = Session::of(&app, &token).await;
    assert_eq!(session.get("/dashboard/webhooks").await.status(), 200);
    let tokens = app
        .store
        .list_tokens(Some("example"))
        .await
        .expect("tokens");
    let second = tokens
        .iter()
        .find(|t| t.email == "second@example.com")
        .expect("the token");
    app.store.revoke_token(second.id, 1).await.expect("revoke");
    let after = session.get("/dashboard/webhooks").await;
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()[LOCATION], "/dashboard/sign-in");
}

#[tokio::test]
async fn a_user_who_is_no_longer_an_admin_is_signed_out() {
    let app = spawn_app().await;
    let token = token_for(&app.store, "example", "second@example.com", Role::Admin).await;
    let session = Session::of(&app, &token).await;
    app.store
        .set_user_role("example", "second@example.com", Role::Member)
        .await
        .expect("demote");
    assert_eq!(session.get("/dashboard/webhooks").await.status(), 303);
}

#[tokio::test]
async fn pages_escape_what_users_wrote() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let r = app
        .graphql(
            "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
            json!({ "i": {
                "url": format!("{}?x=\"><script>alert(1)</script>", rx.url()),
                "description": "<script>alert(2)</script>",
                "events": ["COLLECTION"], "secrets": [SECRET_A], "retries": 0 } }),
        )
        .await;
    let hook = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    collection(&app, "<img src=x onerror=alert(3)>").await;
    let log = app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    let delivery = DeliveryId::decode(log[0]["id"].as_str().expect("id")).expect("a delivery");

    let session = Session::of(&app, &app.token).await;
    let hook_page = format!("/dashboard/webhooks/{}", webhook_id(&hook).get());
    let delivery_page = format!("/dashboard/deliveries/{}", delivery.get());
    for path in [
        "/dashboard/webhooks",
        hook_page.as_str(),
        delivery_page.as_str(),
    ] {
        let (status, html) = session.page(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("<script"), "{path}: {html}");
        assert!(!html.contains("<img"), "{path}: {html}");
    }
    let (_, html) = session.page(&hook_page).await;
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{html}"
    );
    let (_, html) = session.page(&delivery_page).await;
    assert!(
        html.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "{html}"
    );
}

#[tokio::test]
async fn another_channels_webhooks_and_deliveries_are_not_found() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let theirs = token_for(&app.store, "other", "admin@other.example", Role::Admin).await;
    let r = app
        .graphql_as(
            &theirs,
            "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
            json!({ "i": { "url": rx.url(), "events": ["COLLECTION"], "secrets": [SECRET_A] } }),
        )
        .await;
    let hook = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let pinged = app
        .graphql_as(
            &theirs,
            "mutation ($i: TestWebhookInput!) { testWebhook(input: $i) { delivery { id } } }",
            json!({ "i": { "webhookId": hook } }),
        )
        .await;
    let delivery = DeliveryId::decode(
        pinged["data"]["testWebhook"]["delivery"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{pinged}")),
    )
    .expect("a delivery");
    let id = webhook_id(&hook).get();

    let session = Session::of(&app, &app.token).await;
    let csrf = session.csrf().await;
    let (status, html) = session.page(&format!("/dashboard/webhooks/{id}")).await;
    assert_eq!(status, 404);
    assert!(html.contains("belongs to another channel"), "{html}");
    let (status, _) = session
        .page(&format!("/dashboard/deliveries/{}", delivery.get()))
        .await;
    assert_eq!(status, 404);
    for action in ["ping", "disable", "redeliver-failed"] {
        let path = format!("/dashboard/webhooks/{id}/{action}");
        assert_eq!(
            session.post(&path, &[("csrf", &csrf)], None).await,
            404,
            "{action}"
        );
    }
    let redeliver = format!("/dashboard/deliveries/{}/redeliver", delivery.get());
    assert_eq!(
        session.post(&redeliver, &[("csrf", &csrf)], None).await,
        404
    );
    assert_eq!(
        rx.received().len(),
        1,
        "only their own ping reached the receiver"
    );
    let (status, _) = session.page("/dashboard/webhooks/not-a-number").await;
    assert_eq!(status, 404);
    let (status, _) = session.page("/dashboard/nowhere").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_admin_redelivers_a_failed_delivery_in_a_browser() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let hook = app.collection_hook(&rx, 0).await;
    collection(&app, "Holiday videos").await;
    app.wait_for_deliveries(&hook, first_is("FAILED")).await;
    // Started last: nothing may fail between here and `run`, which always quits it.
    let Some(browser) = Browser::start().await else {
        return;
    };
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let sign_in_page = app.url("/dashboard/sign-in");
    let token = app.token.clone();

    browser
        .run(move |client| async move {
            client
                .goto(&sign_in_page)
                .await
                .expect("open the dashboard");
            let field = client
                .find(Locator::Css("#token"))
                .await
                .expect("token field");
            field.send_keys(&token).await.expect("type the token");
            client
                .find(Locator::Css("button[type=submit]"))
                .await
                .expect("sign-in button")
                .click()
                .await
                .expect("sign in");
            let link = client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::Css("table.webhooks a.url"))
                .await
                .expect("the webhooks page lists the webhook");
            screenshot(&client, &screenshots.join("dashboard-webhooks.png")).await;
            link.click().await.expect("open the webhook");
            let failed = client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::XPath(
                    "//table[contains(@class,'deliveries')]//a[span[text()='FAILED']]",
                ))
                .await
                .expect("the log shows the failed delivery");
            screenshot(&client, &screenshots.join("dashboard-deliveries.png")).await;
            failed.click().await.expect("open the delivery");
            client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::XPath(
                    "//li[contains(@class,'attempt')]//*[contains(text(),'HTTP 500')]",
                ))
                .await
                .expect("the failed attempt, with the receiver's status");
            client
                .find(Locator::Css("form[action$='/redeliver'] button"))
                .await
                .expect("the redeliver button")
                .click()
                .await
                .expect("redeliver");
            // The page after the redirect shows the new attempt, second in the list.
            client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::XPath(
                    "//ol[contains(@class,'attempts')]/li[2]//span[text()='SUCCESS']",
                ))
                .await
                .expect("the new attempt succeeded");
            let flash = client
                .find(Locator::Css(".flash"))
                .await
                .expect("a message");
            let text = flash.text().await.expect("text");
            assert!(text.contains("the receiver accepted it"), "{text}");
            screenshot(&client, &screenshots.join("dashboard-delivery.png")).await;
            // The page loaded nothing from anywhere but herald.
            for url in loaded_urls(&client).await {
                assert!(url.contains("/dashboard/assets/"), "the page loaded {url}");
            }
        })
        .await;
    let log = app.deliveries(&hook).await;
    assert_eq!(log[0]["status"], "SUCCEEDED", "{log:?}");
    assert_eq!(rx.received().len(), 2);
    eventually(DEADLINE, || async {
        match app
            .db
            .count("SELECT COUNT(*) FROM dashboard_sessions")
            .await
        {
            1 => Ok(()),
            n => Err(n),
        }
    })
    .await;
}

#[tokio::test]
async fn a_sources_request_log_shows_what_herald_did_with_each_request() {
    let app = spawn_app().await;
    let (id, ingest) = crate::sources::source(
        &app,
        json!({ "name": "Plex <at> home", "kind": "PLEX", "events": ["media.scrobble"] }),
    )
    .await;
    let refused = app
        .http()
        .post(app.url(&ingest))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("ingest");
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let session = Session::of(&app, &app.token).await;
    let (status, list) = session.page("/dashboard/sources").await;
    assert_eq!(status, 200);
    assert!(list.contains("Plex &lt;at&gt; home"), "{list}");

    let n = herald::domain::ids::SourceId::decode(&id)
        .expect("a source")
        .get();
    let (status, log) = session.page(&format!("/dashboard/sources/{n}")).await;
    assert_eq!(status, 200);
    assert!(log.contains("badge bad\">REJECTED<"), "{log}");
    let (_, accepted) = session
        .page(&format!("/dashboard/sources/{n}?outcome=ACCEPTED"))
        .await;
    assert!(!accepted.contains("badge bad\">REJECTED<"), "{accepted}");
    assert!(
        accepted.contains("No request matches this filter."),
        "{accepted}"
    );
    let (status, _) = session
        .page(&format!("/dashboard/sources/{n}?outcome=SOMETIMES"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_delivery_log_filters_by_status_and_event_and_pages_newest_first() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 0).await;
    for n in 0..27 {
        collection(&app, &format!("c{n}")).await;
    }
    let log = app
        .wait_for_deliveries(&hook, |log| {
            log.len() == 27 && log.iter().all(|x| x["status"] == "SUCCEEDED")
        })
        .await;
    let session = Session::of(&app, &app.token).await;
    let csrf = session.csrf().await;
    let id = webhook_id(&hook).get();
    assert_eq!(
        session
            .post(
                &format!("/dashboard/webhooks/{id}/ping"),
                &[("csrf", &csrf)],
                None
            )
            .await,
        303
    );
    let page = format!("/dashboard/webhooks/{id}");
    let rows = |html: &str| html.matches("href=\"/dashboard/deliveries/").count() / 2;

    let (_, first) = session.page(&page).await;
    assert_eq!(rows(&first), 25, "a page holds 25");
    let newest = DeliveryId::decode(log[0]["id"].as_str().expect("id")).expect("id");
    let older = format!("older_than={}", newest.get() - 23);
    assert!(
        first.contains(&older),
        "an older link from the last row shown: {first}"
    );
    assert!(
        !first.contains("newer_than"),
        "nothing newer than the first page"
    );
    let (_, second) = session.page(&format!("{page}?{older}")).await;
    assert_eq!(rows(&second), 3);
    assert!(second.contains("newer_than="), "{second}");
    assert!(!second.contains("older_than="), "{second}");

    let (_, pings) = session.page(&format!("{page}?event=ping")).await;
    assert_eq!(rows(&pings), 1);
    let (_, failed) = session.page(&format!("{page}?status=FAILED")).await;
    assert!(
        failed.contains("No delivery matches these filters."),
        "{failed}"
    );
    let (status, _) = session.page(&format!("{page}?status=LOST")).await;
    assert_eq!(status, 400);
}
