//! Global IDs: standard base64 (with padding) of `<Type>-<n>`, e.g. `V2ViaG9vay0x` = `Webhook-1`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The object types that have global IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    User,
    Webhook,
    WebhookDelivery,
    Video,
    Collection,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Channel => "Channel",
            Kind::User => "User",
            Kind::Webhook => "Webhook",
            Kind::WebhookDelivery => "WebhookDelivery",
            Kind::Video => "Video",
            Kind::Collection => "Collection",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "Channel" => Kind::Channel,
            "User" => Kind::User,
            "Webhook" => Kind::Webhook,
            "WebhookDelivery" => Kind::WebhookDelivery,
            "Video" => Kind::Video,
            "Collection" => Kind::Collection,
            _ => return None,
        })
    }
}

/// Encodes the global ID of row `id` of type `kind`.
pub fn encode(kind: Kind, id: i64) -> String {
    BASE64.encode(format!("{}-{id}", kind.name()))
}

/// Decodes any global ID. `None` for anything that is not one.
///
/// Only the spelling [`encode`] writes is an ID: padded standard base64 of `<Type>-<n>`, `n`
/// positive without sign or leading zeros. Other spellings of the same row (`Webhook-01`,
/// surrounding spaces, missing padding) are not IDs, so one object has one ID, and an ID
/// compared or logged as a string means what it says.
pub fn decode_any(global: &str) -> Option<(Kind, i64)> {
    let raw = BASE64.decode(global).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (name, n) = text.rsplit_once('-')?;
    let kind = Kind::from_name(name)?;
    let n: i64 = n.parse().ok()?;
    (n > 0 && encode(kind, n) == global).then_some((kind, n))
}

/// Decodes a global ID that must be of type `kind`; another type is `None` ("not found").
pub fn decode(kind: Kind, global: &str) -> Option<i64> {
    match decode_any(global) {
        Some((k, n)) if k == kind => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_examples() {
        assert_eq!(encode(Kind::Webhook, 1), "V2ViaG9vay0x");
        assert_eq!(encode(Kind::User, 6173), "VXNlci02MTcz");
        assert_eq!(encode(Kind::Video, 11820), "VmlkZW8tMTE4MjA=");
        assert_eq!(encode(Kind::Collection, 1376), "Q29sbGVjdGlvbi0xMzc2");
        assert_eq!(decode(Kind::Video, "VmlkZW8tMTE4MjA="), Some(11820));
    }

    #[test]
    fn wrong_type_and_garbage_are_not_found() {
        assert_eq!(decode(Kind::Video, "V2ViaG9vay0x"), None);
        assert_eq!(decode(Kind::Webhook, "not base64!"), None);
        assert_eq!(decode(Kind::Webhook, &BASE64.encode("Webhook-x")), None);
        assert_eq!(decode(Kind::Webhook, &BASE64.encode("Webhook--1")), None);
        assert_eq!(decode(Kind::Webhook, &BASE64.encode("Webhook-0")), None);
        assert_eq!(decode_any(&BASE64.encode("Nothing-1")), None);
    }

    #[test]
    fn only_the_canonical_spelling_is_an_id() {
        for text in [
            "Webhook-+1",
            "Webhook-01",
            "Webhook-0000000001",
            "Webhook- 1",
            "Webhook-1 ",
            " Webhook-1",
            "Webhook-1\n",
        ] {
            assert_eq!(
                decode(Kind::Webhook, &BASE64.encode(text)),
                None,
                "{text:?}"
            );
        }
        for global in [
            " V2ViaG9vay0x",
            "V2ViaG9vay0x ",
            "V2Vi aG9vay0x",
            // `Video-11820` without its padding, and with a non-zero bit in the padding.
            "VmlkZW8tMTE4MjA",
            "VmlkZW8tMTE4MjB=",
        ] {
            assert_eq!(decode_any(global), None, "{global:?}");
        }
        assert_eq!(decode(Kind::Webhook, "V2ViaG9vay0x"), Some(1));
    }
}
