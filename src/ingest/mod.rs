//! Reading what a provider sends to a source (SPEC §8.2): each kind's request parsed into what
//! herald does with it, an event to relay, a handshake to answer, a request filtered out, or a
//! refusal. No I/O: the request comes in whole (its body already read, within
//! [`MAX_BODY_BYTES`]), and the outbox stores what comes out. Multipart bodies are read with
//! `multer` over the body in memory, so this is `async`, but it waits on nothing.
//!
//! One module per provider: `strava`, `plex`, `jellyfin`, `emby`, and `signed` (Standard
//! Webhooks and GitHub); `playback` is the one shape of the three media servers' events,
//! `body` reads JSON, form and multipart bodies.

mod body;
mod emby;
mod jellyfin;
mod playback;
mod plex;
mod signed;
mod strava;

pub use crate::domain::source::Relayed;
use crate::domain::source::{RelayedName, SourceKind, SourceSettings};
use bytes::Bytes;

/// The largest request body a source accepts (1 MiB): a Plex request with its thumbnail, an
/// Emby payload with every field of its item, fit many times over.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One request to a source's ingest URL.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When it arrived, unix seconds (signatures' timestamps are checked against it).
    pub now: i64,
}

impl Request {
    /// A header's value (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What herald does with a request it accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Strava's subscription handshake: answer `{"hub.challenge": challenge}`.
    Handshake { challenge: String },
    /// Left out by the source's settings: answer 200, relay nothing.
    Filtered { message: String },
    /// Relay an event.
    Relay(Relayed),
}

/// A request refused: the HTTP status to answer and why, in a sentence for the admin reading
/// the request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

impl Rejection {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Rejection::new(400, message)
    }
}

/// Reads a request to a source set up as `source`.
pub async fn read(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let kind = source.kind;
    if kind == SourceKind::Strava && req.method == "GET" {
        return strava::handshake(source, req);
    }
    if req.method != "POST" {
        let allowed = if kind == SourceKind::Strava {
            "GET (the subscription handshake) and POST"
        } else {
            "POST"
        };
        return Err(Rejection::new(
            405,
            format!(
                "{} is not allowed: a {} source takes {allowed}",
                req.method,
                kind.as_str()
            ),
        ));
    }
    match kind {
        SourceKind::Strava => strava::event(source, req),
        SourceKind::Plex => plex::event(source, req).await,
        SourceKind::Jellyfin => jellyfin::event(source, req),
        SourceKind::Emby => emby::event(source, req).await,
        SourceKind::StandardWebhooks => signed::standard(source, req),
        SourceKind::Github => signed::github(source, req),
    }
}

/// Who and where a request says it comes from, for `allowedUsers` and `allowedServers`.
#[derive(Debug, Default)]
struct Origin<'a> {
    /// The user's id and name (either may match).
    user: [Option<&'a str>; 2],
    server: Option<&'a str>,
}

/// Relays `relayed` (whose provider event is `event`) unless the source's settings leave it
/// out: `event` not among `events`, a user not among `allowedUsers`, a server not among
/// `allowedServers` (each when set).
fn unless_filtered(
    source: &SourceSettings,
    event: &str,
    origin: &Origin<'_>,
    relayed: Relayed,
) -> Outcome {
    let filtered = |message: String| Outcome::Filtered { message };
    if !source.events.matches(event) {
        return filtered(format!(
            "{event} is not among the source's events ({})",
            source.events.as_slice().join(", ")
        ));
    }
    let allowed = &source.allowed_users;
    if !allowed.is_empty()
        && !origin
            .user
            .iter()
            .flatten()
            .any(|u| allowed.contains(&(*u).to_owned()))
    {
        let who: Vec<&str> = origin.user.iter().flatten().copied().collect();
        let who = if who.is_empty() {
            "no user".to_owned()
        } else {
            format!("user {}", who.join(" / "))
        };
        return filtered(format!("{event} from {who}, not among allowedUsers"));
    }
    let servers = &source.allowed_servers;
    if !servers.is_empty()
        && !origin
            .server
            .is_some_and(|s| servers.iter().any(|a| a == s))
    {
        let server = origin.server.unwrap_or("no server");
        return filtered(format!(
            "{event} from server {server}, not among allowedServers"
        ));
    }
    Outcome::Relay(relayed)
}

/// The name of a relayed event, or a refusal saying why `event` cannot be one.
fn relayed_name(kind: SourceKind, event: &str) -> Result<RelayedName, Rejection> {
    RelayedName::new(kind, event).map_err(Rejection::bad)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::source::default_events;

    /// A source of `kind` with its default events and nothing else set.
    pub fn settings(kind: SourceKind) -> SourceSettings {
        SourceSettings {
            name: "test".into(),
            kind,
            verify_token: None,
            secret: None,
            events: default_events(kind),
            allowed_users: Vec::new(),
            allowed_servers: Vec::new(),
            enabled: true,
        }
    }

    /// A file of `tests/fixtures/inbound/`.
    pub fn fixture(path: &str) -> Vec<u8> {
        let full = format!(
            "{}/tests/fixtures/inbound/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// A POST with `body` and no headers.
    pub fn post(body: &[u8]) -> Request {
        Request {
            method: "POST".into(),
            query: None,
            headers: Vec::new(),
            body: Bytes::copy_from_slice(body),
            now: 0,
        }
    }

    /// A `multipart/form-data` POST with these parts (name, content).
    pub fn multipart(parts: &[(&str, &[u8])]) -> Request {
        let boundary = "herald-test-boundary";
        let mut body = Vec::new();
        for (name, content) in parts {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut req = post(&body);
        req.headers = vec![(
            "content-type".into(),
            format!("multipart/form-data; boundary={boundary}"),
        )];
        req
    }

    /// The request an `.http` fixture shows: its `###` comment lines left out, lines ending
    /// with CRLF as on the wire.
    pub fn http_fixture(path: &str) -> Request {
        let text = String::from_utf8(fixture(path)).expect("UTF-8");
        let mut lines = text
            .lines()
            .filter(|l| !l.starts_with("###"))
            .skip_while(|l| l.trim().is_empty());
        let request_line = lines.next().expect("request line");
        let method = request_line.split(' ').next().expect("method").to_owned();
        let mut headers = Vec::new();
        for line in lines.by_ref() {
            if line.trim().is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("header");
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let body = lines.collect::<Vec<_>>().join("\r\n");
        let mut req = post(format!("{}\r\n", body.trim_end()).as_bytes());
        req.method = method;
        req.headers = headers;
        req
    }

    #[tokio::test]
    async fn a_get_is_only_for_stravas_handshake() {
        let mut req = post(b"");
        req.method = "GET".into();
        let e = read(&settings(SourceKind::Plex), &req)
            .await
            .expect_err("GET");
        assert_eq!(e.status, 405);
        req.method = "PUT".into();
        let e = read(&settings(SourceKind::Strava), &req)
            .await
            .expect_err("PUT");
        assert_eq!(e.status, 405);
    }
}
