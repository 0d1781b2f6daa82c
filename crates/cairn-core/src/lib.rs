//! cairn-core: the data pipeline of cairn, with no I/O of its own.
//!
//! A file goes through these steps on its way to storage nodes, and back
//! through them in reverse:
//!
//! | step | module | what happens |
//! | --- | --- | --- |
//! | chunking | [`chunk`] | FastCDC cuts content-defined chunks (256 KiB / 1 MiB / 4 MiB) |
//! | keys | [`keys`] | a passphrase becomes an auth key and a master key (Argon2id), then sub-keys (HKDF) |
//! | sealing | [`seal`] | keyed BLAKE3 gives each chunk its key material; zstd; AES-256-GCM |
//! | erasure coding | [`erasure`] | Reed-Solomon spreads a sealed chunk over n shards, any k rebuild it |
//! | manifest | [`manifest`] | the chunk list, sealed in an [`envelope`] |
//! | capability | [`capability`] | a `cairn:` string that reads one file |
//! | pipeline | [`pipeline`] | all of the above, streaming, both ways |
//!
//! Every structure cairn writes starts with a magic and a version
//! ([`format`]), and every byte read back is checked against a hash or an
//! authentication tag before it is used.
//!
//! The crate is synchronous and deterministic: no network, no clock, no
//! random numbers. The same input gives the same bytes, which is what makes
//! deduplication and the golden tests work.
//!
//! # Example
//!
//! ```
//! use cairn_core::{FileOpener, FileSealer, KdfParams, Redundancy, UserKeys};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = UserKeys::derive("alice", b"correct horse battery staple", &KdfParams::INSECURE_FOR_TESTS)?;
//! let convergence = keys.master.convergence_key();
//! let file = vec![42u8; 3_000_000];
//!
//! // Seal: one stripe of shards per chunk, then the manifest.
//! let mut sealer = FileSealer::new(&file[..], &convergence, Redundancy::new(2, 4)?);
//! let stripes = sealer.by_ref().collect::<Result<Vec<_>, _>>()?;
//! let manifest = sealer.finish()?;
//!
//! // Open with only shards 1 and 3 of every chunk.
//! let mut opener = FileOpener::new(manifest, Vec::new());
//! for stripe in &stripes {
//!     let s = &stripe.shards;
//!     opener.write_chunk(&[None, Some(&s[1].bytes), None, Some(&s[3].bytes)])?;
//! }
//! assert_eq!(opener.finish()?, file);
//! # Ok(())
//! # }
//! ```

pub mod capability;
pub mod chunk;
pub mod envelope;
pub mod erasure;
pub mod format;
pub mod id;
pub mod keys;
pub mod manifest;
pub mod pipeline;
pub mod seal;

pub use capability::{Capability, CapabilityError};
pub use erasure::{Redundancy, RedundancyError, Shard, StripeRef};
pub use id::{Id, ParseIdError};
pub use keys::{AuthKey, KdfParams, NodeAuthKey, UserKeys};
pub use manifest::{ChunkRef, Manifest, ManifestError, ManifestInconsistency};
pub use pipeline::{FileOpener, FileSealer, OpenError, SealError, SealedStripe};
