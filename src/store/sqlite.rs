//! SQLite, the embedded default: WAL, a busy timeout, foreign keys on, `synchronous=NORMAL`
//! (durable across process crashes; a power loss may drop the last commits). One writer
//! connection, because SQLite admits one writer at a time: writers queue in the pool instead
//! of failing on the lock. Readers have their own connections. Every connection's thread runs
//! at a raised priority when the process may raise it (see `on_raised_thread`).

use super::group::Writes;
use super::{Dialect, Recorded, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::QueryBuilder;
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
            // 2 MiB of page cache per connection, 8 MiB for the writer's (below). A reader's
            // cache is emptied whenever the writer commits, so more would only cost memory. In
            // the backlog scenario of examples/bench.rs, a writer's cache larger than 16 MiB
            // raised peak RSS by ~40 MiB for no throughput, and 8 MiB against 16 lowered it by
            // ~8 MiB (123-124 against 129-134 MiB) for ~3 % less throughput, within the noise.
            .pragma("cache_size", "-2048")
            // Checkpoints run beside the writer (see `checkpoints`); a commit runs one itself
            // only if the WAL ever passes ~200 MiB. Measured with examples/bench.rs: checkpoints
            // run by the writer every 4 MiB (the default) multiplied fan-out latency tenfold.
            .pragma("wal_autocheckpoint", "50000")
            .foreign_keys(true);
        let (writer, reader, checkpointer) = on_raised_thread(open_pools(options)).await?;
        MIGRATOR.run(&writer).await?;
        tokio::spawn(checkpoints(checkpointer.clone()));
        Ok(
            SqliteStore::new(reader, writer.clone(), writer, channel_url)
                .with_background(checkpointer),
        )
    }
}

/// Readers' connections (the writer and the checkpointer have one each).
const READERS: u32 = 4;

/// Opens the writer's, the readers' and the checkpointer's pools, every connection at once, each
/// on a thread named for its part (`sqlite-writer`, `sqlite-reader`, `sqlite-checkpts`, as
/// `top -H` shows them). They are never closed for being idle or old, so every connection's
/// thread is started here (see [`on_raised_thread`]); only one that breaks is opened again,
/// wherever it is next needed, and its new thread is then raised by [`raise_late_threads`].
async fn open_pools(
    options: SqliteConnectOptions,
) -> Result<(sqlx::SqlitePool, sqlx::SqlitePool, sqlx::SqlitePool)> {
    // A connection to a local file does not go stale while idle, so it is not pinged before
    // each use: that was one more trip to the connection's thread per transaction, while
    // the single writer is held (sqlx still checks each connection as it is released).
    let pool = |size: u32| {
        SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(size)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|_, _| {
                Box::pin(async {
                    raise_late_threads();
                    Ok(())
                })
            })
    };
    let named = |name: &'static str| options.clone().thread_name(move |_| name.to_string());
    let writer = pool(1)
        .connect_with(named("sqlite-writer").pragma("cache_size", "-8192"))
        .await?;
    let reader = pool(READERS)
        .connect_with(named("sqlite-reader").read_only(true))
        .await?;
    // `connect_with` opened one reader; holding each while asking for the next opens the rest.
    let mut held = Vec::new();
    for _ in 0..READERS {
        held.push(reader.acquire().await?);
    }
    drop(held);
    let checkpointer = pool(1)
        .connect_with(named("sqlite-checkpts").pragma("cache_size", "-1024"))
        .await?;
    Ok((writer, reader, checkpointer))
}

/// How many steps of `nice` SQLite's connection threads are raised above the rest of herald.
/// In side-by-side fan-outs 20 steps sent less than 10, with p99 three times as high (the
/// writer took the cores from the sending it feeds), and 5 steps sent about as much or less.
const RAISE: i32 = 10;

/// Runs `open` on a thread of its own, raised by [`RAISE`] steps of `nice` when the process may
/// raise its priority (as root, with `CAP_SYS_NICE`, or within an `RLIMIT_NICE` such as
/// systemd's `LimitNICE=`); otherwise at the priority it has, which changes nothing else.
///
/// sqlx starts each SQLite connection's thread from the thread that opens the connection, and a
/// new thread inherits its creator's priority: so the connections opened here run ahead of
/// herald's HTTP and GraphQL work on the tokio workers. Why: every change and every round of
/// the delivery engine waits on SQLite's single writer, one trip to its thread per statement.
/// In a 50-webhook fan-out on two cores its thread spent as long waiting for a core as it ran
/// (29 % and 35 % of the time, `/proc/<pid>/task/<tid>/schedstat`), and the writer, not the
/// CPU, set how many events were accepted. Raised, it waited 7 % and ran 37 %, and the fan-out
/// went from 14,901-19,480 to 22,704 deliveries/s (examples/bench.rs; README, Performance).
async fn on_raised_thread<T, F>(open: F) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("herald-sqlite-open".into())
        .spawn(move || {
            match raise(RAISE) {
                Ok(nice) => {
                    // Every store of the process raises by the same steps from the same base.
                    let _ = RAISED.set(nice);
                    tracing::info!(nice, "SQLite's connection threads run raised")
                }
                Err(e) => tracing::info!(
                    error = %e,
                    "SQLite's connection threads keep herald's priority (raising it needs CAP_SYS_NICE or RLIMIT_NICE)"
                ),
            }
            // The receiver is gone only if the caller was, and then nobody wants the pools.
            let _ = tx.send(runtime.block_on(open));
        })
        .map_err(sqlx::Error::Io)?;
    rx.await.map_err(|_| sqlx::Error::WorkerCrashed)?
}

