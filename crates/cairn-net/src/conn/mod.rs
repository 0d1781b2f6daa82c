//! The protocol core: a `tcp://` connection's state, on either side, as a
//! state machine with no I/O.
//!
//! [`ClientConnection`] and [`ServerConnection`] hold everything the
//! protocol keeps about one connection after its [hello](crate::hello):
//! stream ids, requests in flight, frames partly read or handed out to be
//! written, the request slots, and the liveness check with its pings and
//! keep-alives. They take bytes read and the current time in, and give
//! frames to write, requests or answers, and the next deadline out. They
//! open no socket, spawn no task, read no clock (every method that needs
//! the time takes `now`), and never block, in the way of quinn-proto's
//! `Connection` and foca: a driver owns the socket and the timer and
//! moves bytes between them. The tests drive a client and a server
//! against each other on a simulated clock.
//!
//! The drivers are thin loops: `cairn_net::client`'s `tcp://` connection
//! (a reader task that also runs the timer, and a writer task, around a
//! [`ClientConnection`] that requests are queued on), and the node's
//! `tcp://` server (a reader loop that also reserves memory for bodies and
//! runs logins, tasks that run requests, and a writer task, around a
//! [`ServerConnection`]). Node-to-node traffic will reuse them.
//!
//! # Method families and call order
//!
//! As in quinn-proto, methods come in four kinds:
//!
//! - **input** from the network and the clock, `handle_*`: bytes read
//!   ([`recv_buffer`](ClientConnection::recv_buffer), then
//!   [`handle_recv`](ClientConnection::handle_recv)), the end of the
//!   stream or a read error (`handle_recv_end`, `handle_recv_error`), a
//!   flush or a write error (`handle_flushed`, `handle_send_error`), and
//!   time (`handle_timeout`);
//! - **commands** from the application: [`ClientConnection::send_request`],
//!   [`ClientConnection::cancel`], [`ClientConnection::close_by_client`];
//!   [`ServerConnection::send_answer`], [`ServerConnection::grant_room`],
//!   [`ServerConnection::shutdown`];
//! - **output**, `poll_*`: `poll_transmit` (frames to write, in order),
//!   `poll_event` (answers, or requests to run), `poll_timeout` (when to
//!   call `handle_timeout` next), and on the server `poll_room` (a frame
//!   that waits for room for its body);
//! - **state**: `is_closed`, `close_reason`, `ended`, `is_finished`, …
//!
//! After any input or command, call the `poll_*` methods and act on what
//! they return: write the frames, deliver the events, reset the timer.
//! Times must not go backwards. Bytes are read into a buffer the
//! connection lends out ([`RecvBuffer`]), so a body lands once in a buffer
//! of its own size and is handed on without a copy; hand the buffer back
//! even if nothing was read.
//!
//! # Liveness
//!
//! Over TLS on TCP a corrupted bit in a record's length field can leave
//! a receiver waiting for bytes that never come, while the sender waits
//! for an answer (see [`crate::protocol`]). On protocol version 2 the two
//! machines keep such a connection from hanging until the request timeout,
//! with three timers:
//!
//! - **the ping deadline** (client): with requests waiting, nothing
//!   received for [`ClientConfig::ping_interval`], and no frame being
//!   written (a frame handed out and not flushed), the client queues a
//!   [`Request::Ping`](crate::protocol::Request::Ping) on stream 0; if a
//!   frame is being written, the ping goes out once the driver reports
//!   the flush;
//! - **the answer deadline** (client): if nothing at all arrives within
//!   another interval after the ping, the connection closes as
//!   [`CloseReason::Stalled`], failing every request on it, which the
//!   caller retries on a fresh connection;
//! - **the keep-alive tick** (server, every
//!   [`KEEPALIVE_INTERVAL`](crate::protocol::KEEPALIVE_INTERVAL)): a tick
//!   that finds the server holding off reading (waiting for room for a
//!   body, for one of its request slots, or for a login's answer) or
//!   inside a frame that grew since the last tick queues an unsolicited
//!   [`Response::Pong`](crate::protocol::Response::Pong) on stream 0, since
//!   a ping behind what it does not read yet cannot be answered. The server
//!   answers every ping it reads at once, ahead of the requests still
//!   running.
//!
//! The server has two more timers, for its limits: **the idle timeout**
//! (no first byte of a next frame), which ends reading quietly, and **the
//! request timeout** (a frame begun and not whole), which answers
//! "request timed out" on stream 0 and ends reading; and a short one after
//! a frame refused from its length, for its stream id, so that the refusal
//! is answered on the frame's own stream.
//!
//! # Invariants
//!
//! - Stream 0 is never a request's stream: it carries pings and
//!   keep-alives, and clients ignore what comes on it.
//! - A frame is read whole, after room for it was granted, before the next
//!   one; a frame over the limits is refused from its length fields, before
//!   anything is allocated for it, with an answer on its stream where it
//!   has one, and only its own connection ends.
//! - A request given up while its frame is partly written (handed out and
//!   not flushed) closes the connection: the node would read the next
//!   frame's bytes as the rest of it.
//! - Closing fails every request waiting at once; a closed connection
//!   stays closed.

mod client;
mod server;
#[cfg(test)]
mod tests;

pub use client::{ClientConfig, ClientConnection, ClientEvent, CloseReason, RequestError};
pub use server::{ServerClose, ServerConfig, ServerConnection, ServerEvent};

pub use crate::frame::RecvBuffer;
