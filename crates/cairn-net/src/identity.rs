//! Node identity: a long-term key pair, a self-signed certificate, and the
//! node id that pins them.
//!
//! A node's id is the BLAKE3 hash of its certificate's SubjectPublicKeyInfo
//! (the DER encoding of its public key). Clients and peers know a node by
//! that id and check it on every connection instead of trusting a
//! certificate authority, as Syncthing does with device ids. Because the id
//! hashes the key, not the certificate, a node can re-issue its certificate
//! (for new host names, say) and keep its id.
//!
//! Keys are Ed25519. The certificate names every host the node listens on,
//! plus `localhost`, so that a generic HTTPS client given the certificate
//! as its trust root (`curl --cacert node.crt`) accepts it too.

use std::fmt;
use std::str::FromStr;

use cairn_core::Id;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A node's id: BLAKE3 of its certificate's public key. Prints as 64 hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub Id);

impl NodeId {
    /// The id of a node whose certificate carries this SubjectPublicKeyInfo.
    pub fn of_public_key(spki_der: &[u8]) -> Self {
        Self(Id::of(spki_der))
    }

    /// The id of the node that owns `certificate` (DER).
    ///
    /// # Errors
    /// [`IdentityError::Certificate`] if the bytes are not a certificate.
    pub fn of_certificate(certificate: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let parsed = rustls::server::ParsedCertificate::try_from(certificate)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Self::of_public_key(
            parsed.subject_public_key_info().as_ref(),
        ))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &self.0.to_string()[..10])
    }
}

impl FromStr for NodeId {
    type Err = cairn_core::ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Why an identity could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Generating the key or the certificate failed.
    #[error("cannot generate the node's key or certificate: {0}")]
    Generate(String),
    /// The certificate does not parse.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The private key does not parse or does not match the certificate.
    #[error("invalid private key: {0}")]
    Key(String),
}

/// A node's key pair and self-signed certificate.
pub struct NodeIdentity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    id: NodeId,
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl NodeIdentity {
    /// A new Ed25519 key pair and a certificate for `hosts` (host names or
    /// IP addresses; `localhost` is always added).
    ///
    /// # Errors
    /// [`IdentityError::Generate`] if a host name is not valid in a
    /// certificate or key generation fails.
    pub fn generate(hosts: &[String]) -> Result<Self, IdentityError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        let key_der = PrivatePkcs8KeyDer::from(key.serialize_der());
        Self::issue(key_der, hosts)
    }

    /// A new certificate for the existing key of this identity, naming
    /// `hosts`. The node id does not change.
    ///
    /// # Errors
    /// [`IdentityError::Generate`] as for [`generate`](Self::generate).
    pub fn reissue(&self, hosts: &[String]) -> Result<Self, IdentityError> {
        Self::issue(self.key.clone_key(), hosts)
    }

    fn issue(
        key_der: PrivatePkcs8KeyDer<'static>,
        hosts: &[String],
    ) -> Result<Self, IdentityError> {
        let key =
            rcgen::KeyPair::try_from(&key_der).map_err(|e| IdentityError::Key(e.to_string()))?;
        let mut names: Vec<String> = hosts.to_vec();
        if !names.iter().any(|h| h == "localhost") {
            names.push("localhost".to_owned());
        }
        names.sort();
        names.dedup();
        let mut params = rcgen::CertificateParams::new(names)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cairn node");
        // Far in the future: the certificate is pinned by its key, never
        // checked against a clock by cairn; generic clients want a validity.
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(4096, 1, 1);
        let certificate = params
            .self_signed(&key)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        let certificate = certificate.der().clone();
        let id = NodeId::of_certificate(&certificate)?;
        Ok(Self {
            certificate,
            key: key_der,
            id,
        })
    }

    /// Loads an identity from its PEM files' contents.
    ///
    /// # Errors
    /// [`IdentityError`] if either does not parse, or the key is not the
    /// certificate's.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| IdentityError::Key(e.to_string()))?;
        let id = NodeId::of_certificate(&certificate)?;
        let pair = rcgen::KeyPair::try_from(&key).map_err(|e| IdentityError::Key(e.to_string()))?;
        if NodeId::of_public_key(&rcgen::PublicKeyData::subject_public_key_info(&pair)) != id {
            return Err(IdentityError::Key(
                "the private key does not belong to the certificate".to_owned(),
            ));
        }
        Ok(Self {
            certificate,
            key,
            id,
        })
    }

    /// The certificate in PEM, for `node.crt`.
    pub fn certificate_pem(&self) -> String {
        pem_encode("CERTIFICATE", self.certificate.as_ref())
    }

    /// The private key in PKCS#8 PEM, for `node.key`. Wiped when dropped.
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem_encode("PRIVATE KEY", self.key.secret_pkcs8_der()))
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The private key, as rustls takes it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
