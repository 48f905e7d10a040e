//! Group commit for SQLite's single writer.
//!
//! Changes that arrive while another is being written join one transaction, each inside a
//! savepoint of its own, and the transaction commits once for all of them. Every change
//! still answers only after the commit that holds it, and a change that fails (or whose caller
//! goes away) is rolled back to its savepoint without touching the others.
//!
//! Why: a commit writes every page the transaction dirtied to the WAL, two `pwrite`s a page.
//! One event's deliveries touch a page of each per-webhook index per webhook, so a fan-out's
//! commit writes a couple of pages per webhook. In a group those pages are written once for all
//! its changes.
//!
//! How: a member holds the group's lock (a fair mutex) while it writes and gives it up when it
//! is done, then waits for the group's outcome. A committer task, told whenever a member is
//! done, takes the lock in its turn: behind every change already waiting for it, which thereby
//! join the group. When it gets the lock, it commits what the group holds.

use super::backend::{Begin, Commit};
use super::{StoreError, Unavailable};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Sqlite, SqliteConnection, SqlitePool, TransactionManager};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex, Notify, OwnedMutexGuard};

/// The group's transaction is begun, committed and rolled back through sqlx, so that sqlx
/// counts it: a connection handed back to the pool inside it (its rollback failed, or the task
/// ending it was stopped) is then seen, and closed, before anyone reuses it.
type Manager = <Sqlite as Database>::TransactionManager;

/// How a group's commit went.
type Outcome = Result<(), Failure>;

/// Why a group was not committed: the database's message, and its state when that was why.
#[derive(Debug, Clone)]
struct Failure {
    message: Arc<str>,
    cause: Option<Unavailable>,
}

impl Failure {
    fn new(context: &str, e: &sqlx::Error) -> Self {
        Failure {
            message: Arc::from(format!("{context}{e}")),
            cause: Unavailable::of(e),
        }
    }
}

/// The writer, shared by the store's write transactions.
pub struct Writes {
    pool: SqlitePool,
    group: Arc<Mutex<Group>>,
    done: Arc<Notify>,
}

/// The open group, if any.
struct Group {
    /// The writer's connection, inside a transaction, while a group is open.
    conn: Option<PoolConnection<Sqlite>>,
    /// A member went away without finishing: its savepoint is still to be rolled back.
    undo: bool,
    /// Where the open group's outcome is told.
    outcome: watch::Sender<Option<Outcome>>,
    /// Changes in the open group.
    members: usize,
}

/// The most changes in one group: past it, the next change commits the group before it starts
/// another, so the writer's connection goes back to its pool (and to the delivery engine's
/// rounds waiting there) at least this often.
const MAX_GROUP: usize = 8;

impl Writes {
    /// Writes through `pool` (a single connection) and starts the committer.
    pub fn new(pool: SqlitePool) -> Self {
        let group = Arc::new(Mutex::new(Group {
            conn: None,
            undo: false,
            outcome: watch::channel(None).0,
            members: 0,
        }));
        let done = Arc::new(Notify::new());
        tokio::spawn(committer(pool.clone(), group.clone(), done.clone()));
        Writes { pool, group, done }
    }
}

impl Begin<Sqlite> for Writes {
    type Tx = WriteTx;

    /// Starts a change: joins the open group, or opens one.
    async fn begin(&self) -> sqlx::Result<WriteTx> {
        let mut group = self.group.clone().lock_owned().await;
        group.settle().await;
        if group.conn.is_some() && group.members >= MAX_GROUP {
            if let Err(e) = group.end(None).await {
                tracing::warn!(error = %e.message, "a group of writes could not be committed");
            }
        }
        if group.conn.is_none() {
            let mut conn = self.pool.acquire().await?;
            if let Err(e) = Manager::begin(&mut *conn, None).await {
                // A connection that cannot begin is not handed out again.
                let _ = conn.close().await;
                return Err(e);
            }
            group.conn = Some(conn);
            group.outcome = watch::channel(None).0;
            group.members = 0;
        }
        group.members += 1;
        if let Err(e) = group.execute("SAVEPOINT member").await {
            group.fail(&e).await;
            return Err(e);
        }
        Ok(WriteTx {
            group: Some(group),
            done: self.done.clone(),
        })
    }
}

