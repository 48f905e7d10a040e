//! Channel content: channels, users, videos, collections, and the rules for their input.

use super::ids::{ChannelId, UserId};
use super::members::MemberStatus;
use super::Invalid;
use chrono::NaiveDate;

pub const MAX_TITLE_LEN: usize = 300;
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_SUMMARY_LEN: usize = 10_000;
pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// No video is longer than a year.
pub const MAX_DURATION_SECS: f64 = 366.0 * 24.0 * 3600.0;
/// How many IDs one list input may name.
pub const MAX_IDS: usize = 100;

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: ChannelId,
    pub subdomain: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub channel_id: ChannelId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub status: MemberStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The name shown for the user: first and last name, or the email when both are blank.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name.trim(), self.last_name.trim());
        match name.trim() {
            "" => self.email.clone(),
            name => name.to_owned(),
        }
    }
}

/// A user as `herald token create` gives it.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
}

/// Who may watch a video once it is on the channel. (A draft is a state of its own, see
/// [`Video::draft`]; the API shows it as the visibility `DRAFT`, as Rewatch does.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    OnChannel,
    /// Anyone with the video's link.
    LinkOnly,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::OnChannel => "ON_CHANNEL",
            Visibility::LinkOnly => "LINK_ONLY",
            Visibility::Private => "PRIVATE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ON_CHANNEL" => Some(Visibility::OnChannel),
            "LINK_ONLY" => Some(Visibility::LinkOnly),
            "PRIVATE" => Some(Visibility::Private),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub id: i64,
    pub channel_id: ChannelId,
    pub title: String,
    /// Fixed at creation: a renamed video keeps its URL.
    pub slug: String,
    pub summary: String,
    pub visibility: Visibility,
    pub presented_at: Option<i64>,
    pub duration: Option<f64>,
    pub draft: bool,
    /// Who created it; `None` when that user is gone (or the video predates herald keeping it).
    pub uploader_id: Option<UserId>,
    /// Rewatch's sharing settings, kept as given: herald shows no video outside the channel.
    pub external_sharing_enabled: bool,
    pub show_comments_to_external_viewers: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// In the order given.
    pub collection_ids: Vec<i64>,
    pub tagged_user_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: i64,
    pub channel_id: ChannelId,
    pub parent_id: Option<i64>,
    pub name: String,
    /// Fixed at creation: a renamed collection keeps its URL.
    pub slug: String,
    pub description: Option<String>,
    pub secret: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Users, then groups ([`super::groups::Group`]), each in the order given.
    pub admin_ids: Vec<i64>,
    pub admin_group_ids: Vec<i64>,
    pub member_ids: Vec<i64>,
    pub member_group_ids: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct NewVideo {
    pub title: String,
    pub summary: String,
    pub visibility: Visibility,
    pub presented_at: Option<i64>,
    pub duration: Option<f64>,
    pub collection_ids: Vec<i64>,
    pub tagged_user_ids: Vec<i64>,
    pub draft: bool,
}

/// A change to a list of ids (a video's collections or tagged users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// The list becomes these, in this order.
    Replace(Vec<i64>),
    /// These join the end of the list, unless they are in it already.
    Add(Vec<i64>),
    /// These leave the list.
    Remove(Vec<i64>),
}

impl ListChange {
    /// The ids this change names (the store checks that each exists).
    pub fn ids(&self) -> &[i64] {
        match self {
            ListChange::Replace(ids) | ListChange::Add(ids) | ListChange::Remove(ids) => ids,
        }
    }

    /// `list` with this change made.
    pub fn apply(&self, list: &[i64]) -> Vec<i64> {
        match self {
            ListChange::Replace(ids) => ids.clone(),
            ListChange::Add(ids) => {
                let mut out = list.to_vec();
                for id in ids {
                    if !out.contains(id) {
                        out.push(*id);
                    }
                }
                out
            }
            ListChange::Remove(ids) => list
                .iter()
                .copied()
                .filter(|id| !ids.contains(id))
                .collect(),
        }
    }
}

/// `None` leaves a field as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct VideoPatch {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub visibility: Option<Visibility>,
    pub presented_at: Option<Option<i64>>,
    /// Moves `presentedAt` to this day, at the time of day it had (see [`Video::presented`]).
    pub date: Option<NaiveDate>,
    pub duration: Option<Option<f64>>,
    pub collections: Option<ListChange>,
    pub tagged_users: Option<ListChange>,
    /// The caller asked for the visibility `DRAFT`: true of a draft, refused for a video
    /// already on the channel (it cannot go back to draft).
    pub require_draft: bool,
    pub external_sharing_enabled: Option<bool>,
    pub show_comments_to_external_viewers: Option<bool>,
    /// Only the video's uploader or an admin may make this change (Rewatch's rule for
    /// `updateVideoDetails`).
    pub uploader_or_admin: bool,
}

impl Video {
    /// When the video was presented: the time given, else when it was added.
    pub fn presented(&self) -> i64 {
        self.presented_at.unwrap_or(self.created_at)
    }
}

impl VideoPatch {
    /// The video with this patch applied (relations by ID; the store checks they exist).
    pub fn apply(&self, v: &Video) -> Video {
        let mut out = v.clone();
        if let Some(t) = &self.title {
            out.title.clone_from(t);
        }
        if let Some(s) = &self.summary {
            out.summary.clone_from(s);
        }
        if let Some(vis) = self.visibility {
            out.visibility = vis;
        }
        if let Some(p) = self.presented_at {
            out.presented_at = p;
        }
        if let Some(day) = self.date {
            out.presented_at = Some(on_day(out.presented(), day));
        }
        if let Some(d) = self.duration {
            out.duration = d;
        }
        if let Some(c) = &self.collections {
            out.collection_ids = c.apply(&v.collection_ids);
        }
        if let Some(t) = &self.tagged_users {
            out.tagged_user_ids = t.apply(&v.tagged_user_ids);
        }
        if let Some(e) = self.external_sharing_enabled {
            out.external_sharing_enabled = e;
        }
        if let Some(s) = self.show_comments_to_external_viewers {
            out.show_comments_to_external_viewers = s;
        }
        out
    }
}

