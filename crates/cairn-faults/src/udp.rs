//! The UDP proxy, for `quic://`.
//!
//! ```text
//! client ──▶ listen socket ──(upstream lane: faults)──▶ per-client socket ──▶ target
//! client ◀── listen socket ◀──(downstream lane: faults)── per-client socket ◀── target
//! ```
//!
//! Each client address gets a socket of its own towards the target, so the
//! target sees one peer per client, as without the proxy. A datagram is
//! first dropped (loss), else perhaps corrupted (one to three bits flipped),
//! duplicated (sent twice) and held back (reordering: released after one to
//! three later datagrams of its lane have passed, or after [`MAX_HOLD`]),
//! each with its own probability; then it waits out the lane's delay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Longest time a datagram held back for reordering waits for later
/// datagrams to overtake it before it is sent anyway.
pub const MAX_HOLD: Duration = Duration::from_millis(5);

/// Largest datagram forwarded (the largest a UDP socket can receive).
const MAX_DATAGRAM: usize = 65_536;

/// The faults of one direction. Probabilities are in `0.0..=1.0` (values
/// outside are clamped) and drawn independently for every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UdpFaults {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back and overtaken by the next
    /// one to three datagrams of its direction.
    pub reorder: f64,
    /// Probability that one to three random bits of a datagram are flipped.
    pub corrupt: f64,
    /// Added one-way delay of every datagram.
    pub delay: Duration,
}

impl UdpFaults {
    /// No fault: the proxy forwards everything as it comes.
    pub fn none() -> Self {
        Self::default()
    }

    /// The bad link of the reliability issue: 10 % loss, 5 % duplication,
    /// 25 % reordering and 1 % corruption.
    pub fn lossy() -> Self {
        Self {
            loss: 0.10,
            duplicate: 0.05,
            reorder: 0.25,
            corrupt: 0.01,
            delay: Duration::ZERO,
        }
    }

    fn clamped(self) -> Self {
        let p = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        Self {
            loss: p(self.loss),
            duplicate: p(self.duplicate),
            reorder: p(self.reorder),
            corrupt: p(self.corrupt),
            delay: self.delay,
        }
    }
}

/// A direction through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the target (the node).
    Upstream,
    /// From the target back to the client.
    Downstream,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Self::Upstream => 0,
            Self::Downstream => 1,
        }
    }
}

/// What happened to the datagrams of one direction so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent on, duplicates included.
    pub forwarded: u64,
    /// Bytes sent on, duplicates included.
    pub bytes: u64,
    /// Datagrams dropped.
    pub dropped: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
    /// Datagrams held back and overtaken.
    pub reordered: u64,
    /// Datagrams with flipped bits.
    pub corrupted: u64,
}

/// What happened to the datagrams of both directions so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpStats {
    /// Client to target.
    pub upstream: LaneStats,
    /// Target to client.
    pub downstream: LaneStats,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    corrupted: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LaneStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LaneStats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            bytes: get(&self.bytes),
            dropped: get(&self.dropped),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            corrupted: get(&self.corrupted),
        }
    }
}

/// One direction: its faults, its generator and its counters.
#[derive(Debug)]
struct Lane {
    faults: Mutex<UdpFaults>,
    rng: Mutex<Pcg64Mcg>,
    counters: Counters,
}

/// A datagram on its way out of a lane.
#[derive(Debug)]
struct Outgoing {
    bytes: Vec<u8>,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    due: Instant,
    /// Held back until this many later datagrams have passed.
    hold: Option<u32>,
}

impl Lane {
    /// Applies the lane's faults to `bytes`: the datagrams to send (none,
    /// one, or two copies), and whether to hold them back.
    fn decide(&self, mut bytes: Vec<u8>) -> (Vec<Vec<u8>>, Option<u32>, Duration) {
        let faults = *self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let c = &self.counters;
        c.received.fetch_add(1, Ordering::Relaxed);
        // Every draw is made for every datagram, so that the decisions for
        // datagram i depend only on the seed and i.
        let lost = rng.random_bool(faults.loss);
        let corrupt = rng.random_bool(faults.corrupt);
        let duplicate = rng.random_bool(faults.duplicate);
        let reorder = rng.random_bool(faults.reorder);
        let hold = rng.random_range(1..=3u32);
        let flips = rng.random_range(1..=3u32);
        if lost {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return (Vec::new(), None, faults.delay);
        }
        if corrupt {
            c.corrupted.fetch_add(1, Ordering::Relaxed);
            for _ in 0..flips {
                super::flip_bit(&mut bytes, &mut *rng);
            }
        }
        let copies = if duplicate {
            c.duplicated.fetch_add(1, Ordering::Relaxed);
            vec![bytes.clone(), bytes]
        } else {
            vec![bytes]
        };
        let hold = reorder.then(|| {
            c.reordered.fetch_add(1, Ordering::Relaxed);
            hold
        });
        (copies, hold, faults.delay)
    }

