//! Placement: which node holds which shard of a stripe, by rendezvous
//! (highest-random-weight) hashing.
//!
//! Every stripe (the n shards of a sealed chunk or manifest) has a
//! placement key, [`stripe_key`]: BLAKE3 over a fixed context and the
//! stripe's shard ids. Every node gets a score for that key, and the nodes
//! sorted by score, best first, are the stripe's [`ranking`]:
//!
//! ```text
//! key   = BLAKE3-derive("cairn 2026-11 placement key", shard id 0 ‖ … ‖ shard id n−1)
//! score = BLAKE3-keyed(key, node id)                  32 bytes, compared as a big-endian number
//! ranking: highest score first; equal scores (only a node listed twice) by node id, then position
//! ```
//!
//! [`place`] then gives shard i to the node ranked i (its *home*), and the
//! shards whose home is unreachable to the reachable nodes after the first n
//! in ranking order (*spares*). With fewer reachable nodes than shards, it
//! goes round the reachable nodes again, in ranking order.
//!
//! # Guarantees
//!
//! - **Deterministic.** The same key and node set give the same ranking on
//!   every client, whatever order the nodes are listed in. Nothing here is
//!   secret: the key hashes shard ids, which the nodes storing the shards
//!   already know, so placement reveals nothing new.
//! - **Stable.** A node's score depends only on the key and its own id, so
//!   adding or removing a node never reorders the others. Removing a node
//!   takes it out of the stripe's top n and brings in the next node; every
//!   other node keeps its place in the top n. A new node takes first place
//!   for about 1/(N + 1) of the keys of an N-node cluster.
//! - **Minimal movement when a node is down.** A shard whose home is
//!   reachable stays there; only the shards of unreachable homes go to
//!   spares (shards beyond the number of nodes have no home and go round). The nodes used are always the first `min(shards, reachable)`
//!   reachable nodes in ranking order.
//! - **Spread first.** A node receives a second shard of a stripe only when
//!   every reachable node holds one (the client issue's rule: never two
//!   shards of a chunk on one node while a node that holds none of them is
//!   reachable), and in general counts differ by at most one between
//!   reachable nodes once there are more shards than reachable nodes.
//! - **Even.** Over many keys each node is ranked first about equally
//!   often (BLAKE3 is a PRF, so scores are uniform and independent).
//!
//! Which index sits on which node is where a writer put it, and depends on
//! which nodes were reachable at the time: a reader should ask the top
//! nodes for every shard id of the stripe rather than assume shard i is on
//! the node ranked i.
//!
//! # Every "where does this shard go now"
//!
//! The client's layers ask this module, through a [`StripePlacement`], and
//! decide nothing about nodes themselves:
//!
//! | question | answer |
//! | --- | --- |
//! | where does each shard of a new stripe go? | [`StripePlacement::place`] (rules above) |
//! | a node failed during the put: where does its shard go now? | [`StripePlacement::replace`]: the first reachable node in ranking order holding none of the stripe's shards, else the first reachable one |
//! | where is shard i most likely, to fetch it? | [`StripePlacement::home`]; then every node in ranking order |
//! | which copies count, when some node holds two shards of a stripe? | [`spread_out`]: a largest set of shards on distinct nodes |
//! | where does repair store the shards it rebuilds? | [`StripePlacement::rebuild_targets`]: nodes in ranking order that are up and hold none of the shards counted, one reserved per shard |

use std::collections::HashMap;

use cairn_core::{Id, StripeRef};
use cairn_net::NodeId;

/// BLAKE3 key-derivation context of placement keys. Part of the format:
/// changing it would move every stored shard.
const PLACEMENT_CONTEXT: &str = "cairn 2026-11 placement key";

/// The key a stripe is placed by: BLAKE3 in key-derivation mode over a
/// fixed context and the stripe's shard ids in index order.
///
/// Shard ids are fixed-length, so the concatenation is unambiguous; they
/// hash sealed bytes, so the key is as unpredictable as the content and
/// tells the nodes nothing they did not already know.
pub fn stripe_key(stripe: &StripeRef) -> Id {
    let mut hasher = blake3::Hasher::new_derive_key(PLACEMENT_CONTEXT);
    for id in &stripe.shards {
        hasher.update(id.as_bytes());
    }
    Id::from(hasher.finalize())
}

/// A node's score for `key`: keyed BLAKE3 of its id.
fn score(key: &Id, node: &NodeId) -> [u8; 32] {
    *blake3::keyed_hash(key.as_bytes(), node.0.as_bytes()).as_bytes()
}

