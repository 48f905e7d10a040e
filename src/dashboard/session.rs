//! Signing in and out, the session cookie, and the checks on every change.
//!
//! Sign-in takes an API token of a channel admin (the tokens the GraphQL API takes) and opens a
//! session for it: a random id in a cookie, of which the database keeps only the hash. The
//! session is refused from the moment it expires ([`SESSION_HOURS`]), is signed out, or its
//! token is revoked; a user who is no longer an admin is asked to sign in again.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/dashboard`, and `Secure` (HTTPS only) unless herald runs in dev mode
//! (`HERALD_DEV`), the one setting under which herald is meant to be reached over plain HTTP.
//!
//! Every change is a `POST` whose form carries the session's form token, an HMAC of the
//! session id (so nothing more is stored), compared in constant time; and a `POST` whose
//! `Origin` is another site's is refused before any handler runs.

use super::failure::Failure;
use super::{view, Dashboard};
use crate::domain::content::Role;
use crate::domain::time::now_ms;
use crate::domain::token;
use crate::store::Authenticated;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a session lasts from sign-in.
pub const SESSION_HOURS: i64 = 12;
const SESSION_MS: i64 = SESSION_HOURS * 3_600_000;

const SESSION_COOKIE: &str = "herald_session";
const FLASH_COOKIE: &str = "herald_flash";

/// A session id: 32 random bytes, URL-safe base64 (43 characters).
fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether a cookie's value has the shape of a session id (anything else is not looked up).
fn plausible_session_id(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The form token of a session: an HMAC of the session id, which only its holder knows.
fn form_token(session_id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session_id.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"herald dashboard form");
    hex::encode(mac.finalize().into_bytes())
}

/// The value of the request's cookie `name`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for a dashboard cookie: gone after `max_age` seconds (0: at once).
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::try_from(text).expect("cookie values are URL-safe text")
}

/// A message for the next page shown, after a change (kept a minute at most, in a cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    pub fn problem(text: impl Into<String>) -> Self {
        Flash {
            ok: false,
            text: text.into(),
        }
    }

    fn read(headers: &HeaderMap) -> Option<Flash> {
        let raw = cookie(headers, FLASH_COOKIE)?;
        let (kind, text) = raw.split_once('.')?;
        let text: String = url::form_urlencoded::parse(format!("t={text}").as_bytes())
            .next()?
            .1
            .into_owned();
        Some(Flash {
            ok: kind == "ok",
            text,
        })
    }

    fn cookie(&self, secure: bool) -> HeaderValue {
        let kind = if self.ok { "ok" } else { "problem" };
        let text: String = url::form_urlencoded::byte_serialize(self.text.as_bytes()).collect();
        set_cookie(FLASH_COOKIE, &format!("{kind}.{text}"), 60, secure)
    }

    /// The `Set-Cookie` that drops a flash once it was shown.
    pub fn shown(secure: bool) -> HeaderValue {
        set_cookie(FLASH_COOKIE, "", 0, secure)
    }
}

/// 303 to `to` (a dashboard path), with a message for the page there.
pub fn redirect(d: &Dashboard, to: &str, flash: Flash) -> Response {
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, flash.cookie(d.secure_cookies));
    response
}

/// A signed-in channel admin, from the session cookie.
pub struct Signed {
    pub actor: Authenticated,
    /// The session's form token, for the forms of the page.
    pub csrf: String,
    /// The message left by the change that led here.
    pub flash: Option<Flash>,
    /// Whether cookies are `Secure` (to drop the flash once shown).
    pub secure_cookies: bool,
    session_hash: String,
}

impl FromRequestParts<Dashboard> for Signed {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, d: &Dashboard) -> Result<Self, Failure> {
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|id| plausible_session_id(id))
            .ok_or(Failure::SignIn)?;
        let session_hash = token::hash(id);
        let actor = d
            .store
            .session(&session_hash, now_ms())
            .await?
            .filter(|a| a.user.role == Role::Admin)
            .ok_or(Failure::SignIn)?;
        Ok(Signed {
            actor,
            csrf: form_token(id),
            flash: Flash::read(&parts.headers),
            secure_cookies: d.secure_cookies,
            session_hash,
        })
    }
}

/// A change asked for by a signed-in admin: a `POST` whose form carries the session's form
/// token. Its other fields are in `fields`.
pub struct Checked {
    pub actor: Authenticated,
    pub fields: Vec<(String, String)>,
    session_hash: String,
}

impl Checked {
    /// The form's field `name`, if it has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequest<Dashboard> for Checked {
    type Rejection = Failure;

    async fn from_request(request: Request, d: &Dashboard) -> Result<Self, Failure> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, d).await?;
        let request = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, d)
            .await
            .map_err(|_| Failure::BadRequest("The form could not be read."))?;
        let given = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(signed.csrf.as_bytes())) {
            return Err(Failure::Forbidden(
                "This form is not from your current session (it may be from an older one, or \
                 from another site). Open the page again and retry.",
            ));
        }
        Ok(Checked {
            actor: signed.actor,
            fields,
            session_hash: signed.session_hash,
        })
    }
}

