//! A client and a server connection driven against each other on a
//! simulated clock (quinn-proto's `Pair`): no sockets, no sleeps. The link
//! between them is two byte queues, each of which can stall (deliver
//! nothing, as a reader stuck in a corrupted TLS record) or trickle (a
//! throttled link); the client's writes go into a socket buffer of bounded
//! size, so a large frame stays "being written" until the server has read
//! most of it.
//!
//! Bugs these guard against are those of the liveness check and the
//! node's limits: a live but slow node taken for a stalled link (cutting
//! requests that are merely slow), a stalled link waited on until the
//! request timeout, a ping sent to a version 1 node, a request given up
//! half written that leaves the stream misaligned, a bad frame answered on
//! the wrong stream or ending more than its connection.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::frame::{self, FrameError, Malformed};
use crate::protocol::{ErrorCode, Limits, Request, Response};

const SECOND: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Room granted for a frame; counts how many are held.
#[derive(Debug)]
struct Permit(Rc<Cell<usize>>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// One direction of the link.
#[derive(Debug, Default)]
struct Link {
    /// Bytes written and not read yet.
    bytes: Vec<u8>,
    /// Delivers nothing.
    stalled: bool,
    /// Delivers at most this many bytes per simulated millisecond.
    rate: Option<usize>,
    /// What the rate lets through in the current millisecond.
    allowance: usize,
    /// Bytes delivered so far.
    delivered: usize,
}

impl Link {
    /// Moves what the link delivers now into `buffer`; returns how many
    /// bytes.
    fn deliver(&mut self, buffer: &mut RecvBuffer) -> usize {
        if self.stalled {
            return 0;
        }
        let mut n = self.bytes.len().min(buffer.limit);
        if self.rate.is_some() {
            n = n.min(self.allowance);
            self.allowance -= n;
        }
        buffer.bytes.extend_from_slice(&self.bytes[..n]);
        self.bytes.drain(..n);
        self.delivered += n;
        n
    }
}

struct Pair {
    now: Instant,
    client: ClientConnection,
    server: ServerConnection<Permit>,
    to_server: Link,
    to_client: Link,
    /// Bytes of the client's frames the client's socket buffer holds.
    client_socket: usize,
    /// The client's driver writes bytes it took, flushing once they fit
    /// the socket buffer; `true` while some have not.
    client_writing: bool,
    /// Room held by the server's frames and requests.
    rooms: Rc<Cell<usize>>,
    /// Whether the node grants room at once.
    grant_room: bool,
    /// Requests the node was handed and has not answered.
    requests: Vec<(u32, Request, Bytes, Permit)>,
    /// Answers the client received.
    answers: Vec<(u32, Response, Bytes)>,
    /// Frames on stream 0 the client received (pongs and keep-alives).
    stream_0: usize,
    /// Pings the server received (seen as pongs on a ping's stream 0
    /// answered before anything else is queued).
    frames_to_server: Vec<u32>,
}

fn limits() -> Limits {
    Limits {
        max_shard_len: 4 << 20,
        max_message_len: 4096,
        max_batch: 16,
    }
}

fn client_config(version: u8) -> ClientConfig {
    ClientConfig {
        version,
        ping_interval: Some(SECOND),
        limits: limits(),
    }
}

fn server_config(version: u8) -> ServerConfig {
    ServerConfig::new(version, limits(), 300 * SECOND, 60 * SECOND)
}

impl Pair {
    fn new(version: u8) -> Self {
        Self::with(client_config(version), server_config(version))
    }

    fn with(client: ClientConfig, server: ServerConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            client: ClientConnection::new(client, now),
            server: ServerConnection::new(server, now),
            to_server: Link::default(),
            to_client: Link::default(),
            client_socket: 64 * 1024,
            client_writing: false,
            rooms: Rc::default(),
            grant_room: true,
            requests: Vec::new(),
            answers: Vec::new(),
            stream_0: 0,
            frames_to_server: Vec::new(),
        }
    }

    fn request(&mut self, request: &Request, body: &[u8]) -> u32 {
        let stream = self
            .client
            .send_request(request, Bytes::copy_from_slice(body), self.now)
            .unwrap();
        self.settle();
        stream
    }

    /// The node answers the request on `stream`.
    fn answer(&mut self, stream: u32, response: Response, body: &[u8]) {
        let at = self
            .requests
            .iter()
            .position(|r| r.0 == stream)
            .expect("a request on that stream");
        let (stream, _, _, permit) = self.requests.remove(at);
        self.server
            .send_answer(stream, &response, Bytes::copy_from_slice(body), self.now);
        drop(permit);
        self.settle();
    }

    /// Moves bytes and events until nothing moves at this instant.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            // The client's driver: takes frames, writes them into its
            // socket buffer, flushes once they fit.
            while let Some([head, body]) = self.client.poll_transmit() {
                let mut wire = head.to_vec();
                wire.extend_from_slice(&body);
                self.note_frames(&wire);
                self.to_server.bytes.extend_from_slice(&wire);
                self.client_writing = true;
                moved = true;
            }
            if self.client_writing && self.to_server.bytes.len() <= self.client_socket {
                self.client_writing = false;
                self.client.handle_flushed(self.now);
                moved = true;
            }
            // The server's driver.
            while let Some(mut buffer) = self.server.recv_buffer() {
                let n = self.to_server.deliver(&mut buffer);
                self.server.handle_recv(buffer, self.now);
                moved |= n > 0;
                if n == 0 {
                    break;
                }
            }
            if self.grant_room && self.server.poll_room().is_some() {
                self.rooms.set(self.rooms.get() + 1);
                self.server.grant_room(Permit(self.rooms.clone()), self.now);
                moved = true;
            }
            while let Some(ServerEvent::Request {
                stream,
                request,
                body,
                room,
            }) = self.server.poll_event()
            {
                self.requests.push((stream, request, body, room));
                moved = true;
            }
            while let Some([head, body]) = self.server.poll_transmit() {
                self.to_client.bytes.extend_from_slice(&head);
                self.to_client.bytes.extend_from_slice(&body);
                moved = true;
            }
            // The client's reader.
            while let Some(mut buffer) = self.client.recv_buffer() {
                let n = self.to_client.deliver(&mut buffer);
                self.client.handle_recv(buffer, self.now);
                moved |= n > 0;
                if n == 0 {
                    break;
                }
            }
            while let Some(ClientEvent::Answer {
                stream,
                response,
                body,
            }) = self.client.poll_event()
            {
                if stream == 0 {
                    self.stream_0 += 1;
                }
                self.answers.push((stream, response, body));
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Records the stream of every frame the client writes (the frames
    /// are whole: head then body).
    fn note_frames(&mut self, wire: &[u8]) {
        let stream = u32::from_le_bytes(wire[4..8].try_into().unwrap());
        self.frames_to_server.push(stream);
    }

    fn pings_sent(&self) -> usize {
        self.frames_to_server.iter().filter(|s| **s == 0).count()
    }

    /// Runs the simulated clock forward by `d`: every millisecond with a
    /// rate-limited link, otherwise from deadline to deadline.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let rated = self.to_server.rate.is_some() || self.to_client.rate.is_some();
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                rated.then_some(self.now + MS),
                Some(end),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap()
            .max(self.now);
            if next > end {
                break;
            }
            if next > self.now && rated {
                self.to_server.allowance = self.to_server.rate.unwrap_or(0);
                self.to_client.allowance = self.to_client.rate.unwrap_or(0);
            }
            self.now = next;
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.settle();
            if self.now == end {
                break;
            }
        }
    }

    fn answered(&self, stream: u32) -> Option<&(u32, Response, Bytes)> {
        self.answers.iter().find(|a| a.0 == stream)
    }
}