/// Indices into `nodes`, best first: by score for `key`, highest first;
/// equal scores (which only a node listed twice has) by node id, then by
/// position in `nodes`.
///
/// The relative order of two nodes depends only on the key and their ids,
/// so it is the same in any superset or subset of `nodes`.
pub fn ranking(key: &Id, nodes: &[NodeId]) -> Vec<usize> {
    let mut scored: Vec<([u8; 32], usize)> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (score(key, node), i))
        .collect();
    scored.sort_by(|(score_a, a), (score_b, b)| {
        score_b
            .cmp(score_a)
            .then_with(|| nodes[*a].cmp(&nodes[*b]))
            .then_with(|| a.cmp(b))
    });
    scored.into_iter().map(|(_, i)| i).collect()
}

/// The node (index into `nodes`) each of `shards` shards of the stripe with
/// placement key `key` goes to, given which nodes are reachable
/// (`reachable[i]` for `nodes[i]`).
///
/// 1. Shard i goes to its home, the node ranked i, if that node is
///    reachable.
/// 2. The other shards, in index order, go to the reachable nodes holding
///    none yet, in ranking order (the spares ranked after the homes).
/// 3. When every reachable node holds a shard, the rest go round the
///    reachable nodes again in ranking order, so counts differ by at most
///    one.
///
/// Every shard is `None` when no node is reachable, and only then. With
/// at least `shards` reachable nodes, every shard is on a node of its own.
///
/// # Panics
/// If `reachable` and `nodes` have different lengths (a caller's bug).
pub fn place(key: &Id, nodes: &[NodeId], reachable: &[bool], shards: usize) -> Vec<Option<usize>> {
    assert_eq!(
        nodes.len(),
        reachable.len(),
        "one reachability flag per node"
    );
    place_ranked(&ranking(key, nodes), reachable, shards)
}

/// [`place`], given the stripe's ranking.
fn place_ranked(ranked: &[usize], reachable: &[bool], shards: usize) -> Vec<Option<usize>> {
    let order: Vec<usize> = ranked.iter().copied().filter(|&i| reachable[i]).collect();
    if order.is_empty() {
        return vec![None; shards];
    }
    let mut placement: Vec<Option<usize>> = (0..shards)
        .map(|shard| ranked.get(shard).copied().filter(|&node| reachable[node]))
        .collect();
    let mut holds = vec![false; reachable.len()];
    for node in placement.iter().flatten() {
        holds[*node] = true;
    }
    // Spares first: reachable nodes holding nothing yet, best first; then
    // round the reachable nodes again. `order` lists each reachable node
    // once, so cycling it after the spares keeps counts within one.
    let spares = order.iter().copied().filter(|&node| !holds[node]);
    let mut targets = spares.chain(order.iter().copied().cycle());
    for slot in placement.iter_mut().filter(|slot| slot.is_none()) {
        *slot = targets.next();
    }
    placement
}

/// How many different nodes a placement uses.
pub fn distinct_nodes(placement: &[Option<usize>]) -> usize {
    let mut used: Vec<usize> = placement.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    used.len()
}

/// One stripe's ranking over one cluster's nodes, and every decision about
/// where its shards go that follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePlacement {
    ranking: Vec<usize>,
}

impl StripePlacement {
    /// The placement of `stripe` over `nodes` (node ids in configuration
    /// order).
    pub fn new(stripe: &StripeRef, nodes: &[NodeId]) -> Self {
        Self {
            ranking: ranking(&stripe_key(stripe), nodes),
        }
    }

    /// Indices of the nodes, best first (see [`ranking`]).
    pub fn ranking(&self) -> &[usize] {
        &self.ranking
    }

    /// Where each of `shards` shards goes, given which nodes are reachable
    /// (see [`place`]).
    ///
    /// # Panics
    /// If `reachable` has not one flag per node.
    pub fn place(&self, reachable: &[bool], shards: usize) -> Vec<Option<usize>> {
        assert_eq!(
            self.ranking.len(),
            reachable.len(),
            "one reachability flag per node"
        );
        place_ranked(&self.ranking, reachable, shards)
    }

    /// The node shard `shard` goes to when every node is reachable (its
    /// home): where a reader asks first. Shards beyond the number of nodes
    /// go round.
    ///
    /// # Panics
    /// If there are no nodes.
    pub fn home(&self, shard: usize) -> usize {
        self.ranking[shard % self.ranking.len()]
    }

