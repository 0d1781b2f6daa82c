//! Keys: from one passphrase to every secret a user needs.
//!
//! ```text
//! passphrase ──Argon2id(salt = H("auth", user))───▶ AuthKey ──keyed BLAKE3(node id)──▶ NodeAuthKey
//!                                                            one per node, sent to that node to log in
//!            ──Argon2id(salt = H("master", user))─▶ MasterKey   never leaves the client
//! MasterKey ──HKDF-SHA256──▶ ConvergenceKey   chunk key material (per-user dedup)
//!                        ──▶ IndexNameKey     HMAC of paths: index entry names
//!                        ──▶ IndexKey         seals index entries
//!                        ──▶ ManifestsKey     derives each file's ManifestKey
//! ```
//!
//! The two Argon2id runs use distinct salts, so the auth key says nothing
//! about the master key. No node sees the auth key itself either: each
//! node gets a key of its own, derived from the auth key and the node's id,
//! so a malicious node cannot replay what it received to log in to the
//! others as the user. Salts are derived from the user name so that
//! the same passphrase gives the same keys on any machine with no state to
//! carry around; the price is that two deployments with the same user name
//! and passphrase share keys, which is why the passphrase must be strong.
//!
//! Every secret here is zeroized when dropped and prints as `[redacted]` in
//! `Debug`; the raw bytes are reachable only through a method named
//! `expose_secret`.

use std::fmt;

use aws_lc_rs::hkdf;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::id::Id;

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw key bytes (for example read from a key file).
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw key bytes. Never log or print them.
            pub const fn expose_secret(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_key!(
    /// The root of a user's credentials for nodes. Never sent: each node
    /// gets its own [`NodeAuthKey`].
    AuthKey
);
secret_key!(
    /// Proves a user's identity to one node. That node keeps only a salted
    /// hash of it; other nodes expect other keys.
    NodeAuthKey
);
secret_key!(
    /// The root of every data key. Never leaves the client.
    MasterKey
);
secret_key!(
    /// Keys the hash that turns a chunk's plaintext into its key material, so
    /// that equal chunks of one user seal to equal bytes and deduplicate,
    /// while other users' chunks seal to unrelated bytes.
    ConvergenceKey
);
secret_key!(
    /// Keys the HMAC that turns a path into an index entry name.
    IndexNameKey
);
secret_key!(
    /// Seals index entries.
    IndexKey
);
secret_key!(
    /// Derives the key of each file's manifest.
    ManifestsKey
);
secret_key!(
    /// Seals one manifest. A capability carries it: it opens that one file.
    ManifestKey
);
secret_key!(
    /// Per-chunk secret: the keyed hash of the chunk's plaintext. The AES key
    /// and nonce of the sealed chunk are derived from it, and manifests carry
    /// it so that whoever can open a manifest can open its chunks.
    KeyMaterial
);

impl AuthKey {
    /// Derives only the auth key of `user` (one Argon2id run), for a node
    /// registering the user.
    ///
    /// # Errors
    /// As [`UserKeys::derive`].
    pub fn derive(user: &str, passphrase: &[u8], params: &KdfParams) -> Result<Self, KeyError> {
        Ok(Self(*argon2id(user, passphrase, params, "auth")?))
    }

    /// The key that logs in to the node whose id is `node_id`.
    pub fn for_node(&self, node_id: &[u8; 32]) -> NodeAuthKey {
        let key = Zeroizing::new(blake3::derive_key(
            "cairn 2026-11 per-node auth key",
            &self.0,
        ));
        NodeAuthKey(*blake3::keyed_hash(&key, node_id).as_bytes())
    }
}

impl ConvergenceKey {
    /// The key material of a chunk with this plaintext.
    pub fn key_material(&self, plaintext: &[u8]) -> KeyMaterial {
        KeyMaterial(*blake3::keyed_hash(&self.0, plaintext).as_bytes())
    }
}

impl ManifestsKey {
    /// The key that seals the manifest of a file with this content hash.
    ///
    /// Deriving it from the content means storing the same file twice makes
    /// the same sealed manifest, which deduplicates; envelopes use a
    /// synthetic nonce, so two different manifests under one key are safe.
    pub fn manifest_key(&self, file_hash: &Id) -> ManifestKey {
        ManifestKey(*blake3::keyed_hash(&self.0, file_hash.as_bytes()).as_bytes())
    }
}

/// Argon2id cost parameters.
///
/// The defaults (64 MiB, 3 passes, 1 lane) take a few tenths of a second per
/// derivation on the machines cairn targets; two derivations run in parallel
/// at log-in. They are part of a user's identity: other parameters give other
/// keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory per derivation in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest parameters Argon2 accepts. Only for tests: a passphrase
    /// derived with them is easy to brute-force.
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

/// Why keys could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The passphrase is empty.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The user name is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// Argon2 refused the cost parameters.
    #[error("invalid Argon2id parameters {params:?}: {reason}")]
    Params {
        /// The parameters given.
        params: KdfParams,
        /// Argon2's explanation.
        reason: String,
    },
}

