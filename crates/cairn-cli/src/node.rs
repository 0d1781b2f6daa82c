//! `cairn node …`: create, run and manage a storage node.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cairn_core::{AuthKey, KdfParams};
use cairn_node::server::{Listeners, run as serve};
use cairn_node::{Node, auth, dir};
use cairn_store::{Admin, CompactOptions, OpenError, ScrubOptions, Store, StoreOptions};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::{NodeCommand, UserCommand};
use crate::units::size;

/// Runs a `cairn node` command.
pub fn run(command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Init { dir, listen } => init(&dir, listen),
        NodeCommand::Address { dir } => address(&dir),
        NodeCommand::User(command) => user(command),
        NodeCommand::Run { dir } => run_node(&dir),
        NodeCommand::Status { dir, json } => status(&dir, json),
        NodeCommand::Scrub { dir, rate, json } => scrub(&dir, rate.map(|r| r.0), json),
        NodeCommand::Migrate { dir } => migrate(&dir),
        NodeCommand::Compact {
            dir,
            dead_percent,
            rate,
        } => compact(&dir, dead_percent, rate.map(|r| r.0)),
    }
}

fn init(dir: &Path, listen: Vec<cairn_net::NodeAddress>) -> Result<()> {
    let (identity, config) = dir::init(dir, listen)?;
    for address in dir::addresses(&identity, &config) {
        println!("{address}");
    }
    eprintln!(
        "Created a node in {}. Next: add a user with `cairn node user add --dir {} NAME`, \
         then start it with `cairn node run --dir {}`.",
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

fn address(dir: &Path) -> Result<()> {
    let (identity, config) = dir::load(dir)?;
    for address in dir::addresses(&identity, &config) {
        println!("{address}");
    }
    Ok(())
}

fn user(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            dir,
            name,
            quota,
            passphrase_stdin,
        } => {
            cairn_store::check_user_name(&name)
                .map_err(|reason| anyhow::anyhow!("invalid user name {name:?}: {reason}"))?;
            let (identity, _) = dir::load(&dir)?;
            let admin = open_admin(&dir)?;
            if admin.user(&name)?.is_some() {
                bail!("user {name} already exists on this node");
            }
            let passphrase = read_passphrase(passphrase_stdin, &name)?;
            let auth_key = AuthKey::derive(&name, passphrase.as_bytes(), &KdfParams::default())?;
            let node_key = auth_key.for_node(identity.id().0.as_bytes());
            let record = auth::new_user_record(node_key.expose_secret(), quota.map(|q| q.0));
            admin.add_user(&name, &record)?;
            let limit = quota.map_or("no quota".to_owned(), |q| format!("quota {}", size(q.0)));
            eprintln!("Added user {name} ({limit}).");
            Ok(())
        }
        UserCommand::List { dir, json } => {
            let admin = open_admin(&dir)?;
            let users = user_rows(&admin)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else if users.is_empty() {
                println!("no users yet: add one with `cairn node user add --dir DIR NAME`");
            } else {
                println!("{:<24} {:>12} {:>12}  created", "user", "used", "quota");
                for u in &users {
                    println!(
                        "{:<24} {:>12} {:>12}  {}",
                        u.name,
                        size(u.used_bytes),
                        u.quota_bytes.map_or("none".to_owned(), size),
                        u.created
                    );
                }
            }
            Ok(())
        }
        UserCommand::Remove { dir, name } => {
            // With the node stopped, shards nobody references any more are
            // deleted now; while it runs, its next scrub deletes them.
            let removed = match Store::open(&dir, StoreOptions::default()) {
                Ok(store) => store.remove_user(&name)?,
                Err(OpenError::Locked { .. }) => open_admin(&dir)?.remove_user(&name)?,
                Err(e) => {
                    return Err(e).context(format!("cannot open the node in {}", dir.display()));
                }
            };
            eprintln!(
                "Removed user {name}: {} shard references and {} index entries.",
                removed.references, removed.index_entries
            );
            // Records in segments are released with the user, by a store
            // or an admin; shard files only by a store. (A shard whose
            // file an interrupted migration left beside its record counts
            // in both, hence the saturation.)
            let deleted = removed.files_deleted + removed.records_released;
            let pending = (removed.unheld.len() as u64).saturating_sub(deleted);
            if deleted > 0 {
                eprintln!("Deleted {deleted} shards nobody else referenced.");
            }
            if pending > 0 {
                eprintln!(
                    "{pending} shards nobody else references will be deleted by the running node's next scrub."
                );
            }
            Ok(())
        }
        UserCommand::HttpAuth {
            dir,
            name,
            passphrase_stdin,
        } => {
            let (identity, _) = dir::load(&dir)?;
            let Some(record) = open_admin(&dir)?.user(&name)? else {
                bail!("no user {name} on this node");
            };
            let passphrase = read_passphrase(passphrase_stdin, &name)?;
            let auth_key = AuthKey::derive(&name, passphrase.as_bytes(), &KdfParams::default())?;
            let node_key = auth_key.for_node(identity.id().0.as_bytes());
            if !auth::verify(&record, node_key.expose_secret()) {
                bail!("wrong passphrase for {name}");
            }
            let header = Zeroizing::new(cairn_net::rest::basic_credentials(
                &name,
                node_key.expose_secret(),
            ));
            println!("Authorization: {}", header.as_str());
            Ok(())
        }
        UserCommand::Quota {
            dir,
            name,
            size: quota,
        } => {
            open_admin(&dir)?.set_quota(&name, quota.0)?;
            match quota.0 {
                Some(bytes) => eprintln!("User {name} may now store {}.", size(bytes)),
                None => eprintln!("User {name} has no quota now."),
            }
            Ok(())
        }
    }
}

