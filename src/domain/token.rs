//! API tokens: random, shown once, stored only as a SHA-256 hash.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes herald tokens recognisable (for secret scanners and humans).
const PREFIX: &str = "hrld_";

/// A new token: `hrld_` + 64 hex characters (32 random bytes).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// What is stored and looked up: lowercase hex SHA-256 of the token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads the token from an `Authorization` header value: `Token token="…"` (Rewatch's form) or
/// `Bearer …`. `None` for anything else.
pub fn from_authorization(value: &str) -> Option<&str> {
    let value = value.trim();
    let token = if let Some(rest) = strip_prefix_ci(value, "Bearer ") {
        rest.trim()
    } else if let Some(rest) = strip_prefix_ci(value, "Token ") {
        let rest = rest.trim();
        let rest = rest.strip_prefix("token=")?;
        rest.strip_prefix('"')?.strip_suffix('"')?
    } else {
        return None;
    };
    let plausible = !token.is_empty()
        && token.len() <= 256
        && token.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    plausible.then_some(token)
}

fn strip_prefix_ci<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_authorization_forms_are_read() {
        assert_eq!(
            from_authorization(r#"Token token="abc123""#),
            Some("abc123")
        );
        assert_eq!(from_authorization("Bearer abc123"), Some("abc123"));
        assert_eq!(from_authorization("bearer abc123"), Some("abc123"));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "Bearer ",
            "Basic abc",
            "Token abc",
            r#"Token token=abc"#,
            r#"Token token="""#,
            "Bearer a b",
        ] {
            assert_eq!(from_authorization(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = generate();
        assert_eq!(a.len(), PREFIX.len() + 64);
        assert_ne!(a, generate());
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }
}
