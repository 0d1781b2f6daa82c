//! The QUIC transport settings both ends use.
//!
//! Client and node share them because the sender's congestion controller
//! decides throughput: the client's for puts, the node's for gets.
//!
//! **Congestion control: quinn's default (Cubic), for now.** Cubic reads
//! every loss as congestion; at 10 % random loss it halves its window every
//! round trip and collapses. BBR does not, but quinn's BBR (marked
//! experimental) collapses on loopback instead. Measured on the development
//! machine (release builds, MB/s put / get):
//!
//! | controller | `bench --faults`, 64 MiB, clean | same, 10 % loss, 5 % dup, 25 % reorder, 1 % corrupt | `bench node`, 1 / 8 clients |
//! | --- | --- | --- | --- |
//! | Cubic (quinn's default) | 94–121 / 418–485 | 2–3 / 2–3 | 57–601 / 605–1172 (8 clients) |
//! | Cubic, packet threshold 8, time threshold 1.5 | 121 / 485 | 3 / 3 | |
//! | BBR | 72 / 232 | 29 / 74 | |
//! | BBR, packet threshold 8, time threshold 1.5 | 64–74 / 186–197 | 48–49 / 82–88 | PUT 35 / 164, GET 54 / 171 |
//!
//! So BBR with loss detection that tolerates reordering meets the lossy-link
//! target (≥ 30 % of the clean rate) but would miss the node's GET target
//! (≥ 600 MB/s over quic://) by a factor of 3.5; until a controller does
//! both, the default stays.

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
