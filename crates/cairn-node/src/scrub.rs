//! The background scrub of a running node.
//!
//! [`background`] runs full passes of [`Store::scrub`] for as long as the
//! node serves: each re-reads every shard at `scrub_rate` bytes per second,
//! quarantines the damaged ones, and lists the referenced shards that have
//! no bytes stored (see `cairn_store::scrub`). A pass starts `scrub_interval_secs`
//! after the previous one finished, as recorded in the store's
//! `last_scrub` (so the schedule survives restarts, and `cairn node
//! status` shows the last full pass); a node never scrubbed starts its
//! first pass [`FIRST_PASS_DELAY`] after start-up, or after the interval
//! if that is shorter.
//!
//! - **Off the async runtime.** A pass runs on a blocking thread of its
//!   own; requests never wait for it, except on the locks of the few ids it
//!   quarantines or deletes, for the length of a rename.
//! - **Stops promptly.** On shutdown the pass is told to stop through its
//!   [`ScrubStop`]: it returns within one paced read block or pause, and
//!   records nothing (the next start scrubs again, since the last full
//!   pass is as old as it was).
//! - **Says what it found**, at warn: every damaged shard with where it was
//!   quarantined, the missing ones (the first [`MISSING_LOGGED`]), and a
//!   summary. A clean pass logs its summary at info.
//! - **A failed pass** (a disk error listing the shards, the database) is
//!   logged and tried again [`RETRY_DELAY`] later, or after the interval if
//!   that is shorter.
//!
//! # Why a week
//!
//! The default interval is a week, as Ceph's deep scrub. At the default
//! 50 MiB/s a pass reads about 29 TiB in a week, so a node of any size
//! up to that finishes one pass per interval while spending most of it
//! idle; larger nodes simply scrub back to back. A latent error waits at
//! most a week and a pass to be found; with 2-of-4 coding a chunk is lost
//! only if two more of its shards are lost in that window, and every get,
//! `verify` or `have` of the damaged shard finds it sooner. Scrubbing
//! more often buys little more and costs disk time a node serves with.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_store::{ScrubOptions, ScrubReport, ScrubStop, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::service::log_damage;

/// How long a node never scrubbed waits after start-up before its first
/// pass (unless its interval is shorter): long enough to stay out of the
/// way of an operator setting up or trying out a new node, short enough
/// that a node restarted daily still gets scrubbed.
pub const FIRST_PASS_DELAY: Duration = Duration::from_secs(60 * 60);

/// How long after a failed pass the next one starts (unless the interval
/// is shorter).
pub const RETRY_DELAY: Duration = Duration::from_secs(60 * 60);

/// Missing shards logged one by one per pass; the rest are counted.
pub const MISSING_LOGGED: usize = 100;

/// Scrubs `store` on `config`'s schedule until `shutdown` is cancelled.
/// Returns at once if the background scrub is off.
pub async fn background(store: Arc<Store>, config: NodeConfig, shutdown: CancellationToken) {
    let Some(interval) = config.scrub_interval() else {
        info!("background scrub off (scrub_interval_secs = 0)");
        return;
    };
    let rate = config.scrub_rate.0;
    let started = Instant::now();
    let mut failed_at: Option<Instant> = None;
    let mut first = true;
    loop {
        let wait = match failed_at {
            Some(at) => interval.min(RETRY_DELAY).saturating_sub(at.elapsed()),
            None => match last_finished(&store).await {
                Ok(Some(finished)) => {
                    // The interval at most: a finish time in the future (a
                    // clock set back) must not postpone scrubs for years.
                    let due = finished + interval;
                    due.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                        .min(interval)
                }
                Ok(None) => interval
                    .min(FIRST_PASS_DELAY)
                    .saturating_sub(started.elapsed()),
                Err(e) => {
                    warn!("background scrub: cannot read the last scrub: {e}");
                    interval.min(RETRY_DELAY)
                }
            },
        };
        if first {
            info!(
                "background scrub: a full pass at {}/s every {} s; the next starts in {} s",
                config.scrub_rate,
                interval.as_secs(),
                wait.as_secs()
            );
            first = false;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }

        info!("scrub: starting a full pass at {}/s", config.scrub_rate);
        let stop = ScrubStop::new();
        let options = ScrubOptions::default()
            .with_max_bytes_per_second(Some(rate))
            .with_stop(stop.clone());
        let pass_store = store.clone();
        let pass_started = Instant::now();
        let mut pass = tokio::task::spawn_blocking(move || pass_store.scrub(&options));
        let result = tokio::select! {
            result = &mut pass => result,
            () = shutdown.cancelled() => {
                stop.stop();
                let _ = pass.await;
                info!("scrub: pass stopped for shutdown; nothing recorded");
                return;
            }
        };
        match result {
            Ok(Ok(report)) => {
                failed_at = None;
                log_report(&report, pass_started.elapsed());
            }
            Ok(Err(e)) => {
                failed_at = Some(Instant::now());
                warn!(
                    "scrub: pass failed: {}; next try in {:?}",
                    error_chain(&e),
                    interval.min(RETRY_DELAY)
                );
            }
            Err(e) => {
                failed_at = Some(Instant::now());
                warn!("scrub: pass panicked: {e}");
            }
        }
    }
}

/// When the last full scrub finished, from the store's record.
async fn last_finished(store: &Arc<Store>) -> Result<Option<SystemTime>, String> {
    let store = store.clone();
    let record = tokio::task::spawn_blocking(move || store.last_scrub())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| error_chain(&e))?;
    Ok(record.map(|r| UNIX_EPOCH + Duration::from_secs(r.finished_unix)))
}

/// What a finished pass found, in the log.
fn log_report(report: &ScrubReport, took: Duration) {
    for damaged in &report.corrupt {
        log_damage(&damaged.id, &damaged.damage, damaged.quarantined.as_deref());
    }
    for id in report.missing.iter().take(MISSING_LOGGED) {
        warn!(
            "shard {id} is missing: referenced, but not stored (lost, or quarantined; its owners' repair must put it back)"
        );
    }
    if report.missing.len() > MISSING_LOGGED {
        warn!(
            "… and {} more missing shards",
            report.missing.len() - MISSING_LOGGED
        );
    }
    let summary = format!(
        "scrub: full pass done in {:.1} s: {} shards, {} bytes checked; {} damaged, {} missing; {} unreferenced files deleted, {} kept (younger than an hour)",
        took.as_secs_f64(),
        report.shards_checked,
        report.bytes_checked,
        report.corrupt.len(),
        report.missing.len(),
        report.unreferenced_removed,
        report.unreferenced_kept,
    );
    if report.corrupt.is_empty() && report.missing.is_empty() {
        info!("{summary}");
    } else {
        warn!("{summary}");
    }
}

/// An error with its causes, as one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
