//! The dashboard's one stylesheet, embedded in the binary. Its URL carries a hash of its
//! content, so it is cached for a year and a new herald's pages ask for the new one.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("dashboard.css");

static PATH: LazyLock<String> = LazyLock::new(|| {
    let hash = hex::encode(&Sha256::digest(CSS.as_bytes())[..6]);
    format!("/dashboard/assets/dashboard-{hash}.css")
});

/// Where the pages link the stylesheet.
pub fn stylesheet_path() -> &'static str {
    &PATH
}

/// `GET /dashboard/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    if PATH.rsplit('/').next() != Some(file.as_str()) {
        return super::failure::Failure::NotFound.into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        CSS,
    )
        .into_response()
}
