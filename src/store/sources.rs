//! Inbound sources, their request log, and the events their requests become: a request's log
//! line, its event and the event's deliveries are written in one transaction, like a content
//! change's (see `events.rs`).

use super::backend::{Backend, Begin, Commit, Value};
use super::events::Emitted;
use super::rows::corrupt;
use super::webhooks::json_list;
use super::{Changed, HandOff, Page, Result, SqlStore, StoreError};
use crate::domain::content::Channel;
use crate::domain::event::{Catalog, EventName};
use crate::domain::event_types::EventPatterns;
use crate::domain::ids::{ChannelId, EventId, SourceId, SourceRequestId};
use crate::domain::source::{
    relayed_data, truncated, Outcome, Relayed, Source, SourceKind, SourcePatch, SourceRequest,
    SourceSecret, SourceSettings, MAX_MESSAGE_LEN,
};
use crate::domain::time::now_ms;
use crate::domain::webhook::VerifyToken;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};
use subtle::ConstantTimeEq;

const SOURCE_COLUMNS: &str = "id, channel_id, name, kind, verify_token, secret, events, allowed_users, allowed_servers, enabled, created_at, updated_at";
/// The columns a source's settings are written to, and when they were.
const SETTINGS_COLUMNS: &str =
    "name, kind, verify_token, secret, events, allowed_users, allowed_servers, enabled, updated_at";
const REQUEST_COLUMNS: &str = "id, source_id, received_at, outcome, status, message, event_name";

