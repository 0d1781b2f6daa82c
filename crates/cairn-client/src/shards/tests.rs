//! The shard layer's decisions, on fake nodes in memory: where shards go,
//! what a failed put does, which shards a fetch uses and when it gives up,
//! and what repair rebuilds where. (The same decisions on real node
//! processes: the client end-to-end tests.)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cairn_core::erasure::StripeEncoder;
use cairn_core::{Id, Redundancy};
use cairn_net::protocol::ErrorCode;

use super::*;
use crate::transport::{FailureKind, FailureTransport, Fault, MemoryTransport, Op};

/// A 2-of-4 stripe of `len` seeded bytes.
fn stripe(seed: u8, len: usize) -> (StripeRef, Vec<Shard>) {
    let mut blob = vec![0u8; len];
    blake3::Hasher::new_derive_key("cairn shard layer tests")
        .update(&[seed])
        .finalize_xof()
        .fill(&mut blob);
    StripeEncoder::new()
        .encode(&blob, Redundancy::new(2, 4).unwrap())
        .unwrap()
}

fn memory(nodes: usize) -> Arc<MemoryTransport> {
    Arc::new(MemoryTransport::new(nodes))
}

fn failing(nodes: usize) -> Arc<FailureTransport<MemoryTransport>> {
    Arc::new(FailureTransport::new(MemoryTransport::new(nodes)))
}

fn placement<T: Transport>(transport: &Arc<T>, stripe: &StripeRef) -> StripePlacement {
    StripePlacement::new(stripe, &transport.node_ids())
}

/// Uploads `stripe` through a shard layer of `transport`.
async fn upload<T: Transport>(
    transport: &Arc<T>,
    stripe: &StripeRef,
    shards: Vec<Shard>,
) -> (Placed, UploadTally) {
    let tally = UploadTally::default();
    let placed = Shards::new(transport.clone(), 4)
        .upload_stripe(stripe, shards, &tally)
        .await;
    (placed, tally)
}

#[tokio::test]
async fn shards_go_to_their_homes_and_a_fetch_reads_the_data_shards_only() {
    let nodes = memory(6);
    let (stripe, shards) = stripe(1, 10_000);
    let home = placement(&nodes, &stripe);
    let (placed, tally) = upload(&nodes, &stripe, shards).await;
    let homes: Vec<Option<usize>> = (0..4).map(|s| Some(home.home(s))).collect();
    assert_eq!(placed.nodes, homes);
    assert!(!placed.degraded());
    assert_eq!(tally.sent.load(Ordering::Relaxed), 4);
    for (s, id) in stripe.shards.iter().enumerate() {
        assert!(nodes.holds(home.home(s), id), "shard {s}");
    }

    let counts = Counts::default();
    let layer = Shards::new(nodes.clone(), 4);
    let slots = layer.fetch_stripe(&stripe, &counts).await.unwrap();
    assert!(slots[0].is_some() && slots[1].is_some());
    assert!(slots[2].is_none() && slots[3].is_none(), "no parity needed");
    assert_eq!((counts.fetched(), counts.failed()), (2, 0));
}

#[tokio::test]
async fn a_put_with_one_of_four_nodes_failing_is_degraded_and_names_the_node() {
    let nodes = failing(4);
    let (stripe, shards) = stripe(2, 10_000);
    let bad = placement(&nodes, &stripe).home(1);
    nodes.inject(
        bad,
        Op::PutShard,
        usize::MAX,
        Fault::Refuse(ErrorCode::DiskFull),
    );
    let (placed, tally) = upload(&nodes, &stripe, shards).await;
    // Every shard stored, but shard 1 shares a node: three nodes hold the
    // stripe, and losing that one node now costs two shards.
    assert!(placed.nodes.iter().all(Option::is_some), "{placed:?}");
    assert_ne!(placed.nodes[1], Some(bad));
    assert_eq!(placed.distinct(), 3);
    assert!(placed.degraded());
    let failures = tally.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].index, bad);
    assert_eq!(
        failures[0].kind,
        FailureKind::Refused {
            code: ErrorCode::DiskFull
        }
    );
    assert!(!nodes.inner().holds(bad, &stripe.shards[1]));
}

