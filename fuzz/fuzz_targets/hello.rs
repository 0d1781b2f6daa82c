//! The `cnwp` hello that opens every `tcp://` and `quic://` connection,
//! from both sides.
//!
//! Input: a mode byte, then
//! - mode 0, the node's side: the bytes a client sent;
//! - mode 1, the client's side: a count and the versions it offers, then
//!   the bytes the node sent;
//! - mode 2, both sides against each other: the count and versions the
//!   client offers, then those the node speaks.
//!
//! A version is chosen only if both sides speak it.
#![no_main]

use cairn_fuzz::Input;
use cairn_net::frame;
use cairn_net::protocol::VERSIONS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    futures::executor::block_on(async {
        match input.u8() % 3 {
            0 => {
                let sent = input.rest();
                let mut stream = tokio::io::join(sent, tokio::io::sink());
                if let Ok(chosen) = frame::server_hello(&mut stream, VERSIONS).await {
                    let offered = &sent[5..5 + usize::from(sent[4])];
                    assert!(VERSIONS.contains(&chosen) && offered.contains(&chosen));
                }
            }
            1 => {
                let count = usize::from(input.u8());
                let offered = input.take(count);
                let mut stream = tokio::io::join(input.rest(), tokio::io::sink());
                if let Ok(chosen) = frame::client_hello(&mut stream, offered).await {
                    assert!(chosen != 0 && offered.contains(&chosen));
                }
            }
            _ => {
                let count = usize::from(input.u8());
                let offered = input.take(count).to_vec();
                let count = usize::from(input.u8());
                let supported = input.take(count).to_vec();
                let (mut client, mut node) = tokio::io::duplex(1024);
                let (client, node) = futures::join!(
                    frame::client_hello(&mut client, &offered),
                    frame::server_hello(&mut node, &supported),
                );
                let expected = supported
                    .iter()
                    .copied()
                    .find(|v| *v != 0 && offered.contains(v));
                match expected {
                    Some(v) => {
                        assert_eq!(client.expect("a version in common"), v);
                        assert_eq!(node.expect("a version in common"), v);
                    }
                    None => assert!(client.is_err() && node.is_err()),
                }
            }
        }
    });
});
