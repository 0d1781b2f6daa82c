//! Frames: how protocol messages cross a byte stream (a TLS connection for
//! `tcp://`, a QUIC stream for `quic://`).
//!
//! ```text
//! frame:   length (u32 LE) │ stream id (u32 LE) │ message length (u32 LE) │ message │ body
//!          └─ bytes after this field ─────────────────────────────────────────────────┘
//! message: postcard encoding of a `Request` or a `Response`
//! body:    raw bytes (a shard, an index entry's data), possibly empty
//! ```
//!
//! # Reading
//!
//! [`FrameDecoder`] reads frames out of bytes without doing any I/O (the
//! connection state machines of [`crate::conn`] use it, and so do the
//! async helpers [`read_frame`] and [`read_frame_with`]). It learns a
//! frame's length from its first four bytes and refuses a frame over the
//! limit, or shorter than its own fields, before allocating anything for it;
//! then it stops until its owner calls [`FrameDecoder::proceed`], which is
//! where a node reserves memory for the body from its budget. It refuses a
//! message length over the limit, or beyond the frame, from the next eight
//! bytes, before reading the message.
//!
//! Bytes are read into buffers the decoder lends out ([`RecvBuffer`]), not
//! copied in: the head and message into a small staging buffer, and the
//! body into a buffer of exactly its length, made by the decoder's
//! [`BodyBuffer`] (the seam where a node can choose, say, an aligned
//! buffer for its store). Bytes of a body that arrived with the head in the
//! staging buffer (at most the read-ahead) are moved into it once; the rest
//! of the body is read straight into it, and handed on without copying.
//!
//! # Writing
//!
//! [`encode_frame`] gives a frame as two buffers: its head and message in
//! one, its body as given (never copied). [`write_frame`] writes one
//! through an `AsyncWrite`.
//!
//! The hello that comes before the first frame is in [`crate::hello`]
//! (re-exported here for callers written before it moved).

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use crate::hello::{HandshakeError, client_hello, server_hello};
use crate::protocol::{ErrorCode, Limits};

/// Bytes of a frame's length field.
const LENGTH_FIELD: usize = 4;

/// Bytes of a frame after its length field and before its message: the
/// stream id and the message length.
const FRAME_FIELDS: usize = 8;

/// Bytes of a frame's head: its length, stream id and message length.
pub const HEAD_LEN: usize = LENGTH_FIELD + FRAME_FIELDS;

/// One frame, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The request this frame belongs to (chosen by the client).
    pub stream: u32,
    /// The encoded message.
    pub message: Bytes,
    /// The body.
    pub body: Bytes,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The connection failed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a frame.
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    /// A length field is over its limit (refused before anything is
    /// allocated for it).
    #[error("{field} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Which length.
        field: LengthField,
        /// Length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame's fields contradict each other, or its message does not
    /// decode.
    #[error("malformed frame: {0}")]
    Malformed(#[from] Malformed),
}

impl FrameError {
    /// The error code a node answers this error with, if it answers at all
    /// (a connection that failed or closed gets no answer).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::TooLarge { .. } => Some(ErrorCode::TooLarge),
            Self::Malformed(_) => Some(ErrorCode::BadRequest),
            Self::Io(_) | Self::Truncated => None,
        }
    }
}

/// A length field of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LengthField {
    /// The frame's length (limit: [`Limits::max_frame_len`]).
    Frame,
    /// The message's length (limit: [`Limits::max_message_len`]).
    Message,
}

impl std::fmt::Display for LengthField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Frame => "frame",
            Self::Message => "message",
        })
    }
}

