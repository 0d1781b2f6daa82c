//! The shard layer: stripes onto the nodes and back.
//!
//! A stripe is the n shards of one sealed chunk or manifest; the file paths
//! above (`store`, `fetch`, `directory`, `repair`) hand this layer whole
//! stripes and never pick a node. Where each shard goes is decided in
//! [`crate::placement`]; this layer carries the decisions out over the
//! [`Transport`]:
//!
//! - **Upload** ([`Shards::upload_stripe`]): each shard to its node in
//!   rendezvous order, asking first for a large shard whether the user
//!   holds it already; a node that fails has its shard re-placed, round
//!   after round, until every shard is stored or no node is left.
//! - **Fetch** ([`Shards::fetch_stripe`], in [`fetch`]): any k verified
//!   shards, data shards first, hedging a slow node with parity.
//! - **Have and drop**: which nodes claim which shards
//!   ([`Shards::where_are`]), reading every copy to check it
//!   ([`Shards::check_copies`]), dropping the user's references
//!   ([`Shards::drop_references`]).
//! - **Repair** ([`Shards::repair_stripe`], in [`repair`]): rebuild the
//!   shards a stripe is missing and store them where placement says.

pub mod fetch;
pub mod repair;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_core::Id;
use cairn_core::erasure::{Shard, StripeRef};
use cairn_net::client::ClientError;
use cairn_net::protocol::{Dropped, ErrorCode, Limits};

pub use self::fetch::{Counts, HEDGE_AFTER, Part, Unavailable};
pub(crate) use self::repair::RepairTally;
pub use self::repair::StripeRepairError;
use crate::placement::{self, StripePlacement};
use crate::transport::{NodeFailure, ShardPut, Transport, merge_failures};

/// Shards larger than this are sent only after asking the node whether
/// the user already holds them; smaller ones are sent straight away.
pub const ASK_FIRST_ABOVE: usize = 64 * 1024;

/// Counters and failures shared by the uploads of one put.
#[derive(Debug, Default)]
pub(crate) struct UploadTally {
    /// Shards sent.
    pub sent: AtomicUsize,
    /// Shards the nodes held already.
    pub present: AtomicUsize,
    /// Bytes of the shards sent.
    pub bytes: AtomicU64,
    /// The nodes that failed a put, the first failure of each.
    failures: Mutex<Vec<NodeFailure>>,
}

impl UploadTally {
    fn failed(&self, failure: NodeFailure) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        merge_failures(&mut failures, vec![failure]);
    }

    /// The nodes that failed a put.
    pub fn failures(&self) -> Vec<NodeFailure> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Where each shard of a stripe ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Node holding each shard, if it was stored.
    pub nodes: Vec<Option<usize>>,
}

impl Placed {
    /// Distinct nodes holding the stripe's shards.
    pub fn distinct(&self) -> usize {
        placement::distinct_nodes(&self.nodes)
    }

    /// Whether some shard is missing or shares a node with another.
    pub fn degraded(&self) -> bool {
        self.nodes.iter().any(Option::is_none) || self.distinct() < self.nodes.len()
    }
}

/// The good copies of some stripes' shards, as [`Shards::check_copies`]
/// found them.
#[derive(Debug, Default)]
pub(crate) struct CheckedCopies {
    /// For each shard id, the nodes whose copy matched it, in node order.
    pub good: HashMap<Id, Vec<usize>>,
    /// Copies that failed their hash.
    pub corrupt: usize,
}

/// The shard layer over transport `T`; see the module docs.
#[derive(Debug)]
pub(crate) struct Shards<T> {
    transport: Arc<T>,
    /// Stripes in flight at once (fetches, repairs).
    window: usize,
}

