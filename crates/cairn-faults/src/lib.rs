//! cairn-faults: fault-injecting proxies, put between a client and a node
//! to make a bad link out of loopback (this machine's kernel has no netem,
//! so faults are made in userspace).
//!
//! A product feature, not test code: `cairn bench --faults` measures puts
//! and gets through these proxies, and the reliability tests use the same
//! ones.
//!
//! - [`UdpProxy`] for `quic://`: independent rates of loss, duplication,
//!   reordering, corruption and added delay, per direction.
//! - [`TcpProxy`] for `tcp://` and `https://`: delay, throttling, cutting a
//!   connection after some bytes, corrupting bytes in the stream, and a
//!   black hole that accepts connections and never answers.
//!
//! Both listen on `127.0.0.1:0` and forward to one target address. A client
//! reaches the node through the proxy by using the proxy's port with the
//! node's `#NODE_ID`: nodes are pinned by id, not by address, so the pin
//! still holds. Settings can change while the proxy runs ([`UdpProxy::set`],
//! [`TcpProxy::set`]), and counters ([`UdpProxy::stats`],
//! [`TcpProxy::stats`]) say which faults actually fired, so that a test can
//! check that it tested something.
//!
//! **Replay.** Every random decision comes from a PCG generator seeded with
//! the proxy's seed (per direction for UDP, per connection and direction for
//! TCP): the same traffic meets the same faults, so a failure seen with a
//! seed can be run again with it. (Traffic itself depends on timing, so a
//! replay is faithful as far as the client sends the same datagrams in the
//! same order.)
//!
//! The proxies spawn their tasks on the tokio runtime they are started on,
//! and stop them when dropped.

mod tcp;
mod udp;

pub use tcp::{TcpFaults, TcpProxy, TcpStats};
pub use udp::{Direction, LaneStats, UdpFaults, UdpProxy, UdpStats};

/// A generator seed for stream `index` of a proxy seeded with `seed`, so
/// that streams draw unrelated numbers.
fn sub_seed(seed: u64, index: u64) -> u64 {
    // SplitMix64's finaliser: neighbouring indexes give unrelated seeds.
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Flips one random bit of `bytes` at a random position.
fn flip_bit(bytes: &mut [u8], rng: &mut impl rand::Rng) {
    use rand::RngExt;
    if bytes.is_empty() {
        return;
    }
    let at = rng.random_range(0..bytes.len());
    bytes[at] ^= 1 << rng.random_range(0..8u32);
}
