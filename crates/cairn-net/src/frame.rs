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
//! A reader learns a frame's length from its first four bytes and refuses a
//! frame over the limit before allocating anything for it; a server can
//! reserve memory from a budget between [`read_len`] and [`read_payload`].
//! The body is read into the same buffer as the message and handed on
//! without copying.
//!
//! Before any frame, each side sends a [`Hello`](crate::protocol::Hello):
//! the client lists the versions it speaks, the node picks one or answers
//! with the versions it speaks and a message, then closes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::protocol::{HELLO_MAGIC, Limits};

/// Bytes of a frame after its length field and before its message.
const FRAME_FIELDS: usize = 8;

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
    /// The frame is longer than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame's fields contradict each other, or its message does not
    /// decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Reads a frame's length field. `Ok(None)` means the peer closed the
/// connection cleanly between frames.
///
/// # Errors
/// [`FrameError::TooLarge`] for a length over `limits`, before anything is
/// allocated; [`FrameError::Truncated`] if the connection ends inside the
/// field.
pub async fn read_len<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Option<usize>, FrameError> {
    let mut field = [0u8; 4];
    let mut filled = 0;
    while filled < field.len() {
        match reader.read(&mut field[filled..]).await? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => filled += n,
        }
    }
    let len = u32::from_le_bytes(field) as usize;
    let max = limits.max_frame_len();
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len < FRAME_FIELDS {
        return Err(FrameError::Malformed(format!(
            "frame of {len} bytes is shorter than its fields"
        )));
    }
    Ok(Some(len))
}

/// Reads the rest of a frame whose length [`read_len`] returned.
///
/// # Errors
/// [`FrameError::Truncated`] if the connection ends early,
/// [`FrameError::Malformed`] or [`FrameError::TooLarge`] if the message
/// length is impossible or over the limit.
pub async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    limits: &Limits,
) -> Result<Frame, FrameError> {
    // Read into the buffer's spare capacity rather than zeroing it first:
    // a node zeroed every shard it received, 5 % of its CPU in a put.
    let mut buffer = BytesMut::with_capacity(len);
    while buffer.len() < len {
        let rest = (len - buffer.len()) as u64;
        match (&mut *reader).take(rest).read_buf(&mut buffer).await {
            Ok(0) => return Err(FrameError::Truncated),
            Ok(_) => {}
            // What TLS reports for a connection closed without its close
            // message.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(FrameError::Truncated);
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let stream = buffer.get_u32_le();
    let message_len = buffer.get_u32_le() as usize;
    if message_len > buffer.len() {
        return Err(FrameError::Malformed(format!(
            "message of {message_len} bytes in a frame of {len}"
        )));
    }
    if message_len > limits.max_message_len {
        return Err(FrameError::TooLarge {
            len: message_len,
            max: limits.max_message_len,
        });
    }
    let message = buffer.split_to(message_len).freeze();
    Ok(Frame {
        stream,
        message,
        body: buffer.freeze(),
    })
}

/// Reads one frame; `Ok(None)` at a clean end of the connection.
///
/// # Errors
/// As [`read_len`] and [`read_payload`].
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Option<Frame>, FrameError> {
    match read_len(reader, limits).await? {
        Some(len) => read_payload(reader, len, limits).await.map(Some),
        None => Ok(None),
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
fn head(stream: u32, message: &[u8], body: &[u8]) -> std::io::Result<[u8; 12]> {
    let len = u32::try_from(FRAME_FIELDS + message.len() + body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..8].copy_from_slice(&stream.to_le_bytes());
    head[8..].copy_from_slice(&(message.len() as u32).to_le_bytes());
    Ok(head)
}

/// Encodes a message for a frame.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).expect("protocol messages always encode")
}

/// Decodes a frame's message; trailing bytes are an error.
///
/// # Errors
/// [`FrameError::Malformed`] if the bytes are not exactly one message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (message, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| FrameError::Malformed(format!("message does not decode: {e}")))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} bytes after the message",
            rest.len()
        )));
    }
    Ok(message)
}

/// Why the hello exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The connection failed or closed.
    #[error("connection failed during the handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak cairn's protocol.
    #[error("the peer does not speak cairn's protocol")]
    NotCairn,
    /// No version in common.
    #[error("no protocol version in common: {message}")]
    Version {
        /// Versions the client offered.
        offered: Vec<u8>,
        /// Versions the node speaks.
        supported: Vec<u8>,
        /// The node's explanation.
        message: String,
    },
}

/// The client's side of the hello: offers `versions`, returns the one the
/// node chose.
///
/// # Errors
/// [`HandshakeError::Version`] (with the node's versions and message) if
/// the node speaks none of them.
pub async fn client_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    versions: &[u8],
) -> Result<u8, HandshakeError> {
    let mut hello = HELLO_MAGIC.to_vec();
    hello.push(versions.len() as u8);
    hello.extend_from_slice(versions);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    let mut head = [0u8; 6];
    stream.read_exact(&mut head).await?;
    if head[..4] != HELLO_MAGIC {
        return Err(HandshakeError::NotCairn);
    }
    let chosen = head[4];
    let mut supported = vec![0u8; usize::from(head[5])];
    stream.read_exact(&mut supported).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut message = vec![0u8; usize::from(u16::from_le_bytes(len))];
    stream.read_exact(&mut message).await?;
    if chosen == 0 || !versions.contains(&chosen) {
        return Err(HandshakeError::Version {
            offered: versions.to_vec(),
            supported,
            message: String::from_utf8_lossy(&message).into_owned(),
        });
    }
    Ok(chosen)
}

