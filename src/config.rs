//! Every setting, its default and its meaning, in one place. Each is an environment variable
//! and a command-line flag. Loading has no side effects.

use crate::domain::net::NetPolicy;
use crate::domain::retry::RetryPolicy;
use clap::builder::BoolishValueParser;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, clap::Args)]
pub struct Config {
    /// `sqlite://PATH` (embedded; the file is created when missing) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://herald.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address of the HTTP server.
    #[arg(
        long,
        env = "HERALD_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Template of a channel's public URL; `{subdomain}` is replaced.
    #[arg(
        long,
        env = "HERALD_CHANNEL_URL",
        default_value = "https://{subdomain}.herald.localhost",
        global = true
    )]
    pub channel_url: String,

    /// Allow `http://` webhook URLs and loopback/private destinations, for local development.
    #[arg(long, env = "HERALD_DEV", default_value = "false", value_parser = BoolishValueParser::new(), global = true)]
    pub dev: bool,

    /// Comma-separated CIDRs that are delivered to even though private.
    #[arg(
        long,
        env = "HERALD_ALLOWED_NETWORKS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_networks: Vec<IpNet>,

    /// Delay before the first retry, in milliseconds.
    #[arg(
        long,
        env = "HERALD_RETRY_BASE_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub retry_base_ms: u64,

    /// Each further retry waits this many times longer.
    #[arg(
        long,
        env = "HERALD_RETRY_FACTOR",
        default_value_t = 4.0,
        global = true
    )]
    pub retry_factor: f32,

    /// No retry waits longer than this, in milliseconds.
    #[arg(
        long,
        env = "HERALD_RETRY_CAP_MS",
        default_value_t = 43_200_000,
        global = true
    )]
    pub retry_cap_ms: u64,

    /// One attempt's whole time limit, in milliseconds.
    #[arg(
        long,
        env = "HERALD_DELIVERY_TIMEOUT_MS",
        default_value_t = 15_000,
        global = true
    )]
    pub delivery_timeout_ms: u64,

    /// A webhook whose deliveries have all failed for this long is disabled.
    #[arg(
        long,
        env = "HERALD_DISABLE_AFTER_SECS",
        default_value_t = 2_592_000,
        global = true
    )]
    pub disable_after_secs: u64,

    /// Attempts in flight (and handed-over deliveries waiting to start) at once, over all
    /// webhooks.
    #[arg(
        long,
        env = "HERALD_MAX_IN_FLIGHT",
        default_value_t = 1024,
        global = true
    )]
    pub max_in_flight: usize,

    /// Attempts in flight at once to one webhook: a hanging receiver holds at most this many.
    /// Also how many handed-over deliveries may wait for it.
    #[arg(
        long,
        env = "HERALD_WEBHOOK_CONCURRENCY",
        default_value_t = 32,
        global = true
    )]
    pub webhook_concurrency: usize,

    /// How often the database is polled for due deliveries (work enqueued by this process is
    /// handed to its engine at once), in milliseconds.
    #[arg(long, env = "HERALD_POLL_MS", default_value_t = 500, global = true)]
    pub poll_ms: u64,

    /// On shutdown, how long attempts in flight may still finish before they are handed back
    /// (to be made again by the next process), in milliseconds.
    #[arg(
        long,
        env = "HERALD_SHUTDOWN_GRACE_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub shutdown_grace_ms: u64,
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
        if let Err(e) = crate::store::Scheme::of(&self.database_url) {
            return bad("DATABASE_URL", &e.to_string());
        }
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
        if self.poll_ms == 0 {
            return bad("HERALD_POLL_MS", "must be positive");
        }
        if !self.channel_url.contains("{subdomain}") {
            return bad("HERALD_CHANNEL_URL", "must contain {subdomain}");
        }
        Ok(())
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

    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    /// The database URL with any password replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        match url::Url::parse(&self.database_url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("redacted"));
                u.to_string()
            }
            _ => self.database_url.clone(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.redacted_database_url())
            .field("listen", &self.listen)
            .field("channel_url", &self.channel_url)
            .field("dev", &self.dev)
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
        assert!(!c.dev);
        assert!(c.validate().is_ok());
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
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
