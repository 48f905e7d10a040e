//! The key webhook secrets are sealed with at rest: where it comes from, and the check that
//! every herald process on a database seals with the same one.
//!
//! The key is `HERALD_SECRET_KEY`, else the file `HERALD_SECRET_KEY_FILE` (by default beside the
//! SQLite file, or `herald-secret-key` in the working directory with PostgreSQL). The database
//! records the id of the key its secrets are sealed under (never the key): a process whose key
//! has another id is refused at start, naming the setting, rather than sealing with a key the
//! others do not have. When no key is given, the file is missing and the database has no key
//! yet, `serve` writes a new key to the file (mode 0600) and records it; when the database
//! already has one, it refuses to make up another.
//!
//! At start, secrets stored in clear (written before herald sealed them) and secrets sealed
//! under an older key (`HERALD_SECRET_KEY_PREVIOUS`) are sealed again under the current key.
//! [`rotate`] is `herald secrets rotate-key`: a new key becomes current and every webhook's
//! secrets are sealed under it.

use crate::config::{ConfigError, SecretKeyArgs};
use crate::domain::crypto::{KeyFormatError, KeyId, Keyring, OpenError, SecretKey};
use crate::domain::time::now_ms;
use crate::store::{Resealed, SecretKeyRecord, SharedStore, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the key cannot be used: each names the setting to change.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the secret key file {} (HERALD_SECRET_KEY_FILE): {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret key file {} (HERALD_SECRET_KEY_FILE) {reason}", path.display())]
    BadFile {
        path: PathBuf,
        reason: KeyFormatError,
    },
    #[error("cannot write a new secret key to {} (choose another file with HERALD_SECRET_KEY_FILE): {source}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("this database's webhook secrets are sealed under key {expected}, and herald has no key: HERALD_SECRET_KEY is not set and {} does not exist. Give herald that key in HERALD_SECRET_KEY or HERALD_SECRET_KEY_FILE (every herald process on a database needs the same key; a new one would not open the secrets)", path.display())]
    Missing { expected: String, path: PathBuf },
    #[error("{setting} holds key {given}, but this database's webhook secrets are sealed under key {expected}: give herald that key in {setting} (every herald process on a database needs the same key)")]
    WrongKey {
        setting: String,
        given: KeyId,
        expected: String,
    },
    #[error("{setting} holds key {given}, which this database has replaced with key {expected} (`herald secrets rotate-key`): give herald the new key in {setting}, and the old one in HERALD_SECRET_KEY_PREVIOUS until every webhook's secrets are sealed again")]
    Replaced {
        setting: String,
        given: KeyId,
        expected: String,
    },
    #[error("the secrets of webhook {webhook} are sealed under key {key}, which is neither {setting} nor among HERALD_SECRET_KEY_PREVIOUS: add that key to HERALD_SECRET_KEY_PREVIOUS")]
    UnknownKey {
        setting: String,
        webhook: i64,
        key: String,
    },
    #[error("the secrets of webhook {webhook} do not open under key {key} although it is the key they name: the stored value was altered, or the key file was ({setting})")]
    Rejected {
        setting: String,
        webhook: i64,
        key: KeyId,
    },
    #[error("{} holds the current key: give a file that does not exist (a new key is written there) or that holds the new key", .0.display())]
    SameKey(PathBuf),
    #[error("herald has not sealed any webhook secrets on this database yet, so there is no key to rotate: `herald serve` makes the first one")]
    NothingToRotate,
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Where the current key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `HERALD_SECRET_KEY`.
    Setting,
    /// A key file that existed.
    File(PathBuf),
    /// A key file written just now, with a new key.
    Generated(PathBuf),
}

impl KeySource {
    /// The setting that gave the key, as an error names it.
    fn setting(&self) -> String {
        match self {
            KeySource::Setting => "HERALD_SECRET_KEY".into(),
            KeySource::File(path) | KeySource::Generated(path) => {
                format!("HERALD_SECRET_KEY_FILE ({})", path.display())
            }
        }
    }
}

/// The outcome of [`unlock`].
#[derive(Debug, Clone)]
pub struct Unlocked {
    pub key_id: KeyId,
    pub source: KeySource,
    /// The webhooks whose secrets were sealed again at start.
    pub resealed: Resealed,
}

/// Finds the key (generating it on a database that has none), checks it against the
/// database's record, gives the store its keys, and seals again, under the current key, every
/// webhook's secrets stored in clear or under an older key. Safe when several processes start
/// at once on one PostgreSQL database: of two new keys only one is recorded, and the other
/// process is refused.
pub async fn unlock(
    store: &SharedStore,
    settings: &SecretKeyArgs,
    database_url: &str,
) -> Result<Unlocked, SecretsError> {
    settings.validate()?;
    let previous = settings.previous_keys()?;
    let records = store.secret_keys().await?;
    let recorded = current_of(&records);
    let (key, source) = match current_key(settings, database_url)? {
        Some(found) => found,
        None => {
            let path = settings.key_file_path(database_url);
            if let Some(expected) = recorded {
                return Err(SecretsError::Missing { expected, path });
            }
            match generate_key_file(&path)? {
                (key, true) => (key, KeySource::Generated(path)),
                (key, false) => (key, KeySource::File(path)),
            }
        }
    };
    if let Err(e) = check(store, &key, &previous, &records, &source).await {
        if let KeySource::Generated(path) = &source {
            // Made just now and never used: left behind, it would only mislead the next start.
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let resealed = seal_under(store, Keyring::new(&key, &previous), &source).await?;
    Ok(Unlocked {
        key_id: key.id().clone(),
        source,
        resealed,
    })
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub old: KeyId,
    pub new: KeyId,
    /// Where the new key is.
    pub path: PathBuf,
    /// Whether the new key was written just now (or read from the file, which existed).
    pub generated: bool,
    /// Where the old key came from.
    pub old_source: KeySource,
    pub resealed: Resealed,
}

/// `herald secrets rotate-key`: a new key, written to `new_key_file` (0600), unless that file
/// exists and holds a key, which is then the new key; the database records it as current; and
/// every webhook's secrets are sealed under it, a batch per transaction (the old key and
/// `HERALD_SECRET_KEY_PREVIOUS` still open what is not yet). Run again with the same file, it
/// finishes a rotation that was cut short.
pub async fn rotate(
    store: &SharedStore,
    settings: &SecretKeyArgs,
    database_url: &str,
    new_key_file: Option<&Path>,
) -> Result<Rotated, SecretsError> {
    settings.validate()?;
    let mut older = settings.previous_keys()?;
    let records = store.secret_keys().await?;
    if current_of(&records).is_none() {
        return Err(SecretsError::NothingToRotate);
    }
    let Some((old, old_source)) = current_key(settings, database_url)? else {
        return Err(SecretsError::Missing {
            expected: current_of(&records).unwrap_or_default(),
            path: settings.key_file_path(database_url),
        });
    };
    let path = match new_key_file {
        Some(path) => path.to_owned(),
        None => with_suffix(&settings.key_file_path(database_url), ".new"),
    };
    let (new, generated) = match read_key_file(&path)? {
        Some(key) => (key, false),
        None => generate_key_file(&path)?,
    };
    if new.id() == old.id() {
        return Err(SecretsError::SameKey(path));
    }
    // Resuming a rotation cut short: the database has the new key already.
    if current_of(&records).as_deref() != Some(new.id().as_str()) {
        check(store, &old, &older, &records, &old_source).await?;
        let current = store
            .adopt_secret_key(new.id(), Some(old.id()), now_ms())
            .await?;
        if current.as_deref() != Some(new.id().as_str()) {
            return Err(SecretsError::WrongKey {
                setting: format!("{}", path.display()),
                given: new.id().clone(),
                expected: current.unwrap_or_default(),
            });
        }
    }
    older.push(old.clone());
    let resealed = seal_under(store, Keyring::new(&new, &older), &old_source).await?;
    Ok(Rotated {
        old: old.id().clone(),
        new: new.id().clone(),
        path,
        generated,
        old_source,
        resealed,
    })
}

/// The id of the key recorded as current.
fn current_of(records: &[SecretKeyRecord]) -> Option<String> {
    records.iter().find(|r| r.current).map(|r| r.key_id.clone())
}

/// Compares `key` with the database's record: the current key, or the first one (recorded
/// now), or a new key replacing a current one given among `previous` (a rotation made by
/// configuration: the old key moved to `HERALD_SECRET_KEY_PREVIOUS`).
async fn check(
    store: &SharedStore,
    key: &SecretKey,
    previous: &[SecretKey],
    records: &[SecretKeyRecord],
    source: &KeySource,
) -> Result<(), SecretsError> {
    let given = key.id();
    let recorded = current_of(records);
    if recorded.as_deref() == Some(given.as_str()) {
        return Ok(());
    }
    let setting = source.setting();
    if let Some(expected) = &recorded {
        if records.iter().any(|r| r.key_id == given.as_str()) {
            return Err(SecretsError::Replaced {
                setting,
                given: given.clone(),
                expected: expected.clone(),
            });
        }
        if !previous.iter().any(|p| p.id().as_str() == expected) {
            return Err(SecretsError::WrongKey {
                setting,
                given: given.clone(),
                expected: expected.clone(),
            });
        }
    }
    let replacing = recorded.as_ref().and_then(|expected| {
        previous
            .iter()
            .map(SecretKey::id)
            .find(|id| id.as_str() == expected)
    });
    let current = store.adopt_secret_key(given, replacing, now_ms()).await?;
    if current.as_deref() == Some(given.as_str()) {
        Ok(())
    } else {
        Err(SecretsError::WrongKey {
            setting,
            given: given.clone(),
            expected: current.unwrap_or_default(),
        })
    }
}

/// Gives the store `keys`, and seals again under the current one what is stored in clear or
/// under another; errors name the setting the keys came from.
async fn seal_under(
    store: &SharedStore,
    keys: Keyring,
    source: &KeySource,
) -> Result<Resealed, SecretsError> {
    store.unlock(keys)?;
    let setting = source.setting();
    store.reseal_secrets().await.map_err(|e| named(e, &setting))
}

/// A store error from sealing again, in terms of the settings.
fn named(e: StoreError, setting: &str) -> SecretsError {
    match e {
        StoreError::Unopenable { webhook, cause } => match cause {
            OpenError::UnknownKey(key) => SecretsError::UnknownKey {
                setting: setting.to_owned(),
                webhook: webhook.get(),
                key,
            },
            OpenError::Rejected(key) => SecretsError::Rejected {
                setting: setting.to_owned(),
                webhook: webhook.get(),
                key,
            },
            OpenError::Malformed => SecretsError::Store(StoreError::Unopenable {
                webhook,
                cause: OpenError::Malformed,
            }),
        },
        e => SecretsError::Store(e),
    }
}

/// The key given: `HERALD_SECRET_KEY`, else the key file's; `None` when there is no key file.
fn current_key(
    settings: &SecretKeyArgs,
    database_url: &str,
) -> Result<Option<(SecretKey, KeySource)>, SecretsError> {
    if let Some(key) = settings.key()? {
        return Ok(Some((key, KeySource::Setting)));
    }
    let path = settings.key_file_path(database_url);
    Ok(read_key_file(&path)?.map(|key| (key, KeySource::File(path))))
}

/// The key in the file at `path`; `None` when there is no such file.
fn read_key_file(path: &Path) -> Result<Option<SecretKey>, SecretsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::parse(&text)
            .map(Some)
            .map_err(|reason| SecretsError::BadFile {
                path: path.to_owned(),
                reason,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretsError::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a new key to a new file at `path`, readable and writable by this user only (0600 on
/// Unix), and returns it with `true`. A file that appeared meanwhile (another process starting
/// beside this one) is not overwritten: its key is returned, with `false`.
fn generate_key_file(path: &Path) -> Result<(SecretKey, bool), SecretsError> {
    let key = SecretKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write_error = |source| SecretsError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return match read_key_file(path)? {
                Some(theirs) => Ok((theirs, false)),
                None => Err(write_error(e)),
            };
        }
        Err(e) => return Err(write_error(e)),
    };
    let written = writeln!(file, "{}", key.to_base64()).and_then(|()| file.sync_all());
    match written {
        Ok(()) => Ok((key, true)),
        Err(e) => {
            // Ours, and holding no whole key: a later start would find it and refuse.
            let _ = std::fs::remove_file(path);
            Err(write_error(e))
        }
    }
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("herald.db.secret-key");
        let (key, created) = generate_key_file(&path).expect("written");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read_key_file(&path).expect("read").map(|k| k.id().clone()),
            Some(key.id().clone())
        );
        // A second writer finds the file and takes its key.
        let (found, created) = generate_key_file(&path).expect("found");
        assert_eq!((found.id(), created), (key.id(), false));
        assert!(read_key_file(&dir.path().join("none"))
            .expect("no file")
            .is_none());
    }

    #[test]
    fn a_key_file_that_holds_no_key_is_named_and_never_quoted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        std::fs::write(&path, "hunter2-hunter2").expect("write");
        let err = read_key_file(&path).expect_err("not a key").to_string();
        assert!(err.contains("HERALD_SECRET_KEY_FILE"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_new_key_file_of_a_rotation_lies_beside_the_old_one() {
        assert_eq!(
            with_suffix(Path::new("/var/lib/herald/herald.db.secret-key"), ".new"),
            PathBuf::from("/var/lib/herald/herald.db.secret-key.new")
        );
    }
}