/// The time `at` (Unix ms) moved to `day`, keeping its time of day (UTC).
fn on_day(at: i64, day: NaiveDate) -> i64 {
    let time = super::time::from_ms(at).time();
    day.and_time(time).and_utc().timestamp_millis()
}

#[derive(Debug, Clone)]
pub struct NewCollection {
    pub name: String,
    pub description: Option<String>,
    pub secret: bool,
    pub parent_id: Option<i64>,
    pub admin_ids: Vec<i64>,
    pub admin_group_ids: Vec<i64>,
    pub member_ids: Vec<i64>,
    pub member_group_ids: Vec<i64>,
}

/// A collection's admins or members as one input names them: users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub users: Vec<i64>,
    pub groups: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct CollectionPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub secret: Option<bool>,
    pub parent_id: Option<Option<i64>>,
    pub admins: Option<Principals>,
    pub members: Option<Principals>,
}

impl CollectionPatch {
    pub fn apply(&self, c: &Collection) -> Collection {
        let mut out = c.clone();
        if let Some(n) = &self.name {
            out.name.clone_from(n);
        }
        if let Some(d) = &self.description {
            out.description.clone_from(d);
        }
        if let Some(s) = self.secret {
            out.secret = s;
        }
        if let Some(p) = self.parent_id {
            out.parent_id = p;
        }
        if let Some(a) = &self.admins {
            out.admin_ids.clone_from(&a.users);
            out.admin_group_ids.clone_from(&a.groups);
        }
        if let Some(m) = &self.members {
            out.member_ids.clone_from(&m.users);
            out.member_group_ids.clone_from(&m.groups);
        }
        out
    }
}

fn bounded(
    field: &'static str,
    what: &str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<String, Invalid> {
    let s = super::plain_text(field, what, raw)?.trim();
    if required && s.is_empty() {
        return Err(Invalid::new(field, format!("{what} must not be empty")));
    }
    if s.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("{what} must be at most {max} characters"),
        ));
    }
    Ok(s.to_owned())
}

pub fn parse_title(raw: &str) -> Result<String, Invalid> {
    bounded("title", "title", raw, MAX_TITLE_LEN, true)
}

pub fn parse_summary(raw: &str) -> Result<String, Invalid> {
    bounded("summary", "summary", raw, MAX_SUMMARY_LEN, false)
}

pub fn parse_name(raw: &str) -> Result<String, Invalid> {
    bounded("name", "name", raw, MAX_NAME_LEN, true)
}

/// A collection description; blank becomes none.
pub fn parse_description(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw {
        None => Ok(None),
        Some(d) => {
            let d = bounded("description", "description", d, MAX_DESCRIPTION_LEN, false)?;
            Ok((!d.is_empty()).then_some(d))
        }
    }
}

/// A duration in seconds: finite, not negative, at most a year.
pub fn parse_duration(raw: f64) -> Result<f64, Invalid> {
    if raw.is_finite() && (0.0..=MAX_DURATION_SECS).contains(&raw) {
        Ok(raw)
    } else {
        Err(Invalid::new(
            "duration",
            format!("duration must be between 0 and {MAX_DURATION_SECS} seconds"),
        ))
    }
}

/// A URL slug: lowercase ASCII letters and digits, words joined by `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_match_the_documented_urls() {
        assert_eq!(slug("All-hands presentation"), "all-hands-presentation");
        assert_eq!(slug("Q and A Sessions"), "q-and-a-sessions");
        assert_eq!(slug("Test Collection 2"), "test-collection-2");
        assert_eq!(slug("  Ünïcode!  "), "n-code");
        assert_eq!(slug("!!!"), "-");
    }

    #[test]
    fn list_changes_replace_add_and_remove() {
        let list = [3, 1];
        assert_eq!(ListChange::Replace(vec![2]).apply(&list), vec![2]);
        assert_eq!(ListChange::Add(vec![1, 2, 2]).apply(&list), vec![3, 1, 2]);
        assert_eq!(ListChange::Remove(vec![3, 9]).apply(&list), vec![1]);
    }

    #[test]
    fn a_date_moves_a_time_to_that_day() {
        let at = chrono::DateTime::parse_from_rfc3339("2021-07-15T09:30:00Z")
            .expect("time")
            .timestamp_millis();
        let day = NaiveDate::from_ymd_opt(2021, 8, 10).expect("day");
        let moved = super::super::time::format_ms(on_day(at, day));
        assert_eq!(moved, "2021-08-10T09:30:00.000Z");
    }

    #[test]
    fn text_inputs_follow_the_rules() {
        assert!(parse_title("   ").is_err());
        assert_eq!(parse_title("  Hi  ").as_deref(), Ok("Hi"));
        assert!(parse_title(&"t".repeat(301)).is_err());
        assert!(parse_name("").is_err());
        assert_eq!(parse_description(Some(" ")), Ok(None));
        assert!(parse_duration(-1.0).is_err());
        assert!(parse_duration(f64::NAN).is_err());
        assert_eq!(parse_duration(25.7), Ok(25.7));
    }
}
