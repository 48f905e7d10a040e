//! What a dashboard page answers when it cannot show what was asked: a page saying so (never
//! the API's JSON, never an internal error's details), or the way to the sign-in page.

use super::view;
use crate::store::{StoreError, Unavailable};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

/// Why a dashboard request was not served.
#[derive(Debug)]
pub enum Failure {
    /// No session, or one that ended: the sign-in page.
    SignIn,
    /// Not in the admin's channel (or not at all).
    NotFound,
    /// Something in the request the page cannot use, said in a sentence.
    BadRequest(&'static str),
    /// A change refused for where it came from (the form token, the origin).
    Forbidden(&'static str),
    /// The database cannot serve now.
    Unavailable(Unavailable),
    /// Anything else: logged where it happened, shown as an opaque message.
    Internal,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Failure::NotFound,
            e => match e.unavailable() {
                Some(cause) => Failure::Unavailable(cause),
                None => {
                    tracing::error!(error = %e, "a dashboard page failed");
                    Failure::Internal
                }
            },
        }
    }
}

impl From<crate::outbox::Error> for Failure {
    fn from(e: crate::outbox::Error) -> Self {
        use crate::outbox::Error;
        match e {
            Error::NotFound => Failure::NotFound,
            Error::Internal(e) => e.into(),
            Error::Interrupted => Failure::Unavailable(Unavailable::Unreachable),
            // The dashboard's changes take no input a user could get wrong; a rule broken
            // anyway is the store's to explain.
            Error::Invalid(invalid) => {
                tracing::warn!(error = %invalid.message, "a dashboard change was refused");
                Failure::BadRequest("herald refused the change")
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, title, text): (StatusCode, &str, &str) = match self {
            Failure::SignIn => return Redirect::to("/dashboard/sign-in").into_response(),
            Failure::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to another channel.",
            ),
            Failure::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why),
            Failure::Forbidden(why) => (StatusCode::FORBIDDEN, "Refused", why),
            Failure::Unavailable(cause) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                cause.message(),
            ),
            Failure::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "herald could not show this page; the details are in its log.",
            ),
        };
        let body = html! {
            div.card.notice {
                h1 { (title) }
                p { (text) }
                p { a.button href="/dashboard/webhooks" { "Back to the dashboard" } }
            }
        };
        (status, view::bare(title, body)).into_response()
    }
}

/// A page's filters, from its query string; a malformed one is a bad request.
pub struct Filters<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Filters<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Filters(q.0))
            .map_err(|_| Failure::BadRequest("The page's address has a malformed filter."))
    }
}

/// Any other path under `/dashboard`.
pub async fn not_found() -> Failure {
    Failure::NotFound
}