/// How a frame or its message is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The frame's length leaves no room for its stream id and message
    /// length.
    #[error("frame of {len} bytes is shorter than its fields")]
    ShorterThanFields {
        /// The frame's length.
        len: usize,
    },
    /// The message length runs past the end of the frame.
    #[error("message of {message_len} bytes in a frame of {frame_len}")]
    MessageBeyondFrame {
        /// The message length announced.
        message_len: usize,
        /// The frame's length.
        frame_len: usize,
    },
    /// The message is not a message of the protocol.
    #[error("message does not decode: {0}")]
    Undecodable(postcard::Error),
    /// Bytes follow the message inside its field.
    #[error("{count} bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// What [`FrameDecoder::poll_decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame's length field, accepted: the decoder reads nothing more
    /// until [`FrameDecoder::proceed`] (the moment to reserve memory for
    /// `len` bytes).
    Length(usize),
    /// A whole frame.
    Frame(Frame),
}

/// Makes the buffer a body of the given length is read into. It must
/// return an empty buffer; its capacity should be at least the length, or
/// the buffer grows (and copies) as the body arrives.
pub type BodyBuffer = fn(usize) -> BytesMut;

/// The default [`BodyBuffer`]: an ordinary allocation of exactly the
/// length, not zeroed.
pub fn plain_body_buffer(len: usize) -> BytesMut {
    BytesMut::with_capacity(len)
}

/// A buffer lent out by [`FrameDecoder::recv_buffer`] for the next bytes of
/// the stream. Append at most [`limit`](Self::limit) bytes to
/// [`bytes`](Self::bytes) (as `AsyncReadExt::read_buf` through `take(limit)`
/// does), then hand it back with [`FrameDecoder::handle_recv`], even if
/// nothing was read.
#[derive(Debug)]
pub struct RecvBuffer {
    /// The buffer: append to it, never change what it holds.
    pub bytes: BytesMut,
    /// The most bytes to append.
    pub limit: usize,
    /// Its length when lent out.
    lent_len: usize,
    target: Target,
}

impl RecvBuffer {
    /// Bytes appended since it was lent out.
    pub fn appended(&self) -> usize {
        self.bytes.len() - self.lent_len
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Staged,
    Body,
}

/// Reads frames out of a byte stream, without doing any I/O (see the
/// [module docs](self#reading)).
///
/// Call order: [`recv_buffer`](Self::recv_buffer), read into it,
/// [`handle_recv`](Self::handle_recv); then [`poll_decode`](Self::poll_decode)
/// until it returns `Ok(None)`, calling [`proceed`](Self::proceed) after each
/// [`Decoded::Length`]. At the end of the stream,
/// [`handle_end`](Self::handle_end). After an error the decoder decodes
/// nothing more.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    read_ahead: usize,
    body_buffer: BodyBuffer,
    /// Bytes received and not parsed yet: the head and message of the
    /// frame being read, and bytes read ahead of it.
    staged: BytesMut,
    state: State,
    /// Whether a [`RecvBuffer`] is lent out.
    lent: bool,
}

#[derive(Debug)]
enum State {
    /// Waiting for a frame's length field.
    Length,
    /// The length was accepted; waiting for [`FrameDecoder::proceed`].
    Sized { len: usize },
    /// Reading the stream id and the message length.
    Fields { len: usize },
    /// Reading the message.
    Message {
        len: usize,
        stream: u32,
        message_len: usize,
    },
    /// Reading the body into its own buffer.
    Body {
        stream: u32,
        message: Bytes,
        body: BytesMut,
        body_len: usize,
    },
    /// A frame was refused: nothing more is decoded.
    Failed { stream: Option<u32> },
}