fn open_admin(dir: &Path) -> Result<Admin> {
    Admin::open(dir).with_context(|| format!("cannot open the node in {}", dir.display()))
}

/// A user as `user list` and `status` show them.
#[derive(Debug, Serialize)]
struct UserRow {
    name: String,
    used_bytes: u64,
    quota_bytes: Option<u64>,
    created: String,
}

fn user_rows(admin: &Admin) -> Result<Vec<UserRow>> {
    let usage: std::collections::HashMap<String, u64> =
        admin.usage_by_user()?.into_iter().collect();
    Ok(admin
        .list_users()?
        .into_iter()
        .map(|(name, record)| UserRow {
            used_bytes: usage.get(&name).copied().unwrap_or(0),
            quota_bytes: record.quota,
            created: timestamp(record.created_unix),
            name,
        })
        .collect())
}

fn timestamp(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// The passphrase, from standard input or asked twice on the terminal.
fn read_passphrase(from_stdin: bool, user: &str) -> Result<Zeroizing<String>> {
    let passphrase = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the passphrase from standard input")?;
        Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "no terminal to ask for the passphrase on: pass --passphrase-stdin and pipe it in"
            );
        }
        let first = Zeroizing::new(rpassword::prompt_password(format!(
            "Passphrase for {user}: "
        ))?);
        let second = Zeroizing::new(rpassword::prompt_password("The same again: ")?);
        if *first != *second {
            bail!("the two passphrases differ; nothing was changed");
        }
        first
    };
    if passphrase.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(passphrase)
}

