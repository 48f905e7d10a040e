//! Composition and lifecycle: [`App::build`] wires config, store, engine, outbox and schema;
//! [`App::serve`] runs the HTTP server and the delivery engine until shutdown.

use crate::config::Config;
use crate::domain::content::{NewUser, Role};
use crate::domain::token;
use crate::graphql::{self, Services};
use crate::metrics::{Metrics, MetricsState};
use crate::outbox::hub::ListenerHub;
use crate::outbox::Outbox;
use crate::retention::Retention;
use crate::secrets::{self, KeySource, SecretsError, Unlocked};
use crate::store::{self, SharedStore, StoreError};
use crate::worker::sender::Sender;
use crate::worker::{Engine, EngineConfig};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The database server could not be reached in the time allowed.
    #[error("cannot connect to the database at {database}: {source}")]
    Unreachable {
        database: String,
        #[source]
        source: StoreError,
    },
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0} is already in use (by another herald or another program): choose another address with HERALD_LISTEN or --listen")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the initial admin token to {}: {source} (choose another file with HERALD_INITIAL_TOKEN_FILE)", path.display())]
    InitialToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub struct App {
    pub config: Config,
    pub store: SharedStore,
    pub engine: Arc<Engine>,
    /// Where every change is made (the API's, and tests').
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    services: Services,
}

/// What `token create` gives.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub channel: String,
    pub channel_name: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
}

/// What [`issue_token`] does with the role of a user who exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingRole {
    /// The user keeps the role they have (`token create` without `--role`).
    Keep,
    /// The user is given the request's role.
    Set,
}

/// A new token, for whom.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Shown once; stored only as a hash.
    pub token: String,
    /// The user's role now.
    pub role: Role,
    /// The role the user had before, when the request changed it.
    pub previous_role: Option<Role>,
}

/// Creates the channel and user when missing, gives the user the request's role, then a new
/// token for the user. Returns the token, which is stored only as a hash.
pub async fn create_token(store: &SharedStore, req: &TokenRequest) -> Result<String, StoreError> {
    Ok(issue_token(store, req, ExistingRole::Set).await?.token)
}

/// Creates the channel and user when missing (a new user gets the request's role; one who
/// exists keeps theirs or is given it, as `existing` says), then a new token for the user.
pub async fn issue_token(
    store: &SharedStore,
    req: &TokenRequest,
    existing: ExistingRole,
) -> Result<IssuedToken, StoreError> {
    issue(store, req, existing, token::generate()).await
}

/// [`issue_token`] with the token given.
async fn issue(
    store: &SharedStore,
    req: &TokenRequest,
    existing: ExistingRole,
    tok: String,
) -> Result<IssuedToken, StoreError> {
    let channel = store
        .ensure_channel(
            &req.channel,
            req.channel_name.as_deref().unwrap_or(&req.channel),
        )
        .await?;
    let user = store
        .ensure_user(
            channel.id,
            &NewUser {
                email: req.email.clone(),
                first_name: req.first_name.clone(),
                last_name: req.last_name.clone(),
                role: req.role,
            },
        )
        .await?;
    let (role, previous_role) = if user.role != req.role && existing == ExistingRole::Set {
        let was = store
            .set_user_role(&channel.subdomain, &user.email, req.role)
            .await?;
        (req.role, Some(was).filter(|was| *was != req.role))
    } else {
        (user.role, None)
    };
    store.create_token(user.id, &token::hash(&tok)).await?;
    Ok(IssuedToken {
        token: tok,
        role,
        previous_role,
    })
}

/// How long to keep trying a database server that cannot be reached.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// Until it answers (`serve`: it waits for its database, saying so).
    Forever,
    /// Give up after this long (one-off commands).
    For(Duration),
}

/// How long one attempt to reach the database server may take: a server that drops packets
/// would otherwise hold the first warning for the operating system's TCP timeout.
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the database with the default [`store::Settings`] (see [`connect_store_with`]).
pub async fn connect_store(
    database_url: &str,
    channel_url: &str,
    patience: Patience,
) -> Result<SharedStore, AppError> {
    connect_store_with(database_url, &store::Settings::new(channel_url), patience).await
}