    async fn send(&self, datagram: &Outgoing) {
        match datagram.socket.send_to(&datagram.bytes, datagram.to).await {
            Ok(n) => {
                self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            // Like a network, the proxy loses what it cannot send.
            Err(e) => tracing::debug!("UDP proxy: cannot send to {}: {e}", datagram.to),
        }
    }
}

#[derive(Debug)]
struct Shared {
    lanes: [Lane; 2],
}

/// A UDP proxy on `127.0.0.1:0` forwarding to one target; see the module
/// docs.
#[derive(Debug)]
pub struct UdpProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl UdpProxy {
    /// Starts a proxy to `target` with `faults` in both directions, its
    /// random decisions seeded by `seed`.
    ///
    /// # Errors
    /// The listening socket cannot be bound.
    pub async fn start(target: SocketAddr, faults: UdpFaults, seed: u64) -> std::io::Result<Self> {
        let listen = Arc::new(bind_loopback()?);
        let address = listen.local_addr()?;
        let lane = |direction: Direction| Lane {
            faults: Mutex::new(faults.clamped()),
            rng: Mutex::new(Pcg64Mcg::seed_from_u64(super::sub_seed(
                seed,
                direction.index() as u64,
            ))),
            counters: Counters::default(),
        };
        let shared = Arc::new(Shared {
            lanes: [lane(Direction::Upstream), lane(Direction::Downstream)],
        });
        let stop = CancellationToken::new();
        let mut senders = Vec::new();
        for direction in [Direction::Upstream, Direction::Downstream] {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(send_task(shared.clone(), direction, rx, stop.child_token()));
            senders.push(tx);
        }
        let downstream = senders.pop().expect("two lanes");
        let upstream = senders.pop().expect("two lanes");
        tokio::spawn(listen_task(
            listen,
            target,
            shared.clone(),
            upstream,
            downstream,
            stop.child_token(),
        ));
        Ok(Self {
            address,
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// The address clients send to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sets the faults of both directions, from the next datagram on.
    pub fn set(&self, faults: UdpFaults) {
        self.set_direction(Direction::Upstream, faults);
        self.set_direction(Direction::Downstream, faults);
    }

    /// Sets the faults of one direction, from its next datagram on.
    pub fn set_direction(&self, direction: Direction, faults: UdpFaults) {
        *self.shared.lanes[direction.index()]
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = faults.clamped();
    }

    /// What happened so far.
    pub fn stats(&self) -> UdpStats {
        UdpStats {
            upstream: self.shared.lanes[0].counters.snapshot(),
            downstream: self.shared.lanes[1].counters.snapshot(),
        }
    }
}

/// Receives from clients; opens a socket towards the target per client.
async fn listen_task(
    listen: Arc<UdpSocket>,
    target: SocketAddr,
    shared: Arc<Shared>,
    upstream: mpsc::UnboundedSender<Outgoing>,
    downstream: mpsc::UnboundedSender<Outgoing>,
    stop: CancellationToken,
) {
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            received = listen.recv_from(&mut buf) => match received {
                Ok(received) => received,
                // ICMP errors from earlier sends surface here; go on.
                Err(e) => {
                    tracing::debug!("UDP proxy: receive: {e}");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let socket = match clients.get(&client) {
            Some(socket) => socket.clone(),
            None => {
                let Ok(socket) = bind_loopback() else {
                    continue;
                };
                let socket = Arc::new(socket);
                clients.insert(client, socket.clone());
                tokio::spawn(reply_task(
                    socket.clone(),
                    target,
                    listen.clone(),
                    client,
                    shared.clone(),
                    downstream.clone(),
                    stop.child_token(),
                ));
                socket
            }
        };
        queue(
            &shared.lanes[0],
            &upstream,
            buf[..n].to_vec(),
            &socket,
            target,
        );
    }
}

/// Receives the target's answers to one client.
async fn reply_task(
    socket: Arc<UdpSocket>,
    target: SocketAddr,
    listen: Arc<UdpSocket>,
    client: SocketAddr,
    shared: Arc<Shared>,
    downstream: mpsc::UnboundedSender<Outgoing>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!("UDP proxy: receive: {e}");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        if from != target {
            continue;
        }
        queue(
            &shared.lanes[1],
            &downstream,
            buf[..n].to_vec(),
            &listen,
            client,
        );
    }
}

fn queue(
    lane: &Lane,
    tx: &mpsc::UnboundedSender<Outgoing>,
    bytes: Vec<u8>,
    socket: &Arc<UdpSocket>,
    to: SocketAddr,
) {
    let (copies, hold, delay) = lane.decide(bytes);
    let due = Instant::now() + delay;
    for bytes in copies {
        let _ = tx.send(Outgoing {
            bytes,
            socket: socket.clone(),
            to,
            due,
            hold,
        });
    }
}

/// Sends one lane's datagrams when due, holding back those picked for
/// reordering until later ones have overtaken them.
async fn send_task(
    shared: Arc<Shared>,
    direction: Direction,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    stop: CancellationToken,
) {
    let lane = &shared.lanes[direction.index()];
    // Held datagrams, each with the datagrams still to overtake it and its
    // latest release time.
    let mut held: Vec<(Outgoing, u32, Instant)> = Vec::new();
    loop {
        let release = held.iter().map(|(_, _, at)| *at).min();
        let next = tokio::select! {
            next = rx.recv() => next,
            () = tokio::time::sleep_until(release.unwrap_or_else(Instant::now)), if release.is_some() => {
                let now = Instant::now();
                let mut i = 0;
                while i < held.len() {
                    if held[i].2 <= now {
                        let (datagram, _, _) = held.swap_remove(i);
                        lane.send(&datagram).await;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            () = stop.cancelled() => return,
        };
        let Some(mut datagram) = next else { return };
        if datagram.due > Instant::now() {
            tokio::time::sleep_until(datagram.due).await;
        }
        if let Some(count) = datagram.hold.take() {
            held.push((datagram, count, Instant::now() + MAX_HOLD));
            continue;
        }
        lane.send(&datagram).await;
        let mut i = 0;
        while i < held.len() {
            held[i].1 -= 1;
            if held[i].1 == 0 {
                let (datagram, _, _) = held.swap_remove(i);
                lane.send(&datagram).await;
            } else {
                i += 1;
            }
        }
    }
}

/// A socket on 127.0.0.1 with the buffers a QUIC endpoint has, so that the
/// proxy drops only the datagrams its faults say to: with the kernel's
/// default buffer it would add loss of its own whenever it falls behind.
fn bind_loopback() -> std::io::Result<UdpSocket> {
    let (socket, _) = cairn_net::quic::bind_udp("127.0.0.1:0")?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: answers every datagram with the same bytes.
    async fn echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(&buf[..n], from).await;
            }
        });
        (address, task)
    }

    /// Sends `count` numbered datagrams of 100 bytes through `proxy` to an
    /// echo server (spaced so that no socket buffer overflows) and returns
    /// what came back within a short while after the last.
    async fn exchange(proxy: &UdpProxy, count: u32) -> Vec<Vec<u8>> {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(proxy.address()).await.unwrap();
        let mut back = Vec::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for i in 0..count {
            let mut datagram = vec![0u8; 100];
            datagram[..4].copy_from_slice(&i.to_be_bytes());
            datagram[4..].fill(0xa5);
            client.send(&datagram).await.unwrap();
            if i % 16 == 15 {
                // Let the proxy and the echo catch up.
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(2), client.recv(&mut buf)).await
                {
                    back.push(buf[..n].to_vec());
                }
            }
        }
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), client.recv(&mut buf)).await
        {
            back.push(buf[..n].to_vec());
        }
        back
    }

