//! How the benchmarks print rates and verdicts against their targets.

/// How a figure fares against its target.
pub fn verdict(met: bool) -> &'static str {
    if met { "(met)" } else { "(missed)" }
}

/// A rate in MB/s, as every benchmark prints it.
pub fn mbps(rate: f64) -> String {
    format!("{rate:.0} MB/s")
}
