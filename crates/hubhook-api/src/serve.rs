//! The HTTP listener: accepts connections, bounds them, and sheds what it cannot hold.
//!
//! `axum::serve` has no header-read timeout and no connection limit, so a stranger who opens
//! connections and sends nothing can hold file descriptors until the process runs out of
//! them, and then the database and the outbound deliveries fail too. This loop keeps the
//! server answering under that attack:
//!
//! - **Header-read timeout.** A connection must deliver a complete request head within
//!   [`ServeLimits::header_read_timeout`], whether it is new or waiting on keep-alive for its
//!   next request; hyper closes it otherwise. The same bound is the idle timeout.
//! - **A bound on connections.** At most [`ServeLimits::max_connections`] are held, set below
//!   the process's open-files limit so that the store and the outbound HTTP clients always
//!   have descriptors left.
//! - **Eviction before shedding.** When the bound is reached, the connection that has been
//!   waiting for a request head the longest (no handler running on it) is closed to make room:
//!   a legitimate client that connects during an attack of idle connections is served, and an
//!   attacker's connections last only until newer ones push them out. Only when every held
//!   connection is running a handler is the newcomer shed: it gets `503` with `Retry-After`
//!   and is closed at once, so it costs a descriptor for microseconds.
//!
//! - **A body is not a handler yet.** A connection counts as busy from when its request's body
//!   has arrived (or was dropped unread) until its handler has answered ([`Arriving`]); while
//!   a body trickles in, the connection can be evicted like an idle one. Each body also has
//!   a total time to arrive (`crate::body::read_body`).
//! - **A bounded buffer.** A request head must fit in hyper's buffer ([`MAX_HEAD`]).
//!
//! Shutdown: the loop stops accepting, asks every connection to finish its request in flight
//! and close, and gives them [`ServeLimits::shutdown_grace`] before dropping what is left.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt as _};

/// How much the listener holds, and for how long.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Connections held at once.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head (also the keep-alive idle time).
    pub header_read_timeout: Duration,
    /// Time connections get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) {
    let connections = Connections::new(limits.max_connections);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                // moment rather than spin; held connections end by their timeouts.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match connections.admit() {
            Some(slot) => {
                let app = app.clone();
                let limits = limits.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(serve_connection(stream, peer, app, slot, limits, shutdown));
            }
            None => {
                tasks.spawn(shed(stream));
            }
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open at shutdown were closed");
        tasks.abort_all();
    }
}

