//! The TCP proxy, for `tcp://` and `https://`.
//!
//! Every accepted connection gets a connection of its own to the target;
//! each direction is read by one task and written by another, so that an
//! added delay is a latency (data keeps flowing) rather than a stall.
//! Faults, all optional:
//!
//! - **delay**: every piece of data is written this long after it was read;
//! - **throttle**: each direction of each connection carries at most this
//!   many bytes per second;
//! - **cut**: a connection is reset (RST, both sides) once it carried about
//!   `cut_after` bytes, counting both directions (drawn per connection
//!   between half and one and a half times the setting);
//! - **corruption**: one bit is flipped about every `corrupt_every` bytes of
//!   each direction (gaps drawn between 1 and twice the setting);
//! - **black hole**: new connections are accepted and then never answered
//!   (what they send is read and thrown away); connections already open stop
//!   forwarding anything;
//! - **stalled TLS record**: once, the next TLS record shorter than 8 KiB
//!   that starts in one direction (of any connection) gets bit 13 of its
//!   length field flipped, so that it announces 8 KiB more than follows: the
//!   receiver waits for bytes the sender never meant to send. This is what a
//!   random bit flip does now and then (a corrupted length, on the last
//!   record before the sender waits for an answer), made deterministic.
//!
//! Settings are read for every piece of data, so a change applies to open
//! connections at once (a cut length, drawn when a connection opens, only
//! to new ones; a record stall is armed by [`TcpProxy::start`] and
//! [`TcpProxy::set`] and fires once).
//!
//! To find record boundaries, each direction follows the stream as TLS
//! records from its first byte (5-byte headers: type, version, length,
//! big-endian). On a stream that is not TLS this finds nonsense, which
//! matters only to the record stall.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{RngExt, SeedableRng};

use super::Direction;
use rand_pcg::Pcg64Mcg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The faults of a TCP proxy; the default forwards everything untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFaults {
    /// Added one-way delay of every piece of data.
    pub delay: Duration,
    /// Bytes per second per direction and connection; `None`: no limit.
    pub throttle: Option<u64>,
    /// Reset each connection after about this many bytes (both directions).
    pub cut_after: Option<u64>,
    /// Flip one bit about every this many bytes of each direction.
    pub corrupt_every: Option<u64>,
    /// Accept connections and never answer them.
    pub black_hole: bool,
    /// Stall the next TLS record shorter than 8 KiB in this direction by
    /// flipping bit 13 of its length, once (see the module docs).
    pub stall_record: Option<Direction>,
}

impl TcpFaults {
    /// No fault.
    pub fn none() -> Self {
        Self::default()
    }

    /// A black hole: connections are accepted and never answered.
    pub fn black_hole() -> Self {
        Self {
            black_hole: true,
            ..Self::default()
        }
    }
}

/// What a TCP proxy did so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections accepted while the proxy was a black hole.
    pub black_holed: u64,
    /// Bytes forwarded from clients to the target.
    pub upstream_bytes: u64,
    /// Bytes forwarded from the target to clients.
    pub downstream_bytes: u64,
    /// Bytes read and thrown away (black hole).
    pub discarded_bytes: u64,
    /// Bits flipped.
    pub corrupted: u64,
    /// Connections reset after their `cut_after` bytes.
    pub cuts: u64,
    /// TLS records whose length was made to announce more than follows.
    pub stalled_records: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    black_holed: AtomicU64,
    upstream_bytes: AtomicU64,
    downstream_bytes: AtomicU64,
    discarded_bytes: AtomicU64,
    corrupted: AtomicU64,
    cuts: AtomicU64,
    stalled_records: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    faults: Mutex<TcpFaults>,
    seed: u64,
    counters: Counters,
    /// A record stall is armed and has not fired yet.
    stall_armed: AtomicBool,
}

