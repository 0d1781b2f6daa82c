//! The background upkeep of a running node's segments: migrating shard
//! files into them, and compacting them (issue 17). The third
//! background job, the scrub, has its own module ([`crate::scrub`]).
//!
//! - **Migration** ([`migration`]). A node with `segments = true` whose
//!   store still holds shard files (the first layout, from before the
//!   switch) serves at once and moves them into segments with
//!   [`Store::migrate_with`] at `migrate_rate`, logging where it is every
//!   [`PROGRESS_EVERY`] and what it did at the end. Each shard moves on
//!   its own, so a kill at any moment loses nothing (see
//!   `cairn_store::migrate`), and the next start goes on with the files
//!   left. Files the migration leaves on purpose (unreferenced or damaged:
//!   the scrub's to handle) are read where they are.
//! - **Compaction** ([`compaction`]). Every `compact_interval_secs` (the
//!   first time [`FIRST_COMPACTION_DELAY`] after start-up, or after the
//!   interval if shorter) [`Store::compact`] rewrites the segments at least
//!   `compact_dead_percent` dead at `compact_rate`, and deletes the
//!   segments with nothing live; it logs what it freed. Crash-safe by the
//!   store's design (see `cairn_store::compact`).
//!
//! Both follow the scrub's shape: the store work runs on tokio's blocking
//! pool (it reads, writes and flushes files and sleeps to keep its rate),
//! never on the async runtime; on shutdown the work is told to stop
//! through its [`Stop`] and returns within one shard or 100 ms of a pause;
//! a failure is logged and tried again [`RETRY_DELAY`] later. The two run
//! side by side: each is rate-limited, and the store allows them beside
//! each other and beside requests (the migration appends to the open
//! segment, which compaction never touches; both move a shard only if it
//! is still where they found it).
//!
//! # Why these defaults
//!
//! 50 MiB/s each, as the scrub: a node keeps most of its disk for
//! requests while the migration of a 1 TiB node takes about 6 hours.
//! Compaction every hour finds little to do on most nodes, and checking
//! costs one database read and a directory listing; half dead is where a
//! rewrite gives back at least as much space as it writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_store::{CompactOptions, CompactReport, MigrateOptions, MigrateReport, Stop, Store};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::NodeConfig;
use crate::scrub::error_chain;

/// How often a running migration logs how far it got.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How long after start-up the first compaction runs (unless the interval
/// is shorter): out of the way of a node's start, soon enough that a node
/// restarted often still compacts.
pub const FIRST_COMPACTION_DELAY: Duration = Duration::from_secs(5 * 60);

/// How long after a failed migration or compaction it is tried again
/// (a compaction: unless its interval is shorter).
pub const RETRY_DELAY: Duration = Duration::from_secs(60 * 60);