#[tokio::test]
async fn a_failed_put_goes_to_a_node_holding_none_when_there_is_one() {
    let nodes = failing(5);
    let (stripe, shards) = stripe(3, 10_000);
    let placement = placement(&nodes, &stripe);
    let bad = placement.home(0);
    nodes.inject(bad, Op::PutShard, 1, Fault::Break);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    // The spare, ranked fifth, takes it: still four distinct nodes.
    assert_eq!(placed.nodes[0], Some(placement.ranking()[4]));
    assert!(!placed.degraded());
}

#[tokio::test]
async fn a_node_known_down_gets_no_shard_and_no_request() {
    let nodes = memory(5);
    let (stripe, shards) = stripe(4, 10_000);
    let placement = placement(&nodes, &stripe);
    let down = placement.home(2);
    nodes.stop(down);
    let (placed, tally) = upload(&nodes, &stripe, shards).await;
    assert!(!placed.nodes.contains(&Some(down)));
    assert_eq!(placed.nodes[2], Some(placement.ranking()[4]));
    assert_eq!(nodes.requests(down, Op::PutShard), 0);
    assert!(tally.failures().is_empty());
}

#[tokio::test]
async fn a_large_shard_the_user_holds_is_not_sent_again() {
    let nodes = memory(4);
    // Shards of 2-of-4 are half the blob: over ASK_FIRST_ABOVE.
    let (stripe, shards) = stripe(5, 4 * ASK_FIRST_ABOVE);
    let (_, first) = upload(&nodes, &stripe, shards.clone()).await;
    assert_eq!(first.sent.load(Ordering::Relaxed), 4);
    let puts: usize = (0..4).map(|n| nodes.requests(n, Op::PutShard)).sum();

    let (placed, again) = upload(&nodes, &stripe, shards).await;
    assert!(!placed.degraded());
    assert_eq!(again.sent.load(Ordering::Relaxed), 0);
    assert_eq!(again.present.load(Ordering::Relaxed), 4);
    assert_eq!(
        (0..4)
            .map(|n| nodes.requests(n, Op::PutShard))
            .sum::<usize>(),
        puts,
        "nothing sent"
    );
}

#[tokio::test]
async fn a_small_shard_is_sent_without_asking_and_counted_present() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(6, 1000);
    upload(&nodes, &stripe, shards.clone()).await;
    let (_, again) = upload(&nodes, &stripe, shards).await;
    assert_eq!(again.present.load(Ordering::Relaxed), 4);
    assert_eq!(
        (0..4)
            .map(|n| nodes.requests(n, Op::HasShards))
            .sum::<usize>(),
        0
    );
}

