//! The outbound HTTP client: builds, signs and sends one attempt, and reads the answer.
//!
//! The destination guard lives in the DNS resolver: outside dev mode every address a name
//! resolves to is checked, and the connection is made only to the addresses that passed, so a
//! name cannot resolve to a public address for the check and a private one for the connection
//! (DNS rebinding). URLs with a literal IP are checked before the request. No proxy is used,
//! whatever the environment says: through one, the guard would check nothing.

use crate::domain::delivery::{AttemptOutcome, AttemptResult, Response, RESPONSE_BODY_CAP};
use crate::domain::net::{NetPolicy, NotPublic};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use herald_verify::{
    format_timestamp, header, rewatch_signatures_header, standard_signatures_header,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER,
    USER_AGENT,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `User-Agent` of every delivery.
pub const USER_AGENT_VALUE: &str = crate::domain::delivery::USER_AGENT;

/// How long an endpoint may take to answer the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// What an attempt sends.
pub struct Request<'a> {
    pub url: &'a str,
    pub hook_id: &'a str,
    pub event: &'a str,
    pub nonce: &'a str,
    pub secrets: &'a [String],
    /// Shared with the request as it is sent, never copied.
    pub body: &'a Bytes,
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    policy: NetPolicy,
    /// Destination URLs already parsed and checked, with the verdict: a webhook's URL is
    /// parsed once, not at every attempt.
    urls: Arc<Mutex<HashMap<String, Result<url::Url, DestinationRefused>>>>,
}

// The errors below carry no `source`: each message is whole, and `describe`, which prints a
// reqwest error's cause chain, would repeat it.

/// A destination herald may not contact. The message becomes the attempt's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DestinationRefused {
    #[error("destination refused: invalid URL: {0}")]
    InvalidUrl(url::ParseError),
    /// The URL's host is a literal address that may not be contacted.
    #[error("destination refused: {0}")]
    NotPublic(NotPublic),
    /// The name resolved only to addresses that may not be contacted; `cause` is the first.
    #[error("destination refused: {host}: {cause}")]
    Resolved { host: String, cause: NotPublic },
    #[error("destination refused: {host}: {host} has no address")]
    NoAddress { host: String },
}

/// Why an endpoint failed the handshake; shown to the admin who asked for it.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Refused(DestinationRefused),
    #[error("the endpoint could not be reached: {}", describe(.0))]
    Unreachable(reqwest::Error),
    #[error(
        "the endpoint did not answer the verification request within {} s",
        HANDSHAKE_TIMEOUT.as_secs()
    )]
    TimedOut,
    #[error("the endpoint answered the verification request with {0}, not 200")]
    Status(reqwest::StatusCode),
    #[error("the endpoint answered with a different hub.challenge")]
    WrongChallenge,
    #[error(
        "the endpoint's answer is not JSON of the form {{\"hub.challenge\": \"<the challenge>\"}}"
    )]
    NotAChallenge,
}

/// A delivery header whose value HTTP does not allow.
#[derive(Debug, thiserror::Error)]
#[error("header {name}: {cause}")]
struct InvalidHeader {
    name: HeaderName,
    cause: InvalidHeaderValue,
}

/// The most URLs [`Sender`] keeps parsed; past it, it starts over.
const URL_CACHE: usize = 4096;

