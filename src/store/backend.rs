//! What the shared SQL needs of each database: [`Backend`], implemented by `sqlx::Sqlite` in
//! `sqlite.rs` and by `sqlx::Postgres` in `postgres.rs`.

use super::{Recorded, Result};
use sqlx::query::{Query, QueryAs};
use sqlx::{Database, Decode, Encode, IntoArguments, QueryBuilder, Type};
use std::future::Future;
use std::ops::DerefMut;

/// A database herald's SQL runs on. The SQL is the same text on both; this trait holds what
/// differs: a few clauses, how changes' transactions begin, how a batch of attempts is written,
/// and how a list of ids is bound.
///
/// The shared SQL is generic over `B: Backend` and monomorphised for each, so it runs as if
/// written for that database alone. Rust does not carry a bound such as `i64: Encode<'q, B>`
/// along with `B: Backend` (only bounds on `B` itself), so every generic `impl` block of the
/// store repeats sqlx's bounds in the same `where` clause:
///
/// ```text
/// where
///     B: Backend,
///     for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
///     for<'q> &'q str: Type<B> + Encode<'q, B> + ColumnIndex<B::Row>,
///     for<'q> Option<&'q str>: Encode<'q, B>,
///     i64: Value<B>,
///     Option<i64>: Value<B>,
///     String: Value<B>,
///     Option<String>: Value<B>,
///     bool: Value<B>,
///     Option<f64>: Value<B>,
///     usize: ColumnIndex<B::Row>,
/// ```
pub trait Backend: for<'q> Database<Arguments<'q>: IntoArguments<'q, Self>> {
    /// Appended to a claim's inner SELECT: concurrent claimers skip each other's rows.
    const SKIP_LOCKED: &'static str;
    /// Appended to a SELECT of webhooks that deliveries are about to be written for: on
    /// PostgreSQL, where no foreign key ties a delivery to its webhook, the rows are locked
    /// until the transaction ends, so a webhook is not deleted before its new deliveries are
    /// visible to the deletion (SQLite's foreign keys and single writer see to it there).
    const KEY_SHARE: &'static str;

    /// Statements run before and after a transaction that replaces values which must not
    /// linger in the database's files (webhook secrets stored in clear, sealed), and one run
    /// afterwards outside any transaction. SQLite overwrites a replaced row's old bytes in its
    /// page with `secure_delete`, then copies the WAL into the database file and empties it,
    /// dropping the old pages. PostgreSQL keeps old row versions until they are vacuumed, and
    /// its WAL as configured: nothing here can reach them (`docs/operations.md` says so).
    const SCRUB_ON: &'static str;
    const SCRUB_OFF: &'static str;
    const SCRUB_FILES: &'static str;

    /// Where changes' transactions begin.
    type Writes: Begin<Self>;

    /// Adds attempts to the log and moves their deliveries on. A record whose lease is stale
    /// adds its attempt and changes nothing else; an attempt whose delivery was deleted
    /// meanwhile (with its webhook) is not recorded.
    fn write_records(
        c: &mut Self::Connection,
        records: &[Recorded],
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Pushes the condition that `column` is among `ids`, bound as one value: the statement's
    /// text does not depend on how many there are, so it is prepared once.
    fn push_in<Id: Copy + Into<i64>>(qb: &mut QueryBuilder<'_, Self>, column: &str, ids: &[Id]);

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// `query`, its arguments' lifetime shortened to the query's. Both backends' arguments
    /// allow it, but generic code cannot see that: without it, a `QueryBuilder` would stay
    /// borrowed by the query it built until the builder is dropped.
    fn shorten<'q, 'a: 'q>(
        query: Query<'q, Self, Self::Arguments<'a>>,
    ) -> Query<'q, Self, Self::Arguments<'q>>;

    /// [`Backend::shorten`] for a query that decodes its rows.
    fn shorten_as<'q, 'a: 'q, O>(
        query: QueryAs<'q, Self, O, Self::Arguments<'a>>,
    ) -> QueryAs<'q, Self, O, Self::Arguments<'q>>;
}

/// A Rust type the store binds and decodes on `DB` (sqlx's three bounds as one).
pub trait Value<DB: Database>: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> {}

impl<DB: Database, T> Value<DB> for T where
    T: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>
{
}

/// Begins changes' write transactions: one per change on PostgreSQL, a member of a group
/// commit on SQLite (see `group.rs`).
pub trait Begin<B: Database>: Send + Sync + 'static {
    type Tx: Commit<B>;
    fn begin(&self) -> impl Future<Output = sqlx::Result<Self::Tx>> + Send;
}

/// One change's transaction: dropped without `commit`, it is rolled back.
pub trait Commit<B: Database>: DerefMut<Target = B::Connection> + Send {
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}
