//! PostgreSQL, for production and for several herald processes on one database: claims use
//! `FOR UPDATE SKIP LOCKED`, and migrations take sqlx's advisory lock, so processes starting
//! at once do not trip over each other.

use super::backend::{Backend, Begin, Commit};
use super::health::Health;
use super::secrets::Vault;
use super::types::fate_columns;
use super::{left_in_transaction, Recorded, Result, Settings, SqlStore};
use crate::domain::delivery::Attempt;
use crate::domain::ids::DeliveryId;
use sqlx::migrate::Migrator;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult, Postgres,
};
use sqlx::query::{Query, QueryAs};
use sqlx::{PgPool, QueryBuilder, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub type PostgresStore = SqlStore<Postgres>;

impl PostgresStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str, settings: &Settings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = pool_options(settings.timeout)
            .max_connections(16)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let engine = pool_options(settings.timeout)
            .max_connections(2)
            .connect_with(engine_options(options))
            .await?;
        Ok(SqlStore {
            reader: pool.clone(),
            writer: pool.clone(),
            writes: pool,
            engine,
            background: Vec::new(),
            channel_url: settings.channel_url.clone(),
            health: Health::default(),
            vault: Vault::default(),
        })
    }
}

/// The delivery engine's connections never choose a sequential scan where an index serves
/// (`enable_seqscan = off`; one is still made where no index serves). A prepared statement
/// switches, after five runs, to a generic plan kept as long as its connection: one made while
/// `deliveries` was small may scan the whole table, and would go on scanning it at every round
/// as the delivery log grows. Every statement of the engine is meant to go through an index
/// (claims through the queue's, records through the primary key).
fn engine_options(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("enable_seqscan", "off")])
}

/// A connection idle for longer than this is pinged before it is used again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pools that ping a connection before use only when it has been idle for a while. sqlx pings
/// every connection as it is released, and by default again before each use: a round trip to
/// the server per transaction. A connection in steady use was checked moments ago; one that sat
/// idle (when the server may have restarted) still is.
///
/// A caller waits at most `timeout` for a connection (sqlx's default, 30 s, held every request
/// that long while the server was down), the ping included.
fn pool_options(timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .acquire_timeout(timeout)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if left_in_transaction(conn) {
                    return Ok(false);
                }
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Backend for Postgres {
    const SKIP_LOCKED: &'static str = "FOR UPDATE OF d SKIP LOCKED";
    const KEY_SHARE: &'static str = "FOR KEY SHARE";
    const SCRUB_ON: &'static str = "";
    const SCRUB_OFF: &'static str = "";
    const SCRUB_FILES: &'static str = "";

    type Writes = PgPool;

    /// Moves deliveries on and adds their attempts to the log, their columns bound as arrays,
    /// so a round's statements have a fixed number of parameters (a multi-row VALUES list
    /// would have PostgreSQL parse and plan thousands of them per round).
    ///
    /// No foreign key ties an attempt to its delivery (migration 0004), so an attempt is
    /// written only for a delivery this transaction holds locked: the update locks the
    /// deliveries it moves on, and the rare stale record's delivery is locked `FOR KEY SHARE`.
    /// A deletion of the delivery then waits for this transaction, and its attempts are deleted
    /// after it.
    async fn write_records(c: &mut PgConnection, records: &[Recorded], now: i64) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<DeliveryId> = records.iter().map(|r| r.attempt.delivery_id).collect();
        let urls: Vec<&str> = records.iter().map(|r| r.attempt.url.as_str()).collect();
        let columns: Vec<_> = records.iter().map(|r| fate_columns(r.fate, now)).collect();
        let mut held: HashSet<DeliveryId> = sqlx::query_scalar::<Postgres, DeliveryId>(
            "UPDATE deliveries SET status = v.status, retries = deliveries.retries + v.bump, \
             next_attempt_at = v.next, url = v.url, lease = NULL, claimed_until = NULL, updated_at = $7 \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[]) \
               AS v(id, lease, status, bump, next, url) \
             WHERE deliveries.id = v.id AND deliveries.lease = v.lease \
             RETURNING deliveries.id",
        )
        .bind(&ids)
        .bind(records.iter().map(|r| r.lease).collect::<Vec<i64>>())
        .bind(columns.iter().map(|(s, _, _)| s.as_str()).collect::<Vec<&str>>())
        .bind(columns.iter().map(|(_, b, _)| *b).collect::<Vec<i64>>())
        .bind(columns.iter().map(|(_, _, n)| *n).collect::<Vec<i64>>())
        .bind(&urls)
        .bind(now)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .collect();
        let stale: Vec<DeliveryId> = ids
            .iter()
            .copied()
            .filter(|id| !held.contains(id))
            .collect();
        if !stale.is_empty() {
            held.extend(
                sqlx::query_scalar::<Postgres, DeliveryId>(
                    "SELECT id FROM deliveries WHERE id = ANY($1) FOR KEY SHARE",
                )
                .bind(&stale)
                .fetch_all(&mut *c)
                .await?,
            );
        }
        let kept: Vec<&Attempt> = records
            .iter()
            .map(|r| &r.attempt)
            .filter(|a| held.contains(&a.delivery_id))
            .collect();
        insert_attempts(c, &kept).await
    }

    /// `column = ANY(ids)`, the ids bound as one array.
    fn push_in<Id: Copy + Into<i64>>(
        qb: &mut QueryBuilder<'_, Postgres>,
        column: &str,
        ids: &[Id],
    ) {
        let ids: Vec<i64> = ids.iter().map(|&id| id.into()).collect();
        qb.push(column).push(" = ANY(").push_bind(ids).push(")");
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn shorten<'q, 'a: 'q>(
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
    }

    fn shorten_as<'q, 'a: 'q, O>(
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        query
    }
}

