//! Pacing and stopping the store's long jobs: the scrub, the migration of
//! shard files into segments, and compaction.
//!
//! Each of them runs for minutes or hours beside the requests a node
//! serves, so each shares two habits:
//!
//! - **Bounded rate.** A [`Throttle`] sleeps so that the bytes handled
//!   since the job started never exceed its rate times the time elapsed:
//!   the job takes a known share of the disk and leaves the rest to reads
//!   and puts.
//! - **Stops promptly.** A [`Stop`] given in the job's options lets
//!   another thread (a node shutting down) end it. The job looks at it
//!   between units of work, and the throttle sleeps in slices of at most
//!   [`PAUSE_SLICE`], so a stop is noticed within one unit or one slice,
//!   however low the rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Stops a running scrub, migration or compaction from another thread.
/// Clones share one flag; two handles are equal when they share it.
///
/// Once stopped, a handle stays stopped: every job given a clone of it
/// from then on stops at once.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A handle, not stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every job given a clone of this handle to stop, now and from
    /// now on.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl PartialEq for Stop {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Stop {}

/// Whether `stop` is set and stopped.
pub(crate) fn stopped(stop: Option<&Stop>) -> bool {
    stop.is_some_and(Stop::is_stopped)
}

/// Longest single sleep of the throttle: how late a stop can be noticed.
pub(crate) const PAUSE_SLICE: Duration = Duration::from_millis(100);

/// Keeps a job at or below a byte rate by sleeping.
#[derive(Debug)]
pub(crate) struct Throttle {
    rate: Option<u64>,
    start: Instant,
    /// Bytes handled since `start`.
    consumed: u64,
    /// Sleeping ends early, and for good, once this is stopped.
    stop: Option<Stop>,
}

impl Throttle {
    /// A throttle to `rate` bytes per second from now on (`None`: never
    /// sleeps; `Some(0)` is taken as 1).
    pub(crate) fn new(rate: Option<u64>, stop: Option<Stop>) -> Self {
        Self {
            rate: rate.map(|r| r.max(1)),
            start: Instant::now(),
            consumed: 0,
            stop,
        }
    }

    /// Records `bytes` handled and sleeps until handling them was allowed,
    /// in slices, returning at once when stopped.
    pub(crate) fn consume(&mut self, bytes: u64) {
        self.consumed = self.consumed.saturating_add(bytes);
        let Some(rate) = self.rate else { return };
        // In u128 so that no rate or byte count can overflow; rounded up so
        // the bound holds exactly.
        let nanos = (u128::from(self.consumed) * 1_000_000_000).div_ceil(u128::from(rate));
        let due = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        loop {
            if stopped(self.stop.as_ref()) {
                return;
            }
            let elapsed = self.start.elapsed();
            if due <= elapsed {
                return;
            }
            thread::sleep((due - elapsed).min(PAUSE_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_sleeps_until_the_bytes_are_due() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Some(10_000), None);
        throttle.consume(1_000);
        throttle.consume(1_000);
        // 2,000 bytes at 10,000 bytes/s take at least 0.2 s.
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    /// A stop must end a pause that would otherwise last a quarter of an
    /// hour: a node shutting down cannot wait for its jobs' pacing.
    #[test]
    fn a_stop_ends_the_throttles_pause() {
        let stop = Stop::new();
        let mut throttle = Throttle::new(Some(1), Some(stop.clone()));
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(200));
                stop.stop();
            });
            throttle.consume(1000);
        });
        assert!(stop.is_stopped());
    }

    #[test]
    fn unbounded_throttle_never_sleeps() {
        let start = Instant::now();
        let mut throttle = Throttle::new(None, None);
        throttle.consume(u64::MAX);
        throttle.consume(u64::MAX);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
