//! The scrub's read-rate bound.
//!
//! Guards against a scrub saturating the disk of a node that is serving
//! reads. Only a lower bound on the time taken is checked: a slow machine
//! can make the scrub slower, never faster, so the test cannot flake.

mod common;

use std::time::{Duration, Instant};

use cairn_store::ScrubOptions;
use common::{open, shard};

#[test]
fn a_bounded_scrub_takes_at_least_bytes_over_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for seed in 0..4 {
        let (id, bytes) = shard(seed, 2048);
        store.put("ann", &id, &bytes, None).unwrap();
    }
    // 8 KiB at 16 KiB/s: at least half a second.
    let options = ScrubOptions::default().with_max_bytes_per_second(Some(16 * 1024));
    let start = Instant::now();
    let report = store.scrub(&options).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(report.bytes_checked, 8192);
    assert!(
        elapsed >= Duration::from_millis(500),
        "scrub of 8 KiB at 16 KiB/s took only {elapsed:?}"
    );
}