/// Connects to the database and applies pending migrations ([`store::connect`]). While a
/// PostgreSQL server cannot be reached (refused, unresolvable, silent, starting up), each failed
/// attempt is logged as a warning with the server's `host:port` and the cause, and the attempt
/// is made again with backoff, as `patience` allows. Other errors (a refused password, a missing
/// database, a failed migration) are returned at once.
pub async fn connect_store_with(
    database_url: &str,
    settings: &store::Settings,
    patience: Patience,
) -> Result<SharedStore, AppError> {
    let address = crate::config::database_address(database_url);
    let postgres = address.is_some();
    let database = address.unwrap_or_else(|| crate::config::redacted(database_url));
    let give_up_at = match patience {
        Patience::Forever => None,
        Patience::For(patience) => Some(Instant::now() + patience),
    };
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        let attempt =
            match tokio::time::timeout(CONNECT_ATTEMPT_TIMEOUT, store::probe(database_url)).await {
                Ok(Ok(())) => store::connect(database_url, settings).await,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_ATTEMPT_TIMEOUT.as_secs()),
                )))),
            };
        let error = match attempt {
            Ok(store) => return Ok(store),
            Err(e) if postgres && e.is_unreachable() => e,
            Err(e) => return Err(e.into()),
        };
        let delay = backoff.next().unwrap_or(Duration::from_secs(10));
        if give_up_at.is_some_and(|at| Instant::now() + delay > at) {
            return Err(AppError::Unreachable {
                database,
                source: error,
            });
        }
        tracing::warn!(
            "cannot connect to the database at {database}: {}; trying again in {:.1} s",
            error_chain(&error),
            delay.as_secs_f32()
        );
        tokio::time::sleep(delay).await;
    }
}

/// Binds the HTTP server's address; an address in use is said so, by its name.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(address).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            AppError::AddressInUse(address)
        } else {
            AppError::Listen { address, source: e }
        }
    })
}

/// An error and its causes, as one line for people: `a: b: c`. A cause whose text the line
/// already holds (an error that prints its source itself) is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// What [`App::bootstrap`] made of an empty database.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The admin's token, to be shown at most once, where only the operator sees it.
    pub token: String,
    /// The file (mode 0600) the token was written to.
    pub path: PathBuf,
}

/// Writes `token` to `path`, readable and writable by this user only (mode 0600 on Unix, also
/// when the file existed with other permissions).
fn write_secret_file(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{token}")?;
    file.sync_all()
}

/// Says where the secret key came from when it is news: a key just made (to be backed up), or
/// secrets sealed at this start.
fn log_unlocked(unlocked: &Unlocked) {
    if let KeySource::Generated(path) = &unlocked.source {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        tracing::warn!(
            key_id = %unlocked.key_id,
            "webhook secrets are sealed with a new key, written to {} (mode 0600): back it up \
             apart from the database, which cannot be read without it",
            path.display()
        );
    }
    let resealed = unlocked.resealed;
    if resealed.plain > 0 {
        tracing::info!(
            webhooks = resealed.plain,
            key_id = %unlocked.key_id,
            "sealed webhook secrets that were stored in clear"
        );
    }
    if resealed.other_key > 0 {
        tracing::info!(
            webhooks = resealed.other_key,
            key_id = %unlocked.key_id,
            "sealed webhook secrets again under the current key"
        );
    }
}

impl App {
    /// Validates the config, connects to the database (applying migrations; an unreachable
    /// PostgreSQL server is waited for, see [`connect_store`]), unlocks webhook secrets (see
    /// [`secrets::unlock`]: the key is checked, made on a first start, and secrets stored in
    /// clear are sealed) and wires the engine. No listener is opened here.
    pub async fn build(config: Config) -> Result<App, AppError> {
        config.validate()?;
        let settings = config.store_settings();
        let store = connect_store_with(&config.database_url, &settings, Patience::Forever).await?;
        let unlocked = secrets::unlock(&store, &config.secret_keys, &config.database_url).await;
        if unlocked.is_err() {
            store.close().await;
        }
        log_unlocked(&unlocked?);
        let sender = Sender::new(config.delivery_timeout(), config.net_policy())?;
        let hub = Arc::new(ListenerHub::default());
        let metrics = Arc::new(Metrics::new());
        let engine = Arc::new(Engine::new(
            store.clone(),
            sender,
            EngineConfig {
                retry: config.retry_policy(),
                timeout: config.delivery_timeout(),
                disable_after: Duration::from_secs(config.disable_after_secs),
                max_in_flight: config.max_in_flight,
                webhook_concurrency: config.webhook_concurrency,
                poll: Duration::from_millis(config.poll_ms),
                shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
            },
            hub.clone(),
            metrics.clone(),
        ));
        let listener_grace = Duration::from_millis(config.listener_grace_ms);
        let outbox = Outbox::new(
            store.clone(),
            engine.clone(),
            hub,
            listener_grace,
            metrics.clone(),
        );
        let services = Services {
            store: store.clone(),
            net: config.net_policy(),
            outbox: outbox.clone(),
        };
        Ok(App {
            config,
            store,
            engine,
            outbox,
            metrics,
            services,
        })
    }

