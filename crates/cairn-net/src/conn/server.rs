//! The node's side of a connection: requests in, answers out, the request
//! slots, and the keep-alives.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::frame::{
    self, BodyBuffer, Decoded, Frame, FrameDecoder, FrameError, LengthField, Malformed, RecvBuffer,
};
use crate::protocol::{
    ErrorBody, ErrorCode, KEEPALIVE_INTERVAL, Limits, PING_VERSION, Request, Response,
};

/// How a [`ServerConnection`] behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The protocol version the hello chose. Keep-alives are sent from
    /// [`PING_VERSION`] on only (a version 1 client would refuse them).
    pub version: u8,
    /// Limits on the frames the client may send.
    pub limits: Limits,
    /// Most requests handed out and not answered yet; a request decoded
    /// beyond them waits for a slot, and nothing more is read meanwhile.
    /// The node's default is 32.
    pub max_in_flight: usize,
    /// How often, while busy, a keep-alive may be sent
    /// ([`KEEPALIVE_INTERVAL`], 250 ms).
    pub keepalive_interval: Duration,
    /// Longest wait for the first byte of the next frame.
    pub idle_timeout: Duration,
    /// Longest time for a whole frame to arrive after its first byte
    /// (the slow-sender limit), the wait for room included.
    pub request_timeout: Duration,
    /// How long to wait for the stream id of a frame refused from its
    /// length, to answer on its stream (1 s; then stream 0).
    pub stream_id_wait: Duration,
    /// How many bytes one read may bring in between bodies (64 KiB, as a
    /// `BufReader`; see [`FrameDecoder::with_read_ahead`]).
    pub read_ahead: usize,
    /// Makes the buffers request bodies are read into.
    pub body_buffer: BodyBuffer,
}

impl ServerConfig {
    /// The settings of a node connection of `version` with these limits and
    /// timeouts, and the defaults for the rest.
    pub fn new(
        version: u8,
        limits: Limits,
        idle_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            version,
            limits,
            max_in_flight: 32,
            keepalive_interval: KEEPALIVE_INTERVAL,
            idle_timeout,
            request_timeout,
            stream_id_wait: Duration::from_secs(1),
            read_ahead: 64 * 1024,
            body_buffer: frame::plain_body_buffer,
        }
    }
}

/// What a [`ServerConnection`] has for its driver.
///
/// Not `non_exhaustive` on purpose: a driver must handle every event, and
/// a new one should fail to compile where it is not.
#[derive(Debug)]
pub enum ServerEvent<R> {
    /// A request to run; answer it with
    /// [`ServerConnection::send_answer`] on its stream. Requests come in the
    /// order they were read. A [`Request::Login`] is answered before the
    /// next frame is read, so that requests after it act for its user.
    Request {
        /// Its stream.
        stream: u32,
        /// The request.
        request: Request,
        /// Its body.
        body: Bytes,
        /// The room the driver granted for its frame; drop it once the
        /// request is answered.
        room: R,
    },
}

/// Why a server connection stopped reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerClose {
    /// The client closed its side between frames.
    #[error("the client closed the connection")]
    PeerClosed,
    /// Nothing arrived for the idle timeout.
    #[error("idle")]
    Idle,
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Shutdown,
    /// A frame did not arrive whole within the request timeout (refused on
    /// stream 0).
    #[error("request not received in time")]
    RequestTimedOut,
    /// A frame was refused (answered on its stream when it has one), or
    /// cut short.
    #[error("bad frame: {0}")]
    BadFrame(FrameError),
    /// A message did not decode (answered on its stream).
    #[error("bad request: {0}")]
    BadRequest(Malformed),
    /// Reading failed.
    #[error("reading failed: {0}")]
    ReadFailed(std::io::Error),
    /// Writing failed or timed out (reported by the driver).
    #[error("writing failed: {0}")]
    SendFailed(std::io::Error),
}

/// Room the driver reserves for a frame before its body is read.
#[derive(Debug)]
enum Room<R> {
    None,
    /// A frame's length was read: waiting for [`ServerConnection::grant_room`].
    Needed(usize),
    Granted(R),
}

/// A request read while every slot was taken.
#[derive(Debug)]
struct Parked<R> {
    stream: u32,
    request: Request,
    body: Bytes,
    room: R,
}