/// The two secrets derived from a user's passphrase.
#[derive(Debug, Clone)]
pub struct UserKeys {
    /// Sent to nodes to log in.
    pub auth: AuthKey,
    /// Kept on the client; every data key derives from it.
    pub master: MasterKey,
}

impl UserKeys {
    /// Derives the auth key and the master key of `user` from `passphrase`.
    ///
    /// The two Argon2id runs are independent and run on two threads.
    ///
    /// # Errors
    /// [`KeyError`] for an empty user or passphrase, or parameters Argon2
    /// refuses.
    pub fn derive(user: &str, passphrase: &[u8], params: &KdfParams) -> Result<Self, KeyError> {
        let (auth, master) = std::thread::scope(|scope| {
            let auth = scope.spawn(|| argon2id(user, passphrase, params, "auth"));
            let master = argon2id(user, passphrase, params, "master");
            (auth.join().expect("argon2 does not panic"), master)
        });
        Ok(Self {
            auth: AuthKey(*auth?),
            master: MasterKey(*master?),
        })
    }
}

/// One Argon2id run of `passphrase`, salted by `user` and `purpose`.
fn argon2id(
    user: &str,
    passphrase: &[u8],
    params: &KdfParams,
    purpose: &str,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    if user.is_empty() {
        return Err(KeyError::EmptyUser);
    }
    if passphrase.is_empty() {
        return Err(KeyError::EmptyPassphrase);
    }
    let invalid = |e: argon2::Error| KeyError::Params {
        params: *params,
        reason: e.to_string(),
    };
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(invalid)?,
    );
    let salt = blake3::derive_key(
        &format!("cairn 2026-11 argon2id salt for the {purpose} key"),
        user.as_bytes(),
    );
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, &salt, out.as_mut())
        .map_err(invalid)?;
    Ok(out)
}

