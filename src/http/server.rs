//! The HTTP server: accepts connections and serves the router on each (HTTP/1.1, WebSocket
//! upgrades included), with limits that keep a slow, idle or numerous client from holding herald:
//!
//! - a request's headers must arrive within the header timeout: from when the connection
//!   opens, and on a kept-alive connection from the request's first byte;
//! - a kept-alive connection may wait idle for its next request for the idle timeout;
//! - at most `max_connections` connections are served at once. A connection past them is
//!   served in a hurry: its request's headers within a second, then `/healthz` and `/readyz`
//!   answer as usual (a health check still gets through) and anything else gets 503 at once;
//!   then the connection is closed. A client is told to come back rather than left waiting in
//!   the kernel's queue, where it would hold its own resources and herald's backlog.
//!
//! A request hyper cannot parse gets its answer with a JSON body, as every error does
//! ([`super::parse_errors`]).
//!
//! On shutdown, accepting stops, each connection finishes the request it is serving, and the
//! server returns once every connection has closed (an upgraded WebSocket has left the server
//! by then: its task is its own).

use super::parse_errors::JsonParseErrors;
use axum::Router;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// The server's limits on its clients (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The routers a connection is served: the whole API, or, past the connection limit, one that
/// answers the health endpoints and refuses the rest.
#[derive(Clone)]
pub struct Routers {
    pub api: Router,
    pub overflow: Router,
}

/// How long a connection past the limit may take to send its request's headers.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// After an accept error that is not a client's (herald is out of file descriptors), how long
/// to wait before accepting again, while connections closing give descriptors back.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves `routers` on `listener` within `limits` until `shutdown` completes, then waits for
/// the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    routers: Routers,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Connections watch `stop` close (when `shutdown` completes); the server watches `open`
    // close (when the last connection is gone).
    let (stop, stopping) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stopping);
    });
    let (open, connections) = watch::channel(());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut full = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.closed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_the_clients(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept connections; trying again shortly");
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                    _ = stop.closed() => break,
                }
            }
        };
        let slot = slots.clone().try_acquire_owned().ok();
        if full != slot.is_none() {
            full = slot.is_none();
            if full {
                tracing::warn!(
                    limit = limits.max_connections,
                    "HERALD_MAX_CONNECTIONS reached: new connections get the health endpoints \
                     only, and 503 for anything else"
                );
            } else {
                tracing::info!("below HERALD_MAX_CONNECTIONS again");
            }
        }
        let connection = Connection {
            stop: stop.clone(),
            _open: connections.clone(),
        };
        let routers = routers.clone();
        tokio::spawn(async move {
            match slot {
                Some(slot) => connection.serve(stream, routers.api, limits, slot).await,
                None => connection.overflow(stream, routers.overflow, limits).await,
            }
        });
    }
    drop(connections);
    drop(listener);
    open.closed().await;
    Ok(())
}

/// An accept error caused by one client (it went away before it was accepted): the next
/// accept is unaffected.
fn is_the_clients(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection's ties to the server.
struct Connection {
    /// Closed when the server shuts down.
    stop: watch::Sender<()>,
    /// Held while the connection is open.
    _open: watch::Receiver<()>,
}

impl Connection {
    /// Serves the API, with the header and idle timeouts, holding one of the server's slots
    /// for as long as the connection lives (a WebSocket's too, after the upgrade: the slot goes
    /// with the stream).
    async fn serve(
        self,
        stream: TcpStream,
        api: Router,
        limits: Limits,
        slot: OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(JsonParseErrors::new(Watched {
            stream,
            activity: activity.clone(),
            _slot: slot,
        }));
        let mut builder = http1::Builder::new();
        builder
            .timer(HeadTimer {
                activity: activity.clone(),
                header: limits.header_timeout,
                idle: limits.idle_timeout,
            })
            .header_read_timeout(limits.header_timeout);
        let api = TowerToHyperService::new(api);
        let service = hyper::service::service_fn(move |request| {
            activity.answered.store(true, Ordering::Relaxed);
            hyper::service::Service::call(&api, request)
        });
        let conn = builder.serve_connection(io, service).with_upgrades();
        self.run(conn).await;
    }

    /// Serves one request past the connection limit: the health endpoints, or a 503.
    async fn overflow(self, stream: TcpStream, overflow: Router, limits: Limits) {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout.min(OVERFLOW_HEADER_TIMEOUT))
            .keep_alive(false);
        let service = TowerToHyperService::new(overflow);
        let conn = builder.serve_connection(TokioIo::new(JsonParseErrors::new(stream)), service);
        self.run(conn).await;
    }

    /// Drives `conn` until it ends, asking it to finish its request and close when the
    /// server shuts down.
    async fn run<C>(self, conn: C)
    where
        C: Future<Output = hyper::Result<()>> + GracefulShutdown,
    {
        let mut conn = std::pin::pin!(conn);
        let ended = tokio::select! {
            ended = conn.as_mut() => ended,
            _ = self.stop.closed() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        // A client that hangs up, sends garbage or is too slow ends its connection; nothing
        // herald must act on.
        if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended");
        }
    }
}

/// hyper's connections that can be asked to finish their request and close.
trait GracefulShutdown {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> GracefulShutdown for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self)
    }
}

impl<I, S> GracefulShutdown for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self)
    }
}

/// What a connection has done, for its timers: when it last received bytes, and whether it
/// has had a request.
struct Activity {
    opened: Instant,
    /// Microseconds from `opened` to the last read that got bytes, plus one (0: none yet).
    last_read: AtomicU64,
    /// Whether a request's headers have arrived: later waits are between requests.
    answered: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_read: AtomicU64::new(0),
            answered: AtomicBool::new(false),
        }
    }

    fn read_now(&self) {
        let micros = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        self.last_read.store(micros + 1, Ordering::Relaxed);
    }

    /// When bytes last arrived, if that was after `since`.
    fn read_after(&self, since: Instant) -> Option<Instant> {
        let micros = self.last_read.load(Ordering::Relaxed).checked_sub(1)?;
        let at = self.opened + Duration::from_micros(micros);
        (at > since).then_some(at)
    }
}

/// A connection's stream, noting when bytes arrive, with the server's slot it holds.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read_now();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The timer of a connection's header timeout. hyper starts it whenever it waits for a
/// request's headers, with the header timeout: on a new connection, and again as soon as it
/// has answered on a kept-alive one, so on its own it would also be the idle timeout. Between
/// requests this timer instead waits the idle timeout for the next request's first byte, then
/// the header timeout from that byte.
#[derive(Clone)]
struct HeadTimer {
    activity: Arc<Activity>,
    header: Duration,
    idle: Duration,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if !self.activity.answered.load(Ordering::Relaxed) {
            return TokioTimer::new().sleep_until(deadline);
        }
        let since = Instant::now();
        let idle_until = since + self.idle;
        Box::pin(NextRequest {
            activity: self.activity.clone(),
            since,
            header: self.header,
            started: false,
            sleep: Box::pin(tokio::time::sleep_until(idle_until.into())),
        })
    }
}

/// The wait for a kept-alive connection's next request (see [`HeadTimer`]). hyper polls it
/// each time bytes arrive and the headers are not yet complete, which is when it looks for
/// the request's first byte.
struct NextRequest {
    activity: Arc<Activity>,
    since: Instant,
    header: Duration,
    /// Whether the request's first byte has been seen (its deadline is then fixed).
    started: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for NextRequest {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.started {
            if let Some(first_byte) = this.activity.read_after(this.since) {
                this.started = true;
                this.sleep.as_mut().reset((first_byte + this.header).into());
            }
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl Sleep for NextRequest {}