impl Group {
    async fn execute(&mut self, sql: &str) -> sqlx::Result<()> {
        match self.conn.as_mut() {
            Some(conn) => sqlx::query(sql).execute(&mut **conn).await.map(|_| ()),
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Rolls back what a member that went away left behind.
    async fn settle(&mut self) {
        if !std::mem::take(&mut self.undo) {
            return;
        }
        let undone = match self.execute("ROLLBACK TO member").await {
            Ok(()) => self.execute("RELEASE member").await,
            Err(e) => Err(e),
        };
        if let Err(e) = undone {
            self.fail(&e).await;
        }
    }

    /// Ends the open group: commits it, or rolls it back if it `failed` or the commit fails,
    /// and tells its members.
    async fn end(&mut self, failed: Option<Failure>) -> Outcome {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let outcome = match failed {
            None => Manager::commit(&mut *conn)
                .await
                .map_err(|e| Failure::new("", &e)),
            Some(failure) => Err(failure),
        };
        if outcome.is_err() {
            if let Err(e) = Manager::rollback(&mut *conn).await {
                // SQLite ends a transaction by itself on some errors (a full disk): nothing of
                // the group is kept either way, and a connection whose rollback failed is not
                // handed out again.
                tracing::warn!(error = %e, "a failed group of writes could not be rolled back; its connection is closed");
                let _ = conn.close().await;
            }
        }
        self.outcome.send_replace(Some(outcome.clone()));
        outcome
    }

    /// The transaction cannot go on: everything in it is rolled back.
    async fn fail(&mut self, e: &sqlx::Error) {
        tracing::warn!(error = %e, "a grouped write failed; the group is rolled back");
        let failure = Failure::new("an earlier change in the same transaction failed: ", e);
        let _ = self.end(Some(failure)).await;
    }
}

/// Commits the open group whenever a member is done and the lock comes round, until the pool
/// is closed.
async fn committer(pool: SqlitePool, group: Arc<Mutex<Group>>, done: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = done.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut group = group.lock().await;
        group.settle().await;
        if group.conn.is_some() {
            if let Err(e) = group.end(None).await {
                tracing::warn!(error = %e.message, "a group of writes could not be committed");
            }
        }
        if pool.is_closed() {
            return;
        }
    }
}

/// One change's part of a group: the writer's connection while the change writes.
pub struct WriteTx {
    group: Option<OwnedMutexGuard<Group>>,
    done: Arc<Notify>,
}

impl Commit<Sqlite> for WriteTx {
    /// Ends the change: keeps its writes, and answers once the group holding them committed.
    async fn commit(mut self) -> super::Result<()> {
        let Some(mut group) = self.group.take() else {
            return Err(sqlx::Error::PoolClosed.into());
        };
        if let Err(e) = group.execute("RELEASE member").await {
            group.fail(&e).await;
            return Err(e.into());
        }
        let mut outcome = group.outcome.subscribe();
        drop(group);
        self.done.notify_one();
        let told = |result: Outcome| {
            result.map_err(|failure| StoreError::NotCommitted {
                message: failure.message,
                cause: failure.cause,
            })
        };
        loop {
            if let Some(result) = outcome.borrow_and_update().clone() {
                return told(result);
            }
            if outcome.changed().await.is_err() {
                return match outcome.borrow().clone() {
                    Some(result) => told(result),
                    None => Err(StoreError::NotCommitted {
                        message: "its group ended without an outcome".into(),
                        cause: None,
                    }),
                };
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.group
            .as_ref()
            .and_then(|g| g.conn.as_deref())
            .expect("a change holds the writer's connection until it ends")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.group
            .as_mut()
            .and_then(|g| g.conn.as_deref_mut())
            .expect("a change holds the writer's connection until it ends")
    }
}

impl Drop for WriteTx {
    /// A change dropped without `commit` (an error, or its caller went away): whoever takes the
    /// lock next rolls its savepoint back first.
    fn drop(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.undo = true;
            drop(group);
            self.done.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    async fn pools(dir: &tempfile::TempDir) -> (SqlitePool, SqlitePool) {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("group.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .expect("writer");
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL)")
            .execute(&writer)
            .await
            .expect("table");
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.read_only(true))
            .await
            .expect("reader");
        (writer, reader)
    }

    async fn values(reader: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(reader)
            .await
            .expect("select")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_changes_keep_theirs_and_drop_what_failed() {
        let dir = tempfile::tempdir().expect("dir");
        let (writer, reader) = pools(&dir).await;
        let writes = Arc::new(Writes::new(writer));
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let writes = writes.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = writes.begin().await.expect("begin");
                for part in 0..3 {
                    sqlx::query("INSERT INTO t (x) VALUES ($1)")
                        .bind(i * 10 + part)
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                    tokio::task::yield_now().await;
                }
                if i % 3 == 0 {
                    return None; // fails: dropped without commit, after writing
                }
                tx.commit().await.expect("commit");
                Some(i)
            }));
        }
        let mut kept = Vec::new();
        for t in tasks {
            if let Some(i) = t.await.expect("task") {
                kept.extend([i * 10, i * 10 + 1, i * 10 + 2]);
            }
        }
        kept.sort_unstable();
        assert_eq!(
            values(&reader).await,
            kept,
            "every committed change is kept whole, and nothing of the failed ones"
        );
    }

    #[tokio::test]
    async fn a_change_answers_after_its_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let (writer, reader) = pools(&dir).await;
        let writes = Writes::new(writer);
        let mut tx = writes.begin().await.expect("begin");
        sqlx::query("INSERT INTO t (x) VALUES (7)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        assert!(
            values(&reader).await.is_empty(),
            "not visible before the commit"
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            values(&reader).await,
            vec![7],
            "visible once commit answered"
        );
        let mut tx = writes.begin().await.expect("begin");
        sqlx::query("INSERT INTO t (x) VALUES (8)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        drop(tx);
        let tx = writes.begin().await.expect("begin after a dropped change");
        tx.commit().await.expect("commit");
        assert_eq!(
            values(&reader).await,
            vec![7],
            "the dropped change left nothing"
        );
    }
}
