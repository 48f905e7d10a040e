//! Every setting, its default and its meaning, in one place. Each is an environment variable
//! and a command-line flag. Loading has no side effects.
//!
//! Boolean settings (`HERALD_DEV`) accept, in any case, `true`, `1`, `yes` or `on` for true and
//! `false`, `0`, `no` or `off` for false; an empty value is the default (false). Anything else
//! is refused with an error that names the variable: a typo never turns a setting silently on
//! or off.

use crate::domain::crypto::SecretKey;
use crate::domain::net::NetPolicy;
use crate::domain::retry::RetryPolicy;
use clap::builder::TypedValueParser;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod database;
use database::{beside_database, check_database_url};
pub use database::{database_address, redacted, without_password, DatabaseArgs};

/// `DATABASE_URL`'s default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://herald.db";

/// `HERALD_CHANNEL_URL`'s default.
pub const DEFAULT_CHANNEL_URL: &str = "https://{subdomain}.herald.localhost";

/// The settings of `herald serve`.
#[derive(Clone, clap::Args)]
pub struct Config {
    /// `sqlite://PATH` (embedded; the file is created when missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// Address of the HTTP server.
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// herald's own public base URL, where services reach it (`https://herald.example.com`): the
    /// start of every source's ingest URL. Behind a proxy herald cannot guess it [default:
    /// `http://` and the listen address].
    #[arg(long, env = "HERALD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Template of a channel's public URL; `{subdomain}` is replaced.
    #[arg(long, env = "HERALD_CHANNEL_URL", default_value = DEFAULT_CHANNEL_URL)]
    pub channel_url: String,

    /// Allow `http://` webhook URLs and loopback/private destinations, for local development
    /// (true/false, 1/0, yes/no, on/off).
    #[arg(long, env = "HERALD_DEV", value_parser = BoolParser)]
    pub dev: bool,

    /// Where the first admin's token is written when `serve` finds an empty database (mode
    /// 0600) [default: beside the SQLite file, `<database>.initial-token`; with PostgreSQL,
    /// `herald-initial-token` in the working directory].
    #[arg(long, env = "HERALD_INITIAL_TOKEN_FILE", value_name = "PATH")]
    pub initial_token_file: Option<PathBuf>,

    /// Comma-separated CIDRs that are delivered to even though private.
    #[arg(long, env = "HERALD_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub allowed_networks: Vec<IpNet>,

    /// Delay before the first retry, in milliseconds.
    #[arg(long, env = "HERALD_RETRY_BASE_MS", default_value_t = 30_000)]
    pub retry_base_ms: u64,

    /// Each further retry waits this many times longer.
    #[arg(long, env = "HERALD_RETRY_FACTOR", default_value_t = 4.0)]
    pub retry_factor: f32,

    /// No retry waits longer than this, in milliseconds.
    #[arg(long, env = "HERALD_RETRY_CAP_MS", default_value_t = 43_200_000)]
    pub retry_cap_ms: u64,

    /// One attempt's whole time limit, in milliseconds.
    #[arg(long, env = "HERALD_DELIVERY_TIMEOUT_MS", default_value_t = 15_000)]
    pub delivery_timeout_ms: u64,

    /// A webhook whose deliveries have all failed for this long is disabled.
    #[arg(long, env = "HERALD_DISABLE_AFTER_SECS", default_value_t = 2_592_000)]
    pub disable_after_secs: u64,

    /// Attempts in flight (and handed-over deliveries waiting to start) at once, over all
    /// webhooks.
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// Attempts in flight at once to one webhook: a hanging receiver holds at most this many.
    /// Also how many handed-over deliveries may wait for it.
    #[arg(long, env = "HERALD_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,

    /// How often the database is polled for due deliveries (work enqueued by this process is
    /// handed to its engine at once), in milliseconds.
    #[arg(long, env = "HERALD_POLL_MS", default_value_t = 500)]
    pub poll_ms: u64,

    /// On shutdown, how long attempts in flight may still finish before they are handed back
    /// (to be made again by the next process), in milliseconds.
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,