    /// On an empty database: creates a `default` channel with an admin, and writes the admin's
    /// token to [`Config::initial_token_path`] (mode 0600) before the token is stored, so that
    /// a token nobody can read is never made: when the file cannot be written, the database is
    /// left empty and the error returned.
    pub async fn bootstrap(&self) -> Result<Option<Bootstrapped>, AppError> {
        if self.store.channel_count().await? > 0 {
            return Ok(None);
        }
        let path = self.config.initial_token_path();
        let tok = token::generate();
        write_secret_file(&path, &tok).map_err(|source| AppError::InitialToken {
            path: path.clone(),
            source,
        })?;
        let req = TokenRequest {
            channel: "default".into(),
            channel_name: Some("Default channel".into()),
            email: "admin@herald.localhost".into(),
            first_name: "Herald".into(),
            last_name: "Admin".into(),
            role: Role::Admin,
        };
        issue(&self.store, &req, ExistingRole::Set, tok.clone()).await?;
        Ok(Some(Bootstrapped { token: tok, path }))
    }

    /// The HTTP router (GraphQL and health, and `/metrics` unless it has a listener of its
    /// own), for serving or for tests.
    pub fn router(&self) -> axum::Router {
        self.with_metrics(crate::http::router(self.http_state()))
    }

    fn http_state(&self) -> crate::http::HttpState {
        let schema = graphql::schema()
            .data(self.services.clone())
            .data(graphql::ChannelUrl(self.config.channel_url.clone()))
            .data(graphql::PublicUrl(self.config.public_url()))
            .finish();
        crate::http::HttpState {
            schema,
            store: self.store.clone(),
            outbox: self.outbox.clone(),
            secure_cookies: !self.config.dev,
        }
    }

    /// `/metrics` beside `api`, unless it has a listener of its own.
    fn with_metrics(&self, api: axum::Router) -> axum::Router {
        if self.config.metrics_listen.is_some() {
            api
        } else {
            self.metrics_router().merge(api)
        }
    }

    /// `GET /metrics` alone.
    pub fn metrics_router(&self) -> axum::Router {
        let engine = self.engine.clone();
        crate::metrics::router(MetricsState {
            metrics: self.metrics.clone(),
            store: self.store.clone(),
            paused: Arc::new(move || engine.paused_count()),
        })
    }

    /// Serves HTTP on `listener` and runs the delivery engine until `shutdown` completes;
    /// then stops accepting requests, lets the engine finish or hand back its attempts, and
    /// closes the database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        self.check_open_files();
        let (stop_tx, stop_rx) = watch::channel(false);
        // The metrics listener has the API's limits: a scraper is a client like any other.
        let metrics = match self.config.metrics_listen {
            Some(address) => {
                let listener = bind(address).await?;
                let router = self.metrics_router();
                let routers = crate::http::server::Routers {
                    api: router.clone(),
                    overflow: router,
                };
                let limits = self.config.connection_limits();
                let mut stopped = stop_rx.clone();
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                Some(tokio::spawn(crate::http::server::serve(
                    listener, routers, limits, stop,
                )))
            }
            None => None,
        };
        let retention = self.config.retention().map(|keep| {
            let every = Duration::from_millis(self.config.retention_every_ms);
            let task = Retention::new(self.store.clone(), self.metrics.clone(), keep, every);
            tokio::spawn(task.run(stop_rx.clone()))
        });
        let engine = tokio::spawn(self.engine.clone().run(stop_rx));
        let state = self.http_state();
        let routers = crate::http::server::Routers {
            api: self.with_metrics(crate::http::router(state.clone())),
            overflow: crate::http::overflow_router(state),
        };
        let limits = self.config.connection_limits();
        let served = crate::http::server::serve(listener, routers, limits, shutdown).await;
        let _ = stop_tx.send(true);
        if let Err(e) = engine.await {
            tracing::error!(error = %e, "delivery engine stopped abnormally");
        }
        if let Some(task) = retention {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "retention stopped abnormally");
            }
        }
        if let Some(metrics) = metrics {
            match metrics.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics listener stopped abnormally"),
                Ok(Ok(())) => {}
            }
        }
        self.store.close().await;
        served.map_err(AppError::from)
    }

    /// Raises the open-file limit as far as it goes, and warns when it is still too low for
    /// the connections herald may open: past it, accepting a client (even a health check)
    /// or reaching a receiver fails.
    fn check_open_files(&self) {
        let files = match crate::sys::files::raise_open_files() {
            Ok(files) => files,
            Err(e) => {
                tracing::debug!(error = %e, "the open-file limit is left as it is");
                return;
            }
        };
        tracing::debug!(was = ?files.was, now = ?files.now, "open-file limit (RLIMIT_NOFILE) raised to its hard limit");
        let wanted = self.config.max_connections + self.config.max_in_flight + FILES_BESIDES;
        if let Some(limit) = files.now.filter(|&limit| limit < wanted as u64) {
            tracing::warn!(
                limit,
                wanted,
                "the open-file limit is below HERALD_MAX_CONNECTIONS + HERALD_MAX_IN_FLIGHT + \
                 {FILES_BESIDES}: raise it (systemd: LimitNOFILE=; Docker: --ulimit nofile=) or \
                 lower those settings"
            );
        }
    }
}

/// Open files herald needs besides its clients' and receivers' connections: database
/// connections and files, the listener, the runtime's own.
const FILES_BESIDES: usize = 256;
