//! The QUIC transport settings both ends use.
//!
//! Client and node share them because the sender's congestion controller
//! decides throughput: the client's for puts, the node's for gets.
//!
//! **Congestion control: BBR, with reordering tolerated.** quinn's default,
//! Cubic, reads every loss as congestion; at 10 % random loss it halves its
//! window every round trip and collapses. Measured with `cairn bench
//! --faults` (release build, 64 MiB, 4 local nodes, MB/s put / get):
//!
//! | controller | clean, direct | 10 % loss, 5 % dup, 25 % reorder, 1 % corrupt |
//! | --- | --- | --- |
//! | Cubic (quinn's default) | 94–121 / 418–485 | 2–3 / 2–3 |
//! | BBR | 72 / 232 | 29 / 74 |
//! | BBR, packet threshold 8, time threshold 1.5 | 64–74 / 186–197 | 48–49 / 82–88 |
//!
//! BBR paces to the delivery rate it measures and does not back off on
//! random loss, and the higher loss-detection thresholds stop reordered
//! packets from being declared lost and sent again. The clean runs through
//! loopback are slower with BBR (a round trip of microseconds is not what
//! it is tuned for); quinn marks its BBR experimental.

use std::sync::Arc;

/// Packets that must be acknowledged after one before it counts as lost
/// (RFC 9002 recommends 3): reordering of a few packets is not loss.
pub const PACKET_THRESHOLD: u32 = 8;

/// Round trips, relative to the smoothed RTT, before an unacknowledged
/// packet counts as lost (RFC 9002 recommends 9/8).
pub const TIME_THRESHOLD: f32 = 1.5;

/// A transport configuration with cairn's congestion control and loss
/// detection; callers add their own limits and timeouts.
pub fn transport_config() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        .packet_threshold(PACKET_THRESHOLD)
        .time_threshold(TIME_THRESHOLD);
    transport
}
