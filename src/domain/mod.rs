//! Pure types and rules: no I/O. Values with rules are newtypes with fallible constructors, so
//! after the GraphQL layer nothing handles raw strings.

pub mod comments;
pub mod content;
pub mod crypto;
pub mod delivery;
pub mod event;
pub mod event_types;
pub mod groups;
pub mod ids;
pub mod members;
pub mod net;
pub mod retry;
pub mod source;
pub mod time;
pub mod token;
pub mod webhook;

/// A rule broken by caller input: the input field it concerns and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The input field, as named in the GraphQL input (`secrets`, `collectionIds`); `""` when
    /// the rule concerns the input as a whole.
    pub field: &'static str,
    pub message: String,
    pub fault: Fault,
}

/// What kind of fault an [`Invalid`] input is (the API reports each as an error type of its
/// own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The input breaks a rule.
    Rule,
    /// The input names an object that does not exist (or not in the caller's channel).
    Missing,
    /// The caller may not do this to the object the input names.
    Forbidden,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
            fault: Fault::Rule,
        }
    }

    /// The input `field` names an object that does not exist.
    pub fn missing(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            fault: Fault::Missing,
            ..Invalid::new(field, message)
        }
    }

    /// The caller may not do this to the object that input `field` names.
    pub fn forbidden(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            fault: Fault::Forbidden,
            ..Invalid::new(field, message)
        }
    }
}

/// Text from outside, checked for what no text input may hold: the NUL character (U+0000).
/// PostgreSQL cannot store it in `text` and SQLite can, so every text input refuses it here,
/// the same way on both backends, before either is asked. `what` names the value in the
/// message ("title", "secret 2").
pub fn plain_text<'a>(field: &'static str, what: &str, raw: &'a str) -> Result<&'a str, Invalid> {
    if raw.contains('\0') {
        return Err(Invalid::new(
            field,
            format!("{what} must not contain NUL characters (U+0000)"),
        ));
    }
    Ok(raw)
}

/// Text herald keeps from a source nobody can correct (a receiver's answer): each NUL character
/// becomes U+FFFD, as bytes that are not UTF-8 do, so that both backends store it. (On
/// PostgreSQL one NUL would fail the whole batch of outcomes it is recorded with.)
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_refuses_nul_characters() {
        assert_eq!(plain_text("title", "title", "a b"), Ok("a b"));
        let e = plain_text("title", "title", "a\u{0}b").expect_err("NUL");
        assert_eq!(e.field, "title");
        assert_eq!(e.message, "title must not contain NUL characters (U+0000)");
        assert_eq!(storable("ok\u{0}then".into()), "ok\u{FFFD}then");
    }
}
