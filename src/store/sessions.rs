//! The dashboard's sign-in sessions: each belongs to the API token it was opened with, is kept
//! only as a hash of its id, and ends when it expires, is closed, or its token is revoked.

use super::backend::{Backend, Value};
use super::rows::{ActorRow, ACTOR_COLUMNS};
use super::{Authenticated, Result, SqlStore, StoreError};
use sqlx::{ColumnIndex, Encode, Executor, Type};

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> &'q str: Type<B> + Encode<'q, B> + ColumnIndex<B::Row>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    i64: Value<B>,
    Option<i64>: Value<B>,
    String: Value<B>,
    Option<String>: Value<B>,
    bool: Value<B>,
    Option<f64>: Value<B>,
    usize: ColumnIndex<B::Row>,
{
    /// [`super::Store::open_session`].
    pub(super) async fn open_session(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        // Sessions are few and short-lived: those that ran out go when the next one opens.
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        let done = sqlx::query(
            "INSERT INTO dashboard_sessions (session_hash, token_id, created_at, expires_at) \
             SELECT $1, id, $2, $3 FROM api_tokens WHERE token_hash = $4 AND revoked_at IS NULL",
        )
        .bind(session_hash)
        .bind(now)
        .bind(expires_at)
        .bind(token_hash)
        .execute(&self.writer)
        .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// [`super::Store::session`].
    pub(super) async fn session(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<Authenticated>> {
        let row = sqlx::query_as::<B, ActorRow>(&format!(
            "SELECT {ACTOR_COLUMNS} FROM dashboard_sessions s \
             JOIN api_tokens t ON t.id = s.token_id JOIN users u ON u.id = t.user_id \
             JOIN channels c ON c.id = u.channel_id \
             WHERE s.session_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL \
             AND u.status <> 'DEACTIVATED'"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        row.map(ActorRow::split).transpose()
    }

    /// [`super::Store::close_session`].
    pub(super) async fn close_session(&self, session_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
