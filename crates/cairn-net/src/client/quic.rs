//! `quic://`: one QUIC connection per node, a bidirectional stream per
//! request, after the hello on the first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{ClientError, ClientOptions, resolve};
use crate::address::NodeAddress;
use crate::frame;
use crate::protocol::{Limits, Request, Response, VERSIONS};

/// A QUIC connection to the node at `address`, and the protocol version
/// its hello chose.
pub(super) async fn connect(
    address: &NodeAddress,
    tls: rustls::ClientConfig,
    options: &ClientOptions,
) -> Result<(quinn::Connection, u8), ClientError> {
    let socket = resolve(address).await?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ClientError::Protocol(format!("QUIC configuration: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = crate::quic::transport_config(options.quic_congestion);
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(options.request_timeout.max(Duration::from_secs(10)))
                .expect("a few seconds is a valid idle timeout"),
        ))
        .keep_alive_interval(Some(Duration::from_secs(5)));
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if socket.is_ipv6() {
        "[::]:0".parse().expect("valid")
    } else {
        "0.0.0.0:0".parse().expect("valid")
    };
    let connect_error = |source| ClientError::Connect {
        address: address.to_string(),
        source,
    };
    let (udp, granted) = crate::quic::bind_udp(bind).map_err(connect_error)?;
    tracing::debug!(%address, receive_buffer = granted, "QUIC socket bound");
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        udp,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(connect_error)?;
    endpoint.set_default_client_config(config);
    let connection = endpoint
        .connect(socket, "cairn.invalid")
        .map_err(|e| ClientError::Protocol(format!("QUIC: {e}")))?
        .await
        .map_err(|e| error(address, e))?;
    let (send, recv) = connection.open_bi().await.map_err(|e| error(address, e))?;
    let mut stream = tokio::io::join(recv, send);
    let version = frame::client_hello(&mut stream, VERSIONS)
        .await
        .map_err(|source| ClientError::Handshake {
            address: address.to_string(),
            source,
        })?;
    let (_, mut send) = stream.into_inner();
    let _ = send.finish();
    Ok((connection, version))
}

fn error(address: &NodeAddress, cause: quinn::ConnectionError) -> ClientError {
    ClientError::Connect {
        address: address.to_string(),
        source: std::io::Error::other(cause),
    }
}

pub(super) async fn call(
    connection: &quinn::Connection,
    request: &Request,
    body: &[u8],
    limits: &Limits,
) -> Result<(Response, Bytes), ClientError> {
    let broken = |e: &dyn std::fmt::Display| ClientError::Broken(e.to_string());
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| broken(&e))?;
    frame::write_frame(&mut send, 0, &frame::encode(request), body)
        .await
        .map_err(|e| broken(&e))?;
    send.finish().map_err(|e| broken(&e))?;
    let frame = frame::read_frame(&mut recv, limits)
        .await?
        .ok_or_else(|| ClientError::Broken("the node closed the stream".into()))?;
    let response = frame::decode::<Response>(&frame.message).map_err(frame::FrameError::from)?;
    Ok((response, frame.body))
}