fn get(seed: u8) -> Request {
    Request::GetShard {
        id: cairn_core::Id::of(&[seed]),
    }
}

#[test]
fn requests_are_answered_by_stream_in_any_order() {
    let mut pair = Pair::new(2);
    let streams: Vec<u32> = (0..3).map(|i| pair.request(&get(i), b"")).collect();
    assert!(!streams.contains(&0), "stream 0 is never a request's");
    assert_eq!(pair.requests.len(), 3);
    for (i, stream) in streams.iter().rev().enumerate() {
        pair.answer(*stream, Response::Shard, &[i as u8]);
    }
    let order: Vec<u32> = pair.answers.iter().map(|a| a.0).collect();
    assert_eq!(order, streams.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(
        pair.answered(streams[0]).unwrap().2,
        Bytes::from_static(&[2])
    );
    assert!(!pair.client.has_waiting());
    assert_eq!(pair.rooms.get(), 0, "room is released with the answer");
}

#[test]
fn a_silent_node_is_pinged_then_declared_stalled() {
    let mut pair = Pair::new(2);
    pair.request(&get(1), b"");
    // Whatever the node sends from now on is lost.
    pair.to_client.stalled = true;
    pair.advance(SECOND - MS);
    assert_eq!(pair.pings_sent(), 0, "pinged before the interval");
    pair.advance(MS);
    assert_eq!(pair.pings_sent(), 1, "a ping after an interval of silence");
    assert!(!pair.client.is_closed());
    pair.advance(SECOND - MS);
    assert!(
        !pair.client.is_closed(),
        "closed before the ping's interval"
    );
    pair.advance(MS);
    match pair.client.close_reason() {
        Some(CloseReason::Stalled {
            silent_for,
            interval,
        }) => {
            assert_eq!((*silent_for, *interval), (2 * SECOND, SECOND));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        pair.client
            .close_reason()
            .unwrap()
            .to_string()
            .contains("stalled")
    );
    assert!(pair.client.poll_timeout().is_none());
    assert!(matches!(
        pair.client.send_request(&get(2), Bytes::new(), pair.now),
        Err(RequestError::Closed)
    ));
}

#[test]
fn a_slow_answer_is_awaited_while_the_node_answers_pings() {
    let mut pair = Pair::new(2);
    let stream = pair.request(&get(1), b"");
    pair.advance(10 * SECOND);
    assert!(!pair.client.is_closed());
    assert!(pair.pings_sent() >= 5, "pings: {}", pair.pings_sent());
    assert_eq!(pair.stream_0, 0, "pongs are not answers");
    pair.answer(stream, Response::Shard, b"late");
    assert_eq!(
        pair.answered(stream).unwrap().2,
        Bytes::from_static(b"late")
    );
    // Nothing waits: no more pings.
    let pings = pair.pings_sent();
    pair.advance(10 * SECOND);
    assert_eq!(pair.pings_sent(), pings);
    assert!(pair.client.poll_timeout().is_none());
}

#[test]
fn a_version_1_node_is_never_pinged_nor_sends_keepalives() {
    let mut pair = Pair::new(1);
    pair.grant_room = false;
    let stream = pair.request(&get(1), b"");
    pair.advance(5 * SECOND);
    assert_eq!(pair.pings_sent(), 0);
    assert!(pair.to_client.bytes.is_empty() && pair.to_client.delivered == 0);
    pair.grant_room = true;
    pair.settle();
    pair.answer(stream, Response::Shard, b"");
    assert!(pair.answered(stream).is_some());
    assert!(!pair.client.is_closed());
}

/// While a request's frame is being written (the node is not reading it,
/// and says so with keep-alives) the client does not ping; once the frame
/// is out, a ping due goes at once.
#[test]
fn no_ping_while_a_frame_is_being_written() {
    let mut pair = Pair::new(2);
    pair.grant_room = false;
    // Larger than the client's socket buffer: stays "being written" while
    // the node holds off reading it.
    let body = vec![5u8; 200_000];
    let stream = pair.request(
        &Request::PutShard {
            id: cairn_core::Id::of(&body),
        },
        &body,
    );
    pair.to_client.stalled = true; // not even keep-alives get through
    pair.advance(5 * SECOND);
    assert_eq!(pair.pings_sent(), 0, "pinged in the middle of a write");
    assert!(
        !pair.client.is_closed(),
        "a busy writer is not a stalled link"
    );
    // The node reads the frame: the write completes, and the overdue ping
    // follows it at once.
    pair.grant_room = true;
    pair.settle();
    assert_eq!(pair.pings_sent(), 1);
    assert_eq!(pair.requests.len(), 1);
    pair.advance(SECOND);
    assert!(matches!(
        pair.client.close_reason(),
        Some(CloseReason::Stalled { .. })
    ));
    assert!(pair.answered(stream).is_none());
}

#[test]
fn a_request_given_up_half_sent_closes_the_connection() {
    // Given up before its frame was taken: never sent, nothing closes.
    let mut pair = Pair::new(2);
    let stream = pair
        .client
        .send_request(&get(1), Bytes::new(), pair.now)
        .unwrap();
    pair.client.cancel(stream);
    pair.settle();
    assert!(
        pair.frames_to_server.is_empty(),
        "a given-up frame was sent"
    );
    assert!(!pair.client.is_closed());

    // Given up once written and flushed: the connection stays, and the
    // answer when it comes is dropped.
    let stream = pair.request(&get(2), b"");
    pair.client.cancel(stream);
    pair.answer(stream, Response::Shard, b"");
    assert!(pair.answers.is_empty());
    assert!(!pair.client.is_closed());

    // Given up while being written: closed, and later requests refused.
    pair.grant_room = false;
    let body = vec![1u8; 200_000];
    let stream = pair.request(
        &Request::PutShard {
            id: cairn_core::Id::of(&body),
        },
        &body,
    );
    pair.client.cancel(stream);
    assert!(matches!(
        pair.client.close_reason(),
        Some(CloseReason::GivenUpHalfSent { stream: s }) if *s == stream
    ));
    assert!(
        pair.client
            .close_reason()
            .unwrap()
            .to_string()
            .contains("half sent")
    );
    assert!(
        pair.client
            .send_request(&get(3), Bytes::new(), pair.now)
            .is_err()
    );
}

#[test]
fn closing_fails_waiting_requests_at_once() {
    let mut pair = Pair::new(2);
    pair.request(&get(1), b"");
    pair.request(&get(2), b"");
    assert!(pair.client.has_waiting());
    pair.client.close_by_client();
    assert!(!pair.client.has_waiting());
    assert!(pair.client.poll_transmit().is_none());
    assert!(pair.client.poll_timeout().is_none());
    assert!(matches!(
        pair.client.close_reason(),
        Some(CloseReason::ClosedByClient)
    ));
}

#[test]
fn frames_on_stream_0_and_unknown_streams_are_ignored() {
    let mut pair = Pair::new(2);
    let stream = pair.request(&get(1), b"");
    for (s, response) in [(0, Response::Pong), (stream + 7, Response::Shard)] {
        let [head, body] = frame::encode_frame(s, &response, Bytes::new()).unwrap();
        pair.to_client.bytes.extend_from_slice(&head);
        pair.to_client.bytes.extend_from_slice(&body);
    }
    pair.settle();
    assert!(pair.answers.is_empty());
    assert!(!pair.client.is_closed());
    // A frame that is not a response ends the connection.
    pair.to_client
        .bytes
        .extend_from_slice(&frame::frame_bytes(stream, &[0xff; 8], b"").unwrap());
    pair.settle();
    assert!(matches!(
        pair.client.close_reason(),
        Some(CloseReason::Refused(FrameError::Malformed(
            Malformed::Undecodable(_)
        )))
    ));
}

/// A node waiting for room in its memory budget reads nothing, so cannot
/// see pings; its keep-alives every 250 ms keep the client waiting.
#[test]
fn a_node_short_of_memory_is_busy_not_broken() {
    let mut pair = Pair::new(2);
    pair.grant_room = false;
    let stream = pair.request(&get(1), b"");
    assert_eq!(pair.server.poll_room(), Some(pair_frame_len(&get(1))));
    assert!(pair.server.is_holding());
    pair.advance(10 * SECOND);
    assert!(!pair.client.is_closed());
    assert!(
        (39..=41).contains(&pair.stream_0_pongs()),
        "{} keep-alives in 10 s",
        pair.stream_0_pongs()
    );
    pair.grant_room = true;
    pair.settle();
    pair.answer(stream, Response::Shard, b"");
    assert!(pair.answered(stream).is_some());
}

fn pair_frame_len(request: &Request) -> usize {
    8 + frame::encode(request).len()
}

impl Pair {
    /// Keep-alives and pongs the client received (they are dropped, so
    /// count what crossed the link).
    fn stream_0_pongs(&self) -> usize {
        let pong = frame::encode_frame(0, &Response::Pong, Bytes::new()).unwrap()[0].len();
        self.to_client.delivered / pong
    }
}

/// An upload crawling over a throttled link for seconds: the node's
/// keep-alives while the frame grows keep the connection, and the put is
/// answered on it.
#[test]
fn an_upload_crawling_over_a_throttled_link_is_not_a_stall() {
    let mut pair = Pair::new(2);
    pair.to_server.rate = Some(256); // 256 KB/s
    let body = vec![9u8; 1 << 20];
    let stream = pair.request(
        &Request::PutShard {
            id: cairn_core::Id::of(&body),
        },
        &body,
    );
    pair.advance(3 * SECOND);
    assert!(pair.requests.is_empty(), "arrived too soon");
    assert!(
        pair.to_client.delivered > 0,
        "no keep-alives while it crawled"
    );
    pair.advance(2 * SECOND);
    assert!(!pair.client.is_closed());
    assert_eq!(pair.requests.len(), 1, "the frame arrived whole");
    assert_eq!(pair.requests[0].2.len(), 1 << 20);
    pair.answer(stream, Response::ShardStored { written: true }, b"");
    assert!(pair.answered(stream).is_some());
    assert_eq!(
        pair.frames_to_server.iter().filter(|s| **s != 0).count(),
        1,
        "one request, one frame"
    );
}

/// The 33rd request waits for a slot; meanwhile nothing more is read (not
/// even a ping), keep-alives say the node is busy, and one answer lets it
/// out.
#[test]
fn a_request_beyond_the_slots_waits_for_one() {
    let mut pair = Pair::new(2);
    let streams: Vec<u32> = (0..34).map(|i| pair.request(&get(i), b"")).collect();
    assert_eq!(pair.requests.len(), 32);
    assert!(pair.server.is_holding());
    pair.advance(5 * SECOND);
    assert!(!pair.client.is_closed());
    assert!(pair.stream_0_pongs() >= 19);
    assert_eq!(
        pair.requests.len(),
        32,
        "a request got out beyond the slots"
    );
    pair.answer(streams[0], Response::Shard, b"");
    assert_eq!(pair.requests.len(), 32);
    assert_eq!(pair.requests.last().unwrap().0, streams[32]);
    pair.answer(streams[1], Response::Shard, b"");
    assert_eq!(pair.requests.last().unwrap().0, streams[33]);
}

#[test]
fn a_login_is_answered_before_the_next_frame_is_read() {
    let mut pair = Pair::new(2);
    let login = pair.request(
        &Request::Login {
            user: "alice".into(),
            auth_key: crate::protocol::AuthKeyBytes([1; 32]),
        },
        b"",
    );
    let after = pair.request(&get(1), b"");
    assert_eq!(pair.requests.len(), 1, "read past a login");
    assert!(pair.server.is_holding());
    pair.answer(
        login,
        Response::LoggedIn {
            user: "alice".into(),
        },
        b"",
    );
    assert_eq!(pair.requests.len(), 1);
    assert_eq!(pair.requests[0].0, after);
}

/// A frame too large for the limits is refused from its length, before its
/// body is read, on its own stream once the stream id arrives (stream 0 if
/// it does not within a second); requests already running are still
/// answered; then the connection finishes.
#[test]
fn bad_frames_are_answered_on_their_stream_and_end_only_reading() {
    let now = Instant::now();
    let mut server = ServerConnection::<()>::new(server_config(2), now);
    let running = frame::frame_bytes(3, &frame::encode(&get(1)), b"").unwrap();
    feed(&mut server, &running, now);
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Request { stream: 3, .. })
    ));
    feed(&mut server, &(1u32 << 31).to_le_bytes(), now);
    assert!(server.ended().is_none(), "waits for the stream id");
    feed(&mut server, &77u32.to_le_bytes(), now);
    assert_eq!(
        answers_of(&mut server),
        vec![(77, Some(ErrorCode::TooLarge))]
    );
    assert!(matches!(
        server.ended(),
        Some(ServerClose::BadFrame(FrameError::TooLarge { .. }))
    ));
    assert!(server.recv_buffer().is_none(), "reads on after a refusal");
    assert!(!server.is_finished(), "a request is still running");
    server.send_answer(3, &Response::Shard, Bytes::new(), now);
    assert_eq!(answers_of(&mut server), vec![(3, None)]);
    assert!(server.is_finished());
    let pair = Pair::new(2);

    // Without its stream id: stream 0 after a second.
    let mut server = ServerConnection::<()>::new(server_config(2), pair.now);
    let mut buffer = server.recv_buffer().unwrap();
    buffer.bytes.extend_from_slice(&(1u32 << 31).to_le_bytes());
    server.handle_recv(buffer, pair.now);
    assert_eq!(server.poll_timeout(), Some(pair.now + SECOND));
    server.handle_timeout(pair.now + SECOND);
    assert_eq!(
        answers_of(&mut server),
        vec![(0, Some(ErrorCode::TooLarge))]
    );
    assert!(server.is_finished());

    // A message that does not decode: on its stream.
    let mut server = ServerConnection::<()>::new(server_config(2), pair.now);
    feed(
        &mut server,
        &frame::frame_bytes(5, &[0xff; 40], b"").unwrap(),
        pair.now,
    );
    assert_eq!(
        answers_of(&mut server),
        vec![(5, Some(ErrorCode::BadRequest))]
    );
    assert!(matches!(server.ended(), Some(ServerClose::BadRequest(_))));

    // Fields that contradict each other: on the stream named.
    let mut server = ServerConnection::<()>::new(server_config(2), pair.now);
    let mut bad = 12u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&9u32.to_le_bytes());
    bad.extend_from_slice(&1000u32.to_le_bytes());
    bad.extend_from_slice(&[0; 4]);
    feed(&mut server, &bad, pair.now);
    assert_eq!(
        answers_of(&mut server),
        vec![(9, Some(ErrorCode::BadRequest))]
    );
}

