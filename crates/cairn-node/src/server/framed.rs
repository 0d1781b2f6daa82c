//! `tcp://`: cairn's frames over TLS 1.3, driven around the protocol
//! core's [`ServerConnection`].
//!
//! A connection does the TLS handshake and the version hello, then hands
//! the stream to a [`ServerConnection`], which decides everything the
//! protocol says (what to read next, when to hold off, what to answer, the
//! keep-alives and the limits; see [`cairn_net::conn`]). This file only
//! moves bytes, time and work:
//!
//! - the **reader loop** reads into the buffers the connection lends (a
//!   request body straight into its own buffer, which goes to the store
//!   as it is), reserves room in the node's body memory budget for each
//!   frame the connection names, runs a login inline (the connection reads
//!   nothing until it is answered), spawns a task per other request (at
//!   most [`MAX_IN_FLIGHT`] at once: the connection hands out no more),
//!   and sleeps until the connection's next deadline;
//! - each **request task** runs its request on the [`Node`](crate::Node)
//!   and hands the answer back;
//! - a **writer task** writes the answers in the order they finish, each
//!   with its request's stream id, and drops a peer that does not read
//!   one within the request limit.
//!
//! A frame that is too large or malformed is answered with an error on its
//! stream and the connection is closed; other connections are unaffected.
//! At shutdown the connection finishes the frame it is reading, then stops
//! reading; requests started are answered before it closes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cairn_net::conn::{RecvBuffer, ServerConfig, ServerConnection, ServerEvent};
use cairn_net::deadline::{Deadline, now};
use cairn_net::frame;
use cairn_net::protocol::{Request, Response, VERSIONS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tracing::debug;

use super::Shared;
use crate::service::Session;

/// Most requests one connection may have running at once; further frames
/// are not read until one finishes.
pub const MAX_IN_FLIGHT: usize = 32;

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Some((tcp, peer, permit)) = shared.accept(&listener, "tcp://").await {
        let (shared, acceptor) = (shared.clone(), acceptor.clone());
        shared.tracker.clone().spawn(async move {
            if let Err(e) = connection(tcp, peer, &shared, &acceptor, permit).await {
                debug!(%peer, "tcp:// connection ended: {e}");
            }
        });
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("handshake: {0}")]
    Hello(#[from] frame::HandshakeError),
    #[error("{0} timed out")]
    Timeout(&'static str),
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    acceptor: &tokio_rustls::TlsAcceptor,
    _permit: OwnedSemaphorePermit,
) -> Result<(), ConnectionError> {
    let _ = tcp.set_nodelay(true);
    let deadline = shared.request_timeout;
    let mut stream = tokio::time::timeout(deadline, acceptor.accept(tcp))
        .await
        .map_err(|_| ConnectionError::Timeout("TLS handshake"))?
        .map_err(ConnectionError::Tls)?;
    let version = tokio::time::timeout(deadline, frame::server_hello(&mut stream, VERSIONS))
        .await
        .map_err(|_| ConnectionError::Timeout("hello"))??;
    let (read, write) = tokio::io::split(stream);
    serve(read, write, peer, shared, version).await;
    Ok(())
}

/// A connection's state, shared by its reader loop, its request tasks and
/// its writer.
struct Driven {
    connection: Mutex<ServerConnection<OwnedSemaphorePermit>>,
    /// Answers were queued, or the connection finished.
    wake_writer: Notify,
    /// A request slot freed, or writing failed.
    wake_reader: Notify,
}

impl Driven {
    fn lock(&self) -> MutexGuard<'_, ServerConnection<OwnedSemaphorePermit>> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the answer to the request on `stream` to the connection.
    fn answer(&self, stream: u32, response: &Response, body: Bytes) {
        self.lock().send_answer(stream, response, body, now());
        self.wake_writer.notify_one();
        self.wake_reader.notify_one();
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What woke the reader loop.
enum Woke {
    Read(std::io::Result<usize>),
    Room(OwnedSemaphorePermit),
    Login(Session, u32, Response, Bytes),
    Timer,
    Shutdown,
    Nudged,
}

/// Reads requests and answers them until the peer leaves, a limit is hit,
/// or the node shuts down; then finishes the requests in flight.
async fn serve<R, W>(read: R, write: W, peer: SocketAddr, shared: &Arc<Shared>, version: u8)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = ServerConfig {
        max_in_flight: MAX_IN_FLIGHT,
        ..ServerConfig::new(
            version,
            *shared.node.limits(),
            shared.idle_timeout,
            shared.request_timeout,
        )
    };
    let driven = Arc::new(Driven {
        connection: Mutex::new(ServerConnection::new(config, now())),
        wake_writer: Notify::new(),
        wake_reader: Notify::new(),
    });
    let writer = tokio::spawn(write_answers(write, driven.clone(), shared.request_timeout));
    let node = shared.node.clone();
    let mut read = read;
    let mut session = Some(Session::new(peer.ip()));
    let mut login: Option<Boxed<'static, (Session, u32, Response, Bytes)>> = None;
    let mut room: Option<Boxed<'_, OwnedSemaphorePermit>> = None;
    let mut tasks = JoinSet::new();
    let mut shutdown_seen = false;
    let mut timer = Deadline::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let (events, mut buffer, room_len, deadline, ended) = {
            let mut connection = driven.lock();
            let events: Vec<_> = std::iter::from_fn(|| connection.poll_event()).collect();
            (
                events,
                connection.recv_buffer(),
                connection.poll_room(),
                connection.poll_timeout(),
                connection.ended().is_some(),
            )
        };
        for ServerEvent::Request {
            stream,
            request,
            body,
            room,
        } in events
        {
            if matches!(request, Request::Login { .. }) {
                // A throttled login can take seconds; the connection reads
                // nothing meanwhile.
                let mut login_session = session.take().expect("one login at a time");
                let node = node.clone();
                login = Some(Box::pin(async move {
                    let (response, body) = node.handle(&mut login_session, request, body).await;
                    drop(room);
                    (login_session, stream, response, body)
                }));
                continue;
            }
            let mut session = session.clone().expect("no request runs beside a login");
            let (node, driven) = (node.clone(), driven.clone());
            tasks.spawn(async move {
                let (response, body) = node.handle(&mut session, request, body).await;
                drop(room);
                driven.answer(stream, &response, body);
            });
        }
        if ended && login.is_none() {
            if let Some(buffer) = buffer {
                driven.lock().handle_recv(buffer, now());
            }
            if let Some(why) = driven.lock().ended() {
                debug!(%peer, "tcp:// connection stops reading: {why}");
            }
            break;
        }
        if let Some(len) = room_len
            && room.is_none()
        {
            room = Some(Box::pin(shared.body_room(len)));
        }
        timer.set(deadline);
        let woke = tokio::select! {
            biased;
            read = read_into(&mut read, buffer.as_mut()) => Woke::Read(read),
            permit = pending_or(room.as_mut()) => Woke::Room(permit),
            (session, stream, response, body) = pending_or(login.as_mut()) => {
                Woke::Login(session, stream, response, body)
            }
            () = timer.reached() => Woke::Timer,
            () = shared.shutdown.cancelled(), if !shutdown_seen => Woke::Shutdown,
            () = driven.wake_reader.notified() => Woke::Nudged,
        };
        let mut connection = driven.lock();
        let now = now();
        if let Some(buffer) = buffer {
            connection.handle_recv(buffer, now);
        }
        match woke {
            Woke::Read(Ok(0)) => connection.handle_recv_end(now),
            Woke::Read(Err(e)) => connection.handle_recv_error(e, now),
            Woke::Read(Ok(_)) | Woke::Nudged => {}
            Woke::Room(permit) => {
                room = None;
                connection.grant_room(permit, now);
            }
            Woke::Login(back, stream, response, body) => {
                login = None;
                session = Some(back);
                connection.send_answer(stream, &response, body, now);
            }
            Woke::Timer => connection.handle_timeout(now),
            Woke::Shutdown => {
                shutdown_seen = true;
                connection.shutdown(now);
            }
        }
        let transmit = connection.has_transmit();
        drop(connection);
        if transmit {
            driven.wake_writer.notify_one();
        }
    }
    // Requests already started are finished and answered.
    while tasks.join_next().await.is_some() {}
    driven.wake_writer.notify_one();
    let _ = writer.await;
}

/// Reads into `buffer`, at most its limit; never completes without one.
async fn read_into<R: AsyncRead + Unpin>(
    read: &mut R,
    buffer: Option<&mut RecvBuffer>,
) -> std::io::Result<usize> {
    match buffer {
        Some(buffer) => {
            read.take(buffer.limit as u64)
                .read_buf(&mut buffer.bytes)
                .await
        }
        None => std::future::pending().await,
    }
}

/// Awaits `future` if there is one; never completes otherwise.
async fn pending_or<F: Future + Unpin>(future: Option<&mut F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Writes answers as the connection queues them, flushing when none is
/// left; a peer that does not read one within the request limit is
/// dropped. Ends once the connection is finished.
async fn write_answers<W: AsyncWrite + Unpin>(write: W, driven: Arc<Driven>, deadline: Duration) {
    let mut write = BufWriter::with_capacity(64 * 1024, write);
    loop {
        let (frame, finished) = {
            let mut connection = driven.lock();
            (connection.poll_transmit(), connection.is_finished())
        };
        let Some([head, body]) = frame else {
            if finished {
                break;
            }
            driven.wake_writer.notified().await;
            continue;
        };
        let sent = tokio::time::timeout(deadline, async {
            write.write_all(&head).await?;
            if !body.is_empty() {
                write.write_all(&body).await?;
            }
            if !driven.lock().has_transmit() {
                write.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        let failed = match sent {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer did not read an answer in time",
            ),
        };
        driven.lock().handle_send_error(failed);
        driven.wake_reader.notify_one();
        return;
    }
    let _ = tokio::time::timeout(deadline, async {
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    //! The driver around the node's connection state machine, over an
    //! in-memory pipe on tokio's paused clock: the keep-alives of a node
    //! holding off reading come from the reader loop's timer while it waits
    //! for room in the body budget (the machine's own tests check the
    //! rules; `crates/cairn-client/tests/liveness.rs` the same case between
    //! real processes).

    use cairn_core::Id;
    use cairn_net::frame::{read_frame, write_frame};
    use cairn_net::identity::NodeIdentity;
    use cairn_net::protocol::{ErrorCode, Limits};
    use tokio::io::DuplexStream;
    use tokio::sync::Semaphore;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::{Node, NodeConfig};

    /// What a node with `budget_kib` KiB of body memory shares.
    fn shared(dir: &std::path::Path, budget_kib: u32) -> Arc<Shared> {
        let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
        let store = cairn_store::Store::open(dir, cairn_store::StoreOptions::default()).unwrap();
        Arc::new(Shared {
            node: Arc::new(Node::new(store, identity.id(), NodeConfig::default())),
            connections: Arc::new(Semaphore::new(16)),
            body_budget: Arc::new(Semaphore::new(budget_kib as usize)),
            body_budget_total: budget_kib,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        })
    }

    /// Serves one connection whose hello chose `version`; returns the
    /// client's end of the pipe.
    fn connect(shared: &Arc<Shared>, version: u8) -> DuplexStream {
        let (client, node) = tokio::io::duplex(1 << 20);
        let (read, write) = tokio::io::split(node);
        let shared = shared.clone();
        tokio::spawn(async move {
            let peer = "127.0.0.1:1".parse().unwrap();
            serve(read, write, peer, &shared, version).await;
        });
        client
    }

    async fn send(stream: &mut DuplexStream, id: u32, request: &Request) {
        write_frame(stream, id, &frame::encode(request), b"")
            .await
            .unwrap();
    }

    /// The frames `stream` receives within `wait`.
    async fn frames_within(stream: &mut DuplexStream, wait: Duration) -> Vec<(u32, Response)> {
        let until = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        while let Ok(read) =
            tokio::time::timeout_at(until, read_frame(stream, &Limits::default())).await
        {
            let frame = read.unwrap().expect("the node closed the connection");
            frames.push((frame.stream, frame::decode(&frame.message).unwrap()));
        }
        frames
    }

    /// A request waiting for room in the body budget, held by an upload
    /// whose body does not come: its connection gets a keep-alive every
    /// 250 ms (a version 1 connection, nothing), and its answer once the
    /// upload gives the room back.
    #[tokio::test(start_paused = true)]
    async fn a_node_short_of_memory_sends_keepalives_while_a_request_waits() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path(), 1024);
        let mut uploader = connect(&shared, 2);
        // A 1 MiB frame: its length takes the whole budget; no more comes.
        uploader
            .write_all(&(1u32 << 20).to_le_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(shared.body_budget.available_permits(), 0);

        let mut waiting = connect(&shared, 2);
        let mut old = connect(&shared, 1);
        let id = Id::of(b"not stored");
        send(&mut waiting, 7, &Request::GetShard { id }).await;
        send(&mut old, 8, &Request::GetShard { id }).await;
        let frames = frames_within(&mut waiting, Duration::from_secs(2)).await;
        assert!((7..=9).contains(&frames.len()), "{frames:?}");
        assert!(
            frames.iter().all(|f| *f == (0, Response::Pong)),
            "{frames:?}"
        );
        assert!(
            frames_within(&mut old, Duration::from_secs(2))
                .await
                .is_empty(),
            "a version 1 client got keep-alives"
        );

        // The upload's connection goes: its room comes back.
        drop(uploader);
        for (stream, id) in [(&mut waiting, 7), (&mut old, 8)] {
            let frames = frames_within(stream, Duration::from_secs(1)).await;
            let answer = frames.iter().find(|f| f.0 == id).expect("answered");
            assert!(
                matches!(&answer.1, Response::Error(body) if body.code == ErrorCode::NotFound),
                "{answer:?}"
            );
        }
    }
}
