//! The client's settings: who the user is, which nodes to use, and how to
//! spread files over them.
//!
//! `cairn init` writes them as TOML with [`ClientConfig::to_toml`], every
//! setting with a comment; [`ClientConfig::parse`] reads them back and
//! refuses unknown settings, so a typo does not pass silently. The library
//! never reads files or environment variables: finding and loading
//! `~/.config/cairn/config.toml` (or `$CAIRN_CONFIG`) is the binary's job.
//!
//! ```toml
//! user = "alice"
//! servers = [
//!     "tcp://10.0.0.1:7001#5f2c…",     # URL#NODE_ID, as `cairn node init` prints it
//!     "https://10.0.0.2:7443#91ab…",
//! ]
//! # data = 2          k: unset means n − 2, at least 1
//! # total = 4         n: unset means min(servers, 6)
//! # min_shards = 3    unset means k + 1, at most n
//! connect_timeout_secs = 3
//! request_timeout_secs = 30
//! ping_interval_ms = 1000
//! window = 8
//! inline_max = 4096
//! quic_congestion = "bbr"     # or "cubic"
//! # scan_command = ["clamdscan", "--fdpass", "--no-summary"]
//! ```
//!
//! # Rules
//!
//! [`ClientConfig::validate`] (which `parse` calls) accepts a config only
//! if: the user is named; there is at least one server; every server has a
//! node id (placement hashes node ids, and the id is what the connection
//! must prove) and no node is listed twice (over two transports, say);
//! 1 ≤ k ≤ n ≤ 32 and n is at most the number of servers, because more
//! shards than nodes would put two shards of a chunk on one node; k ≤
//! `min_shards` ≤ n; timeouts are at least a second; the ping interval is
//! 0 (off) or at least [`MIN_PING_INTERVAL_MS`]; the window is
//! between 1 and [`MAX_WINDOW`]; and `inline_max` is at most
//! [`MAX_INLINE_LEN`](crate::index::MAX_INLINE_LEN).

use std::time::Duration;

use cairn_core::{Redundancy, RedundancyError};
use cairn_net::client::ClientOptions;
use cairn_net::quic::Congestion;
use cairn_net::{NodeAddress, NodeId};
use serde::{Deserialize, Serialize};

/// Largest [`ClientConfig::window`]. A chunk in flight holds up to 4 MiB of
/// plaintext and its n/k times larger shards, so 256 chunks at 2-of-4 are
/// already about 3 GiB.
pub const MAX_WINDOW: usize = 256;

/// Shortest [`ClientConfig::ping_interval_ms`] other than 0: twice the
/// interval of the node's keep-alives
/// ([`cairn_net::protocol::KEEPALIVE_INTERVAL`]), so that a busy node's
/// keep-alives always arrive within one interval.
pub const MIN_PING_INTERVAL_MS: u64 = 500;

/// Default [`ClientConfig::inline_max`].
pub const DEFAULT_INLINE_MAX: usize = 4096;

/// A client's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The user name on every node. With the passphrase it derives every
    /// key, so it must be the same on every machine the user works from.
    pub user: String,
    /// The nodes, each `scheme://host:port#NODE_ID` as `cairn node init`
    /// printed it. Order does not matter: placement hashes node ids.
    pub servers: Vec<NodeAddress>,
    /// k: data shards per chunk, any k of which rebuild it. Default:
    /// n − 2, at least 1.
    pub data: Option<usize>,
    /// n: shards per chunk in all, one per node. Default: the number of
    /// servers, at most 6.
    pub total: Option<usize>,
    /// Shards of every chunk that must be stored, on distinct nodes, for a
    /// put to succeed. Default: k + 1 (so a put survives one more node
    /// loss before repair), at most n.
    pub min_shards: Option<usize>,
    /// Seconds to wait for a connection to a node. Default: 3.
    pub connect_timeout_secs: u64,
    /// Seconds a node has to answer one request. Default: 30.
    pub request_timeout_secs: u64,
    /// Liveness check of `tcp://` connections: after this many milliseconds
    /// without a byte from a node while requests wait, the client pings
    /// it, and after as long again without an answer it gives the
    /// connection up as stalled and retries on a fresh one, instead of
    /// waiting out the request timeout. Must exceed the round-trip time to
    /// the farthest node; 0 turns the check off. Default: 1000.
    pub ping_interval_ms: u64,
    /// Chunks in flight at once during a put or a get; memory use grows with
    /// it. Default: 8.
    pub window: usize,
    /// Files of at most this many bytes are kept inside their index entry,
    /// which every node stores, instead of as chunk and manifest shards:
    /// one write per node instead of 2n shard files, and readable while
    /// any one node holding the entry is up. 0 stores every file as
    /// shards. Default: 4096 (one filesystem block, about where n copies
    /// of the bytes cost no more disk than 2n shard files).
    pub inline_max: usize,
    /// Congestion controller of what the client sends over `quic://` (its
    /// puts; each node's `node.toml` sets it for gets): `bbr` or `cubic`.
    /// Default: `bbr`, which keeps about half the clean rate on links that
    /// lose packets at random, where Cubic keeps a few percent (see
    /// `cairn_net::quic`).
    pub quic_congestion: Congestion,
    /// A program run on every file before it is stored and after it is
    /// fetched, with the file's path as its last argument (for example
    /// `["clamdscan", "--fdpass", "--no-summary"]`). A non-zero exit blocks
    /// the put, or keeps the fetched file out of place. Default: none.
    pub scan_command: Option<Vec<String>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            user: String::new(),
            servers: Vec::new(),
            data: None,
            total: None,
            min_shards: None,
            connect_timeout_secs: 3,
            request_timeout_secs: 30,
            ping_interval_ms: 1000,
            window: 8,
            inline_max: DEFAULT_INLINE_MAX,
            quic_congestion: Congestion::Bbr,
            scan_command: None,
        }
    }
}

