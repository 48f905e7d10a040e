//! What viewers add to a video: comments, and highlights (a titled time range of it).

use super::ids::{ChannelId, UserId};
use super::Invalid;

pub const MAX_BODY_LEN: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: i64,
    pub channel_id: ChannelId,
    pub video_id: i64,
    /// The highlight it was made on, if any (and while that highlight exists).
    pub highlight_id: Option<i64>,
    /// `None` when the author is gone.
    pub author_id: Option<UserId>,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Highlight {
    pub id: i64,
    pub channel_id: ChannelId,
    pub video_id: i64,
    /// `None` when its creator is gone.
    pub creator_id: Option<UserId>,
    pub title: String,
    /// Milliseconds from the start of the video.
    pub start_ms: i64,
    pub end_ms: i64,
    pub created_at: i64,
}

/// A change to comments (`comment.created`, `comment.removed`).
#[derive(Debug, Clone)]
pub enum CommentChange {
    OnVideo {
        video_id: i64,
        body: String,
    },
    /// On a highlight: a comment on its video, made on that part of it.
    OnHighlight {
        highlight_id: i64,
        body: String,
    },
    /// By its author or an admin.
    Remove(i64),
}

/// A change to highlights (`highlight.created`, `highlight.deleted`).
#[derive(Debug, Clone)]
pub enum HighlightChange {
    Add {
        video_id: i64,
        title: String,
        start_ms: i64,
        end_ms: i64,
    },
    /// By its creator or an admin. Comments made on it stay on the video.
    Remove(i64),
}

/// A comment's text: not blank, at most 10,000 characters.
pub fn parse_body(raw: &str) -> Result<String, Invalid> {
    let body = super::plain_text("body", "body", raw)?.trim();
    if body.is_empty() {
        return Err(Invalid::new("body", "body must not be empty"));
    }
    if body.chars().count() > MAX_BODY_LEN {
        return Err(Invalid::new(
            "body",
            format!("body must be at most {MAX_BODY_LEN} characters"),
        ));
    }
    Ok(body.to_owned())
}

/// A highlight's time range, given in seconds, as milliseconds: `0 <= start < end`, within a
/// year (the longest video). Whether it lies within its video is checked against the video
/// (see [`within`]).
pub fn parse_range(start: f64, end: f64) -> Result<(i64, i64), Invalid> {
    let ms = |secs: f64, field: &'static str| {
        super::content::parse_duration(secs)
            // At most a year of seconds: the product fits an i64.
            .map(|s| (s * 1000.0).round() as i64)
            .map_err(|_| {
                Invalid::new(
                    field,
                    format!("{field} must be a time in the video, in seconds from its start"),
                )
            })
    };
    let (start, end) = (ms(start, "startTime")?, ms(end, "endTime")?);
    if end <= start {
        return Err(Invalid::new("endTime", "endTime must be after startTime"));
    }
    Ok((start, end))
}

/// Fails when a range ending at `end_ms` ends past the video's end (when its duration, in
/// seconds, is known).
pub fn within(end_ms: i64, duration: Option<f64>) -> Result<(), Invalid> {
    match duration {
        Some(d) if end_ms as f64 > d * 1000.0 => Err(Invalid::new(
            "endTime",
            format!("endTime is past the end of the video ({d} seconds)"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_ranges_follow_the_rules() {
        assert_eq!(parse_body(" Nice "), Ok("Nice".into()));
        assert!(parse_body("  ").is_err());
        assert!(parse_body(&"b".repeat(10_001)).is_err());
        assert_eq!(parse_range(1.5, 3.0), Ok((1500, 3000)));
        assert_eq!(parse_range(3.0, 3.0).map_err(|e| e.field), Err("endTime"));
        assert_eq!(
            parse_range(-1.0, 3.0).map_err(|e| e.field),
            Err("startTime")
        );
        assert_eq!(
            parse_range(0.0, f64::NAN).map_err(|e| e.field),
            Err("endTime")
        );
        assert!(within(10_000, Some(9.5)).is_err());
        assert!(within(10_000, None).is_ok() && within(9_500, Some(9.5)).is_ok());
    }
}
