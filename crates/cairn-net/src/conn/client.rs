//! The client's side of a connection: requests out, answers in, and the
//! liveness check.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::frame::{self, Decoded, FrameDecoder, FrameError, FrameTooLong, RecvBuffer};
use crate::protocol::{Limits, PING_VERSION, Request, Response};

/// How a [`ClientConnection`] behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The protocol version the hello chose.
    pub version: u8,
    /// The liveness check's interval (see the [module docs](super#liveness)):
    /// after this long without a byte from the node while requests wait, a
    /// ping; after this long again, the connection is
    /// [`CloseReason::Stalled`]. `None` turns the check off; it is off
    /// below [`PING_VERSION`] whatever this says, since a version 1 node
    /// would refuse a ping as malformed.
    pub ping_interval: Option<Duration>,
    /// Limits on what the node may send.
    pub limits: Limits,
}

/// What a [`ClientConnection`] has for its driver.
///
/// Not `non_exhaustive` on purpose: a driver must handle every event, and
/// a new one should fail to compile where it is not.
#[derive(Debug)]
pub enum ClientEvent {
    /// The answer to the request sent on `stream`.
    Answer {
        /// The request's stream id.
        stream: u32,
        /// The answer.
        response: Response,
        /// Its body.
        body: Bytes,
    },
}

/// Why a client connection ended. Every request still waiting on it fails
/// with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The node closed the connection between frames.
    #[error("the node closed the connection")]
    NodeClosed,
    /// What the node sent could not be read (or reading failed).
    #[error("the node's answer was refused: {0}")]
    Refused(FrameError),
    /// Writing to the node failed.
    #[error("sending to the node failed: {0}")]
    SendFailed(std::io::Error),
    /// The liveness check found the link silent: nothing arrived within an
    /// interval of a ping.
    #[error(
        "nothing from the node for {silent_for:.1?}, nor within {interval:?} of a ping: the link stalled"
    )]
    Stalled {
        /// How long nothing arrived while requests waited.
        silent_for: Duration,
        /// The ping interval.
        interval: Duration,
    },
    /// A request was given up while its frame was partly written: the
    /// node would read the next frame's bytes as the rest of it.
    #[error("a request was given up with its frame half sent")]
    GivenUpHalfSent {
        /// The request's stream.
        stream: u32,
    },
    /// The client closed it.
    #[error("the connection was closed by the client")]
    ClosedByClient,
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The connection is closed ([`ClientConnection::close_reason`] says
    /// why).
    #[error("the connection is closed")]
    Closed,
    /// The request does not fit a frame.
    #[error(transparent)]
    TooLong(#[from] FrameTooLong),
}

/// How far a request's frame has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// In the outbox, not handed to the driver yet.
    Queued,
    /// Handed to the driver, not flushed yet: possibly partly written.
    Handed,
    /// Written and flushed.
    Sent,
}

/// A frame to write: its stream (0 for a ping), and its head and body.
type OutFrame = (u32, [Bytes; 2]);

/// The client's side of one `tcp://` connection, after the hello: a state
/// machine with no I/O (see the [module docs](super) for the call order and
/// what each timer means).
///
/// Invariants: stream 0 is never a request's stream (it carries pings and
/// the node's keep-alives); once closed, a connection stays closed, has
/// nothing to transmit and no deadline, and refuses requests.
#[derive(Debug)]
pub struct ClientConnection {
    ping_interval: Option<Duration>,
    decoder: FrameDecoder,
    next_stream: u32,
    /// Requests waiting for an answer, by stream.
    waiting: HashMap<u32, Progress>,
    outbox: VecDeque<OutFrame>,
    /// Streams whose frames were handed out since the last flush.
    handed: Vec<u32>,
    /// Bytes were handed out since the driver last reported a flush.
    unflushed: bool,
    closed: Option<CloseReason>,
    events: VecDeque<ClientEvent>,
    /// Since when nothing arrived while requests waited.
    quiet_since: Instant,
    /// When the outstanding ping was sent.
    pinged: Option<Instant>,
    /// A ping is due but the driver is writing: sent once it has flushed.
    ping_due: bool,
}

