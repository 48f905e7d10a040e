//! The outbox and the queue: a change is handed over even when its client hangs up, and
//! engines sharing a database share its queue without attempting a delivery twice.

use crate::helpers::{spawn_app_with, test_config, TestDb, TestReceiver, DEADLINE, SECRET_A};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use herald::app::App;
use herald::domain::content::{NewCollection, NewUser, Role};
use herald::domain::net::NetPolicy;
use herald::domain::time::now_ms;
use herald::domain::webhook::{parse_events, parse_secrets, NewWebhook, WebhookEvent, WebhookUrl};
use herald::store::{Actor, HandOff, SharedStore};
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

#[tokio::test]
async fn a_change_whose_client_hangs_up_is_delivered_at_once_not_after_its_lease() {
    // A 15 s time limit makes a 31 s lease: a delivery left claimed would wait that long.
    let app = spawn_app_with(|c| c.delivery_timeout_ms = 15_000).await;
    let rx = TestReceiver::start().await;
    app.create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    let body = json!({
        "query": "mutation { createCollection(input: {name: \"Hung up\"}) { errors { message } } }"
    })
    .to_string();
    let request = format!(
        "POST /api/graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Token token=\"{}\"\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.addr,
        app.token,
        body.len()
    );
    let mut client = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    client
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    // The client hangs up without waiting for the answer: the server drops the request.
    drop(client);
    let got = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(1))
        .await
        .expect("the delivery arrives well before the lease runs out");
    assert_eq!(got[0].json()["event"], "collection.created");
}

/// What a [`LeaseReceiver`] saw of one request: the delivery's nonce, and how long the claim on
/// the delivery still ran (ms) while it was being sent.
type Seen = (String, i64);

/// A receiver that notes, for each request, how long the claim on its delivery still runs:
/// each engine claims for its own lease, so this tells which engine sent it.
struct LeaseReceiver {
    addr: SocketAddr,
    state: Arc<LeaseState>,
}

struct LeaseState {
    db: Arc<TestDb>,
    seen: Mutex<Vec<Seen>>,
    notify: Notify,
}

impl LeaseReceiver {
    async fn start(db: Arc<TestDb>) -> LeaseReceiver {
        let state = Arc::new(LeaseState {
            db,
            seen: Mutex::default(),
            notify: Notify::new(),
        });
        let router = Router::new().fallback(note_lease).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        LeaseReceiver { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Waits until `n` requests arrived; fails at the deadline.
    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.state.notify.notified();
            let seen = self.state.seen.lock().expect("lock").clone();
            if seen.len() >= n {
                return seen;
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "got {} of {n} requests", seen.len());
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn note_lease(State(state): State<Arc<LeaseState>>, headers: HeaderMap) -> StatusCode {
    let nonce = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        nonce.len() == 40 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "a nonce is 40 hex digits: {nonce:?}"
    );
    let until = state
        .db
        .count(&format!(
            "SELECT COALESCE(MAX(claimed_until), 0) FROM deliveries WHERE nonce = '{nonce}'"
        ))
        .await;
    state
        .seen
        .lock()
        .expect("lock")
        .push((nonce, until - now_ms()));
    state.notify.notify_waiters();
    StatusCode::OK
}

/// The channel's admin, made through the store.
async fn admin(store: &SharedStore) -> Actor {
    let channel = store
        .ensure_channel("example", "Example Channel")
        .await
        .expect("channel");
    let new = NewUser {
        email: "admin@example.com".into(),
        first_name: "Example".into(),
        last_name: "Admin".into(),
        role: Role::Admin,
    };
    let user = store.ensure_user(channel.id, &new).await.expect("user");
    Actor { user, channel }
}

#[tokio::test]
async fn two_engines_on_one_database_share_its_queue_and_never_attempt_a_delivery_twice() {
    let db = Arc::new(TestDb::new().await);
    // Room for two attempts per webhook, so neither engine can take the whole queue at once;
    // leases of 7 s and of 25 s, so the receiver can tell the engines apart.
    let config = |timeout_ms: u64| herald::config::Config {
        webhook_concurrency: 2,
        max_in_flight: 8,
        delivery_timeout_ms: timeout_ms,
        ..test_config(&db.url)
    };
    let first = App::build(config(3_000)).await.expect("first engine");
    let second = App::build(config(12_000)).await.expect("second engine");
    let rx = LeaseReceiver::start(db.clone()).await;
    let store = first.store.clone();
    let actor = admin(&store).await;
    let dev = NetPolicy {
        dev: true,
        allowed: vec![],
    };
    for _ in 0..4 {
        let new = NewWebhook {
            url: WebhookUrl::parse(&rx.url(), &dev).expect("url"),
            description: None,
            events: parse_events(&[WebhookEvent::Collection]).expect("events"),
            secrets: parse_secrets(&[SECRET_A.to_owned()]).expect("secrets"),
            retries: 0,
            enabled: true,
            listener: false,
            event_types: None,
        };
        let (channel, user) = (actor.channel.id, actor.user.id);
        store
            .create_webhook(channel, user, &new)
            .await
            .expect("webhook");
    }
    // Queued, handed to neither engine: both find them in the queue and claim them from it.
    for i in 0..40 {
        let new = NewCollection {
            name: format!("C{i}"),
            description: None,
            secret: false,
            parent_id: None,
            admin_ids: Vec::new(),
            admin_group_ids: Vec::new(),
            member_ids: Vec::new(),
            member_group_ids: Vec::new(),
        };
        let changed = store
            .create_collection(&actor, &HandOff::none(), &new)
            .await
            .expect("collection");
        assert!(changed.claimed.is_empty(), "nothing was claimed");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engines = [
        tokio::spawn(first.engine.clone().run(stopped.clone())),
        tokio::spawn(second.engine.clone().run(stopped)),
    ];

    let seen = rx.wait_for(160).await;
    let nonces: HashSet<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nonces.len(), seen.len(), "a delivery was attempted twice");
    let by_second = seen.iter().filter(|(_, left)| *left > 16_000).count();
    assert!(
        (1..160).contains(&by_second),
        "the second engine sent {by_second} of 160: both engines claim from the queue"
    );

    // Engines that stop record what they sent.
    let _ = stop.send(true);
    for engine in engines {
        engine.await.expect("engine stops");
    }
    let one_attempt_each = "SELECT COUNT(*) FROM deliveries d WHERE d.status = 'SUCCEEDED' \
         AND (SELECT COUNT(*) FROM delivery_attempts a WHERE a.delivery_id = d.id) = 1";
    assert_eq!(db.count(one_attempt_each).await, 160);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM delivery_attempts").await,
        160
    );
}
