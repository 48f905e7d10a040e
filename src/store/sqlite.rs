//! SQLite, the embedded default: WAL, a busy timeout, foreign keys on, `synchronous=NORMAL`
//! (durable across process crashes; a power loss may drop the last commits). One writer
//! connection, because SQLite admits one writer at a time: writers queue in the pool instead
//! of failing on the lock. Readers have their own connections. Every connection's thread runs
//! at a raised priority when the process may raise it (see [`crate::sys::priority`]).

use super::backend::Backend;
use super::group::Writes;
use super::health::Health;
use super::secrets::Vault;
use super::types::fate_columns;
use super::{left_in_transaction, Recorded, Result, Settings, SqlStore};
use crate::sys::priority;
use sqlx::migrate::Migrator;
use sqlx::query::{Query, QueryAs};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens (creating when missing) the database file of `url` and applies migrations.
    pub async fn connect(url: &str, settings: &Settings) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // herald's own writes queue for the single writer in its pool; the lock is waited
            // for only when another program (a backup, a shell) holds it.
            .busy_timeout(settings.timeout)
            // Statement journals of multi-row writes stay in memory instead of temp files.
            .pragma("temp_store", "memory")
            // 2 MiB of page cache per connection, 8 MiB for the writer's (below). A reader's
            // cache is emptied whenever the writer commits, so more would only cost memory.
            .pragma("cache_size", "-2048")
            // Checkpoints run beside the writer (see `checkpoints`), so a commit never stops to
            // run one, unless the WAL ever passes ~200 MiB.
            .pragma("wal_autocheckpoint", "50000")
            .foreign_keys(true);
        let opened = open_pools(options, settings.timeout, settings.sqlite_max_bytes);
        let (writer, reader, checkpointer) =
            priority::on_raised_thread("herald-sqlite-open", RAISE, opened)
                .await
                .map_err(sqlx::Error::Io)??;
        MIGRATOR.run(&writer).await?;
        tokio::spawn(checkpoints(checkpointer.clone()));
        Ok(SqlStore {
            reader,
            writes: Writes::new(writer.clone()),
            writer: writer.clone(),
            engine: writer,
            background: vec![checkpointer],
            channel_url: settings.channel_url.clone(),
            health: Health::default(),
            vault: Vault::default(),
        })
    }
}

impl Backend for Sqlite {
    const SKIP_LOCKED: &'static str = "";
    const KEY_SHARE: &'static str = "";
    const SCRUB_ON: &'static str = "PRAGMA secure_delete = ON";
    const SCRUB_OFF: &'static str = "PRAGMA secure_delete = OFF";
    const SCRUB_FILES: &'static str = "PRAGMA wal_checkpoint(TRUNCATE)";

    type Writes = Writes;

