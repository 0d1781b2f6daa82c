//! The hello: the version handshake that opens every `tcp://` connection
//! and the first stream of every `quic://` connection, before any frame.
//!
//! ```text
//! client: "cnwp" │ count (1) │ versions (count)
//! node:   "cnwp" │ chosen (1, 0 = none) │ count (1) │ versions (count) │ message length (u16 LE) │ message (UTF-8)
//! ```
//!
//! Its format never changes, so a peer of any version learns which versions
//! the other speaks: the client lists the versions it speaks, the node
//! picks the newest one both speak, or answers with the versions it speaks
//! and a message, then closes. The connection state machines of
//! [`crate::conn`] start after it, with the version it chose.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::HELLO_MAGIC;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::VERSIONS;

    #[tokio::test]
    async fn hello_picks_a_common_version_or_names_the_supported_ones() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let node = tokio::spawn(async move { server_hello(&mut server, VERSIONS).await });
        assert_eq!(client_hello(&mut client, &[9, 1]).await.unwrap(), 1);
        assert_eq!(node.await.unwrap().unwrap(), 1);

        // Old and new meet on the old one's newest version either way
        // round; new and new on 3.
        for (client_versions, node_versions, chosen) in [
            (&[1u8][..], VERSIONS, 1),
            (VERSIONS, &[1u8][..], 1),
            (&[2u8, 1][..], VERSIONS, 2),
            (VERSIONS, &[2u8, 1][..], 2),
            (VERSIONS, VERSIONS, 3),
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
