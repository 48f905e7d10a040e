//! The outbox: the one way in for every change that can cause a delivery.
//!
//! Every entry point (the GraphQL API, `herald listen`) makes its changes here. A content change
//! asks the delivery engine what it has room for ([`Deliverer::hand_off_terms`]), has the store
//! write the change, its event and its deliveries in one transaction (those the terms allow
//! written claimed by this process), then hands the claimed deliveries to the engine and wakes
//! it for the rest. The commit and the hand-over run in a task of their own
//! ([`detached`]): a request dropped halfway (its client hung up) cannot leave deliveries
//! claimed by an engine that was never given them, to wait out their lease.
//!
//! The outbox also makes the attempts a user asks for (a ping, a redelivery), runs the endpoint
//! handshake, keeps the hub of `herald listen` sessions ([`hub`]), and takes the requests to
//! sources' ingest URLs, whose events are written and handed over as a content change's are
//! (`sources.rs`).
//!
//! The engine is reached only through [`Deliverer`], which `worker::Engine` implements: the
//! outbox knows what it needs of an engine, not how one works, and nothing above the outbox
//! knows the engine at all.

mod community;
pub mod hub;
mod listen;
mod sources;
mod webhooks;

use crate::domain::content::{
    Collection, CollectionPatch, NewCollection, NewVideo, Video, VideoPatch,
};
use crate::domain::delivery::Delivery;
use crate::domain::event::EventName;
use crate::domain::ids::{ChannelId, DeliveryId, WebhookId};
use crate::domain::Invalid;
use crate::metrics::Metrics;
use crate::store::{Actor, Changed, Claimed, HandOff, SharedStore, StoreError};
use async_trait::async_trait;
use hub::ListenerHub;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use listen::{Attachment, Listening, LISTENER_GONE};
pub use sources::{Answer, Unread, WithToken};

/// What the outbox needs of the delivery engine (implemented by `worker::Engine`).
#[async_trait]
pub trait Deliverer: Send + Sync + 'static {
    /// What a change about to be written may claim for the engine: deliveries to webhooks it
    /// has room for, claimed for one lease.
    fn hand_off_terms(&self) -> HandOff;
    /// Takes deliveries a change claimed under [`Deliverer::hand_off_terms`], claimed until
    /// `claimed_until` (ms). Those it cannot start in time go back to the queue.
    fn hand_over(&self, claims: Vec<Claimed>, claimed_until: i64);
    /// Wakes the engine for webhooks with deliveries queued.
    fn wake(&self, webhooks: &[WebhookId]);
    /// When a claim made at `now` for an attempt right away runs out.
    fn lease_until(&self, now: i64) -> i64;
    /// Attempts a delivery claimed outside the engine's rounds (a ping, a redelivery) now,
    /// and records the outcome.
    async fn attempt_now(&self, claim: Claimed) -> Result<(), StoreError>;
    /// The endpoint handshake (see `worker::sender::Sender::handshake`); `Err` says why the
    /// endpoint failed it.
    async fn handshake(&self, url: &str, token: &str) -> Result<(), HandshakeFailed>;
    /// Forgets what the engine learnt of a webhook's receiver (its circuit breaker), and wakes
    /// it for the webhook: the webhook was given a new URL.
    fn reset(&self, webhook: WebhookId);
    /// Until when (ms) the engine holds a failing webhook's deliveries back, if it does (the
    /// time may have passed).
    fn paused_until(&self, webhook: WebhookId) -> Option<i64>;
    /// One attempt's time limit: a request that makes an attempt (a ping) may need as long.
    fn attempt_timeout(&self) -> std::time::Duration;
}

/// Why an endpoint failed the handshake, in a sentence for the admin who asked for it.
pub type HandshakeFailed = Box<dyn std::error::Error + Send + Sync>;