    /// How long a `herald listen` listener may stay disconnected (its CLI killed, or cut off)
    /// before it is ended: disabled, its queued deliveries failed. A CLI that reconnects
    /// sooner keeps its listener and gets the deliveries queued meanwhile. In milliseconds.
    #[arg(long, env = "HERALD_LISTENER_GRACE_MS", default_value_t = 60_000)]
    pub listener_grace_ms: u64,

    /// How long a client may take to send a request's headers, from when its connection opens
    /// (or, on a kept-alive connection, from the first byte of the request); then it is
    /// disconnected. In milliseconds.
    #[arg(long, env = "HERALD_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// How long a kept-alive connection may wait, idle, for its next request before herald
    /// closes it, in milliseconds.
    #[arg(long, env = "HERALD_IDLE_TIMEOUT_MS", default_value_t = 75_000)]
    pub idle_timeout_ms: u64,

    /// Connections served at once. Past it, a new connection gets only the health endpoints;
    /// anything else is answered 503 at once and the connection closed.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// How long a request waits for the database (a connection, or SQLite's lock held by
    /// another program) before it fails as "database unavailable", in milliseconds.
    #[arg(long, env = "HERALD_DB_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_timeout_ms: u64,

    /// SQLite only: the most the database file may grow to, in MiB (0: no limit). A write that
    /// would pass it fails as on a full disk.
    #[arg(long, env = "HERALD_SQLITE_MAX_SIZE_MB", default_value_t = 0)]
    pub sqlite_max_size_mb: u64,
    /// Where `GET /metrics` (Prometheus) is served: by default on the main listener
    /// (`HERALD_LISTEN`); given an address, there alone, on a listener of its own.
    #[arg(long, env = "HERALD_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,

    /// Days finished deliveries (SUCCEEDED, FAILED) are kept, with their attempts; then they
    /// are deleted, and so are events no delivery refers to any more. 0 keeps them forever.
    /// Queued deliveries are never deleted.
    #[arg(long, env = "HERALD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,

    /// How often retention looks for what to delete, in milliseconds.
    #[arg(long, env = "HERALD_RETENTION_EVERY_MS", default_value_t = 60_000)]
    pub retention_every_ms: u64,

    #[command(flatten)]
    pub secret_keys: SecretKeyArgs,
}

/// The key webhook secrets are sealed with at rest (see `crate::secrets`): `serve`'s settings,
/// and `secrets rotate-key`'s.
#[derive(Clone, Default, clap::Args)]
pub struct SecretKeyArgs {
    /// The key webhook secrets are sealed with: 32 bytes as 64 hex digits or as base64 (a flag
    /// shows in `ps`: prefer the variable or HERALD_SECRET_KEY_FILE) [default: read from
    /// HERALD_SECRET_KEY_FILE].
    #[arg(
        long,
        env = "HERALD_SECRET_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// The file holding the key, used when HERALD_SECRET_KEY is not set; `serve` writes a new
    /// key there (mode 0600) when it is missing and the database has no key yet [default:
    /// beside the SQLite file, `<database>.secret-key`; with PostgreSQL, `herald-secret-key`
    /// in the working directory].
    #[arg(long, env = "HERALD_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,

    /// Older keys, comma-separated, that still open secrets sealed before a rotation (they
    /// never seal): during a rotation, until every process has the new key.
    #[arg(
        long,
        env = "HERALD_SECRET_KEY_PREVIOUS",
        value_name = "KEYS",
        hide_env_values = true
    )]
    pub secret_key_previous: Option<String>,
}

impl SecretKeyArgs {
    /// The key from HERALD_SECRET_KEY, if set.
    pub fn key(&self) -> Result<Option<SecretKey>, ConfigError> {
        match self.secret_key.as_deref() {
            None => Ok(None),
            Some(text) => SecretKey::parse(text).map(Some).map_err(|e| ConfigError {
                setting: "HERALD_SECRET_KEY",
                message: e.to_string(),
            }),
        }
    }