/// Why a client configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML, has an unknown setting or a value of the wrong
    /// type.
    #[error("client config: {0}")]
    Parse(#[from] toml::de::Error),
    /// `user` is empty.
    #[error("client config: user is empty: name the user (as on the nodes)")]
    NoUser,
    /// `servers` is empty.
    #[error("client config: servers is empty: list at least one node as URL#NODE_ID")]
    NoServers,
    /// A server has no `#NODE_ID`.
    #[error(
        "client config: server {server} has no #NODE_ID: add the id `cairn node init` printed \
         (or let `cairn init --trust-on-first-use` record it)"
    )]
    MissingNodeId {
        /// The server.
        server: NodeAddress,
    },
    /// Two servers are the same node, which would let two shards of a chunk
    /// land on it.
    #[error("client config: {first} and {second} are both node {node_id}: list each node once")]
    DuplicateNode {
        /// The node's id.
        node_id: NodeId,
        /// The first address listed for it.
        first: String,
        /// The second.
        second: String,
    },
    /// `data` and `total` are not 1 ≤ k ≤ n ≤ 32.
    #[error("client config: data and total: {0}")]
    Redundancy(#[from] RedundancyError),
    /// More shards per chunk than servers: two shards of a chunk would share
    /// a node.
    #[error(
        "client config: total = {total} shards per chunk but only {servers} servers: \
         some node would hold two shards of a chunk; lower total or add servers"
    )]
    MoreShardsThanServers {
        /// n.
        total: usize,
        /// Number of servers.
        servers: usize,
    },
    /// `min_shards` is outside k ..= n.
    #[error(
        "client config: min_shards = {min_shards} must be between data ({data}) and total ({total})"
    )]
    MinShards {
        /// The value given.
        min_shards: usize,
        /// k.
        data: usize,
        /// n.
        total: usize,
    },
    /// A timeout is zero.
    #[error("client config: {field} must be at least 1 second")]
    Timeout {
        /// The setting.
        field: &'static str,
    },
    /// `scan_command` names no program.
    #[error(
        "client config: scan_command is empty: name a program, e.g. [\"clamdscan\", \"--fdpass\"]"
    )]
    ScanCommand,
    /// `inline_max` is over the index entry's limit.
    #[error("client config: inline_max = {inline_max} must be at most {max} bytes")]
    InlineMax {
        /// The value given.
        inline_max: usize,
        /// [`MAX_INLINE_LEN`](crate::index::MAX_INLINE_LEN).
        max: usize,
    },
    /// `ping_interval_ms` is neither 0 nor at least [`MIN_PING_INTERVAL_MS`].
    #[error(
        "client config: ping_interval_ms = {ping_interval_ms} must be 0 (off) or at least {min}"
    )]
    PingInterval {
        /// The value given.
        ping_interval_ms: u64,
        /// [`MIN_PING_INTERVAL_MS`].
        min: u64,
    },
    /// `window` is zero or over [`MAX_WINDOW`].
    #[error("client config: window = {window} must be between 1 and {max}")]
    Window {
        /// The value given.
        window: usize,
        /// [`MAX_WINDOW`].
        max: usize,
    },
}

