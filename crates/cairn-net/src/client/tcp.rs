//! `tcp://`: many requests over one TLS stream, driven around a
//! [`ClientConnection`].
//!
//! The protocol state (stream ids, requests waiting, the liveness check)
//! is the [`ClientConnection`]'s; this file only moves bytes and time:
//!
//! - a request locks the connection, queues its frame, and waits for its
//!   answer on a oneshot channel; if it is given up first (a timeout drops
//!   its future), it cancels its stream, which closes the connection if
//!   the frame was partly written;
//! - a **writer task** takes the queued frames, writes them through a
//!   64 KiB buffer (bodies go straight to TLS, uncopied), flushes, and
//!   reports the flush;
//! - a **reader task** reads into the buffers the connection lends (a
//!   body straight into its own buffer), hands answers to their requests,
//!   and sleeps until the connection's next deadline, at which it runs the
//!   liveness check.
//!
//! When the connection closes, for whatever reason, every request waiting
//! fails at once with the reason, and the tasks stop (a writer stuck on a
//! node that reads nothing is aborted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use super::{ClientError, ClientOptions};
use crate::conn::{ClientConfig, ClientConnection, ClientEvent, CloseReason, RequestError};
use crate::deadline::{Deadline, now};
use crate::protocol::{Request, Response};

/// One `tcp://` connection: the state shared with its two tasks.
#[derive(Debug)]
pub(super) struct TcpConnection {
    shared: Arc<Shared>,
    /// The writer task, awaited by a polite close.
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Frames were queued, or the connection closed.
    wake_writer: Notify,
    /// The connection's deadline moved, or it closed.
    wake_reader: Notify,
    reader: OnceLock<AbortHandle>,
    writer: OnceLock<AbortHandle>,
}

#[derive(Debug)]
struct State {
    connection: ClientConnection,
    /// Where each waiting request's answer goes.
    waiters: HashMap<u32, oneshot::Sender<(Response, Bytes)>>,
}

impl State {
    /// Hands out the answers decoded; once closed, fails every request
    /// still waiting (by dropping its sender).
    fn deliver(&mut self) {
        while let Some(event) = self.connection.poll_event() {
            match event {
                ClientEvent::Answer {
                    stream,
                    response,
                    body,
                } => {
                    if let Some(waiter) = self.waiters.remove(&stream) {
                        let _ = waiter.send((response, body));
                    }
                }
            }
        }
        if self.connection.is_closed() {
            self.waiters.clear();
        }
    }

