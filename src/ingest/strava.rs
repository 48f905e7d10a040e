//! Strava push subscriptions: the validation GET, then event POSTs (JSON, numbers sometimes as
//! strings), which Strava resends when not answered 200 within two seconds.

use super::body::{int, json_object};
use super::{relayed_name, unless_filtered, Origin, Outcome, Rejection, Relayed, Request};
use crate::domain::source::{truncated, SourceKind, SourceSettings};
use crate::domain::time::format_ms;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

/// The most characters of a `hub.challenge` echoed back.
const MAX_CHALLENGE_LEN: usize = 256;

/// `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`: answered with the challenge
/// when T is the source's verify token.
pub(super) fn handshake(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let query = req.query.as_deref().unwrap_or_default();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("hub.mode").as_deref() != Some("subscribe") {
        return Err(Rejection::bad(
            "a GET is Strava's subscription handshake: hub.mode must be subscribe",
        ));
    }
    let expected = source.verify_token.as_ref().map(|t| t.as_str().as_bytes());
    let given = param("hub.verify_token").unwrap_or_default();
    let matches = expected.is_some_and(|e| bool::from(e.ct_eq(given.as_bytes())));
    if !matches {
        return Err(Rejection::bad(
            "hub.verify_token is not the source's verifyToken",
        ));
    }
    match param("hub.challenge") {
        Some(c) if !c.is_empty() && c.chars().count() <= MAX_CHALLENGE_LEN && !c.contains('\0') => {
            Ok(Outcome::Handshake { challenge: c })
        }
        _ => Err(Rejection::bad(format!(
            "hub.challenge must be 1 to {MAX_CHALLENGE_LEN} characters"
        ))),
    }
}

/// An event POST.
pub(super) fn event(source: &SourceSettings, req: &Request) -> Result<Outcome, Rejection> {
    let body = json_object(&req.body, "the body")?;
    let e = StravaEvent::read(&body.value).map_err(Rejection::bad)?;
    let (owner, subscription) = (e.owner_id.to_string(), e.subscription_id.to_string());
    let relayed = Relayed {
        name: relayed_name(SourceKind::Strava, &e.event)?,
        dedupe_key: Some(format!(
            "{}:{}:{}:{}:{}",
            e.subscription_id, e.object_type, e.object_id, e.aspect_type, e.event_time
        )),
        object_key: e.object_key,
        object: e.object().to_string(),
        raw: Some(body.text),
    };
    let origin = Origin {
        user: [Some(&owner), None],
        server: Some(&subscription),
    };
    Ok(unless_filtered(source, &e.event, &origin, relayed))
}

/// One Strava event, its fields checked.
#[derive(Debug)]
struct StravaEvent {
    object_key: &'static str,
    object_type: &'static str,
    aspect_type: &'static str,
    /// `activity.created`: what `events` are matched against, and the relayed name's end.
    event: String,
    object_id: i64,
    owner_id: i64,
    subscription_id: i64,
    event_time: i64,
    updates: Map<String, Value>,
}

