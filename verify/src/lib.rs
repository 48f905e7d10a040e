//! Signing and verification of herald webhook deliveries.
//!
//! Every delivery carries two independent signature schemes (one signature per webhook secret):
//!
//! * **Rewatch**: `Rewatch-Hook-Delivery-Signatures` holds, comma-joined, the lowercase hex
//!   HMAC-SHA256 of `<hook id>;<event>;<nonce>;<timestamp>` (the four `Rewatch-Hook-*` header
//!   values). It does not cover the body.
//! * **Standard Webhooks**: `webhook-signature` holds, space-joined, `v1,` + base64 of
//!   HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`. It covers the body.
//!
//! [`Verifier`] checks a delivery from its headers and raw body against any of several secrets
//! (so rotation `[new, old]` keeps working), in constant time, and refuses timestamps outside a
//! tolerance. This crate has no server dependencies, so a receiving app can use it as it is.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// Header names, as herald sends them. Lookups here are case-insensitive.
pub mod header {
    pub const HOOK_ID: &str = "Rewatch-Hook-Id";
    pub const EVENT: &str = "Rewatch-Hook-Delivery-Event";
    pub const NONCE: &str = "Rewatch-Hook-Delivery-Nonce";
    pub const TIMESTAMP: &str = "Rewatch-Hook-Delivery-Timestamp";
    pub const SIGNATURES: &str = "Rewatch-Hook-Delivery-Signatures";
    pub const WEBHOOK_ID: &str = "webhook-id";
    pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
    pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
}

/// The tolerance used by [`Verifier::new`]: five minutes either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// The Rewatch string to sign: the four header values joined by `;`.
pub fn rewatch_signed_string(hook_id: &str, event: &str, nonce: &str, timestamp: &str) -> String {
    format!("{hook_id};{event};{nonce};{timestamp}")
}

/// One Rewatch signature: lowercase hex HMAC-SHA256(secret, `hook_id;event;nonce;timestamp`).
pub fn rewatch_signature(
    secret: &[u8],
    hook_id: &str,
    event: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut out = String::with_capacity(64);
    push_rewatch_signature(&mut out, secret, [hook_id, event, nonce, timestamp]);
    out
}

/// Appends one Rewatch signature to `out`: the MAC takes the four values and their separators
/// piece by piece, so the string to sign is never built.
fn push_rewatch_signature(out: &mut String, secret: &[u8], values: [&str; 4]) {
    let mut m = mac(secret);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            m.update(b";");
        }
        m.update(value.as_bytes());
    }
    let tag = m.finalize().into_bytes();
    let mut hex_buf = [0u8; 64];
    // 32 bytes always fit 64 hex digits (the fallback is never taken).
    match hex::encode_to_slice(tag, &mut hex_buf) {
        Ok(()) => out.push_str(&String::from_utf8_lossy(&hex_buf)),
        Err(_) => out.push_str(&hex::encode(tag)),
    }
}

/// The `Rewatch-Hook-Delivery-Signatures` value: one signature per secret, in order, `,`-joined.
pub fn rewatch_signatures_header<S: AsRef<[u8]>>(
    secrets: &[S],
    hook_id: &str,
    event: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut out = String::with_capacity(secrets.len() * 65);
    for (i, secret) in secrets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_rewatch_signature(
            &mut out,
            secret.as_ref(),
            [hook_id, event, nonce, timestamp],
        );
    }
    out
}