    /// Where a shard goes after its node failed during a put: the first
    /// reachable node in ranking order that holds none of the stripe's
    /// shards (`holding`), or else the first reachable one (a node then
    /// holds two shards, which [`spread_out`] counts once and a repair
    /// spreads out); `None` when no node is reachable.
    pub fn replace(&self, reachable: &[bool], holding: &[usize]) -> Option<usize> {
        let free = self
            .ranking
            .iter()
            .copied()
            .find(|&n| reachable[n] && !holding.contains(&n));
        free.or_else(|| self.ranking.iter().copied().find(|&n| reachable[n]))
    }

    /// Where repair stores the shards it rebuilds, given the node counted
    /// for each shard ([`spread_out`]; `None` for a shard left out) and
    /// which nodes are up: for each shard left out, in order, the nodes to
    /// try, best first. They are the up nodes in ranking order that hold
    /// none of the shards counted; the first is reserved for that shard
    /// (later shards do not get it first), and the others are tried only if
    /// it fails. An empty list: no node is free to take the shard.
    pub fn rebuild_targets(
        &self,
        counted: &[Option<usize>],
        up: &[bool],
    ) -> Vec<(usize, Vec<usize>)> {
        let mut taken: Vec<usize> = counted.iter().flatten().copied().collect();
        let mut targets = Vec::new();
        for (shard, _) in counted.iter().enumerate().filter(|(_, n)| n.is_none()) {
            let candidates: Vec<usize> = self
                .ranking
                .iter()
                .copied()
                .filter(|&n| !taken.contains(&n) && up[n])
                .collect();
            if let Some(&first) = candidates.first() {
                taken.push(first);
            }
            targets.push((shard, candidates));
        }
        targets
    }
}

/// A largest set of `shards` held on distinct nodes, as the node counted
/// for each shard (`None` for a shard left out), given for each shard id
/// the nodes holding a good copy: losing any one node costs at most one of
/// the shards counted. Kuhn's augmenting paths; a stripe has at most 32
/// shards.
///
/// A shard left out is missing everywhere, or sits only on nodes already
/// counted for other shards of its stripe (a put made while a node was
/// down puts two shards on one node).
pub fn spread_out(shards: &[Id], holders: &HashMap<Id, Vec<usize>>) -> Vec<Option<usize>> {
    fn augment(
        shard: usize,
        options: &[&[usize]],
        owner: &mut HashMap<usize, usize>,
        visited: &mut Vec<usize>,
    ) -> bool {
        for &node in options[shard] {
            if visited.contains(&node) {
                continue;
            }
            visited.push(node);
            let free = match owner.get(&node) {
                None => true,
                Some(&other) => augment(other, options, owner, visited),
            };
            if free {
                owner.insert(node, shard);
                return true;
            }
        }
        false
    }
    let options: Vec<&[usize]> = shards
        .iter()
        .map(|id| holders.get(id).map_or(&[][..], Vec::as_slice))
        .collect();
    let mut owner = HashMap::new();
    for shard in 0..shards.len() {
        augment(shard, &options, &mut owner, &mut Vec::new());
    }
    let mut nodes = vec![None; shards.len()];
    for (node, shard) in owner {
        nodes[shard] = Some(node);
    }
    nodes
}