impl FrameDecoder {
    /// A decoder that never reads past the end of a frame (it reads a
    /// frame's head, then its message, then its body), with
    /// [`plain_body_buffer`]s.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            read_ahead: 0,
            body_buffer: plain_body_buffer,
            staged: BytesMut::new(),
            state: State::Length,
            lent: false,
        }
    }

    /// Lets reads between bodies bring up to `bytes` at once into the
    /// staging buffer, as a `BufReader` of that capacity would: one read
    /// can then hold several small frames. A body's bytes that come along
    /// (at most `bytes`) are moved into its buffer once.
    #[must_use]
    pub fn with_read_ahead(mut self, bytes: usize) -> Self {
        self.read_ahead = bytes;
        self
    }

    /// Makes body buffers with `body_buffer`.
    #[must_use]
    pub fn with_body_buffer(mut self, body_buffer: BodyBuffer) -> Self {
        self.body_buffer = body_buffer;
        self
    }

    /// The limits frames are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether part of a frame has been received (its first byte, up to
    /// its last): the stream is in the middle of a frame.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Length) || !self.staged.is_empty()
    }

    /// The stream id of the frame being read, once its field was read.
    pub fn stream(&self) -> Option<u32> {
        match &self.state {
            State::Message { stream, .. } | State::Body { stream, .. } => Some(*stream),
            State::Failed { stream } => *stream,
            _ => None,
        }
    }

    /// The buffer the next bytes of the stream go into, and how many at
    /// most; `None` while the decoder reads nothing (after a
    /// [`Decoded::Length`] until [`proceed`](Self::proceed), after an error,
    /// or while a complete part waits to be decoded, or the buffer is lent
    /// out already).
    pub fn recv_buffer(&mut self) -> Option<RecvBuffer> {
        if self.lent {
            return None;
        }
        let (target, limit) = match &self.state {
            // Every frame has at least its head: reading it whole never
            // reads past the frame (but for one that is malformed anyway).
            State::Length => (Target::Staged, self.staged_limit(HEAD_LEN)),
            State::Fields { .. } => (Target::Staged, self.staged_limit(FRAME_FIELDS)),
            State::Message { message_len, .. } => (Target::Staged, self.staged_limit(*message_len)),
            State::Body { body, body_len, .. } => (Target::Body, body_len - body.len()),
            State::Sized { .. } | State::Failed { .. } => return None,
        };
        if limit == 0 {
            return None;
        }
        let bytes = match target {
            Target::Staged => {
                self.staged.reserve(limit);
                std::mem::take(&mut self.staged)
            }
            Target::Body => match &mut self.state {
                State::Body { body, .. } => std::mem::take(body),
                _ => unreachable!("target chosen from the state"),
            },
        };
        self.lent = true;
        Some(RecvBuffer {
            lent_len: bytes.len(),
            bytes,
            limit,
            target,
        })
    }

    /// How many bytes to read into the staging buffer when the current step
    /// needs `need` bytes in it: what is missing, or up to the read-ahead.
    fn staged_limit(&self, need: usize) -> usize {
        need.saturating_sub(self.staged.len())
            .max(self.read_ahead.saturating_sub(self.staged.len()))
    }

    /// Takes back a buffer from [`recv_buffer`](Self::recv_buffer), with
    /// the bytes read appended. Returns how many were appended.
    ///
    /// # Panics
    /// If `buffer` is not the one lent out.
    pub fn handle_recv(&mut self, buffer: RecvBuffer) -> usize {
        assert!(self.lent, "a receive buffer came back that was not lent");
        self.lent = false;
        let appended = buffer.appended();
        match buffer.target {
            Target::Staged => self.staged = buffer.bytes,
            Target::Body => match &mut self.state {
                State::Body { body, .. } => *body = buffer.bytes,
                _ => unreachable!("the state does not change while the body is lent"),
            },
        }
        appended
    }

    /// Appends `data` (a convenience for tests and for bytes that arrived
    /// elsewhere): as much as the decoder takes now, which is all of it
    /// unless it stops at a [`Decoded::Length`] or an error. Returns how
    /// many bytes it took. Decode after each call.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let Some(mut buffer) = self.recv_buffer() else {
            return 0;
        };
        let take = data.len().min(buffer.limit);
        buffer.bytes.extend_from_slice(&data[..take]);
        self.handle_recv(buffer);
        take
    }

    /// The stream ended. `Ok` at a frame boundary; otherwise the frame in
    /// progress is [`FrameError::Truncated`].
    ///
    /// # Errors
    /// [`FrameError::Truncated`] in the middle of a frame.
    pub fn handle_end(&mut self) -> Result<(), FrameError> {
        if self.in_frame() && !matches!(self.state, State::Failed { .. }) {
            let stream = self.stream();
            self.state = State::Failed { stream };
            return Err(FrameError::Truncated);
        }
        Ok(())
    }

    /// Carries on after a [`Decoded::Length`]: the rest of the frame is
    /// read. Does nothing in any other state.
    pub fn proceed(&mut self) {
        if let State::Sized { len } = self.state {
            self.state = State::Fields { len };
        }
    }

    /// Takes the first four bytes staged after a frame's length field as a
    /// stream id, once they are there: after a [`FrameError::TooLarge`]
    /// frame length, a node answers on the frame's stream if it can. Lends
    /// the staging buffer for them meanwhile (see
    /// [`recv_stream_id_buffer`](Self::recv_stream_id_buffer)).
    pub fn take_stream_id(&mut self) -> Option<u32> {
        (self.staged.len() >= 4).then(|| self.staged.get_u32_le())
    }

    /// The staging buffer, to read the bytes
    /// [`take_stream_id`](Self::take_stream_id) waits for (at most four
    /// bytes; `None` once they are there).
    pub fn recv_stream_id_buffer(&mut self) -> Option<RecvBuffer> {
        if self.lent || self.staged.len() >= 4 {
            return None;
        }
        let limit = 4 - self.staged.len();
        self.staged.reserve(limit);
        self.lent = true;
        Some(RecvBuffer {
            lent_len: self.staged.len(),
            bytes: std::mem::take(&mut self.staged),
            limit,
            target: Target::Staged,
        })
    }

    /// Decodes what has been received: the next length field or frame, or
    /// `Ok(None)` if more bytes are needed (or [`proceed`](Self::proceed)
    /// is).
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] or [`FrameError::Malformed`] for a frame
    /// over the limits or whose fields contradict each other, before
    /// anything is allocated for it. The decoder then decodes nothing
    /// more.
    pub fn poll_decode(&mut self) -> Result<Option<Decoded>, FrameError> {
        if self.lent {
            return Ok(None);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Failed { stream: None }) {
                State::Length => {
                    if self.staged.len() < LENGTH_FIELD {
                        self.state = State::Length;
                        return Ok(None);
                    }
                    let len = self.staged.get_u32_le() as usize;
                    let max = self.limits.max_frame_len();
                    if len > max {
                        return Err(FrameError::TooLarge {
                            field: LengthField::Frame,
                            len,
                            max,
                        });
                    }
                    if len < FRAME_FIELDS {
                        return Err(Malformed::ShorterThanFields { len }.into());
                    }
                    self.state = State::Sized { len };
                    return Ok(Some(Decoded::Length(len)));
                }
                state @ State::Sized { .. } => {
                    self.state = state;
                    return Ok(None);
                }
                State::Fields { len } => {
                    if self.staged.len() < FRAME_FIELDS {
                        self.state = State::Fields { len };
                        return Ok(None);
                    }
                    let stream = self.staged.get_u32_le();
                    let message_len = self.staged.get_u32_le() as usize;
                    self.state = State::Failed {
                        stream: Some(stream),
                    };
                    if message_len > len - FRAME_FIELDS {
                        return Err(Malformed::MessageBeyondFrame {
                            message_len,
                            frame_len: len,
                        }
                        .into());
                    }
                    if message_len > self.limits.max_message_len {
                        return Err(FrameError::TooLarge {
                            field: LengthField::Message,
                            len: message_len,
                            max: self.limits.max_message_len,
                        });
                    }
                    self.state = State::Message {
                        len,
                        stream,
                        message_len,
                    };
                }
                State::Message {
                    len,
                    stream,
                    message_len,
                } => {
                    if self.staged.len() < message_len {
                        self.state = State::Message {
                            len,
                            stream,
                            message_len,
                        };
                        return Ok(None);
                    }
                    let message = self.staged.split_to(message_len).freeze();
                    let body_len = len - FRAME_FIELDS - message_len;
                    let mut body = BytesMut::new();
                    if body_len > 0 {
                        body = (self.body_buffer)(body_len);
                        // Body bytes read ahead with the head: moved once.
                        let early = self.staged.len().min(body_len);
                        body.extend_from_slice(&self.staged[..early]);
                        self.staged.advance(early);
                    }
                    self.state = State::Body {
                        stream,
                        message,
                        body,
                        body_len,
                    };
                }
                State::Body {
                    stream,
                    message,
                    body,
                    body_len,
                } => {
                    if body.len() < body_len {
                        self.state = State::Body {
                            stream,
                            message,
                            body,
                            body_len,
                        };
                        return Ok(None);
                    }
                    self.state = State::Length;
                    return Ok(Some(Decoded::Frame(Frame {
                        stream,
                        message,
                        body: body.freeze(),
                    })));
                }
                state @ State::Failed { .. } => {
                    self.state = state;
                    return Ok(None);
                }
            }
        }
    }
}

