//! Webhook secrets at rest: sealed (see [`crate::domain::crypto`]) as they are written, opened
//! as they are read, and the database's record of which key they are sealed under.
//!
//! The store is given its keys once, after connecting ([`Store::unlock`](super::Store::unlock));
//! until then, nothing that reads or writes secrets works. A webhook's secrets are opened when
//! the webhook or a claim of its delivery is loaded, and the opened list is kept, by webhook,
//! with the stored value it came from: opening costs microseconds (2.8 µs of CPU for two
//! secrets here, see `docs/operations.md#secrets-at-rest`), where a delivery's whole budget in
//! a fan-out is about 60 µs, so each webhook's secrets are opened once per change of them, not
//! once per delivery. Any change of a webhook's secrets stores a new value (a fresh nonce each
//! time), so a kept list is never stale.

use super::backend::{Backend, Begin, Commit, Value};
use super::rows::{corrupt, secrets};
use super::{Result, SqlStore, StoreError};
use crate::domain::crypto::{KeyId, Keyring, Stored};
use crate::domain::ids::WebhookId;
use sqlx::{ColumnIndex, Encode, Executor, Type};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How many webhooks a transaction of [`SqlStore::reseal_secrets`] seals again.
const RESEAL_BATCH: i64 = 500;

/// How many webhooks' opened secrets are kept; past it, the kept ones are dropped and opened
/// again as they are needed.
const KEPT: usize = 4096;

/// The store's keys, once given, and the secrets opened with them.
#[derive(Default)]
pub struct Vault {
    keys: OnceLock<Keyring>,
    /// Opened secrets by webhook, with the stored value they were opened from.
    opened: Mutex<HashMap<WebhookId, Opened>>,
}

struct Opened {
    stored: Box<str>,
    secrets: Arc<[String]>,
}

impl Vault {
    fn keys(&self) -> Result<&Keyring> {
        self.keys.get().ok_or(StoreError::Locked)
    }

    /// A webhook's secrets (in signing order) as stored: a JSON list, sealed.
    pub(super) fn seal<'a>(&self, list: impl Iterator<Item = &'a str>) -> Result<String> {
        let json = serde_json::to_string(&list.collect::<Vec<_>>())
            .map_err(|_| corrupt("webhooks.secrets", "(redacted)"))?;
        Ok(self.keys()?.seal(&json)?)
    }

    /// Webhook `webhook`'s secrets from their stored value: sealed, or plain (written before
    /// secrets were sealed, and not yet sealed since).
    pub(super) fn open(&self, webhook: WebhookId, stored: &str) -> Result<Arc<[String]>> {
        if let Some(kept) = self.kept(webhook, stored) {
            return Ok(kept);
        }
        let secrets: Arc<[String]> = match Stored::of(stored) {
            Stored::Plain => secrets(stored)?,
            Stored::Sealed { .. } => secrets(&open(self.keys()?, webhook, stored)?)?,
        }
        .into();
        if let Ok(mut opened) = self.opened.lock() {
            if opened.len() >= KEPT {
                opened.clear();
            }
            let kept = Opened {
                stored: stored.into(),
                secrets: secrets.clone(),
            };
            opened.insert(webhook, kept);
        }
        Ok(secrets)
    }

    /// The secrets kept for `webhook`, if opened from this same stored value.
    fn kept(&self, webhook: WebhookId, stored: &str) -> Option<Arc<[String]>> {
        let opened = self.opened.lock().ok()?;
        let kept = opened.get(&webhook)?;
        (*kept.stored == *stored).then(|| kept.secrets.clone())
    }
}

/// `stored` opened with `keys`, an error naming the webhook otherwise.
fn open(keys: &Keyring, webhook: WebhookId, stored: &str) -> Result<String> {
    keys.open(stored)
        .map_err(|cause| StoreError::Unopenable { webhook, cause })
}

/// A key the database has secrets sealed under, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRecord {
    pub key_id: String,
    /// The key every process must seal with.
    pub current: bool,
}