    /// The keys from HERALD_SECRET_KEY_PREVIOUS.
    pub fn previous_keys(&self) -> Result<Vec<SecretKey>, ConfigError> {
        let list = self.secret_key_previous.as_deref().unwrap_or_default();
        let items = list.split(',').map(str::trim).filter(|k| !k.is_empty());
        items
            .enumerate()
            .map(|(i, text)| {
                SecretKey::parse(text).map_err(|e| ConfigError {
                    setting: "HERALD_SECRET_KEY_PREVIOUS",
                    message: format!("key {}: {e}", i + 1),
                })
            })
            .collect()
    }

    /// Checks the keys' spelling, and that the key is given one way only.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_key.is_some() && self.secret_key_file.is_some() {
            return Err(ConfigError {
                setting: "HERALD_SECRET_KEY",
                message: "and HERALD_SECRET_KEY_FILE are both set; set one of them".into(),
            });
        }
        self.key()?;
        self.previous_keys()?;
        Ok(())
    }

    /// Where the key file is: HERALD_SECRET_KEY_FILE, else beside the SQLite file
    /// (`<file>.secret-key`), else (PostgreSQL) `herald-secret-key` in the working directory.
    pub fn key_file_path(&self, database_url: &str) -> PathBuf {
        match &self.secret_key_file {
            Some(path) => path.clone(),
            None => beside_database(database_url, "secret-key"),
        }
    }
}

impl std::fmt::Debug for SecretKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| set.then_some("(redacted)");
        f.debug_struct("SecretKeyArgs")
            .field("secret_key", &redacted(self.secret_key.is_some()))
            .field("secret_key_file", &self.secret_key_file)
            .field(
                "secret_key_previous",
                &redacted(self.secret_key_previous.is_some()),
            )
            .finish()
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl Config {
    /// Checks the settings against each other and their ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting, message: &str| {
            Err(ConfigError {
                setting,
                message: message.into(),
            })
        };
        check_database_url(&self.database_url)?;
        if !self.retry_factor.is_finite() || self.retry_factor < 1.0 {
            return bad("HERALD_RETRY_FACTOR", "must be a number of at least 1");
        }
        if self.retry_base_ms == 0 || self.retry_cap_ms < self.retry_base_ms {
            return bad(
                "HERALD_RETRY_CAP_MS",
                "must be at least HERALD_RETRY_BASE_MS, which must be positive",
            );
        }
        if self.delivery_timeout_ms == 0 || self.delivery_timeout_ms > 600_000 {
            return bad("HERALD_DELIVERY_TIMEOUT_MS", "must be between 1 and 600000");
        }
        if self.max_in_flight == 0 || self.webhook_concurrency == 0 {
            return bad(
                "HERALD_MAX_IN_FLIGHT",
                "and HERALD_WEBHOOK_CONCURRENCY must be positive",
            );
        }
        if self.retention_days > 36_500 || self.retention_every_ms == 0 {
            return bad(
                "HERALD_RETENTION_DAYS",
                "must be at most 36500 (0 keeps deliveries forever), and HERALD_RETENTION_EVERY_MS positive",
            );
        }
        if self.poll_ms == 0 {
            return bad("HERALD_POLL_MS", "must be positive");
        }
        if !self.channel_url.contains("{subdomain}") {
            return bad("HERALD_CHANNEL_URL", "must contain {subdomain}");
        }
        if let Some(raw) = &self.public_url {
            let ok = url::Url::parse(raw).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.has_host()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            });
            if !ok {
                return bad(
                    "HERALD_PUBLIC_URL",
                    "must be an absolute http:// or https:// URL without user, query or fragment",
                );
            }
        }
        for (setting, ms) in [
            ("HERALD_HEADER_TIMEOUT_MS", self.header_timeout_ms),
            ("HERALD_IDLE_TIMEOUT_MS", self.idle_timeout_ms),
            ("HERALD_DB_TIMEOUT_MS", self.db_timeout_ms),
        ] {
            if ms == 0 || ms > 3_600_000 {
                return bad(setting, "must be between 1 and 3600000");
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return bad("HERALD_MAX_CONNECTIONS", "must be between 1 and 1000000");
        }
        if self.sqlite_max_size_mb > 0
            && crate::store::Scheme::of(&self.database_url).ok()
                != Some(crate::store::Scheme::Sqlite)
        {
            return bad(
                "HERALD_SQLITE_MAX_SIZE_MB",
                "applies to SQLite only; leave it 0 (unset) with PostgreSQL",
            );
        }
        self.secret_keys.validate()
    }

    /// What the store is connected with.
    pub fn store_settings(&self) -> crate::store::Settings {
        crate::store::Settings {
            channel_url: self.channel_url.clone(),
            timeout: Duration::from_millis(self.db_timeout_ms),
            sqlite_max_bytes: (self.sqlite_max_size_mb > 0)
                .then(|| self.sqlite_max_size_mb.saturating_mul(1024 * 1024)),
        }
    }

    /// The HTTP server's limits on its clients.
    pub fn connection_limits(&self) -> crate::http::server::Limits {
        crate::http::server::Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_connections: self.max_connections,
        }
    }

    pub fn net_policy(&self) -> NetPolicy {
        NetPolicy {
            dev: self.dev,
            allowed: self.allowed_networks.clone(),
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(
            Duration::from_millis(self.retry_base_ms),
            self.retry_factor,
            Duration::from_millis(self.retry_cap_ms),
        )
    }

    /// How long finished deliveries are kept; `None`: forever.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }

    /// The start of ingest URLs: `HERALD_PUBLIC_URL` without a trailing `/`, else `http://`
    /// and the listen address.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    /// The database URL with any password replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        redacted(&self.database_url)
    }

    /// Where `serve` writes the first admin's token on an empty database: the configured file,
    /// else beside the SQLite file (`<file>.initial-token`), else (PostgreSQL)
    /// `herald-initial-token` in the working directory.
    pub fn initial_token_path(&self) -> PathBuf {
        if let Some(path) = &self.initial_token_file {
            return path.clone();
        }
        beside_database(&self.database_url, "initial-token")
    }
}