/// Adds the attempts of `kept` to the log, their columns bound as arrays.
async fn insert_attempts(c: &mut PgConnection, kept: &[&Attempt]) -> Result<()> {
    if kept.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, at, url, code, result, message, duration_ms, response_body) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[], $8::TEXT[])",
    )
    .bind(kept.iter().map(|r| r.delivery_id).collect::<Vec<DeliveryId>>())
    .bind(kept.iter().map(|r| r.at).collect::<Vec<i64>>())
    .bind(kept.iter().map(|r| r.url.as_str()).collect::<Vec<&str>>())
    .bind(kept.iter().map(|r| r.code).collect::<Vec<Option<i64>>>())
    .bind(kept.iter().map(|r| r.result.as_str()).collect::<Vec<&str>>())
    .bind(kept.iter().map(|r| r.message.as_deref()).collect::<Vec<Option<&str>>>())
    .bind(kept.iter().map(|r| r.duration_ms).collect::<Vec<i64>>())
    .bind(kept.iter().map(|r| r.response_body.as_deref()).collect::<Vec<Option<&str>>>())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Changes' transactions: one per change, side by side.
impl Begin<Postgres> for PgPool {
    type Tx = Transaction<'static, Postgres>;

    async fn begin(&self) -> sqlx::Result<Self::Tx> {
        sqlx::Pool::begin(self).await
    }
}

impl Commit<Postgres> for Transaction<'static, Postgres> {
    async fn commit(self) -> Result<()> {
        Ok(Transaction::commit(self).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_never_scans_a_table_an_index_serves() {
        let options = PgConnectOptions::from_str(
            "postgres://herald@localhost/herald?options=-c%20statement_timeout%3D5s",
        )
        .expect("url");
        let engine = engine_options(options);
        let startup = engine.get_options().expect("startup options");
        assert!(startup.contains("enable_seqscan=off"), "{startup}");
        assert!(
            startup.contains("statement_timeout=5s"),
            "options in the URL are kept: {startup}"
        );
    }
}
