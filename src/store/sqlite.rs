//! SQLite, the embedded default: WAL, a busy timeout, foreign keys on, `synchronous=NORMAL`
//! (durable across process crashes; a power loss may drop the last commits). One writer
//! connection, because SQLite admits one writer at a time: writers queue in the pool instead
//! of failing on the lock. Readers have their own connections.

use super::{Dialect, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

type Db = sqlx::Sqlite;
const DIALECT: Dialect = Dialect::Sqlite;
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

#[expect(
    clippy::duplicate_mod,
    reason = "sql.rs is the shared SQL of both backends, compiled once for each"
)]
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as SqliteStore;

impl SqliteStore {
    /// Opens (creating when missing) the database file of `url` and applies migrations.
    pub async fn connect(url: &str, channel_url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals of multi-row writes stay in memory instead of temp files.
            .pragma("temp_store", "memory")
            // 32 MiB of page cache per connection, and checkpoints every ~40 MiB of WAL rather
            // than every 4 MiB: hot index pages are written back far less often (measured with
            // examples/bench.rs: the default interval multiplied fan-out latency tenfold).
            .pragma("cache_size", "-32768")
            .pragma("wal_autocheckpoint", "10000")
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore::new(reader, writer, channel_url))
    }
}