/// The node's side of the hello: reads the client's offer and picks the
/// newest version both speak. With none in common it answers with the
/// versions it speaks and a message, and returns an error; the caller then
/// closes the connection.
///
/// # Errors
/// [`HandshakeError::NotCairn`] for a peer that does not start with the
/// magic; [`HandshakeError::Version`] when no version is shared.
pub async fn server_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    supported: &[u8],
) -> Result<u8, HandshakeError> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).await?;
    if head[..4] != HELLO_MAGIC {
        return Err(HandshakeError::NotCairn);
    }
    let mut offered = vec![0u8; usize::from(head[4])];
    stream.read_exact(&mut offered).await?;
    // 0 is the answer "none in common", never a version, even if both
    // sides list it.
    let chosen = supported
        .iter()
        .copied()
        .find(|v| *v != 0 && offered.contains(v))
        .unwrap_or(0);
    let message = if chosen == 0 {
        format!(
            "this node speaks protocol version(s) {supported:?}, the client offered {offered:?}: upgrade the older side"
        )
    } else {
        String::new()
    };
    let mut reply = HELLO_MAGIC.to_vec();
    reply.push(chosen);
    reply.push(supported.len() as u8);
    reply.extend_from_slice(supported);
    reply.extend_from_slice(&(message.len() as u16).to_le_bytes());
    reply.extend_from_slice(message.as_bytes());
    stream.write_all(&reply).await?;
    stream.flush().await?;
    if chosen == 0 {
        return Err(HandshakeError::Version {
            offered,
            supported: supported.to_vec(),
            message,
        });
    }
    Ok(chosen)
}

/// A reader that adds the bytes it hands out to a shared count: how both
/// ends of a `tcp://` connection's liveness check (see
/// [`crate::protocol`]) tell a link that carries bytes from a silent one.
/// Over TLS it counts whole records only, so a record stalled by a
/// corrupted length shows as silence.
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Reads from `inner`, adding what it reads to `count`.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Self { inner, count }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.count.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Request, VERSIONS};

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

    #[tokio::test]
    async fn oversized_and_malformed_frames_are_refused() {
        // A length over the limit is refused from the length field alone.
        let huge = (u32::MAX).to_le_bytes();
        let err = read_frame(&mut &huge[..], &limits()).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        // Shorter than its own fields.
        let short = 3u32.to_le_bytes();
        assert!(matches!(
            read_frame(&mut &short[..], &limits()).await,
            Err(FrameError::Malformed(_))
        ));
        // A message length beyond the frame.
        let mut bad = 12u32.to_le_bytes().to_vec();
        bad.extend_from_slice(&1u32.to_le_bytes());
        bad.extend_from_slice(&50u32.to_le_bytes());
        bad.extend_from_slice(&[0; 4]);
        assert!(matches!(
            read_frame(&mut &bad[..], &limits()).await,
            Err(FrameError::Malformed(_))
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
        assert!(decode::<Request>(&message).is_err());
    }

    #[tokio::test]
    async fn hello_picks_a_common_version_or_names_the_supported_ones() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let node = tokio::spawn(async move { server_hello(&mut server, VERSIONS).await });
        assert_eq!(client_hello(&mut client, &[9, 1]).await.unwrap(), 1);
        assert_eq!(node.await.unwrap().unwrap(), 1);

        // Old and new meet on version 1 either way round; new and new on 2.
        for (client_versions, node_versions, chosen) in [
            (&[1u8][..], VERSIONS, 1),
            (VERSIONS, &[1u8][..], 1),
            (VERSIONS, VERSIONS, 2),
        ] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            let node = tokio::spawn(async move { server_hello(&mut server, node_versions).await });
            assert_eq!(
                client_hello(&mut client, client_versions).await.unwrap(),
                chosen
            );
            assert_eq!(node.await.unwrap().unwrap(), chosen);
        }

        let (mut client, mut server) = tokio::io::duplex(1024);
        let node = tokio::spawn(async move { server_hello(&mut server, VERSIONS).await });
        match client_hello(&mut client, &[7]).await {
            Err(HandshakeError::Version {
                supported, message, ..
            }) => {
                assert_eq!(supported, VERSIONS);
                assert!(message.contains(&format!("{VERSIONS:?}")), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            node.await.unwrap(),
            Err(HandshakeError::Version { .. })
        ));
    }

    /// Found by the `hello` fuzz target: with 0 in both lists, the node
    /// "chose" 0, which means none, although both spoke version 61.
    #[tokio::test]
    async fn version_zero_is_never_chosen() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let supported = [0, 61, 0, 0, 16, 50, 0, 107, 46];
        let node = tokio::spawn(async move { server_hello(&mut server, &supported).await });
        assert_eq!(
            client_hello(&mut client, &[61, 0, 0, 16]).await.unwrap(),
            61
        );
        assert_eq!(node.await.unwrap().unwrap(), 61);

        let (mut client, mut server) = tokio::io::duplex(1024);
        let node = tokio::spawn(async move { server_hello(&mut server, &[0]).await });
        assert!(client_hello(&mut client, &[0]).await.is_err());
        assert!(node.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_stranger_is_not_cairn() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(matches!(
            server_hello(&mut server, VERSIONS).await,
            Err(HandshakeError::NotCairn)
        ));
    }
}