/// One connection, until it ends, is evicted, or the server shuts down.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Slot,
    limits: ServeLimits,
    shutdown: CancellationToken,
) {
    let evicted = slot.evicted.clone();
    let slot = Arc::new(slot);
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        // Busy, so not evicted, from when the request's body has arrived (or was dropped
        // unread, before the handler's own work) until the handler has answered.
        let busy: BusyCell = Arc::default();
        let (parts, body) = request.into_parts();
        let arriving = Arriving {
            body,
            turn: Some((slot.clone(), busy.clone())),
        };
        let request = Request::from_parts(parts, axum::body::Body::new(arriving));
        let mut app = app.clone();
        async move {
            let response = app.as_service().ready().await?.call(request).await;
            drop(lock(&busy).take());
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(err) = ended {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        }
        // Dropping the connection closes its socket; nothing was being handled on it.
        _ = evicted.notified() => {
            tracing::debug!(%peer, "idle connection evicted to make room");
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// hyper's read buffer limit: a request head it cannot hold is refused (`431`), and body
/// chunks are read through it. The limit is checked after each read, so a head that arrives
/// in one piece may reach about twice this (measured: 114 KB at a 64 KiB limit): a connection's
/// buffer stays under 64 KiB. hyper's default, about 400 KB, let 4,000 connections each
/// holding an unfinished 380 KB head take 1.6 GB; at this size 4,096 take at most 256 MB, and
/// heads of tens of KB (long cookies, proxies' headers) still fit.
const MAX_HEAD: usize = 32 * 1024;

/// A request body that marks its connection busy ([`Slot::busy`]) once it has arrived whole,
/// or is dropped (a handler that takes no body drops it before its own work begins). Until
/// then the connection can be evicted like an idle one: a stranger who starts bodies and
/// sends them a byte at a time no longer holds slots that newcomers cannot take (before, 4,300
/// such connections had every other client answered `503` for as long as they trickled).
/// Evicting one cancels only the reading of its body, before anything was done with it.
struct Arriving {
    body: hyper::body::Incoming,
    /// Taken at arrival: the slot to mark, and where the mark is kept until the handler ends.
    turn: Option<(Arc<Slot>, BusyCell)>,
}

/// Where a request's [`Busy`] mark is kept from its body's arrival until its handler's end.
type BusyCell = Arc<Mutex<Option<Busy>>>;

impl Arriving {
    fn arrived(&mut self) {
        if let Some((slot, busy)) = self.turn.take() {
            *lock(&busy) = Some(slot.busy());
        }
    }
}

impl hyper::body::Body for Arriving {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(frame) = &polled
            && (frame.is_none() || self.body.is_end_stream())
        {
            self.arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.arrived();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain bookkeeping; a panic while holding it leaves nothing half-done to fear.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The answer to a connection there is no room for: 503 and close, written with a short
/// timeout so that a client that does not read cannot hold the task.
async fn shed(mut stream: TcpStream) {
    const BODY: &str =
        r#"{"message":"the server is at its connection limit; retry shortly","requestId":"shed"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// The connections held, and which of them are idle (no handler running), oldest idle first.
#[derive(Clone)]
struct Connections {
    inner: Arc<Mutex<Registry>>,
}

struct Registry {
    max: usize,
    next_id: u64,
    held: HashMap<u64, Held>,
    /// Idle connections by (idle since, id): the first is the one to evict.
    idle: BTreeSet<(Instant, u64)>,
}

struct Held {
    busy: usize,
    idle_since: Instant,
    evict: Arc<Notify>,
}

/// A held connection's place in the registry; freed on drop.
struct Slot {
    id: u64,
    connections: Connections,
    evicted: Arc<Notify>,
}

/// Marks the connection busy while a handler runs.
struct Busy {
    id: u64,
    connections: Connections,
}

impl Connections {
    fn new(max: usize) -> Connections {
        Connections {
            inner: Arc::new(Mutex::new(Registry {
                max: max.max(1),
                next_id: 0,
                held: HashMap::new(),
                idle: BTreeSet::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner)
    }

    /// A slot for a new connection: a free one, or one made by evicting the longest-idle
    /// connection. `None` when every held connection is busy (shed the newcomer).
    fn admit(&self) -> Option<Slot> {
        let mut registry = self.lock();
        if registry.held.len() >= registry.max {
            let (since, victim) = registry.idle.pop_first()?;
            if let Some(held) = registry.held.remove(&victim) {
                held.evict.notify_one();
            }
            tracing::debug!(idle_for = ?since.elapsed(), "evicting the longest-idle connection");
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let now = Instant::now();
        let evict = Arc::new(Notify::new());
        registry.held.insert(
            id,
            Held {
                busy: 0,
                idle_since: now,
                evict: evict.clone(),
            },
        );
        registry.idle.insert((now, id));
        Some(Slot {
            id,
            connections: self.clone(),
            evicted: evict,
        })
    }
}

impl Slot {
    fn busy(&self) -> Busy {
        let mut registry = self.connections.lock();
        if let Some(held) = registry.held.get_mut(&self.id) {
            held.busy += 1;
            let key = (held.idle_since, self.id);
            registry.idle.remove(&key);
        }
        Busy {
            id: self.id,
            connections: self.connections.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut registry = self.connections.lock();
        let now = Instant::now();
        if let Some(held) = registry.held.get_mut(&self.id) {
            held.busy = held.busy.saturating_sub(1);
            if held.busy == 0 {
                held.idle_since = now;
                registry.idle.insert((now, self.id));
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut registry = self.connections.lock();
        if let Some(held) = registry.held.remove(&self.id) {
            registry.idle.remove(&(held.idle_since, self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// A server on a random port whose only route waits until `release` is notified.
    async fn slow_server(max_connections: usize) -> (SocketAddr, Arc<Notify>, CancellationToken) {
        let release = Arc::new(Notify::new());
        let waiting = release.clone();
        let app = Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let waiting = waiting.clone();
                    async move {
                        waiting.notified().await;
                        "done"
                    }
                }),
            )
            .route(
                "/upload",
                axum::routing::post(
                    |body: axum::body::Bytes| async move { body.len().to_string() },
                ),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let limits = ServeLimits {
            max_connections,
            ..ServeLimits::default()
        };
        tokio::spawn(serve(listener, app, limits, shutdown.clone()));
        (addr, release, shutdown)
    }

    async fn send(addr: SocketAddr, request: &str) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream
    }

    async fn read_all(stream: &mut TcpStream) -> String {
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
            .await
            .expect("the server closed the connection")
            .unwrap();
        text
    }

    #[tokio::test]
    async fn a_newcomer_is_shed_with_503_when_every_connection_is_busy() {
        let (addr, release, shutdown) = slow_server(2).await;
        let request = "GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        let mut busy = vec![send(addr, request).await, send(addr, request).await];
        // Let both requests reach their handler.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut shed = send(addr, request).await;
        let answer = read_all(&mut shed).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(answer.contains(r#""message""#), "{answer}");
        release.notify_waiters();
        for stream in &mut busy {
            let answer = read_all(stream).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        shutdown.cancel();
    }

    /// A newcomer's request, let through `/slow` at once: served (200), whatever holds the
    /// other slots.
    async fn served_after(addr: SocketAddr, release: &Notify) {
        release.notify_one();
        let mut served = send(
            addr,
            "GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        let answer = read_all(&mut served).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn idle_connections_make_room_for_a_request() {
        let (addr, release, shutdown) = slow_server(3).await;
        // Three connections that never send a whole request fill every slot.
        let mut idle = Vec::new();
        for partial in ["", "GET /slow HTTP/1.1\r\n", "GET /sl"] {
            idle.push(send(addr, partial).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        served_after(addr, &release).await;
        // The oldest idle connection was closed to make room.
        assert_eq!(read_all(&mut idle[0]).await, "");
        shutdown.cancel();
    }

    /// Connections whose request bodies are still arriving can be evicted like idle ones: a
    /// stranger trickling bodies cannot fill every slot. Fails if a connection counts as busy
    /// from its request head on (the newcomer is then shed with 503).
    #[tokio::test]
    async fn bodies_still_arriving_make_room_for_a_request() {
        let (addr, release, shutdown) = slow_server(2).await;
        let started = "POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nabc";
        let mut trickling = [send(addr, started).await, send(addr, started).await];
        tokio::time::sleep(Duration::from_millis(200)).await;
        served_after(addr, &release).await;
        assert_eq!(
            read_all(&mut trickling[0]).await,
            "",
            "the oldest was evicted"
        );
        // The other one's body can still arrive whole and be answered.
        trickling[1].write_all(&[b'x'; 997]).await.unwrap();
        let answer = read_all_of_one(&mut trickling[1]).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("1000"),
            "{answer}"
        );
        shutdown.cancel();
    }

    /// One answer on a kept-alive connection: its head and its `content-length` body.
    async fn read_all_of_one(stream: &mut TcpStream) -> String {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        let read = async {
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                text.extend_from_slice(&buf[..n]);
                let so_far = String::from_utf8_lossy(&text).to_string();
                if let Some((head, body)) = so_far.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok());
                    if n == 0 || length.is_some_and(|length| body.len() >= length) {
                        return so_far;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an answer")
    }

    #[test]
    fn evicts_the_longest_idle_and_sheds_when_all_are_busy() {
        let connections = Connections::new(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        // Full: the third evicts the first (idle the longest).
        let third = connections.admit().unwrap();
        assert!(!connections.lock().held.contains_key(&first.id));
        assert!(connections.lock().held.contains_key(&second.id));
        drop(first);
        // Both held connections busy: nothing to evict, the newcomer is shed.
        let busy_second = second.busy();
        let busy_third = third.busy();
        assert!(connections.admit().is_none());
        // One becomes idle again: it can be evicted.
        drop(busy_second);
        let fourth = connections.admit().unwrap();
        assert!(!connections.lock().held.contains_key(&second.id));
        drop(busy_third);
        drop((second, third, fourth));
        let registry = connections.lock();
        assert!(registry.held.is_empty() && registry.idle.is_empty());
    }
}