    /// Adds attempts to the log and moves their deliveries on, in multi-row statements. Each
    /// statement's row count is rounded up to a power of two, the rest filled with rows of
    /// NULLs that match no delivery: so there are nine statement texts per kind, each prepared
    /// once per connection, rather than one per batch size.
    async fn write_records(c: &mut SqliteConnection, records: &[Recorded], now: i64) -> Result<()> {
        for chunk in records.chunks(RECORD_CHUNK) {
            let rows = padded(chunk);
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO delivery_attempts (delivery_id, at, url, code, result, message, duration_ms, response_body) \
                 SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 FROM (",
            );
            qb.push_values(&rows, |mut b, r| {
                let a = r.map(|r| &r.attempt);
                b.push_bind(a.map(|a| a.delivery_id))
                    .push_bind(a.map(|a| a.at))
                    .push_bind(a.map(|a| a.url.clone()))
                    .push_bind(a.and_then(|a| a.code))
                    .push_bind(a.map(|a| a.result.as_str()))
                    .push_bind(a.and_then(|a| a.message.clone()))
                    .push_bind(a.map(|a| a.duration_ms))
                    .push_bind(a.and_then(|a| a.response_body.clone()));
            });
            qb.push(") AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column1)");
            qb.build().persistent(true).execute(&mut *c).await?;

            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE deliveries SET status = v.column3, retries = deliveries.retries + v.column4, \
                 next_attempt_at = v.column5, url = v.column6, lease = NULL, claimed_until = NULL, updated_at = ",
            );
            qb.push_bind(now).push(" FROM (");
            qb.push_values(&rows, |mut b, r| {
                let columns = r.map(|r| (r, fate_columns(r.fate, now)));
                b.push_bind(columns.map(|(r, _)| r.attempt.delivery_id))
                    .push_bind(columns.map(|(r, _)| r.lease))
                    .push_bind(columns.map(|(_, (status, _, _))| status.as_str()))
                    .push_bind(columns.map(|(_, (_, bump, _))| bump))
                    .push_bind(columns.map(|(_, (_, _, next))| next))
                    .push_bind(columns.map(|(r, _)| r.attempt.url.clone()));
            });
            qb.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2");
            qb.build().persistent(true).execute(&mut *c).await?;
        }
        Ok(())
    }

    /// `column IN (ids)`, the ids bound as one JSON array.
    fn push_in<Id: Copy + Into<i64>>(qb: &mut QueryBuilder<'_, Sqlite>, column: &str, ids: &[Id]) {
        let list = format!(
            "[{}]",
            ids.iter()
                .map(|&id| id.into().to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        qb.push(column)
            .push(" IN (SELECT value FROM json_each(")
            .push_bind(list)
            .push("))");
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn shorten<'q, 'a: 'q>(
        query: Query<'q, Sqlite, SqliteArguments<'a>>,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        query
    }

    fn shorten_as<'q, 'a: 'q, O>(
        query: QueryAs<'q, Sqlite, O, SqliteArguments<'a>>,
    ) -> QueryAs<'q, Sqlite, O, SqliteArguments<'q>> {
        query
    }
}

/// Readers' connections (the writer and the checkpointer have one each).
const READERS: u32 = 4;

/// How many steps of `nice` SQLite's connection threads are raised above the rest of herald:
/// every change and every round of the delivery engine waits on SQLite's single writer, one
/// trip to its thread per statement, so it runs ahead of the HTTP and GraphQL work on the tokio
/// workers, but not so far ahead that it takes the cores from the sending it feeds.
const RAISE: i32 = 10;

/// Opens the writer's, the readers' and the checkpointer's pools, every connection at once, each
/// on a thread named for its part (`sqlite-writer`, `sqlite-reader`, `sqlite-checkpts`, as
/// `top -H` shows them). They are never closed for being idle or old, so every connection's
/// thread is started here, on the raised thread; only one that breaks is opened again, wherever
/// it is next needed, and its new thread is then raised by name.
///
/// A caller waits at most `timeout` for a connection. The writer's connection may not grow the
/// database past `max_bytes`.
async fn open_pools(
    options: SqliteConnectOptions,
    timeout: Duration,
    max_bytes: Option<u64>,
) -> Result<(SqlitePool, SqlitePool, SqlitePool)> {
    // A connection to a local file does not go stale while idle, so it is not pinged before
    // each use: that was one more trip to the connection's thread per transaction, while
    // the single writer is held (sqlx still checks each connection as it is released, which
    // also settles a rollback left behind, so the check below sees the connection's state).
    let pool = |size: u32, max_bytes: Option<u64>| {
        SqlitePoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(|conn, _| Box::pin(async move { Ok(!left_in_transaction(conn)) }))
            .acquire_timeout(timeout)
            .max_connections(size)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    priority::raise_late_threads("sqlite-");
                    if let Some(bytes) = max_bytes {
                        cap_size(conn, bytes).await?;
                    }
                    Ok(())
                })
            })
    };
    let named = |name: &'static str| options.clone().thread_name(move |_| name.to_string());
    let writer = pool(1, max_bytes)
        .connect_with(named("sqlite-writer").pragma("cache_size", "-8192"))
        .await?;
    let reader = pool(READERS, None)
        .connect_with(named("sqlite-reader").read_only(true))
        .await?;
    // `connect_with` opened one reader; holding each while asking for the next opens the rest.
    let mut held = Vec::new();
    for _ in 0..READERS {
        held.push(reader.acquire().await?);
    }
    drop(held);
    let checkpointer = pool(1, None)
        .connect_with(named("sqlite-checkpts").pragma("cache_size", "-1024"))
        .await?;
    Ok((writer, reader, checkpointer))
}

