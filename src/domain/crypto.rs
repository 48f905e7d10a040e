//! Webhook secrets sealed at rest: XChaCha20-Poly1305 under a 32-byte key, a random 24-byte
//! nonce per value.
//!
//! A sealed value is text, so it fits the column that held the plain JSON list:
//! `v1:<key id>:<base64url of nonce ‖ ciphertext ‖ tag>`. `v1` names this format; the key id
//! (16 hex digits, derived from the key, revealing nothing of it) says which key sealed it, so a
//! key rotation can tell old values from new ones and a wrong key is named rather than tried.
//! The version and the key id are the associated data: changing either makes the value fail to
//! open. A value that does not start with `v1:` is a plain value written before secrets were
//! sealed (a JSON list starts with `[`).
//!
//! Pure: no I/O. The key handling (settings, files, the database's record of its key) is in
//! `crate::secrets`.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

/// The prefix of every sealed value: this format's version.
const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What a key's id is derived from (with the key as the HMAC key).
const KEY_ID_LABEL: &[u8] = b"herald webhook secrets key id";

/// A 32-byte key. Its bytes are never shown: `Debug` prints the key id only.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
    id: KeyId,
}

/// A key's public name: 16 lowercase hex digits of HMAC-SHA256(key, a fixed label). It tells
/// keys apart without revealing them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key's text is not a key. The text itself is never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("is empty")]
    Empty,
    #[error("is not 32 bytes as 64 hex digits or as base64 (44 characters; `openssl rand -base64 32` makes one)")]
    NotAKey,
}