/// Reads one frame; `Ok(None)` at a clean end of the stream. Reads exactly
/// the frame's bytes, never past it.
///
/// # Errors
/// As [`FrameDecoder::poll_decode`]; [`FrameError::Truncated`] if the
/// stream ends inside the frame, [`FrameError::Io`] if reading fails.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Option<Frame>, FrameError> {
    read_frame_with(reader, limits, |_| async {})
        .await
        .map(|frame| frame.map(|(frame, ())| frame))
}

/// Reads one frame as [`read_frame`] does, calling `room` with the frame's
/// length once its length field is accepted and waiting for what it
/// returns before reading the rest (a node reserves memory for the body
/// there); returns the frame with it.
///
/// # Errors
/// As [`read_frame`].
pub async fn read_frame_with<R, F, Fut, T>(
    reader: &mut R,
    limits: &Limits,
    room: F,
) -> Result<Option<(Frame, T)>, FrameError>
where
    R: AsyncRead + Unpin,
    F: FnOnce(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut decoder = FrameDecoder::new(*limits);
    let mut room = Some(room);
    let mut held = None;
    loop {
        match decoder.poll_decode()? {
            Some(Decoded::Length(len)) => {
                let room = room.take().expect("one length per frame");
                held = Some(room(len).await);
                decoder.proceed();
                continue;
            }
            Some(Decoded::Frame(frame)) => {
                return Ok(Some((frame, held.expect("room taken before the frame"))));
            }
            None => {}
        }
        let Some(mut buffer) = decoder.recv_buffer() else {
            unreachable!("a decoder without a frame or an error wants bytes")
        };
        let read = (&mut *reader)
            .take(buffer.limit as u64)
            .read_buf(&mut buffer.bytes)
            .await;
        decoder.handle_recv(buffer);
        match read {
            Ok(0) => {
                decoder.handle_end()?;
                return Ok(None);
            }
            Ok(_) => {}
            // What TLS reports for a connection closed without its close
            // message: inside a frame, the frame is cut short.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && decoder.in_frame() => {
                return Err(FrameError::Truncated);
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
}

/// Writes one frame (without flushing).
///
/// # Errors
/// Any I/O error, or `InvalidInput` if the frame would not fit its length
/// field.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    stream: u32,
    message: &[u8],
    body: &[u8],
) -> std::io::Result<()> {
    writer.write_all(&head(stream, message, body)?).await?;
    writer.write_all(message).await?;
    writer.write_all(body).await
}

/// One frame whole in memory: for a small frame that must be written with
/// a single `write_all` (see `write_frame` for the errors).
///
/// # Errors
/// `InvalidInput` if the frame would not fit its length field.
pub fn frame_bytes(stream: u32, message: &[u8], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let head = head(stream, message, body)?;
    Ok([&head[..], message, body].concat())
}

/// A frame's first 12 bytes: its length, stream id and message length.
fn head(stream: u32, message: &[u8], body: &[u8]) -> std::io::Result<[u8; HEAD_LEN]> {
    let len = frame_len(message.len(), body.len())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut head = [0u8; HEAD_LEN];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..8].copy_from_slice(&stream.to_le_bytes());
    head[8..].copy_from_slice(&(message.len() as u32).to_le_bytes());
    Ok(head)
}

