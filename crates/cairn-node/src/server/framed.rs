//! `tcp://`: cairn's frames over TLS 1.3.
//!
//! A connection does the TLS handshake and the version hello, then reads
//! frames. Each request runs as its own task (at most
//! [`MAX_IN_FLIGHT`] per connection), and a writer task sends the answers
//! back in the order they finish, each with its request's stream id. A
//! login is answered before the next frame is read, so that requests sent
//! after it act for the user.
//!
//! A frame that is too large or malformed is answered with an error on its
//! stream and the connection is closed; other connections are unaffected.
//!
//! **Liveness** (protocol version 2; the rules are in
//! [`cairn_net::protocol`]): a ping is answered by the reader itself, as
//! soon as it reads it, never as a task behind slow requests. While the
//! reader waits on purpose (for a free slot of [`MAX_IN_FLIGHT`], for room
//! in the body memory budget, or on a throttled login) it cannot read a
//! ping, and a long upload over a slow link holds a ping behind it; so a
//! keep-alive task sends an unsolicited pong on stream 0 at every
//! [`KEEPALIVE_INTERVAL`] tick that finds the reader holding off, or in the
//! middle of a request frame that grew since the last tick. A reader stuck
//! in a TLS record whose length was corrupted does neither, and the
//! client's check ends the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cairn_net::frame::{self, FrameError};
use cairn_net::protocol::{
    ErrorBody, ErrorCode, KEEPALIVE_INTERVAL, PING_VERSION, Request, Response, VERSIONS,
};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::Shared;
use crate::service::Session;

/// Most requests one connection may have running at once; further frames
/// are not read until one finishes.
pub const MAX_IN_FLIGHT: usize = 32;

type Answer = (u32, Response, Bytes);

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                warn!("accepting a tcp:// connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            warn!(%peer, "connection refused: max_connections reached");
            continue;
        };
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
    let activity = Arc::new(Activity::default());
    let read = frame::CountingReader::new(read, activity.read.clone());
    serve(
        BufReader::with_capacity(64 * 1024, read),
        write,
        peer,
        shared,
        (version >= PING_VERSION).then_some(activity),
    )
    .await;
    Ok(())
}

/// What a connection's reader does that its client cannot see from the
/// answers: bytes read, whether a request frame is being read, and waits
/// during which it holds off reading. The keep-alive task turns them into
/// pongs (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Bytes read from the connection so far.
    read: Arc<AtomicU64>,
    /// The reader is between a frame's first byte and its end.
    receiving: AtomicBool,
    /// Waits in progress during which the reader does not read.
    holding: AtomicUsize,
}

impl Activity {
    /// Counts the reader as holding off reading until the guard is dropped.
    pub(crate) fn hold(&self) -> Holding<'_> {
        self.holding.fetch_add(1, Ordering::Relaxed);
        Holding(self)
    }
}

/// A wait of the reader, from [`Activity::hold`] until dropped.
pub(crate) struct Holding<'a>(&'a Activity);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.holding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends an unsolicited pong on stream 0 at every [`KEEPALIVE_INTERVAL`]
/// tick that finds the reader holding off reading, or receiving a frame
/// that grew since the last tick. A pong that finds the answer queue full
/// is skipped: answers are on their way, which tells the client as much.
async fn keep_alive(activity: Arc<Activity>, answers: mpsc::Sender<Answer>) {
    let mut seen = activity.read.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(KEEPALIVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let read = activity.read.load(Ordering::Relaxed);
        let grew = read != seen;
        seen = read;
        let busy = activity.holding.load(Ordering::Relaxed) > 0
            || (grew && activity.receiving.load(Ordering::Relaxed));
        if busy
            && let Err(mpsc::error::TrySendError::Closed(_)) =
                answers.try_send((0, Response::Pong, Bytes::new()))
        {
            return;
        }
    }
}

