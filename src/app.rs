//! Composition and lifecycle: [`App::build`] wires config, store, schema and engine;
//! [`App::serve`] runs the HTTP server and the delivery engine until shutdown.

use crate::config::Config;
use crate::domain::content::{NewUser, Role};
use crate::domain::token;
use crate::graphql::{self, Services};
use crate::store::{self, SharedStore, StoreError};
use crate::worker::sender::Sender;
use crate::worker::{Engine, EngineConfig};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub struct App {
    pub config: Config,
    pub store: SharedStore,
    pub engine: Arc<Engine>,
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

/// Creates the channel and user when missing, then a new token for the user. Returns the
/// token, which is stored only as a hash.
pub async fn create_token(store: &SharedStore, req: &TokenRequest) -> Result<String, StoreError> {
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
    let tok = token::generate();
    store.create_token(user.id, &token::hash(&tok)).await?;
    Ok(tok)
}

impl App {
    /// Validates the config, connects to the database (applying migrations) and wires the
    /// engine. No listener is opened here.
    pub async fn build(config: Config) -> Result<App, AppError> {
        config.validate()?;
        let store = store::connect(&config.database_url, &config.channel_url).await?;
        let sender = Sender::new(config.delivery_timeout(), config.net_policy())?;
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
        ));
        let services = Services {
            store: store.clone(),
            net: config.net_policy(),
            engine: engine.clone(),
        };
        Ok(App {
            config,
            store,
            engine,
            services,
        })
    }

    /// On an empty database: creates a `default` channel with an admin and returns that
    /// admin's token, to be shown once.
    pub async fn bootstrap(&self) -> Result<Option<String>, StoreError> {
        if self.store.channel_count().await? > 0 {
            return Ok(None);
        }
        let req = TokenRequest {
            channel: "default".into(),
            channel_name: Some("Default channel".into()),
            email: "admin@herald.localhost".into(),
            first_name: "Herald".into(),
            last_name: "Admin".into(),
            role: Role::Admin,
        };
        create_token(&self.store, &req).await.map(Some)
    }

    /// The HTTP router (GraphQL and health), for serving or for tests.
    pub fn router(&self) -> axum::Router {
        let schema = graphql::schema()
            .data(self.services.clone())
            .data(graphql::ChannelUrl(self.config.channel_url.clone()))
            .finish();
        crate::http::router(crate::http::HttpState {
            schema,
            store: self.store.clone(),
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
        let (stop_tx, stop_rx) = watch::channel(false);
        let engine = tokio::spawn(self.engine.clone().run(stop_rx));
        let router = self.router();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_tx.send(true);
        if let Err(e) = engine.await {
            tracing::error!(error = %e, "delivery engine stopped abnormally");
        }
        self.store.close().await;
        served.map_err(AppError::from)
    }
}
