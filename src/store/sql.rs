//! The SQL of both backends. This file is compiled twice, as `sqlite::sql` and
//! `postgres::sql`; `super::Db` and `super::DIALECT` are that backend's.

use super::{push_in, Db, DIALECT};
use crate::domain::content::{
    slug, Channel, Collection, CollectionPatch, NewCollection, NewUser, NewVideo, Role, User,
    Video, VideoPatch, Visibility,
};
use crate::domain::delivery::{new_nonce, Attempt, AttemptResult, Delivery, DeliveryStatus};
use crate::domain::event::{self, Catalog, EventName, COLLECTION_FIELDS, VIDEO_FIELDS};
use crate::domain::ids::{encode, Kind};
use crate::domain::time::now_ms;
use crate::domain::webhook::{DisabledReason, NewWebhook, Webhook, WebhookEvent, WebhookPatch};
use crate::domain::Invalid;
use crate::store::{
    Actor, Authenticated, Changed, Claimed, DeliveryFilter, Dialect, Fate, HandOff, Page, Recorded,
    Result, Store, StoreError, WebhookFilter,
};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Pool, QueryBuilder};
use std::collections::{HashMap, HashSet};

type Conn = <Db as sqlx::Database>::Connection;

/// Rows per statement when writing in bulk (far below both backends' bind limits).
const CHUNK: usize = 256;

pub struct SqlStore {
    /// Reads outside transactions.
    reader: Pool<Db>,
    /// Outside transactions' writes. On SQLite a single connection: writers queue in the pool
    /// instead of failing on the database lock.
    writer: Pool<Db>,
    /// Changes' transactions, on the writer (grouped on SQLite: see `group.rs`).
    writes: super::Writes,
    /// The delivery engine's transactions (recording and claiming), apart from requests' so a
    /// burst of requests cannot hold up recording. On SQLite the writer itself, outside the
    /// changes' groups: a round waits in the pool for the open group to commit.
    engine: Pool<Db>,
    /// Connections of background work, closed with the store.
    background: Vec<Pool<Db>>,
    channel_url: String,
}

impl SqlStore {
    pub fn new(reader: Pool<Db>, writer: Pool<Db>, engine: Pool<Db>, channel_url: &str) -> Self {
        SqlStore {
            reader,
            writes: super::Writes::new(writer.clone()),
            writer,
            engine,
            background: Vec::new(),
            channel_url: channel_url.to_owned(),
        }
    }

    /// Closes `pool` with the store.
    pub fn with_background(mut self, pool: Pool<Db>) -> Self {
        self.background.push(pool);
        self
    }

    fn channel_url(&self, subdomain: &str) -> String {
        self.channel_url.replace("{subdomain}", subdomain)
    }
}