impl<T: Transport> Shards<T> {
    /// The shard layer of `transport`, with `window` stripes in flight.
    pub fn new(transport: Arc<T>, window: usize) -> Self {
        Self {
            transport,
            window: window.max(1),
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.transport.addresses().len()
    }

    /// Node `node`'s address.
    pub fn address(&self, node: usize) -> &cairn_net::NodeAddress {
        &self.transport.addresses()[node]
    }

    /// Stripes in flight at once.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Where `stripe`'s shards go on these nodes.
    fn placement(&self, stripe: &StripeRef) -> StripePlacement {
        StripePlacement::new(stripe, &self.transport.node_ids())
    }

    /// Connects to every node at once; the nodes that failed, with why.
    pub async fn unreachable(&self) -> Vec<NodeFailure> {
        let attempts = (0..self.nodes()).map(|node| self.transport.login(node));
        futures::future::join_all(attempts)
            .await
            .iter()
            .enumerate()
            .filter_map(|(node, r)| {
                r.as_ref()
                    .err()
                    .map(|e| NodeFailure::of(&*self.transport, node, e))
            })
            .collect()
    }

    /// The nodes that are down, and those that failed a put in `tally`.
    pub fn failures(&self, tally: &UploadTally) -> Vec<NodeFailure> {
        let mut failures = self.transport.down();
        merge_failures(&mut failures, tally.failures());
        failures.sort_by_key(|f| f.index);
        failures
    }

    /// Stores the shards of one stripe on distinct nodes in rendezvous
    /// order, re-placing the shards of nodes that fail.
    pub async fn upload_stripe(
        &self,
        stripe: &StripeRef,
        shards: Vec<Shard>,
        tally: &UploadTally,
    ) -> Placed {
        let placement = self.placement(stripe);
        let nodes = self.nodes();
        let mut reachable: Vec<bool> = (0..nodes).map(|i| !self.transport.is_down(i)).collect();
        let mut target = placement.place(&reachable, shards.len());
        let shards: Vec<(Id, Bytes)> = shards
            .into_iter()
            .map(|s| (s.id, Bytes::from(s.bytes)))
            .collect();
        let mut stored: Vec<Option<usize>> = vec![None; shards.len()];
        let mut todo: Vec<usize> = (0..shards.len()).collect();
        // Each round sends the shards still to place; a failure takes the
        // node out of this stripe's rounds and the shard goes elsewhere.
        for _round in 0..nodes {
            if todo.is_empty() {
                break;
            }
            let attempts = todo.iter().filter_map(|&s| target[s].map(|node| (s, node)));
            let results = futures::future::join_all(attempts.map(|(s, node)| {
                let (id, bytes) = shards[s].clone();
                async move { (s, node, self.put(node, id, bytes, tally).await) }
            }))
            .await;
            let mut failed = Vec::new();
            for (s, node, outcome) in results {
                match outcome {
                    Ok(()) => stored[s] = Some(node),
                    Err(e) => {
                        tally.failed(NodeFailure::of(&*self.transport, node, &e));
                        reachable[node] = false;
                        failed.push(s);
                    }
                }
            }
            todo = failed;
            todo.extend((0..shards.len()).filter(|&s| target[s].is_none() && stored[s].is_none()));
            todo.sort_unstable();
            todo.dedup();
            for &s in &todo {
                let holding: Vec<usize> = stored.iter().flatten().copied().collect();
                target[s] = placement.replace(&reachable, &holding);
            }
            if todo.iter().all(|&s| target[s].is_none()) {
                break;
            }
        }
        Placed { nodes: stored }
    }

    /// Puts one shard on `node` unless the user already holds it there.
    async fn put(
        &self,
        node: usize,
        id: Id,
        bytes: Bytes,
        tally: &UploadTally,
    ) -> Result<(), ClientError> {
        let len = bytes.len() as u64;
        // Asking first saves sending a large shard the node holds; a small
        // one costs less to send than the extra round trip (a put of a
        // shard already held stores nothing).
        let outcome = if bytes.len() > ASK_FIRST_ABOVE {
            self.transport
                .put_shard_unless_held(node, id, bytes)
                .await?
        } else {
            let written = self.transport.put_shard(node, id, bytes).await?;
            ShardPut::Sent { written }
        };
        match outcome {
            ShardPut::Held => {
                tally.present.fetch_add(1, Ordering::Relaxed);
            }
            // A large shard was sent because the user lacked it: it counts
            // as sent even if the node had the bytes (for another user).
            ShardPut::Sent { written } if written || len > ASK_FIRST_ABOVE as u64 => {
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tally.bytes.fetch_add(len, Ordering::Relaxed);
            }
            ShardPut::Sent { .. } => {
                tally.present.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// For each of `ids`, the nodes that say they store it.
    pub async fn where_are(&self, ids: &[Id]) -> HashMap<Id, Vec<usize>> {
        let mut present: HashMap<Id, Vec<usize>> = ids.iter().map(|id| (*id, Vec::new())).collect();
        let batch = Limits::default().max_batch;
        let answers = futures::future::join_all((0..self.nodes()).map(|node| async move {
            let mut stored = Vec::new();
            for chunk in ids.chunks(batch) {
                match self.transport.has_shards(node, chunk).await {
                    Ok(has) => stored.extend(
                        chunk
                            .iter()
                            .zip(has.stored)
                            .filter(|(_, s)| *s)
                            .map(|(id, _)| *id),
                    ),
                    Err(_) => return (node, Vec::new()),
                }
            }
            (node, stored)
        }))
        .await;
        for (node, stored) in answers {
            for id in stored {
                if let Some(nodes) = present.get_mut(&id) {
                    nodes.push(node);
                }
            }
        }
        present
    }

    /// Reads every copy of every shard of `stripes` from every node that
    /// claims it, and keeps the nodes whose copy matched its id. (A node
    /// quarantines a copy that fails its check on read.)
    pub async fn check_copies(&self, stripes: &[StripeRef]) -> CheckedCopies {
        use futures::stream::{self, StreamExt};
        let ids: Vec<Id> = stripes
            .iter()
            .flat_map(|s| s.shards.iter().copied())
            .collect();
        let claimed = self.where_are(&ids).await;
        let copies = claimed
            .iter()
            .flat_map(|(id, nodes)| nodes.iter().map(move |&node| (*id, node)));
        // A few reads at once per node: a large file has thousands of shards.
        let outcomes: Vec<(Id, usize, Result<Bytes, ClientError>)> = stream::iter(copies)
            .map(|(id, node)| async move {
                let read = self
                    .transport
                    .get_shard(node, id, crate::transport::Patience::Wait)
                    .await;
                (id, node, read)
            })
            .buffer_unordered(4 * self.nodes())
            .collect()
            .await;
        let mut checked = CheckedCopies::default();
        for (id, node, read) in outcomes {
            match read {
                Ok(_) => checked.good.entry(id).or_default().push(node),
                Err(ClientError::Corrupt { .. }) => checked.corrupt += 1,
                Err(e) if e.code() == Some(ErrorCode::Corrupt) => checked.corrupt += 1,
                Err(_) => {}
            }
        }
        for nodes in checked.good.values_mut() {
            nodes.sort_unstable();
        }
        checked
    }

    /// Drops the user's references to `ids` on every node; returns how many
    /// references the nodes released.
    pub async fn drop_references(&self, ids: &[Id]) -> usize {
        let batch = Limits::default().max_batch;
        let released = futures::future::join_all((0..self.nodes()).map(|node| async move {
            let mut released = 0;
            for chunk in ids.chunks(batch) {
                if let Ok(outcomes) = self.transport.drop_shards(node, chunk).await {
                    released += outcomes
                        .iter()
                        .filter(|o| **o != Dropped::NotReferenced)
                        .count();
                }
            }
            released
        }))
        .await;
        released.iter().sum()
    }
}

#[cfg(test)]
mod tests;
