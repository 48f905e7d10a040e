//! Services that sign their requests: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, a five-minute window) and GitHub (`X-Hub-Signature-256` over the body).
//! A bad signature is refused with 401; the delivery id marks resends.

use super::body::{json_object, media_type, urlencoded_field};
use super::{relayed_name, unless_filtered, Origin, Outcome, Rejection, Relayed, Request};
use crate::domain::source::{SourceKind, SourceSettings};
use herald_verify::Verifier;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The most characters of a delivery id kept to tell resends by.
const MAX_ID_LEN: usize = 200;

fn secret(source: &SourceSettings) -> Result<&str, Rejection> {
    source
        .secret
        .as_ref()
        .map(|s| s.as_str())
        .ok_or_else(|| Rejection::new(401, "the source has no secret to check signatures with"))
}

fn delivery_id(id: &str, header: &str) -> Result<String, Rejection> {
    if id.is_empty() || id.chars().count() > MAX_ID_LEN {
        return Err(Rejection::bad(format!(
            "{header} must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    Ok(id.to_owned())
}

pub(super) fn standard(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let verified = Verifier::new([secret(source)?])
        .verify_standard_at(&req.headers, &req.body, req.now)
        .map_err(|e| {
            Rejection::new(
                401,
                format!("the Standard Webhooks signature does not verify: {e}"),
            )
        })?;
    let body = json_object(&req.body, "the body")?;
    let kind = match body.value.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => return Err(Rejection::bad("the body has no type (a string)")),
    };
    let relayed = Relayed {
        name: relayed_name(SourceKind::StandardWebhooks, &kind)?,
        dedupe_key: Some(delivery_id(&verified.nonce, "webhook-id")?),
        object_key: "data",
        object: body.text,
        raw: None,
    };
    Ok(unless_filtered(source, &kind, &Origin::default(), relayed))
}

pub(super) fn github(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let signature = req
        .header("x-hub-signature-256")
        .ok_or_else(|| Rejection::new(401, "X-Hub-Signature-256 is missing"))?;
    let tag = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| Rejection::new(401, "X-Hub-Signature-256 is not sha256=<hex>"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret(source)?.as_bytes())
        .map_err(|_| Rejection::new(401, "the source's secret cannot key an HMAC"))?;
    mac.update(&req.body);
    mac.verify_slice(&tag).map_err(|_| {
        Rejection::new(
            401,
            "X-Hub-Signature-256 does not match the body signed with the source's secret",
        )
    })?;
    let event = req
        .header("x-github-event")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Rejection::bad("X-GitHub-Event is missing"))?
        .to_owned();
    let dedupe_key = match req.header("x-github-delivery") {
        Some(id) => Some(delivery_id(id.trim(), "X-GitHub-Delivery")?),
        None => None,
    };
    // GitHub's other content type puts the JSON in a form field, `payload`.
    let body = if media_type(req).as_deref() == Some("application/x-www-form-urlencoded") {
        let payload = urlencoded_field(&req.body, "payload")
            .ok_or_else(|| Rejection::bad("the form has no field named \"payload\""))?;
        json_object(payload.as_bytes(), "the \"payload\" field")?
    } else {
        json_object(&req.body, "the body")?
    };
    let relayed = Relayed {
        name: relayed_name(SourceKind::Github, &event)?,
        dedupe_key,
        object_key: "data",
        object: body.text,
        raw: None,
    };
    Ok(unless_filtered(source, &event, &Origin::default(), relayed))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{post, settings};
    use super::*;
    use crate::domain::source::SourceSecret;

    fn signed(kind: SourceKind, secret: &str) -> SourceSettings {
        let mut s = settings(kind);
        s.secret = Some(SourceSecret::parse(secret).expect("secret"));
        s
    }

    fn with_headers(body: &[u8], headers: &[(&str, &str)], now: i64) -> Request {
        let mut req = post(body);
        req.headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        req.now = now;
        req
    }

    const SW_SECRET: &str = "whsec_aGVyYWxkLXN0YW5kYXJkLXdlYmhvb2tzLXRlc3Qta2V5";
    const SW_BODY: &[u8] =
        br#"{"type":"user.created","timestamp":"2023-01-19T00:13:51Z","data":{"id":"u_1"}}"#;

    fn sw_headers(signature: &str) -> [(&str, &str); 3] {
        [
            ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            ("webhook-timestamp", "1674087231"),
            ("webhook-signature", signature),
        ]
    }

    #[test]
    fn the_standard_webhooks_vector_verifies_and_becomes_inbound_user_created() {
        let source = signed(SourceKind::StandardWebhooks, SW_SECRET);
        let headers = sw_headers("v1,/uZUuJZEW7mbqubSxqJ0xOAKJ+opIR2KajNjDTqe078=");
        let req = with_headers(SW_BODY, &headers, 1_674_087_231 + 60);
        let Ok(Outcome::Relay(r)) = standard(&source, &req) else {
            panic!("not relayed");
        };
        assert_eq!(r.name.as_str(), "inbound.user.created");
        assert_eq!(
            r.dedupe_key.as_deref(),
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
        );
        assert_eq!(r.object.as_bytes(), SW_BODY);
        assert_eq!(r.raw, None);
    }

    #[test]
    fn bad_or_stale_standard_signatures_are_401() {
        let source = signed(SourceKind::StandardWebhooks, SW_SECRET);
        let good = sw_headers("v1,/uZUuJZEW7mbqubSxqJ0xOAKJ+opIR2KajNjDTqe078=");
        let late = with_headers(SW_BODY, &good, 1_674_087_231 + 301);
        assert_eq!(standard(&source, &late).map_err(|e| e.status), Err(401));
        let forged = sw_headers("v1,AAAAuJZEW7mbqubSxqJ0xOAKJ+opIR2KajNjDTqe078=");
        let req = with_headers(SW_BODY, &forged, 1_674_087_231);
        assert_eq!(standard(&source, &req).map_err(|e| e.status), Err(401));
        let tampered = with_headers(&SW_BODY[1..], &good, 1_674_087_231);
        assert_eq!(standard(&source, &tampered).map_err(|e| e.status), Err(401));
        let unsigned = with_headers(SW_BODY, &[], 1_674_087_231);
        assert_eq!(standard(&source, &unsigned).map_err(|e| e.status), Err(401));
    }

    #[test]
    fn the_github_vector_verifies_and_a_wrong_one_is_401() {
        let source = signed(SourceKind::Github, "It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        // The documented vector signs a body that is not JSON: the signature passes, the body
        // is then refused for what it is.
        let req = with_headers(
            b"Hello, World!",
            &[("x-hub-signature-256", sig), ("x-github-event", "push")],
            0,
        );
        let e = github(&source, &req).expect_err("not JSON");
        assert_eq!(e.status, 400, "{}", e.message);
        let wrong = with_headers(
            b"Hello, World?",
            &[("x-hub-signature-256", sig), ("x-github-event", "push")],
            0,
        );
        assert_eq!(github(&source, &wrong).map_err(|e| e.status), Err(401));
    }

    #[test]
    fn a_signed_github_push_becomes_github_push_with_its_delivery_id() {
        let secret = "It's a Secret to Everybody";
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let req = with_headers(
            body,
            &[
                ("x-hub-signature-256", &sig),
                ("x-github-event", "push"),
                ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ],
            0,
        );
        let Ok(Outcome::Relay(r)) = github(&signed(SourceKind::Github, secret), &req) else {
            panic!("not relayed");
        };
        assert_eq!(r.name.as_str(), "github.push");
        assert_eq!(
            r.dedupe_key.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(r.object.as_bytes(), body);
    }
}