/// Reads requests and answers them until the peer leaves, a limit is hit,
/// or the node shuts down; then finishes the requests in flight. With an
/// `activity` (a client of version 2), keep-alives are sent as the module
/// docs describe.
async fn serve<R, W>(
    mut read: BufReader<R>,
    write: W,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    activity: Option<Arc<Activity>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let node = shared.node.clone();
    let (answers, outbox) = mpsc::channel::<Answer>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_answers(write, outbox, shared.request_timeout));
    let keep_alive = activity
        .clone()
        .map(|activity| tokio::spawn(keep_alive(activity, answers.clone())));
    let activity = activity.as_deref();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut session = Session::new(peer.ip());

    loop {
        while tasks.try_join_next().is_some() {}
        // Wait for the first byte of the next frame: the idle limit.
        let ready = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            ready = tokio::time::timeout(shared.idle_timeout, read.fill_buf()) => ready,
        };
        match ready {
            Err(_) => {
                debug!(%peer, "closing an idle connection");
                break;
            }
            Ok(Err(_)) => break,
            Ok(Ok([])) => break,
            Ok(Ok(_)) => {}
        }
        // The whole frame must follow within the request limit.
        if let Some(activity) = activity {
            activity.receiving.store(true, Ordering::Relaxed);
        }
        let received = shared.read_request(&mut read, activity).await;
        if let Some(activity) = activity {
            activity.receiving.store(false, Ordering::Relaxed);
        }
        let (frame, budget) = match received {
            Ok(received) => received,
            Err(None) => {
                debug!(%peer, "request not received in time; closing");
                let _ = answers
                    .send(refusal(0, ErrorCode::BadRequest, "request timed out"))
                    .await;
                break;
            }
            Err(Some(e @ FrameError::TooLarge { .. })) => {
                // Answer on the frame's own stream if its id can be read.
                let stream = stream_id(&mut read).await.unwrap_or(0);
                debug!(%peer, "refusing a frame: {e}");
                let _ = answers
                    .send(refusal(stream, ErrorCode::TooLarge, &e.to_string()))
                    .await;
                break;
            }
            Err(Some(e @ FrameError::Malformed(_))) => {
                debug!(%peer, "refusing a frame: {e}");
                let _ = answers
                    .send(refusal(0, ErrorCode::BadRequest, &e.to_string()))
                    .await;
                break;
            }
            Err(Some(_)) => break,
        };
        let request = match frame::decode::<Request>(&frame.message) {
            Ok(request) => request,
            Err(e) => {
                debug!(%peer, "refusing a request: {e}");
                let _ = answers
                    .send(refusal(frame.stream, ErrorCode::BadRequest, &e.to_string()))
                    .await;
                break;
            }
        };
        if matches!(request, Request::Ping) {
            // At once, ahead of every request still running: that is what
            // a ping asks.
            drop(budget);
            if answers
                .send((frame.stream, Response::Pong, Bytes::new()))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        if matches!(request, Request::Login { .. }) {
            // A throttled login can take seconds; the reader waits for it.
            let holding = activity.map(Activity::hold);
            let (response, body) = node.handle(&mut session, request, frame.body).await;
            drop((holding, budget));
            if answers.send((frame.stream, response, body)).await.is_err() {
                break;
            }
            continue;
        }
        let holding = activity.map(Activity::hold);
        let slot = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        drop(holding);
        let (node, answers, mut session) = (node.clone(), answers.clone(), session.clone());
        tasks.spawn(async move {
            let (response, body) = node.handle(&mut session, request, frame.body).await;
            drop(budget);
            let _ = answers.send((frame.stream, response, body)).await;
            drop(slot);
        });
    }
    // Requests already started are finished and answered.
    while tasks.join_next().await.is_some() {}
    if let Some(keep_alive) = keep_alive {
        // It holds a sender: the writer ends only once it is gone.
        keep_alive.abort();
        let _ = keep_alive.await;
    }
    drop(answers);
    let _ = writer.await;
}

/// Reads the stream id that follows a frame's length field.
async fn stream_id<R: AsyncRead + Unpin>(read: &mut R) -> Option<u32> {
    let mut id = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(1), read.read_exact(&mut id))
        .await
        .ok()?
        .ok()?;
    Some(u32::from_le_bytes(id))
}

fn refusal(stream: u32, code: ErrorCode, message: &str) -> Answer {
    (
        stream,
        Response::Error(ErrorBody::new(code, message)),
        Bytes::new(),
    )
}

/// Writes answers as they come; a peer that does not read them within the
/// request limit is dropped.
async fn write_answers<W: AsyncWrite + Unpin>(
    write: W,
    mut outbox: mpsc::Receiver<Answer>,
    deadline: Duration,
) {
    let mut write = BufWriter::with_capacity(64 * 1024, write);
    while let Some((stream, response, body)) = outbox.recv().await {
        let message = frame::encode(&response);
        let sent = tokio::time::timeout(deadline, async {
            frame::write_frame(&mut write, stream, &message, &body).await?;
            if outbox.is_empty() {
                write.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
    let _ = tokio::time::timeout(deadline, async {
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    })
    .await;
}
