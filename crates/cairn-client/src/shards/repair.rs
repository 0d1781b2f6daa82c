//! Repairing a stripe: rebuilding the shards it is missing and storing
//! them where placement says.
//!
//! ```text
//! spread_out ─▶ a largest set of shards held on distinct nodes
//! all n there?  nothing to do
//! otherwise     fetch any k shards ─▶ decode ─▶ re-encode (sealed bytes:
//!               nothing is decrypted) ─▶ each shard left out goes to its
//!               rebuild target (placement), the next ones if that fails
//! ```
//!
//! Re-encoding gives the very bytes the manifest names (the encoding is
//! deterministic; checked). Copies that became redundant are left where
//! they are: extra copies cost space, not safety. A stripe whose shards
//! are all in place is left alone, so repair is idempotent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_core::erasure::{StripeDecoder, StripeEncoder, StripeError};
use cairn_core::{Id, StripeRef};

use super::{Counts, Shards, Unavailable};
use crate::placement;
use crate::transport::{NodeFailure, Transport, joined};

/// Why a stripe could not be repaired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripeRepairError {
    /// Fewer than k good shards are left anywhere: the stripe is lost.
    #[error("only {found} of the {needed} good shards needed to rebuild it are left")]
    TooFewShards {
        /// Shards with a good copy somewhere.
        found: usize,
        /// k.
        needed: usize,
    },
    /// The k shards to rebuild from could not be fetched.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The shards fetched do not decode.
    #[error("cannot rebuild it: {0}")]
    Decode(#[from] StripeError),
    /// Re-encoding gave other shards than the manifest names: the k shards
    /// decoded to other bytes than were stored.
    #[error(
        "cannot rebuild it: rebuilt shard {shard} is {actual}, not the {expected} the manifest names"
    )]
    Mismatch {
        /// The first shard that differs.
        shard: usize,
        /// The id the manifest names.
        expected: Id,
        /// The id of the shard rebuilt.
        actual: Id,
    },
    /// No node took any of the shards rebuilt.
    #[error("no rebuilt shard could be stored: {}", joined(failed, "; "))]
    NotStored {
        /// The nodes tried, with why they failed.
        failed: Vec<NodeFailure>,
    },
}

/// Counters shared by the stripes of one repair.
#[derive(Debug, Default)]
pub(crate) struct RepairTally {
    /// Stripes that needed shards rebuilt.
    pub repaired: AtomicUsize,
    /// Shards rebuilt and stored.
    pub written: AtomicUsize,
    /// Bytes of those shards.
    pub bytes: AtomicU64,
    /// Shards no node was free to take.
    pub unplaced: AtomicUsize,
}

impl<T: Transport> Shards<T> {
    /// Repairs one stripe given the good copies of its shards (`good`: for
    /// each shard id, the nodes holding a good copy); returns the (shard,
    /// node) pairs it stored.
    ///
    /// # Errors
    /// [`StripeRepairError`] when the stripe cannot be rebuilt, or no node
    /// took a rebuilt shard.
    pub async fn repair_stripe(
        &self,
        stripe: &StripeRef,
        good: &HashMap<Id, Vec<usize>>,
        tally: &RepairTally,
    ) -> Result<Vec<(Id, usize)>, StripeRepairError> {
        let counted = placement::spread_out(&stripe.shards, good);
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
            return Err(StripeRepairError::TooFewShards {
                found: anywhere,
                needed: k,
            });
        }
        tally.repaired.fetch_add(1, Ordering::Relaxed);

        let up: Vec<bool> = (0..self.nodes())
            .map(|n| !self.transport.is_down(n))
            .collect();
        let mut homes = Vec::new();
        for (shard, candidates) in self.placement(stripe).rebuild_targets(&counted, &up) {
            if candidates.is_empty() {
                tally.unplaced.fetch_add(1, Ordering::Relaxed);
            } else {
                homes.push((shard, candidates));
            }
        }
        if homes.is_empty() {
            return Ok(Vec::new());
        }

        let shards = self.rebuild(stripe).await?;
        let mut placed = Vec::new();
        let mut failed = Vec::new();
        for (shard, candidates) in homes {
            let id = stripe.shards[shard];
            let bytes = &shards[shard];
            // The first candidate was reserved for this shard; the others
            // are tried only if it fails (and may then double up a node,
            // which a later repair sorts out).
            for node in candidates {
                match self.transport.put_shard(node, id, bytes.clone()).await {
                    Ok(_) => {
                        tally.written.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        placed.push((id, node));
                        break;
                    }
                    Err(e) => failed.push(NodeFailure::of(&*self.transport, node, &e)),
                }
            }
        }
        if placed.is_empty() && !failed.is_empty() {
            return Err(StripeRepairError::NotStored { failed });
        }
        Ok(placed)
    }

    /// All n shards of `stripe`, rebuilt from any k.
    async fn rebuild(&self, stripe: &StripeRef) -> Result<Vec<Bytes>, StripeRepairError> {
        let fetched = self.fetch_stripe(stripe, &Counts::default()).await?;
        let stripe = stripe.clone();
        tokio::task::spawn_blocking(move || {
            let blob = StripeDecoder::new().decode(&stripe, &fetched)?;
            let (again, shards) = StripeEncoder::new().encode(&blob, stripe.redundancy)?;
            // Re-encoding is deterministic: a rebuilt shard with another id
            // than the manifest names means the k shards decoded to other
            // bytes than were stored.
            let differing = stripe
                .shards
                .iter()
                .zip(&again.shards)
                .position(|(e, a)| e != a);
            if let Some(shard) = differing {
                return Err(StripeRepairError::Mismatch {
                    shard,
                    expected: stripe.shards[shard],
                    actual: again.shards[shard],
                });
            }
            Ok(shards.into_iter().map(|s| Bytes::from(s.bytes)).collect())
        })
        .await
        .expect("rebuilding does not panic")
    }
}
