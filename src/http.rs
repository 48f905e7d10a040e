//! The axum router: `/api/graphql`, sources' `/ingest/<token>`, the dashboard's pages under
//! `/dashboard`, and health. No business logic, no SQL. [`server`] serves it.

mod parse_errors;
pub mod server;

use crate::domain::token;
use crate::graphiql;
use crate::graphql::{HeraldSchema, Viewer};
use crate::store::{SharedStore, Unavailable};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{middleware, Json, Router};
use serde_json::json;
use std::time::Duration;
use tracing::Instrument;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub schema: HeraldSchema,
    pub store: SharedStore,
    pub outbox: crate::outbox::Outbox,
    /// Whether the dashboard's cookies are `Secure`: always, except in dev mode.
    pub secure_cookies: bool,
}

pub fn router(state: HttpState) -> Router {
    // The dashboard answers in HTML, its errors too: it is merged in after the API's JSON
    // errors layer, which therefore does not wrap it.
    let dashboard = crate::dashboard::Dashboard::new(
        state.store.clone(),
        state.outbox.clone(),
        state.secure_cookies,
    );
    Router::new()
        .route("/api/graphql", get(graphiql::page).post(graphql))
        .route("/api/graphql/assets/{file}", get(graphiql::asset))
        .route("/api/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/ingest/{token}",
            any(ingest).layer(DefaultBodyLimit::max(crate::ingest::MAX_BODY_BYTES)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(json_errors))
        .with_state(state)
        .merge(crate::dashboard::router(dashboard))
}

/// The router of a connection past `HERALD_MAX_CONNECTIONS` (see [`server`]): the health
/// endpoints, and 503 for anything else.
pub fn overflow_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(too_many_connections)
        .layer(middleware::map_response(json_errors))
        .with_state(state)
}

async fn too_many_connections() -> Response {
    let mut answer = coded(
        StatusCode::SERVICE_UNAVAILABLE,
        "herald is serving as many connections as it may (HERALD_MAX_CONNECTIONS); try again shortly",
        "TOO_MANY_CONNECTIONS",
    );
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    answer
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Not found: the API is at /api/graphql (POST; GET serves GraphiQL)",
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
    )
}

/// The largest error body [`json_errors`] reads to reuse as the message.
const ERROR_TEXT_CAP: usize = 4096;

/// Every error answer carries a JSON body `{"errors": [{"message": …}]}`, also those that
/// herald's handlers do not write themselves: extractors' rejections (their plain-text message
/// is kept) and anything added later. (Requests that are not valid HTTP, such as a NUL in a
/// header, are answered by hyper before any of this runs; [`parse_errors`] gives those answers
/// their JSON body.)
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_CAP)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = text.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned()
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({ "errors": [{ "message": message }] }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// A JSON error body, `{"errors": [{"message": …}]}`, with a status.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message }] }))).into_response()
}

/// A JSON error body with a code, as GraphQL errors carry it:
/// `{"errors": [{"message": …, "extensions": {"code": …}}]}`.
fn coded(status: StatusCode, message: &str, code: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// 503 for a database that cannot serve, saying why.
fn unavailable(cause: Unavailable) -> Response {
    coded(
        StatusCode::SERVICE_UNAVAILABLE,
        cause.message(),
        cause.code(),
    )
}

/// `POST /api/graphql`, answered by a task of its own: a request herald has received runs to
/// its end even if its client hangs up, so a mutation is never cut off between two changes.
async fn graphql(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = answer(state, headers, body).in_current_span();
    match tokio::spawn(answer).await {
        Ok(response) => response,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "Shutting down"),
        },
    }
}

async fn answer(
    state: HttpState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return error(StatusCode::UNAUTHORIZED, "Missing Authorization header: send `Authorization: Token token=\"<TOKEN>\"` or `Authorization: Bearer <TOKEN>`");
    };
    let Some(tok) = raw.to_str().ok().and_then(token::from_authorization) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Malformed Authorization header: use `Token token=\"<TOKEN>\"` or `Bearer <TOKEN>`",
        );
    };
    let user = match state.store.authenticate(&token::hash(tok)).await {
        Ok(Some(user)) => user,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "Unknown or revoked token"),
        Err(e) => {
            return match e.unavailable() {
                Some(cause) => {
                    tracing::warn!(error = %e, "authentication failed: {}", cause.message());
                    unavailable(cause)
                }
                None => {
                    tracing::error!(error = %e, "authentication failed");
                    error(StatusCode::SERVICE_UNAVAILABLE, "Internal error")
                }
            };
        }
    };
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_in_utf8);
    if !json_body {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json, with no charset or charset=utf-8",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("Request body is larger than {MAX_BODY_BYTES} bytes")
            } else {
                "Could not read the request body".to_owned()
            };
            return error(status, &message);
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Body is not a GraphQL request (JSON with `query`): {e}"),
            )
        }
    };
    let response = state.schema.execute(request.data(Viewer(user))).await;
    Json(response).into_response()
}

