//! Erasure coding: a sealed blob becomes a stripe of n shards, any k of which
//! give it back.
//!
//! The blob is cut into k data shards of equal size (the last one padded
//! with zeros) and Reed-Solomon (`reed-solomon-simd`, GF(2¹⁶)) adds n − k
//! parity shards. Erasure coding works on sealed bytes, so rebuilding lost
//! shards never needs a key.
//!
//! ```text
//! shard:  "cnsh" │ version 1 │ k │ n │ index │ blob length (u32 LE) │ payload
//! shard id = BLAKE3(whole shard)
//! ```
//!
//! The header makes a shard self-describing, and because it includes the
//! shard's index, two shards of one stripe never share an id even when
//! their payloads are equal (with k = 1 every parity shard could equal the
//! data shard): a node holding "shard 2" cannot answer for "shard 3".
//!
//! A [`StripeRef`] names the n shards of a blob by id, in index order.
//! [`StripeDecoder::decode`] checks every shard it is given against that id
//! before using it, so a wrong byte anywhere is an error, never output.
//! When all k data shards are there, decoding is a copy; parity is used only
//! for missing data shards.

use std::fmt;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use serde::{Deserialize, Serialize};

use crate::format::{Format, FormatError, HEADER_LEN};
use crate::id::Id;

/// Format of a shard.
pub const SHARD: Format = Format {
    name: "shard",
    magic: *b"cnsh",
    version: 1,
};

/// Length of a shard's header.
pub const SHARD_HEADER_LEN: usize = HEADER_LEN + 7;

/// Most shards a stripe may have.
pub const MAX_SHARDS: usize = 32;

/// Largest blob a stripe may hold (large manifests are the biggest blobs;
/// chunks are at most 4 MiB).
pub const MAX_BLOB_LEN: usize = 64 * 1024 * 1024;

/// Largest shard: a whole maximal blob in one shard (k = 1) plus its header.
pub const MAX_SHARD_LEN: usize = MAX_BLOB_LEN + SHARD_HEADER_LEN;

/// How a blob is spread: `k` data shards out of `n` in all, any `k` of which
/// rebuild it. Always 1 ≤ k ≤ n ≤ [`MAX_SHARDS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(u8, u8)", into = "(u8, u8)")]
pub struct Redundancy {
    data: u8,
    total: u8,
}

/// Parameters that do not describe a usable stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid redundancy {data}-of-{total}: need 1 ≤ k ≤ n ≤ {MAX_SHARDS}")]
pub struct RedundancyError {
    /// Requested k.
    pub data: usize,
    /// Requested n.
    pub total: usize,
}

impl Redundancy {
    /// `k` data shards out of `n`.
    ///
    /// # Errors
    /// [`RedundancyError`] unless 1 ≤ k ≤ n ≤ [`MAX_SHARDS`].
    pub fn new(data: usize, total: usize) -> Result<Self, RedundancyError> {
        if data == 0 || data > total || total > MAX_SHARDS {
            return Err(RedundancyError { data, total });
        }
        Ok(Self {
            data: data as u8,
            total: total as u8,
        })
    }

    /// cairn's default for a cluster of `nodes` nodes: n = min(nodes, 6),
    /// k = n − 2 (at least 1). With four nodes that is 2-of-4, which
    /// survives the loss of any two.
    pub fn default_for(nodes: usize) -> Self {
        let total = nodes.clamp(1, 6);
        Self::new(total.saturating_sub(2).max(1), total).expect("within bounds")
    }

    /// k: shards needed to rebuild.
    pub fn data(&self) -> usize {
        usize::from(self.data)
    }

    /// n: shards in all.
    pub fn total(&self) -> usize {
        usize::from(self.total)
    }

    /// n − k: shards that may be lost.
    pub fn parity(&self) -> usize {
        self.total() - self.data()
    }

    /// Payload length of each shard of a blob of `blob_len` bytes: an even
    /// number of bytes (Reed-Solomon works on 16-bit symbols), at least 2.
    pub fn shard_payload_len(&self, blob_len: usize) -> usize {
        let per_shard = blob_len.div_ceil(self.data());
        (per_shard + per_shard % 2).max(2)
    }
}

impl TryFrom<(u8, u8)> for Redundancy {
    type Error = RedundancyError;
    fn try_from((data, total): (u8, u8)) -> Result<Self, Self::Error> {
        Self::new(usize::from(data), usize::from(total))
    }
}

