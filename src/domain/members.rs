//! A channel's members: invited, joined, deactivated, and the rules for inviting them.

use super::content::Role;
use super::Invalid;

/// Where a user is in joining the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Invited by an admin, not joined yet (`acceptInvitation`).
    Invited,
    Active,
    /// Removed by an admin: the user's tokens no longer work.
    Deactivated,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Invited => "INVITED",
            MemberStatus::Active => "ACTIVE",
            MemberStatus::Deactivated => "DEACTIVATED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INVITED" => Some(MemberStatus::Invited),
            "ACTIVE" => Some(MemberStatus::Active),
            "DEACTIVATED" => Some(MemberStatus::Deactivated),
            _ => None,
        }
    }
}

/// A change to the channel's members (the `member.*` events).
#[derive(Debug, Clone)]
pub enum MemberChange {
    /// Invites these emails with this role: a new user each (or one deactivated before,
    /// invited again), `member.invited` each.
    Invite { emails: Vec<String>, role: Role },
    /// The actor, invited, joins: `member.joined`.
    Accept,
    /// These users leave the channel: `member.deactivated` each.
    Deactivate(Vec<i64>),
    /// A user gets another role: `member.updated`.
    SetRole(i64, Role),
}

/// The longest email address (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// An email address to invite: trimmed, one `@` with something on each side, no spaces, at
/// most 254 characters. Compared as given (herald does not lower-case addresses).
pub fn parse_email(raw: &str) -> Result<String, Invalid> {
    let bad = |why: &str| Invalid::new("emails", format!("{raw:?} is not an email address: {why}"));
    let email = super::plain_text("emails", "an email address", raw)?.trim();
    if email.chars().count() > MAX_EMAIL_LEN {
        return Err(bad("it is longer than 254 characters"));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace) =>
        {
            Ok(email.to_owned())
        }
        _ => Err(bad("write it as name@example.com")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_follow_the_rules() {
        assert_eq!(
            parse_email(" ada@example.com "),
            Ok("ada@example.com".into())
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "a da@example.com",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
        assert!(parse_email(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert_eq!(MemberStatus::parse("INVITED"), Some(MemberStatus::Invited));
    }
}