/// Spellings of true, in any case.
pub const TRUE_WORDS: [&str; 4] = ["true", "1", "yes", "on"];
/// Spellings of false, in any case (an empty value is false too: the default).
pub const FALSE_WORDS: [&str; 4] = ["false", "0", "no", "off"];

/// Reads a boolean setting: [`TRUE_WORDS`] or [`FALSE_WORDS`] in any case, around spaces
/// ignored; empty is false. `None` for anything else.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.is_empty() || FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value)) {
        Some(false)
    } else if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value)) {
        Some(true)
    } else {
        None
    }
}

/// The value parser of every boolean setting: [`parse_bool`], with an error naming the
/// environment variable (and the flag) the value came from.
#[derive(Clone, Copy, Debug)]
pub struct BoolParser;

impl TypedValueParser for BoolParser {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<bool, clap::Error> {
        if let Some(b) = value.to_str().and_then(parse_bool) {
            return Ok(b);
        }
        let name = match (
            arg.and_then(|a| a.get_env()),
            arg.and_then(|a| a.get_long()),
        ) {
            (Some(env), Some(long)) => format!("{} (--{long})", env.to_string_lossy()),
            (Some(env), None) => env.to_string_lossy().into_owned(),
            (None, Some(long)) => format!("--{long}"),
            (None, None) => "a boolean setting".to_owned(),
        };
        let message = format!(
            "{name}: {:?} is not a boolean; use true/false, 1/0, yes/no or on/off (any case)\n",
            value.to_string_lossy()
        );
        Err(clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd))
    }
}

/// Whether log lines may carry colour codes: only on a terminal, and not when `NO_COLOR` is set
/// to anything but the empty string (no-color.org).
pub fn log_colours(stderr_is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    stderr_is_terminal && !no_color
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.redacted_database_url())
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("channel_url", &self.channel_url)
            .field("dev", &self.dev)
            .field("initial_token_file", &self.initial_token_file)
            .field("allowed_networks", &self.allowed_networks)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_factor", &self.retry_factor)
            .field("retry_cap_ms", &self.retry_cap_ms)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("disable_after_secs", &self.disable_after_secs)
            .field("max_in_flight", &self.max_in_flight)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("poll_ms", &self.poll_ms)
            .field("shutdown_grace_ms", &self.shutdown_grace_ms)
            .field("listener_grace_ms", &self.listener_grace_ms)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field("db_timeout_ms", &self.db_timeout_ms)
            .field("sqlite_max_size_mb", &self.sqlite_max_size_mb)
            .field("secret_keys", &self.secret_keys)
            .field("metrics_listen", &self.metrics_listen)
            .field("retention_days", &self.retention_days)
            .field("retention_every_ms", &self.retention_every_ms)
            .finish()
    }
}