impl ClientConfig {
    /// Settings for `user` and `servers`, everything else by default.
    pub fn new(user: impl Into<String>, servers: Vec<NodeAddress>) -> Self {
        Self {
            user: user.into(),
            servers,
            ..Self::default()
        }
    }

    /// Parses and checks a config file's text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for a syntax error, an unknown setting or a
    /// wrong type; any other variant for a value [`validate`](Self::validate)
    /// refuses.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// k and n: `data` and `total`, or their defaults (n = min(servers, 6),
    /// k = n − 2 at least 1; with only `data` set, n is still the default).
    ///
    /// # Errors
    /// [`ConfigError::Redundancy`] unless 1 ≤ k ≤ n ≤ 32;
    /// [`ConfigError::MoreShardsThanServers`] if n exceeds the number of
    /// servers.
    pub fn redundancy(&self) -> Result<Redundancy, ConfigError> {
        let default = Redundancy::default_for(self.servers.len());
        let total = self.total.unwrap_or(default.total());
        let data = self.data.unwrap_or(total.saturating_sub(2).max(1));
        let redundancy = Redundancy::new(data, total)?;
        if total > self.servers.len() {
            return Err(ConfigError::MoreShardsThanServers {
                total,
                servers: self.servers.len(),
            });
        }
        Ok(redundancy)
    }

    /// Shards of every chunk that a put must store on distinct nodes:
    /// `min_shards`, or k + 1, kept within k ..= n. Meaningful once
    /// [`validate`](Self::validate) passed; before, an impossible `data` or
    /// `total` counts as the default redundancy.
    pub fn min_shards(&self) -> usize {
        let redundancy = self
            .redundancy()
            .unwrap_or_else(|_| Redundancy::default_for(self.servers.len()));
        self.min_shards
            .unwrap_or(redundancy.data() + 1)
            .clamp(redundancy.data(), redundancy.total())
    }