#[tokio::test]
async fn a_shard_corrupted_on_the_way_is_refused_and_another_fetched() {
    let nodes = failing(4);
    let (stripe, shards) = stripe(7, 10_000);
    upload(&nodes, &stripe, shards).await;
    let home = placement(&nodes, &stripe).home(0);
    nodes.inject(home, Op::GetShard, 1, Fault::CorruptShard);

    let counts = Counts::default();
    let layer = Shards::new(nodes.clone(), 4);
    let slots = layer.fetch_stripe(&stripe, &counts).await.unwrap();
    assert!(slots[0].is_none(), "the corrupt copy is never used");
    assert_eq!(slots[2].as_deref().map(Id::of), Some(stripe.shards[2]));
    assert_eq!((counts.fetched(), counts.failed()), (2, 1));
    let failure = &counts.reasons()[0];
    assert_eq!(failure.shard, 0);
    match failure.failure.kind {
        FailureKind::Corrupt { expected, actual } => {
            assert_eq!(expected, stripe.shards[0]);
            assert_ne!(actual, expected);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_shard_damaged_on_disk_is_quarantined_by_its_node_and_parity_used() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(8, 10_000);
    upload(&nodes, &stripe, shards).await;
    let home = placement(&nodes, &stripe).home(1);
    assert!(nodes.damage_shard(home, &stripe.shards[1]));

    let counts = Counts::default();
    let slots = Shards::new(nodes.clone(), 4)
        .fetch_stripe(&stripe, &counts)
        .await
        .unwrap();
    assert!(slots[1].is_none());
    assert!(!nodes.holds(home, &stripe.shards[1]), "quarantined");
    assert_eq!(
        counts.reasons()[0].failure.kind,
        FailureKind::Refused {
            code: ErrorCode::Corrupt
        }
    );
}

#[tokio::test]
async fn fewer_than_k_shards_anywhere_is_unavailable_naming_nodes_and_shards() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(9, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    for s in 0..3 {
        nodes.remove_shard(placed.nodes[s].unwrap(), &stripe.shards[s]);
    }
    let error = Shards::new(nodes.clone(), 4)
        .fetch_stripe(&stripe, &Counts::default())
        .await
        .unwrap_err();
    assert_eq!((error.found, error.needed), (1, 2));
    // Every missing shard was asked for on every node.
    for s in 0..3 {
        assert!(error.failed.iter().any(|f| f.shard == s), "{error}");
    }
    assert!(error.failed.iter().all(|f| f.failure.kind
        == FailureKind::Refused {
            code: ErrorCode::NotFound
        }));
    assert!(error.to_string().contains("only 1 of the 2 shards needed"));
}

#[tokio::test]
async fn a_slow_node_is_hedged_with_parity() {
    let nodes = failing(4);
    let (stripe, shards) = stripe(10, 10_000);
    upload(&nodes, &stripe, shards).await;
    let slow = placement(&nodes, &stripe).home(0);
    nodes.inject(slow, Op::GetShard, 1, Fault::Delay(Duration::from_secs(60)));
    let started = Instant::now();
    let slots = Shards::new(nodes.clone(), 4)
        .fetch_stripe(&stripe, &Counts::default())
        .await
        .unwrap();
    assert!(slots[0].is_none() && slots[2].is_some());
    let took = started.elapsed();
    assert!(took >= HEDGE_AFTER, "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn a_shard_placed_off_its_home_is_found_by_asking_every_node() {
    let nodes = memory(5);
    let (stripe, shards) = stripe(11, 10_000);
    let placement = placement(&nodes, &stripe);
    // Shard 0's home was down at put time: the shard went to the spare.
    nodes.stop(placement.home(0));
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    nodes.start(placement.home(0));
    assert_eq!(placed.nodes[0], Some(placement.ranking()[4]));
    // And the parity is gone: only shards 0 and 1 are left.
    for s in 2..4 {
        nodes.remove_shard(placed.nodes[s].unwrap(), &stripe.shards[s]);
    }
    let slots = Shards::new(nodes.clone(), 4)
        .fetch_stripe(&stripe, &Counts::default())
        .await
        .unwrap();
    assert!(slots[0].is_some() && slots[1].is_some());
}

/// The good copies of `stripe` on `transport`'s nodes.
async fn good<T: Transport>(transport: &Arc<T>, stripe: &StripeRef) -> CheckedCopies {
    Shards::new(transport.clone(), 4)
        .check_copies(std::slice::from_ref(stripe))
        .await
}

#[tokio::test]
async fn repair_rebuilds_a_lost_shard_on_its_rebuild_target() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(12, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    let lost_on = placed.nodes[1].unwrap();
    nodes.remove_shard(lost_on, &stripe.shards[1]);

    let checked = good(&nodes, &stripe).await;
    let tally = RepairTally::default();
    let layer = Shards::new(nodes.clone(), 4);
    let stored = layer
        .repair_stripe(&stripe, &checked.good, &tally)
        .await
        .unwrap();
    // The one node holding none of the others is the shard's home again.
    assert_eq!(stored, [(stripe.shards[1], lost_on)]);
    assert!(nodes.holds(lost_on, &stripe.shards[1]));
    assert_eq!(tally.written.load(Ordering::Relaxed), 1);

    // Idempotent: nothing left to do.
    let checked = good(&nodes, &stripe).await;
    let again = layer
        .repair_stripe(&stripe, &checked.good, &RepairTally::default())
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn repair_spreads_two_shards_on_one_node_onto_the_node_that_came_back() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(13, 10_000);
    let placement = placement(&nodes, &stripe);
    let away = placement.home(3);
    nodes.stop(away);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    assert_eq!(placed.distinct(), 3);
    nodes.start(away);

    let checked = good(&nodes, &stripe).await;
    let stored = Shards::new(nodes.clone(), 4)
        .repair_stripe(&stripe, &checked.good, &RepairTally::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, away);
    let checked = good(&nodes, &stripe).await;
    assert_eq!(placement::spread(&stripe.shards, &checked.good), 4);
}

#[tokio::test]
async fn repair_with_no_free_node_leaves_the_shard_unplaced() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(14, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    let node = placed.nodes[2].unwrap();
    nodes.remove_shard(node, &stripe.shards[2]);
    nodes.stop(node);
    let tally = RepairTally::default();
    let checked = good(&nodes, &stripe).await;
    let stored = Shards::new(nodes.clone(), 4)
        .repair_stripe(&stripe, &checked.good, &tally)
        .await
        .unwrap();
    assert!(stored.is_empty());
    assert_eq!(tally.unplaced.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn repair_of_a_stripe_with_fewer_than_k_good_shards_is_an_error() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(15, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    for s in 0..3 {
        nodes.remove_shard(placed.nodes[s].unwrap(), &stripe.shards[s]);
    }
    let checked = good(&nodes, &stripe).await;
    let error = Shards::new(nodes.clone(), 4)
        .repair_stripe(&stripe, &checked.good, &RepairTally::default())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        StripeRepairError::TooFewShards {
            found: 1,
            needed: 2
        }
    );
}

#[tokio::test]
async fn a_rebuilt_shard_no_node_takes_is_an_error_naming_the_nodes() {
    let nodes = failing(4);
    let (stripe, shards) = stripe(16, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    let node = placed.nodes[0].unwrap();
    nodes.inner().remove_shard(node, &stripe.shards[0]);
    nodes.inject_any(Op::PutShard, usize::MAX, Fault::Refuse(ErrorCode::DiskFull));
    let checked = good(&nodes, &stripe).await;
    match Shards::new(nodes.clone(), 4)
        .repair_stripe(&stripe, &checked.good, &RepairTally::default())
        .await
    {
        Err(StripeRepairError::NotStored { failed }) => {
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].index, node);
        }
        other => panic!("expected NotStored, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_copies_are_counted_and_left_out() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(17, 10_000);
    let (placed, _) = upload(&nodes, &stripe, shards).await;
    let node = placed.nodes[3].unwrap();
    nodes.damage_shard(node, &stripe.shards[3]);
    let checked = good(&nodes, &stripe).await;
    assert_eq!(checked.corrupt, 1);
    assert!(!checked.good.contains_key(&stripe.shards[3]));
    assert_eq!(checked.good[&stripe.shards[0]], [placed.nodes[0].unwrap()]);
}

#[tokio::test]
async fn dropping_references_releases_them_on_every_node() {
    let nodes = memory(4);
    let (stripe, shards) = stripe(18, 10_000);
    upload(&nodes, &stripe, shards).await;
    let layer = Shards::new(nodes.clone(), 4);
    assert_eq!(layer.drop_references(&stripe.shards).await, 4);
    assert!((0..4).all(|n| nodes.shard_ids(n).is_empty()));
    assert_eq!(layer.drop_references(&stripe.shards).await, 0);
}

#[tokio::test]
async fn unreachable_nodes_are_named_with_why() {
    let nodes = memory(3);
    nodes.stop(1);
    let failures = Shards::new(nodes.clone(), 4).unreachable().await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].index, 1);
    assert_eq!(failures[0].kind, FailureKind::Unreachable);
    assert!(
        failures[0]
            .to_string()
            .starts_with(&nodes.addresses()[1].to_string())
    );
}
