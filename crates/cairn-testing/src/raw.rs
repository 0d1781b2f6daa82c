//! Raw `tcp://` connections: TLS to a node with its id pinned, and the
//! protocol's frames written and read by the test itself, for cases the
//! real client would never produce (old protocol versions, half-sent
//! frames, unknown versions).

use std::sync::Arc;

use cairn_net::NodeAddress;
use cairn_net::frame;
use cairn_net::tls::{self, ALPN_CAIRN, Pin};
use tokio::net::TcpStream;

/// A TLS stream to a `tcp://` node.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection to `address` (which must carry its node id), before
/// the protocol's hello.
///
/// # Panics
/// If the address has no node id, or the connection or the TLS handshake
/// fails.
pub async fn tls_connection(address: &NodeAddress) -> TlsStream {
    let pin = Pin::Node(address.node_id.expect("a raw connection pins the node"));
    let (config, _) = tls::client_config(pin, &[ALPN_CAIRN]);
    let tcp = TcpStream::connect(address.authority()).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(tls::server_name(), tcp)
        .await
        .unwrap()
}

/// A connection to `address` after a hello offering protocol version 1
/// only, whose node sends nothing but answers (version 2 adds keep-alives
/// and pongs), so that what a test reads is exactly the node's answers and
/// closes.
///
/// # Panics
/// As [`tls_connection`], or if the node does not settle on version 1.
pub async fn v1_connection(address: &NodeAddress) -> TlsStream {
    let mut stream = tls_connection(address).await;
    assert_eq!(frame::client_hello(&mut stream, &[1]).await.unwrap(), 1);
    stream
}
