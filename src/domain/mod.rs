//! Pure types and rules: no I/O. Values with rules are newtypes with fallible constructors, so
//! after the GraphQL layer nothing handles raw strings.

pub mod content;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod net;
pub mod retry;
pub mod time;
pub mod token;
pub mod webhook;

/// A rule broken by caller input: the input field it concerns and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The input field, as named in the GraphQL input (`secrets`, `collectionIds`).
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }
}
