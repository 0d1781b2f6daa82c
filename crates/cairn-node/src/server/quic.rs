//! `quic://`: cairn's frames over QUIC, one bidirectional stream per
//! request.
//!
//! The first stream of a connection carries the version hello; each later
//! stream carries one request frame and its answer. A login applies to the
//! whole connection. QUIC's own limits bound each connection: at most
//! [`MAX_STREAMS`] requests at once, and the idle timeout of `node.toml`.

use std::sync::Arc;
use std::time::Duration;

use cairn_net::frame;
use cairn_net::identity::NodeIdentity;
use cairn_net::protocol::{ErrorBody, ErrorCode, Request, Response, VERSIONS};
use cairn_net::tls::{self, ALPN_CAIRN};
use tokio::sync::{Mutex, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::{ServeError, Shared};
use crate::config::NodeConfig;
use crate::service::Session;

/// Most requests (streams) a QUIC connection may have open at once.
pub const MAX_STREAMS: u32 = 64;

/// A QUIC endpoint on `socket` presenting `identity`.
pub(crate) fn endpoint(
    socket: std::net::UdpSocket,
    identity: &NodeIdentity,
    config: &NodeConfig,
) -> Result<quinn::Endpoint, ServeError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_config(
        identity,
        &[ALPN_CAIRN],
    )?)
    .map_err(|e| ServeError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = cairn_net::quic::transport_config(config.quic_congestion);
    transport
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(config.idle_timeout())
                .map_err(|e| ServeError::Quic(e.to_string()))?,
        ));
    server.transport_config(Arc::new(transport));
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| ServeError::Quic(e.to_string()))
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    loop {
        let incoming = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            warn!(peer = %incoming.remote_address(), "connection refused: max_connections reached");
            incoming.refuse();
            continue;
        };
        let shared_ = shared.clone();
        shared.tracker.spawn(async move {
            let peer = incoming.remote_address();
            if let Err(e) = connection(incoming, &shared_, permit).await {
                debug!(%peer, "quic:// connection ended: {e}");
            }
        });
    }
}

async fn connection(
    incoming: quinn::Incoming,
    shared: &Arc<Shared>,
    _permit: OwnedSemaphorePermit,
) -> Result<(), String> {
    let deadline = shared.request_timeout;
    let connection = tokio::time::timeout(deadline, incoming)
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let peer = connection.remote_address();
    let (send, recv) = tokio::time::timeout(deadline, connection.accept_bi())
        .await
        .map_err(|_| "no hello in time".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut hello = tokio::io::join(recv, send);
    let greeted = tokio::time::timeout(deadline, frame::server_hello(&mut hello, VERSIONS)).await;
    let (_, mut send) = hello.into_inner();
    let _ = send.finish();
    match greeted {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            // Let the hello answer reach the peer before closing.
            tokio::time::sleep(Duration::from_millis(50)).await;
            connection.close(1u32.into(), b"protocol version");
            return Err(e.to_string());
        }
        Err(_) => {
            connection.close(1u32.into(), b"no hello");
            return Err("hello timed out".into());
        }
    }

    let session = Arc::new(Mutex::new(Session::new(peer.ip())));
    let mut streams = JoinSet::new();
    loop {
        while streams.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = connection.accept_bi() => accepted,
        };
        let Ok((send, recv)) = accepted else { break };
        let (shared, session) = (shared.clone(), session.clone());
        streams.spawn(async move { request(send, recv, &shared, &session).await });
    }
    while streams.join_next().await.is_some() {}
    connection.close(0u32.into(), b"bye");
    Ok(())
}

/// Reads one request from a stream and answers it there.
async fn request(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    shared: &Arc<Shared>,
    session: &Mutex<Session>,
) {
    let node = &shared.node;
    let (stream, response, body) = match shared.read_request(&mut recv).await {
        Err(None) => refusal(ErrorCode::BadRequest, "request timed out"),
        Err(Some(e)) => match e.code() {
            Some(code) => refusal(code, &e.to_string()),
            // The stream failed or ended: nobody to answer.
            None => return,
        },
        Ok((frame, budget)) => match frame::decode::<Request>(&frame.message) {
            Err(e) => refusal(ErrorCode::BadRequest, &e.to_string()),
            Ok(request) => {
                let (response, body) = if matches!(request, Request::Login { .. }) {
                    let mut session = session.lock().await;
                    node.handle(&mut session, request, frame.body).await
                } else {
                    let mut snapshot = session.lock().await.clone();
                    node.handle(&mut snapshot, request, frame.body).await
                };
                drop(budget);
                (frame.stream, response, body)
            }
        },
    };
    let message = frame::encode(&response);
    let _ = tokio::time::timeout(shared.request_timeout, async {
        frame::write_frame(&mut send, stream, &message, &body).await?;
        send.finish()?;
        Ok::<_, std::io::Error>(())
    })
    .await;
}

fn refusal(code: ErrorCode, message: &str) -> (u32, Response, bytes::Bytes) {
    (
        0,
        Response::Error(ErrorBody::new(code, message)),
        bytes::Bytes::new(),
    )
}