struct GuardedResolver {
    policy: NetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(cause) => {
                        refused.get_or_insert(cause);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let refusal = match refused {
                    Some(cause) => DestinationRefused::Resolved { host, cause },
                    None => DestinationRefused::NoAddress { host },
                };
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl Sender {
    pub fn new(timeout: Duration, policy: NetPolicy) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            // Never through a proxy from the environment (HTTPS_PROXY, ALL_PROXY…): the proxy
            // would resolve and connect to the destination, past the guard below.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // An attempt is never retried inside the client: the engine decides what becomes of
            // a failed one. (reqwest's default retries HTTP/2 refusals, and copies every request
            // to be able to.)
            .retry(reqwest::retry::never())
            .build()?;
        Ok(Sender {
            client,
            timeout,
            policy,
            urls: Arc::default(),
        })
    }

    /// One attempt's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Signs and sends one attempt; never fails, the outcome says what happened.
    pub async fn send(&self, req: &Request<'_>) -> Response {
        let at = Utc::now();
        let started = Instant::now();
        let (outcome, response_body) = match self.checked_url_cached(req.url) {
            Err(refused) => (
                failure(AttemptResult::ConnectionError, None, refused.to_string()),
                None,
            ),
            Ok(url) => {
                match tokio::time::timeout(self.timeout, self.exchange(url, req, at)).await {
                    Ok(done) => done,
                    Err(_) => (
                        failure(
                            AttemptResult::RequestTimeout,
                            None,
                            format!("no answer within {} ms", self.timeout.as_millis()),
                        ),
                        None,
                    ),
                }
            }
        };
        Response {
            outcome,
            at,
            duration: started.elapsed(),
            response_body,
        }
    }

    /// The endpoint handshake: `GET <url>?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<random>`
    /// must answer 200 within [`HANDSHAKE_TIMEOUT`] with the JSON body `{"hub.challenge": "<the same>"}`.
    /// `Err` says what the endpoint answered instead.
    pub async fn handshake(&self, url: &str, token: &str) -> Result<(), HandshakeError> {
        let mut target = self.checked_url(url).map_err(HandshakeError::Refused)?;
        let challenge = hex::encode(rand::random::<[u8; 16]>());
        target
            .query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.verify_token", token)
            .append_pair("hub.challenge", &challenge);
        let exchange = async {
            let mut resp = self
                .client
                .get(target)
                .send()
                .await
                .map_err(HandshakeError::Unreachable)?;
            let status = resp.status();
            Ok::<_, HandshakeError>((status, read_capped(&mut resp).await))
        };
        let (status, body) = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
            .await
            .map_err(|_| HandshakeError::TimedOut)??;
        if status != reqwest::StatusCode::OK {
            return Err(HandshakeError::Status(status));
        }
        let echoed = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("hub.challenge")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            });
        match echoed {
            Some(c) if c == challenge => Ok(()),
            Some(_) => Err(HandshakeError::WrongChallenge),
            None => Err(HandshakeError::NotAChallenge),
        }
    }

    /// [`Sender::checked_url`], remembered.
    fn checked_url_cached(&self, url: &str) -> Result<url::Url, DestinationRefused> {
        if let Some(known) = self.urls.lock().ok().and_then(|m| m.get(url).cloned()) {
            return known;
        }
        let verdict = self.checked_url(url);
        if let Ok(mut m) = self.urls.lock() {
            if m.len() >= URL_CACHE {
                m.clear();
            }
            m.insert(url.to_owned(), verdict.clone());
        }
        verdict
    }

    /// `url` parsed, and checked when its host is a literal address. The request is made to
    /// this parsed URL, so it is parsed once.
    fn checked_url(&self, url: &str) -> Result<url::Url, DestinationRefused> {
        let parsed = url::Url::parse(url).map_err(DestinationRefused::InvalidUrl)?;
        let ip: Option<IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(v4.into()),
            Some(url::Host::Ipv6(v6)) => Some(v6.into()),
            _ => None,
        };
        if let Some(ip) = ip {
            self.policy
                .check(ip)
                .map_err(DestinationRefused::NotPublic)?;
        }
        Ok(parsed)
    }

    async fn exchange(
        &self,
        url: url::Url,
        req: &Request<'_>,
        at: DateTime<Utc>,
    ) -> (AttemptOutcome, Option<String>) {
        let headers = match signed_headers(req, at) {
            Ok(h) => h,
            Err(e) => return (failure(AttemptResult::Unknown, None, e.to_string()), None),
        };
        // The request is built whole rather than through a `RequestBuilder`, whose `headers`
        // merges the map into the request's one entry at a time.
        let mut request = reqwest::Request::new(reqwest::Method::POST, url);
        *request.headers_mut() = headers;
        *request.body_mut() = Some(reqwest::Body::from(req.body.clone()));
        let sent = self.client.execute(request).await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return (classify(&e), None),
        };
        let status = resp.status();
        let retry_after = if status.as_u16() == 429 || status.as_u16() == 503 {
            resp.headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        } else {
            None
        };
        let body = read_capped(&mut resp).await;
        let text = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
        let code = Some(status.as_u16());
        let outcome = if status.is_success() {
            AttemptOutcome {
                result: AttemptResult::Success,
                code,
                message: None,
                retry_after: None,
            }
        } else {
            AttemptOutcome {
                result: AttemptResult::RequestFailure,
                code,
                message: Some(format!("receiver answered {status}")),
                retry_after,
            }
        };
        (outcome, text)
    }
}