/// Refuses a change (any method but `GET` and `HEAD`) sent from a page of another origin: its
/// `Origin` must name the host the request was sent to (`Host`, or `X-Forwarded-Host` from a
/// proxy). Without an `Origin`, a browser's `Sec-Fetch-Site: cross-site` is refused too.
pub async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let h = request.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let refused = match text(header::ORIGIN.as_str()) {
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, host)| host);
            let ours = [text(header::HOST.as_str()), text("x-forwarded-host")];
            !ours
                .iter()
                .flatten()
                .any(|host| origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host)))
        }
        None => text("sec-fetch-site") == Some("cross-site"),
    };
    if refused {
        return Failure::Forbidden(
            "Changes are accepted only from herald's own pages, and this one came from another site.",
        )
        .into_response();
    }
    next.run(request).await
}

/// `GET /dashboard/sign-in`: the form, unless the session is still good.
pub async fn sign_in_page(
    State(d): State<Dashboard>,
    request: Request,
) -> Result<Response, Failure> {
    let (mut parts, _) = request.into_parts();
    match Signed::from_request_parts(&mut parts, &d).await {
        Ok(_) => Ok(Redirect::to("/dashboard/webhooks").into_response()),
        Err(Failure::SignIn) => {
            let flash = Flash::read(&parts.headers);
            let mut page = sign_in_form(StatusCode::OK, None, flash.as_ref());
            if flash.is_some() {
                page.headers_mut()
                    .append(header::SET_COOKIE, Flash::shown(d.secure_cookies));
            }
            Ok(page)
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

/// `POST /dashboard/sign-in`: opens a session for an admin's API token.
pub async fn sign_in(
    State(d): State<Dashboard>,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Result<Response, Failure> {
    let Ok(Form(SignIn { token: raw })) = form else {
        return Err(Failure::BadRequest("The form could not be read."));
    };
    let tok = raw.trim();
    let plausible = !tok.is_empty()
        && tok.len() <= 256
        && tok.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if !plausible {
        let why = "Paste an API token: `herald token create --role admin` prints one.";
        return Ok(sign_in_form(StatusCode::UNAUTHORIZED, Some(why), None));
    }
    let token_hash = token::hash(tok);
    let Some(who) = d.store.authenticate(&token_hash).await? else {
        let why = "This token is unknown, or it was revoked.";
        return Ok(sign_in_form(StatusCode::UNAUTHORIZED, Some(why), None));
    };
    if who.user.role != Role::Admin {
        let why = "Only channel admins may sign in to the dashboard, and this token is a member's.";
        return Ok(sign_in_form(StatusCode::FORBIDDEN, Some(why), None));
    }
    let id = new_session_id();
    let now = now_ms();
    match d
        .store
        .open_session(&token_hash, &token::hash(&id), now, now + SESSION_MS)
        .await
    {
        Ok(()) => {}
        // Revoked between the two statements.
        Err(crate::store::StoreError::NotFound) => {
            let why = "This token is unknown, or it was revoked.";
            return Ok(sign_in_form(StatusCode::UNAUTHORIZED, Some(why), None));
        }
        Err(e) => return Err(e.into()),
    }
    let mut response = Redirect::to("/dashboard/webhooks").into_response();
    let max_age = SESSION_MS / 1000;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, max_age, d.secure_cookies),
    );
    Ok(response)
}

/// `POST /dashboard/sign-out`: ends the session, in the database as well as in the browser.
pub async fn sign_out(State(d): State<Dashboard>, change: Checked) -> Result<Response, Failure> {
    d.store.close_session(&change.session_hash).await?;
    let mut response = redirect(&d, "/dashboard/sign-in", Flash::ok("Signed out."));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, d.secure_cookies),
    );
    Ok(response)
}

fn sign_in_form(status: StatusCode, problem: Option<&str>, flash: Option<&Flash>) -> Response {
    let body = html! {
        div.signin {
            div.brand.big { span.logo { "h" } "herald" }
            form.card method="post" action="/dashboard/sign-in" {
                h1 { "Sign in" }
                p.muted {
                    "Paste the API token of a channel admin: the one herald wrote when it first started, or one that "
                    code { "herald token create --role admin" } " printed."
                }
                @if let Some(flash) = flash { (view::flash(flash)) }
                @if let Some(problem) = problem {
                    p.flash.problem role="alert" { (problem) }
                }
                label for="token" { "API token" }
                input #token .mono type="password" name="token" autocomplete="off"
                    spellcheck="false" required autofocus placeholder="hrld_…";
                button.primary type="submit" { "Sign in" }
                p.muted.small {
                    "You stay signed in for " (SESSION_HOURS) " hours, until you sign out, or until the token is revoked."
                }
            }
        }
    };
    (status, view::bare("Sign in", body)).into_response()
}
