//! PostgreSQL, for production and for several herald processes on one database: claims use
//! `FOR UPDATE SKIP LOCKED`, and migrations take sqlx's advisory lock, so processes starting
//! at once do not trip over each other.

use super::{Dialect, Result};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

type Db = sqlx::Postgres;
const DIALECT: Dialect = Dialect::Postgres;
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

#[expect(
    clippy::duplicate_mod,
    reason = "sql.rs is the shared SQL of both backends, compiled once for each"
)]
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as PostgresStore;

impl PostgresStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str, channel_url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore::new(pool.clone(), pool, channel_url))
    }
}
