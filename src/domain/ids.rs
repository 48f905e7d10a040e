//! Row ids, typed by what they name, and global IDs: standard base64 (with padding) of
//! `<Type>-<n>`, e.g. `V2ViaG9vay0x` = `Webhook-1`.

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
    Group,
    Comment,
    Highlight,
    Source,
    SourceRequest,
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
            Kind::Group => "Group",
            Kind::Comment => "Comment",
            Kind::Highlight => "Highlight",
            Kind::Source => "Source",
            Kind::SourceRequest => "SourceRequest",
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
            "Group" => Kind::Group,
            "Comment" => Kind::Comment,
            "Highlight" => Kind::Highlight,
            "Source" => Kind::Source,
            "SourceRequest" => Kind::SourceRequest,
            _ => return None,
        })
    }
}

/// Defines a row id: a `Copy` newtype over the row's integer key, so a webhook's id cannot be
/// passed where a delivery's is wanted. The store binds and decodes them as integers.
macro_rules! row_id {
    ($(#[$m:meta])* $name:ident $(, $kind:ident)?) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            /// The row's integer key.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        $(impl Typed for $name {
            const KIND: Kind = Kind::$kind;
            fn new(n: i64) -> Self {
                $name(n)
            }
        })?
    };
}

row_id!(
    /// A webhook's id.
    WebhookId, Webhook
);
row_id!(
    /// A delivery's id.
    DeliveryId, WebhookDelivery
);
row_id!(
    /// An event's id (events have no global ID: they are read through their deliveries).
    EventId
);
row_id!(
    /// A channel's id.
    ChannelId, Channel
);
row_id!(
    /// A user's id.
    UserId, User
);
row_id!(
    /// An inbound source's id.
    SourceId, Source
);
row_id!(
    /// The id of one request a source received (a line of its request log).
    SourceRequestId, SourceRequest
);

/// A row id with a global ID.
pub trait Typed: Copy + Into<i64> {
    const KIND: Kind;
    fn new(n: i64) -> Self;

    /// This row's global ID.
    fn global(self) -> String {
        encode(Self::KIND, self.into())
    }

    /// The row a global ID names, if it is of this type.
    fn decode(global: &str) -> Option<Self> {
        decode(Self::KIND, global).map(Self::new)
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
        assert_eq!(WebhookId(1).global(), "V2ViaG9vay0x");
        assert_eq!(UserId::decode("VXNlci02MTcz"), Some(UserId(6173)));
        assert_eq!(DeliveryId::decode("V2ViaG9vay0x"), None, "a webhook's ID");
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