/// Feeds `bytes` to a server that grants room at once.
fn feed(server: &mut ServerConnection<()>, mut bytes: &[u8], now: Instant) {
    loop {
        if server.poll_room().is_some() {
            server.grant_room((), now);
        }
        let Some(mut buffer) = server.recv_buffer() else {
            return;
        };
        let n = buffer.limit.min(bytes.len());
        buffer.bytes.extend_from_slice(&bytes[..n]);
        server.handle_recv(buffer, now);
        bytes = &bytes[n..];
        if n == 0 {
            return;
        }
    }
}

/// The one frame in `wire`.
fn decode_one(wire: &[u8]) -> frame::Frame {
    let mut decoder = frame::FrameDecoder::new(limits());
    let mut rest = wire;
    loop {
        match decoder.poll_decode().unwrap() {
            Some(frame::Decoded::Length(_)) => decoder.proceed(),
            Some(frame::Decoded::Frame(frame)) => return frame,
            None => {
                let n = decoder.push(rest);
                assert!(n > 0, "the frame is incomplete");
                rest = &rest[n..];
            }
        }
    }
}

fn answers_of<R>(server: &mut ServerConnection<R>) -> Vec<(u32, Option<ErrorCode>)> {
    let mut out = Vec::new();
    while let Some([head, body]) = server.poll_transmit() {
        let frame = decode_one(&[&head[..], &body[..]].concat());
        let code = match frame::decode::<Response>(&frame.message).unwrap() {
            Response::Error(body) => Some(body.code),
            _ => None,
        };
        out.push((frame.stream, code));
    }
    out
}