    /// The node ids of the servers, in the order listed (servers without an
    /// id, which [`validate`](Self::validate) refuses, are left out).
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.servers.iter().filter_map(|s| s.node_id).collect()
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The liveness check's interval, `None` when it is off.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval_ms > 0).then(|| Duration::from_millis(self.ping_interval_ms))
    }

    /// The connection settings these settings make.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            connect_timeout: self.connect_timeout(),
            request_timeout: self.request_timeout(),
            ping_interval: self.ping_interval(),
            quic_congestion: self.quic_congestion,
            ..ClientOptions::default()
        }
    }

    /// Checks the settings against the rules in the [module docs](self).
    ///
    /// # Errors
    /// The [`ConfigError`] of the first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.user.is_empty() {
            return Err(ConfigError::NoUser);
        }
        if self.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        for (i, server) in self.servers.iter().enumerate() {
            let Some(node_id) = server.node_id else {
                return Err(ConfigError::MissingNodeId {
                    server: server.clone(),
                });
            };
            if let Some(first) = self.servers[..i]
                .iter()
                .find(|s| s.node_id == Some(node_id))
            {
                return Err(ConfigError::DuplicateNode {
                    node_id,
                    first: first.url(),
                    second: server.url(),
                });
            }
        }
        let redundancy = self.redundancy()?;
        if let Some(min_shards) = self.min_shards
            && !(redundancy.data()..=redundancy.total()).contains(&min_shards)
        {
            return Err(ConfigError::MinShards {
                min_shards,
                data: redundancy.data(),
                total: redundancy.total(),
            });
        }
        if self.connect_timeout_secs == 0 {
            return Err(ConfigError::Timeout {
                field: "connect_timeout_secs",
            });
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::Timeout {
                field: "request_timeout_secs",
            });
        }
        if (1..MIN_PING_INTERVAL_MS).contains(&self.ping_interval_ms) {
            return Err(ConfigError::PingInterval {
                ping_interval_ms: self.ping_interval_ms,
                min: MIN_PING_INTERVAL_MS,
            });
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(ConfigError::Window {
                window: self.window,
                max: MAX_WINDOW,
            });
        }
        if self.inline_max > crate::index::MAX_INLINE_LEN {
            return Err(ConfigError::InlineMax {
                inline_max: self.inline_max,
                max: crate::index::MAX_INLINE_LEN,
            });
        }
        if self
            .scan_command
            .as_ref()
            .is_some_and(|argv| argv.first().is_none_or(|program| program.trim().is_empty()))
        {
            return Err(ConfigError::ScanCommand);
        }
        Ok(())
    }

    /// The config file `cairn init` writes: every setting with a comment.
    /// Settings left to their default (`data`, `total`, `min_shards`) are
    /// written commented out, showing the value the default gives now, so
    /// that adding servers later still changes them. Parsing the text gives
    /// back an equal config.
    pub fn to_toml(&self) -> String {
        let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let servers: String = self
            .servers
            .iter()
            .map(|s| format!("    {},\n", string(&s.to_string())))
            .collect();
        let default = Redundancy::default_for(self.servers.len());
        let total = self.total.unwrap_or(default.total());
        let data = self.data.unwrap_or(total.saturating_sub(2).max(1));
        let optional = |key: &str, set: Option<usize>, shown: usize| match set {
            Some(value) => format!("{key} = {value}"),
            None => format!("# {key} = {shown}"),
        };
        let min_shards = self.min_shards.unwrap_or((data + 1).min(total));
        let scan_command = match &self.scan_command {
            Some(argv) => format!(
                "scan_command = [{}]",
                argv.iter()
                    .map(|a| string(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => r#"# scan_command = ["clamdscan", "--fdpass", "--no-summary"]"#.to_owned(),
        };
        format!(
            r#"# cairn client settings. `cairn init` wrote this file; edit it freely.

# The user name on every node. With the passphrase it derives every key, so
# it must be the same on every machine you use.
user = {user}

# The nodes, each scheme://host:port#NODE_ID as `cairn node init` printed it
# (tcp://, https:// or quic://; one client may mix them). The id is what the
# node must prove on every connection. Order does not matter.
servers = [
{servers}]

# k: data shards per chunk; any k of a chunk's shards rebuild it.
# Default (when commented out): n - 2, at least 1.
{data}

# n: shards per chunk in all, each on its own node, so at most the number of
# servers (and at most 32). Files survive the loss of n - k nodes.
# Default (when commented out): the number of servers, at most 6.
{total}

# Shards of every chunk that must be stored, on distinct nodes, for a put to
# succeed; between k and n. Default (when commented out): k + 1, at most n.
{min_shards}

# Seconds to wait for a connection to a node (default: 3).
connect_timeout_secs = {connect}

# Seconds a node has to answer one request (default: 30).
request_timeout_secs = {request}

# Milliseconds without a byte from a tcp:// node, while requests wait for it,
# before the client pings it; as long again without an answer and the
# connection counts as stalled and is replaced. Must exceed the round-trip
# time to the farthest node: 0 (off) or at least {min_ping} (default: 1000).
ping_interval_ms = {ping}

# Chunks in flight at once during a put or a get, 1 to {max_window}; memory use
# grows with it (default: 8).
window = {window}

# Files of at most this many bytes (up to {max_inline}) live inside their index
# entry, which every node keeps a copy of, instead of as chunk shards: much
# cheaper to store and readable while any one node is up. 0 stores every file
# as shards (default: 4096).
inline_max = {inline_max}

# Congestion control of what this client sends over quic:// (puts; each node
# sets its own in node.toml for gets): "bbr" (default) or "cubic". "bbr"
# keeps about half the clean throughput on links that lose packets at random
# (Wi-Fi, long mobile or satellite paths), where "cubic" falls to a few
# percent; "cubic" fetched faster from several nodes on a clean loopback.
quic_congestion = "{quic_congestion}"

# A program run on every file before a put and after a get, with the file's
# path as its last argument: a non-zero exit blocks the put, or keeps the
# fetched file out of place (as LOCAL.cairn-blocked). For example a virus
# scanner. Default (when commented out): none.
{scan_command}
"#,
            user = string(&self.user),
            data = optional("data", self.data, data),
            total = optional("total", self.total, total),
            min_shards = optional("min_shards", self.min_shards, min_shards),
            connect = self.connect_timeout_secs,
            request = self.request_timeout_secs,
            min_ping = MIN_PING_INTERVAL_MS,
            ping = self.ping_interval_ms,
            max_window = MAX_WINDOW,
            window = self.window,
            max_inline = crate::index::MAX_INLINE_LEN,
            inline_max = self.inline_max,
            quic_congestion = self.quic_congestion,
            scan_command = scan_command,
        )
    }
}

#[cfg(test)]
mod tests {
    use cairn_core::Id;

    use super::*;

    fn server(i: u8) -> NodeAddress {
        format!("tcp://127.0.0.1:{}", 7000 + u16::from(i))
            .parse::<NodeAddress>()
            .unwrap()
            .with_node_id(NodeId(Id::of(&[i])))
    }

    fn config(servers: u8) -> ClientConfig {
        ClientConfig::new("alice", (0..servers).map(server).collect())
    }

    #[test]
    fn defaults_follow_the_number_of_servers() {
        let cases = [(1, 1, 1, 1), (2, 1, 2, 2), (3, 1, 3, 2), (4, 2, 4, 3)];
        for (servers, k, n, min) in cases {
            let c = config(servers);
            c.validate().unwrap();
            assert_eq!(c.redundancy().unwrap(), Redundancy::new(k, n).unwrap());
            assert_eq!(c.min_shards(), min, "{servers} servers");
        }
        let c = config(10);
        assert_eq!(c.redundancy().unwrap(), Redundancy::new(4, 6).unwrap());
        assert_eq!(c.min_shards(), 5);
        assert_eq!(c.connect_timeout(), Duration::from_secs(3));
        assert_eq!(c.request_timeout(), Duration::from_secs(30));
        assert_eq!(c.ping_interval(), Some(Duration::from_secs(1)));
        assert_eq!(c.window, 8);
        assert_eq!(c.inline_max, 4096);
        assert_eq!(c.quic_congestion, Congestion::Bbr);
        assert_eq!(c.node_ids().len(), 10);
    }

    #[test]
    fn explicit_redundancy_and_min_shards() {
        let mut c = config(5);
        c.data = Some(3);
        assert_eq!(c.redundancy().unwrap(), Redundancy::new(3, 5).unwrap());
        c.total = Some(4);
        c.data = None;
        assert_eq!(c.redundancy().unwrap(), Redundancy::new(2, 4).unwrap());
        c.min_shards = Some(2);
        c.validate().unwrap();
        assert_eq!(c.min_shards(), 2);
        c.data = Some(4);
        c.min_shards = None;
        assert_eq!(c.min_shards(), 4, "k + 1 clamped to n");
    }

    #[test]
    fn written_file_parses_back_to_the_same_settings() {
        let mut explicit = config(4);
        explicit.user = "bob \"the\" builder".into();
        explicit.data = Some(2);
        explicit.total = Some(3);
        explicit.min_shards = Some(2);
        explicit.connect_timeout_secs = 5;
        explicit.request_timeout_secs = 90;
        explicit.ping_interval_ms = 0;
        explicit.window = 16;
        explicit.quic_congestion = Congestion::Cubic;
        explicit.scan_command = Some(vec!["clamdscan".into(), "--fdpass".into()]);
        let mut mixed = config(3);
        mixed.servers[1] = "https://[::1]:7443"
            .parse::<NodeAddress>()
            .unwrap()
            .with_node_id(NodeId(Id::of(b"h")));
        mixed.servers[2] = "quic://node.example:7002"
            .parse::<NodeAddress>()
            .unwrap()
            .with_node_id(NodeId(Id::of(b"q")));
        for c in [config(4), config(1), explicit, mixed] {
            let text = c.to_toml();
            assert_eq!(ClientConfig::parse(&text).unwrap(), c, "{text}");
            for key in [
                "user",
                "servers",
                "data",
                "total",
                "min_shards",
                "connect_timeout_secs",
                "request_timeout_secs",
                "ping_interval_ms",
                "window",
                "quic_congestion",
                "scan_command",
            ] {
                assert!(
                    text.contains(&format!("\n{key} = "))
                        || text.contains(&format!("\n# {key} = ")),
                    "{key} missing from\n{text}"
                );
            }
        }
        // Defaults are shown with the value they give.
        let text = config(4).to_toml();
        assert!(text.contains("\n# data = 2\n"), "{text}");
        assert!(text.contains("\n# total = 4\n"), "{text}");
        assert!(text.contains("\n# min_shards = 3\n"), "{text}");
    }

    #[test]
    fn minimal_file_takes_the_defaults() {
        let text = format!("user = \"alice\"\nservers = [\"{}\"]\n", server(1));
        let c = ClientConfig::parse(&text).unwrap();
        assert_eq!(c, ClientConfig::new("alice", vec![server(1)]));
    }

    #[test]
    fn refuses_typos_and_impossible_values() {
        let ok = format!(
            "user = \"alice\"\nservers = [\"{}\", \"{}\"]\n",
            server(1),
            server(2)
        );
        assert!(ClientConfig::parse(&ok).is_ok());
        assert!(matches!(
            ClientConfig::parse(&format!("{ok}windows = 3\n")),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            ClientConfig::parse(&format!("{ok}data = -1\n")),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            ClientConfig::parse("user = \"a\"\nservers = [\"ftp://h:1\"]\n"),
            Err(ConfigError::Parse(_))
        ));
        match ClientConfig::parse(&format!("{ok}quic_congestion = \"reno\"\n")) {
            Err(ConfigError::Parse(e)) => assert!(e.to_string().contains("bbr"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(ClientConfig::parse(&format!("{ok}quic_congestion = \"bbr\"\n")).is_ok());

        let check = |f: &dyn Fn(&mut ClientConfig)| {
            let mut c = config(4);
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(matches!(check(&|c| c.user.clear()), ConfigError::NoUser));
        assert!(matches!(
            check(&|c| c.servers.clear()),
            ConfigError::NoServers
        ));
        assert!(matches!(
            check(&|c| c.servers[2].node_id = None),
            ConfigError::MissingNodeId { server } if server.port == 7002
        ));
        let err = check(&|c| {
            let https = format!("https://localhost:9000#{}", NodeId(Id::of(&[1])));
            c.servers.push(https.parse().unwrap());
        });
        assert!(matches!(
            &err,
            ConfigError::DuplicateNode { first, second, .. }
                if first == "tcp://127.0.0.1:7001" && second == "https://localhost:9000"
        ));
        assert!(err.to_string().contains("list each node once"), "{err}");
        assert!(matches!(
            check(&|c| c.data = Some(5)),
            ConfigError::Redundancy(_)
        ));
        assert!(matches!(
            check(&|c| c.data = Some(0)),
            ConfigError::Redundancy(_)
        ));
        assert!(matches!(
            check(&|c| c.total = Some(5)),
            ConfigError::MoreShardsThanServers {
                total: 5,
                servers: 4
            }
        ));
        assert!(matches!(
            check(&|c| c.min_shards = Some(1)),
            ConfigError::MinShards {
                min_shards: 1,
                data: 2,
                total: 4
            }
        ));
        assert!(matches!(
            check(&|c| c.min_shards = Some(5)),
            ConfigError::MinShards { .. }
        ));
        assert!(matches!(
            check(&|c| c.connect_timeout_secs = 0),
            ConfigError::Timeout {
                field: "connect_timeout_secs"
            }
        ));
        assert!(matches!(
            check(&|c| c.request_timeout_secs = 0),
            ConfigError::Timeout {
                field: "request_timeout_secs"
            }
        ));
        assert!(matches!(
            check(&|c| c.ping_interval_ms = MIN_PING_INTERVAL_MS - 1),
            ConfigError::PingInterval {
                ping_interval_ms: 499,
                ..
            }
        ));
        let mut off = config(4);
        off.ping_interval_ms = 0;
        off.validate().unwrap();
        assert_eq!(off.ping_interval(), None);
        assert_eq!(off.client_options().ping_interval, None);
        off.ping_interval_ms = MIN_PING_INTERVAL_MS;
        off.validate().unwrap();
        let options = off.client_options();
        assert_eq!(options.ping_interval, Some(Duration::from_millis(500)));
        assert_eq!(options.request_timeout, off.request_timeout());
        assert_eq!(options.connect_timeout, off.connect_timeout());
        assert_eq!(options.quic_congestion, off.quic_congestion);
        assert!(matches!(
            check(&|c| c.window = 0),
            ConfigError::Window { window: 0, .. }
        ));
        assert!(matches!(
            check(&|c| c.window = MAX_WINDOW + 1),
            ConfigError::Window { .. }
        ));
        assert!(matches!(
            check(&|c| c.inline_max = crate::index::MAX_INLINE_LEN + 1),
            ConfigError::InlineMax { .. }
        ));
        assert!(matches!(
            check(&|c| c.scan_command = Some(Vec::new())),
            ConfigError::ScanCommand
        ));
        assert!(matches!(
            check(&|c| c.scan_command = Some(vec![" ".into()])),
            ConfigError::ScanCommand
        ));
        let many = config(33);
        let mut too_many = many.clone();
        too_many.total = Some(33);
        assert!(matches!(
            too_many.validate(),
            Err(ConfigError::Redundancy(_))
        ));
    }
}