/// How many of `shards` sit on distinct nodes: the size of
/// [`spread_out`]'s set.
pub fn spread(shards: &[Id], holders: &HashMap<Id, Vec<usize>>) -> usize {
    spread_out(shards, holders).iter().flatten().count()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use cairn_core::Redundancy;
    use proptest::prelude::*;

    use super::*;

    fn node(i: u64) -> NodeId {
        NodeId(Id::of(&i.to_le_bytes()))
    }

    fn nodes(count: u64) -> Vec<NodeId> {
        (0..count).map(node).collect()
    }

    fn key(i: u64) -> Id {
        Id::of(format!("key {i}").as_bytes())
    }

    /// Shard counts per node of a placement.
    fn counts(placement: &[Option<usize>], nodes: usize) -> Vec<usize> {
        let mut counts = vec![0; nodes];
        for node in placement.iter().flatten() {
            counts[*node] += 1;
        }
        counts
    }

    #[test]
    fn stripe_key_is_deterministic_and_depends_on_every_shard() {
        let stripe = StripeRef {
            blob_len: 100,
            redundancy: Redundancy::new(2, 4).unwrap(),
            shards: (0..4u8).map(|i| Id::of(&[i])).collect(),
        };
        let k = stripe_key(&stripe);
        assert_eq!(k, stripe_key(&stripe.clone()));
        // Not the plain hash of the ids: placement keys have their own domain.
        let mut plain = blake3::Hasher::new();
        for id in &stripe.shards {
            plain.update(id.as_bytes());
        }
        assert_ne!(k, Id::from(plain.finalize()));
        for i in 0..4 {
            let mut other = stripe.clone();
            other.shards[i] = Id::of(b"other");
            assert_ne!(stripe_key(&other), k, "shard {i}");
        }
        // The length and redundancy are not part of the key: the ids are.
        let longer = StripeRef {
            blob_len: 7,
            ..stripe.clone()
        };
        assert_eq!(stripe_key(&longer), k);
    }

    #[test]
    fn ranking_is_a_permutation_independent_of_listing_order() {
        let list = nodes(7);
        let k = key(1);
        let ranked = ranking(&k, &list);
        let mut sorted = ranked.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());

        let mut reversed = list.clone();
        reversed.reverse();
        let by_id = |r: Vec<usize>, l: &[NodeId]| r.into_iter().map(|i| l[i]).collect::<Vec<_>>();
        assert_eq!(
            by_id(ranking(&k, &reversed), &reversed),
            by_id(ranked, &list)
        );
        assert!(ranking(&k, &[]).is_empty());
    }

    #[test]
    fn duplicate_nodes_rank_side_by_side_in_listing_order() {
        let list = vec![node(1), node(2), node(1)];
        let ranked = ranking(&key(3), &list);
        let first = ranked.iter().position(|&i| i == 0).unwrap();
        let second = ranked.iter().position(|&i| i == 2).unwrap();
        assert_eq!(second, first + 1);
    }

    #[test]
    fn all_reachable_puts_shard_i_on_the_node_ranked_i() {
        let list = nodes(6);
        let k = key(9);
        let ranked = ranking(&k, &list);
        let placement = place(&k, &list, &[true; 6], 4);
        let expected: Vec<_> = ranked[..4].iter().copied().map(Some).collect();
        assert_eq!(placement, expected);
        assert_eq!(distinct_nodes(&placement), 4);
    }

    #[test]
    fn unreachable_home_sends_its_shard_to_the_first_spare() {
        let list = nodes(6);
        let k = key(2);
        let ranked = ranking(&k, &list);
        let mut reachable = [true; 6];
        reachable[ranked[1]] = false;
        let placement = place(&k, &list, &reachable, 4);
        assert_eq!(
            placement,
            vec![
                Some(ranked[0]),
                Some(ranked[4]),
                Some(ranked[2]),
                Some(ranked[3])
            ]
        );
    }

    #[test]
    fn fewer_reachable_nodes_than_shards_wraps_in_ranking_order() {
        let list = nodes(4);
        let k = key(5);
        let ranked = ranking(&k, &list);
        let mut reachable = [true; 4];
        reachable[ranked[0]] = false;
        reachable[ranked[2]] = false;
        let placement = place(&k, &list, &reachable, 4);
        // Homes 1 and 3 keep their shards; 0 and 2 go round the reachable
        // nodes in ranking order: ranked[1], then ranked[3].
        assert_eq!(
            placement,
            vec![
                Some(ranked[1]),
                Some(ranked[1]),
                Some(ranked[3]),
                Some(ranked[3])
            ]
        );
        assert_eq!(distinct_nodes(&placement), 2);
    }

    #[test]
    fn nothing_reachable_places_nothing() {
        let list = nodes(3);
        assert_eq!(place(&key(0), &list, &[false; 3], 3), vec![None; 3]);
        assert_eq!(place(&key(0), &[], &[], 2), vec![None; 2]);
        assert!(place(&key(0), &list, &[true; 3], 0).is_empty());
        assert_eq!(distinct_nodes(&[None, None]), 0);
    }

    #[test]
    fn more_shards_than_nodes_spreads_evenly() {
        let list = nodes(3);
        let placement = place(&key(4), &list, &[true; 3], 8);
        let mut c = counts(&placement, 3);
        c.sort_unstable();
        assert_eq!(c, vec![2, 3, 3]);
    }

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 32])
    }

    #[test]
    fn spread_counts_shards_on_distinct_nodes() {
        let shards = [id(1), id(2), id(3), id(4)];
        let mut holders = HashMap::new();
        for (i, shard) in shards.iter().enumerate() {
            holders.insert(*shard, vec![i]);
        }
        assert_eq!(spread(&shards, &holders), 4);
        // Node 3 was down at put time: its shard went to node 0 as well.
        holders.insert(id(4), vec![0]);
        assert_eq!(spread(&shards, &holders), 3);
        // A copy on node 3 too, found by moving shard 4 off node 0.
        holders.insert(id(4), vec![0, 3]);
        assert_eq!(spread(&shards, &holders), 4);
        // An augmenting path: shard 1 can move from node 0 to node 3.
        holders.insert(id(1), vec![0, 3]);
        holders.insert(id(4), vec![0]);
        assert_eq!(spread(&shards, &holders), 4);
        holders.remove(&id(2));
        assert_eq!(spread(&shards, &holders), 3);
    }

    fn stripe(n: u8) -> StripeRef {
        StripeRef {
            blob_len: 100,
            redundancy: Redundancy::new(2, 4).unwrap(),
            shards: (0..4u8).map(|i| Id::of(&[n, i])).collect(),
        }
    }

    #[test]
    fn a_stripe_placement_agrees_with_the_free_functions() {
        let list = nodes(6);
        let stripe = stripe(1);
        let placement = StripePlacement::new(&stripe, &list);
        let key = stripe_key(&stripe);
        assert_eq!(placement.ranking(), ranking(&key, &list));
        let mut reachable = [true; 6];
        reachable[placement.ranking()[2]] = false;
        assert_eq!(
            placement.place(&reachable, 4),
            place(&key, &list, &reachable, 4)
        );
        for shard in 0..8 {
            assert_eq!(placement.home(shard), placement.ranking()[shard % 6]);
        }
    }

    #[test]
    fn a_failed_shard_goes_to_a_node_holding_none_then_to_any() {
        let placement = StripePlacement::new(&stripe(2), &nodes(5));
        let r = placement.ranking().to_vec();
        let mut reachable = [true; 5];
        // Shards on the first three; the fourth's home failed.
        reachable[r[3]] = false;
        assert_eq!(
            placement.replace(&reachable, &[r[0], r[1], r[2]]),
            Some(r[4])
        );
        // No free node left: the first reachable one, doubling up.
        reachable[r[4]] = false;
        assert_eq!(
            placement.replace(&reachable, &[r[0], r[1], r[2]]),
            Some(r[0])
        );
        assert_eq!(placement.replace(&[false; 5], &[]), None);
    }

    #[test]
    fn rebuilt_shards_go_to_free_up_nodes_one_reserved_each() {
        let placement = StripePlacement::new(&stripe(3), &nodes(6));
        let r = placement.ranking().to_vec();
        // Shards 0 and 2 counted on r[0] and r[2]; 1 and 3 left out.
        let counted = [Some(r[0]), None, Some(r[2]), None];
        let mut up = [true; 6];
        up[r[1]] = false;
        let targets = placement.rebuild_targets(&counted, &up);
        assert_eq!(
            targets,
            vec![(1, vec![r[3], r[4], r[5]]), (3, vec![r[4], r[5]])]
        );
        // Nothing free: the shard is listed with no target.
        let targets = placement.rebuild_targets(&counted, &[false; 6]);
        assert_eq!(targets, vec![(1, vec![]), (3, vec![])]);
    }

    #[test]
    #[should_panic(expected = "one reachability flag per node")]
    fn reachability_must_match_the_nodes() {
        place(&key(0), &nodes(3), &[true; 2], 2);
    }

    #[test]
    fn first_place_is_spread_evenly() {
        let list = nodes(8);
        let keys = 16_000;
        let mut firsts = [0u32; 8];
        for i in 0..keys {
            firsts[ranking(&key(i), &list)[0]] += 1;
        }
        // 2,000 expected each; the standard deviation is about 42, so ±15 %
        // is over seven of them.
        for (i, count) in firsts.iter().enumerate() {
            assert!((1_700..=2_300).contains(count), "node {i}: {firsts:?}");
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_in_n_plus_one_first_places_all_to_it() {
        let old = nodes(8);
        let new = nodes(9);
        let keys = 9_000;
        let mut moved = 0;
        for i in 0..keys {
            let before = old[ranking(&key(i), &old)[0]];
            let after = new[ranking(&key(i), &new)[0]];
            if before != after {
                assert_eq!(after, node(8), "a first place moved to an old node");
                moved += 1;
            }
        }
        // 1,000 expected (1/9).
        assert!((800..=1_200).contains(&moved), "{moved} of {keys} moved");
    }

    /// Up to 32 distinct nodes, a reachability mask and a shard count.
    fn cluster() -> impl Strategy<Value = (Vec<NodeId>, Vec<bool>, usize, Id)> {
        (1usize..=32)
            .prop_flat_map(|n| {
                (
                    prop::collection::btree_set(any::<[u8; 32]>(), n),
                    prop::collection::vec(any::<bool>(), n),
                    0usize..=32,
                    any::<[u8; 32]>(),
                )
            })
            .prop_map(|(ids, reachable, shards, key)| {
                let nodes = ids.into_iter().map(|b| NodeId(Id::from_bytes(b))).collect();
                (nodes, reachable, shards, Id::from_bytes(key))
            })
    }

    proptest! {
        #[test]
        fn placement_rules_hold((nodes, reachable, shards, key) in cluster()) {
            let placement = place(&key, &nodes, &reachable, shards);
            prop_assert_eq!(placement.len(), shards);
            prop_assert_eq!(placement, place(&key, &nodes, &reachable, shards));
            let placement = place(&key, &nodes, &reachable, shards);

            let live = reachable.iter().filter(|&&r| r).count();
            if live == 0 {
                prop_assert!(placement.iter().all(Option::is_none));
                return Ok(());
            }
            prop_assert!(placement.iter().all(|p| p.is_some_and(|i| reachable[i])));

            // Never a second shard on a node while a reachable node has none,
            // and counts within one of each other.
            let c = counts(&placement, nodes.len());
            let live_counts: Vec<usize> =
                (0..nodes.len()).filter(|&i| reachable[i]).map(|i| c[i]).collect();
            let max = *live_counts.iter().max().unwrap();
            let min = *live_counts.iter().min().unwrap();
            if max >= 2 {
                prop_assert!(min >= 1);
            }
            if shards >= live {
                prop_assert!(max - min <= 1);
            }
            prop_assert_eq!(distinct_nodes(&placement), shards.min(live));

            // The nodes used are the first reachable ones in ranking order.
            let ranked = ranking(&key, &nodes);
            let expected: BTreeSet<usize> =
                ranked.iter().copied().filter(|&i| reachable[i]).take(shards).collect();
            let used: BTreeSet<usize> = placement.iter().flatten().copied().collect();
            prop_assert_eq!(used, expected);

            // A reachable home keeps its shard.
            for (shard, slot) in placement.iter().enumerate() {
                if let Some(&home) = ranked.get(shard)
                    && reachable[home]
                {
                    prop_assert_eq!(*slot, Some(home));
                }
            }
        }

        #[test]
        fn a_node_going_down_moves_only_its_own_shards(
            (nodes, _, shards, key) in cluster(),
            down in any::<prop::sample::Index>(),
        ) {
            // With more shards than nodes some shards have no home and go
            // round the nodes: losing one reshuffles those, which is fine.
            prop_assume!(shards <= nodes.len());
            let all = vec![true; nodes.len()];
            let down = down.index(nodes.len());
            let mut without = all.clone();
            without[down] = false;
            let before = place(&key, &nodes, &all, shards);
            let after = place(&key, &nodes, &without, shards);
            for (b, a) in before.iter().zip(&after) {
                if *b != Some(down) {
                    prop_assert_eq!(b, a);
                }
            }
        }

        #[test]
        fn removing_a_node_keeps_the_others_in_order_and_in_place(
            (nodes, _, shards, key) in cluster(),
            removed in any::<prop::sample::Index>(),
        ) {
            let removed = removed.index(nodes.len());
            let mut fewer = nodes.clone();
            let gone = fewer.remove(removed);
            let ids = |list: &[NodeId], r: Vec<usize>| r.into_iter().map(|i| list[i]).collect::<Vec<_>>();
            let mut before = ids(&nodes, ranking(&key, &nodes));
            before.retain(|&n| n != gone);
            prop_assert_eq!(&ids(&fewer, ranking(&key, &fewer)), &before);

            // Every node that held a shard and is still there still holds one.
            let held = |list: &[NodeId]| -> BTreeSet<NodeId> {
                place(&key, list, &vec![true; list.len()], shards)
                    .into_iter().flatten().map(|i| list[i]).collect()
            };
            let mut kept = held(&nodes);
            kept.remove(&gone);
            prop_assert!(kept.is_subset(&held(&fewer)));
        }
    }
}
