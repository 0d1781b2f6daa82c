//! TLS 1.3 for every transport, with the server pinned by node id.
//!
//! Servers present their self-signed certificate. Clients do not check it
//! against certificate authorities or host names: they check that the
//! certificate's public key hashes to the node id they were given (see
//! [`crate::identity`]), then let rustls verify the handshake signature with
//! that key. A node that cannot sign with the pinned key cannot complete a
//! handshake, wherever it is.
//!
//! With [`Pin::FirstUse`] (the `--trust-on-first-use` of `cairn init`) the
//! client accepts any node; in both modes the id the server proved is
//! recorded ([`SeenId`]), for the caller to pin from then on or to report.
//!
//! Every configuration here is built from the aws-lc-rs provider explicitly:
//! cairn never relies on a process-wide default provider.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use crate::identity::{NodeId, NodeIdentity};

/// ALPN protocol of cairn's framed transports (`tcp://`, `quic://`). The
/// version is negotiated by the hello that follows, not by ALPN, so that an
/// old peer gets an answer naming the versions instead of a TLS alert.
pub const ALPN_CAIRN: &[u8] = b"cairn";
/// ALPN protocol of the HTTPS API.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The crypto provider of every cairn TLS configuration.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure TLS: {0}")]
pub struct TlsError(#[from] rustls::Error);

/// A server configuration presenting `identity`, offering `alpn`.
///
/// # Errors
/// [`TlsError`] if rustls refuses the key or certificate.
pub fn server_config(
    identity: &NodeIdentity,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate().clone()], identity.private_key())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Which server a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Only the node with this id.
    Node(NodeId),
    /// Any node (trust on first use).
    FirstUse,
}

/// Where a client configuration records the id of every server it saw,
/// accepted or not: after a failed handshake it tells a wrong node from a
/// network failure, whatever the transport made of the error.
pub type SeenId = Arc<Mutex<Option<NodeId>>>;

/// A client configuration accepting the server `pin` names, offering
/// `alpn`, and the slot where it records the id each server proved.
pub fn client_config(pin: Pin, alpn: &[&[u8]]) -> (rustls::ClientConfig, SeenId) {
    let provider = provider();
    let seen = SeenId::default();
    let verifier = PinnedVerifier {
        pin,
        seen: seen.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("aws-lc-rs supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (config, seen)
}

/// The server name clients send. Certificates are pinned by key, so the
/// name only fills the handshake field.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("cairn.invalid").expect("a valid DNS name")
}

/// The server proved another node id than the one pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server is node {actual}, not the expected node {expected}")]
pub struct NodeIdMismatch {
    /// The pinned id.
    pub expected: NodeId,
    /// The id the server's certificate proves.
    pub actual: NodeId,
}

impl NodeIdMismatch {
    /// Finds a mismatch among the causes of `error`.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(found) = e.downcast_ref::<Self>() {
                return Some(found);
            }
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
                e.downcast_ref::<rustls::Error>()
                && let Some(found) = other.0.downcast_ref::<Self>()
            {
                return Some(found);
            }
            // `io::Error::source` skips the error it wraps: look inside.
            cause = match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => e.source(),
            };
        }
        None
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    seen: SeenId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = NodeId::of_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(actual);
        match self.pin {
            Pin::Node(expected) if expected != actual => Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(OtherError(Arc::new(NodeIdMismatch { expected, actual }))),
            )),
            Pin::Node(_) | Pin::FirstUse => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered, so this is never reached.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