/// What a change through the outbox came to, when not what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such object in the actor's channel.
    #[error("no object found")]
    NotFound,
    /// Input the user can fix, with the field at fault.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A failure the user cannot fix; logged, shown as an opaque message.
    #[error(transparent)]
    Internal(StoreError),
    /// The task making the change was stopped (the process is shutting down): whether the
    /// change was committed is not known.
    #[error("interrupted before it finished")]
    Interrupted,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound,
            StoreError::Invalid(i) => Error::Invalid(i),
            other => Error::Internal(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A change to a video (see SPEC §3.4 for the event each emits).
#[derive(Debug, Clone)]
pub enum VideoChange {
    Create(NewVideo),
    Publish(i64),
    Update(i64, VideoPatch),
    Delete(i64),
}

/// A change to a collection.
#[derive(Debug, Clone)]
pub enum CollectionChange {
    Create(NewCollection),
    Update(i64, CollectionPatch),
    Delete(i64),
}

/// The outbox service; cheap to clone.
#[derive(Clone)]
pub struct Outbox(Arc<Parts>);

struct Parts {
    store: SharedStore,
    engine: Arc<dyn Deliverer>,
    hub: Arc<ListenerHub>,
    /// How long a `herald listen` listener may stay disconnected before it is ended.
    listener_grace: Duration,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// The outbox of `store`, handing deliveries to `engine` and `herald listen` sessions to
    /// `hub`; a listener disconnected for longer than `listener_grace` is ended. The events it
    /// emits are counted in `metrics`.
    pub fn new(
        store: SharedStore,
        engine: Arc<dyn Deliverer>,
        hub: Arc<ListenerHub>,
        listener_grace: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Outbox(Arc::new(Parts {
            store,
            engine,
            hub,
            listener_grace,
            metrics,
        }))
    }

    /// Makes a change to a video; returns the video after it (for a deletion, as it was).
    pub async fn change_video(&self, actor: Actor, change: VideoChange) -> Result<Video> {
        self.commit(actor, move |store, actor, terms| async move {
            let (actor, terms) = (&actor, &terms);
            match &change {
                VideoChange::Create(new) => store.create_video(actor, terms, new).await,
                VideoChange::Publish(id) => store.publish_video(actor, terms, *id).await,
                VideoChange::Update(id, patch) => {
                    store.update_video(actor, terms, *id, patch).await
                }
                VideoChange::Delete(id) => store.delete_video(actor, terms, *id).await,
            }
        })
        .await
    }

    /// Makes a change to a collection; returns the collection after it (for a deletion, as it
    /// was).
    pub async fn change_collection(
        &self,
        actor: Actor,
        change: CollectionChange,
    ) -> Result<Collection> {
        self.commit(actor, move |store, actor, terms| async move {
            let (actor, terms) = (&actor, &terms);
            match &change {
                CollectionChange::Create(new) => store.create_collection(actor, terms, new).await,
                CollectionChange::Update(id, patch) => {
                    store.update_collection(actor, terms, *id, patch).await
                }
                CollectionChange::Delete(id) => store.delete_collection(actor, terms, *id).await,
            }
        })
        .await
    }

    /// Writes a content change with `write` under the engine's current terms, then hands the
    /// engine what it claimed and wakes it for what it queued, all in one detached task.
    async fn commit<T, W, F>(&self, actor: Actor, write: W) -> Result<T>
    where
        T: Send + 'static,
        W: FnOnce(SharedStore, Actor, HandOff) -> F + Send + 'static,
        F: Future<Output = Result<Changed<T>, StoreError>> + Send + 'static,
    {
        let parts = self.0.clone();
        detached(async move {
            let terms = parts.engine.hand_off_terms();
            let changed = write(parts.store.clone(), actor, terms).await?;
            if let Some(event) = changed.event {
                parts.metrics.event(event);
            }
            parts
                .engine
                .hand_over(changed.claimed, changed.claimed_until);
            parts.engine.wake(&changed.enqueued);
            Ok(changed.value)
        })
        .await
    }

    /// Sends a `ping` event to the webhook now (enabled or not); returns the delivery with its
    /// attempt recorded.
    pub async fn ping(&self, actor: Actor, webhook: WebhookId) -> Result<Delivery> {
        let parts = self.0.clone();
        detached(async move {
            let now = crate::domain::time::now_ms();
            let until = parts.engine.lease_until(now);
            let claim = parts.store.claim_ping(&actor, webhook, now, until).await?;
            parts.metrics.event(EventName::Ping);
            parts.attempt_now(actor.channel.id, claim).await
        })
        .await
    }

    /// Sends a delivery of the channel again now, whatever its status; returns it with the new
    /// attempt recorded.
    pub async fn redeliver(&self, channel: ChannelId, delivery: DeliveryId) -> Result<Delivery> {
        let parts = self.0.clone();
        detached(async move {
            let until = parts.engine.lease_until(crate::domain::time::now_ms());
            let claim = parts.store.claim_delivery(channel, delivery, until).await?;
            parts.attempt_now(channel, claim).await
        })
        .await
    }
}

impl Outbox {
    /// Until when this process holds back the deliveries of a webhook whose receiver keeps
    /// failing (its circuit breaker); `None` when it does not.
    pub fn paused_until(&self, webhook: WebhookId) -> Option<i64> {
        let until = self.0.engine.paused_until(webhook)?;
        (until > crate::domain::time::now_ms()).then_some(until)
    }

    /// One attempt's time limit.
    pub fn attempt_timeout(&self) -> std::time::Duration {
        self.0.engine.attempt_timeout()
    }
}

impl Parts {
    /// Attempts a claimed delivery now; returns the delivery as it is afterwards.
    async fn attempt_now(&self, channel: ChannelId, claim: Claimed) -> Result<Delivery> {
        let id = claim.delivery_id;
        self.engine.attempt_now(claim).await?;
        Ok(self.store.delivery(channel, id).await?)
    }
}

/// Runs `work` as a task of its own and waits for it: the caller's future may be dropped (a
/// request whose client hung up), the work still runs to its end, so a commit is never cut
/// off from the hand-over that follows it. A panic in `work` goes on in the caller.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::Interrupted),
        },
    }
}
