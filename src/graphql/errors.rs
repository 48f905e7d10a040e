//! What a mutation's payload says went wrong: Rewatch's typed errors, each behind the
//! `UserError` interface, so `errors { message path }` reads them all alike and
//! `... on NotFoundError` tells one kind from another.

use super::internal;
use crate::domain::{Fault, Invalid};
use crate::outbox;
use async_graphql::{Interface, SimpleObject};

/// Declares the concrete error types: each a message and the input path at fault.
macro_rules! user_errors {
    ($($(#[$m:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$m])*
        #[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// A human-readable description of the error.
            pub message: String,
            /// The input field this error came from, if any, e.g. `["input", "secrets"]`.
            pub path: Option<Vec<String>>,
        }
    )+};
}

user_errors!(
    /// An object the input names does not exist (or not in the viewer's channel).
    NotFoundError,
    /// The viewer may not do this (a member changing webhooks).
    PermissionError,
    /// The input breaks a rule; `path` names the field.
    ValidationError,
);

/// An error returned from a mutation resulting from a user action.
#[derive(Interface, Debug, Clone, PartialEq, Eq)]
#[graphql(
    field(
        name = "message",
        ty = "&String",
        desc = "A human-readable description of the error."
    ),
    field(
        name = "path",
        ty = "&Option<Vec<String>>",
        desc = "The input field this error came from, if any."
    )
)]
pub enum UserError {
    NotFound(NotFoundError),
    Permission(PermissionError),
    Validation(ValidationError),
}

/// The path of input field `field`: `["input", field]`; none for `""` (the input as a whole).
fn at(field: &str) -> Option<Vec<String>> {
    (!field.is_empty()).then(|| vec!["input".into(), field.into()])
}

impl UserError {
    /// Input field `field` breaks a rule.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        UserError::Validation(ValidationError {
            message: message.into(),
            path: at(field),
        })
    }

    /// Input field `field` names nothing the viewer can reach.
    pub fn not_found(field: &str) -> Self {
        UserError::NotFound(NotFoundError {
            message: "No object found".into(),
            path: at(field),
        })
    }

    /// The viewer may not do what was asked.
    pub fn forbidden(message: impl Into<String>) -> Self {
        UserError::Permission(PermissionError {
            message: message.into(),
            path: None,
        })
    }
}

impl From<Invalid> for UserError {
    fn from(i: Invalid) -> Self {
        let (message, path) = (i.message, at(i.field));
        match i.fault {
            Fault::Rule => UserError::Validation(ValidationError { message, path }),
            Fault::Missing => UserError::NotFound(NotFoundError { message, path }),
            Fault::Forbidden => UserError::Permission(PermissionError { message, path }),
        }
    }
}

/// Collects every rule an input breaks, so one answer lists all there is to fix.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<UserError>);

impl Problems {
    pub(super) fn check<T>(&mut self, r: Result<T, Invalid>) -> Option<T> {
        r.map_err(|e| self.0.push(e.into())).ok()
    }

    /// The value when no rule was broken, else every problem found.
    pub(super) fn done<T>(self, value: Option<T>) -> Result<T, Vec<UserError>> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(self.0),
        }
    }
}

/// What a change through the outbox came to: a value, or errors for the payload (not found is
/// reported at `id_field`).
pub(super) fn outcome<T>(
    r: Result<T, outbox::Error>,
    id_field: &str,
) -> async_graphql::Result<Result<T, Vec<UserError>>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(outbox::Error::NotFound) => Ok(Err(vec![UserError::not_found(id_field)])),
        Err(outbox::Error::Invalid(i)) => Ok(Err(vec![i.into()])),
        Err(e) => Err(internal(e)),
    }
}

/// What a change through the outbox came to, shaped for its payload: the object `wrap` makes,
/// or the errors (input that did not parse, or the outbox's; not found is at `id_field`).
pub(super) async fn made<T, O>(
    change: Result<impl std::future::Future<Output = Result<T, outbox::Error>>, Vec<UserError>>,
    id_field: &str,
    wrap: impl FnOnce(T) -> O,
) -> async_graphql::Result<(Option<O>, Vec<UserError>)> {
    let change = match change {
        Ok(change) => change,
        Err(errors) => return Ok((None, errors)),
    };
    Ok(match outcome(change.await, id_field)? {
        Ok(value) => (Some(wrap(value)), Vec::new()),
        Err(errors) => (None, errors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_are_not_found_and_broken_rules_are_invalid() {
        let missing: UserError =
            Invalid::missing("collectionIds", "No object found for ID x").into();
        assert!(matches!(missing, UserError::NotFound(_)));
        let broken: UserError = Invalid::new("title", "title must not be empty").into();
        assert_eq!(
            broken,
            UserError::Validation(ValidationError {
                message: "title must not be empty".into(),
                path: Some(vec!["input".into(), "title".into()]),
            })
        );
        assert!(
            matches!(UserError::forbidden("no"), UserError::Permission(e) if e.message == "no")
        );
    }
}