/// Moves `store`'s shard files into segments at `config.migrate_rate`,
/// until none is left to move or `shutdown` is cancelled. Returns at once
/// if `config.segments` is off or there are no shard files.
pub async fn migration(store: Arc<Store>, config: NodeConfig, shutdown: CancellationToken) {
    if !config.segments {
        return;
    }
    loop {
        let count_store = store.clone();
        let count =
            tokio::task::spawn_blocking(move || cairn_store::count_shards(count_store.dir()));
        let files = tokio::select! {
            files = count => files,
            () = shutdown.cancelled() => return,
        };
        let files = match files {
            Ok(Ok(0)) => {
                debug!("migration: no shard files to move into segments");
                return;
            }
            Ok(Ok(files)) => files,
            Ok(Err(e)) => {
                warn!("migration: cannot list the shard files: {e}; not migrating");
                return;
            }
            Err(e) => {
                warn!("migration: listing the shard files panicked: {e}");
                return;
            }
        };
        info!(
            "migration: moving {files} shard files into segments in the background, at {}/s (migrate_rate)",
            config.migrate_rate
        );
        match migrate_pass(&store, &config, files, &shutdown).await {
            Pass::Finished => return,
            Pass::Failed => {}
            Pass::Stopped => {
                info!("migration: stopped for shutdown; the next start goes on with the rest");
                return;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

/// How a run of the migration ended.
enum Pass {
    /// It went through every shard file.
    Finished,
    /// It failed (and said why in the log).
    Failed,
    /// It was stopped for shutdown.
    Stopped,
}

/// One run of the migration over every shard file.
async fn migrate_pass(
    store: &Arc<Store>,
    config: &NodeConfig,
    files: u64,
    shutdown: &CancellationToken,
) -> Pass {
    let stop = Stop::new();
    let options = MigrateOptions::default()
        .with_max_bytes_per_second(Some(config.migrate_rate.0))
        .with_stop(stop.clone());
    let pass_store = store.clone();
    let started = Instant::now();
    let mut pass = tokio::task::spawn_blocking(move || {
        let mut logged = Instant::now();
        pass_store.migrate_with(&options, &mut |report| {
            if logged.elapsed() >= PROGRESS_EVERY {
                logged = Instant::now();
                log_migration_progress(report, files, started.elapsed());
            }
        })
    });
    let result = tokio::select! {
        result = &mut pass => result,
        () = shutdown.cancelled() => {
            stop.stop();
            if let Ok(Ok(report)) = pass.await {
                log_migration_progress(&report, files, started.elapsed());
            }
            return Pass::Stopped;
        }
    };
    match result {
        Ok(Ok(report)) => {
            info!(
                "migration: done in {:.1} s: {} shard files moved into segments ({} bytes), {} left by an earlier run removed; left for the scrub: {} unreferenced, {} damaged",
                started.elapsed().as_secs_f64(),
                report.migrated,
                report.bytes_migrated,
                report.already_migrated,
                report.unreferenced,
                report.damaged,
            );
            Pass::Finished
        }
        Ok(Err(e)) => {
            warn!(
                "migration: failed: {}; the files left are served where they are, next try in {} s",
                error_chain(&e),
                RETRY_DELAY.as_secs()
            );
            Pass::Failed
        }
        Err(e) => {
            warn!("migration: panicked: {e}");
            Pass::Failed
        }
    }
}

fn log_migration_progress(report: &MigrateReport, files: u64, took: Duration) {
    info!(
        "migration: {} of {files} shard files looked at in {:.0} s; {} moved ({} bytes)",
        report.files_seen(),
        took.as_secs_f64(),
        report.migrated,
        report.bytes_migrated,
    );
}

/// Compacts `store`'s segments on `config`'s schedule until `shutdown` is
/// cancelled. Returns at once if background compaction is off.
pub async fn compaction(store: Arc<Store>, config: NodeConfig, shutdown: CancellationToken) {
    let Some(interval) = config.compact_interval() else {
        info!("background compaction off (compact_interval_secs = 0)");
        return;
    };
    let mut wait = interval.min(FIRST_COMPACTION_DELAY);
    info!(
        "background compaction: segments at least {}% dead rewritten at {}/s every {} s; the first check in {} s",
        config.compact_dead_percent,
        config.compact_rate,
        interval.as_secs(),
        wait.as_secs()
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let stop = Stop::new();
        let options = CompactOptions::default()
            .with_dead_share(config.compact_dead_share())
            .with_max_bytes_per_second(Some(config.compact_rate.0))
            .with_stop(stop.clone());
        let pass_store = store.clone();
        let started = Instant::now();
        let mut pass = tokio::task::spawn_blocking(move || pass_store.compact(&options));
        let result = tokio::select! {
            result = &mut pass => result,
            () = shutdown.cancelled() => {
                stop.stop();
                if let Ok(Ok(report)) = pass.await {
                    log_compaction(&report, started.elapsed());
                }
                return;
            }
        };
        wait = interval;
        match result {
            Ok(Ok(report)) => log_compaction(&report, started.elapsed()),
            Ok(Err(e)) => {
                wait = interval.min(RETRY_DELAY);
                warn!(
                    "compaction: failed: {}; next try in {} s",
                    error_chain(&e),
                    wait.as_secs()
                );
            }
            Err(e) => {
                wait = interval.min(RETRY_DELAY);
                warn!("compaction: panicked: {e}");
            }
        }
    }
}

/// What a compaction did, at info if it did anything or was stopped.
fn log_compaction(report: &CompactReport, took: Duration) {
    let ended = if report.stopped {
        "stopped for shutdown after"
    } else {
        "done in"
    };
    if report.segments_removed == 0 && report.records_moved == 0 && !report.stopped {
        debug!("compaction: nothing to do ({:.1} s)", took.as_secs_f64());
        return;
    }
    info!(
        "compaction: {ended} {:.1} s: {} segments rewritten, {} segment files deleted ({} bytes freed); {} live shards moved ({} bytes)",
        took.as_secs_f64(),
        report.segments_rewritten,
        report.segments_removed,
        report.bytes_freed,
        report.records_moved,
        report.bytes_moved,
    );
}
