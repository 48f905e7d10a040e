//! The database URL: the setting of the commands other than `serve`, its check, the files
//! herald keeps beside a SQLite database, and the forms of a URL shown in logs and commands.

use super::{ConfigError, DEFAULT_DATABASE_URL};
use std::path::PathBuf;

/// The database setting of the commands other than `serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` or `postgres://…`: the database `herald serve` uses.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

impl DatabaseArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_database_url(&self.database_url)
    }
}

pub(super) fn check_database_url(url: &str) -> Result<(), ConfigError> {
    crate::store::Scheme::of(url)
        .map(|_| ())
        .map_err(|e| ConfigError {
            setting: "DATABASE_URL",
            message: e.to_string(),
        })
}

/// A file of herald's beside the SQLite file of `database_url` (`<file>.<name>`), or for
/// PostgreSQL (and an in-memory SQLite) `herald-<name>` in the working directory.
pub(super) fn beside_database(database_url: &str, name: &str) -> PathBuf {
    match sqlite_path(database_url) {
        Some(db) if !db.is_empty() && db != ":memory:" => PathBuf::from(format!("{db}.{name}")),
        _ => PathBuf::from(format!("herald-{name}")),
    }
}

/// The file path of a `sqlite:` URL, as sqlx reads it (`sqlite://herald.db`, `sqlite:herald.db`,
/// `sqlite:///var/lib/herald.db`), without its `?options`.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    Some(rest.split('?').next().unwrap_or(rest))
}

/// `url` with its password, if any, replaced by `redacted`: for logs.
pub fn redacted(url: &str) -> String {
    with_password(url, Some("redacted"))
}

/// `url` with its password, if any, left out: for commands shown to the operator, who adds it.
pub fn without_password(url: &str) -> String {
    with_password(url, None)
}

fn with_password(url: &str, password: Option<&str>) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(password);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Where a PostgreSQL URL points, as `host:port` (never with the user or password); `None` for
/// other URLs and for sockets.
pub fn database_address(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return None;
    }
    let host = u.host_str().filter(|h| !h.is_empty())?;
    Some(format!("{host}:{}", u.port().unwrap_or(5432)))
}
