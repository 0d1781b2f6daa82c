//! Node addresses: `scheme://host:port#NODE_ID`.
//!
//! This is how a user names a node: `cairn node init` prints one address
//! per listener, and the client config lists them. The scheme picks the
//! transport, the host and port say where to connect, and the fragment is
//! the node id the connection must prove (see [`crate::identity`]).
//!
//! ```text
//! tcp://127.0.0.1:7001#5f2c…(64 hex)    TLS 1.3 over TCP, cairn frames
//! https://[::1]:7443#5f2c…              the REST API over HTTPS
//! quic://node.example:7002#5f2c…        QUIC, cairn frames on streams
//! ```
//!
//! The id may be left out only where the user explicitly trusts the first
//! id seen; parsing accepts both forms and [`NodeAddress::node_id`] says
//! which it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identity::NodeId;

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// TLS 1.3 over TCP with cairn's frames.
    Tcp,
    /// The REST API over HTTPS.
    Https,
    /// QUIC with cairn's frames, one stream per request.
    Quic,
}

impl Scheme {
    /// The scheme as written in an address.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Https => "https",
            Self::Quic => "quic",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a node listens and, usually, which node it must be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// The transport.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// The id the node must prove, if known.
    pub node_id: Option<NodeId>,
}

impl NodeAddress {
    /// `host:port`, with brackets around an IPv6 address, as
    /// `ToSocketAddrs` and URLs want it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The address without its node id: `scheme://host:port`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// The same address, pinned to `id`.
    #[must_use]
    pub fn with_node_id(mut self, id: NodeId) -> Self {
        self.node_id = Some(id);
        self
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())?;
        if let Some(id) = self.node_id {
            write!(f, "#{id}")?;
        }
        Ok(())
    }
}

/// Why a string is not a node address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No `scheme://`, or an unknown scheme.
    #[error("{0:?} is not a node address: expected tcp://, https:// or quic://HOST:PORT[#NODE_ID]")]
    Scheme(String),
    /// The host is missing or malformed.
    #[error("{0:?} has no valid host")]
    Host(String),
    /// The port is missing or not a number from 1 to 65535.
    #[error("{0:?} needs a port from 1 to 65535 after the host")]
    Port(String),
    /// Something follows the port other than `#NODE_ID`.
    #[error("{0:?}: only #NODE_ID may follow the port (no path or query)")]
    Trailing(String),
    /// The node id is not 64 hex digits.
    #[error("{address:?}: the node id after # is not valid: {reason}")]
    NodeId {
        /// The address given.
        address: String,
        /// What is wrong with the id.
        reason: String,
    },
}

impl FromStr for NodeAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| AddressError::Scheme(input.to_owned()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Scheme::Tcp,
            "https" => Scheme::Https,
            "quic" => Scheme::Quic,
            _ => return Err(AddressError::Scheme(input.to_owned())),
        };
        let (authority, fragment) = match rest.split_once('#') {
            Some((authority, id)) => (authority, Some(id)),
            None => (rest, None),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '?', '@']) {
            return Err(AddressError::Trailing(input.to_owned()));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, port) = bracketed
                .split_once("]:")
                .ok_or_else(|| AddressError::Port(input.to_owned()))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(AddressError::Host(input.to_owned()));
            }
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| AddressError::Port(input.to_owned()))?
        };
        let host_ok = !host.is_empty()
            && (host.contains(':')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        if !host_ok {
            return Err(AddressError::Host(input.to_owned()));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| AddressError::Port(input.to_owned()))?;
        let node_id = fragment
            .map(|id| {
                id.parse::<NodeId>().map_err(|e| AddressError::NodeId {
                    address: input.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            node_id,
        })
    }
}

impl Serialize for NodeAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::Id;

    fn id() -> NodeId {
        NodeId(Id::of(b"node"))
    }

    #[test]
    fn round_trips() {
        for text in [
            format!("tcp://127.0.0.1:7001#{}", id()),
            format!("https://[::1]:7443#{}", id()),
            "quic://node-1.example:7002".to_owned(),
        ] {
            let address: NodeAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        let a: NodeAddress = format!("tcp://127.0.0.1:7001#{}", id()).parse().unwrap();
        assert_eq!(a.scheme, Scheme::Tcp);
        assert_eq!(a.authority(), "127.0.0.1:7001");
        assert_eq!(a.node_id, Some(id()));
        let b: NodeAddress = "https://[::1]:7443".parse().unwrap();
        assert_eq!(
            (b.host.as_str(), b.authority()),
            ("::1", "[::1]:7443".to_owned())
        );
        assert_eq!(b.node_id, None);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        type Check = fn(&AddressError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("127.0.0.1:7001", |e| matches!(e, AddressError::Scheme(_))),
            ("ftp://h:1", |e| matches!(e, AddressError::Scheme(_))),
            ("tcp://:7001", |e| matches!(e, AddressError::Host(_))),
            ("tcp://host", |e| matches!(e, AddressError::Port(_))),
            ("tcp://host:0", |e| matches!(e, AddressError::Port(_))),
            ("tcp://host:70000", |e| matches!(e, AddressError::Port(_))),
            ("tcp://host:1/path", |e| {
                matches!(e, AddressError::Trailing(_))
            }),
            ("tcp://user@host:1", |e| {
                matches!(e, AddressError::Trailing(_))
            }),
            ("tcp://[zz]:1", |e| matches!(e, AddressError::Host(_))),
            ("tcp://h st:1", |e| matches!(e, AddressError::Host(_))),
            ("tcp://host:1#abc", |e| {
                matches!(e, AddressError::NodeId { .. })
            }),
        ];
        for (text, expected) in cases {
            let err = text.parse::<NodeAddress>().unwrap_err();
            assert!(expected(&err), "{text}: {err}");
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}