/// What a source's request came to, for the store to write.
#[derive(Debug, Clone)]
pub enum Received {
    /// An event to relay: `ACCEPTED`, or `DUPLICATE` when its dedupe key was seen before.
    Relay(Relayed),
    /// A request that relays nothing (a handshake, a request filtered out or refused).
    Logged {
        outcome: Outcome,
        status: u16,
        message: String,
    },
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: SourceId,
    channel_id: ChannelId,
    name: String,
    kind: String,
    verify_token: Option<String>,
    secret: Option<String>,
    events: String,
    allowed_users: String,
    allowed_servers: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

fn list(column: &str, raw: &str) -> Result<Vec<String>> {
    serde_json::from_str(raw).map_err(|_| corrupt(column, raw))
}

impl TryFrom<SourceRow> for Source {
    type Error = StoreError;
    fn try_from(r: SourceRow) -> Result<Self> {
        let kind = SourceKind::parse(&r.kind).ok_or_else(|| corrupt("sources.kind", &r.kind))?;
        let verify_token = r
            .verify_token
            .map(|t| {
                VerifyToken::parse(&t).map_err(|_| corrupt("sources.verify_token", "(redacted)"))
            })
            .transpose()?;
        Ok(Source {
            id: r.id,
            channel_id: r.channel_id,
            settings: SourceSettings {
                name: r.name,
                kind,
                verify_token,
                secret: r.secret.map(SourceSecret::stored),
                events: EventPatterns::trusted(list("sources.events", &r.events)?),
                allowed_users: list("sources.allowed_users", &r.allowed_users)?,
                allowed_servers: list("sources.allowed_servers", &r.allowed_servers)?,
                enabled: r.enabled,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: SourceRequestId,
    source_id: SourceId,
    received_at: i64,
    outcome: String,
    status: i64,
    message: String,
    event_name: Option<String>,
}

impl TryFrom<RequestRow> for SourceRequest {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> Result<Self> {
        Ok(SourceRequest {
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| corrupt("source_requests.outcome", &r.outcome))?,
            id: r.id,
            source_id: r.source_id,
            received_at: r.received_at,
            status: r.status,
            message: r.message,
            event: r.event_name,
        })
    }
}

/// A source's lists, as stored (JSON): events, allowed users, allowed servers.
fn strings(s: &SourceSettings) -> [String; 3] {
    let strs = |l: &[String]| json_list(l.iter().map(String::as_str));
    [
        strs(s.events.as_slice()),
        strs(&s.allowed_users),
        strs(&s.allowed_servers),
    ]
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
    pub(super) async fn create_source(
        &self,
        channel_id: ChannelId,
        new: &SourceSettings,
        token_hash: &str,
    ) -> Result<Source> {
        let now = now_ms();
        let mut qb = QueryBuilder::<B>::new(format!(
            "INSERT INTO sources (channel_id, token_hash, created_at, {SETTINGS_COLUMNS}) VALUES ("
        ));
        qb.push_bind(channel_id)
            .push(", ")
            .push_bind(token_hash)
            .push(", ")
            .push_bind(now)
            .push(", ");
        Self::push_settings(&mut qb, new, now);
        qb.push(") RETURNING id");
        let mut tx = self.writes.begin().await?;
        let (id,): (SourceId,) = B::shorten_as(qb.build_query_as())
            .fetch_one(&mut *tx)
            .await?;
        Self::committed(tx, channel_id, id).await
    }

    /// Applies `patch` to the source as it is in the transaction, checking the result whole.
    pub(super) async fn update_source(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        patch: &SourcePatch,
    ) -> Result<Source> {
        let mut tx = self.writes.begin().await?;
        let current = Self::source_of(&mut tx, channel_id, id).await?;
        let s = patch
            .apply(&current.settings)
            .map_err(|mut problems| StoreError::Invalid(problems.remove(0)))?;
        let mut qb = QueryBuilder::<B>::new(format!("UPDATE sources SET ({SETTINGS_COLUMNS}) = ("));
        Self::push_settings(&mut qb, &s, now_ms());
        qb.push(") WHERE channel_id = ")
            .push_bind(channel_id)
            .push(" AND id = ")
            .push_bind(id);
        B::shorten(qb.build()).execute(&mut *tx).await?;
        Self::committed(tx, channel_id, id).await
    }

    /// Binds `s`, then `now`, in the order of [`SETTINGS_COLUMNS`].
    fn push_settings(qb: &mut QueryBuilder<'_, B>, s: &SourceSettings, now: i64) {
        let [events, users, servers] = strings(s);
        let mut values = qb.separated(", ");
        values
            .push_bind(s.name.clone())
            .push_bind(s.kind.as_str())
            .push_bind(s.verify_token.as_ref().map(|t| t.as_str().to_owned()))
            .push_bind(s.secret.as_ref().map(|s| s.as_str().to_owned()))
            .push_bind(events)
            .push_bind(users)
            .push_bind(servers)
            .push_bind(s.enabled)
            .push_bind(now);
    }

    /// Gives the source a new token (by its hash): the old one is refused from the commit on.
    pub(super) async fn rotate_source_token(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        token_hash: &str,
    ) -> Result<Source> {
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query(
            "UPDATE sources SET token_hash = $1, updated_at = $2 WHERE channel_id = $3 AND id = $4",
        )
        .bind(token_hash)
        .bind(now_ms())
        .bind(channel_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        Self::committed(tx, channel_id, id).await
    }

    /// The source as `tx` leaves it, once `tx` is committed.
    async fn committed(
        mut tx: <B::Writes as Begin<B>>::Tx,
        channel_id: ChannelId,
        id: SourceId,
    ) -> Result<Source> {
        let source = Self::source_of(&mut tx, channel_id, id).await?;
        tx.commit().await?;
        Ok(source)
    }

    /// Deletes the source with its request log (the events it became stay, with their
    /// deliveries).
    pub(super) async fn delete_source(&self, channel_id: ChannelId, id: SourceId) -> Result<()> {
        let mut tx = self.writes.begin().await?;
        for sql in [
            "DELETE FROM source_keys WHERE source_id = $2 AND source_id IN (SELECT id FROM sources WHERE channel_id = $1)",
            "DELETE FROM source_requests WHERE source_id = $2 AND source_id IN (SELECT id FROM sources WHERE channel_id = $1)",
        ] {
            sqlx::query(sql)
                .bind(channel_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM sources WHERE channel_id = $1 AND id = $2")
            .bind(channel_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn source(&self, channel_id: ChannelId, id: SourceId) -> Result<Source> {
        let mut c = self.reader.acquire().await?;
        Self::source_of(&mut c, channel_id, id).await
    }

    pub(super) async fn list_sources(
        &self,
        channel_id: ChannelId,
        page: Page,
    ) -> Result<Vec<Source>> {
        let rows = sqlx::query_as::<B, SourceRow>(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(channel_id)
        .bind(page.after.unwrap_or(0))
        .bind(page.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(Source::try_from).collect()
    }

    /// The source whose token hashes to `token_hash`, with its channel.
    pub(super) async fn source_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Source, Channel)>> {
        let mut c = self.reader.acquire().await?;
        let row = sqlx::query_as::<B, (SourceId, ChannelId, String)>(
            "SELECT id, channel_id, token_hash FROM sources WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *c)
        .await?;
        // The index lookup compares hashes, which say nothing of the token; the hash is
        // compared again here in constant time all the same.
        let Some((id, channel_id, _)) =
            row.filter(|(_, _, stored)| bool::from(stored.as_bytes().ct_eq(token_hash.as_bytes())))
        else {
            return Ok(None);
        };
        let source = Self::source_of(&mut c, channel_id, id).await?;
        drop(c);
        Ok(Some((source, self.channel(channel_id).await?)))
    }

    /// The source's request log, newest first: `page.after` is exclusive and counts down.
    pub(super) async fn list_source_requests(
        &self,
        channel_id: ChannelId,
        source_id: SourceId,
        outcome: Option<Outcome>,
        page: Page,
    ) -> Result<Vec<SourceRequest>> {
        let mut qb = QueryBuilder::<B>::new(format!(
            "SELECT {REQUEST_COLUMNS} FROM source_requests WHERE source_id IN (SELECT id FROM sources WHERE channel_id = "
        ));
        qb.push_bind(channel_id)
            .push(") AND source_id = ")
            .push_bind(source_id);
        if let Some(after) = page.after {
            qb.push(" AND id < ").push_bind(after);
        }
        if let Some(outcome) = outcome {
            qb.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(page.limit);
        let rows: Vec<RequestRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(SourceRequest::try_from).collect()
    }

    /// Writes what a request to `source` came to, received at `at` (ms): its log line and, for
    /// an event to relay that is not a resend, the event and its deliveries, all in one
    /// transaction. A resend is told by its dedupe key, inserted in the same transaction: of two
    /// copies written at once, the second waits for the first and finds its key.
    pub(super) async fn record_source_request(
        &self,
        hand_off: &HandOff,
        source: &Source,
        channel: &Channel,
        at: i64,
        received: &Received,
    ) -> Result<Changed<SourceRequest>> {
        let mut tx = self.writes.begin().await?;
        sqlx::query_scalar::<B, SourceId>(&format!(
            "SELECT id FROM sources WHERE id = $1 {}",
            B::KEY_SHARE
        ))
        .bind(source.id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (emitted, line) = match received {
            Received::Logged {
                outcome,
                status,
                message,
            } => (
                Emitted::default(),
                (*outcome, *status, message.clone(), None),
            ),
            Received::Relay(relayed) => {
                let name = relayed.name.as_str().to_owned();
                let first = match &relayed.dedupe_key {
                    None => true,
                    Some(key) => sqlx::query_scalar::<B, SourceId>(
                        "INSERT INTO source_keys (source_id, dedupe_key) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING RETURNING source_id",
                    )
                    .bind(source.id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                };
                if first {
                    let url = self.channel_url(&channel.subdomain);
                    let channel_json =
                        Catalog::new(url, Vec::new(), Vec::new()).channel_json(channel);
                    let data = relayed_data(
                        channel_json,
                        source,
                        relayed.object_key,
                        &relayed.object,
                        relayed.raw.as_deref(),
                    );
                    let event = EventName::Relayed(relayed.name.clone());
                    let emitted = Self::emit_data(
                        &mut tx,
                        source.channel_id,
                        hand_off,
                        &self.vault,
                        event,
                        at,
                        data.into(),
                    )
                    .await?;
                    let n = emitted.deliveries();
                    let s = if n == 1 { "y" } else { "ies" };
                    let message = format!("relayed as {name}: {n} deliver{s}");
                    (emitted, (Outcome::Accepted, 200, message, Some(name)))
                } else {
                    let message = format!("a resend of a request already relayed as {name}");
                    (
                        Emitted::default(),
                        (Outcome::Duplicate, 200, message, Some(name)),
                    )
                }
            }
        };
        let (outcome, status, message, event_name) = line;
        let message = truncated(&message, MAX_MESSAGE_LEN);
        let id = sqlx::query_scalar::<B, SourceRequestId>(
            "INSERT INTO source_requests (source_id, received_at, outcome, status, message, event_id, event_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(source.id)
        .bind(at)
        .bind(outcome.as_str())
        .bind(i64::from(status))
        .bind(&message)
        .bind(emitted.event_id.map(EventId::get))
        .bind(&event_name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(SourceRequest {
            id,
            source_id: source.id,
            received_at: at,
            outcome,
            status: i64::from(status),
            message,
            event: event_name,
        }))
    }

    async fn source_of(
        c: &mut B::Connection,
        channel_id: ChannelId,
        id: SourceId,
    ) -> Result<Source> {
        sqlx::query_as::<B, SourceRow>(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
    }
}