fn run_node(dir: &Path) -> Result<()> {
    crate::logging::init(crate::logging::Logger::Node);
    let (identity, config) = dir::load(dir)?;
    let options = StoreOptions::default()
        .with_sync(config.sync)
        .with_verify_writes(config.verify_writes)
        .with_segments(config.segments);
    let store = Store::open(dir, options).map_err(|e| match e {
        OpenError::Locked { .. } => {
            anyhow::anyhow!("another cairn node is already running in {}", dir.display())
        }
        e => anyhow::Error::new(e).context(format!("cannot open the store in {}", dir.display())),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Catch the signals before anything is served, so that a signal
        // sent as soon as the node says it is serving stops it cleanly.
        let shutdown = shutdown_signal()?;
        let listeners = Listeners::bind(&config.listen).await?;
        let node = Arc::new(Node::new(store, identity.id(), config));
        serve(node, &identity, listeners, shutdown).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Blocking store work still queued must not outlive the process silently.
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// A future that completes on the first SIGINT or SIGTERM. The handlers
/// are installed when this returns, not when the future is first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// What `node status` reports.
#[derive(Debug, Serialize)]
struct Status {
    node_id: String,
    dir: String,
    addresses: Vec<String>,
    shards: u64,
    users: Vec<UserRow>,
    last_scrub: Option<ScrubStatus>,
}

#[derive(Debug, Serialize)]
struct ScrubStatus {
    finished: String,
    shards_checked: u64,
    bytes_checked: u64,
    corrupt: u64,
    missing: u64,
}

fn status(dir: &Path, json: bool) -> Result<()> {
    let (identity, config) = dir::load(dir)?;
    let admin = open_admin(dir)?;
    let status = Status {
        node_id: identity.id().to_string(),
        dir: dir.display().to_string(),
        addresses: dir::addresses(&identity, &config)
            .iter()
            .map(ToString::to_string)
            .collect(),
        shards: admin.shard_count()?,
        users: user_rows(&admin)?,
        last_scrub: admin.last_scrub()?.map(|s| ScrubStatus {
            finished: timestamp(s.finished_unix),
            shards_checked: s.shards_checked,
            bytes_checked: s.bytes_checked,
            corrupt: s.corrupt,
            missing: s.missing,
        }),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "node {} in {}", status.node_id, status.dir)?;
    for address in &status.addresses {
        writeln!(out, "  {address}")?;
    }
    writeln!(out, "shards: {}", status.shards)?;
    if status.users.is_empty() {
        writeln!(out, "users: none")?;
    }
    for u in &status.users {
        let quota = u
            .quota_bytes
            .map_or("no quota".to_owned(), |q| format!("quota {}", size(q)));
        writeln!(out, "user {}: {} used, {quota}", u.name, size(u.used_bytes))?;
    }
    match &status.last_scrub {
        None => writeln!(out, "last scrub: never")?,
        Some(s) => writeln!(
            out,
            "last scrub: {}: {} shards ({}), {} corrupt, {} missing",
            s.finished,
            s.shards_checked,
            size(s.bytes_checked),
            s.corrupt,
            s.missing
        )?,
    }
    Ok(())
}

/// What `node scrub --json` prints.
#[derive(Debug, Serialize)]
struct ScrubJson {
    node_id: String,
    dir: String,
    ok: bool,
    seconds: f64,
    shards_checked: u64,
    bytes_checked: u64,
    damaged: Vec<DamagedJson>,
    missing: Vec<String>,
    unreferenced_removed: u64,
    unreferenced_kept: u64,
}

#[derive(Debug, Serialize)]
struct DamagedJson {
    id: String,
    damage: String,
    quarantined: Option<String>,
}

/// `cairn node migrate`: moves a stopped node's shard files into segments.
fn migrate(dir: &Path) -> Result<()> {
    let (_identity, config) = dir::load(dir)?;
    let options = StoreOptions::default()
        .with_sync(config.sync)
        .with_verify_writes(config.verify_writes)
        .with_segments(true);
    let store = Store::open(dir, options).map_err(|e| match e {
        OpenError::Locked { path } => anyhow::anyhow!(
            "the node in {} is running ({} is locked): stop it first",
            dir.display(),
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot open the store in {}", dir.display())),
    })?;
    let report = store
        .migrate()
        .with_context(|| format!("the migration of {} failed", dir.display()))?;
    println!(
        "migrated {} shard files into segments in {} ({} already moved; left for the scrub: {} unreferenced, {} damaged)",
        report.migrated,
        dir.display(),
        report.already_migrated,
        report.unreferenced,
        report.damaged
    );
    Ok(())
}

/// `cairn node compact`: one compaction of a stopped node's segments.
fn compact(dir: &Path, dead_percent: Option<u8>, rate: Option<u64>) -> Result<()> {
    let (_identity, config) = dir::load(dir)?;
    let options = StoreOptions::default()
        .with_sync(config.sync)
        .with_verify_writes(config.verify_writes)
        .with_segments(config.segments);
    let store = Store::open(dir, options).map_err(|e| match e {
        OpenError::Locked { path } => anyhow::anyhow!(
            "the node in {} is running ({} is locked): stop it first, or let it compact itself in the background (compact_interval_secs in node.toml)",
            dir.display(),
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot open the store in {}", dir.display())),
    })?;
    let dead_share = dead_percent.map_or(config.compact_dead_share(), |p| f64::from(p) / 100.0);
    let report = store
        .compact(
            &CompactOptions::default()
                .with_dead_share(dead_share)
                .with_max_bytes_per_second(rate),
        )
        .with_context(|| format!("the compaction of {} failed", dir.display()))?;
    println!(
        "compacted {}: {} segments rewritten, {} segment files deleted ({} freed), {} live shards moved ({})",
        dir.display(),
        report.segments_rewritten,
        report.segments_removed,
        size(report.bytes_freed),
        report.records_moved,
        size(report.bytes_moved),
    );
    Ok(())
}

/// `cairn node scrub`: one full pass over a stopped node's store.
fn scrub(dir: &Path, rate: Option<u64>, json: bool) -> Result<()> {
    let (identity, config) = dir::load(dir)?;
    let options = StoreOptions::default()
        .with_sync(config.sync)
        .with_verify_writes(config.verify_writes);
    let store = Store::open(dir, options).map_err(|e| match e {
        OpenError::Locked { path } => anyhow::anyhow!(
            "the node in {} is running ({} is locked): stop it first, or let it scrub itself in the background (scrub_rate and scrub_interval_secs in node.toml)",
            dir.display(),
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot open the store in {}", dir.display())),
    })?;
    let started = std::time::Instant::now();
    let report = store
        .scrub(&ScrubOptions::default().with_max_bytes_per_second(rate))
        .with_context(|| format!("the scrub of {} failed", dir.display()))?;
    let took = started.elapsed();
    let summary = ScrubJson {
        node_id: identity.id().to_string(),
        dir: dir.display().to_string(),
        ok: report.corrupt.is_empty() && report.missing.is_empty(),
        seconds: took.as_secs_f64(),
        shards_checked: report.shards_checked,
        bytes_checked: report.bytes_checked,
        damaged: report
            .corrupt
            .iter()
            .map(|d| DamagedJson {
                id: d.id.to_string(),
                damage: d.damage.to_string(),
                quarantined: d.quarantined.as_ref().map(|p| p.display().to_string()),
            })
            .collect(),
        missing: report.missing.iter().map(ToString::to_string).collect(),
        unreferenced_removed: report.unreferenced_removed,
        unreferenced_kept: report.unreferenced_kept,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "scrubbed node {} in {}: {} shards, {} read in {} ({})",
            summary.node_id,
            summary.dir,
            summary.shards_checked,
            size(summary.bytes_checked),
            crate::units::duration(took),
            crate::units::rate(summary.bytes_checked, took),
        )?;
        for d in &summary.damaged {
            let whereto = d.quarantined.as_deref().map_or_else(
                || "moving it to quarantine failed".to_owned(),
                |p| format!("quarantined as {p}"),
            );
            writeln!(out, "damaged: {}: {}; {whereto}", d.id, d.damage)?;
        }
        for id in &summary.missing {
            writeln!(
                out,
                "missing: {id}: referenced, but not stored (lost, or quarantined)"
            )?;
        }
        if summary.unreferenced_removed > 0 || summary.unreferenced_kept > 0 {
            writeln!(
                out,
                "unreferenced files: {} deleted, {} kept (younger than an hour)",
                summary.unreferenced_removed, summary.unreferenced_kept
            )?;
        }
        if summary.ok {
            writeln!(out, "ok: no shard damaged or missing")?;
        }
    }
    if !summary.ok {
        bail!(
            "{} damaged and {} missing shards; the damaged ones are in {}. Once the node runs again, its users' clients put the lost shards back by repair (or by putting the same files again)",
            summary.damaged.len(),
            summary.missing.len(),
            dir.join("quarantine").display()
        );
    }
    Ok(())
}
