//! Protocol version 3 (folders, summaries, the change feed) through the
//! real client driver and real TLS over an in-memory pipe, against scripted
//! nodes of version 2 and 3.
//!
//! Bugs these guard against:
//! - a version 3 request sent to a node of version 2, which does not know
//!   the message and would close the connection as malformed: the client
//!   must refuse it itself, saying which versions are involved, and leave
//!   the connection working;
//! - the summaries of a change feed page cut from the frame's body other
//!   than by the lengths the message gives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::identity::NodeIdentity;
use cairn_net::protocol::{FOLDER_VERSION, LEGACY_FOLDER, Limits, Request, Response, VERSIONS};
use cairn_net::tls::{self, ALPN_CAIRN};
use cairn_net::{NodeAddress, frame};
use tokio::io::{AsyncWriteExt, DuplexStream};

/// Starts a node speaking `versions` at the other end of an in-memory
/// pipe, answering each request with `answer` (and counting the requests
/// it read); returns its address and the client's end of the pipe.
fn scripted_node(
    versions: &'static [u8],
    answer: fn(&Request) -> (Response, Bytes),
) -> (NodeAddress, DuplexStream, Arc<AtomicU32>) {
    let identity = NodeIdentity::generate(&["127.0.0.1".to_owned()]).unwrap();
    let config = tls::server_config(&identity, &[ALPN_CAIRN]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (client, node) = tokio::io::duplex(256 * 1024);
    let requests = Arc::new(AtomicU32::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        let mut tls = acceptor.accept(node).await.unwrap();
        frame::server_hello(&mut tls, versions).await.unwrap();
        let limits = Limits::default();
        while let Ok(Some(frame)) = frame::read_frame(&mut tls, &limits).await {
            counted.fetch_add(1, Ordering::Relaxed);
            let request: Request = frame::decode(&frame.message).unwrap();
            let (response, body) = answer(&request);
            frame::write_frame(&mut tls, frame.stream, &frame::encode(&response), &body)
                .await
                .unwrap();
            tls.flush().await.unwrap();
        }
    });
    let address = "tcp://127.0.0.1:9"
        .parse::<NodeAddress>()
        .unwrap()
        .with_node_id(identity.id());
    (address, client, requests)
}

async fn connect(address: &NodeAddress, pipe: DuplexStream) -> Connection {
    Connection::connect_over(pipe, address, &ClientOptions::default(), false)
        .await
        .unwrap()
}

/// A version 2 node: answers index puts as stored; any other request
/// fails the test.
fn version_2_answer(request: &Request) -> (Response, Bytes) {
    match request {
        Request::PutIndex { .. } => (Response::IndexStored { replaced: None }, Bytes::new()),
        other => panic!("a version 2 node got {other:?}"),
    }
}

#[tokio::test]
async fn version_3_requests_are_refused_before_a_version_2_node_sees_them() {
    let (address, pipe, requests) = scripted_node(&[2, 1], version_2_answer);
    let connection = connect(&address, pipe).await;
    assert_eq!(connection.protocol(), 2);
    let name = [1; 32];
    let refusals = [
        connection
            .put_entry(&name, 1, &[7; 32], 1, Bytes::from_static(b"data"))
            .await
            .unwrap_err(),
        connection
            .list_folder(&LEGACY_FOLDER, None, 10)
            .await
            .unwrap_err(),
        connection.changes(0, None, 10).await.unwrap_err(),
    ];
    for (err, kind) in refusals.iter().zip(["put-entry", "list-folder", "changes"]) {
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("speaks protocol 2"), "{message}");
        assert!(
            message.contains(&format!("{kind} needs {FOLDER_VERSION}")),
            "{message}"
        );
        assert!(message.contains("upgrade the node"), "{message}");
    }
    assert_eq!(
        requests.load(Ordering::Relaxed),
        0,
        "the old node got frames"
    );
    // The connection still works for what the node speaks.
    assert_eq!(
        connection
            .put_index(&name, 1, Bytes::from_static(b"data"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(requests.load(Ordering::Relaxed), 1);
}

/// A version 3 node: a folder listing of two summaries, and a change feed
/// page of three.
fn version_3_answer(request: &Request) -> (Response, Bytes) {
    match request {
        Request::PutEntry { summary_len: 2, .. } => {
            (Response::IndexStored { replaced: Some(4) }, Bytes::new())
        }
        Request::ListFolder {
            folder: [7, ..],
            after: None,
            limit: 2,
        } => (
            Response::IndexList {
                entries: vec![([1; 32], 5, 3), ([2; 32], 6, 0)],
                more: true,
            },
            Bytes::from_static(b"abc"),
        ),
        Request::Changes {
            since: 10,
            folder: Some([7, ..]),
            limit: 3,
        } => (
            Response::ChangeList {
                feed: 0xfeed,
                entries: vec![
                    ([1; 32], 5, 11, 3),
                    ([2; 32], 6, 14, 0),
                    ([3; 32], 1, 15, 2),
                ],
                next: 20,
                more: false,
            },
            Bytes::from_static(b"abcde"),
        ),
        // A node that goes backwards in its own feed.
        Request::Changes { since: 30, .. } => (
            Response::ChangeList {
                feed: 0xfeed,
                entries: Vec::new(),
                next: 29,
                more: false,
            },
            Bytes::new(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_version_3_node_lists_folders_and_its_change_feed() {
    let (address, pipe, _) = scripted_node(VERSIONS, version_3_answer);
    let connection = connect(&address, pipe).await;
    assert_eq!(connection.protocol(), FOLDER_VERSION);
    let replaced = connection
        .put_entry(&[1; 32], 5, &[7; 32], 2, Bytes::from_static(b"summary"))
        .await
        .unwrap();
    assert_eq!(replaced, Some(4));

    let page = connection.list_folder(&[7; 32], None, 2).await.unwrap();
    assert!(page.more);
    let listed: Vec<_> = page
        .entries
        .iter()
        .map(|e| (e.name[0], e.version, &e.data[..]))
        .collect();
    assert_eq!(listed, [(1, 5, &b"abc"[..]), (2, 6, &b""[..])]);

    let page = connection.changes(10, Some(&[7; 32]), 3).await.unwrap();
    assert_eq!((page.feed, page.next, page.more), (0xfeed, 20, false));
    let changed: Vec<_> = page
        .entries
        .iter()
        .map(|c| (c.name[0], c.version, c.seq, &c.summary[..]))
        .collect();
    assert_eq!(
        changed,
        [
            (1, 5, 11, &b"abc"[..]),
            (2, 6, 14, &b""[..]),
            (3, 1, 15, &b"de"[..])
        ]
    );

    let err = connection.changes(30, None, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}