impl Default for Config {
    /// The documented defaults (what `herald serve` uses with no variables set).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        // Parsing no arguments yields the defaults; environment variables are ignored here.
        let cmd = <Defaults as clap::CommandFactory>::command();
        let cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["herald"]);
        <Defaults as clap::FromArgMatches>::from_arg_matches(&matches)
            .map(|d| d.config)
            .expect("the defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = Config::default();
        assert_eq!(c.database_url, "sqlite://herald.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.retry_base_ms, 30_000);
        assert_eq!(c.retry_factor, 4.0);
        assert_eq!(c.retry_cap_ms, 43_200_000);
        assert_eq!(c.delivery_timeout_ms, 15_000);
        assert_eq!(c.disable_after_secs, 2_592_000);
        assert_eq!(c.header_timeout_ms, 10_000);
        assert_eq!(c.idle_timeout_ms, 75_000);
        assert_eq!(c.max_connections, 4096);
        assert_eq!(c.db_timeout_ms, 5_000);
        assert_eq!(c.sqlite_max_size_mb, 0);
        assert_eq!(c.retention_days, 30);
        assert!(!c.dev);
        assert!(c.validate().is_ok());
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        let proxied = Config {
            public_url: Some("https://herald.example.com/".into()),
            ..Config::default()
        };
        assert!(proxied.validate().is_ok());
        assert_eq!(proxied.public_url(), "https://herald.example.com");
    }

    #[test]
    fn debug_redacts_the_database_password() {
        let c = Config {
            database_url: "postgres://herald:hunter2@db/herald".into(),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn impossible_settings_are_refused() {
        let cases = [
            Config {
                retry_factor: 0.5,
                ..Config::default()
            },
            Config {
                retry_cap_ms: 1,
                ..Config::default()
            },
            Config {
                delivery_timeout_ms: 0,
                ..Config::default()
            },
            Config {
                database_url: "mysql://x".into(),
                ..Config::default()
            },
            Config {
                channel_url: "https://fixed".into(),
                ..Config::default()
            },
            Config {
                header_timeout_ms: 0,
                ..Config::default()
            },
            Config {
                max_connections: 0,
                ..Config::default()
            },
            Config {
                db_timeout_ms: 0,
                ..Config::default()
            },
            Config {
                database_url: "postgres://db/herald".into(),
                sqlite_max_size_mb: 100,
                ..Config::default()
            },
            Config {
                public_url: Some("herald.example.com".into()),
                ..Config::default()
            },
            Config {
                public_url: Some("https://herald.example.com/?x=1".into()),
                ..Config::default()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn booleans_have_one_documented_set_of_spellings() {
        for word in [
            "true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true ",
        ] {
            assert_eq!(parse_bool(word), Some(true), "{word:?}");
        }
        for word in ["false", "FALSE", "0", "no", "No", "off", "OFF", ""] {
            assert_eq!(parse_bool(word), Some(false), "{word:?}");
        }
        for word in [
            "maybe",
            "y",
            "n",
            "t",
            "f",
            "2",
            "-1",
            "enabled",
            "truee",
            "yes please",
        ] {
            assert_eq!(parse_bool(word), None, "{word:?}");
        }
    }

    #[test]
    fn a_bad_boolean_is_refused_naming_its_variable() {
        let cmd = clap::Command::new("herald");
        let arg = clap::Arg::new("dev").long("dev").env("HERALD_DEV");
        let parsed = BoolParser.parse_ref(&cmd, Some(&arg), std::ffi::OsStr::new("Yes"));
        assert!(parsed.expect("a spelling of true"));
        let err = BoolParser
            .parse_ref(&cmd, Some(&arg), std::ffi::OsStr::new("maybe"))
            .expect_err("not a boolean")
            .to_string();
        assert!(err.contains("HERALD_DEV"), "{err}");
        assert!(err.contains("\"maybe\""), "{err}");
        assert!(err.contains("yes/no"), "{err}");
    }

    #[test]
    fn the_initial_token_file_lies_beside_the_sqlite_file() {
        let at = |url: &str| {
            Config {
                database_url: url.into(),
                ..Config::default()
            }
            .initial_token_path()
        };
        assert_eq!(
            at("sqlite://herald.db"),
            PathBuf::from("herald.db.initial-token")
        );
        assert_eq!(
            at("sqlite:///var/lib/herald/h.db?mode=rwc"),
            PathBuf::from("/var/lib/herald/h.db.initial-token")
        );
        assert_eq!(
            at("postgres://u:p@db/herald"),
            PathBuf::from("herald-initial-token")
        );
        let chosen = Config {
            initial_token_file: Some("/run/secrets/token".into()),
            ..Config::default()
        };
        assert_eq!(
            chosen.initial_token_path(),
            PathBuf::from("/run/secrets/token")
        );
    }

    #[test]
    fn secret_keys_are_checked_named_and_never_shown() {
        let keys = |key: Option<&str>, file: Option<&str>, previous: Option<&str>| SecretKeyArgs {
            secret_key: key.map(str::to_owned),
            secret_key_file: file.map(PathBuf::from),
            secret_key_previous: previous.map(str::to_owned),
        };
        let hex_key = "ab".repeat(32);
        let good = keys(Some(&hex_key), None, Some(&format!(" {hex_key} ,")));
        assert!(good.validate().is_ok());
        assert_eq!(good.previous_keys().map(|k| k.len()).ok(), Some(1));
        let shown = format!(
            "{:?}",
            Config {
                secret_keys: good,
                ..Config::default()
            }
        );
        assert!(!shown.contains(&hex_key), "{shown}");
        let refused = |args: SecretKeyArgs| args.validate().expect_err("refused").to_string();
        let err = refused(keys(Some("hunter2"), None, None));
        assert!(
            err.starts_with("HERALD_SECRET_KEY: is not 32 bytes"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = refused(keys(None, None, Some(&format!("{hex_key},hunter2"))));
        assert!(
            err.starts_with("HERALD_SECRET_KEY_PREVIOUS: key 2"),
            "{err}"
        );
        let err = refused(keys(Some(&hex_key), Some("/etc/herald/key"), None));
        assert!(err.contains("HERALD_SECRET_KEY_FILE are both set"), "{err}");
    }

    #[test]
    fn the_key_file_lies_beside_the_sqlite_file_unless_chosen() {
        let args = SecretKeyArgs::default();
        assert_eq!(
            args.key_file_path("sqlite:///var/lib/herald/h.db?mode=rwc"),
            PathBuf::from("/var/lib/herald/h.db.secret-key")
        );
        assert_eq!(
            args.key_file_path("postgres://u:p@db/herald"),
            PathBuf::from("herald-secret-key")
        );
        let chosen = SecretKeyArgs {
            secret_key_file: Some("/etc/herald/key".into()),
            ..SecretKeyArgs::default()
        };
        assert_eq!(
            chosen.key_file_path("sqlite://herald.db"),
            PathBuf::from("/etc/herald/key")
        );
    }

    #[test]
    fn database_urls_are_shown_without_their_password() {
        let url = "postgres://herald:hunter2@db.internal:6543/herald";
        assert_eq!(
            redacted(url),
            "postgres://herald:redacted@db.internal:6543/herald"
        );
        assert_eq!(
            without_password(url),
            "postgres://herald@db.internal:6543/herald"
        );
        assert_eq!(database_address(url).as_deref(), Some("db.internal:6543"));
        assert_eq!(
            database_address("postgres://postgres@127.0.0.1/x").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(database_address("sqlite://herald.db"), None);
    }
}
