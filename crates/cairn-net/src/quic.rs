//! The QUIC transport settings both ends use.
//!
//! Client and node share them because the sender's congestion controller
//! decides throughput: the client's for puts, the node's for gets. Which
//! controller is a per-deployment choice, [`Congestion`]: `quic_congestion`
//! in the client's config and in `node.toml`, BBR unless set.
//!
//! **Why a choice, and BBR by default.** Cubic reads every loss as
//! congestion; at 10 % random loss it halves its window every round trip
//! and collapses to a few percent of the clean rate. BBR does not, and
//! keeps about half the clean rate there. quinn marks its BBR experimental,
//! and it used to be slower than Cubic on a busy loopback; that was the
//! UDP receive buffer (below), which every QUIC socket now enlarges. Since
//! then (4 MiB buffers, idle development machine, release builds, MB/s put /
//! get):
//!
//! | controller | `bench --faults`, 64 MiB, direct | same, 10 % loss, 5 % dup, 25 % reorder, 1 % corrupt | `bench node --verify-rounds 0`, 1 client | 8 clients |
//! | --- | --- | --- | --- | --- |
//! | BBR, packet threshold 8, time threshold 1.5 (`bbr`, default) | 104–129 / 226–298 | 51–66 / 81–107 (put 41–57 %, get 28–40 %, median 35 %; 8 runs) | 182–270 / 505–842 | 334–407 / 606–859 |
//! | Cubic (quinn's default) | 139 / 432 | 2 / 2 (2 % / 0 %) | 112–146 / 271–319 | 304–426 / 658–791 |
//!
//! So `bbr` meets the lossy-link target (≥ 30 % of the clean rate) and the
//! node's GET target (≥ 600 MB/s over quic:// with 8 clients), and is as
//! fast as Cubic or faster against one node. Where it is slower is a get
//! from four nodes at once over a clean loopback (226–298 against 432
//! MB/s), still more than a 1 Gbit/s link carries; Cubic is there for a
//! deployment whose links never lose packets and that wants that back.
//!
//! **Why quinn's BBR was slow on loopback** (investigated). Not its window:
//! after a `bench node` put, a BBR client's congestion window was 0.4–7 MB
//! at a smoothed RTT of 0.1–0.3 ms, far above what the rate needs. It was
//! loss: the receiving UDP socket's buffer (Linux default 208 KiB)
//! overflowed whenever the receiver, sharing two cores with the sender,
//! fell behind (the kernel counts them as `RcvbufErrors`). Cubic backed off
//! and lost 8–13 % of its packets; BBR took loss for noise, kept its rate
//! and lost 31–54 % (84,671 of 274,477 packets for one client), which it
//! then sent again, on a machine whose bottleneck is the CPU that encrypts
//! them. With [`UDP_BUFFER`] on both ends' sockets neither controller loses
//! a packet there (no `RcvbufErrors` over a whole `bench --faults` run).
//! BBR's initial window (4 MiB) and a window floor (2 MiB) did not help.

use std::fmt;
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The congestion controller a QUIC sender uses: `quic_congestion` in the
/// client's config (for what it sends: puts) and in `node.toml` (for what
/// the node sends: gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// quinn's default: collapses under random loss.
    Cubic,
    /// BBR with loss detection that tolerates reordering (packet threshold
    /// [`BBR_PACKET_THRESHOLD`], time threshold [`BBR_TIME_THRESHOLD`]):
    /// keeps about half the clean rate at 10 % loss (see the module docs).
    #[default]
    Bbr,
}

/// Packets received after a missing one before it counts as lost, with
/// [`Congestion::Bbr`] (quinn's default: 3). With 25 % of the datagrams
/// reordered, 3 declares many late packets lost.
pub const BBR_PACKET_THRESHOLD: u32 = 8;

/// RTTs after which a missing packet counts as lost, with
/// [`Congestion::Bbr`] (quinn's default: 9/8).
pub const BBR_TIME_THRESHOLD: f32 = 1.5;

impl Congestion {
    /// The name written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cubic => "cubic",
            Self::Bbr => "bbr",
        }
    }
}

