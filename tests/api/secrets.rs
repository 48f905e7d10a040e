//! Webhook secrets at rest: sealed in the database, rows written in clear before sealing
//! sealed at start, `herald secrets rotate-key`, and keys that do not fit refused at start.

use crate::helpers::{
    closed_port, collection, fails, herald_on, spawn_app, start, succeeds, test_config, Process,
    TestApp, TestDb, TestReceiver, TEST_SECRET_KEY,
};
use herald::app::App;
use herald::config::{Config, SecretKeyArgs};
use herald::domain::crypto::SecretKey;
use herald_verify::Verifier;
use serde_json::json;
use std::path::Path;

/// A secret that nothing else in a test holds, so finding it means finding it stored.
fn distinctive_secret() -> String {
    format!("sealed-{}", hex::encode(rand::random::<[u8; 20]>()))
}

/// Runs `sql` on the test database, outside herald.
async fn execute(db: &TestDb, sql: &str) {
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn as sqlx::Connection>::connect(&db.url)
                .await
                .expect("connect");
            sqlx::query(sql).execute(&mut c).await.expect(sql);
            sqlx::Connection::close(c).await.expect("close");
        }};
    }
    if is_postgres(db) {
        on!(sqlx::PgConnection)
    } else {
        on!(sqlx::SqliteConnection)
    }
}

/// Every webhook's `secrets` column, as stored.
async fn stored_secrets(db: &TestDb) -> Vec<String> {
    let sql = "SELECT secrets FROM webhooks ORDER BY id";
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn as sqlx::Connection>::connect(&db.url)
                .await
                .expect("connect");
            let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut c).await.expect(sql);
            sqlx::Connection::close(c).await.expect("close");
            rows
        }};
    }
    if is_postgres(db) {
        on!(sqlx::PgConnection)
    } else {
        on!(sqlx::SqliteConnection)
    }
}

fn is_postgres(db: &TestDb) -> bool {
    db.url.starts_with("postgres")
}

/// The bytes of the SQLite database's files (the database, its WAL and shared memory), each
/// holding `needle` or not; nothing on PostgreSQL.
fn sqlite_files_holding(db: &TestDb, needle: &str) -> Vec<String> {
    let Some(path) = db.url.strip_prefix("sqlite://") else {
        return Vec::new();
    };
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| format!("{path}{suffix}"))
        .filter(|file| {
            let bytes = std::fs::read(file).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// Checks that nothing stored holds `secret`: every `secrets` value is sealed (`v1:` under
/// `key`), and, on SQLite, no byte of the database's files spells it.
async fn assert_sealed(db: &TestDb, secret: &str, key: &SecretKey) {
    let stored = stored_secrets(db).await;
    assert!(!stored.is_empty());
    let prefix = format!("v1:{}:", key.id());
    for value in &stored {
        assert!(
            value.starts_with(&prefix),
            "not sealed under {prefix}: {value}"
        );
        assert!(!value.contains(secret), "{value}");
    }
    assert_eq!(
        sqlite_files_holding(db, secret),
        Vec::<String>::new(),
        "the secret is in the database's files"
    );
}

fn test_key() -> SecretKey {
    SecretKey::parse(TEST_SECRET_KEY).expect("the tests' key")
}

/// `config` sealing with `key` (base64 or hex), with `previous` keys.
fn with_key(config: &Config, key: &str, previous: Option<&str>) -> Config {
    Config {
        secret_keys: SecretKeyArgs {
            secret_key: Some(key.to_owned()),
            secret_key_file: None,
            secret_key_previous: previous.map(str::to_owned),
        },
        ..config.clone()
    }
}

/// Makes a collection (the channel's webhook to `rx` subscribes to it) and checks that the
/// delivery arrives signed with `secret` under both schemes.
async fn signs_with(app: &TestApp, rx: &TestReceiver, secret: &str) {
    let before = rx.received().len();
    collection(app, "Signed").await;
    let got = rx.wait_for(before + 1).await;
    let last = &got[before];
    let verifier = Verifier::new([secret]);
    let headers = last.header_pairs();
    assert!(verifier.verify(&headers, &last.body).is_ok(), "{headers:?}");
    let now = chrono::Utc::now().timestamp();
    assert!(
        verifier.verify_rewatch_at(&headers, now).is_ok(),
        "{headers:?}"
    );
}

/// `app` with a webhook to `rx` for collections, signing with a secret of its own; returns
/// the webhook's ID and the secret.
async fn hook_with_secret(app: &TestApp, rx: &TestReceiver) -> (String, String) {
    let secret = distinctive_secret();
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[&secret], 0)
        .await;
    (hook, secret)
}

/// A herald, stopped, whose channel has a webhook to the receiver it returns; its database, its
/// config and the webhook's secret.
async fn stopped_with_a_hook() -> (TestDb, Config, TestReceiver, String) {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let (_, secret) = hook_with_secret(&app, &rx).await;
    let config = app.config.clone();
    (app.stop().await, config, rx, secret)
}

#[tokio::test]
async fn webhook_secrets_are_stored_sealed_and_deliveries_are_signed_with_them() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let (hook, secret) = hook_with_secret(&app, &rx).await;
    signs_with(&app, &rx, &secret).await;
    // A new secret: the update is sealed too.
    let second = distinctive_secret();
    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
            json!({ "i": { "webhookId": hook, "secrets": [second] } }),
        )
        .await;
    assert_eq!(r["data"]["updateWebhook"]["errors"], json!([]), "{r}");
    signs_with(&app, &rx, &second).await;
    // A change that leaves the secrets alone keeps them.
    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
            json!({ "i": { "webhookId": hook, "description": "kept secrets" } }),
        )
        .await;
    assert_eq!(r["data"]["updateWebhook"]["errors"], json!([]), "{r}");
    signs_with(&app, &rx, &second).await;
    let db = app.stop().await;
    assert_sealed(&db, &secret, &test_key()).await;
    assert_sealed(&db, &second, &test_key()).await;
}