impl From<Redundancy> for (u8, u8) {
    fn from(r: Redundancy) -> Self {
        (r.data, r.total)
    }
}

impl fmt::Display for Redundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-of-{}", self.data, self.total)
    }
}

impl fmt::Debug for Redundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redundancy({self})")
    }
}

/// Where a blob lives: its length, its redundancy and the ids of its shards
/// in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRef {
    /// Length of the blob in bytes.
    pub blob_len: u32,
    /// k and n.
    pub redundancy: Redundancy,
    /// The n shard ids, shard 0 first.
    pub shards: Vec<Id>,
}

impl StripeRef {
    /// Checks that the fields agree with each other.
    ///
    /// # Errors
    /// [`StripeRefError`] naming the first inconsistency.
    pub fn validate(&self) -> Result<(), StripeRefError> {
        if self.shards.len() != self.redundancy.total() {
            return Err(StripeRefError::ShardCount {
                redundancy: self.redundancy,
                listed: self.shards.len(),
            });
        }
        if self.blob_len as usize > MAX_BLOB_LEN {
            return Err(StripeRefError::BlobTooLarge { len: self.blob_len });
        }
        Ok(())
    }
}

/// How a [`StripeRef`] contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripeRefError {
    /// The reference does not list one shard id per shard of the stripe.
    #[error("a {redundancy} stripe lists {listed} shards")]
    ShardCount {
        /// k and n of the stripe.
        redundancy: Redundancy,
        /// Shard ids listed.
        listed: usize,
    },
    /// The blob is longer than any stripe holds.
    #[error("blob of {len} bytes exceeds the limit of {MAX_BLOB_LEN}")]
    BlobTooLarge {
        /// The blob length claimed.
        len: u32,
    },
}

/// A shard and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct Shard {
    /// BLAKE3 of `bytes`.
    pub id: Id,
    /// Header and payload.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shard({:?}, {} bytes)", self.id, self.bytes.len())
    }
}

/// The fields of a shard header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    /// k and n of the stripe.
    pub redundancy: Redundancy,
    /// Position in the stripe, 0 ≤ index < n; the first k are data.
    pub index: u8,
    /// Length of the blob the stripe holds.
    pub blob_len: u32,
}

impl ShardHeader {
    /// The header bytes.
    pub fn encode(&self) -> [u8; SHARD_HEADER_LEN] {
        let mut out = [0u8; SHARD_HEADER_LEN];
        out[..HEADER_LEN].copy_from_slice(&SHARD.header());
        out[5] = self.redundancy.data;
        out[6] = self.redundancy.total;
        out[7] = self.index;
        out[8..12].copy_from_slice(&self.blob_len.to_le_bytes());
        out
    }

    /// Parses the header of `shard` and returns it with the payload.
    ///
    /// # Errors
    /// [`StripeError`] if the header is malformed or the payload has the
    /// wrong length for it.
    pub fn parse(shard: &[u8]) -> Result<(Self, &[u8]), StripeError> {
        let rest = SHARD.strip(shard)?;
        let Some((fields, payload)) = rest.split_first_chunk::<7>() else {
            return Err(StripeError::ShortShard { len: shard.len() });
        };
        let redundancy = Redundancy::new(usize::from(fields[0]), usize::from(fields[1]))?;
        let index = fields[2];
        let blob_len = u32::from_le_bytes([fields[3], fields[4], fields[5], fields[6]]);
        if usize::from(index) >= redundancy.total() {
            return Err(StripeError::IndexOutside {
                index: usize::from(index),
                redundancy,
            });
        }
        let expected = redundancy.shard_payload_len(blob_len as usize);
        if payload.len() != expected {
            return Err(StripeError::PayloadLength {
                len: payload.len(),
                expected,
            });
        }
        Ok((
            Self {
                redundancy,
                index,
                blob_len,
            },
            payload,
        ))
    }
}

