//! Fetching a stripe: any k verified shards, data shards first.
//!
//! ```text
//! phase 1: data shards 0..k, each from its home (placement)
//!          a shard that fails (node down, missing, corrupt) → the next parity shard
//!          a shard not there within HEDGE_AFTER → the next parity shard alongside it
//! phase 2: the shards still missing, on every other node in ranking order
//!          (a put made while nodes were down places shards further along)
//! ```
//!
//! With all data shards at hand, decoding is a copy; parity is fetched only
//! for the data shards that could not be had. Every shard is checked
//! against its id by the transport before it counts.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_core::StripeRef;
use cairn_net::client::ClientError;
use futures::stream::{FuturesUnordered, StreamExt};

use super::Shards;
use crate::transport::{NodeFailure, Patience, ShardFailure, Transport, joined};

/// How long a shard may take before the next parity shard is asked for
/// alongside it.
pub const HEDGE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Which stripe of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The manifest's.
    Manifest,
    /// Chunk N's (from 0).
    Chunk(usize),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Manifest => f.write_str("the manifest"),
            Self::Chunk(n) => write!(f, "chunk {n}"),
        }
    }
}

/// Fewer than k verified shards of a stripe could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "only {found} of the {needed} shards needed could be fetched; {}",
    joined(failed, "; ")
)]
pub struct Unavailable {
    /// Verified shards found.
    pub found: usize,
    /// k.
    pub needed: usize,
    /// The last shard requests that failed (a few at most), with why.
    pub failed: Vec<ShardFailure>,
}

/// Shard fetches of one operation, counted, with why the last ones failed.
#[derive(Debug, Default)]
pub struct Counts {
    fetched: AtomicUsize,
    failed: AtomicUsize,
    /// The most recent few failures, for the error if a stripe cannot be
    /// had.
    reasons: Mutex<VecDeque<ShardFailure>>,
}

impl Counts {
    /// How many reasons an error lists at most.
    const REASONS: usize = 8;

    /// Shards fetched.
    pub fn fetched(&self) -> usize {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Shard fetches that failed.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    fn record_failure(&self, failure: ShardFailure) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        if reasons.len() == Self::REASONS {
            reasons.pop_front();
        }
        reasons.push_back(failure);
    }

    /// The most recent failures, oldest first.
    pub(crate) fn reasons(&self) -> Vec<ShardFailure> {
        self.reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl<T: Transport> Shards<T> {
    /// Any k verified shards of `stripe`, data shards first; `None` in the
    /// slots not fetched. See the module docs.
    ///
    /// # Errors
    /// [`Unavailable`] if fewer than k shards could be had from any node.
    pub async fn fetch_stripe(
        &self,
        stripe: &StripeRef,
        counts: &Counts,
    ) -> Result<Vec<Option<Bytes>>, Unavailable> {
        let (k, n) = (stripe.redundancy.data(), stripe.redundancy.total());
        let placement = self.placement(stripe);
        let mut slots: Vec<Option<Bytes>> = vec![None; n];
        let mut found = 0;
        let mut next_parity = k;
        let mut tried: Vec<Vec<usize>> = vec![Vec::new(); n];

        // Phase 1: each shard from its home.
        let mut attempts = FuturesUnordered::new();
        for (shard, tried) in tried.iter_mut().enumerate().take(k) {
            let node = placement.home(shard);
            tried.push(node);
            attempts.push(self.get_from(node, shard, stripe, counts, Patience::Hurry));
        }
        // A shard that has not arrived within the hedge delay gets company:
        // the next parity shard is asked for too, so a node that stalls (or
        // a dead node, whose connection attempt takes the connect timeout)
        // does not stall the chunk.
        let hedge = tokio::time::sleep(HEDGE_AFTER);
        tokio::pin!(hedge);
        loop {
            let next = tokio::select! {
                next = attempts.next() => next,
                () = &mut hedge, if next_parity < n => {
                    let parity = next_parity;
                    next_parity += 1;
                    let node = placement.home(parity);
                    tried[parity].push(node);
                    attempts.push(self.get_from(node, parity, stripe, counts, Patience::Hurry));
                    hedge.as_mut().reset(tokio::time::Instant::now() + HEDGE_AFTER);
                    continue;
                }
            };
            let Some((shard, node, result)) = next else {
                break;
            };
            match result {
                Ok(bytes) => {
                    slots[shard] = Some(bytes);
                    found += 1;
                    if found == k {
                        return Ok(slots);
                    }
                }
                Err(answered) => {
                    // A node that gave no answer (one still being connected
                    // to, say) is asked again in phase 2, waiting this time.
                    if !answered {
                        tried[shard].retain(|&t| t != node);
                    }
                    if next_parity < n {
                        let parity = next_parity;
                        next_parity += 1;
                        let node = placement.home(parity);
                        tried[parity].push(node);
                        attempts.push(self.get_from(node, parity, stripe, counts, Patience::Hurry));
                    }
                }
            }
        }
        drop(attempts);

        // Phase 2: the shards still missing, on every other node.
        for shard in 0..n {
            if slots[shard].is_some() {
                continue;
            }
            for &node in placement.ranking() {
                if tried[shard].contains(&node) || self.transport.is_down(node) {
                    continue;
                }
                tried[shard].push(node);
                if let (_, _, Ok(bytes)) = self
                    .get_from(node, shard, stripe, counts, Patience::Wait)
                    .await
                {
                    slots[shard] = Some(bytes);
                    found += 1;
                    break;
                }
            }
            if found == k {
                return Ok(slots);
            }
        }
        Err(Unavailable {
            found,
            needed: k,
            failed: counts.reasons(),
        })
    }

    /// Shard `shard` of `stripe` from node `node`, checked against its id;
    /// returns the shard, the node, and the bytes or whether the node
    /// answered at all.
    async fn get_from(
        &self,
        node: usize,
        shard: usize,
        stripe: &StripeRef,
        counts: &Counts,
        patience: Patience,
    ) -> (usize, usize, Result<Bytes, bool>) {
        let id = stripe.shards[shard];
        match self.transport.get_shard(node, id, patience).await {
            Ok(bytes) => {
                counts.fetched.fetch_add(1, Ordering::Relaxed);
                (shard, node, Ok(bytes))
            }
            Err(e) => {
                let failure = NodeFailure::of(&*self.transport, node, &e);
                tracing::debug!(node = %failure.node, shard, "shard not fetched: {e}");
                counts.record_failure(ShardFailure { shard, failure });
                let answered = matches!(e, ClientError::Node(_) | ClientError::Corrupt { .. });
                (shard, node, Err(answered))
            }
        }
    }
}