/// The length field of a frame with this message and body, if it fits.
fn frame_len(message: usize, body: usize) -> Option<u32> {
    u32::try_from(FRAME_FIELDS.checked_add(message)?.checked_add(body)?).ok()
}

/// A frame too long for its length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a frame of {len} bytes does not fit its length field")]
pub struct FrameTooLong {
    /// The frame's length, head excluded.
    pub len: usize,
}

/// Encodes a frame as two buffers to write one after the other: the head
/// with the message (one allocation, the message encoded in place), and
/// `body` itself, not copied.
///
/// # Errors
/// [`FrameTooLong`] if the frame would not fit its length field.
pub fn encode_frame<T: Serialize>(
    stream: u32,
    message: &T,
    body: Bytes,
) -> Result<[Bytes; 2], FrameTooLong> {
    let mut out = Vec::with_capacity(HEAD_LEN + 32);
    out.resize(HEAD_LEN, 0);
    let mut out = postcard::to_extend(message, out).expect("protocol messages always encode");
    let message_len = out.len() - HEAD_LEN;
    let len = frame_len(message_len, body.len()).ok_or(FrameTooLong {
        len: FRAME_FIELDS + message_len + body.len(),
    })?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&stream.to_le_bytes());
    out[8..12].copy_from_slice(&(message_len as u32).to_le_bytes());
    Ok([Bytes::from(out), body])
}

