//! The operator's dashboard at `/dashboard`: pages rendered by herald (maud templates compiled
//! into the binary, one embedded stylesheet, no script), so it works offline and behind any
//! proxy that passes `/dashboard` through.
//!
//! A channel admin signs in with an API token; the session lives in the database (only a hash
//! of its id), so it survives restarts and is shared by the herald processes of one
//! PostgreSQL database. What the pages show is read through the store, and what their buttons
//! do goes through the outbox, the same calls the GraphQL mutations make, under the same rule
//! (admins only): the dashboard has no business rules of its own.
//!
//! Every page answer carries a strict `Content-Security-Policy` (nothing but herald's own
//! stylesheet loads), and every change is a `POST` carrying the session's form token, from a
//! page of herald's own origin (see `session.rs`). A change answers with a redirect to a page
//! that shows what it did (POST, redirect, GET).

mod assets;
mod deliveries;
mod failure;
mod paging;
mod session;
mod sources;
mod view;
mod webhooks;

use crate::outbox::Outbox;
use crate::store::SharedStore;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};

/// The largest form a dashboard page posts (a pasted token is the largest field).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the dashboard's handlers share; cheap to clone.
#[derive(Clone)]
pub struct Dashboard {
    store: SharedStore,
    outbox: Outbox,
    /// Whether cookies are marked `Secure` (sent over HTTPS only): always, except in dev mode.
    secure_cookies: bool,
}

impl Dashboard {
    /// The dashboard over `store` and `outbox`; `secure_cookies` is false only in dev mode.
    pub fn new(store: SharedStore, outbox: Outbox, secure_cookies: bool) -> Self {
        Dashboard {
            store,
            outbox,
            secure_cookies,
        }
    }
}

/// The routes under `/dashboard`, with their own answers for what is missing or refused (HTML
/// pages, not the API's JSON errors).
pub fn router<S>(dashboard: Dashboard) -> Router<S> {
    Router::new()
        .route("/dashboard", get(home))
        .route("/dashboard/", get(home))
        .route(
            "/dashboard/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/dashboard/sign-out", post(session::sign_out))
        .route("/dashboard/webhooks", get(webhooks::list))
        .route("/dashboard/webhooks/{id}", get(deliveries::list))
        .route("/dashboard/webhooks/{id}/{action}", post(webhooks::act))
        .route("/dashboard/deliveries/{id}", get(deliveries::one))
        .route(
            "/dashboard/deliveries/{id}/redeliver",
            post(deliveries::redeliver),
        )
        .route("/dashboard/sources", get(sources::list))
        .route("/dashboard/sources/{id}", get(sources::requests))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .route("/dashboard/{*rest}", get(failure::not_found))
        .layer(middleware::from_fn(session::same_origin))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::map_response(locked_down))
        .with_state(dashboard)
}

async fn home() -> Redirect {
    Redirect::to("/dashboard/webhooks")
}

/// The policy of every page: herald's own stylesheet and nothing else (no script at all, no
/// other host); forms post only to herald; no framing. Pages are not cached: they show a
/// session's data.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn locked_down(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