impl MasterKey {
    fn expand(&self, info: &str) -> Zeroizing<[u8; 32]> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"cairn master key v1").extract(&self.0);
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&[info.as_bytes()], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(out.as_mut()))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// The key behind chunk key material.
    pub fn convergence_key(&self) -> ConvergenceKey {
        ConvergenceKey(*self.expand("cairn/v1/convergence"))
    }

    /// The key that names index entries.
    pub fn index_name_key(&self) -> IndexNameKey {
        IndexNameKey(*self.expand("cairn/v1/index-name"))
    }

    /// The key that seals index entries.
    pub fn index_key(&self) -> IndexKey {
        IndexKey(*self.expand("cairn/v1/index"))
    }

    /// The key that derives manifest keys.
    pub fn manifests_key(&self) -> ManifestsKey {
        ManifestsKey(*self.expand("cairn/v1/manifests"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(user: &str, pass: &str) -> UserKeys {
        UserKeys::derive(user, pass.as_bytes(), &KdfParams::INSECURE_FOR_TESTS).unwrap()
    }

    #[test]
    fn derivation_is_deterministic_and_separates_users_and_purposes() {
        let a = keys("alice", "correct horse");
        let a2 = keys("alice", "correct horse");
        assert_eq!(a.auth.expose_secret(), a2.auth.expose_secret());
        assert_eq!(a.master.expose_secret(), a2.master.expose_secret());
        assert_ne!(a.auth.expose_secret(), a.master.expose_secret());

        let b = keys("bob", "correct horse");
        assert_ne!(a.master.expose_secret(), b.master.expose_secret());
        let a_other = keys("alice", "wrong horse");
        assert_ne!(a.auth.expose_secret(), a_other.auth.expose_secret());

        let m = &a.master;
        let subkeys = [
            *m.convergence_key().expose_secret(),
            *m.index_name_key().expose_secret(),
            *m.index_key().expose_secret(),
            *m.manifests_key().expose_secret(),
            *m.expose_secret(),
        ];
        for (i, x) in subkeys.iter().enumerate() {
            for y in &subkeys[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn default_parameters_are_pinned() {
        // A change of the defaults or of the salts would change every user's
        // keys and lock them out of their data: it must show up here.
        let k = UserKeys::derive("alice", b"pw", &KdfParams::default()).unwrap();
        assert_eq!(
            Id::from_bytes(*k.auth.expose_secret()).to_string(),
            "e902c59d67d9297354140ae279c72d2a44a8d28def9b1e33b7e8217cb786234b"
        );
        assert_eq!(
            Id::from_bytes(*k.master.expose_secret()).to_string(),
            "fbd84fd874d829d4d9c017529d63efc23ba868f4144e9a3888eec8f8d0900202"
        );
    }

    #[test]
    fn refuses_empty_inputs_and_bad_params() {
        let p = KdfParams::INSECURE_FOR_TESTS;
        assert_eq!(
            UserKeys::derive("", b"x", &p).unwrap_err(),
            KeyError::EmptyUser
        );
        assert_eq!(
            UserKeys::derive("a", b"", &p).unwrap_err(),
            KeyError::EmptyPassphrase
        );
        let bad = KdfParams { memory_kib: 1, ..p };
        assert!(matches!(
            UserKeys::derive("a", b"x", &bad),
            Err(KeyError::Params { .. })
        ));
    }

    #[test]
    fn each_node_gets_its_own_auth_key() {
        let k = keys("alice", "pw");
        let one = k.auth.for_node(&[1; 32]);
        let two = k.auth.for_node(&[2; 32]);
        assert_ne!(one.expose_secret(), two.expose_secret());
        assert_ne!(one.expose_secret(), k.auth.expose_secret());
        assert_eq!(
            one.expose_secret(),
            keys("alice", "pw").auth.for_node(&[1; 32]).expose_secret()
        );
        let alone = AuthKey::derive("alice", b"pw", &KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert_eq!(alone.expose_secret(), k.auth.expose_secret());
    }

    #[test]
    fn secrets_never_print() {
        let k = keys("alice", "hunter2");
        let printed = format!("{k:?} {:?}", k.master.convergence_key());
        assert!(printed.contains("[redacted]"));
        let hex = Id::from_bytes(*k.auth.expose_secret()).to_string();
        assert!(!printed.contains(&hex[..8]));
        assert!(!printed.contains("hunter2"));
    }

    #[test]
    fn key_material_is_keyed_by_user() {
        let a = keys("alice", "pw").master.convergence_key();
        let b = keys("bob", "pw").master.convergence_key();
        assert_eq!(
            a.key_material(b"chunk").expose_secret(),
            a.key_material(b"chunk").expose_secret()
        );
        assert_ne!(
            a.key_material(b"chunk").expose_secret(),
            b.key_material(b"chunk").expose_secret()
        );
    }
}