/// Whether a `Content-Type` value is JSON in UTF-8: the media type `application/json` exactly,
/// and a `charset` parameter, if there is one, `utf-8` (names and values in any case, the value
/// may be quoted). Other parameters are ignored; a parameter without `=` is malformed. A prefix
/// is not enough: `application/jsonp` and `application/json-seq` are other formats, and a body in
/// another charset would be read wrongly as UTF-8.
fn is_json_in_utf8(value: &str) -> bool {
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let param = param.trim();
        if param.is_empty() {
            return true;
        }
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        !name.trim().eq_ignore_ascii_case("charset") || value.eq_ignore_ascii_case("utf-8")
    })
}

/// Any request to a source's ingest URL, outside `/api` and its tokens (the URL's token is
/// the credential), answered by a task of its own like a GraphQL request: the outbox reads it,
/// writes what it came to, and says what to answer.
async fn ingest(
    State(state): State<HttpState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = body
        .map(|body| crate::ingest::Request {
            method: method.as_str().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body,
            now: chrono::Utc::now().timestamp(),
        })
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => crate::outbox::Unread::TooLarge,
            _ => crate::outbox::Unread::Broken,
        });
    let work = async move { state.outbox.ingest(&token, request).await }.in_current_span();
    match tokio::spawn(work).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            (status, Json(answer.body)).into_response()
        }
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "Shutting down"),
        },
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the database: it answers within a second whatever the
/// database does (a server that accepts connections and never answers would otherwise hold it
/// for the pool's whole timeout).
const READY_TIMEOUT: Duration = Duration::from_millis(800);

/// 200 while the database answers and writes; otherwise 503 saying why, with a code:
/// `DATABASE_UNAVAILABLE` (no answer in time), or, when writes were refused lately and none
/// has succeeded since, `DATABASE_FULL` or `DATABASE_LOCKED`.
async fn readyz(State(state): State<HttpState>) -> Response {
    if let Some(cause) = state.store.refused_writes() {
        tracing::warn!("not ready: {}", cause.message());
        return unavailable(cause);
    }
    let cause = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database did not answer");
            e.unavailable().unwrap_or(Unavailable::Unreachable)
        }
        Err(_) => {
            tracing::warn!(
                "not ready: the database did not answer within {} ms",
                READY_TIMEOUT.as_millis()
            );
            Unavailable::Unreachable
        }
    };
    unavailable(cause)
}

/// Subscriptions over WebSocket (`graphql-transport-ws`). The token comes in the
/// `connection_init` payload as `{"Authorization": "Bearer <TOKEN>"}` (either form).
async fn graphql_ws(
    State(state): State<HttpState>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Connect with a WebSocket upgrade and the graphql-transport-ws subprotocol (Sec-WebSocket-Protocol)",
        );
    };
    let store = state.store.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, state.schema, protocol)
                .on_connection_init(move |payload| async move {
                    let header = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .and_then(token::from_authorization)
                        .ok_or_else(|| async_graphql::Error::new("Send the token in connection_init as {\"Authorization\": \"Bearer <TOKEN>\"}"))?;
                    let user = store
                        .authenticate(&token::hash(header))
                        .await
                        .map_err(|e| match e.unavailable() {
                            Some(cause) => crate::graphql::unavailable(cause),
                            None => async_graphql::Error::new("Internal error"),
                        })?
                        .ok_or_else(|| async_graphql::Error::new("Unknown or revoked token"))?;
                    let mut data = Data::default();
                    data.insert(Viewer(user));
                    Ok(data)
                })
                .serve()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_in_utf8_is_json() {
        for ok in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; charset=utf-8; profile=x",
            "application/json;",
        ] {
            assert!(is_json_in_utf8(ok), "{ok}");
        }
        for bad in [
            "",
            "application/jsonp",
            "application/json-seq",
            "application/json+x",
            "application/json; charset=utf-16",
            "application/json; charset=\"utf-16\"",
            "application/json; charset",
            "application/json; charset=utf-8; charset=latin1",
            "application/ json",
            "text/json",
        ] {
            assert!(!is_json_in_utf8(bad), "{bad}");
        }
    }
}