/// What [`SqlStore::reseal_secrets`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Webhooks whose secrets were stored plain, now sealed.
    pub plain: u64,
    /// Webhooks whose secrets were sealed under another key, now under the current one.
    pub other_key: u64,
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
    pub(super) fn unlock(&self, keys: Keyring) -> Result<()> {
        self.vault
            .keys
            .set(keys)
            .map_err(|_| StoreError::Corrupt("the store was given its keys twice".into()))
    }

    pub(super) async fn secret_keys(&self) -> Result<Vec<SecretKeyRecord>> {
        let rows: Vec<(String, bool)> = sqlx::query_as::<B, (String, bool)>(
            "SELECT key_id, current FROM secret_keys ORDER BY created_at, key_id",
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key_id, current)| SecretKeyRecord { key_id, current })
            .collect())
    }

    /// Makes `key` the current key, in place of `replacing` if that is the current one; when
    /// no key is current, `key` becomes it. One transaction, safe against processes doing the
    /// same at once: of two new keys, one becomes current and the other is not recorded.
    /// Returns the current key afterwards, which the caller compares with its own.
    pub(super) async fn adopt_secret_key(
        &self,
        key: &KeyId,
        replacing: Option<&KeyId>,
        now: i64,
    ) -> Result<Option<String>> {
        let mut tx = self.writes.begin().await?;
        if let Some(old) = replacing {
            sqlx::query(
                "UPDATE secret_keys SET current = FALSE WHERE key_id = $1 AND current = TRUE",
            )
            .bind(old.as_str())
            .execute(&mut *tx)
            .await?;
        }
        // Any conflict (this key recorded already, or another current one) leaves things as
        // they are; the answer below says which key is current.
        sqlx::query(
            "INSERT INTO secret_keys (key_id, current, created_at) VALUES ($1, TRUE, $2) ON CONFLICT DO NOTHING",
        )
        .bind(key.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let current =
            sqlx::query_scalar::<B, String>("SELECT key_id FROM secret_keys WHERE current = TRUE")
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(current)
    }

    /// Seals again, under the current key, every webhook's secrets that are plain or sealed
    /// under another of the keys given; a batch of webhooks per transaction. A value sealed
    /// under a key not given is an error, [`StoreError::Unopenable`], and stops it (batches
    /// before it stay done; nothing is lost, each value is only ever replaced by the same
    /// secrets sealed again). Each row is replaced only if it still holds what was read, so
    /// processes doing this at once, or a webhook changed meanwhile, are left alone.
    pub(super) async fn reseal_secrets(&self) -> Result<Resealed> {
        let keys = self.vault.keys()?;
        let prefix = format!("{}%", keys.current_prefix());
        let mut done = Resealed::default();
        let mut after = WebhookId(0);
        loop {
            let mut tx = self.writes.begin().await?;
            Self::run(&mut tx, B::SCRUB_ON).await?;
            let rows: Vec<(WebhookId, String)> = sqlx::query_as::<B, (WebhookId, String)>(
                "SELECT id, secrets FROM webhooks WHERE id > $1 AND secrets NOT LIKE $2 ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(prefix.as_str())
            .bind(RESEAL_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let Some(&(last, _)) = rows.last() else {
                Self::run(&mut tx, B::SCRUB_OFF).await?;
                tx.commit().await?;
                if done.plain > 0 && !B::SCRUB_FILES.is_empty() {
                    sqlx::query(B::SCRUB_FILES).execute(&self.writer).await?;
                }
                return Ok(done);
            };
            for (id, stored) in &rows {
                let (plain, count) = match Stored::of(stored) {
                    // Only a readable list is sealed: a malformed one is reported as it is.
                    Stored::Plain => match secrets(stored) {
                        Ok(_) => (stored.clone(), &mut done.plain),
                        Err(_) => {
                            let what = format!("webhooks.secrets of webhook {}", id.get());
                            return Err(corrupt(&what, "(redacted)"));
                        }
                    },
                    Stored::Sealed { .. } => (open(keys, *id, stored)?, &mut done.other_key),
                };
                let replaced =
                    sqlx::query("UPDATE webhooks SET secrets = $1 WHERE id = $2 AND secrets = $3")
                        .bind(keys.seal(&plain)?)
                        .bind(*id)
                        .bind(stored.as_str())
                        .execute(&mut *tx)
                        .await?;
                *count += B::rows_affected(&replaced);
            }
            Self::run(&mut tx, B::SCRUB_OFF).await?;
            tx.commit().await?;
            after = last;
        }
    }
}

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
{
    /// Runs `statement`, unless the backend has none.
    async fn run(c: &mut B::Connection, statement: &str) -> Result<()> {
        if !statement.is_empty() {
            sqlx::query(statement).execute(&mut *c).await?;
        }
        Ok(())
    }
}

impl From<crate::domain::crypto::SealError> for StoreError {
    fn from(e: crate::domain::crypto::SealError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