/// Keeps the database file within `max_bytes` for writes on `conn`: a write that needs more
/// fails with SQLITE_FULL, as on a full disk. (`max_page_count` holds for the connection that
/// sets it; a database already larger keeps its size.)
async fn cap_size(conn: &mut SqliteConnection, max_bytes: u64) -> sqlx::Result<()> {
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let pages = max_bytes / u64::try_from(page.max(1)).unwrap_or(4096);
    sqlx::query(&format!("PRAGMA max_page_count = {}", pages.max(1)))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the WAL back into the database file on its own connection, without waiting for
/// readers or the writer (`PASSIVE`), until the pool is closed. The writer never stops for it,
/// and once a checkpoint has caught up, the next commit starts the WAL over from its beginning.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "checkpoint failed; the next one tries again");
        }
    }
}

/// Rows per statement when recording attempts (far below SQLite's bind limit).
const RECORD_CHUNK: usize = 256;

/// `chunk`, then `None`s up to the next power of two.
fn padded(chunk: &[Recorded]) -> Vec<Option<&Recorded>> {
    let mut rows: Vec<Option<&Recorded>> = chunk.iter().map(Some).collect();
    rows.resize(chunk.len().next_power_of_two(), None);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::{Attempt, AttemptResult, Fate};
    use crate::domain::ids::{DeliveryId, WebhookId};

    fn record(id: i64) -> Recorded {
        Recorded {
            attempt: Attempt {
                delivery_id: DeliveryId(id),
                at: 0,
                url: String::new(),
                code: None,
                result: AttemptResult::Success,
                message: None,
                duration_ms: 0,
                response_body: None,
            },
            webhook_id: WebhookId(1),
            lease: 1,
            fate: Fate::Succeeded,
        }
    }

    /// A store on a new database file in a temporary directory (kept as long as the store).
    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        let store = SqliteStore::connect(&url, &Settings::new("https://example.com"))
            .await
            .expect("connect");
        (dir, store)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn connection_threads_are_raised_when_the_process_may() {
        let (_dir, store) = temp_store().await;
        let base = rustix::process::getpriority_process(None).expect("nice");
        let may = std::thread::spawn(|| priority::raise(RAISE).is_ok())
            .join()
            .expect("probe");
        let expected = if may { (base - RAISE).max(-20) } else { base };
        let threads = priority::nice_of_threads("sqlite-");
        for part in ["sqlite-writer", "sqlite-reader", "sqlite-checkpts"] {
            let count = threads.iter().filter(|(name, _)| name == part).count();
            assert!(count >= 1, "no {part} thread among {threads:?}");
        }
        // Other tests' stores may be open too; theirs were opened the same way.
        for (name, nice) in &threads {
            assert_eq!(
                *nice, expected,
                "{name} runs at nice {nice}, not {expected}"
            );
        }
        assert_eq!(
            rustix::process::getpriority_process(None).expect("nice"),
            base,
            "the caller's own thread is left as it was"
        );
        crate::store::Store::close(&store).await;
    }

    /// SQLite ends a transaction by itself on some errors (a full disk): sqlx's `ROLLBACK`
    /// then fails, and sqlx goes on counting a transaction that is not there, so its next one
    /// on that connection is a savepoint, whose rollback leaves SQLite inside a transaction that
    /// nobody owns. The connection must not be handed out again in either state: the next
    /// change on it would fail with "cannot start a transaction within a transaction".
    #[tokio::test]
    async fn a_connection_whose_transaction_failed_is_not_reused() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.engine.begin().await.expect("begin");
        // What SQLite does to a transaction on SQLITE_FULL, without the statement journal.
        sqlx::query("ROLLBACK")
            .execute(&mut *tx)
            .await
            .expect("ended");
        drop(tx);
        let mut tx = store.engine.begin().await.expect("begin again");
        sqlx::query("UPDATE channels SET name = name")
            .execute(&mut *tx)
            .await
            .expect("write");
        drop(tx); // an error after writing: rolled back
        store
            .ensure_channel("next", "The next change")
            .await
            .expect("the next change is made on a connection in a clean state");
        crate::store::Store::close(&store).await;
    }

    /// Migration 0010 writes `videos` and its link tables anew (SQLite cannot change a CHECK
    /// in place): a database with videos in it keeps them, their links, the foreign keys that
    /// clean the links up, and its id counter.
    #[tokio::test]
    async fn videos_come_through_the_table_rewrite_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = dir.path().join("before-0010");
        std::fs::create_dir(&before).expect("dir");
        let all = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        for entry in std::fs::read_dir(all).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name < "0010" {
                std::fs::copy(&path, before.join(name)).expect("copy");
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open");
        let run = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query(sql).execute(&pool).await.expect(sql) }
        };
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .expect(sql)
            }
        };
        Migrator::new(before.as_path())
            .await
            .expect("old migrations")
            .run(&pool)
            .await
            .expect("migrated to 0006");
        run("INSERT INTO channels (subdomain, name, created_at) VALUES ('c', 'C', 1)").await;
        run("INSERT INTO users (channel_id, email, first_name, last_name, role, created_at) VALUES (1, 'e@x', 'F', 'L', 'admin', 5)").await;
        run("INSERT INTO collections (channel_id, name, slug, secret, created_at, updated_at) VALUES (1, 'c', 'c', FALSE, 1, 1)").await;
        run("INSERT INTO videos (channel_id, title, slug, summary, visibility, draft, created_at, updated_at) \
             VALUES (1, 'a', 'a', '', 'ON_CHANNEL', FALSE, 1, 1), (1, 'b', 'b', '', 'PRIVATE', FALSE, 1, 1), (1, 'c', 'c', '', 'PRIVATE', FALSE, 1, 1)").await;
        run("DELETE FROM videos WHERE id = 3").await;
        run("INSERT INTO video_collections (video_id, collection_id, position) VALUES (1, 1, 0)")
            .await;
        run("INSERT INTO video_tagged_users (video_id, user_id, position) VALUES (2, 1, 0)").await;

        MIGRATOR.run(&pool).await.expect("migrated");
        assert_eq!(count("SELECT COUNT(*) FROM videos").await, 2);
        assert_eq!(
            count("SELECT COUNT(*) FROM video_collections WHERE video_id = 1").await,
            1
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM video_tagged_users WHERE video_id = 2").await,
            1
        );
        assert_eq!(count("SELECT updated_at FROM users").await, 5);
        run("INSERT INTO videos (channel_id, title, slug, summary, visibility, draft, created_at, updated_at) \
             VALUES (1, 'd', 'd', '', 'LINK_ONLY', FALSE, 1, 1)").await;
        assert_eq!(
            count("SELECT MAX(id) FROM videos").await,
            4,
            "a deleted video's id is not handed out again"
        );
        run("DELETE FROM videos WHERE id = 1").await;
        assert_eq!(
            count("SELECT COUNT(*) FROM video_collections").await,
            0,
            "links still follow their video"
        );
        assert!(
            sqlx::query("INSERT INTO video_collections (video_id, collection_id, position) VALUES (99, 1, 0)")
                .execute(&pool)
                .await
                .is_err(),
            "links still need their video"
        );
    }

    #[test]
    fn batches_are_padded_to_a_power_of_two() {
        let records: Vec<Recorded> = (1..=5).map(record).collect();
        let rows = padded(&records);
        assert_eq!(rows.len(), 8);
        let ids: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.map(|r| r.attempt.delivery_id.get()))
            .collect();
        assert_eq!(
            ids,
            vec![
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                None,
                None,
                None
            ]
        );
        assert_eq!(
            padded(&records[..4]).len(),
            4,
            "a power of two is not padded"
        );
        assert_eq!(padded(&records[..1]).len(), 1);
    }
}