// ---------------------------------------------------------------------------------------------
// Rows, private to the store.

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: i64,
    subdomain: String,
    name: String,
    description: Option<String>,
    created_at: i64,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: r.id,
            subdomain: r.subdomain,
            name: r.name,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    channel_id: i64,
    email: String,
    first_name: String,
    last_name: String,
    role: String,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self> {
        Ok(User {
            id: r.id,
            channel_id: r.channel_id,
            role: Role::parse(&r.role).ok_or_else(|| corrupt("users.role", &r.role))?,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    channel_id: i64,
    url: String,
    description: Option<String>,
    events: String,
    secrets: String,
    retries: i64,
    enabled: bool,
    disabled_reason: Option<String>,
    creator_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    listener: bool,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(r: WebhookRow) -> Result<Self> {
        let names: Vec<String> =
            serde_json::from_str(&r.events).map_err(|_| corrupt("webhooks.events", &r.events))?;
        let events = names
            .iter()
            .map(|n| WebhookEvent::parse(n).ok_or_else(|| corrupt("webhooks.events", n)))
            .collect::<Result<_>>()?;
        let secrets = serde_json::from_str(&r.secrets)
            .map_err(|_| corrupt("webhooks.secrets", "(redacted)"))?;
        let disabled_reason = match r.disabled_reason {
            None => None,
            Some(s) => Some(
                DisabledReason::parse(&s).ok_or_else(|| corrupt("webhooks.disabled_reason", &s))?,
            ),
        };
        Ok(Webhook {
            id: r.id,
            channel_id: r.channel_id,
            url: r.url,
            description: r.description,
            events,
            secrets,
            retries: r.retries,
            enabled: r.enabled,
            disabled_reason,
            creator_id: r.creator_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            listener: r.listener,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VideoRow {
    id: i64,
    channel_id: i64,
    title: String,
    slug: String,
    summary: String,
    visibility: String,
    presented_at: Option<i64>,
    duration: Option<f64>,
    draft: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct CollectionRow {
    id: i64,
    channel_id: i64,
    parent_id: Option<i64>,
    name: String,
    slug: String,
    description: Option<String>,
    secret: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    owner: i64,
    target: i64,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    event_name: String,
    event_at: i64,
    nonce: String,
    status: String,
    retries: i64,
    url: String,
    next_attempt_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event: EventName::parse(&r.event_name)
                .ok_or_else(|| corrupt("events.name", &r.event_name))?,
            event_at: r.event_at,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| corrupt("deliveries.status", &r.status))?,
            nonce: r.nonce,
            retries: r.retries,
            url: r.url,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    delivery_id: i64,
    at: i64,
    url: String,
    code: Option<i64>,
    result: String,
    message: Option<String>,
    duration_ms: i64,
    response_body: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    delivery_id: i64,
    webhook_id: i64,
    lease: Option<i64>,
    nonce: String,
    event_name: String,
    event_at: i64,
    data: String,
    retries: i64,
    max_retries: i64,
    url: String,
    secrets: String,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} holds {value:?}"))
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.webhook_id, d.event_id, e.name AS event_name, e.at AS event_at, d.nonce, \
     d.status, d.retries, d.url, d.next_attempt_at, d.created_at, d.updated_at";

// ---------------------------------------------------------------------------------------------
// Helpers on one connection (a pooled one or a transaction's).

async fn channel_of(c: &mut Conn, id: i64) -> Result<Channel> {
    sqlx::query_as::<Db, ChannelRow>(
        "SELECT id, subdomain, name, description, created_at FROM channels WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .map(Channel::from)
    .ok_or(StoreError::NotFound)
}

async fn users_in(c: &mut Conn, channel_id: i64, ids: &[i64]) -> Result<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT id, channel_id, email, first_name, last_name, role, created_at FROM users WHERE channel_id = ",
    );
    qb.push_bind(channel_id).push(" AND ");
    push_in(&mut qb, "id", ids);
    let rows: Vec<UserRow> = qb.build_query_as().fetch_all(&mut *c).await?;
    let mut by_id: HashMap<i64, User> = HashMap::new();
    for r in rows {
        let u = User::try_from(r)?;
        by_id.insert(u.id, u);
    }
    Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
}

/// Fails with "no object found" naming the input field when any of `ids` is not a row of
/// `table` in the channel.
async fn check_ids(
    c: &mut Conn,
    table: &str,
    kind: Kind,
    channel_id: i64,
    ids: &[i64],
    field: &'static str,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Db>::new(format!("SELECT id FROM {table} WHERE channel_id = "));
    qb.push_bind(channel_id).push(" AND ");
    push_in(&mut qb, "id", ids);
    let found: HashSet<i64> = qb
        .build_query_scalar::<i64>()
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .collect();
    match ids.iter().find(|id| !found.contains(id)) {
        None => Ok(()),
        Some(missing) => Err(Invalid::new(
            field,
            format!("No object found for ID {}", encode(kind, *missing)),
        )
        .into()),
    }
}

/// The targets of each of `owners` in a relation, in their stored order.
async fn links(c: &mut Conn, link: Link, owners: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    if owners.is_empty() {
        return Ok(out);
    }
    let (table, owner_col, target_col) = link.names();
    let mut qb = QueryBuilder::<Db>::new(format!(
        "SELECT {owner_col} AS owner, {target_col} AS target FROM {table} WHERE "
    ));
    push_in(&mut qb, owner_col, owners);
    qb.push(" ORDER BY owner, position");
    let rows: Vec<LinkRow> = qb.build_query_as().fetch_all(&mut *c).await?;
    for r in rows {
        out.entry(r.owner).or_default().push(r.target);
    }
    Ok(out)
}

async fn hydrate_videos(c: &mut Conn, rows: Vec<VideoRow>) -> Result<Vec<Video>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut colls = links(c, Link::VideoCollections, &ids).await?;
    let mut tagged = links(c, Link::VideoTaggedUsers, &ids).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Video {
                visibility: Visibility::parse(&r.visibility)
                    .ok_or_else(|| corrupt("videos.visibility", &r.visibility))?,
                collection_ids: colls.remove(&r.id).unwrap_or_default(),
                tagged_user_ids: tagged.remove(&r.id).unwrap_or_default(),
                id: r.id,
                channel_id: r.channel_id,
                title: r.title,
                slug: r.slug,
                summary: r.summary,
                presented_at: r.presented_at,
                duration: r.duration,
                draft: r.draft,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

const VIDEO_COLUMNS: &str = "id, channel_id, title, slug, summary, visibility, presented_at, duration, draft, created_at, updated_at";
const COLLECTION_COLUMNS: &str =
    "id, channel_id, parent_id, name, slug, description, secret, created_at, updated_at";

async fn video_of(c: &mut Conn, channel_id: i64, id: i64) -> Result<Video> {
    let row = sqlx::query_as::<Db, VideoRow>(&format!(
        "SELECT {VIDEO_COLUMNS} FROM videos WHERE channel_id = $1 AND id = $2"
    ))
    .bind(channel_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    hydrate_videos(c, vec![row])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

async fn hydrate_collections(c: &mut Conn, rows: Vec<CollectionRow>) -> Result<Vec<Collection>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut admins = links(c, Link::CollectionAdmins, &ids).await?;
    let mut members = links(c, Link::CollectionMembers, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (a, m) = (admins.remove(&r.id), members.remove(&r.id));
            r.with_links(a.unwrap_or_default(), m.unwrap_or_default())
        })
        .collect())
}

impl CollectionRow {
    fn with_links(self, admin_ids: Vec<i64>, member_ids: Vec<i64>) -> Collection {
        Collection {
            admin_ids,
            member_ids,
            id: self.id,
            channel_id: self.channel_id,
            parent_id: self.parent_id,
            name: self.name,
            slug: self.slug,
            description: self.description,
            secret: self.secret,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

async fn collection_of(c: &mut Conn, channel_id: i64, id: i64) -> Result<Collection> {
    let row = sqlx::query_as::<Db, CollectionRow>(&format!(
        "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = $1 AND id = $2"
    ))
    .bind(channel_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    hydrate_collections(c, vec![row])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The channel's collections among `roots`, with their whole subtrees.
async fn collection_trees(c: &mut Conn, channel_id: i64, roots: &[i64]) -> Result<Vec<Collection>> {
    let roots: Vec<i64> = roots.iter().copied().filter(|r| *r > 0).collect();
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Db>::new(
        "WITH RECURSIVE tree(id) AS (SELECT id FROM collections WHERE channel_id = ",
    );
    qb.push_bind(channel_id).push(" AND ");
    push_in(&mut qb, "id", &roots);
    // UNION, not UNION ALL: a cycle (never written by herald) cannot make it run forever.
    qb.push(format!(
        " UNION SELECT c.id FROM collections c JOIN tree t ON c.parent_id = t.id) \
         SELECT {COLLECTION_COLUMNS} FROM collections WHERE id IN (SELECT id FROM tree) ORDER BY id"
    ));
    let rows: Vec<CollectionRow> = qb.build_query_as().fetch_all(&mut *c).await?;
    hydrate_collections(c, rows).await
}

/// What a payload can refer to: the collections among `roots` with their subtrees, and the
/// users among `user_ids` or named as admins and members of those collections.
async fn catalog(
    c: &mut Conn,
    channel_url: String,
    channel_id: i64,
    roots: &[i64],
    user_ids: &[i64],
) -> Result<Catalog> {
    let collections = collection_trees(c, channel_id, roots).await?;
    catalog_of(c, channel_url, channel_id, collections, user_ids).await
}

/// What a payload can refer to: `collections` (each with its whole subtree among them), and
/// the users among `user_ids` or named as admins and members of those collections.
async fn catalog_of(
    c: &mut Conn,
    channel_url: String,
    channel_id: i64,
    collections: Vec<Collection>,
    user_ids: &[i64],
) -> Result<Catalog> {
    let mut ids: Vec<i64> = user_ids.to_vec();
    for coll in &collections {
        ids.extend(&coll.admin_ids);
        ids.extend(&coll.member_ids);
    }
    ids.sort_unstable();
    ids.dedup();
    let users = users_in(c, channel_id, &ids).await?;
    Ok(Catalog::new(channel_url, users, collections))
}

/// A collection of the channel that `catalog` was built for, taken from it: the catalog holds
/// every collection it was given as a root, so a change need not load one twice.
fn held(catalog: &Catalog, id: i64) -> Result<Collection> {
    catalog.collection(id).cloned().ok_or(StoreError::NotFound)
}

/// Fails when making `parent` the parent of `id` would make `id` its own ancestor: walks up
/// from `parent`.
async fn check_no_cycle(c: &mut Conn, id: i64, parent: Option<i64>) -> Result<()> {
    let Some(parent) = parent else {
        return Ok(());
    };
    let ancestors: Vec<i64> = sqlx::query_scalar::<Db, i64>(
        "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM collections WHERE id = $1 \
         UNION SELECT c.id, c.parent_id FROM collections c JOIN up ON c.id = up.parent_id) SELECT id FROM up",
    )
    .bind(parent)
    .fetch_all(&mut *c)
    .await?;
    if ancestors.contains(&id) {
        return Err(Invalid::new(
            "parentId",
            "a collection cannot be its own parent or the parent of its ancestors",
        )
        .into());
    }
    Ok(())
}

/// The many-to-many relations, stored as (owner, target, position) rows.
#[derive(Clone, Copy)]
enum Link {
    VideoCollections,
    VideoTaggedUsers,
    CollectionAdmins,
    CollectionMembers,
}

impl Link {
    /// Table, owner column, target column.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Link::VideoCollections => ("video_collections", "video_id", "collection_id"),
            Link::VideoTaggedUsers => ("video_tagged_users", "video_id", "user_id"),
            Link::CollectionAdmins => ("collection_admins", "collection_id", "user_id"),
            Link::CollectionMembers => ("collection_members", "collection_id", "user_id"),
        }
    }
}

/// Replaces the targets of `owner` in a relation, keeping the given order.
async fn replace_links(c: &mut Conn, link: Link, owner: i64, targets: &[i64]) -> Result<()> {
    let (table, owner_col, _) = link.names();
    sqlx::query(&format!("DELETE FROM {table} WHERE {owner_col} = $1"))
        .bind(owner)
        .execute(&mut *c)
        .await?;
    insert_links(c, link, owner, targets).await
}

/// Adds targets to `owner`, which has none yet, in the given order.
async fn insert_links(c: &mut Conn, link: Link, owner: i64, targets: &[i64]) -> Result<()> {
    let (table, owner_col, target_col) = link.names();
    for (n, chunk) in targets.chunks(CHUNK).enumerate() {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "INSERT INTO {table} ({owner_col}, {target_col}, position) "
        ));
        let first = n * CHUNK;
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, t)| {
            b.push_bind(owner)
                .push_bind(*t)
                .push_bind(i64::try_from(first + i).unwrap_or(i64::MAX));
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(&mut *c).await?;
    }
    Ok(())
}

/// Who made a change where, and what its payload can refer to.
struct Scene<'a> {
    actor: &'a User,
    hand_off: &'a HandOff,
    channel: &'a Channel,
    catalog: &'a Catalog,
}

/// Writes an event and one delivery per enabled webhook of the channel subscribed to it, and
/// returns the deliveries handed over to this process and the webhooks whose were left queued.
async fn emit(
    c: &mut Conn,
    scene: Scene<'_>,
    name: EventName,
    object_key: &str,
    object: Value,
    updates: Option<serde_json::Map<String, Value>>,
) -> Result<Emitted> {
    let now = now_ms();
    let Scene {
        actor,
        hand_off,
        channel,
        catalog,
    } = scene;
    let data: std::sync::Arc<str> = event::event_data(
        Catalog::user_json(actor),
        catalog.channel_json(channel),
        object_key,
        object,
        updates,
    )
    .into();
    let event_id: i64 = sqlx::query_scalar::<Db, i64>(
        "INSERT INTO events (channel_id, name, at, data) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(channel.id)
    .bind(name.as_str())
    .bind(now)
    .bind(&*data)
    .fetch_one(&mut *c)
    .await?;
    let hooks: Vec<TargetRow> = match name.subscribed_by() {
        Some(subscription) => {
            sqlx::query_as::<Db, TargetRow>(&format!(
                "SELECT id, url, secrets, retries, listener FROM webhooks \
                 WHERE channel_id = $1 AND enabled = TRUE AND {} ORDER BY id {}",
                subscribed_to(subscription),
                DIALECT.key_share_clause()
            ))
            .bind(channel.id)
            .fetch_all(&mut *c)
            .await?
        }
        None => Vec::new(),
    };
    // Webhooks of `herald listen` are delivered to by the process holding their connection,
    // which may be another: their deliveries are left unclaimed for it.
    let claims = |hook: &TargetRow| {
        hand_off.until > 0 && !hook.listener && !hand_off.except.contains(&hook.id)
    };
    let lease: i64 = rand::random::<i64>() & i64::MAX;
    let mut emitted = Emitted {
        claimed_until: hand_off.until,
        ..Emitted::default()
    };
    for chunk in hooks.chunks(CHUNK) {
        let nonces: Vec<String> = chunk.iter().map(|_| new_nonce()).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, lease, claimed_until, created_at, updated_at) ",
        );
        qb.push_values(chunk.iter().zip(&nonces), |mut b, (hook, nonce)| {
            let (lease, until) = if claims(hook) {
                (Some(lease), Some(hand_off.until))
            } else {
                (None, None)
            };
            b.push_bind(hook.id)
                .push_bind(event_id)
                .push_bind(nonce.clone())
                .push_bind(DeliveryStatus::Pending.as_str())
                .push_bind(0_i64)
                .push_bind(hook.url.clone())
                .push_bind(now)
                .push_bind(lease)
                .push_bind(until)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, webhook_id");
        let ids: HashMap<i64, i64> = qb
            .build_query_as::<(i64, i64)>()
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .map(|(id, webhook_id)| (webhook_id, id))
            .collect();
        for (hook, nonce) in chunk.iter().zip(nonces) {
            if !claims(hook) {
                emitted.enqueued.push(hook.id);
                continue;
            }
            let delivery_id = *ids
                .get(&hook.id)
                .ok_or_else(|| StoreError::Corrupt("a delivery was not written".into()))?;
            emitted.claimed.push(Claimed {
                delivery_id,
                webhook_id: hook.id,
                lease,
                nonce,
                event: name,
                event_at: now,
                data: data.clone(),
                retries_made: 0,
                max_retries: hook.retries,
                url: hook.url.clone(),
                secrets: serde_json::from_str(&hook.secrets)
                    .map_err(|_| corrupt("webhooks.secrets", "(redacted)"))?,
            });
        }
    }
    Ok(emitted)
}

/// The condition that a webhook's `events` (a JSON list of names) holds `subscription`. The
/// pattern is written into the SQL rather than bound: SQLite compiles a `LIKE` against a bound
/// pattern again each time it is bound.
fn subscribed_to(subscription: WebhookEvent) -> String {
    format!("events LIKE '%\"{}\"%'", subscription.as_str())
}

/// A webhook an event is enqueued for, with what an attempt needs.
#[derive(sqlx::FromRow)]
struct TargetRow {
    id: i64,
    url: String,
    secrets: String,
    retries: i64,
    listener: bool,
}

/// What a change's event enqueued (see [`Changed`]).
#[derive(Default)]
struct Emitted {
    claimed: Vec<Claimed>,
    claimed_until: i64,
    enqueued: Vec<i64>,
}

impl Emitted {
    fn into_changed<T>(self, value: T) -> Changed<T> {
        Changed {
            value,
            claimed: self.claimed,
            claimed_until: self.claimed_until,
            enqueued: self.enqueued,
        }
    }
}

/// A user and the user's channel, read inside a transaction (one statement).
async fn user_and_channel(c: &mut Conn, user_id: i64, channel_id: i64) -> Result<Authenticated> {
    sqlx::query_as::<Db, ActorRow>(&format!(
        "SELECT {ACTOR_COLUMNS} FROM users u JOIN channels c ON c.id = u.channel_id \
         WHERE u.id = $1 AND u.channel_id = $2"
    ))
    .bind(user_id)
    .bind(channel_id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?
    .split()
}

/// The columns of an [`ActorRow`], from `users u` joined with `channels c`.
const ACTOR_COLUMNS: &str = "u.id, u.channel_id, u.email, u.first_name, u.last_name, u.role, u.created_at, \
     c.subdomain, c.name AS channel_name, c.description AS channel_description, c.created_at AS channel_created_at";

impl ActorRow {
    fn split(self) -> Result<Authenticated> {
        let channel = Channel::from(ChannelRow {
            id: self.user.channel_id,
            subdomain: self.subdomain,
            name: self.channel_name,
            description: self.channel_description,
            created_at: self.channel_created_at,
        });
        Ok(Authenticated {
            user: User::try_from(self.user)?,
            channel,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ActorRow {
    #[sqlx(flatten)]
    user: UserRow,
    subdomain: String,
    channel_name: String,
    channel_description: Option<String>,
    channel_created_at: i64,
}

async fn update_webhooks_where(c: &mut Conn, set: &str, ids: &[i64], extra: &str) -> Result<()> {
    if !ids.is_empty() {
        let mut qb = QueryBuilder::<Db>::new(format!("UPDATE webhooks SET {set} WHERE "));
        push_in(&mut qb, "id", ids);
        qb.push(extra);
        qb.build().execute(&mut *c).await?;
    }
    Ok(())
}

/// Claims due deliveries (see [`Store::settle`]).
async fn claim_in(
    tx: &mut Conn,
    wants: &[(i64, i64)],
    listeners: &[i64],
    now: i64,
    lease_until: i64,
) -> Result<Vec<Claimed>> {
    if wants.is_empty() {
        return Ok(Vec::new());
    }
    let lease: i64 = rand::random::<i64>() & i64::MAX;
    let mut qb = QueryBuilder::<Db>::new("UPDATE deliveries SET claimed_until = ");
    qb.push_bind(lease_until)
        .push(", lease = ")
        .push_bind(lease)
        .push(" WHERE id IN (");
    for (i, (webhook_id, limit)) in wants.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        // Per webhook, through the (webhook_id, next_attempt_at) index of queued rows: one
        // webhook's backlog never hides another's fresh deliveries.
        qb.push("SELECT id FROM (SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.webhook_id = ")
        .push_bind(*webhook_id)
        .push(if listeners.contains(webhook_id) { "" } else { " AND w.listener = FALSE" })
        .push(" AND w.enabled = TRUE AND d.status IN ('PENDING', 'RETRYING') AND d.next_attempt_at <= ")
        .push_bind(now)
        .push(" AND (d.claimed_until IS NULL OR d.claimed_until <= ")
        .push_bind(now)
        .push(") ORDER BY d.next_attempt_at LIMIT ")
        .push_bind(*limit)
        .push(" ")
        .push(DIALECT.lock_clause())
        .push(format!(") AS q{i}"));
    }
    qb.push(") RETURNING id");
    let ids: Vec<i64> = qb.build_query_scalar::<i64>().fetch_all(&mut *tx).await?;
    load_claims(tx, &ids, lease).await
}

/// Records attempts and moves their deliveries on (see [`Store::record`]).
async fn record_in(
    tx: &mut Conn,
    records: &[Recorded],
    now: i64,
    disable_after_ms: i64,
) -> Result<()> {
    super::write_records(&mut *tx, records, now).await?;
    let ids = |f: &dyn Fn(&Fate) -> bool| {
        sorted_unique(
            records
                .iter()
                .filter(|r| f(&r.fate))
                .map(|r| r.webhook_id)
                .collect(),
        )
    };
    let failed = ids(&|f| matches!(f, Fate::Failed { gone: false }));
    let gone = ids(&|f| matches!(f, Fate::Failed { gone: true }));
    let succeeded = ids(&|f| matches!(f, Fate::Succeeded));
    let failing = "FAILING";
    update_webhooks_where(
        &mut *tx,
        &format!("failing_since = {now}"),
        &failed,
        " AND failing_since IS NULL",
    )
    .await?;
    update_webhooks_where(
        &mut *tx,
        "failing_since = NULL",
        &succeeded,
        " AND failing_since IS NOT NULL",
    )
    .await?;
    let cutoff = now.saturating_sub(disable_after_ms);
    update_webhooks_where(
        &mut *tx,
        &format!("enabled = FALSE, disabled_reason = '{failing}', updated_at = {now}"),
        &failed,
        &format!(" AND enabled = TRUE AND failing_since <= {cutoff}"),
    )
    .await?;
    update_webhooks_where(
        &mut *tx,
        &format!("enabled = FALSE, disabled_reason = '{failing}', updated_at = {now}"),
        &gone,
        " AND enabled = TRUE",
    )
    .await?;
    Ok(())
}

/// What attempts of the claimed deliveries `ids` need. Pings are never retried.
async fn load_claims(c: &mut Conn, ids: &[i64], lease: i64) -> Result<Vec<Claimed>> {
    let mut rows: Vec<ClaimRow> = Vec::with_capacity(ids.len());
    if !ids.is_empty() {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT d.id AS delivery_id, d.webhook_id, d.lease, d.nonce, e.name AS event_name, e.at AS event_at, e.data, \
             d.retries, w.retries AS max_retries, w.url, w.secrets \
             FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id WHERE ",
        );
        push_in(&mut qb, "d.id", ids);
        rows.extend(qb.build_query_as::<ClaimRow>().fetch_all(&mut *c).await?);
    }
    rows.into_iter()
        .map(|r| {
            let event = EventName::parse(&r.event_name)
                .ok_or_else(|| corrupt("events.name", &r.event_name))?;
            Ok(Claimed {
                event,
                secrets: serde_json::from_str(&r.secrets)
                    .map_err(|_| corrupt("webhooks.secrets", "(redacted)"))?,
                delivery_id: r.delivery_id,
                webhook_id: r.webhook_id,
                lease: r.lease.unwrap_or(lease),
                nonce: r.nonce,
                event_at: r.event_at,
                data: r.data.into(),
                retries_made: r.retries,
                max_retries: if event == EventName::Ping {
                    0
                } else {
                    r.max_retries
                },
                url: r.url,
            })
        })
        .collect()
}

/// `ids` without repeats, each where it first appears: what [`insert_links`] stores.
fn first_of_each(ids: &[i64]) -> Vec<i64> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

fn sorted_unique(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for SqlStore {
    fn dialect(&self) -> Dialect {
        DIALECT
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        for pool in &self.background {
            pool.close().await;
        }
        self.engine.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn channel_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM channels")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn ensure_channel(&self, subdomain: &str, name: &str) -> Result<Channel> {
        let mut tx = self.writes.begin().await?;
        sqlx::query("INSERT INTO channels (subdomain, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (subdomain) DO NOTHING")
            .bind(subdomain)
            .bind(name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query_as::<Db, ChannelRow>(
            "SELECT id, subdomain, name, description, created_at FROM channels WHERE subdomain = $1",
        )
        .bind(subdomain)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn ensure_user(&self, channel_id: i64, user: &NewUser) -> Result<User> {
        let mut tx = self.writes.begin().await?;
        sqlx::query(
            "INSERT INTO users (channel_id, email, first_name, last_name, role, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
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
        let row = sqlx::query_as::<Db, UserRow>(
            "SELECT id, channel_id, email, first_name, last_name, role, created_at FROM users WHERE channel_id = $1 AND email = $2",
        )
        .bind(channel_id)
        .bind(&user.email)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn create_token(&self, user_id: i64, token_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Authenticated>> {
        self.authenticate_noting_use(token_hash).await
    }

    async fn channel(&self, id: i64) -> Result<Channel> {
        let mut c = self.reader.acquire().await?;
        channel_of(&mut c, id).await
    }

    async fn users(&self, channel_id: i64, ids: &[i64]) -> Result<Vec<User>> {
        let mut c = self.reader.acquire().await?;
        users_in(&mut c, channel_id, ids).await
    }

    async fn list_users(&self, channel_id: i64, page: Page) -> Result<Vec<User>> {
        let rows = sqlx::query_as::<Db, UserRow>(
            "SELECT id, channel_id, email, first_name, last_name, role, created_at FROM users \
             WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(channel_id)
        .bind(page.after.unwrap_or(0))
        .bind(page.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn create_webhook(
        &self,
        channel_id: i64,
        creator_id: i64,
        new: &NewWebhook,
    ) -> Result<Webhook> {
        let now = now_ms();
        let events: Vec<&str> = new.events.iter().map(|e| e.as_str()).collect();
        let secrets: Vec<&str> = new.secrets.iter().map(|s| s.as_str()).collect();
        let mut tx = self.writes.begin().await?;
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO webhooks (channel_id, url, description, events, secrets, retries, enabled, disabled_reason, creator_id, created_at, updated_at, listener) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id",
        )
        .bind(channel_id)
        .bind(new.url.as_str())
        .bind(&new.description)
        .bind(serde_json::to_string(&events).unwrap_or_default())
        .bind(serde_json::to_string(&secrets).unwrap_or_default())
        .bind(new.retries)
        .bind(new.enabled)
        .bind((!new.enabled).then_some(DisabledReason::Manual.as_str()))
        .bind(creator_id)
        .bind(now)
        .bind(new.listener)
        .fetch_one(&mut *tx)
        .await?;
        let hook = webhook_of(&mut tx, channel_id, id).await?;
        tx.commit().await?;
        Ok(hook)
    }

    async fn update_webhook(
        &self,
        channel_id: i64,
        id: i64,
        patch: &WebhookPatch,
    ) -> Result<Webhook> {
        let mut tx = self.writes.begin().await?;
        let cur = webhook_of(&mut tx, channel_id, id).await?;
        let url = patch
            .url
            .as_ref()
            .map_or(cur.url.clone(), |u| u.as_str().to_owned());
        let description = patch.description.clone().unwrap_or(cur.description.clone());
        let events: Vec<&str> = match &patch.events {
            Some(e) => e.iter().map(|e| e.as_str()).collect(),
            None => cur.events.iter().map(|e| e.as_str()).collect(),
        };
        let secrets: Vec<&str> = match &patch.secrets {
            Some(s) => s.iter().map(|s| s.as_str()).collect(),
            None => cur.secrets.iter().map(String::as_str).collect(),
        };
        let retries = patch.retries.unwrap_or(cur.retries);
        let (enabled, reason) = match patch.enabled {
            Some(true) => (true, None),
            Some(false) if cur.enabled || cur.disabled_reason.is_none() => {
                (false, Some(DisabledReason::Manual))
            }
            Some(false) => (false, cur.disabled_reason),
            None => (cur.enabled, cur.disabled_reason),
        };
        sqlx::query(
            "UPDATE webhooks SET url = $1, description = $2, events = $3, secrets = $4, retries = $5, enabled = $6, \
             disabled_reason = $7, updated_at = $8, failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END \
             WHERE channel_id = $9 AND id = $10",
        )
        .bind(&url)
        .bind(&description)
        .bind(serde_json::to_string(&events).unwrap_or_default())
        .bind(serde_json::to_string(&secrets).unwrap_or_default())
        .bind(retries)
        .bind(enabled)
        .bind(reason.map(DisabledReason::as_str))
        .bind(now_ms())
        .bind(channel_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let hook = webhook_of(&mut tx, channel_id, id).await?;
        tx.commit().await?;
        Ok(hook)
    }

    /// Deletes the webhook, its deliveries and their attempts. On PostgreSQL no foreign key
    /// cascades (see migration 0004), so the order matters: the webhook first, which waits for
    /// any transaction still writing deliveries for it (they hold it `FOR KEY SHARE`); then its
    /// deliveries, which waits for any round still recording attempts of them (it holds them
    /// locked); then, in a statement that sees what those committed, the attempts.
    async fn delete_webhook(&self, channel_id: i64, id: i64) -> Result<()> {
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE channel_id = $1 AND id = $2")
            .bind(channel_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let gone: Vec<i64> = sqlx::query_scalar::<Db, i64>(
            "DELETE FROM deliveries WHERE webhook_id = $1 RETURNING id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !gone.is_empty() {
            // The ids are bound as one value, so their number is not bound by a limit.
            let mut qb = QueryBuilder::<Db>::new("DELETE FROM delivery_attempts WHERE ");
            push_in(&mut qb, "delivery_id", &gone);
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn webhook(&self, channel_id: i64, id: i64) -> Result<Webhook> {
        let mut c = self.reader.acquire().await?;
        webhook_of(&mut c, channel_id, id).await
    }

    async fn list_webhooks(
        &self,
        channel_id: i64,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<Vec<Webhook>> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE channel_id = "
        ));
        qb.push_bind(channel_id)
            .push(" AND id > ")
            .push_bind(page.after.unwrap_or(0));
        if let Some(enabled) = filter.enabled {
            qb.push(" AND enabled = ").push_bind(enabled);
        }
        if let Some(event) = filter.event {
            qb.push(" AND ").push(subscribed_to(event));
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(page.limit);
        let rows: Vec<WebhookRow> = qb.build_query_as().fetch_all(&self.reader).await?;
        rows.into_iter().map(Webhook::try_from).collect()
    }

    async fn create_video(&self, actor: Actor, new: &NewVideo) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        check_ids(
            &mut tx,
            "collections",
            Kind::Collection,
            actor.channel.id,
            &new.collection_ids,
            "collectionIds",
        )
        .await?;
        check_ids(
            &mut tx,
            "users",
            Kind::User,
            actor.channel.id,
            &new.tagged_user_ids,
            "taggedUserIds",
        )
        .await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO videos (channel_id, title, slug, summary, visibility, presented_at, duration, draft, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(actor.channel.id)
        .bind(&new.title)
        .bind(slug(&new.title))
        .bind(&new.summary)
        .bind(new.visibility.as_str())
        .bind(new.presented_at)
        .bind(new.duration)
        .bind(new.draft)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        insert_links(&mut tx, Link::VideoCollections, id, &new.collection_ids).await?;
        insert_links(&mut tx, Link::VideoTaggedUsers, id, &new.tagged_user_ids).await?;
        let video = video_of(&mut tx, actor.channel.id, id).await?;
        let mut emitted = Emitted::default();
        if !video.draft {
            let (user, channel) = (&actor.user, &actor.channel);
            let cat = catalog(
                &mut tx,
                self.channel_url(&channel.subdomain),
                channel.id,
                &video.collection_ids,
                &video.tagged_user_ids,
            )
            .await?;
            let object = cat.video_json(&video);
            emitted = emit(
                &mut tx,
                Scene {
                    actor: user,
                    hand_off: &actor.hand_off,
                    channel,
                    catalog: &cat,
                },
                EventName::VideoAddedToChannel,
                "video",
                object,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    async fn publish_video(&self, actor: Actor, id: i64) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        let before = video_of(&mut tx, actor.channel.id, id).await?;
        if !before.draft {
            tx.commit().await?;
            return Ok(Changed::quiet(before));
        }
        sqlx::query("UPDATE videos SET draft = FALSE, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let video = video_of(&mut tx, actor.channel.id, id).await?;
        let (user, channel) = (&actor.user, &actor.channel);
        let cat = catalog(
            &mut tx,
            self.channel_url(&channel.subdomain),
            channel.id,
            &video.collection_ids,
            &video.tagged_user_ids,
        )
        .await?;
        let object = cat.video_json(&video);
        let emitted = emit(
            &mut tx,
            Scene {
                actor: user,
                hand_off: &actor.hand_off,
                channel,
                catalog: &cat,
            },
            EventName::VideoAddedToChannel,
            "video",
            object,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    async fn update_video(
        &self,
        actor: Actor,
        id: i64,
        patch: &VideoPatch,
    ) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        let before = video_of(&mut tx, actor.channel.id, id).await?;
        if let Some(ids) = &patch.collection_ids {
            check_ids(
                &mut tx,
                "collections",
                Kind::Collection,
                actor.channel.id,
                ids,
                "collectionIds",
            )
            .await?;
        }
        if let Some(ids) = &patch.tagged_user_ids {
            check_ids(
                &mut tx,
                "users",
                Kind::User,
                actor.channel.id,
                ids,
                "taggedUserIds",
            )
            .await?;
        }
        let wanted = patch.apply(&before);
        if wanted == before {
            tx.commit().await?;
            return Ok(Changed::quiet(before));
        }
        sqlx::query(
            "UPDATE videos SET title = $1, summary = $2, visibility = $3, presented_at = $4, duration = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&wanted.title)
        .bind(&wanted.summary)
        .bind(wanted.visibility.as_str())
        .bind(wanted.presented_at)
        .bind(wanted.duration)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if wanted.collection_ids != before.collection_ids {
            replace_links(&mut tx, Link::VideoCollections, id, &wanted.collection_ids).await?;
        }
        if wanted.tagged_user_ids != before.tagged_user_ids {
            replace_links(&mut tx, Link::VideoTaggedUsers, id, &wanted.tagged_user_ids).await?;
        }
        let after = video_of(&mut tx, actor.channel.id, id).await?;
        let mut emitted = Emitted::default();
        if !after.draft {
            let (user, channel) = (&actor.user, &actor.channel);
            let mut users = before.tagged_user_ids.clone();
            users.extend(&after.tagged_user_ids);
            let mut rooted = before.collection_ids.clone();
            rooted.extend(&after.collection_ids);
            let cat = catalog(
                &mut tx,
                self.channel_url(&channel.subdomain),
                channel.id,
                &rooted,
                &users,
            )
            .await?;
            let (old, new) = (cat.video_json(&before), cat.video_json(&after));
            let updates = event::updates(&old, &new, &VIDEO_FIELDS);
            if !updates.is_empty() {
                emitted = emit(
                    &mut tx,
                    Scene {
                        actor: user,
                        hand_off: &actor.hand_off,
                        channel,
                        catalog: &cat,
                    },
                    EventName::VideoUpdated,
                    "video",
                    new,
                    Some(updates),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(emitted.into_changed(after))
    }

    async fn delete_video(&self, actor: Actor, id: i64) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        let video = video_of(&mut tx, actor.channel.id, id).await?;
        let mut emitted = Emitted::default();
        if !video.draft {
            let (user, channel) = (&actor.user, &actor.channel);
            let cat = catalog(
                &mut tx,
                self.channel_url(&channel.subdomain),
                channel.id,
                &video.collection_ids,
                &video.tagged_user_ids,
            )
            .await?;
            let object = cat.video_json(&video);
            emitted = emit(
                &mut tx,
                Scene {
                    actor: user,
                    hand_off: &actor.hand_off,
                    channel,
                    catalog: &cat,
                },
                EventName::VideoDeleted,
                "video",
                object,
                None,
            )
            .await?;
        }
        sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    async fn create_collection(
        &self,
        actor: Actor,
        new: &NewCollection,
    ) -> Result<Changed<Collection>> {
        let mut tx = self.writes.begin().await?;
        if let Some(p) = new.parent_id {
            check_ids(
                &mut tx,
                "collections",
                Kind::Collection,
                actor.channel.id,
                &[p],
                "parentId",
            )
            .await?;
        }
        check_ids(
            &mut tx,
            "users",
            Kind::User,
            actor.channel.id,
            &new.admin_ids,
            "adminIds",
        )
        .await?;
        check_ids(
            &mut tx,
            "users",
            Kind::User,
            actor.channel.id,
            &new.member_ids,
            "memberIds",
        )
        .await?;
        let now = now_ms();
        let row = sqlx::query_as::<Db, CollectionRow>(&format!(
            "INSERT INTO collections (channel_id, parent_id, name, slug, description, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLLECTION_COLUMNS}"
        ))
        .bind(actor.channel.id)
        .bind(new.parent_id)
        .bind(&new.name)
        .bind(slug(&new.name))
        .bind(&new.description)
        .bind(new.secret)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id = row.id;
        insert_links(&mut tx, Link::CollectionAdmins, id, &new.admin_ids).await?;
        insert_links(&mut tx, Link::CollectionMembers, id, &new.member_ids).await?;
        let (user, channel) = (&actor.user, &actor.channel);
        let url = self.channel_url(&channel.subdomain);
        let (coll, cat) = match new.parent_id {
            // The parent's subtree, now with the new collection in it.
            Some(parent) => {
                let cat = catalog(&mut tx, url, channel.id, &[parent], &[]).await?;
                (held(&cat, id)?, cat)
            }
            // A new root collection is its own whole subtree; its links are as just written.
            None => {
                let coll = row.with_links(
                    first_of_each(&new.admin_ids),
                    first_of_each(&new.member_ids),
                );
                let cat = catalog_of(&mut tx, url, channel.id, vec![coll.clone()], &[]).await?;
                (coll, cat)
            }
        };
        let object = cat.collection_json(&coll);
        let emitted = emit(
            &mut tx,
            Scene {
                actor: user,
                hand_off: &actor.hand_off,
                channel,
                catalog: &cat,
            },
            EventName::CollectionCreated,
            "collection",
            object,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(coll))
    }

    async fn update_collection(
        &self,
        actor: Actor,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<Changed<Collection>> {
        let mut tx = self.writes.begin().await?;
        let before = collection_of(&mut tx, actor.channel.id, id).await?;
        if let Some(Some(p)) = patch.parent_id {
            check_ids(
                &mut tx,
                "collections",
                Kind::Collection,
                actor.channel.id,
                &[p],
                "parentId",
            )
            .await?;
        }
        if let Some(ids) = &patch.admin_ids {
            check_ids(
                &mut tx,
                "users",
                Kind::User,
                actor.channel.id,
                ids,
                "adminIds",
            )
            .await?;
        }
        if let Some(ids) = &patch.member_ids {
            check_ids(
                &mut tx,
                "users",
                Kind::User,
                actor.channel.id,
                ids,
                "memberIds",
            )
            .await?;
        }
        let wanted = patch.apply(&before);
        if wanted == before {
            tx.commit().await?;
            return Ok(Changed::quiet(before));
        }
        let (user, channel) = (&actor.user, &actor.channel);
        let url = self.channel_url(&channel.subdomain);
        let roots: Vec<i64> = [Some(id), before.parent_id, wanted.parent_id]
            .into_iter()
            .flatten()
            .collect();
        let old_cat = catalog(&mut tx, url.clone(), channel.id, &roots, &[]).await?;
        if wanted.parent_id != before.parent_id {
            check_no_cycle(&mut tx, id, wanted.parent_id).await?;
        }
        let old = old_cat.collection_json(&before);
        sqlx::query("UPDATE collections SET name = $1, description = $2, secret = $3, parent_id = $4, updated_at = $5 WHERE id = $6")
            .bind(&wanted.name)
            .bind(&wanted.description)
            .bind(wanted.secret)
            .bind(wanted.parent_id)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if wanted.admin_ids != before.admin_ids {
            replace_links(&mut tx, Link::CollectionAdmins, id, &wanted.admin_ids).await?;
        }
        if wanted.member_ids != before.member_ids {
            replace_links(&mut tx, Link::CollectionMembers, id, &wanted.member_ids).await?;
        }
        let new_cat = catalog(&mut tx, url, channel.id, &roots, &[]).await?;
        let after = held(&new_cat, id)?;
        let new = new_cat.collection_json(&after);
        let updates = event::updates(&old, &new, &COLLECTION_FIELDS);
        let mut emitted = Emitted::default();
        if !updates.is_empty() {
            emitted = emit(
                &mut tx,
                Scene {
                    actor: user,
                    hand_off: &actor.hand_off,
                    channel,
                    catalog: &new_cat,
                },
                EventName::CollectionUpdated,
                "collection",
                new,
                Some(updates),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(emitted.into_changed(after))
    }

    async fn delete_collection(&self, actor: Actor, id: i64) -> Result<Changed<Collection>> {
        let mut tx = self.writes.begin().await?;
        let (user, channel) = (&actor.user, &actor.channel);
        let cat = catalog(
            &mut tx,
            self.channel_url(&channel.subdomain),
            channel.id,
            &[id],
            &[],
        )
        .await?;
        let coll = held(&cat, id)?;
        let object = cat.deleted_collection_json(&coll);
        let emitted = emit(
            &mut tx,
            Scene {
                actor: user,
                hand_off: &actor.hand_off,
                channel,
                catalog: &cat,
            },
            EventName::CollectionDeleted,
            "collection",
            object,
            None,
        )
        .await?;
        sqlx::query("DELETE FROM collections WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(coll))
    }

    async fn video(&self, channel_id: i64, id: i64) -> Result<Video> {
        let mut c = self.reader.acquire().await?;
        video_of(&mut c, channel_id, id).await
    }

    async fn list_videos(&self, channel_id: i64, page: Page) -> Result<Vec<Video>> {
        let mut c = self.reader.acquire().await?;
        let rows = sqlx::query_as::<Db, VideoRow>(&format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(channel_id)
        .bind(page.after.unwrap_or(0))
        .bind(page.limit)
        .fetch_all(&mut *c)
        .await?;
        hydrate_videos(&mut c, rows).await
    }

    async fn collection(&self, channel_id: i64, id: i64) -> Result<Collection> {
        let mut c = self.reader.acquire().await?;
        collection_of(&mut c, channel_id, id).await
    }

    async fn collections(&self, channel_id: i64, ids: &[i64]) -> Result<Vec<Collection>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.reader.acquire().await?;
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = "
        ));
        qb.push_bind(channel_id).push(" AND ");
        push_in(&mut qb, "id", ids);
        let rows: Vec<CollectionRow> = qb.build_query_as().fetch_all(&mut *c).await?;
        let mut by_id: HashMap<i64, Collection> = hydrate_collections(&mut c, rows)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    async fn child_collections(&self, channel_id: i64, parent_id: i64) -> Result<Vec<Collection>> {
        let mut c = self.reader.acquire().await?;
        let rows = sqlx::query_as::<Db, CollectionRow>(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = $1 AND parent_id = $2 ORDER BY id"
        ))
        .bind(channel_id)
        .bind(parent_id)
        .fetch_all(&mut *c)
        .await?;
        hydrate_collections(&mut c, rows).await
    }

    async fn list_collections(&self, channel_id: i64, page: Page) -> Result<Vec<Collection>> {
        let mut c = self.reader.acquire().await?;
        let rows = sqlx::query_as::<Db, CollectionRow>(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(channel_id)
        .bind(page.after.unwrap_or(0))
        .bind(page.limit)
        .fetch_all(&mut *c)
        .await?;
        hydrate_collections(&mut c, rows).await
    }

    async fn list_deliveries(
        &self,
        channel_id: i64,
        webhook_id: i64,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Vec<Delivery>> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN webhooks w ON w.id = d.webhook_id WHERE w.channel_id = "
        ));
        qb.push_bind(channel_id)
            .push(" AND d.webhook_id = ")
            .push_bind(webhook_id);
        if let Some(after) = page.after {
            qb.push(" AND d.id < ").push_bind(after);
        }
        if let Some(status) = filter.status {
            qb.push(" AND d.status = ").push_bind(status.as_str());
        }
        if let Some(nonces) = &filter.nonces {
            if nonces.is_empty() {
                return Ok(Vec::new());
            }
            qb.push(" AND d.nonce IN (");
            let mut sep = qb.separated(", ");
            for n in nonces {
                sep.push_bind(n.clone());
            }
            sep.push_unseparated(")");
        }
        qb.push(" ORDER BY d.id DESC LIMIT ").push_bind(page.limit);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(&self.reader).await?;
        rows.into_iter().map(Delivery::try_from).collect()
    }

    async fn delivery(&self, channel_id: i64, id: i64) -> Result<Delivery> {
        sqlx::query_as::<Db, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN webhooks w ON w.id = d.webhook_id WHERE w.channel_id = $1 AND d.id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query_as::<Db, AttemptRow>(
            "SELECT id, delivery_id, at, url, code, result, message, duration_ms, response_body \
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Attempt {
                    result: AttemptResult::parse(&r.result)
                        .ok_or_else(|| corrupt("delivery_attempts.result", &r.result))?,
                    id: r.id,
                    delivery_id: r.delivery_id,
                    at: r.at,
                    url: r.url,
                    code: r.code,
                    message: r.message,
                    duration_ms: r.duration_ms,
                    response_body: r.response_body,
                })
            })
            .collect()
    }

    async fn event_data(&self, event_id: i64) -> Result<String> {
        sqlx::query_scalar::<Db, String>("SELECT data FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn due_webhooks(&self, now: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT w.id FROM webhooks w WHERE w.enabled = TRUE AND w.listener = FALSE AND EXISTS (\
             SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status IN ('PENDING', 'RETRYING') \
             AND d.next_attempt_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until <= $1)) ORDER BY w.id",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?)
    }

    async fn claim_ping(
        &self,
        channel_id: i64,
        actor_id: i64,
        webhook_id: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Claimed> {
        let lease: i64 = rand::random::<i64>() & i64::MAX;
        let mut tx = self.writes.begin().await?;
        if DIALECT.key_share_clause() != "" {
            sqlx::query(&format!(
                "SELECT id FROM webhooks WHERE channel_id = $1 AND id = $2 {}",
                DIALECT.key_share_clause()
            ))
            .bind(channel_id)
            .bind(webhook_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        }
        let hook = webhook_of(&mut tx, channel_id, webhook_id).await?;
        let Authenticated { user, channel } =
            user_and_channel(&mut tx, actor_id, channel_id).await?;
        let cat = Catalog::new(self.channel_url(&channel.subdomain), Vec::new(), Vec::new());
        let data = event::ping_data(Catalog::user_json(&user), cat.channel_json(&channel));
        let event_id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO events (channel_id, name, at, data) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(channel_id)
        .bind(EventName::Ping.as_str())
        .bind(now)
        .bind(&data)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, lease, claimed_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 'PENDING', 0, $4, $7, $6, $5, $7, $7) RETURNING id",
        )
        .bind(hook.id)
        .bind(event_id)
        .bind(new_nonce())
        .bind(&hook.url)
        .bind(lease_until)
        .bind(lease)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let claimed = load_claims(&mut tx, &[id], lease)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn claim_delivery(
        &self,
        channel_id: i64,
        delivery_id: i64,
        lease_until: i64,
    ) -> Result<Claimed> {
        let lease: i64 = rand::random::<i64>() & i64::MAX;
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query(
            "UPDATE deliveries SET lease = $1, claimed_until = $2 \
             WHERE id = $3 AND webhook_id IN (SELECT id FROM webhooks WHERE channel_id = $4)",
        )
        .bind(lease)
        .bind(lease_until)
        .bind(delivery_id)
        .bind(channel_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let claimed = load_claims(&mut tx, &[delivery_id], lease)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn record(&self, records: &[Recorded], now: i64, disable_after_ms: i64) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.engine.begin().await?;
        record_in(&mut tx, records, now, disable_after_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn settle(
        &self,
        records: &[Recorded],
        wants: &[(i64, i64)],
        listeners: &[i64],
        now: i64,
        lease_until: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Claimed>> {
        let wants: Vec<(i64, i64)> = wants.iter().copied().filter(|(_, n)| *n > 0).collect();
        if records.is_empty() && wants.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.engine.begin().await?;
        if !records.is_empty() {
            record_in(&mut tx, records, now, disable_after_ms).await?;
        }
        let claimed = claim_in(&mut tx, &wants, listeners, now, lease_until).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn release(&self, claims: &[(i64, i64)]) -> Result<()> {
        for chunk in claims.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Db>::new(
                "UPDATE deliveries SET lease = NULL, claimed_until = NULL FROM (",
            );
            qb.push_values(chunk, |mut b, (id, lease)| {
                b.push_bind(*id).push_bind(*lease);
            });
            qb.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2");
            qb.build().execute(&self.engine).await?;
        }
        Ok(())
    }

    // Tokens and roles (CLI): the SQL is in the block at the end of this file.
    async fn list_tokens(&self, channel: Option<&str>) -> Result<Vec<crate::store::TokenInfo>> {
        self.tokens(channel).await
    }

    async fn revoke_token(&self, id: i64, now: i64) -> Result<crate::store::TokenInfo> {
        self.revoke(id, now).await
    }

    async fn set_user_role(&self, channel: &str, email: &str, role: Role) -> Result<Role> {
        self.set_role(channel, email, role).await
    }
}

const WEBHOOK_COLUMNS: &str =
    "id, channel_id, url, description, events, secrets, retries, enabled, disabled_reason, creator_id, created_at, updated_at, listener";

async fn webhook_of(c: &mut Conn, channel_id: i64, id: i64) -> Result<Webhook> {
    sqlx::query_as::<Db, WebhookRow>(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE channel_id = $1 AND id = $2"
    ))
    .bind(channel_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?
    .try_into()
}

// ---------------------------------------------------------------------------------------------
// Tokens and roles (CLI), and when a token was last used.

/// A token's `last_used_at` is written when it authenticates a request at least this long
/// (ms) after the time it holds: at most one write a minute per token, none on other requests.
const LAST_USED_EVERY_MS: i64 = 60_000;

const TOKEN_INFO_COLUMNS: &str =
    "t.id, c.subdomain AS channel, u.email, u.role, t.created_at, t.last_used_at, t.revoked_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN channels c ON c.id = u.channel_id";

#[derive(sqlx::FromRow)]
struct TokenInfoRow {
    id: i64,
    channel: String,
    email: String,
    role: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenInfoRow> for crate::store::TokenInfo {
    type Error = StoreError;
    fn try_from(r: TokenInfoRow) -> Result<Self> {
        Ok(crate::store::TokenInfo {
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

#[derive(sqlx::FromRow)]
struct AuthRow {
    #[sqlx(flatten)]
    actor: ActorRow,
    token_id: i64,
    last_used_at: Option<i64>,
}

impl SqlStore {
    /// [`Store::authenticate`]; when the token's `last_used_at` is a minute old or more, it is
    /// moved to now in the background, so the request does not wait for a write.
    async fn authenticate_noting_use(&self, token_hash: &str) -> Result<Option<Authenticated>> {
        let row = sqlx::query_as::<Db, AuthRow>(&format!(
            "SELECT {ACTOR_COLUMNS}, t.id AS token_id, t.last_used_at FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN channels c ON c.id = u.channel_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
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

    async fn tokens(&self, channel: Option<&str>) -> Result<Vec<crate::store::TokenInfo>> {
        let rows = match channel {
            Some(subdomain) => {
                sqlx::query_as::<Db, TokenInfoRow>(&format!(
                    "SELECT {TOKEN_INFO_COLUMNS} WHERE c.subdomain = $1 ORDER BY t.id"
                ))
                .bind(subdomain)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query_as::<Db, TokenInfoRow>(&format!(
                    "SELECT {TOKEN_INFO_COLUMNS} ORDER BY t.id"
                ))
                .fetch_all(&self.reader)
                .await?
            }
        };
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke(&self, id: i64, now: i64) -> Result<crate::store::TokenInfo> {
        let before = sqlx::query_as::<Db, TokenInfoRow>(&format!(
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

    async fn set_role(&self, channel: &str, email: &str, role: Role) -> Result<Role> {
        let (user_id, was): (i64, String) = sqlx::query_as(
            "SELECT u.id, u.role FROM users u JOIN channels c ON c.id = u.channel_id \
             WHERE c.subdomain = $1 AND u.email = $2",
        )
        .bind(channel)
        .bind(email)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Role::parse(&was).ok_or_else(|| corrupt("users.role", &was))
    }
}
