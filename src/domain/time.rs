//! Time as stored (Unix milliseconds) and as shown (RFC 3339, UTC).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored time. Out-of-range values (never written by herald) clamp to the epoch.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The payload format: UTC with milliseconds, `2021-08-10T06:09:39.071Z`.
pub fn format_ms(ms: i64) -> String {
    from_ms(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(
            super::format_ms(1_628_575_779_071),
            "2021-08-10T06:09:39.071Z"
        );
        assert_eq!(
            super::format_ms(1_628_553_600_000),
            "2021-08-10T00:00:00.000Z"
        );
    }
}
