//! The QUIC transport settings both ends use.
//!
//! Client and node share them because the sender's congestion controller
//! decides throughput: the client's for puts, the node's for gets. Which
//! controller is a per-deployment choice, [`Congestion`]: `quic_congestion`
//! in the client's config and in `node.toml`, Cubic unless set.
//!
//! **Why a choice, and Cubic by default.** Cubic reads every loss as
//! congestion; at 10 % random loss it halves its window every round trip
//! and collapses. BBR does not, and keeps about half the clean rate there,
//! but quinn's BBR (marked experimental) is slower than Cubic on a clean,
//! busy loopback. Measured on the development machine (release builds, MB/s
//! put / get):
//!
//! | controller | `bench --faults`, 64 MiB, clean | same, 10 % loss, 5 % dup, 25 % reorder, 1 % corrupt | `bench node`, 1 / 8 clients |
//! | --- | --- | --- | --- |
//! | Cubic (quinn's default) | 90–123 / 409–507 | 2–3 / 2–3 | 51–313 / 540–812 (1 client), 267–435 / 527–878 (8) |
//! | Cubic, packet threshold 8, time threshold 1.5 | 121 / 485 | 3 / 3 | |
//! | BBR | 72 / 232 | 29 / 74 | |
//! | BBR, packet threshold 8, time threshold 1.5 (`bbr`) | 64–110 / 186–269 | 48–62 / 82–88 | 32–130 / 61–372 (1), 164–314 / 171–667 (8) |
//!
//! So `bbr` meets the lossy-link target (≥ 30 % of the clean rate: 46 % /
//! 31 % in the last run) and Cubic does not (2 % / 0 %), while Cubic meets
//! the node's GET target (≥ 600 MB/s over quic:// with 8 clients) and
//! `bbr` mostly does not (the machine is noisy: PUT follows its fsync
//! rate, and even Cubic's GET fell to 527 in one run). A deployment whose clients reach nodes over links
//! that lose packets at random (Wi-Fi, long mobile or satellite paths) sets
//! `bbr` on the ends that send over them.
//!
//! **Why quinn's BBR is slow on loopback** (investigated, not changed). Not
//! its window: after a `bench node` put, a BBR client's congestion window
//! was 0.4–7 MB at a smoothed RTT of 0.1–0.3 ms, far above what the rate
//! needs. It is loss: the receiving UDP socket's buffer (Linux default
//! 208 KiB) overflows whenever the receiver, sharing two cores with the
//! sender, falls behind (the kernel counts them as `RcvbufErrors`). Cubic
//! backs off and lost 8–13 % of its packets; BBR takes loss for noise and
//! keeps its rate, and lost 31–54 % (84,671 of 274,477 packets for one
//! client), which it then sends again, on a machine whose bottleneck is the
//! CPU that encrypts them. With 4 MiB receive and send buffers on both ends'
//! sockets (`SO_RCVBUF`/`SO_SNDBUF`, within `net.core.rmem_max`), neither
//! controller lost a packet and `bbr` measured 185 / 408 (1 client) and
//! 341 / 729 (8 clients) against Cubic's 96 / 432 and 191 / 636 in the same
//! series, and kept 44 % / 30 % at 10 % loss; but in `bench --faults` its
//! clean get stayed at half Cubic's (281 against 521 MB/s), so Cubic stays
//! the default. Larger UDP buffers are the next step worth taking for both
//! controllers; BBR's initial window (4 MiB) and a window floor (2 MiB) did
//! not help.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The congestion controller a QUIC sender uses: `quic_congestion` in the
/// client's config (for what it sends: puts) and in `node.toml` (for what
/// the node sends: gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// quinn's default: fast on clean links, collapses under random loss.
    #[default]
    Cubic,
    /// BBR with loss detection that tolerates reordering (packet threshold
    /// [`BBR_PACKET_THRESHOLD`], time threshold [`BBR_TIME_THRESHOLD`]):
    /// keeps about half the clean rate at 10 % loss, but quinn's BBR is
    /// slow on loopback with several clients (see the module docs).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for congestion in [Congestion::Cubic, Congestion::Bbr] {
            assert_eq!(congestion.as_str().parse::<Congestion>(), Ok(congestion));
            assert_eq!(congestion.to_string(), congestion.as_str());
        }
        assert_eq!(Congestion::default(), Congestion::Cubic);
        let err = "reno".parse::<Congestion>().unwrap_err();
        assert!(err.to_string().contains("\"cubic\" or \"bbr\""), "{err}");
        assert!("BBR".parse::<Congestion>().is_err(), "names are lowercase");
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