/// Lowers the calling thread's `nice` by `steps` (on Linux, where each thread has its own) and
/// returns the new value.
#[cfg(target_os = "linux")]
fn raise(steps: i32) -> std::io::Result<i32> {
    use rustix::process::{getpriority_process, setpriority_process};
    // With no pid, Linux's `setpriority(PRIO_PROCESS, 0, …)` acts on the calling thread alone.
    let nice = getpriority_process(None)? - steps;
    setpriority_process(None, nice)?;
    Ok(nice)
}

/// Elsewhere a priority belongs to the whole process, which herald leaves alone.
#[cfg(not(target_os = "linux"))]
fn raise(_steps: i32) -> std::io::Result<i32> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The `nice` SQLite's connection threads run at, once [`on_raised_thread`] could raise it.
static RAISED: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Raises SQLite's connection threads that run at a lower priority than [`RAISED`]: run after
/// every connection is opened. Those opened by [`open_pools`] already run raised; one opened
/// again later, after its connection broke, was started from a tokio worker at herald's own
/// priority.
fn raise_late_threads() {
    if let Some(&nice) = RAISED.get() {
        match raise_threads("sqlite-", nice) {
            Ok(0) => {}
            Ok(raised) => tracing::info!(
                raised,
                nice,
                "a reopened SQLite connection's thread runs raised"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "a reopened SQLite connection's thread keeps herald's priority")
            }
        }
    }
}

/// Sets every thread of this process whose name starts with `prefix` and whose `nice` is higher
/// (its priority lower) than `nice` to `nice`; returns how many it set.
#[cfg(target_os = "linux")]
fn raise_threads(prefix: &str, nice: i32) -> std::io::Result<usize> {
    use rustix::process::{getpriority_process, setpriority_process, Pid};
    // `setpriority` stops at -20; asking for less would find the thread "below" every time.
    let nice = nice.max(-20);
    let mut raised = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        // A thread may end between the listing and the reading.
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        // On Linux a thread id is a `PRIO_PROCESS` target of its own.
        if getpriority_process(Some(tid)).is_ok_and(|current| current > nice) {
            setpriority_process(Some(tid), nice)?;
            raised += 1;
        }
    }
    Ok(raised)
}