/// The node's side of one `tcp://` connection, after the hello: a state
/// machine with no I/O, generic over `R`, the room a driver reserves for a
/// frame from its memory budget (a semaphore permit in the node; `()` if
/// there is no budget). See the [module docs](super) for the call order
/// and what each timer means.
///
/// Invariants: frames are read one after the other, and nothing is read
/// while the connection holds off (waiting for room, for a slot, or for a
/// login's answer); at most `max_in_flight` requests are out; a ping is
/// answered by the connection itself, queued at once behind the answers
/// already queued; once reading has ended nothing more is read, and the
/// connection is finished when every request out has been answered and
/// every answer taken.
#[derive(Debug)]
pub struct ServerConnection<R> {
    config: ServerConfig,
    keepalive: bool,
    decoder: FrameDecoder,
    room: Room<R>,
    parked: Option<Parked<R>>,
    /// Requests handed out and not answered, logins excepted.
    in_flight: usize,
    /// The stream of a login handed out and not answered.
    login: Option<u32>,
    outbox: VecDeque<[Bytes; 2]>,
    events: VecDeque<ServerEvent<R>>,
    /// Why reading ended, once it has.
    ended: Option<ServerClose>,
    /// A frame refused from its length: until when to wait for its stream
    /// id, and the error.
    awaiting_stream_id: Option<(Instant, FrameError)>,
    send_failed: bool,
    shutdown: bool,
    /// Since when the reader waits for the first byte of a frame.
    idle_since: Option<Instant>,
    /// When the first byte of the frame being read arrived.
    frame_started: Option<Instant>,
    /// Bytes received so far, and at the last keep-alive tick.
    received: u64,
    seen: u64,
    next_keepalive: Instant,
}