#[tokio::test]
async fn a_webhook_stored_in_clear_before_any_key_is_sealed_at_start_and_still_signs() {
    // A database with a channel and a webhook whose secrets are in clear, as herald wrote them
    // before it sealed secrets: no key exists yet.
    let db = TestDb::new().await;
    succeeds(herald_on(&db.url).arg("migrate")).await;
    let rx = TestReceiver::start().await;
    execute(
        &db,
        "INSERT INTO channels (subdomain, name, created_at) VALUES ('example', 'Example', 0)",
    )
    .await;
    // Two of them, so that sealing one does not simply write over the other's bytes.
    let (secret, other) = (distinctive_secret(), distinctive_secret());
    for (s, events) in [(&secret, "COLLECTION"), (&other, "VIDEO")] {
        execute(
            &db,
            &format!(
                "INSERT INTO webhooks (channel_id, url, events, secrets, retries, enabled, created_at, updated_at, listener) \
                 SELECT id, '{}', '[\"{events}\"]', '[\"{s}\"]', 0, TRUE, 0, 0, FALSE FROM channels",
                rx.url()
            ),
        )
        .await;
    }
    let plain = |s: &str| format!("[\"{s}\"]");
    assert_eq!(
        stored_secrets(&db).await,
        vec![plain(&secret), plain(&other)]
    );

    // Two processes start at once on PostgreSQL; both seal, neither trips on the other. (SQLite
    // is for one process: there they start one after the other, and the files are checked
    // while the first runs: the clear values are gone from them at once, not at the next
    // checkpoint or when herald closes the database.)
    let config = test_config(&db.url);
    let apps = if is_postgres(&db) {
        let (first, second) = tokio::join!(App::build(config.clone()), App::build(config.clone()));
        [first.expect("first starts"), second.expect("second starts")]
    } else {
        let first = App::build(config.clone()).await.expect("first starts");
        assert_sealed(&db, &secret, &test_key()).await;
        assert_sealed(&db, &other, &test_key()).await;
        [
            first,
            App::build(config.clone()).await.expect("second starts"),
        ]
    };
    for app in apps {
        app.store.close().await;
    }
    assert_sealed(&db, &secret, &test_key()).await;
    assert_sealed(&db, &other, &test_key()).await;

    let app = start(db, config).await;
    signs_with(&app, &rx, &secret).await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_refuses_to_start_and_names_the_setting() {
    let (db, config, rx, secret) = stopped_with_a_hook().await;
    let expected = test_key().id().to_string();

    let other = SecretKey::generate();
    let wrong = with_key(&config, &other.to_base64(), None);
    let err = App::build(wrong).await.err().expect("refused").to_string();
    assert!(err.contains("HERALD_SECRET_KEY holds key"), "{err}");
    assert!(
        err.contains(&expected) && err.contains(other.id().as_str()),
        "{err}"
    );
    assert!(
        !err.contains(&other.to_base64()),
        "the key is in the message: {err}"
    );

    // The binary says so on stderr and exits; with no key given at all, it refuses to make up
    // a new one, and writes no key file.
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = |key: Option<&str>| {
        let mut cmd = herald_on(&db.url);
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("HERALD_LISTEN", "127.0.0.1:0");
        match key {
            Some(key) => cmd.env("HERALD_SECRET_KEY", key),
            None => cmd.env_remove("HERALD_SECRET_KEY"),
        };
        cmd
    };
    let stderr = fails(&mut serve(Some(&hex::encode([7u8; 32])))).await;
    assert!(stderr.contains("HERALD_SECRET_KEY holds key"), "{stderr}");
    let stderr = fails(&mut serve(None)).await;
    assert!(stderr.contains("herald has no key"), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    let key_file = default_key_file(&db, dir.path());
    assert!(!key_file.exists(), "{} was written", key_file.display());
    let stderr = fails(&mut serve(Some("not a key"))).await;
    assert!(
        stderr.contains("HERALD_SECRET_KEY: is not 32 bytes"),
        "{stderr}"
    );

    // The right key still opens everything.
    let app = start(db, config).await;
    signs_with(&app, &rx, &secret).await;
}

#[tokio::test]
async fn serve_makes_a_private_key_file_on_a_first_start_and_uses_it_again() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = || {
        let mut cmd = herald_on(&db.url);
        cmd.arg("serve")
            .current_dir(dir.path())
            .env_remove("HERALD_SECRET_KEY")
            .env("RUST_LOG", "info")
            .env("HERALD_LISTEN", format!("127.0.0.1:{}", closed_port()));
        Process::spawn_logged(&mut cmd)
    };
    let mut first = serve();
    let line = first.expect_line("sealed with a new key").await;
    first.expect_line("herald is listening").await;
    let file = default_key_file(&db, dir.path());
    let mode = std::fs::metadata(&file)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let key = std::fs::read_to_string(&file).expect("read the key");
    let key = SecretKey::parse(&key).expect("a key");
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(line.contains(&name), "the log names the file: {line}");
    assert!(!first.log().contains(&key.to_base64()), "{}", first.log());
    drop(first);

    // The next start reads the same file.
    let mut second = serve();
    second.expect_line("herald is listening").await;
    assert!(!second.log().contains("new key"), "{}", second.log());
    assert_eq!(
        SecretKey::parse(&std::fs::read_to_string(&file).expect("read"))
            .expect("a key")
            .id(),
        key.id()
    );
}

#[tokio::test]
async fn rotate_key_seals_every_secret_under_a_new_key_and_deliveries_stay_verifiable() {
    let (db, config, rx, secret) = stopped_with_a_hook().await;

    let dir = tempfile::tempdir().expect("temp dir");
    let new_file = dir.path().join("next-key");
    let new_file_setting = new_file.to_str().expect("UTF-8 path");
    let (stdout, _) = succeeds(herald_on(&db.url).args([
        "secrets",
        "rotate-key",
        "--new-key-file",
        new_file_setting,
    ]))
    .await;
    let new =
        SecretKey::parse(&std::fs::read_to_string(&new_file).expect("the new key")).expect("a key");
    assert!(
        stdout.contains(&format!("now sealed under key {}", new.id())),
        "{stdout}"
    );
    assert!(stdout.contains(new_file_setting), "{stdout}");
    assert!(stdout.contains("HERALD_SECRET_KEY_PREVIOUS"), "{stdout}");
    assert!(
        !stdout.contains(&new.to_base64()),
        "the key is in the output: {stdout}"
    );
    assert_sealed(&db, &secret, &new).await;

    // The old key alone is refused now; the new one, with the old kept for what processes
    // still running with it wrote meanwhile, works.
    let err = App::build(config.clone()).await.err().expect("refused");
    assert!(err.to_string().contains("has replaced with key"), "{err}");
    let rotated = with_key(&config, &new.to_base64(), Some(TEST_SECRET_KEY));
    let app = start(db, rotated).await;
    signs_with(&app, &rx, &secret).await;
}

/// Where `serve` keeps its key by default, run in `dir`: beside the SQLite file, or in the
/// working directory with PostgreSQL.
fn default_key_file(db: &TestDb, dir: &Path) -> std::path::PathBuf {
    match db.url.strip_prefix("sqlite://") {
        Some(path) => format!("{path}.secret-key").into(),
        None => dir.join("herald-secret-key"),
    }
}