#[cfg(not(target_os = "linux"))]
fn raise_threads(_prefix: &str, _nice: i32) -> std::io::Result<usize> {
    Ok(0)
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the WAL back into the database file on its own connection, without waiting for
/// readers or the writer (`PASSIVE`), until the pool is closed. The writer never stops for it,
/// and once a checkpoint has caught up, the next commit starts the WAL over from its beginning.
async fn checkpoints(pool: sqlx::SqlitePool) {
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

/// Adds attempts to the log and moves their deliveries on, in multi-row statements. A record
/// whose lease is stale adds its attempt and changes nothing else; an attempt whose delivery
/// was deleted meanwhile (with its webhook) is not recorded.
///
/// Each statement's row count is rounded up to a power of two, the rest filled with rows of
/// NULLs that match no delivery: so there are nine statement texts per kind, each prepared once
/// per connection. A text for every batch size thrashed the statement cache, and parsing them
/// anew was ~6 % of herald's instructions in the fan-out. (Binding the batch as one JSON array
/// instead made SQLite's work per row grow by more than the parsing saved.)
async fn write_records(
    c: &mut sqlx::SqliteConnection,
    records: &[Recorded],
    now: i64,
) -> Result<()> {
    for chunk in records.chunks(RECORD_CHUNK) {
        let rows = padded(chunk);
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO delivery_attempts (delivery_id, at, url, code, result, message, duration_ms, response_body) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 FROM (",
        );
        qb.push_values(&rows, |mut b, r| {
            b.push_bind(r.map(|r| r.delivery_id))
                .push_bind(r.map(|r| r.at))
                .push_bind(r.map(|r| r.url.clone()))
                .push_bind(r.and_then(|r| r.code))
                .push_bind(r.map(|r| r.result.as_str()))
                .push_bind(r.and_then(|r| r.message.clone()))
                .push_bind(r.map(|r| r.duration_ms))
                .push_bind(r.and_then(|r| r.response_body.clone()));
        });
        qb.push(") AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column1)");
        qb.build().persistent(true).execute(&mut *c).await?;

        let mut qb = QueryBuilder::<Db>::new(
            "UPDATE deliveries SET status = v.column3, retries = deliveries.retries + v.column4, \
             next_attempt_at = v.column5, url = v.column6, lease = NULL, claimed_until = NULL, updated_at = ",
        );
        qb.push_bind(now).push(" FROM (");
        qb.push_values(&rows, |mut b, r| {
            let columns = r.map(|r| (r, r.fate.columns(now)));
            b.push_bind(columns.map(|(r, _)| r.delivery_id))
                .push_bind(columns.map(|(r, _)| r.lease))
                .push_bind(columns.map(|(_, (status, _, _))| status.as_str()))
                .push_bind(columns.map(|(_, (_, bump, _))| bump))
                .push_bind(columns.map(|(_, (_, _, next))| next))
                .push_bind(columns.map(|(r, _)| r.url.clone()));
        });
        qb.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2");
        qb.build().persistent(true).execute(&mut *c).await?;
    }
    Ok(())
}

/// `chunk`, then `None`s up to the next power of two.
fn padded(chunk: &[Recorded]) -> Vec<Option<&Recorded>> {
    let mut rows: Vec<Option<&Recorded>> = chunk.iter().map(Some).collect();
    rows.resize(chunk.len().next_power_of_two(), None);
    rows
}

/// Pushes `column IN (ids)`, the ids bound as one JSON array: the statement's text does not
/// depend on how many there are, so it is prepared once.
fn push_in(qb: &mut QueryBuilder<'_, Db>, column: &str, ids: &[i64]) {
    let list = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    qb.push(column)
        .push(" IN (SELECT value FROM json_each(")
        .push_bind(list)
        .push("))");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::AttemptResult;
    use crate::store::Fate;

    fn record(id: i64) -> Recorded {
        Recorded {
            delivery_id: id,
            webhook_id: 1,
            lease: 1,
            at: 0,
            url: String::new(),
            code: None,
            result: AttemptResult::Success,
            message: None,
            duration_ms: 0,
            response_body: None,
            fate: Fate::Succeeded,
        }
    }

    /// The `nice` of each of this process's threads whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(prefix: &str) -> Vec<(String, i32)> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
            let path = task.expect("task").path();
            // A thread may end between the listing and the reading.
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                panic!("unreadable stat: {stat}");
            };
            let name = &stat[open + 1..close];
            if !name.starts_with(prefix) {
                continue;
            }
            // After the name come fields 3 (state) onwards; `nice` is field 19.
            let nice = stat[close + 1..]
                .split_whitespace()
                .nth(19 - 3)
                .and_then(|n| n.parse().ok())
                .expect("nice");
            found.push((name.to_string(), nice));
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn connection_threads_are_raised_when_the_process_may() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("raised.db").display());
        let store = SqliteStore::connect(&url, "https://example.com")
            .await
            .expect("connect");
        let base = rustix::process::getpriority_process(None).expect("nice");
        let may = std::thread::spawn(|| raise(RAISE).is_ok())
            .join()
            .expect("probe");
        let expected = if may { (base - RAISE).max(-20) } else { base };
        let threads = nice_of_threads("sqlite-");
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

    /// A connection opened again after it broke starts its thread from wherever the pool needs
    /// it, at herald's own priority; `raise_threads` finds such a thread by its name.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_started_later_is_raised_by_name() {
        let base = rustix::process::getpriority_process(None).expect("nice");
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let late = std::thread::Builder::new()
            .name("latecomer-test".into())
            .spawn(move || {
                let _ = started.send(());
                let _ = wait.recv();
            })
            .expect("thread");
        // A new thread names itself as it starts (as sqlx's connection threads have before the
        // connection they open is handed over).
        running.recv().expect("the thread started");
        let may = std::thread::spawn(|| raise(RAISE).is_ok())
            .join()
            .expect("probe");
        let outcome = raise_threads("latecomer-", base - RAISE);
        let nice: Vec<i32> = nice_of_threads("latecomer-")
            .into_iter()
            .map(|(_, nice)| nice)
            .collect();
        let _ = done.send(());
        late.join().expect("latecomer");
        if may {
            assert_eq!(outcome.expect("raised"), 1);
            assert_eq!(nice, vec![(base - RAISE).max(-20)]);
            assert_eq!(
                raise_threads("latecomer-", base - RAISE).expect("nothing left"),
                0,
                "a thread that has ended is not looked for"
            );
        } else {
            assert!(outcome.is_err(), "raising without permission must fail");
            assert_eq!(nice, vec![base]);
        }
    }

    #[test]
    fn batches_are_padded_to_a_power_of_two() {
        let records: Vec<Recorded> = (1..=5).map(record).collect();
        let rows = padded(&records);
        assert_eq!(rows.len(), 8);
        let ids: Vec<Option<i64>> = rows.iter().map(|r| r.map(|r| r.delivery_id)).collect();
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