fn standard_mac(secret: &[u8], msg_id: &str, unix_timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut m = mac(secret);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(unix_timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// Appends one Standard Webhooks signature (`v1,` + base64) to `out`.
fn push_standard_signature(
    out: &mut String,
    secret: &[u8],
    msg_id: &str,
    unix_timestamp: &str,
    body: &[u8],
) {
    let tag = standard_mac(secret, msg_id, unix_timestamp, body).finalize();
    out.push_str("v1,");
    BASE64.encode_string(tag.into_bytes(), out);
}

/// One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256(secret, `msg_id.unix_timestamp.body`).
pub fn standard_signature(secret: &[u8], msg_id: &str, unix_timestamp: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(47);
    push_standard_signature(&mut out, secret, msg_id, &unix_timestamp.to_string(), body);
    out
}

/// The `webhook-signature` value: one `v1,…` per secret, in order, space-joined.
pub fn standard_signatures_header<S: AsRef<[u8]>>(
    secrets: &[S],
    msg_id: &str,
    unix_timestamp: i64,
    body: &[u8],
) -> String {
    let unix = unix_timestamp.to_string();
    let mut out = String::with_capacity(secrets.len() * 48);
    for (i, secret) in secrets.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_standard_signature(&mut out, secret.as_ref(), msg_id, &unix, body);
    }
    out
}

/// A secret in the `whsec_` form that Standard Webhooks libraries take: `whsec_` + base64(secret).
pub fn standard_webhooks_secret(secret: &[u8]) -> String {
    format!("whsec_{}", BASE64.encode(secret))
}

/// Formats a Rewatch timestamp header value: UTC, whole seconds, `2021-08-10T06:09:39Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    let (date, time) = (at.date_naive(), at.time());
    if !(0..=9999).contains(&date.year()) {
        // Years chrono writes with a sign; none a delivery is made in.
        return at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    // Digit by digit: a strftime pattern is parsed again at every call, and `format!` with
    // padded fields is several times slower than this.
    let mut out = *b"0000-00-00T00:00:00Z";
    let fields = [
        (0, 4, date.year().unsigned_abs()),
        (5, 2, date.month()),
        (8, 2, date.day()),
        (11, 2, time.hour()),
        (14, 2, time.minute()),
        (17, 2, time.second()),
    ];
    for (start, width, mut value) in fields {
        for i in (start..start + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where to read a delivery's headers from. Names are matched case-insensitively.
pub trait Headers {
    /// The value of the header `name`, if present.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<S: std::hash::BuildHasher> Headers for std::collections::HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Which scheme a delivery was verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Rewatch-Hook-Delivery-Signatures` (does not cover the body).
    Rewatch,
    /// `webhook-signature` (covers the body).
    StandardWebhooks,
}

/// A delivery that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    /// The delivery's nonce (`Rewatch-Hook-Delivery-Nonce` = `webhook-id`): drop duplicates by it.
    pub nonce: String,
    /// The attempt's time, unix seconds.
    pub timestamp: i64,
    /// Which of the configured secrets matched (its index).
    pub secret_index: usize,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {header} is malformed: {reason}")]
    BadHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("no signature matches any configured secret")]
    NoMatchingSignature,
    #[error("timestamp is {0} s older than allowed")]
    TooOld(i64),
    #[error("timestamp is {0} s further in the future than allowed")]
    TooNew(i64),
    #[error("no secrets configured")]
    NoSecrets,
}

/// Verifies deliveries against one or more secrets.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting any of `secrets` (their UTF-8 bytes are the keys), with the default
    /// tolerance of five minutes. Secrets in `whsec_` form are decoded first.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let secrets = secrets
            .into_iter()
            .map(|s| {
                let s = s.as_ref();
                match s.strip_prefix("whsec_").map(|b| BASE64.decode(b)) {
                    Some(Ok(bytes)) => bytes,
                    _ => s.as_bytes().to_vec(),
                }
            })
            .collect();
        Verifier {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Accept timestamps at most `tolerance` away from now (either way).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies under the Standard Webhooks scheme when its headers are present (it covers the
    /// body), otherwise under the Rewatch scheme.
    pub fn verify(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        self.verify_at(headers, body, Utc::now().timestamp())
    }

    /// [`Verifier::verify`] with an explicit current time (unix seconds).
    pub fn verify_at(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        if headers.header(header::WEBHOOK_SIGNATURE).is_some() {
            self.verify_standard_at(headers, body, now)
        } else {
            self.verify_rewatch_at(headers, now)
        }
    }

    /// Checks `webhook-id`, `webhook-timestamp` and `webhook-signature` against the body.
    pub fn verify_standard_at(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        self.require_secrets()?;
        let id = required(headers, header::WEBHOOK_ID)?;
        let raw_ts = required(headers, header::WEBHOOK_TIMESTAMP)?;
        let timestamp: i64 = raw_ts.trim().parse().map_err(|_| VerifyError::BadHeader {
            header: header::WEBHOOK_TIMESTAMP,
            reason: "expected unix seconds",
        })?;
        let signatures = required(headers, header::WEBHOOK_SIGNATURE)?;
        self.check_time(timestamp, now)?;
        let mut candidates = Vec::new();
        for part in signatures.split_whitespace() {
            let Some(("v1", b64)) = part.split_once(',') else {
                continue; // other versions are allowed by the standard and ignored here
            };
            let tag = BASE64.decode(b64).map_err(|_| VerifyError::BadHeader {
                header: header::WEBHOOK_SIGNATURE,
                reason: "a v1 signature is not valid base64",
            })?;
            candidates.push(tag);
        }
        if candidates.is_empty() {
            return Err(VerifyError::BadHeader {
                header: header::WEBHOOK_SIGNATURE,
                reason: "no v1 signature",
            });
        }
        let unix = timestamp.to_string();
        for (index, secret) in self.secrets.iter().enumerate() {
            for tag in &candidates {
                if standard_mac(secret, id, &unix, body)
                    .verify_slice(tag)
                    .is_ok()
                {
                    return Ok(Verified {
                        scheme: Scheme::StandardWebhooks,
                        nonce: id.to_owned(),
                        timestamp,
                        secret_index: index,
                    });
                }
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }

    /// Checks the `Rewatch-Hook-*` headers. This scheme does not cover the body.
    pub fn verify_rewatch_at(
        &self,
        headers: &(impl Headers + ?Sized),
        now: i64,
    ) -> Result<Verified, VerifyError> {
        self.require_secrets()?;
        let hook_id = required(headers, header::HOOK_ID)?;
        let event = required(headers, header::EVENT)?;
        let nonce = required(headers, header::NONCE)?;
        let raw_ts = required(headers, header::TIMESTAMP)?;
        let signatures = required(headers, header::SIGNATURES)?;
        let timestamp = parse_timestamp(raw_ts).ok_or(VerifyError::BadHeader {
            header: header::TIMESTAMP,
            reason: "expected UTC time like 2021-08-10T06:09:39Z",
        })?;
        self.check_time(timestamp, now)?;
        let mut candidates = Vec::new();
        for part in signatures.split(',') {
            let tag = hex::decode(part.trim()).map_err(|_| VerifyError::BadHeader {
                header: header::SIGNATURES,
                reason: "a signature is not hex",
            })?;
            candidates.push(tag);
        }
        let signed = rewatch_signed_string(hook_id, event, nonce, raw_ts);
        for (index, secret) in self.secrets.iter().enumerate() {
            for tag in &candidates {
                let mut m = mac(secret);
                m.update(signed.as_bytes());
                if m.verify_slice(tag).is_ok() {
                    return Ok(Verified {
                        scheme: Scheme::Rewatch,
                        nonce: nonce.to_owned(),
                        timestamp,
                        secret_index: index,
                    });
                }
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }

    fn require_secrets(&self) -> Result<(), VerifyError> {
        if self.secrets.is_empty() {
            Err(VerifyError::NoSecrets)
        } else {
            Ok(())
        }
    }

    fn check_time(&self, timestamp: i64, now: i64) -> Result<(), VerifyError> {
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        let age = now.saturating_sub(timestamp);
        if age > tolerance {
            Err(VerifyError::TooOld(age - tolerance))
        } else if -age > tolerance {
            Err(VerifyError::TooNew(-age - tolerance))
        } else {
            Ok(())
        }
    }
}

fn required<'h>(
    headers: &'h (impl Headers + ?Sized),
    name: &'static str,
) -> Result<&'h str, VerifyError> {
    headers.header(name).ok_or(VerifyError::MissingHeader(name))
}

/// Parses a Rewatch timestamp (`2021-08-10T06:09:39Z`) to unix seconds.
pub fn parse_timestamp(value: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}