impl SecretKey {
    /// A new random key (from the operating system's generator, through `rand`'s thread RNG).
    pub fn generate() -> SecretKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SecretKey::from_bytes(bytes)
    }

    /// Reads a key: 64 hex digits, or base64 (standard or URL-safe, padded or not) of 32 bytes.
    /// Spaces and line breaks around it are ignored.
    pub fn parse(text: &str) -> Result<SecretKey, KeyFormatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        // 64 hex digits are also valid base64 (of 48 bytes), so hex is tried first.
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
        };
        let bytes: [u8; 32] = decoded
            .and_then(|d| d.try_into().ok())
            .ok_or(KeyFormatError::NotAKey)?;
        Ok(SecretKey::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        let id = key_id(&bytes);
        SecretKey { bytes, id }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key as standard base64 (44 characters), as herald writes it to a key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

fn key_id(bytes: &[u8; 32]) -> KeyId {
    // An HMAC accepts keys of any length, so this cannot fail; the fallback is never taken.
    let mac = Hmac::<Sha256>::new_from_slice(bytes).map(|mut mac| {
        mac.update(KEY_ID_LABEL);
        mac.finalize().into_bytes()
    });
    match mac {
        Ok(digest) => KeyId(hex::encode(&digest[..8])),
        Err(_) => KeyId(String::new()),
    }
}

/// How a stored value is sealed, read from its prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Written before secrets were sealed.
    Plain,
    /// Sealed under the key with this id.
    Sealed { key: &'a str },
}

impl<'a> Stored<'a> {
    pub fn of(stored: &'a str) -> Stored<'a> {
        match sealed_parts(stored) {
            Some((key, _)) => Stored::Sealed { key },
            None => Stored::Plain,
        }
    }
}

/// `(key id, payload)` of a sealed value; `None` for a plain one.
fn sealed_parts(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix(VERSION)?.strip_prefix(':')?;
    rest.split_once(':')
}

/// Why a stored value does not open. Never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("it is sealed under key {0}, which is not among the keys given")]
    UnknownKey(String),
    #[error("it does not open under key {0}: the key is not the one it was sealed with, or the value was altered")]
    Rejected(KeyId),
    #[error("it is not a sealed value of a format herald knows")]
    Malformed,
}

/// Sealing failed: only a message past the cipher's limit (256 GiB) does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value is too long to seal")]
pub struct SealError;

/// The keys of a process: the current one, which seals, and older ones that only open (values
/// sealed before a rotation, until they are sealed again under the current key).
pub struct Keyring {
    current: Sealer,
    others: Vec<Sealer>,
}

struct Sealer {
    id: KeyId,
    aead: XChaCha20Poly1305,
}

impl Sealer {
    fn new(key: &SecretKey) -> Sealer {
        Sealer {
            id: key.id.clone(),
            aead: XChaCha20Poly1305::new(&key.bytes.into()),
        }
    }

    /// The associated data: the value's prefix, so neither version nor key id can be changed.
    fn header(&self) -> String {
        format!("{VERSION}:{}:", self.id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "others",
                &self.others.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// `current` seals and opens; `others` only open. An other key equal to the current one is
    /// left out.
    pub fn new(current: &SecretKey, others: &[SecretKey]) -> Keyring {
        let mut kept: Vec<Sealer> = Vec::new();
        for key in others {
            if key.id != current.id && kept.iter().all(|s| s.id != key.id) {
                kept.push(Sealer::new(key));
            }
        }
        Keyring {
            current: Sealer::new(current),
            others: kept,
        }
    }

    pub fn current_id(&self) -> &KeyId {
        &self.current.id
    }

    /// The ids of the keys that only open.
    pub fn other_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.others.iter().map(|s| &s.id)
    }

    /// The prefix of every value the current key seals (for a query to find the others).
    pub fn current_prefix(&self) -> String {
        self.current.header()
    }

    /// Seals `plain` under the current key, with a fresh random nonce.
    pub fn seal(&self, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let header = self.current.header();
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: header.as_bytes(),
        };
        let sealed = self
            .current
            .aead
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError)?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{header}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Opens a sealed value with whichever of the keys sealed it.
    pub fn open(&self, stored: &str) -> Result<String, OpenError> {
        let (key, payload) = sealed_parts(stored).ok_or(OpenError::Malformed)?;
        let sealer = std::iter::once(&self.current)
            .chain(&self.others)
            .find(|s| s.id.as_str() == key)
            .ok_or_else(|| OpenError::UnknownKey(key.chars().take(16).collect()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let header = sealer.header();
        let payload = Payload {
            msg: sealed,
            aad: header.as_bytes(),
        };
        let plain = sealer
            .aead
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| OpenError::Rejected(sealer.id.clone()))?;
        String::from_utf8(plain).map_err(|_| OpenError::Rejected(sealer.id.clone()))
    }

    /// Whether `stored` is sealed under the current key (nothing to do for a rotation).
    pub fn is_current(&self, stored: &str) -> bool {
        Stored::of(stored)
            == Stored::Sealed {
                key: self.current.id.as_str(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &str = r#"["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]"#;

    fn seal(ring: &Keyring) -> String {
        ring.seal(SECRETS).expect("sealed")
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed_and_shows_nothing_of_it() {
        let key = SecretKey::generate();
        let ring = Keyring::new(&key, &[]);
        let sealed = seal(&ring);
        assert!(!sealed.contains("aaaa"), "{sealed}");
        assert!(sealed.starts_with(&format!("v1:{}:", key.id())), "{sealed}");
        assert_eq!(
            Stored::of(&sealed),
            Stored::Sealed {
                key: key.id().as_str()
            }
        );
        assert!(ring.is_current(&sealed));
        assert_eq!(ring.open(&sealed).as_deref(), Ok(SECRETS));
    }

    #[test]
    fn every_seal_draws_a_new_nonce() {
        let ring = Keyring::new(&SecretKey::generate(), &[]);
        assert_ne!(seal(&ring), seal(&ring));
    }

    #[test]
    fn an_older_key_opens_what_it_sealed_and_only_the_current_key_seals() {
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        let sealed_before = seal(&Keyring::new(&old, &[]));
        let ring = Keyring::new(&new, std::slice::from_ref(&old));
        assert_eq!(ring.open(&sealed_before).as_deref(), Ok(SECRETS));
        assert!(!ring.is_current(&sealed_before));
        assert!(ring.is_current(&seal(&ring)));
        assert_eq!(ring.other_ids().collect::<Vec<_>>(), vec![old.id()]);
    }

    #[test]
    fn a_value_of_another_key_is_named_not_tried() {
        let sealed = seal(&Keyring::new(&SecretKey::generate(), &[]));
        let other = SecretKey::generate();
        let err = Keyring::new(&other, &[])
            .open(&sealed)
            .expect_err("another key");
        assert!(matches!(err, OpenError::UnknownKey(_)), "{err:?}");
    }

    #[test]
    fn an_altered_value_does_not_open() {
        let key = SecretKey::generate();
        let ring = Keyring::new(&key, &[]);
        let sealed = seal(&ring);
        // One bit flipped in the ciphertext.
        let (head, payload) = sealed.rsplit_once(':').expect("a sealed value");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        bytes[NONCE_LEN] ^= 1;
        let flipped = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            ring.open(&flipped),
            Err(OpenError::Rejected(key.id().clone()))
        );
        // A different key id in the header, with the other key known: the tag covers the header.
        let other = SecretKey::generate();
        let both = Keyring::new(&key, std::slice::from_ref(&other));
        let relabelled = sealed.replacen(key.id().as_str(), other.id().as_str(), 1);
        assert_eq!(
            both.open(&relabelled),
            Err(OpenError::Rejected(other.id().clone()))
        );
        for junk in ["v1:", "v1:abc", "v1:abc:", "v1:abc:!!!", "[\"x\"]", ""] {
            assert!(both.open(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn plain_values_are_told_from_sealed_ones() {
        assert_eq!(Stored::of(SECRETS), Stored::Plain);
        assert_eq!(Stored::of("v2:abc:def"), Stored::Plain);
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_and_never_quoted() {
        let key = SecretKey::generate();
        let b64 = key.to_base64();
        assert_eq!(b64.len(), 44);
        let bytes = STANDARD.decode(&b64).expect("base64");
        let hexed = hex::encode(&bytes);
        for text in [
            b64.clone(),
            format!("  {b64}\n"),
            STANDARD_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes),
            hexed.clone(),
            hexed.to_uppercase(),
        ] {
            assert_eq!(SecretKey::parse(&text).expect(&text).id(), key.id());
        }
        assert_eq!(SecretKey::parse(" \n").err(), Some(KeyFormatError::Empty));
        for bad in [
            "short",
            &hexed[..62],
            &STANDARD.encode([1u8; 31]),
            "é".repeat(44).as_str(),
        ] {
            assert_eq!(
                SecretKey::parse(bad).err(),
                Some(KeyFormatError::NotAKey),
                "{bad}"
            );
        }
        assert!(!format!("{key:?}").contains(&b64));
        assert!(!KeyFormatError::NotAKey.to_string().contains(&b64));
    }

    #[test]
    fn a_key_id_is_stable_and_tells_keys_apart() {
        let key = SecretKey::parse(&"00".repeat(32)).expect("key");
        assert_eq!(key.id().as_str().len(), 16);
        assert_eq!(
            key.id(),
            SecretKey::parse(&"00".repeat(32)).expect("key").id()
        );
        assert_ne!(
            key.id(),
            SecretKey::parse(&"01".repeat(32)).expect("key").id()
        );
    }
}
