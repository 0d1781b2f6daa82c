//! Real TLS 1.3 handshakes on 127.0.0.1: a client pinned to a node id
//! connects to that node only, whatever certificate authorities say.

use std::sync::Arc;

use cairn_core::Id;
use cairn_net::identity::{NodeId, NodeIdentity};
use cairn_net::tls::{self, ALPN_CAIRN, NodeIdMismatch, Pin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves one TLS connection that echoes one line, on a free port.
async fn echo_server(identity: &NodeIdentity) -> std::net::SocketAddr {
    let config = tls::server_config(identity, &[ALPN_CAIRN]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 5];
                    if tls.read_exact(&mut buf).await.is_ok() {
                        let _ = tls.write_all(&buf).await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(addr: std::net::SocketAddr, pin: Pin) -> std::io::Result<Vec<u8>> {
    connect_seen(addr, pin).await.0
}

async fn connect_seen(
    addr: std::net::SocketAddr,
    pin: Pin,
) -> (std::io::Result<Vec<u8>>, Option<NodeId>) {
    let (config, seen) = tls::client_config(pin, &[ALPN_CAIRN]);
    let result = talk(addr, config).await;
    let seen = *seen.lock().unwrap();
    (result, seen)
}

async fn talk(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<Vec<u8>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = connector.connect(tls::server_name(), tcp).await?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(ALPN_CAIRN));
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    stream.write_all(b"hello").await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn pinned_client_reaches_the_node_it_names() {
    let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
    let addr = echo_server(&identity).await;
    assert_eq!(
        connect(addr, Pin::Node(identity.id())).await.unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn another_node_is_refused_and_the_error_names_both_ids() {
    let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
    let addr = echo_server(&identity).await;
    let expected = NodeId(Id::of(b"some other node"));
    let err = connect(addr, Pin::Node(expected)).await.unwrap_err();
    let mismatch = NodeIdMismatch::find(&err).expect("the cause is a node id mismatch");
    assert_eq!(mismatch.expected, expected);
    assert_eq!(mismatch.actual, identity.id());
}

#[tokio::test]
async fn trust_on_first_use_records_the_id() {
    let identity = NodeIdentity::generate(&[]).unwrap();
    let addr = echo_server(&identity).await;
    let (result, seen) = connect_seen(addr, Pin::FirstUse).await;
    assert_eq!(result.unwrap(), b"hello");
    assert_eq!(seen, Some(identity.id()));
}

#[test]
fn identity_survives_pem_and_a_foreign_key_is_refused() {
    let a = NodeIdentity::generate(&["node.example".into()]).unwrap();
    let loaded = NodeIdentity::from_pem(&a.certificate_pem(), &a.key_pem()).unwrap();
    assert_eq!(loaded.id(), a.id());
    let b = NodeIdentity::generate(&[]).unwrap();
    assert!(NodeIdentity::from_pem(&a.certificate_pem(), &b.key_pem()).is_err());
    assert!(NodeIdentity::from_pem("not pem", &a.key_pem()).is_err());
    // A new certificate for the same key keeps the id.
    assert_eq!(a.reissue(&["other.example".into()]).unwrap().id(), a.id());
    assert!(!format!("{a:?}").contains(&a.key_pem()[30..60]));
}

#[test]
fn a_generic_client_trusting_the_certificate_accepts_it() {
    // What `curl --cacert node.crt https://127.0.0.1:…` does: ordinary
    // WebPKI verification with the node's certificate as the only root.
    use rustls::client::danger::ServerCertVerifier;
    let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity.certificate().clone()).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        tls::provider(),
    )
    .build()
    .unwrap();
    let now = rustls::pki_types::UnixTime::now();
    for name in ["127.0.0.1", "localhost"] {
        let name = rustls::pki_types::ServerName::try_from(name).unwrap();
        verifier
            .verify_server_cert(identity.certificate(), &[], &name, &[], now)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    let other = rustls::pki_types::ServerName::try_from("example.com").unwrap();
    assert!(
        verifier
            .verify_server_cert(identity.certificate(), &[], &other, &[], now)
            .is_err()
    );
}