/// Why a stripe could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripeError {
    /// The blob is larger than [`MAX_BLOB_LEN`].
    #[error("blob of {len} bytes exceeds the stripe limit of {MAX_BLOB_LEN} bytes")]
    TooLarge {
        /// Length of the blob.
        len: usize,
    },
    /// A shard does not hash to the id the stripe names: it is corrupt or
    /// not the shard asked for. Try another copy or another shard.
    #[error("shard {index} is corrupt: expected {expected}, got {actual}")]
    ShardMismatch {
        /// Index of the shard in the stripe.
        index: usize,
        /// Id the stripe names.
        expected: Id,
        /// BLAKE3 of the bytes given.
        actual: Id,
    },
    /// Fewer than k good shards.
    #[error("only {available} of the {needed} shards needed are available")]
    NotEnoughShards {
        /// Shards given.
        available: usize,
        /// k.
        needed: usize,
    },
    /// The shard list does not have one slot per shard of the stripe.
    #[error("{given} shard slots for a stripe of {total}")]
    SlotCount {
        /// Slots given.
        given: usize,
        /// n.
        total: usize,
    },
    /// A shard is shorter than a shard header.
    #[error("shard of {len} bytes is shorter than its header")]
    ShortShard {
        /// Length of the shard.
        len: usize,
    },
    /// A shard header names an impossible redundancy.
    #[error("malformed shard: {0}")]
    Redundancy(#[from] RedundancyError),
    /// A shard index (in a header, or asked for) lies outside its stripe.
    #[error("shard index {index} outside a {redundancy} stripe")]
    IndexOutside {
        /// The index.
        index: usize,
        /// k and n of the stripe.
        redundancy: Redundancy,
    },
    /// A shard's payload has another length than its header implies.
    #[error("shard payload is {len} bytes, its header implies {expected}")]
    PayloadLength {
        /// Length of the payload.
        len: usize,
        /// Length the header implies.
        expected: usize,
    },
    /// A shard that hashes to its id carries another header than the
    /// stripe expects at its position.
    #[error("shard {index} has header {found:?}, the stripe expects {expected:?}")]
    HeaderMismatch {
        /// Position in the stripe.
        index: usize,
        /// The header the shard carries.
        found: ShardHeader,
        /// The header the stripe expects there.
        expected: ShardHeader,
    },
    /// The stripe reference contradicts itself.
    #[error("invalid stripe: {0}")]
    Stripe(#[from] StripeRefError),
    /// The Reed-Solomon codec refused the shards.
    #[error("reed-solomon: {0}")]
    Codec(ReedSolomonError),
    /// A shard's header is not a shard header.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// The Reed-Solomon codec's error, which has no `Eq`: compared by `==`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReedSolomonError(pub reed_solomon_simd::Error);

impl Eq for ReedSolomonError {}

impl fmt::Display for ReedSolomonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn codec_error(e: reed_solomon_simd::Error) -> StripeError {
    StripeError::Codec(ReedSolomonError(e))
}

/// Turns blobs into stripes, reusing Reed-Solomon work space between calls.
#[derive(Default)]
pub struct StripeEncoder {
    rs: Option<ReedSolomonEncoder>,
}

impl StripeEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts `blob` into the n shards of `redundancy`.
    ///
    /// # Errors
    /// [`StripeError::TooLarge`] for a blob over [`MAX_BLOB_LEN`].
    pub fn encode(
        &mut self,
        blob: &[u8],
        redundancy: Redundancy,
    ) -> Result<(StripeRef, Vec<Shard>), StripeError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(StripeError::TooLarge { len: blob.len() });
        }
        let k = redundancy.data();
        let payload_len = redundancy.shard_payload_len(blob.len());
        let header = |index: usize| ShardHeader {
            redundancy,
            index: index as u8,
            blob_len: blob.len() as u32,
        };
        let mut shards: Vec<Vec<u8>> = Vec::with_capacity(redundancy.total());
        for index in 0..k {
            let start = (index * payload_len).min(blob.len());
            let end = (start + payload_len).min(blob.len());
            let mut shard = Vec::with_capacity(SHARD_HEADER_LEN + payload_len);
            shard.extend_from_slice(&header(index).encode());
            shard.extend_from_slice(&blob[start..end]);
            shard.resize(SHARD_HEADER_LEN + payload_len, 0);
            shards.push(shard);
        }
        if redundancy.parity() > 0 {
            let rs = match &mut self.rs {
                Some(rs) => {
                    rs.reset(k, redundancy.parity(), payload_len)
                        .map_err(codec_error)?;
                    rs
                }
                slot => slot.insert(
                    ReedSolomonEncoder::new(k, redundancy.parity(), payload_len)
                        .map_err(codec_error)?,
                ),
            };
            for shard in &shards {
                rs.add_original_shard(&shard[SHARD_HEADER_LEN..])
                    .map_err(codec_error)?;
            }
            let parity = rs.encode().map_err(codec_error)?;
            for (i, payload) in parity.recovery_iter().enumerate() {
                let mut shard = Vec::with_capacity(SHARD_HEADER_LEN + payload_len);
                shard.extend_from_slice(&header(k + i).encode());
                shard.extend_from_slice(payload);
                shards.push(shard);
            }
        }
        let shards: Vec<Shard> = shards
            .into_iter()
            .map(|bytes| Shard {
                id: Id::of(&bytes),
                bytes,
            })
            .collect();
        let stripe = StripeRef {
            blob_len: blob.len() as u32,
            redundancy,
            shards: shards.iter().map(|s| s.id).collect(),
        };
        Ok((stripe, shards))
    }
}

