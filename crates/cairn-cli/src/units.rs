//! Human-readable sizes, durations and rates for the command's output.

use std::time::Duration;

/// `bytes` in binary units: `512 B`, `3.2 KiB`, `64.0 MiB`, `1.50 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if unit >= 2 { 2 } else { 1 };
    format!("{value:.decimals$} {}", UNITS[unit])
}

/// A duration as `850 ms` or `2.41 s`.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `bytes` over `d` in MB/s (decimal, as disks and networks are rated).
pub fn rate(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64().max(1e-9);
    format!("{:.0} MB/s", bytes as f64 / secs / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024 / 2), "1.50 GiB");
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(duration(Duration::from_millis(2410)), "2.41 s");
        assert_eq!(rate(100_000_000, Duration::from_millis(500)), "200 MB/s");
    }
}