impl<R> ServerConnection<R> {
    /// A connection whose hello chose `config.version`, at `now`; it waits
    /// for its first frame.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        let decoder = FrameDecoder::new(config.limits)
            .with_read_ahead(config.read_ahead)
            .with_body_buffer(config.body_buffer);
        Self {
            keepalive: config.version >= PING_VERSION,
            next_keepalive: now + config.keepalive_interval,
            decoder,
            room: Room::None,
            parked: None,
            in_flight: 0,
            login: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            ended: None,
            awaiting_stream_id: None,
            send_failed: false,
            shutdown: false,
            idle_since: Some(now),
            frame_started: None,
            received: 0,
            seen: 0,
            config,
        }
    }

    /// Whether the connection holds off reading on purpose: for room for a
    /// frame, for a request slot, or for a login's answer.
    pub fn is_holding(&self) -> bool {
        matches!(self.room, Room::Needed(_)) || self.parked.is_some() || self.login.is_some()
    }

    /// Whether the reader is reading frames (not ended, not waiting for a
    /// slot or a login).
    fn reading(&self) -> bool {
        self.ended.is_none() && self.parked.is_none() && self.login.is_none()
    }

    /// The buffer to read the client's next bytes into (see
    /// [`RecvBuffer`]); `None` while the connection reads nothing (holding
    /// off, or reading ended).
    pub fn recv_buffer(&mut self) -> Option<RecvBuffer> {
        if self.awaiting_stream_id.is_some() {
            return self.decoder.recv_stream_id_buffer();
        }
        if self.ended.is_some() || self.is_holding() {
            return None;
        }
        self.decoder.recv_buffer()
    }

    /// Takes back the buffer from [`recv_buffer`](Self::recv_buffer) with
    /// what was read appended, and decodes what it completes.
    pub fn handle_recv(&mut self, buffer: RecvBuffer, now: Instant) {
        self.received += self.decoder.handle_recv(buffer) as u64;
        if self.awaiting_stream_id.is_some() {
            if let Some(stream) = self.decoder.take_stream_id() {
                self.refuse_on(stream);
            }
            return;
        }
        self.advance(now);
    }

    /// The client closed its side.
    pub fn handle_recv_end(&mut self, now: Instant) {
        if self.awaiting_stream_id.is_some() {
            return self.refuse_on(0);
        }
        match self.decoder.handle_end() {
            Ok(()) => self.end(ServerClose::PeerClosed),
            Err(e) => self.end(ServerClose::BadFrame(e)),
        }
        self.update_timers(now);
    }

    /// Reading failed.
    pub fn handle_recv_error(&mut self, error: std::io::Error, now: Instant) {
        if self.awaiting_stream_id.is_some() {
            return self.refuse_on(0);
        }
        self.end(ServerClose::ReadFailed(error));
        self.update_timers(now);
    }

    /// The length of the frame that waits for room, if one does: reserve
    /// room for it, then call [`grant_room`](Self::grant_room).
    pub fn poll_room(&self) -> Option<usize> {
        match self.room {
            Room::Needed(len) => Some(len),
            _ => None,
        }
    }

    /// Room for the frame [`poll_room`](Self::poll_room) named: the rest of
    /// it is read. The connection keeps `room` until it hands it back with
    /// the request, or drops it (a ping, a refused frame, a connection that
    /// ended).
    pub fn grant_room(&mut self, room: R, now: Instant) {
        if matches!(self.room, Room::Needed(_)) && self.ended.is_none() {
            self.room = Room::Granted(room);
            self.decoder.proceed();
            self.advance(now);
        }
    }

    /// The request on `stream` was answered. Frees its slot (or ends the
    /// login), which may let a waiting request out and reading go on.
    pub fn send_answer(&mut self, stream: u32, response: &Response, body: Bytes, now: Instant) {
        if self.login == Some(stream) {
            self.login = None;
        } else {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.queue(stream, response, body);
        if self.in_flight < self.config.max_in_flight
            && let Some(parked) = self.parked.take()
        {
            self.hand_out(parked);
        }
        self.advance(now);
    }

    /// Writing failed (or timed out): nothing more is sent or read.
    pub fn handle_send_error(&mut self, error: std::io::Error) {
        self.send_failed = true;
        self.outbox.clear();
        self.parked = None;
        self.end(ServerClose::SendFailed(error));
    }

    /// Stop at the next frame boundary: a frame already begun is read whole
    /// and run; requests out are answered; then the connection finishes.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutdown = true;
        self.advance(now);
    }

    /// The next frame to write, as its head and body (possibly empty):
    /// write both, in order. Flush when [`has_transmit`](Self::has_transmit)
    /// says nothing more is queued.
    pub fn poll_transmit(&mut self) -> Option<[Bytes; 2]> {
        self.outbox.pop_front()
    }

    /// Whether frames wait to be taken by
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn has_transmit(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ServerEvent<R>> {
        self.events.pop_front()
    }

    /// Why reading ended, once it has.
    pub fn ended(&self) -> Option<&ServerClose> {
        self.ended.as_ref()
    }

    /// Whether nothing more will be sent: reading ended, every request out
    /// was answered, and every answer taken. The driver then flushes and
    /// closes.
    pub fn is_finished(&self) -> bool {
        self.ended.is_some()
            && self.in_flight == 0
            && self.login.is_none()
            && self.parked.is_none()
            && self.events.is_empty()
            && self.outbox.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next: the
    /// request timeout of a frame begun, the idle timeout of a reader
    /// waiting for one, the wait for a refused frame's stream id, or the
    /// next keep-alive tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some((deadline, _)) = &self.awaiting_stream_id {
            return Some(*deadline);
        }
        if self.ended.is_some() {
            return None;
        }
        let request = self.frame_started.map(|t| t + self.config.request_timeout);
        let idle = self.idle_since.map(|t| t + self.config.idle_timeout);
        let keepalive = self.keepalive.then_some(self.next_keepalive);
        [request, idle, keepalive].into_iter().flatten().min()
    }

    /// Runs the timers due at `now`: refuses a frame that did not arrive in
    /// time, ends an idle connection, answers on stream 0 a frame whose
    /// stream id did not come, and at a keep-alive tick that finds the
    /// connection holding off, or in a frame that grew since the last tick,
    /// queues an unsolicited [`Response::Pong`] on stream 0 (unless
    /// `max_in_flight` frames already wait to be written: answers are on
    /// their way, which says as much).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((deadline, _)) = &self.awaiting_stream_id {
            if now >= *deadline {
                self.refuse_on(0);
            }
            return;
        }
        if self.ended.is_some() {
            return;
        }
        if self
            .frame_started
            .is_some_and(|t| now >= t + self.config.request_timeout)
        {
            self.queue_error(0, ErrorCode::BadRequest, "request timed out");
            self.end(ServerClose::RequestTimedOut);
            return;
        }
        if self
            .idle_since
            .is_some_and(|t| now >= t + self.config.idle_timeout)
        {
            self.end(ServerClose::Idle);
            return;
        }
        if self.keepalive && now >= self.next_keepalive {
            self.next_keepalive = now + self.config.keepalive_interval;
            let grew = self.received != self.seen;
            self.seen = self.received;
            let busy = self.is_holding() || (grew && self.reading() && self.decoder.in_frame());
            if busy && self.outbox.len() < self.config.max_in_flight {
                self.queue(0, &Response::Pong, Bytes::new());
            }
        }
    }

    /// Decodes and hands out what has arrived, as far as the connection may
    /// go: up to a frame that needs room, a request without a slot, a
    /// login, an error, or the end of what was received.
    fn advance(&mut self, now: Instant) {
        loop {
            if self.ended.is_some() || self.is_holding() {
                break;
            }
            if self.shutdown && !self.decoder.in_frame() {
                self.end(ServerClose::Shutdown);
                break;
            }
            match self.decoder.poll_decode() {
                Ok(None) => break,
                Ok(Some(Decoded::Length(len))) => {
                    self.room = Room::Needed(len);
                    break;
                }
                Ok(Some(Decoded::Frame(frame))) => {
                    self.frame_started = None;
                    self.on_frame(frame);
                }
                Err(e) => self.refuse(e, now),
            }
        }
        self.update_timers(now);
    }

    /// Starts or stops the request and idle timers: a reader inside a frame
    /// has the request timeout; one waiting for a frame, the idle timeout;
    /// one holding off for a slot or a login, neither.
    fn update_timers(&mut self, now: Instant) {
        if !self.reading() {
            self.frame_started = None;
            self.idle_since = None;
        } else if self.decoder.in_frame() {
            self.frame_started.get_or_insert(now);
            self.idle_since = None;
        } else {
            self.frame_started = None;
            self.idle_since.get_or_insert(now);
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        let room = match std::mem::replace(&mut self.room, Room::None) {
            Room::Granted(room) => room,
            _ => unreachable!("every frame is granted room after its length"),
        };
        let request = match frame::decode::<Request>(&frame.message) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!("refusing a request: {e}");
                self.queue_error(frame.stream, ErrorCode::BadRequest, &e.to_string());
                return self.end(ServerClose::BadRequest(e));
            }
        };
        let parked = Parked {
            stream: frame.stream,
            request,
            body: frame.body,
            room,
        };
        match parked.request {
            // At once, ahead of every request still running: that is what
            // a ping asks.
            Request::Ping => self.queue(parked.stream, &Response::Pong, Bytes::new()),
            Request::Login { .. } => {
                self.login = Some(parked.stream);
                self.events.push_back(ServerEvent::Request {
                    stream: parked.stream,
                    request: parked.request,
                    body: parked.body,
                    room: parked.room,
                });
            }
            _ if self.in_flight < self.config.max_in_flight => self.hand_out(parked),
            _ => self.parked = Some(parked),
        }
    }

    fn hand_out(&mut self, parked: Parked<R>) {
        self.in_flight += 1;
        self.events.push_back(ServerEvent::Request {
            stream: parked.stream,
            request: parked.request,
            body: parked.body,
            room: parked.room,
        });
    }

    /// Refuses a frame the decoder could not read: with an answer on its
    /// stream (or stream 0 if its id is unknown) if the error has a code,
    /// and the end of reading. A frame too large from its length alone is
    /// answered once its stream id arrives, or after
    /// [`ServerConfig::stream_id_wait`].
    fn refuse(&mut self, error: FrameError, now: Instant) {
        tracing::debug!("refusing a frame: {error}");
        self.room = Room::None;
        if matches!(
            error,
            FrameError::TooLarge {
                field: LengthField::Frame,
                ..
            }
        ) {
            self.awaiting_stream_id = Some((now + self.config.stream_id_wait, error));
            if let Some(stream) = self.decoder.take_stream_id() {
                self.refuse_on(stream);
            }
            return;
        }
        if let Some(code) = error.code() {
            let stream = self.decoder.stream().unwrap_or(0);
            self.queue_error(stream, code, &error.to_string());
        }
        self.end(ServerClose::BadFrame(error));
    }

    /// Answers the frame refused from its length on `stream`, and ends
    /// reading.
    fn refuse_on(&mut self, stream: u32) {
        if let Some((_, error)) = self.awaiting_stream_id.take() {
            self.queue_error(stream, ErrorCode::TooLarge, &error.to_string());
            self.end(ServerClose::BadFrame(error));
        }
    }

    fn end(&mut self, why: ServerClose) {
        if self.ended.is_none() {
            self.ended = Some(why);
        }
        self.room = Room::None;
        self.frame_started = None;
        self.idle_since = None;
    }

    fn queue_error(&mut self, stream: u32, code: ErrorCode, message: &str) {
        self.queue(
            stream,
            &Response::Error(ErrorBody::new(code, message)),
            Bytes::new(),
        );
    }

    fn queue(&mut self, stream: u32, response: &Response, body: Bytes) {
        if self.send_failed {
            return;
        }
        match frame::encode_frame(stream, response, body) {
            Ok(frame) => self.outbox.push_back(frame),
            Err(e) => self.queue_error(stream, ErrorCode::Internal, &e.to_string()),
        }
    }
}
