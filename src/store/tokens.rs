//! API tokens and roles as the CLI manages them, and when a token was last used.

use super::backend::{Backend, Value};
use super::rows::{corrupt, ActorRow, ACTOR_COLUMNS};
use super::{Authenticated, Result, SqlStore, StoreError, TokenInfo};
use crate::domain::content::Role;
use crate::domain::time::now_ms;
use sqlx::{ColumnIndex, Encode, Executor, FromRow, Type};

/// A token's `last_used_at` is written when it authenticates a request at least this long (ms)
/// after the time it holds: at most one write a minute per token, none on other requests.
const LAST_USED_EVERY_MS: i64 = 60_000;

const TOKEN_INFO_COLUMNS: &str =
    "t.id, c.subdomain AS channel, u.email, u.role, t.created_at, t.last_used_at, t.revoked_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN channels c ON c.id = u.channel_id";

#[derive(FromRow)]
struct TokenInfoRow {
    id: i64,
    channel: String,
    email: String,
    role: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenInfoRow> for TokenInfo {
    type Error = StoreError;
    fn try_from(r: TokenInfoRow) -> Result<Self> {
        Ok(TokenInfo {
            id: r.id,
            role: Role::parse(&r.role).ok_or_else(|| corrupt("users.role", &r.role))?,
            channel: r.channel,
            email: r.email,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(FromRow)]
struct AuthRow {
    #[sqlx(flatten)]
    actor: ActorRow,
    token_id: i64,
    last_used_at: Option<i64>,
}

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
    /// [`super::Store::authenticate`]; when the token's `last_used_at` is a minute old or more,
    /// it is moved to now in the background, so the request does not wait for a write.
    pub(super) async fn authenticate_noting_use(
        &self,
        token_hash: &str,
    ) -> Result<Option<Authenticated>> {
        let row = sqlx::query_as::<B, AuthRow>(&format!(
            "SELECT {ACTOR_COLUMNS}, t.id AS token_id, t.last_used_at FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN channels c ON c.id = u.channel_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.status <> 'DEACTIVATED'"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let now = now_ms();
        if row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_EVERY_MS)
        {
            let writer = self.writer.clone();
            let token_id = row.token_id;
            tokio::spawn(async move {
                // Of requests racing past the check, the first one writes.
                let written = sqlx::query(
                    "UPDATE api_tokens SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(now)
                .bind(token_id)
                .bind(now - LAST_USED_EVERY_MS)
                .execute(&writer)
                .await;
                if let Err(e) = written {
                    tracing::debug!(error = %e, token.id = token_id, "token use not recorded");
                }
            });
        }
        row.actor.split().map(Some)
    }

    pub(super) async fn tokens(&self, channel: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows = match channel {
            Some(subdomain) => {
                sqlx::query_as::<B, TokenInfoRow>(&format!(
                    "SELECT {TOKEN_INFO_COLUMNS} WHERE c.subdomain = $1 ORDER BY t.id"
                ))
                .bind(subdomain)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query_as::<B, TokenInfoRow>(&format!(
                    "SELECT {TOKEN_INFO_COLUMNS} ORDER BY t.id"
                ))
                .fetch_all(&self.reader)
                .await?
            }
        };
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub(super) async fn revoke(&self, id: i64, now: i64) -> Result<TokenInfo> {
        let before = sqlx::query_as::<B, TokenInfoRow>(&format!(
            "SELECT {TOKEN_INFO_COLUMNS} WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        before.try_into()
    }

    pub(super) async fn set_role(&self, channel: &str, email: &str, role: Role) -> Result<Role> {
        let (user_id, was): (i64, String) = sqlx::query_as(
            "SELECT u.id, u.role FROM users u JOIN channels c ON c.id = u.channel_id \
             WHERE c.subdomain = $1 AND u.email = $2",
        )
        .bind(channel)
        .bind(email)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 AND role <> $1")
            .bind(role.as_str())
            .bind(now_ms())
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Role::parse(&was).ok_or_else(|| corrupt("users.role", &was))
    }
}