impl Shared {
    fn faults(&self) -> TcpFaults {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A TCP proxy on `127.0.0.1:0` forwarding to one target; see the module
/// docs.
#[derive(Debug)]
pub struct TcpProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl TcpProxy {
    /// Starts a proxy to `target` with `faults`, its random decisions
    /// seeded by `seed`.
    ///
    /// # Errors
    /// The listener cannot be bound.
    pub async fn start(target: SocketAddr, faults: TcpFaults, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            seed,
            counters: Counters::default(),
            stall_armed: AtomicBool::new(faults.stall_record.is_some()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_task(
            listener,
            target,
            shared.clone(),
            stop.child_token(),
        ));
        Ok(Self {
            address,
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// The address clients connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Changes the faults, for open connections too; a record stall is
    /// armed again.
    pub fn set(&self, faults: TcpFaults) {
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
        self.shared
            .stall_armed
            .store(faults.stall_record.is_some(), Ordering::Relaxed);
    }

    /// What happened so far.
    pub fn stats(&self) -> TcpStats {
        let c = &self.shared.counters;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TcpStats {
            accepted: get(&c.accepted),
            black_holed: get(&c.black_holed),
            upstream_bytes: get(&c.upstream_bytes),
            downstream_bytes: get(&c.downstream_bytes),
            discarded_bytes: get(&c.discarded_bytes),
            corrupted: get(&c.corrupted),
            cuts: get(&c.cuts),
            stalled_records: get(&c.stalled_records),
        }
    }
}

async fn accept_task(
    listener: TcpListener,
    target: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut index = 0u64;
    loop {
        let client = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(e) => {
                    // Out of descriptors, say: wait a little, as servers do.
                    tracing::debug!("TCP proxy: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        index += 1;
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.child_token();
        if shared.faults().black_hole {
            shared.counters.black_holed.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let (mut read, _write) = client.into_split();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    tokio::select! {
                        n = read.read(&mut buf) => match n {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                shared.counters.discarded_bytes.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        },
                        () = stop.cancelled() => return,
                    }
                }
            });
            continue;
        }
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(target).await else {
                return; // the client sees the connection close, as a refusal
            };
            let _ = upstream.set_nodelay(true);
            relay(client, upstream, shared, index, stop).await;
        });
    }
}

/// State of one connection shared by its tasks.
#[derive(Debug)]
struct Link {
    /// Bytes carried so far, both directions.
    carried: AtomicU64,
    /// Reset after this many bytes.
    cut_at: Option<u64>,
    /// Set when the connection is cut, so its sockets are reset, not closed.
    cut: AtomicBool,
    /// Cancelled when the connection ends.
    end: CancellationToken,
}

async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    shared: Arc<Shared>,
    index: u64,
    stop: CancellationToken,
) {
    let mut rng = Pcg64Mcg::seed_from_u64(super::sub_seed(shared.seed, index));
    let cut_at = shared
        .faults()
        .cut_after
        .map(|n| rng.random_range(n / 2..=n + n / 2).max(1));
    let link = Arc::new(Link {
        carried: AtomicU64::new(0),
        cut_at,
        cut: AtomicBool::new(false),
        end: stop,
    });
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up_seed = rng.random();
    let down_seed = rng.random();
    let up = pipe(
        client_read,
        upstream_write,
        shared.clone(),
        link.clone(),
        true,
        up_seed,
    );
    let down = pipe(
        upstream_read,
        client_write,
        shared,
        link.clone(),
        false,
        down_seed,
    );
    tokio::join!(up, down);
}

/// One direction of a connection: a reader applying the faults and a writer
/// honouring delay and throttle.
async fn pipe(
    mut read: OwnedReadHalf,
    mut write: OwnedWriteHalf,
    shared: Arc<Shared>,
    link: Arc<Link>,
    upstream: bool,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let direction = if upstream {
        Direction::Upstream
    } else {
        Direction::Downstream
    };
    let reader = {
        let shared = shared.clone();
        let link = link.clone();
        async move {
            let mut offset = 0u64; // bytes of this direction read so far
            let mut next_corruption: Option<u64> = None;
            let mut records = Records::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tokio::select! {
                    n = read.read(&mut buf) => match n {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    },
                    () = link.end.cancelled() => break,
                };
                let faults = shared.faults();
                if faults.black_hole {
                    shared
                        .counters
                        .discarded_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                let mut data = buf[..n].to_vec();
                if let Some(every) = faults.corrupt_every.filter(|&e| e > 0) {
                    let mut at = *next_corruption
                        .get_or_insert_with(|| offset + rng.random_range(1..=2 * every));
                    while at < offset + n as u64 {
                        let byte = (at - offset) as usize;
                        data[byte] ^= 1 << rng.random_range(0..8u32);
                        shared.counters.corrupted.fetch_add(1, Ordering::Relaxed);
                        at += rng.random_range(1..=2 * every);
                    }
                    next_corruption = Some(at);
                }
                let stalling = faults.stall_record == Some(direction)
                    && shared.stall_armed.load(Ordering::Relaxed);
                records.scan(&mut data, |len| {
                    // Only a record that stays under TLS's limit once grown
                    // (2^14 + 256) waits instead of failing at once.
                    let fire = stalling
                        && len < STALL_GROWTH
                        && shared
                            .stall_armed
                            .compare_exchange(true, false, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok();
                    if fire {
                        shared
                            .counters
                            .stalled_records
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    fire
                });
                offset += n as u64;
                let before = link.carried.fetch_add(n as u64, Ordering::Relaxed);
                let mut cut = false;
                if let Some(cut_at) = link.cut_at
                    && before + n as u64 >= cut_at
                {
                    data.truncate(cut_at.saturating_sub(before) as usize);
                    cut = true;
                }
                if !data.is_empty()
                    && tx
                        .send((Instant::now() + faults.delay, data))
                        .await
                        .is_err()
                {
                    break;
                }
                if cut {
                    if !link.cut.swap(true, Ordering::Relaxed) {
                        shared.counters.cuts.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
            drop(tx);
            // The writer sends what was queued; then a cut resets the
            // sockets (zero linger), while an end of stream closes this
            // direction only.
            if link.cut.load(Ordering::Relaxed) {
                let _ = read.as_ref().set_zero_linger();
            }
        }
    };
    let writer = async move {
        let mut next_free = Instant::now();
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if write.write_all(&data).await.is_err() {
                break;
            }
            let counter = if upstream {
                &shared.counters.upstream_bytes
            } else {
                &shared.counters.downstream_bytes
            };
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            if let Some(rate) = shared.faults().throttle.filter(|&r| r > 0) {
                next_free = next_free.max(Instant::now())
                    + Duration::from_secs_f64(data.len() as f64 / rate as f64);
                tokio::time::sleep_until(next_free).await;
            }
        }
        if link.cut.load(Ordering::Relaxed) {
            let _ = write.as_ref().set_zero_linger();
            // Dropping a write half would send a FIN first, a clean end
            // of stream; forgotten, the socket closes with its read half
            // and the zero linger makes that a reset.
            write.forget();
            // Both directions stop at once.
            link.end.cancel();
        } else {
            let _ = write.shutdown().await;
        }
    };
    tokio::join!(reader, writer);
}

/// What a stalled record's length grows by: bit 13 of the length field,
/// the high byte's bit 5.
const STALL_GROWTH: usize = 8192;

/// Follows one direction of a stream as TLS records: a 5-byte header (type,
/// version, length u16 big-endian), then that many bytes.
#[derive(Debug, Default)]
struct Records {
    header: [u8; 5],
    /// Header bytes seen of the record being started.
    filled: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl Records {
    /// Walks `data`, the next bytes of the direction. For every header
    /// whose length field lies in `data` (not split from a piece already
    /// forwarded), asks `stall(length)`; on true, flips bit 13 of the
    /// length as it will be forwarded (the stream's real structure, which
    /// this keeps following, is unchanged).
    fn scan(&mut self, data: &mut [u8], mut stall: impl FnMut(usize) -> bool) {
        let mut length_at = None;
        let mut i = 0;
        while i < data.len() {
            if self.body_left > 0 {
                let take = self.body_left.min(data.len() - i);
                self.body_left -= take;
                i += take;
                continue;
            }
            if self.filled == 3 {
                length_at = Some(i);
            }
            self.header[self.filled] = data[i];
            self.filled += 1;
            i += 1;
            if self.filled == self.header.len() {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if let Some(at) = length_at.take()
                    && stall(len)
                {
                    data[at] ^= (STALL_GROWTH >> 8) as u8;
                }
                self.filled = 0;
                self.body_left = len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: writes back what each connection sends.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        address
    }

    /// Sends `data` through `proxy` to the echo server and reads back until
    /// the connection ends or `data.len()` bytes came; returns what came
    /// and whether the connection failed.
    async fn round_trip(proxy: &TcpProxy, data: &[u8]) -> (Vec<u8>, bool) {
        let stream = TcpStream::connect(proxy.address()).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let data = data.to_vec();
        let len = data.len();
        let writing = tokio::spawn(async move {
            let _ = write.write_all(&data).await;
            write
        });
        let mut back = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut failed = false;
        while back.len() < len {
            match read.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => back.extend_from_slice(&buf[..n]),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        drop(writing.await);
        (back, failed)
    }

    fn data(len: usize) -> Vec<u8> {
        testdata::seeded_bytes(5, len)
    }

    #[tokio::test]
    async fn without_faults_bytes_pass_unchanged_and_are_counted() {
        let proxy = TcpProxy::start(echo().await, TcpFaults::none(), 1)
            .await
            .unwrap();
        let sent = data(3 << 20);
        let (back, failed) = round_trip(&proxy, &sent).await;
        assert!(!failed);
        assert!(back == sent);
        let stats = proxy.stats();
        assert_eq!(stats.accepted, 1);
        assert_eq!(stats.upstream_bytes, 3 << 20);
        assert_eq!(stats.downstream_bytes, 3 << 20);
        assert_eq!(stats.corrupted + stats.cuts, 0);
    }

    #[tokio::test]
    async fn corruption_flips_bits_at_about_its_rate() {
        let faults = TcpFaults {
            corrupt_every: Some(64 * 1024),
            ..TcpFaults::none()
        };
        let proxy = TcpProxy::start(echo().await, faults, 2).await.unwrap();
        let sent = data(4 << 20);
        let (back, _) = round_trip(&proxy, &sent).await;
        assert_eq!(back.len(), sent.len());
        let differing = back.iter().zip(&sent).filter(|(a, b)| a != b).count() as u64;
        let flipped = proxy.stats().corrupted;
        // 4 MiB each way at one flip per 64 KiB: about 128.
        assert!((64..=256).contains(&flipped), "{flipped}");
        // A byte flipped both ways may come back right.
        assert!(
            differing > 0 && differing <= flipped,
            "{differing} {flipped}"
        );
    }

    #[tokio::test]
    async fn a_cut_resets_the_connection_after_about_its_bytes() {
        let faults = TcpFaults {
            cut_after: Some(1 << 20),
            ..TcpFaults::none()
        };
        let proxy = TcpProxy::start(echo().await, faults, 3).await.unwrap();
        let sent = data(4 << 20);
        let (back, failed) = round_trip(&proxy, &sent).await;
        // Both directions count: the echo's answer stops well short of the
        // whole, and the connection ends with a reset, not a clean close.
        assert!(back.len() < 1 << 20, "{}", back.len());
        assert!(back == sent[..back.len()]);
        assert!(failed, "a cut is a reset");
        assert_eq!(proxy.stats().cuts, 1);

        // Settings apply to the next connections.
        proxy.set(TcpFaults::none());
        let (back, failed) = round_trip(&proxy, &sent).await;
        assert!(!failed && back == sent);
        assert_eq!(proxy.stats().cuts, 1);
    }

    #[tokio::test]
    async fn a_black_hole_accepts_and_never_answers() {
        let proxy = TcpProxy::start(echo().await, TcpFaults::black_hole(), 4)
            .await
            .unwrap();
        let mut stream = TcpStream::connect(proxy.address()).await.unwrap();
        stream.write_all(b"hello?").await.unwrap();
        let mut buf = [0u8; 16];
        let answer = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        assert!(answer.is_err(), "the black hole answered: {answer:?}");
        let stats = proxy.stats();
        assert_eq!((stats.accepted, stats.black_holed), (1, 1));
        assert_eq!(stats.discarded_bytes, 6);
        assert_eq!(stats.upstream_bytes, 0);

        // An open connection goes silent when the hole opens.
        proxy.set(TcpFaults::none());
        let mut stream = TcpStream::connect(proxy.address()).await.unwrap();
        stream.write_all(b"one").await.unwrap();
        stream.read_exact(&mut buf[..3]).await.unwrap();
        proxy.set(TcpFaults::black_hole());
        stream.write_all(b"two").await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        assert!(answer.is_err(), "{answer:?}");
    }

    /// Three records whose bodies straddle the pieces they come in: each
    /// header is found, and only the one asked for is grown.
    #[test]
    fn records_are_followed_across_pieces_and_one_is_stalled() {
        let record = |len: usize| {
            let mut r = vec![23, 3, 3];
            r.extend_from_slice(&(len as u16).to_be_bytes());
            r.extend(std::iter::repeat_n(0xaa, len));
            r
        };
        let stream: Vec<u8> = [record(10), record(300), record(20)].concat();
        let mut records = Records::default();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for piece in [&stream[..20], &stream[20..100], &stream[100..]] {
            let mut piece = piece.to_vec();
            records.scan(&mut piece, |len| {
                seen.push(len);
                len == 300
            });
            out.extend_from_slice(&piece);
        }
        assert_eq!(seen, [10, 300, 20]);
        let mut expected = stream.clone();
        expected[15 + 3] ^= 0x20; // the second header starts at 15
        assert_eq!(out, expected);
        assert_eq!(u16::from_be_bytes([out[18], out[19]]), 300 + 8192);

        // A header cut inside its length field is left alone: its first
        // length byte went out with the previous piece.
        let mut records = Records::default();
        let mut asked = 0;
        let one = record(5);
        let (mut a, mut b) = (one[..4].to_vec(), one[4..].to_vec());
        records.scan(&mut a, |_| true);
        records.scan(&mut b, |_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 0);
        assert_eq!([a, b].concat(), one);
    }

    #[tokio::test]
    async fn a_record_stall_fires_once_per_arming() {
        let faults = TcpFaults {
            stall_record: Some(Direction::Upstream),
            ..TcpFaults::none()
        };
        let proxy = TcpProxy::start(echo().await, faults, 6).await.unwrap();
        // A "record" of 4 bytes: its length grows by 8 KiB on the way.
        let sent = [23, 3, 3, 0, 4, 1, 2, 3, 4];
        let (back, _) = round_trip(&proxy, &sent).await;
        assert_eq!(back[3], 0x20);
        assert_eq!(back[..3], sent[..3]);
        assert_eq!(back[4..], sent[4..]);
        assert_eq!(proxy.stats().stalled_records, 1);
        // Fired: the next connection passes untouched, until armed again.
        let (back, _) = round_trip(&proxy, &sent).await;
        assert_eq!(back, sent);
        proxy.set(faults);
        let (back, _) = round_trip(&proxy, &sent).await;
        assert_eq!(back[3], 0x20);
        assert_eq!(proxy.stats().stalled_records, 2);
    }

    #[tokio::test]
    async fn delay_and_throttle_slow_the_stream_down() {
        let faults = TcpFaults {
            delay: Duration::from_millis(20),
            throttle: Some(4 << 20),
            ..TcpFaults::none()
        };
        let proxy = TcpProxy::start(echo().await, faults, 5).await.unwrap();
        let sent = data(1 << 20);
        let started = std::time::Instant::now();
        let (back, failed) = round_trip(&proxy, &sent).await;
        assert!(!failed && back == sent);
        // 1 MiB at 4 MiB/s takes at least a quarter second each way (the
        // two overlap), plus the delays: lower bounds only.
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