    #[tokio::test]
    async fn without_faults_every_datagram_comes_back_once_in_order() {
        let (target, _echo) = echo().await;
        let proxy = UdpProxy::start(target, UdpFaults::none(), 1).await.unwrap();
        let back = exchange(&proxy, 200).await;
        let numbers: Vec<u32> = back
            .iter()
            .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
            .collect();
        assert_eq!(numbers, (0..200).collect::<Vec<_>>());
        let stats = proxy.stats();
        assert_eq!(stats.upstream.forwarded, 200);
        assert_eq!(stats.downstream.forwarded, 200);
        assert_eq!(stats.upstream.bytes, 200 * 100);
        assert_eq!(stats.upstream.dropped + stats.upstream.corrupted, 0);
    }

    #[tokio::test]
    async fn each_fault_fires_at_about_its_rate_and_shows_in_what_arrives() {
        let (target, _echo) = echo().await;
        let faults = UdpFaults::lossy();
        let proxy = UdpProxy::start(target, faults, 7).await.unwrap();
        let sent = 2000;
        let back = exchange(&proxy, sent).await;
        let stats = proxy.stats();
        for lane in [stats.upstream, stats.downstream] {
            let rate = |n: u64| n as f64 / lane.received as f64;
            assert!((0.07..0.13).contains(&rate(lane.dropped)), "{lane:?}");
            assert!((0.03..0.07).contains(&rate(lane.duplicated)), "{lane:?}");
            assert!((0.20..0.30).contains(&rate(lane.reordered)), "{lane:?}");
            assert!(lane.corrupted > 0, "{lane:?}");
            assert_eq!(
                lane.forwarded,
                lane.received - lane.dropped + lane.duplicated,
                "{lane:?}"
            );
        }
        assert_eq!(stats.upstream.received, u64::from(sent));
        assert_eq!(back.len() as u64, stats.downstream.forwarded);

        // What arrived shows each fault: fewer distinct datagrams than sent
        // (loss), some twice (duplication), some out of order, some changed.
        let intact = |d: &Vec<u8>| d.len() == 100 && d[4..].iter().all(|&b| b == 0xa5);
        let corrupted = back.iter().filter(|d| !intact(d)).count();
        assert!(corrupted > 0);
        let numbers: Vec<u32> = back
            .iter()
            .filter(|d| intact(d))
            .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
            .collect();
        let mut distinct = numbers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() < numbers.len(), "no duplicate arrived");
        assert!(
            distinct.len() < sent as usize * 9 / 10,
            "too little was lost"
        );
        assert!(
            numbers.windows(2).any(|w| w[1] < w[0]),
            "nothing arrived out of order"
        );
    }

    #[tokio::test]
    async fn the_same_seed_makes_the_same_decisions_and_settings_change_live() {
        let (target, _echo) = echo().await;
        let mut runs = Vec::new();
        for _ in 0..2 {
            let proxy = UdpProxy::start(target, UdpFaults::lossy(), 42)
                .await
                .unwrap();
            exchange(&proxy, 300).await;
            runs.push(proxy.stats().upstream);
        }
        assert_eq!(runs[0], runs[1]);

        let proxy = UdpProxy::start(target, UdpFaults::none(), 42)
            .await
            .unwrap();
        proxy.set_direction(
            Direction::Downstream,
            UdpFaults {
                loss: 1.0,
                ..UdpFaults::none()
            },
        );
        assert!(exchange(&proxy, 50).await.is_empty());
        assert_eq!(proxy.stats().upstream.forwarded, 50);
        assert_eq!(proxy.stats().downstream.dropped, 50);
        proxy.set(UdpFaults::none());
        assert_eq!(exchange(&proxy, 50).await.len(), 50);
    }

    #[tokio::test]
    async fn added_delay_delays_every_datagram() {
        let (target, _echo) = echo().await;
        let faults = UdpFaults {
            delay: Duration::from_millis(30),
            ..UdpFaults::none()
        };
        let proxy = UdpProxy::start(target, faults, 3).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(proxy.address()).await.unwrap();
        let started = std::time::Instant::now();
        client.send(b"ping").await.unwrap();
        let mut buf = [0u8; 16];
        let n = client.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        // Both ways: at least twice the delay (a lower bound, which a slow
        // machine cannot break).
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
