//! The client's liveness check of `tcp://` connections against scripted
//! nodes, through the real client driver and real TLS over an in-memory
//! pipe, on tokio's paused clock (see `cairn_net::protocol`, "Liveness"):
//! what it does is fixed by what the node does, so each case is exact, and
//! the seconds it waits pass at once. The same rules are checked on the
//! state machines alone in `cairn_net::conn`'s tests; real nodes, stalled
//! records and slow links are in `crates/cairn-client/tests/liveness.rs`.
//!
//! Bugs these guard against:
//! - a ping sent to a node of protocol version 1, which does not know the
//!   message and would close the connection as malformed;
//! - a node that went silent in the middle of a request (the way a reader
//!   stuck in a corrupted TLS record looks from outside) waited on until
//!   the request timeout;
//! - a slow answer cut short although the node answers pings;
//! - a request given up (timed out) with its frame half written, after
//!   which the next request's bytes would have been read as the rest of
//!   that frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::identity::NodeIdentity;
use cairn_net::protocol::{Limits, Request, Response};
use cairn_net::tls::{self, ALPN_CAIRN};
use cairn_net::{NodeAddress, frame};
use tokio::io::{AsyncWriteExt, DuplexStream};

/// How the scripted node behaves once it has read the first request.
#[derive(Clone, Copy)]
enum Script {
    /// Speaks version 1 only; answers the request after 3 s, reading (and
    /// counting) whatever else comes meanwhile.
    OldAndSlow,
    /// Speaks version 2; never reads or writes again.
    Silent,
    /// Speaks version 2; answers the request after 3 s and every ping at
    /// once.
    SlowButAlive,
}

/// The shard the scripted nodes serve.
const SHARD: &[u8] = b"the shard the scripted node serves";

/// Starts a node that follows `script` at the other end of an in-memory
/// pipe; returns its address, the client's end of the pipe, and the count
/// of frames it read after the first request.
fn scripted_node(script: Script) -> (NodeAddress, DuplexStream, Arc<AtomicU32>) {
    let identity = NodeIdentity::generate(&["127.0.0.1".to_owned()]).unwrap();
    let config = tls::server_config(&identity, &[ALPN_CAIRN]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    // Smaller than the large upload below: a write the node does not read
    // blocks, as on a socket.
    let (client, node) = tokio::io::duplex(256 * 1024);
    let extra = Arc::new(AtomicU32::new(0));
    let counted = extra.clone();
    tokio::spawn(async move {
        let mut tls = acceptor.accept(node).await.unwrap();
        let versions: &[u8] = match script {
            Script::OldAndSlow => &[1],
            Script::Silent | Script::SlowButAlive => &[2, 1],
        };
        frame::server_hello(&mut tls, versions).await.unwrap();
        let limits = Limits::default();
        let request = frame::read_frame(&mut tls, &limits).await.unwrap().unwrap();
        assert!(matches!(
            frame::decode::<Request>(&request.message).unwrap(),
            Request::GetShard { .. }
        ));
        let (mut read, write) = tokio::io::split(tls);
        let write = Arc::new(tokio::sync::Mutex::new(write));
        let answer = {
            let write = write.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let mut write = write.lock().await;
                let message = frame::encode(&Response::Shard);
                frame::write_frame(&mut *write, request.stream, &message, SHARD)
                    .await
                    .unwrap();
                write.flush().await.unwrap();
            }
        };
        match script {
            Script::Silent => {
                // Holds the connection open, reading nothing.
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(read);
            }
            Script::OldAndSlow | Script::SlowButAlive => {
                let answering = tokio::spawn(answer);
                while let Ok(Some(frame)) = frame::read_frame(&mut read, &limits).await {
                    counted.fetch_add(1, Ordering::Relaxed);
                    let request: Request = frame::decode(&frame.message).unwrap();
                    assert!(matches!(request, Request::Ping), "{request:?}");
                    let mut write = write.lock().await;
                    frame::write_frame(
                        &mut *write,
                        frame.stream,
                        &frame::encode(&Response::Pong),
                        b"",
                    )
                    .await
                    .unwrap();
                    write.flush().await.unwrap();
                }
                answering.await.unwrap();
            }
        }
    });
    let address = "tcp://127.0.0.1:9"
        .parse::<NodeAddress>()
        .unwrap()
        .with_node_id(identity.id());
    (address, client, extra)
}

/// A request timeout far above the tests' own bound (`BOUND`), and the
/// default ping interval (1 s).
fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(60),
        ..ClientOptions::default()
    }
}

const BOUND: Duration = Duration::from_secs(20);

async fn get(address: &NodeAddress, pipe: DuplexStream) -> Result<Bytes, ClientError> {
    let connection = Connection::connect_over(pipe, address, &options(), false)
        .await
        .unwrap();
    tokio::time::timeout(BOUND, connection.get_shard(&Id::of(SHARD)))
        .await
        .expect("the request timeout is 60 s")
}

#[tokio::test(start_paused = true)]
async fn a_version_1_node_is_never_pinged() {
    let (address, pipe, extra) = scripted_node(Script::OldAndSlow);
    // Three seconds without a byte: a version 2 node would have had pings.
    assert_eq!(get(&address, pipe).await.unwrap(), SHARD);
    assert_eq!(extra.load(Ordering::Relaxed), 0, "the old node got frames");
}

#[tokio::test(start_paused = true)]
async fn a_node_gone_silent_in_the_middle_of_a_request_breaks_the_connection() {
    let (address, pipe, _) = scripted_node(Script::Silent);
    let started = tokio::time::Instant::now();
    let err = get(&address, pipe).await.unwrap_err();
    // Two ping intervals: the ping after one, the verdict after another.
    assert_eq!(started.elapsed().as_secs(), 2, "{err}");
    assert!(matches!(err, ClientError::Broken(_)), "{err}");
    assert!(err.to_string().contains("stalled"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_is_awaited_while_the_node_answers_pings() {
    let (address, pipe, pings) = scripted_node(Script::SlowButAlive);
    assert_eq!(get(&address, pipe).await.unwrap(), SHARD);
    // Three seconds of silence but for pongs: the check did ping.
    assert!(pings.load(Ordering::Relaxed) >= 1);
}

/// A request given up with its frame half written closes the connection;
/// one given up after its frame went out whole does not.
#[tokio::test(start_paused = true)]
async fn a_request_given_up_half_sent_closes_the_connection() {
    let (address, pipe, _) = scripted_node(Script::Silent);
    let options = ClientOptions {
        request_timeout: Duration::from_secs(1),
        // Only the timeout ends requests here, not the liveness check.
        ping_interval: None,
        ..ClientOptions::default()
    };
    let connection = Connection::connect_over(pipe, &address, &options, false)
        .await
        .unwrap();
    // Read whole by the node, never answered.
    let err = connection.get_shard(&Id::of(SHARD)).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(!connection.is_closed(), "a whole frame was sent");

    // More than the pipe and the client's buffers hold (the node reads
    // nothing more), and near the largest shard: the write blocks and
    // times out.
    let body = Bytes::from(vec![7u8; 60 << 20]);
    let err = connection
        .put_shard(&Id::of(&body), body)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(connection.is_closed(), "the frame was half sent");
    let err = tokio::time::timeout(BOUND, connection.get_shard(&Id::of(SHARD)))
        .await
        .expect("a closed connection fails at once")
        .unwrap_err();
    assert!(err.to_string().contains("half sent"), "{err}");
}
