//! Repair: giving every chunk of a file back its n shards on n nodes.
//!
//! ```text
//! verify:  every copy of every shard read from every node that claims it
//!          └▶ per shard id, the nodes whose copy matched (bad copies are
//!             quarantined by the node that read them)
//! per stripe (manifest, then chunks), a few at once:
//!   spread_out ─▶ a largest set of shards held on distinct nodes
//!   all n there?  nothing to do
//!   otherwise     fetch any k shards ─▶ decode ─▶ re-encode (sealed bytes:
//!                 nothing is decrypted) ─▶ each shard left out goes to the
//!                 first reachable node in rendezvous order holding none of
//!                 the stripe's counted shards
//! ```
//!
//! A shard left out is one missing everywhere, or one whose only copies
//! sit on a node already counted for another shard of its stripe (a put
//! made while a node was down). Re-encoding gives the very bytes the
//! manifest names (the encoding is deterministic; checked). Copies that
//! became redundant are left where they are: extra copies cost space, not
//! safety. A run that finds everything in place changes nothing, so repair
//! is idempotent; a chunk with fewer than k good shards anywhere cannot be
//! rebuilt and is reported as lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_core::erasure::{StripeDecoder, StripeEncoder};
use cairn_core::{Id, StripeRef};
use futures::stream::{self, StreamExt};

use crate::Client;
use crate::directory::FileInfo;
use crate::directory::{self, DirectoryError, Health};
use crate::fetch::Counts;
use crate::index::{Content, RemotePath};
use crate::placement;

/// What repairing one file found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The file.
    pub path: RemotePath,
    /// Its health before the repair.
    pub before: Health,
    /// Its health after.
    pub after: Health,
    /// Stripes checked (the manifest's and one per chunk).
    pub stripes: usize,
    /// Stripes that needed shards rebuilt.
    pub stripes_repaired: usize,
    /// Shards rebuilt and stored (for an inline file: copies of its index
    /// entry written).
    pub shards_written: usize,
    /// Bytes of those shards.
    pub bytes_written: u64,
    /// Copies that failed their hash (each quarantined by its node).
    pub corrupt: usize,
    /// Shards that found no reachable node free to take them (fewer nodes
    /// up than the stripe has shards): a later repair places them.
    pub unplaced: usize,
    /// Why stripes could not be repaired (too few shards, a failed write).
    pub problems: Vec<String>,
    /// Whether the file is inline in its index entry (no stripes).
    pub inline: bool,
}

/// Counters shared by the stripes of one repair.
#[derive(Debug, Default)]
struct Tally {
    repaired: AtomicUsize,
    written: AtomicUsize,
    bytes: AtomicU64,
    unplaced: AtomicUsize,
}