    /// Why the connection closed, for the requests it fails.
    fn why(&self) -> String {
        self.connection.close_reason().map_or_else(
            || "the node closed the connection".into(),
            ToString::to_string,
        )
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops both tasks: the connection closed other than politely.
    fn stop(&self) {
        for task in [&self.reader, &self.writer] {
            if let Some(task) = task.get() {
                task.abort();
            }
        }
    }
}

impl TcpConnection {
    /// Drives a connection over `stream`, whose hello chose `version`.
    pub(super) fn start<S>(stream: S, version: u8, options: &ClientOptions) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let connection = ClientConnection::new(
            ClientConfig {
                version,
                ping_interval: options.ping_interval,
                limits: options.limits,
            },
            now(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                connection,
                waiters: HashMap::new(),
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
            reader: OnceLock::new(),
            writer: OnceLock::new(),
        });
        let (read, write) = tokio::io::split(stream);
        let reader = tokio::spawn(read_answers(read, shared.clone()));
        let writer = tokio::spawn(write_requests(write, shared.clone()));
        let _ = shared.reader.set(reader.abort_handle());
        let _ = shared.writer.set(writer.abort_handle());
        Self {
            shared,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Whether the connection is closed.
    pub(super) fn is_closed(&self) -> bool {
        self.shared.lock().connection.is_closed()
    }

    /// Sends `request` and waits for its answer.
    pub(super) async fn call(
        &self,
        request: &Request,
        body: Bytes,
    ) -> Result<(Response, Bytes), ClientError> {
        let (tx, rx) = oneshot::channel();
        let (stream, deadline_moved) = {
            let mut state = self.shared.lock();
            let before = state.connection.poll_timeout();
            let stream = match state.connection.send_request(request, body, now()) {
                Ok(stream) => stream,
                Err(RequestError::Closed) => return Err(ClientError::Broken(state.why())),
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            };
            state.waiters.insert(stream, tx);
            (stream, state.connection.poll_timeout() != before)
        };
        self.shared.wake_writer.notify_one();
        if deadline_moved {
            self.shared.wake_reader.notify_one();
        }
        let given_up = GiveUpOnDrop {
            shared: &self.shared,
            stream: Some(stream),
        };
        let answer = rx.await;
        given_up.disarm();
        answer.map_err(|_| ClientError::Broken(self.shared.lock().why()))
    }

    /// Closes the connection politely: requests waiting fail at once, the
    /// writer stops after what it is writing and sends TLS's close.
    pub(super) async fn close(&self) {
        {
            let mut state = self.shared.lock();
            state.connection.close_by_client();
            state.deliver();
        }
        if let Some(reader) = self.shared.reader.get() {
            reader.abort();
        }
        self.shared.wake_writer.notify_one();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

impl Drop for TcpConnection {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Cancels a request whose future is dropped before its answer came (a
/// timeout): its frame is not sent if it was not yet, and the connection
/// closes if it was partly written.
struct GiveUpOnDrop<'a> {
    shared: &'a Shared,
    stream: Option<u32>,
}

impl GiveUpOnDrop<'_> {
    fn disarm(mut self) {
        self.stream = None;
    }
}

impl Drop for GiveUpOnDrop<'_> {
    fn drop(&mut self) {
        let Some(stream) = self.stream else { return };
        let mut state = self.shared.lock();
        state.waiters.remove(&stream);
        state.connection.cancel(stream);
        if state.connection.is_closed() {
            state.deliver();
            drop(state);
            self.shared.stop();
        }
    }
}

/// The reader task: reads what the node sends into the buffers the
/// connection lends, delivers answers, and runs the connection's timer.
async fn read_answers<R: AsyncRead>(read: R, shared: Arc<Shared>) {
    let mut read = std::pin::pin!(read);
    let mut timer = Deadline::new();
    loop {
        let (buffer, deadline) = {
            let mut state = shared.lock();
            (
                state.connection.recv_buffer(),
                state.connection.poll_timeout(),
            )
        };
        // A client connection reads until it is closed (it always wants
        // bytes: it never holds off, and decodes whatever it completes).
        let Some(mut buffer) = buffer else {
            debug_assert!(
                shared.lock().connection.is_closed(),
                "an open connection stopped reading"
            );
            break;
        };
        timer.set(deadline);
        enum Woke {
            Read(std::io::Result<usize>),
            Timer,
            Nudged,
        }
        let mut limited = read.as_mut().take(buffer.limit as u64);
        let woke = tokio::select! {
            // What arrived counts before a deadline that passed meanwhile.
            biased;
            read = limited.read_buf(&mut buffer.bytes) => Woke::Read(read),
            () = timer.reached() => Woke::Timer,
            () = shared.wake_reader.notified() => Woke::Nudged,
        };
        let mut state = shared.lock();
        let now = now();
        state.connection.handle_recv(buffer, now);
        match woke {
            Woke::Read(Ok(0)) => state.connection.handle_recv_end(),
            Woke::Read(Err(e)) => state.connection.handle_recv_error(e),
            Woke::Timer => state.connection.handle_timeout(now),
            Woke::Read(Ok(_)) | Woke::Nudged => {}
        }
        state.deliver();
        let (closed, transmit) = (
            state.connection.is_closed(),
            state.connection.has_transmit(),
        );
        drop(state);
        if transmit {
            shared.wake_writer.notify_one();
        }
        if closed {
            // A writer stuck on a node that reads nothing would hold the
            // socket open.
            if let Some(writer) = shared.writer.get() {
                writer.abort();
            }
            break;
        }
    }
}

/// The writer task: writes the frames the connection queues, flushes, and
/// reports it; after a polite close, sends TLS's close and ends.
async fn write_requests<W: AsyncWrite>(write: W, shared: Arc<Shared>) {
    let write = BufWriter::with_capacity(64 * 1024, write);
    let mut write = std::pin::pin!(write);
    let mut frames = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            while let Some(frame) = state.connection.poll_transmit() {
                frames.push(frame);
            }
            match state.connection.close_reason() {
                Some(CloseReason::ClosedByClient) => Some(true),
                Some(_) => Some(false),
                None => None,
            }
        };
        match closed {
            Some(true) => {
                let _ = write.shutdown().await;
                return;
            }
            Some(false) => return,
            None => {}
        }
        if frames.is_empty() {
            shared.wake_writer.notified().await;
            continue;
        }
        let written = async {
            for [head, body] in frames.drain(..) {
                write.write_all(&head).await?;
                if !body.is_empty() {
                    write.write_all(&body).await?;
                }
            }
            write.flush().await
        }
        .await;
        let mut state = shared.lock();
        let before = state.connection.poll_timeout();
        match written {
            Ok(()) => state.connection.handle_flushed(now()),
            Err(e) => state.connection.handle_send_error(e),
        }
        state.deliver();
        if state.connection.poll_timeout() != before {
            // A ping held back while writing went out: its deadline runs.
            shared.wake_reader.notify_one();
        }
        let closed = state.connection.is_closed()
            && !matches!(
                state.connection.close_reason(),
                Some(CloseReason::ClosedByClient)
            );
        drop(state);
        if closed {
            if let Some(reader) = shared.reader.get() {
                reader.abort();
            }
            return;
        }
    }
}