impl fmt::Display for Congestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name other than `cubic` or `bbr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown congestion controller {0:?}: use \"cubic\" or \"bbr\"")]
pub struct UnknownCongestion(pub String);

impl FromStr for Congestion {
    type Err = UnknownCongestion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cubic" => Ok(Self::Cubic),
            "bbr" => Ok(Self::Bbr),
            other => Err(UnknownCongestion(other.to_owned())),
        }
    }
}

/// The transport configuration both ends start from, with `congestion` as
/// the controller of what this end sends; callers add their own limits and
/// timeouts.
pub fn transport_config(congestion: Congestion) -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    match congestion {
        Congestion::Cubic => {}
        Congestion::Bbr => {
            config
                .congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
                .packet_threshold(BBR_PACKET_THRESHOLD)
                .time_threshold(BBR_TIME_THRESHOLD);
        }
    }
    config
}

/// The receive and send buffer every QUIC socket asks the kernel for.
///
/// Linux's default (208 KiB) overflows whenever a receiver sharing its
/// cores with busy senders falls a few milliseconds behind, and every
/// datagram dropped there is a loss the sender's controller reacts to.
/// The kernel caps the request at `net.core.rmem_max` / `wmem_max`.
pub const UDP_BUFFER: usize = 4 << 20;

/// A UDP socket bound to `address` with [`UDP_BUFFER`] asked for its
/// receive and send buffers; returns it with the receive buffer the kernel
/// granted.
pub fn bind_udp(address: impl ToSocketAddrs) -> io::Result<(UdpSocket, usize)> {
    let socket = UdpSocket::bind(address)?;
    let buffers = socket2::SockRef::from(&socket);
    // Refusals are not errors: the kernel's defaults still work, only with
    // more loss under load, and the caller reports the granted size.
    let _ = buffers.set_recv_buffer_size(UDP_BUFFER);
    let _ = buffers.set_send_buffer_size(UDP_BUFFER);
    let granted = receive_buffer(&socket);
    Ok((socket, granted))
}

/// The receive buffer the kernel gives `socket` (0 if it will not say).
pub fn receive_buffer(socket: &UdpSocket) -> usize {
    socket2::SockRef::from(socket)
        .recv_buffer_size()
        .unwrap_or(0)
}

/// Whether a granted receive buffer is far below [`UDP_BUFFER`]: Linux
/// reports twice what it grants, so less than the request means
/// `net.core.rmem_max` capped it below half.
pub fn buffer_is_small(granted: usize) -> bool {
    granted < UDP_BUFFER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for congestion in [Congestion::Cubic, Congestion::Bbr] {
            assert_eq!(congestion.as_str().parse::<Congestion>(), Ok(congestion));
            assert_eq!(congestion.to_string(), congestion.as_str());
        }
        assert_eq!(Congestion::default(), Congestion::Bbr);
        let err = "reno".parse::<Congestion>().unwrap_err();
        assert!(err.to_string().contains("\"cubic\" or \"bbr\""), "{err}");
        assert!("BBR".parse::<Congestion>().is_err(), "names are lowercase");
    }

    #[test]
    fn udp_sockets_ask_for_large_buffers() {
        let (socket, granted) = bind_udp("127.0.0.1:0").unwrap();
        assert!(socket.local_addr().unwrap().port() != 0);
        // Whatever the kernel's cap, the grant is at least its default and
        // is what the socket reports.
        assert_eq!(granted, receive_buffer(&socket));
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        if let Some(cap) = cap {
            // Linux doubles the request it grants, after capping it.
            assert_eq!(granted, 2 * UDP_BUFFER.min(cap), "rmem_max {cap}");
        }
    }

    #[test]
    fn bbr_changes_the_controller_and_the_loss_detection() {
        // quinn does not expose the settings back; the Debug output does.
        let cubic = format!("{:?}", transport_config(Congestion::Cubic));
        let bbr = format!("{:?}", transport_config(Congestion::Bbr));
        assert!(cubic.contains("packet_threshold: 3"), "{cubic}");
        assert!(bbr.contains("packet_threshold: 8"), "{bbr}");
        assert!(bbr.contains("time_threshold: 1.5"), "{bbr}");
    }
}