impl Client {
    /// Repairs `remote`: rebuilds every shard that is missing, corrupt, or
    /// doubled up on a node, and stores it on a node of its own; see the
    /// module docs.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error when
    /// its manifest cannot be read. A chunk that cannot be repaired is not
    /// an error: the report says so (`after` is not [`Health::Ok`]).
    pub async fn repair(&self, remote: &RemotePath) -> Result<RepairReport, DirectoryError> {
        let (info, content, _) = self.file(remote).await?;
        let capability = match content {
            Content::Stored(capability) => capability,
            Content::Inline(_) => return Ok(self.repair_inline(&info).await),
        };
        let mut checked = self.check_copies(&capability).await?;
        let nodes = self.cluster.len();
        let before = {
            let stripes: Vec<&StripeRef> = checked.stripes.iter().collect();
            directory::assess(&stripes, &checked.good, nodes).2
        };
        let tally = Tally::default();
        let good = &checked.good;
        let outcomes: Vec<Result<Vec<(Id, usize)>, String>> = stream::iter(&checked.stripes)
            .map(|stripe| self.repair_stripe(stripe, good, &tally))
            .buffer_unordered(self.window.max(1))
            .collect()
            .await;
        let mut problems = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(placed) => {
                    for (id, node) in placed {
                        checked.good.entry(id).or_default().push(node);
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        let stripes: Vec<&StripeRef> = checked.stripes.iter().collect();
        let after = directory::assess(&stripes, &checked.good, nodes).2;
        Ok(RepairReport {
            path: remote.clone(),
            before,
            after,
            stripes: stripes.len(),
            stripes_repaired: tally.repaired.load(Ordering::Relaxed),
            shards_written: tally.written.load(Ordering::Relaxed),
            bytes_written: tally.bytes.load(Ordering::Relaxed),
            corrupt: checked.corrupt,
            unplaced: tally.unplaced.load(Ordering::Relaxed),
            problems,
            inline: false,
        })
    }

    /// Repairs an inline file: its entry goes to every node that lacks it.
    /// (The lookup that found the file already sent it to the stale nodes
    /// that answered; this catches the rest.)
    async fn repair_inline(&self, info: &FileInfo) -> RepairReport {
        let nodes = self.cluster.len();
        let (per_node, corrupt, sealed) = self.entry_copies(&info.path, info.version).await;
        let before = directory::inline_health(per_node.iter().sum(), nodes);
        let mut written = 0;
        let mut bytes_written = 0;
        let mut problems = Vec::new();
        if let Some(sealed) = sealed {
            let name = crate::index::entry_name(&self.keys.index_name, &info.path);
            let version = info.version;
            let lacking = (0..nodes).filter(|&n| per_node[n] == 0);
            let results = self.put_entry_on(lacking, &name, version, &sealed).await;
            for (node, result) in results {
                match result {
                    Ok(_) => {
                        written += 1;
                        bytes_written += sealed.len() as u64;
                    }
                    Err(e) => problems.push(format!("{}: {e}", self.cluster.address(node))),
                }
            }
        }
        let (after_nodes, _, _) = self.entry_copies(&info.path, info.version).await;
        RepairReport {
            path: info.path.clone(),
            before,
            after: directory::inline_health(after_nodes.iter().sum(), nodes),
            stripes: 0,
            stripes_repaired: 0,
            shards_written: written,
            bytes_written,
            corrupt,
            unplaced: 0,
            problems,
            inline: true,
        }
    }

    /// Repairs one stripe given the good copies of its shards; returns the
    /// (shard, node) pairs it stored.
    async fn repair_stripe(
        &self,
        stripe: &StripeRef,
        good: &HashMap<Id, Vec<usize>>,
        tally: &Tally,
    ) -> Result<Vec<(Id, usize)>, String> {
        let counted = directory::spread_out(&stripe.shards, good);
        if counted.iter().all(Option::is_some) {
            return Ok(Vec::new());
        }
        let k = stripe.redundancy.data();
        let anywhere = stripe
            .shards
            .iter()
            .filter(|id| good.get(*id).is_some_and(|n| !n.is_empty()))
            .count();
        if anywhere < k {
            return Err(format!(
                "a chunk has {anywhere} of the {k} good shards needed to rebuild it"
            ));
        }
        tally.repaired.fetch_add(1, Ordering::Relaxed);

        // Where each shard left out goes: nodes in rendezvous order, up,
        // and holding none of the shards counted.
        let key = placement::stripe_key(stripe);
        let ranking = placement::ranking(&key, &self.cluster.node_ids());
        let mut taken: Vec<usize> = counted.iter().flatten().copied().collect();
        let mut homes: Vec<(usize, Vec<usize>)> = Vec::new();
        for (shard, _) in counted.iter().enumerate().filter(|(_, n)| n.is_none()) {
            let candidates: Vec<usize> = ranking
                .iter()
                .copied()
                .filter(|n| !taken.contains(n) && !self.cluster.is_down(*n))
                .collect();
            match candidates.first() {
                Some(&first) => {
                    taken.push(first);
                    homes.push((shard, candidates));
                }
                None => {
                    tally.unplaced.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if homes.is_empty() {
            return Ok(Vec::new());
        }

        let shards = self.rebuild(stripe).await?;
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        for (shard, candidates) in homes {
            let id = stripe.shards[shard];
            let bytes = shards[shard].clone();
            // The first candidate was reserved for this shard; the others
            // are tried only if it fails (and may then double up a node,
            // which a later repair sorts out).
            for node in candidates {
                let len = bytes.len() as u64;
                let bytes = bytes.clone();
                match self
                    .cluster
                    .on(node, |c| {
                        let bytes = bytes.clone();
                        async move { c.put_shard(&id, bytes).await }
                    })
                    .await
                {
                    Ok(_) => {
                        tally.written.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(len, Ordering::Relaxed);
                        placed.push((id, node));
                        break;
                    }
                    Err(e) => failures.push(format!("{}: {e}", self.cluster.address(node))),
                }
            }
        }
        if placed.is_empty() && !failures.is_empty() {
            return Err(format!(
                "no rebuilt shard could be stored: {}",
                failures.join("; ")
            ));
        }
        Ok(placed)
    }

    /// All n shards of `stripe`, rebuilt from any k.
    async fn rebuild(&self, stripe: &StripeRef) -> Result<Vec<Bytes>, String> {
        let counts = Counts::default();
        let fetched = self
            .fetch_stripe(stripe, "a chunk", &counts)
            .await
            .map_err(|e| e.to_string())?;
        let stripe = stripe.clone();
        tokio::task::spawn_blocking(move || {
            let blob = StripeDecoder::new().decode(&stripe, &fetched)?;
            let (again, shards) = StripeEncoder::new().encode(&blob, stripe.redundancy)?;
            // Re-encoding is deterministic: a rebuilt shard with another id
            // than the manifest names means the k shards decoded to other
            // bytes than were stored.
            if let Some((index, (&expected, &actual))) = stripe
                .shards
                .iter()
                .zip(&again.shards)
                .enumerate()
                .find(|(_, (expected, actual))| expected != actual)
            {
                return Err(cairn_core::erasure::StripeError::ShardMismatch {
                    index,
                    expected,
                    actual,
                });
            }
            Ok(shards.into_iter().map(|s| Bytes::from(s.bytes)).collect())
        })
        .await
        .expect("rebuilding does not panic")
        .map_err(|e: cairn_core::erasure::StripeError| format!("cannot rebuild a chunk: {e}"))
    }
}
