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

/// The transport configuration both ends start from; callers add their own
/// limits and timeouts.
pub fn transport_config() -> quinn::TransportConfig {
    quinn::TransportConfig::default()
}