#[test]
fn idle_connections_and_slow_frames_are_cut_off() {
    let now = Instant::now();
    let config = ServerConfig::new(2, limits(), 2 * SECOND, 3 * SECOND);
    let mut idle = ServerConnection::<()>::new(config.clone(), now);
    idle.handle_timeout(now + 2 * SECOND - MS);
    assert!(idle.ended().is_none());
    idle.handle_timeout(now + 2 * SECOND);
    assert!(matches!(idle.ended(), Some(ServerClose::Idle)));
    assert!(
        answers_of(&mut idle).is_empty(),
        "an idle connection is closed quietly"
    );
    assert!(idle.is_finished());

    let mut slow = ServerConnection::<()>::new(config, now);
    feed(&mut slow, &[1], now + SECOND);
    slow.handle_timeout(now + 4 * SECOND - MS);
    assert!(slow.ended().is_none());
    slow.handle_timeout(now + 4 * SECOND);
    assert!(matches!(slow.ended(), Some(ServerClose::RequestTimedOut)));
    let answers = answers_of(&mut slow);
    assert_eq!(
        answers.last(),
        Some(&(0, Some(ErrorCode::BadRequest))),
        "{answers:?}"
    );
}

/// Shutdown lets a frame already begun arrive and run, then stops reading.
#[test]
fn shutdown_finishes_the_frame_in_progress() {
    let mut pair = Pair::new(2);
    pair.to_server.rate = Some(100);
    let body = vec![3u8; 50_000];
    let stream = pair.request(
        &Request::PutShard {
            id: cairn_core::Id::of(&body),
        },
        &body,
    );
    pair.advance(100 * MS);
    pair.server.shutdown(pair.now);
    assert!(
        pair.server.ended().is_none(),
        "stopped in the middle of a frame"
    );
    pair.advance(SECOND);
    assert_eq!(pair.requests.len(), 1, "the frame begun was read whole");
    assert!(matches!(pair.server.ended(), Some(ServerClose::Shutdown)));
    assert!(!pair.server.is_finished());
    pair.answer(stream, Response::ShardStored { written: true }, b"");
    assert!(pair.server.is_finished());
    assert!(pair.answered(stream).is_some());
}

#[test]
fn pings_are_answered_at_once_and_their_room_released() {
    let mut pair = Pair::new(2);
    let stream = pair.request(&get(1), b"");
    pair.advance(SECOND);
    assert_eq!(pair.pings_sent(), 1);
    assert_eq!(pair.rooms.get(), 1, "only the request holds room");
    assert!(pair.to_client.delivered > 0, "the ping was not answered");
    pair.answer(stream, Response::Shard, b"");
    assert_eq!(pair.rooms.get(), 0);
}