/// Encodes a message for a frame.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).expect("protocol messages always encode")
}

/// Decodes a frame's message; trailing bytes are an error.
///
/// # Errors
/// [`Malformed::Undecodable`] or [`Malformed::TrailingBytes`] if the bytes
/// are not exactly one message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Malformed> {
    let (message, rest) = postcard::take_from_bytes(bytes).map_err(Malformed::Undecodable)?;
    if !rest.is_empty() {
        return Err(Malformed::TrailingBytes { count: rest.len() });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Request, Response};

    fn limits() -> Limits {
        Limits {
            max_shard_len: 1000,
            max_message_len: 100,
            max_batch: 10,
        }
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = Vec::new();
        let message = encode(&Request::Info);
        write_frame(&mut wire, 7, &message, b"body").await.unwrap();
        write_frame(&mut wire, 8, &message, b"").await.unwrap();
        let mut reader = &wire[..];
        let a = read_frame(&mut reader, &limits()).await.unwrap().unwrap();
        assert_eq!((a.stream, &a.body[..]), (7, &b"body"[..]));
        assert!(matches!(
            decode::<Request>(&a.message).unwrap(),
            Request::Info
        ));
        let b = read_frame(&mut reader, &limits()).await.unwrap().unwrap();
        assert_eq!((b.stream, b.body.len()), (8, 0));
        assert!(read_frame(&mut reader, &limits()).await.unwrap().is_none());
    }

    /// `encode_frame` writes the same bytes as `write_frame`, and leaves the
    /// body where it was.
    #[tokio::test]
    async fn encoded_frames_are_written_frames() {
        let body = Bytes::from_static(b"the body");
        let [head, out_body] = encode_frame(9, &Response::Shard, body.clone()).unwrap();
        assert_eq!(out_body.as_ptr(), body.as_ptr(), "the body was copied");
        let mut wire = Vec::new();
        write_frame(&mut wire, 9, &encode(&Response::Shard), &body)
            .await
            .unwrap();
        assert_eq!([&head[..], &out_body[..]].concat(), wire);
    }

    /// A frame that arrives a few bytes at a time, as from a slow link, is
    /// read whole, and the frame after it starts where it ended.
    #[tokio::test]
    async fn a_frame_arriving_in_small_pieces_is_read_whole() {
        let body: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
        let message = encode(&Request::Info);
        let mut wire = Vec::new();
        write_frame(&mut wire, 3, &message, &body).await.unwrap();
        write_frame(&mut wire, 4, &message, b"next").await.unwrap();
        let (mut write, mut read) = tokio::io::duplex(1000);
        let writer = tokio::spawn(async move { write.write_all(&wire).await });
        let limits = Limits {
            max_shard_len: body.len(),
            ..limits()
        };
        let frame = read_frame(&mut read, &limits).await.unwrap().unwrap();
        assert_eq!((frame.stream, &frame.message[..]), (3, &message[..]));
        assert!(frame.body == body, "the body came back changed");
        let next = read_frame(&mut read, &limits).await.unwrap().unwrap();
        assert_eq!((next.stream, &next.body[..]), (4, &b"next"[..]));
        writer.await.unwrap().unwrap();
    }

    /// Whatever the pieces the bytes arrive in, and whatever the
    /// read-ahead, the decoder finds the same frames, and a body's buffer
    /// is the one the body buffer function made, filled to its length.
    #[test]
    fn the_decoder_finds_the_same_frames_in_any_pieces() {
        let limits = Limits {
            max_shard_len: 70_000,
            ..limits()
        };
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (stream, len) in [(1u32, 0usize), (2, 1), (3, 70_000), (4, 5), (5, 0)] {
            let body: Vec<u8> = (0..len).map(|n| (n % 253) as u8).collect();
            let [head, body] = encode_frame(stream, &Request::Info, Bytes::from(body)).unwrap();
            wire.extend_from_slice(&head);
            wire.extend_from_slice(&body);
            expected.push((stream, body));
        }
        for read_ahead in [0, 7, 64 * 1024] {
            for piece in [1, 3, 12, 1000, wire.len()] {
                let mut decoder = FrameDecoder::new(limits).with_read_ahead(read_ahead);
                let mut found = Vec::new();
                let mut rest = &wire[..];
                loop {
                    while let Some(decoded) = decoder.poll_decode().unwrap() {
                        match decoded {
                            Decoded::Length(_) => decoder.proceed(),
                            Decoded::Frame(frame) => found.push((frame.stream, frame.body)),
                        }
                    }
                    if rest.is_empty() {
                        break;
                    }
                    let took = decoder.push(&rest[..piece.min(rest.len())]);
                    assert!(took > 0, "the decoder took nothing");
                    rest = &rest[took..];
                }
                assert_eq!(
                    found, expected,
                    "read-ahead {read_ahead}, pieces of {piece}"
                );
                assert!(!decoder.in_frame());
                decoder.handle_end().unwrap();
            }
        }
    }

    /// Without read-ahead the decoder never asks for a byte past the frame
    /// it reads; with it, never past the read-ahead. A length over the
    /// limit is refused before anything is allocated for it.
    #[test]
    fn reads_are_bounded() {
        let limits = Limits {
            max_shard_len: 100_000,
            ..limits()
        };
        let [head, body] =
            encode_frame(1, &Request::Info, Bytes::from(vec![1u8; 100_000])).unwrap();
        let wire = [&head[..], &body[..]].concat();
        let mut decoder = FrameDecoder::new(limits);
        let mut taken = 0;
        let frame = loop {
            match decoder.poll_decode().unwrap() {
                Some(Decoded::Length(_)) => {
                    decoder.proceed();
                    continue;
                }
                Some(Decoded::Frame(frame)) => break frame,
                None => {}
            }
            let mut buffer = decoder.recv_buffer().unwrap();
            assert!(taken + buffer.limit <= wire.len(), "asked past the frame");
            let n = buffer.limit;
            buffer.bytes.extend_from_slice(&wire[taken..taken + n]);
            decoder.handle_recv(buffer);
            taken += n;
        };
        assert_eq!((frame.stream, frame.body), (1, body));

        let mut decoder = FrameDecoder::new(limits).with_read_ahead(1000);
        let buffer = decoder.recv_buffer().unwrap();
        assert_eq!(buffer.limit, 1000);
        decoder.handle_recv(buffer);

        let mut decoder = FrameDecoder::new(limits);
        decoder.push(&u32::MAX.to_le_bytes());
        assert!(decoder.poll_decode().is_err());
        assert!(
            decoder.staged.capacity() < 64,
            "allocated for a refused frame"
        );
        assert!(decoder.recv_buffer().is_none(), "reads on after an error");
    }

    #[tokio::test]
    async fn oversized_and_malformed_frames_are_refused() {
        // A length over the limit is refused from the length field alone.
        let huge = (u32::MAX).to_le_bytes();
        let err = read_frame(&mut &huge[..], &limits()).await.unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    field: LengthField::Frame,
                    len,
                    max,
                } if len == u32::MAX as usize && max == limits().max_frame_len()
            ),
            "{err:?}"
        );
        // Shorter than its own fields.
        let short = 3u32.to_le_bytes();
        assert!(matches!(
            read_frame(&mut &short[..], &limits()).await,
            Err(FrameError::Malformed(Malformed::ShorterThanFields {
                len: 3
            }))
        ));
        // A message length beyond the frame.
        let mut bad = 12u32.to_le_bytes().to_vec();
        bad.extend_from_slice(&1u32.to_le_bytes());
        bad.extend_from_slice(&50u32.to_le_bytes());
        bad.extend_from_slice(&[0; 4]);
        assert!(matches!(
            read_frame(&mut &bad[..], &limits()).await,
            Err(FrameError::Malformed(Malformed::MessageBeyondFrame {
                message_len: 50,
                frame_len: 12
            }))
        ));
        // A message length over its limit, refused before the message is
        // read.
        let mut long = 1000u32.to_le_bytes().to_vec();
        long.extend_from_slice(&1u32.to_le_bytes());
        long.extend_from_slice(&101u32.to_le_bytes());
        assert!(matches!(
            read_frame(&mut &long[..], &limits()).await,
            Err(FrameError::TooLarge {
                field: LengthField::Message,
                len: 101,
                max: 100
            })
        ));
        // Cut in the middle.
        let mut wire = Vec::new();
        write_frame(&mut wire, 1, b"xx", b"yyyy").await.unwrap();
        assert!(matches!(
            read_frame(&mut &wire[..wire.len() - 1], &limits()).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &wire[..2], &limits()).await,
            Err(FrameError::Truncated)
        ));
        // Trailing bytes after a message.
        let mut message = encode(&Request::Info);
        message.push(0);
        assert_eq!(
            decode::<Request>(&message).unwrap_err(),
            Malformed::TrailingBytes { count: 1 }
        );
        assert!(matches!(
            decode::<Request>(&[0xff; 4]).unwrap_err(),
            Malformed::Undecodable(_)
        ));
    }

    /// The refusals a node sends keep the words they had when errors were
    /// strings.
    #[test]
    fn frame_errors_read_as_before() {
        let too_large = FrameError::TooLarge {
            field: LengthField::Frame,
            len: 5,
            max: 4,
        };
        assert_eq!(
            too_large.to_string(),
            "frame of 5 bytes exceeds the limit of 4"
        );
        assert_eq!(too_large.code(), Some(ErrorCode::TooLarge));
        let short = FrameError::from(Malformed::ShorterThanFields { len: 3 });
        assert_eq!(
            short.to_string(),
            "malformed frame: frame of 3 bytes is shorter than its fields"
        );
        assert_eq!(short.code(), Some(ErrorCode::BadRequest));
        assert_eq!(FrameError::Truncated.code(), None);
    }
}
