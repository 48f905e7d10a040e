//! Channels, their users, and users' API tokens.

use super::backend::{Backend, Begin, Commit, Value};
use super::pages::{in_order, push_page};
use super::rows::{ChannelRow, UserRow, CHANNEL_COLUMNS, USER_COLUMNS};
use super::{Page, Result, SqlStore, StoreError};
use crate::domain::content::{Channel, NewUser, User};
use crate::domain::ids::{ChannelId, UserId};
use crate::domain::time::now_ms;
use sqlx::{ColumnIndex, Encode, Executor, FromRow, QueryBuilder, Type};
use std::collections::HashMap;

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
    pub(super) async fn channel_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<B, i64>("SELECT COUNT(*) FROM channels")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub(super) async fn ensure_channel(&self, subdomain: &str, name: &str) -> Result<Channel> {
        let mut tx = self.writes.begin().await?;
        sqlx::query("INSERT INTO channels (subdomain, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (subdomain) DO NOTHING")
            .bind(subdomain)
            .bind(name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query_as::<B, ChannelRow>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE subdomain = $1"
        ))
        .bind(subdomain)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub(super) async fn ensure_user(&self, channel_id: ChannelId, user: &NewUser) -> Result<User> {
        let mut tx = self.writes.begin().await?;
        sqlx::query(
            "INSERT INTO users (channel_id, email, first_name, last_name, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (channel_id, email) DO NOTHING",
        )
        .bind(channel_id)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(user.role.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query_as::<B, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE channel_id = $1 AND email = $2"
        ))
        .bind(channel_id)
        .bind(&user.email)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    pub(super) async fn create_token(&self, user_id: UserId, token_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(super) async fn channel(&self, id: ChannelId) -> Result<Channel> {
        let mut c = self.reader.acquire().await?;
        Self::channel_of(&mut c, id).await
    }

    pub(super) async fn users(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<User>> {
        let mut c = self.reader.acquire().await?;
        Self::users_in(&mut c, channel_id, ids).await
    }

    pub(super) async fn list_users(&self, channel_id: ChannelId, page: Page) -> Result<Vec<User>> {
        let mut c = self.reader.acquire().await?;
        let rows: Vec<UserRow> =
            Self::page_of(&mut c, "users", USER_COLUMNS, channel_id, page).await?;
        rows.into_iter().map(User::try_from).collect()
    }

    /// A page of the channel's rows of `table`, in the order of their ids.
    pub(super) async fn page_of<R>(
        c: &mut B::Connection,
        table: &str,
        columns: &str,
        channel_id: ChannelId,
        page: Page,
    ) -> Result<Vec<R>>
    where
        R: for<'r> FromRow<'r, B::Row> + Send + Unpin,
    {
        let mut qb =
            QueryBuilder::<B>::new(format!("SELECT {columns} FROM {table} WHERE channel_id = "));
        qb.push_bind(channel_id);
        push_page(&mut qb, "id", page);
        let rows = B::shorten_as(qb.build_query_as())
            .fetch_all(&mut *c)
            .await?;
        Ok(in_order(rows, page))
    }

    pub(super) async fn channel_of(c: &mut B::Connection, id: ChannelId) -> Result<Channel> {
        sqlx::query_as::<B, ChannelRow>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(Channel::from)
        .ok_or(StoreError::NotFound)
    }

    /// The channel's users among `ids`, in the order of `ids`; unknown ones are left out.
    pub(super) async fn users_in(
        c: &mut B::Connection,
        channel_id: ChannelId,
        ids: &[i64],
    ) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = Self::rows_in(c, "users", USER_COLUMNS, channel_id, ids).await?;
        let users = rows.into_iter().map(User::try_from);
        let by_id = users
            .map(|u| u.map(|u| (u.id.get(), u)))
            .collect::<Result<HashMap<i64, User>>>()?;
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }

    /// The channel's rows of `table` among `ids`, in no order.
    pub(super) async fn rows_in<R>(
        c: &mut B::Connection,
        table: &str,
        columns: &str,
        channel_id: ChannelId,
        ids: &[i64],
    ) -> Result<Vec<R>>
    where
        R: for<'r> FromRow<'r, B::Row> + Send + Unpin,
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb =
            QueryBuilder::<B>::new(format!("SELECT {columns} FROM {table} WHERE channel_id = "));
        qb.push_bind(channel_id).push(" AND ");
        B::push_in(&mut qb, "id", ids);
        Ok(B::shorten_as(qb.build_query_as())
            .fetch_all(&mut *c)
            .await?)
    }
}