impl ClientConnection {
    /// A connection whose hello chose `config.version`, at `now`.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        Self {
            ping_interval: config
                .ping_interval
                .filter(|_| config.version >= PING_VERSION),
            decoder: FrameDecoder::new(config.limits),
            next_stream: 1,
            waiting: HashMap::new(),
            outbox: VecDeque::new(),
            handed: Vec::new(),
            unflushed: false,
            closed: None,
            events: VecDeque::new(),
            quiet_since: now,
            pinged: None,
            ping_due: false,
        }
    }

    /// Queues `request` with `body` (not copied) and returns the stream its
    /// answer will come on.
    ///
    /// # Errors
    /// [`RequestError::Closed`] on a closed connection,
    /// [`RequestError::TooLong`] for a body too large for a frame.
    pub fn send_request(
        &mut self,
        request: &Request,
        body: Bytes,
        now: Instant,
    ) -> Result<u32, RequestError> {
        if self.closed.is_some() {
            return Err(RequestError::Closed);
        }
        let stream = self.next_stream();
        let frame = frame::encode_frame(stream, request, body)?;
        if self.waiting.is_empty() {
            // Silence without a question was no sign of anything.
            self.heard(now);
        }
        self.waiting.insert(stream, Progress::Queued);
        self.outbox.push_back((stream, frame));
        Ok(stream)
    }

    /// The next stream id: never 0, never one still waiting.
    fn next_stream(&mut self) -> u32 {
        loop {
            let stream = self.next_stream;
            self.next_stream = self.next_stream.wrapping_add(1);
            if stream != 0 && !self.waiting.contains_key(&stream) {
                return stream;
            }
        }
    }

    /// The caller gave up the request on `stream` (a timeout): a frame not
    /// handed out yet is never sent; one handed out and not flushed (so
    /// possibly partly written) closes the connection
    /// ([`CloseReason::GivenUpHalfSent`]); an answer that comes later is
    /// dropped.
    pub fn cancel(&mut self, stream: u32) {
        match self.waiting.remove(&stream) {
            None | Some(Progress::Sent) => {}
            Some(Progress::Queued) => self.outbox.retain(|(s, _)| *s != stream),
            Some(Progress::Handed) => {
                tracing::debug!(stream, "request frame half sent: connection closed");
                self.close(CloseReason::GivenUpHalfSent { stream });
            }
        }
    }

    /// Closes the connection: every request waiting fails at once, later
    /// ones are refused.
    pub fn close_by_client(&mut self) {
        self.close(CloseReason::ClosedByClient);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        self.waiting.clear();
        self.outbox.clear();
        self.handed.clear();
        self.pinged = None;
        self.ping_due = false;
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Whether requests wait for answers.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The next frame to write, as its head and its body (possibly empty):
    /// write both, in order, before the next frame. Once everything taken
    /// is written, flush and call [`handle_flushed`](Self::handle_flushed).
    pub fn poll_transmit(&mut self) -> Option<[Bytes; 2]> {
        let (stream, frame) = self.outbox.pop_front()?;
        self.unflushed = true;
        if let Some(progress) = self.waiting.get_mut(&stream) {
            *progress = Progress::Handed;
            self.handed.push(stream);
        }
        Some(frame)
    }

    /// Whether frames wait to be taken by
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn has_transmit(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Everything taken from [`poll_transmit`](Self::poll_transmit) so far
    /// is written and flushed. A ping held back while the driver wrote goes
    /// out now if still due.
    pub fn handle_flushed(&mut self, now: Instant) {
        self.unflushed = false;
        for stream in self.handed.drain(..) {
            if let Some(progress) = self.waiting.get_mut(&stream)
                && *progress == Progress::Handed
            {
                *progress = Progress::Sent;
            }
        }
        if self.ping_due && self.outbox.is_empty() {
            self.ping(now);
        }
    }

    /// Writing failed: the connection is closed.
    pub fn handle_send_error(&mut self, error: std::io::Error) {
        self.close(CloseReason::SendFailed(error));
    }

    /// The buffer to read the node's next bytes into (see
    /// [`RecvBuffer`]); `None` once closed.
    pub fn recv_buffer(&mut self) -> Option<RecvBuffer> {
        if self.closed.is_some() {
            return None;
        }
        self.decoder.recv_buffer()
    }

    /// Takes back the buffer from [`recv_buffer`](Self::recv_buffer) with
    /// what was read appended, and decodes what it completes.
    pub fn handle_recv(&mut self, buffer: RecvBuffer, now: Instant) {
        if self.decoder.handle_recv(buffer) > 0 {
            self.heard(now);
        }
        self.decode();
    }

    /// The node closed its side.
    pub fn handle_recv_end(&mut self) {
        let reason = match self.decoder.handle_end() {
            Ok(()) => CloseReason::NodeClosed,
            Err(e) => CloseReason::Refused(e),
        };
        self.close(reason);
    }

    /// Reading failed.
    pub fn handle_recv_error(&mut self, error: std::io::Error) {
        // What TLS reports for a connection closed without its close
        // message: inside a frame, the frame is cut short.
        let error = if error.kind() == std::io::ErrorKind::UnexpectedEof && self.decoder.in_frame()
        {
            FrameError::Truncated
        } else {
            FrameError::Io(error)
        };
        self.close(CloseReason::Refused(error));
    }

    /// Bytes arrived: the link is alive.
    fn heard(&mut self, now: Instant) {
        self.quiet_since = now;
        self.pinged = None;
        self.ping_due = false;
    }

    fn decode(&mut self) {
        while self.closed.is_none() {
            let frame = match self.decoder.poll_decode() {
                Ok(None) => return,
                Ok(Some(Decoded::Length(_))) => {
                    self.decoder.proceed();
                    continue;
                }
                Ok(Some(Decoded::Frame(frame))) => frame,
                Err(e) => return self.close(CloseReason::Refused(e)),
            };
            let response = match frame::decode::<Response>(&frame.message) {
                Ok(response) => response,
                Err(e) => return self.close(CloseReason::Refused(e.into())),
            };
            // Stream 0 carries pongs and keep-alives; other unknown
            // streams are answers to requests given up.
            if frame.stream != 0 && self.waiting.remove(&frame.stream).is_some() {
                self.events.push_back(ClientEvent::Answer {
                    stream: frame.stream,
                    response,
                    body: frame.body,
                });
            }
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next: the ping
    /// deadline, or, after a ping, the deadline of its answer; `None` while
    /// the check sleeps (off, nothing waiting, or waiting for the driver to
    /// finish writing).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.ping_interval?;
        if self.closed.is_some() || self.waiting.is_empty() {
            return None;
        }
        match self.pinged {
            Some(at) => Some(at + interval),
            None if self.ping_due => None,
            None => Some(self.quiet_since + interval),
        }
    }

    /// Runs the liveness check at `now`: pings a connection silent for an
    /// interval while requests wait (unless the driver is writing: then
    /// once it has flushed), and closes one still silent an interval after
    /// its ping ([`CloseReason::Stalled`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(interval) = self.ping_interval else {
            return;
        };
        if self.closed.is_some() || self.waiting.is_empty() {
            return;
        }
        match self.pinged {
            Some(at) if now >= at + interval => self.close(CloseReason::Stalled {
                silent_for: now - self.quiet_since,
                interval,
            }),
            Some(_) => {}
            None if now >= self.quiet_since + interval => {
                // A request still being written: the link is busy sending
                // (or the node is not reading, which the node signals with
                // keep-alives), not silent.
                if self.outbox.is_empty() && !self.unflushed {
                    self.ping(now);
                } else {
                    self.ping_due = true;
                }
            }
            None => {}
        }
    }

    fn ping(&mut self, now: Instant) {
        let ping =
            frame::encode_frame(0, &Request::Ping, Bytes::new()).expect("a ping fits a frame");
        self.outbox.push_back((0, ping));
        self.pinged = Some(now);
        self.ping_due = false;
    }
}