/// The start of an answer's body, at most [`RESPONSE_BODY_CAP`] bytes; the rest is not read.
/// A body cut short by an error is kept as far as it was read: the status decides the outcome.
async fn read_capped(resp: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < RESPONSE_BODY_CAP {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_BODY_CAP - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

fn failure(result: AttemptResult, code: Option<u16>, message: String) -> AttemptOutcome {
    AttemptOutcome {
        result,
        code,
        message: Some(message),
        retry_after: None,
    }
}

/// The whole cause chain of an error, which holds the guard's reason when it refused.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn classify(e: &reqwest::Error) -> AttemptOutcome {
    let result = if e.is_timeout() {
        AttemptResult::RequestTimeout
    } else if e.is_connect() || e.is_request() {
        AttemptResult::ConnectionError
    } else {
        AttemptResult::Unknown
    };
    failure(result, None, describe(e))
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let ms = when.timestamp_millis() - Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// The headers of an attempt made at `at`, as name/value pairs (for `herald listen`).
pub fn header_pairs(req: &Request<'_>, at: DateTime<Utc>) -> Vec<(String, String)> {
    match signed_headers(req, at) {
        Ok(h) => h
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn signed_headers(req: &Request<'_>, at: DateTime<Utc>) -> Result<HeaderMap, InvalidHeader> {
    let timestamp = format_timestamp(at);
    let unix = at.timestamp();
    let rewatch =
        rewatch_signatures_header(req.secrets, req.hook_id, req.event, req.nonce, &timestamp);
    let standard = standard_signatures_header(req.secrets, req.nonce, unix, req.body);
    let mut h = HeaderMap::with_capacity(11);
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        ACCEPT,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    // Borrowed values are copied once into their header; owned ones are moved in.
    let values = [
        HeaderValue::from_str(req.hook_id),
        HeaderValue::from_str(req.event),
        HeaderValue::from_str(req.nonce),
        HeaderValue::try_from(timestamp),
        HeaderValue::try_from(rewatch),
        HeaderValue::from_str(req.nonce),
        HeaderValue::try_from(unix.to_string()),
        HeaderValue::try_from(standard),
    ];
    for (name, value) in DELIVERY_HEADERS.iter().zip(values) {
        let value = value.map_err(|cause| InvalidHeader {
            name: name.clone(),
            cause,
        })?;
        h.insert(name.clone(), value);
    }
    Ok(h)
}

/// The names of the headers [`signed_headers`] sets per attempt, in the order of its values;
/// parsed once.
static DELIVERY_HEADERS: std::sync::LazyLock<[HeaderName; 8]> = std::sync::LazyLock::new(|| {
    [
        header::HOOK_ID,
        header::EVENT,
        header::NONCE,
        header::TIMESTAMP,
        header::SIGNATURES,
        header::WEBHOOK_ID,
        header::WEBHOOK_TIMESTAMP,
        header::WEBHOOK_SIGNATURE,
    ]
    // herald's own constants, valid names (every delivery in the tests sends them).
    .map(|name| HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"))
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process of [`the_client_ignores_proxy_variables`].
    const PROXY_CHILD: &str = "HERALD_TEST_PROXY_CHILD";

    /// With `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` pointing at a listener, neither a delivery
    /// nor a handshake connects to it. (Through a proxy, the guard would check nothing: the
    /// proxy resolves the name.) Environment variables are process-wide and other tests build
    /// clients at the same time, so the parent never sets them: it runs this test binary again,
    /// for this one test, with the variables set only in that child's environment.
    #[test]
    fn the_client_ignores_proxy_variables() {
        if std::env::var_os(PROXY_CHILD).is_some() {
            return send_through_proxy_variables();
        }
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake proxy");
        proxy.set_nonblocking(true).expect("non-blocking");
        let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        child
            .args([
                "worker::sender::tests::the_client_ignores_proxy_variables",
                "--exact",
                "--test-threads=1",
            ])
            .env(PROXY_CHILD, "1")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("REQUEST_METHOD");
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            child.env(var, &proxy_url);
        }
        let out = child.output().expect("run the child test");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "child: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A connection the child made would wait in the listener's backlog.
        match proxy.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!("the client connected to the proxy (from {from})"),
            Err(e) => panic!("accept: {e}"),
        }
    }

    /// The child's part: a delivery over http and https, and a handshake, to a name that does
    /// not resolve; they fail, and must fail without a proxy's help.
    fn send_through_proxy_variables() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let sender = Sender::new(Duration::from_secs(1), NetPolicy::default()).expect("client");
            let body = Bytes::from_static(b"{}");
            for url in [
                "http://herald-proxy-test.invalid/hook",
                "https://herald-proxy-test.invalid/hook",
            ] {
                let secrets = ["s".repeat(40)];
                let req = Request {
                    url,
                    hook_id: "V2ViaG9vay0x",
                    event: "video.updated",
                    nonce: "00",
                    secrets: &secrets,
                    body: &body,
                };
                let sent = sender.send(&req).await;
                assert_ne!(sent.outcome.result, AttemptResult::Success, "{url}");
            }
            assert!(sender
                .handshake("https://herald-proxy-test.invalid/hook", "token")
                .await
                .is_err());
        });
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn refusals_and_failed_handshakes_say_why_in_a_sentence() {
        let ip = "10.0.0.1".parse().expect("ip");
        let not_public = NetPolicy::default().check(ip).expect_err("private");
        let rule = "herald delivers only to public addresses (see HERALD_ALLOWED_NETWORKS)";
        assert_eq!(
            DestinationRefused::NotPublic(not_public).to_string(),
            format!("destination refused: 10.0.0.1 is a private address; {rule}")
        );
        let resolved = DestinationRefused::Resolved {
            host: "internal.example".into(),
            cause: not_public,
        };
        assert_eq!(
            resolved.to_string(),
            format!("destination refused: internal.example: 10.0.0.1 is a private address; {rule}")
        );
        let none = DestinationRefused::NoAddress {
            host: "void.example".into(),
        };
        assert_eq!(
            none.to_string(),
            "destination refused: void.example: void.example has no address"
        );
        let invalid = Sender::new(Duration::from_secs(1), NetPolicy::default())
            .expect("client")
            .checked_url("not a url")
            .expect_err("invalid");
        assert_eq!(
            invalid.to_string(),
            "destination refused: invalid URL: relative URL without a base"
        );
        assert_eq!(
            HandshakeError::TimedOut.to_string(),
            "the endpoint did not answer the verification request within 2 s"
        );
        assert_eq!(
            HandshakeError::Status(reqwest::StatusCode::NOT_FOUND).to_string(),
            "the endpoint answered the verification request with 404 Not Found, not 200"
        );
        assert_eq!(
            HandshakeError::NotAChallenge.to_string(),
            "the endpoint's answer is not JSON of the form {\"hub.challenge\": \"<the challenge>\"}"
        );
    }
}