/// Checks that `bytes` is shard `index` of `stripe`.
///
/// # Errors
/// [`StripeError::ShardMismatch`] when the hash differs, or
/// [`StripeError::IndexOutside`] when the index is outside the stripe.
pub fn verify_shard(stripe: &StripeRef, index: usize, bytes: &[u8]) -> Result<(), StripeError> {
    let expected = *stripe.shards.get(index).ok_or(StripeError::IndexOutside {
        index,
        redundancy: stripe.redundancy,
    })?;
    let actual = Id::of(bytes);
    if actual != expected {
        return Err(StripeError::ShardMismatch {
            index,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Rebuilds blobs from shards, reusing Reed-Solomon work space.
#[derive(Default)]
pub struct StripeDecoder {
    rs: Option<ReedSolomonDecoder>,
}

impl StripeDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the blob of `stripe` from `shards`: one slot per shard in
    /// index order, `None` where a shard is missing.
    ///
    /// Every shard given is checked against its id first; any k good ones
    /// are enough.
    ///
    /// # Errors
    /// [`StripeError::ShardMismatch`] naming the first shard that does not
    /// match its id (drop it and try again without it),
    /// [`StripeError::NotEnoughShards`] with fewer than k shards, or
    /// [`StripeError::Stripe`] when the stripe reference itself is
    /// inconsistent.
    pub fn decode<S: AsRef<[u8]>>(
        &mut self,
        stripe: &StripeRef,
        shards: &[Option<S>],
    ) -> Result<Vec<u8>, StripeError> {
        stripe.validate()?;
        let redundancy = stripe.redundancy;
        let (k, n) = (redundancy.data(), redundancy.total());
        if shards.len() != n {
            return Err(StripeError::SlotCount {
                given: shards.len(),
                total: n,
            });
        }
        let blob_len = stripe.blob_len as usize;
        let payload_len = redundancy.shard_payload_len(blob_len);
        let mut payloads: Vec<Option<&[u8]>> = vec![None; n];
        for (index, shard) in shards.iter().enumerate() {
            let Some(bytes) = shard.as_ref().map(AsRef::as_ref) else {
                continue;
            };
            verify_shard(stripe, index, bytes)?;
            let (header, payload) = ShardHeader::parse(bytes)?;
            let expected = ShardHeader {
                redundancy,
                index: index as u8,
                blob_len: stripe.blob_len,
            };
            if header != expected {
                return Err(StripeError::HeaderMismatch {
                    index,
                    found: header,
                    expected,
                });
            }
            payloads[index] = Some(payload);
        }
        let available = payloads.iter().flatten().count();
        if available < k {
            return Err(StripeError::NotEnoughShards {
                available,
                needed: k,
            });
        }

        let mut blob = Vec::with_capacity(k * payload_len);
        if payloads[..k].iter().all(Option::is_some) {
            for payload in payloads[..k].iter().flatten() {
                blob.extend_from_slice(payload);
            }
        } else {
            let rs = match &mut self.rs {
                Some(rs) => {
                    rs.reset(k, n - k, payload_len).map_err(codec_error)?;
                    rs
                }
                slot => slot
                    .insert(ReedSolomonDecoder::new(k, n - k, payload_len).map_err(codec_error)?),
            };
            let mut added = 0;
            for (index, payload) in payloads.iter().enumerate() {
                let Some(payload) = payload else { continue };
                if added == k {
                    break;
                }
                if index < k {
                    rs.add_original_shard(index, payload).map_err(codec_error)?;
                } else {
                    rs.add_recovery_shard(index - k, payload)
                        .map_err(codec_error)?;
                }
                added += 1;
            }
            let restored = rs.decode().map_err(codec_error)?;
            for (index, payload) in payloads[..k].iter().enumerate() {
                match payload {
                    Some(payload) => blob.extend_from_slice(payload),
                    None => blob.extend_from_slice(
                        restored
                            .restored_original(index)
                            .expect("decoder restores every missing original"),
                    ),
                }
            }
        }
        blob.truncate(blob_len);
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(len: usize, k: usize, n: usize) {
        let blob = testdata::seeded_bytes(len as u64, len);
        let redundancy = Redundancy::new(k, n).unwrap();
        let (stripe, shards) = StripeEncoder::new().encode(&blob, redundancy).unwrap();
        assert_eq!(shards.len(), n);
        let mut decoder = StripeDecoder::new();
        // Every way of keeping exactly k shards (n ≤ 6 here, so at most 64).
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != k {
                continue;
            }
            let slots: Vec<Option<&[u8]>> = (0..n)
                .map(|i| (mask >> i & 1 == 1).then(|| shards[i].bytes.as_slice()))
                .collect();
            assert_eq!(
                decoder.decode(&stripe, &slots).unwrap(),
                blob,
                "mask {mask:b}"
            );
        }
    }

    #[test]
    fn any_k_of_n_rebuild() {
        for len in [0, 1, 2, 3, 1000, 65_537] {
            for (k, n) in [(1, 1), (1, 3), (2, 4), (3, 5), (4, 6), (6, 6)] {
                round_trip(len, k, n);
            }
        }
    }

    #[test]
    fn wide_stripe() {
        let blob = testdata::seeded_bytes(5, 100_001);
        let r = Redundancy::new(20, 32).unwrap();
        let (stripe, shards) = StripeEncoder::new().encode(&blob, r).unwrap();
        let slots: Vec<Option<&[u8]>> = shards
            .iter()
            .enumerate()
            .map(|(i, s)| (i >= 12).then_some(s.bytes.as_slice()))
            .collect();
        assert_eq!(StripeDecoder::new().decode(&stripe, &slots).unwrap(), blob);
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        for (k, n) in [(0, 0), (0, 4), (5, 4), (1, 33), (33, 33)] {
            assert_eq!(
                Redundancy::new(k, n),
                Err(RedundancyError { data: k, total: n })
            );
        }
        assert!(postcard::from_bytes::<Redundancy>(&[3, 2]).is_err());
        assert_eq!(Redundancy::default_for(4).to_string(), "2-of-4");
        assert_eq!(Redundancy::default_for(1).to_string(), "1-of-1");
        assert_eq!(Redundancy::default_for(10).to_string(), "4-of-6");
    }

    #[test]
    fn k_equal_one_shards_have_distinct_ids() {
        let r = Redundancy::new(1, 4).unwrap();
        let (stripe, _) = StripeEncoder::new().encode(&[0u8; 64], r).unwrap();
        let mut ids = stripe.shards.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn wrong_or_missing_shards_are_named() {
        let blob = testdata::seeded_bytes(6, 5000);
        let r = Redundancy::new(2, 4).unwrap();
        let (stripe, shards) = StripeEncoder::new().encode(&blob, r).unwrap();
        let mut decoder = StripeDecoder::new();
        let mut bad = shards[1].bytes.clone();
        bad[100] ^= 1;
        let slots = [Some(shards[0].bytes.clone()), Some(bad), None, None];
        assert!(matches!(
            decoder.decode(&stripe, &slots),
            Err(StripeError::ShardMismatch { index: 1, .. })
        ));
        // A shard of the right stripe in the wrong slot is refused too.
        let swapped = [Some(&shards[1].bytes), Some(&shards[0].bytes), None, None];
        assert!(matches!(
            decoder.decode(&stripe, &swapped),
            Err(StripeError::ShardMismatch { index: 0, .. })
        ));
        let one: [Option<&Vec<u8>>; 4] = [None, None, None, Some(&shards[3].bytes)];
        assert_eq!(
            decoder.decode(&stripe, &one),
            Err(StripeError::NotEnoughShards {
                available: 1,
                needed: 2
            })
        );
        let three: [Option<&Vec<u8>>; 3] = [None, None, None];
        assert!(matches!(
            decoder.decode(&stripe, &three),
            Err(StripeError::SlotCount { given: 3, total: 4 })
        ));
    }

    #[test]
    fn oversized_blob_is_refused() {
        let r = Redundancy::new(1, 1).unwrap();
        let big = vec![0u8; MAX_BLOB_LEN + 1];
        assert_eq!(
            StripeEncoder::new().encode(&big, r).unwrap_err(),
            StripeError::TooLarge {
                len: MAX_BLOB_LEN + 1
            }
        );
    }
}
