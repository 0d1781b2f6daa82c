//! Repair: giving every chunk of a file back its n shards on n nodes.
//!
//! ```text
//! verify:  every copy of every shard read from every node that claims it
//!          └▶ per shard id, the nodes whose copy matched (bad copies are
//!             quarantined by the node that read them)
//! per stripe (manifest, then chunks), `window` at once, in the shard layer:
//!   spread_out ─▶ a largest set of shards held on distinct nodes
//!   all n there?  nothing to do
//!   otherwise     rebuild the shards left out from any k, store each on
//!                 its rebuild target (placement)
//! an inline file: its entry to every node that lacks it (index layer)
//! ```
//!
//! A shard left out is one missing everywhere, or one whose only copies
//! sit on a node already counted for another shard of its stripe (a put
//! made while a node was down). A run that finds everything in place
//! changes nothing, so repair is idempotent; a chunk with fewer than k good
//! shards anywhere cannot be rebuilt and is reported as lost.

use std::sync::atomic::Ordering;

use cairn_core::StripeRef;
use futures::stream::{self, StreamExt};

use crate::directory::{self, Directory, DirectoryError, FileInfo, Health};
use crate::index::{Content, RemotePath};
pub use crate::shards::StripeRepairError;
use crate::shards::{Part, RepairTally};
use crate::transport::{NodeFailure, Transport};

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
    /// What could not be repaired (too few shards, a failed write).
    pub problems: Vec<RepairProblem>,
    /// Whether the file is inline in its index entry (no stripes).
    pub inline: bool,
}

/// Something a repair could not mend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RepairProblem {
    /// A stripe could not be repaired.
    #[error("{what}: {error}")]
    Stripe {
        /// Which stripe.
        what: Part,
        /// Why.
        error: StripeRepairError,
    },
    /// A node could not take a copy of an inline file's index entry.
    #[error("{}: {}", .0.node, .0.message)]
    EntryNotCopied(NodeFailure),
}

/// The layers a repair uses, borrowed from the client.
pub(crate) struct Repair<'a, T> {
    /// Finds the file and checks its copies.
    pub directory: Directory<'a, T>,
}

impl<T: Transport> Repair<'_, T> {
    /// Repairs `remote`: rebuilds every shard that is missing, corrupt, or
    /// doubled up on a node, and stores it on a node of its own; see the
    /// module docs.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error when
    /// its manifest cannot be read. A chunk that cannot be repaired is not
    /// an error: the report says so (`after` is not [`Health::Ok`]).
    pub async fn file(&self, remote: &RemotePath) -> Result<RepairReport, DirectoryError> {
        let directory = &self.directory;
        let file = directory.file(remote).await?;
        let capability = match file.content {
            Content::Stored(capability) => capability,
            Content::Inline(_) | Content::InlineUnread => return Ok(self.inline(&file.info).await),
        };
        let mut copies = directory.check_copies(&capability).await?;
        let nodes = directory.shards.nodes();
        let before = {
            let stripes: Vec<&StripeRef> = copies.stripes.iter().collect();
            directory::assess(&stripes, &copies.checked.good, nodes).2
        };
        let tally = &RepairTally::default();
        let good = &copies.checked.good;
        let outcomes: Vec<_> = stream::iter(copies.stripes.iter().enumerate())
            .map(|(i, stripe)| async move {
                let what = match i {
                    0 => Part::Manifest,
                    i => Part::Chunk(i - 1),
                };
                let outcome = directory.shards.repair_stripe(stripe, good, tally).await;
                outcome.map_err(|error| RepairProblem::Stripe { what, error })
            })
            .buffer_unordered(directory.shards.window())
            .collect()
            .await;
        let mut problems = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(placed) => {
                    for (id, node) in placed {
                        copies.checked.good.entry(id).or_default().push(node);
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        let stripes: Vec<&StripeRef> = copies.stripes.iter().collect();
        let after = directory::assess(&stripes, &copies.checked.good, nodes).2;
        Ok(RepairReport {
            path: remote.clone(),
            before,
            after,
            stripes: stripes.len(),
            stripes_repaired: tally.repaired.load(Ordering::Relaxed),
            shards_written: tally.written.load(Ordering::Relaxed),
            bytes_written: tally.bytes.load(Ordering::Relaxed),
            corrupt: copies.checked.corrupt,
            unplaced: tally.unplaced.load(Ordering::Relaxed),
            problems,
            inline: false,
        })
    }

    /// Repairs an inline file: its entry goes to every node that lacks it.
    async fn inline(&self, info: &FileInfo) -> RepairReport {
        let nodes = self.directory.shards.nodes();
        let repair = self
            .directory
            .index
            .repair_copies(&info.path, info.version)
            .await;
        RepairReport {
            path: info.path.clone(),
            before: directory::inline_health(repair.before.per_node.iter().sum(), nodes),
            after: directory::inline_health(repair.after.iter().sum(), nodes),
            stripes: 0,
            stripes_repaired: 0,
            shards_written: repair.written,
            bytes_written: repair.bytes,
            corrupt: repair.before.corrupt,
            unplaced: 0,
            problems: repair
                .failed
                .into_iter()
                .map(RepairProblem::EntryNotCopied)
                .collect(),
            inline: true,
        }
    }
}