impl StravaEvent {
    fn read(body: &Map<String, Value>) -> Result<Self, String> {
        let number = |field: &str| {
            int(body.get(field)).ok_or_else(|| format!("{field} is missing or not a whole number"))
        };
        let word = |field: &str, allowed: &[&'static str]| -> Result<&'static str, String> {
            let given = body.get(field).and_then(Value::as_str);
            given
                .and_then(|g| allowed.iter().find(|a| **a == g).copied())
                .ok_or_else(|| {
                    let shown =
                        given.map_or("nothing".into(), |g| format!("{:?}", truncated(g, 40)));
                    format!("{field} must be one of {}, not {shown}", allowed.join(", "))
                })
        };
        let object_type = word("object_type", &["activity", "athlete"])?;
        let aspect_type = word("aspect_type", &["create", "update", "delete"])?;
        let updates = match body.get("updates") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(u)) => u
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), Value::String(v))
                })
                .collect(),
            Some(_) => return Err("updates must be an object".into()),
        };
        let past = match aspect_type {
            "create" => "created",
            "update" => "updated",
            _ => "deleted",
        };
        Ok(StravaEvent {
            object_key: object_type,
            object_type,
            aspect_type,
            event: format!("{object_type}.{past}"),
            object_id: number("object_id")?,
            owner_id: number("owner_id")?,
            subscription_id: number("subscription_id")?,
            event_time: number("event_time")?,
            updates,
        })
    }

    /// `activity` or `athlete`: `{ id, ownerId, subscriptionId, eventTime, updates }`.
    fn object(&self) -> Value {
        json!({
            "id": self.object_id,
            "ownerId": self.owner_id,
            "subscriptionId": self.subscription_id,
            "eventTime": format_ms(self.event_time.saturating_mul(1000)),
            "updates": self.updates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{post, settings};
    use super::*;
    use crate::domain::webhook::VerifyToken;

    fn strava() -> SourceSettings {
        let mut s = settings(SourceKind::Strava);
        s.verify_token = Some(VerifyToken::parse("STRAVA").expect("token"));
        s
    }

    fn relay(outcome: Outcome) -> Relayed {
        match outcome {
            Outcome::Relay(r) => r,
            other => panic!("not relayed: {other:?}"),
        }
    }

    #[test]
    fn the_validation_request_is_answered_with_its_challenge() {
        let mut req = post(b"");
        req.method = "GET".into();
        req.query = Some(
            "hub.verify_token=STRAVA&hub.challenge=15f7d1a91c1f40f8a748fd134752feb3&hub.mode=subscribe"
                .into(),
        );
        assert_eq!(
            handshake(&strava(), &req),
            Ok(Outcome::Handshake {
                challenge: "15f7d1a91c1f40f8a748fd134752feb3".into()
            })
        );
        req.query = Some("hub.verify_token=WRONG&hub.challenge=x&hub.mode=subscribe".into());
        assert_eq!(handshake(&strava(), &req).map_err(|e| e.status), Err(400));
        req.query = Some("hub.verify_token=STRAVA&hub.challenge=x&hub.mode=unsubscribe".into());
        assert_eq!(handshake(&strava(), &req).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn every_fixture_becomes_its_event() {
        for (file, name, key) in [
            (
                "event-activity-create.json",
                "strava.activity.created",
                "activity",
            ),
            (
                "event-activity-update-title.json",
                "strava.activity.updated",
                "activity",
            ),
            (
                "event-activity-update-type-private.json",
                "strava.activity.updated",
                "activity",
            ),
            (
                "event-activity-delete.json",
                "strava.activity.deleted",
                "activity",
            ),
            (
                "event-athlete-deauthorize.json",
                "strava.athlete.updated",
                "athlete",
            ),
        ] {
            let body = super::super::tests::fixture(&format!("strava/{file}"));
            let r = relay(event(&strava(), &post(&body)).expect(file));
            assert_eq!((r.name.as_str(), r.object_key), (name, key), "{file}");
            assert_eq!(
                r.raw.as_deref(),
                Some(String::from_utf8_lossy(&body).trim())
            );
        }
        let body = super::super::tests::fixture("strava/event-activity-update-title.json");
        let r = relay(event(&strava(), &post(&body)).expect("update"));
        let object: Value = serde_json::from_str(&r.object).expect("JSON");
        assert_eq!(
            object,
            json!({"id": 1360128428, "ownerId": 134815, "subscriptionId": 120475,
                   "eventTime": "2018-01-16T18:07:20.000Z", "updates": {"title": "Messy"}})
        );
        assert_eq!(
            r.dedupe_key.as_deref(),
            Some("120475:activity:1360128428:update:1516126040")
        );
    }

    #[test]
    fn numbers_as_strings_are_the_same_event() {
        let as_numbers = br#"{"aspect_type":"update","event_time":1516126040,"object_id":1360128428,"object_type":"activity","owner_id":134815,"subscription_id":120475,"updates":{"private":true}}"#;
        let as_strings = br#"{"aspect_type":"update","event_time":"1516126040","object_id":"1360128428","object_type":"activity","owner_id":"134815","subscription_id":"120475","updates":{"private":"true"}}"#;
        let a = relay(event(&strava(), &post(as_numbers)).expect("numbers"));
        let b = relay(event(&strava(), &post(as_strings)).expect("strings"));
        assert_eq!(a.dedupe_key, b.dedupe_key);
        assert_eq!(a.object, b.object);
    }

    #[test]
    fn malformed_events_are_refused_and_others_filtered() {
        for bad in [
            &br#"{"aspect_type":"update","object_type":"club","object_id":1,"owner_id":1,"subscription_id":1,"event_time":1}"#[..],
            br#"{"aspect_type":"update","object_type":"activity","owner_id":1,"subscription_id":1,"event_time":1}"#,
            br#"{"aspect_type":"update","object_type":"activity","object_id":"x","owner_id":1,"subscription_id":1,"event_time":1}"#,
            b"not json",
        ] {
            let e = event(&strava(), &post(bad)).expect_err("malformed");
            assert_eq!(e.status, 400, "{}", e.message);
        }
        let mut only_mine = strava();
        only_mine.allowed_users = vec!["1".into()];
        let body = super::super::tests::fixture("strava/event-activity-create.json");
        assert!(matches!(
            event(&only_mine, &post(&body)),
            Ok(Outcome::Filtered { .. })
        ));
        let mut one_subscription = strava();
        one_subscription.allowed_servers = vec!["98765".into()];
        assert!(matches!(
            event(&one_subscription, &post(&body)),
            Ok(Outcome::Relay(_))
        ));
    }
}
