//! Shards as a client receives them from nodes: the `cnsh` header, and a
//! stripe rebuilt from shards some of which are damaged or missing.
//!
//! Input: a mode byte, then
//! - mode 0: shard bytes for `ShardHeader::parse`;
//! - mode 1: k, n (reduced into range), a bit mask of the shards given, a
//!   flag, a count of byte flips (shard, offset, xor) and the blob. The
//!   blob is encoded, the flips applied and the missing shards dropped.
//!   With the flag set, the stripe's ids are recomputed from the damaged
//!   shards, so that they pass the hash check and reach the header checks
//!   and Reed-Solomon.
//!
//! Undamaged shards, k or more, give the blob back; a damaged shard under
//! its original id is refused; fewer than k shards are refused.
#![no_main]

use cairn_core::erasure::{SHARD_HEADER_LEN, ShardHeader, StripeDecoder, StripeEncoder};
use cairn_core::{Id, Redundancy};
use cairn_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        parse(input.rest());
    } else {
        stripe(input);
    }
});

fn parse(bytes: &[u8]) {
    if let Ok((header, payload)) = ShardHeader::parse(bytes) {
        assert_eq!(header.encode()[..], bytes[..SHARD_HEADER_LEN]);
        assert_eq!(payload, &bytes[SHARD_HEADER_LEN..]);
        assert!(usize::from(header.index) < header.redundancy.total());
        assert_eq!(
            payload.len(),
            header
                .redundancy
                .shard_payload_len(header.blob_len as usize)
        );
    }
}

fn stripe(mut input: Input<'_>) {
    let k = usize::from(input.u8() % 32) + 1;
    let n = k + usize::from(input.u8()) % (33 - k);
    let redundancy = Redundancy::new(k, n).expect("in range");
    let present = input.u32();
    let recompute = input.u8() & 1 == 1;
    let flips: Vec<(usize, usize, u8)> = (0..input.u8() % 8)
        .map(|_| {
            (
                usize::from(input.u8()),
                usize::from(input.u16()),
                input.u8(),
            )
        })
        .collect();
    let blob = input.rest();

    let (mut stripe, shards) = StripeEncoder::new()
        .encode(blob, redundancy)
        .expect("a small blob encodes");
    let mut bytes: Vec<Vec<u8>> = shards.into_iter().map(|s| s.bytes).collect();
    for &(shard, offset, xor) in &flips {
        let shard = &mut bytes[shard % n];
        let offset = offset % shard.len();
        shard[offset] ^= xor;
    }
    let mut damaged = vec![false; n];
    for (index, shard) in bytes.iter().enumerate() {
        if Id::of(shard) != stripe.shards[index] {
            damaged[index] = true;
            if recompute {
                stripe.shards[index] = Id::of(shard);
            }
        }
    }
    let slots: Vec<Option<&[u8]>> = (0..n)
        .map(|i| (present & (1 << i) != 0).then_some(&bytes[i][..]))
        .collect();
    let given = slots.iter().flatten().count();
    let any_damaged = (0..n).any(|i| slots[i].is_some() && damaged[i]);

    let result = StripeDecoder::new().decode(&stripe, &slots);
    if given < k {
        assert!(result.is_err(), "{given} shards of {redundancy} decoded");
    } else if !any_damaged {
        assert_eq!(result.expect("intact shards decode"), blob);
    } else if !recompute {
        assert!(result.is_err(), "a damaged shard passed its id");
    } else if let Ok(decoded) = result {
        assert_eq!(decoded.len(), blob.len());
    }
}
