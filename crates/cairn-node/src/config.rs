//! `node.toml`: a node's settings.
//!
//! `cairn node init` writes the file with every setting and its default,
//! each with a comment; an operator edits it and restarts the node.
//! Unknown settings are refused, so a typo does not pass silently; a
//! setting missing from the file takes its default, so files written by an
//! older cairn still load.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use cairn_net::quic::Congestion;
use cairn_net::{NodeAddress, Scheme};
use serde::{Deserialize, Serialize};

/// A node's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Addresses served: `tcp://`, `https://` and `quic://` URLs with a
    /// host and a port.
    pub listen: Vec<NodeAddress>,
    /// Whether shards can be read without logging in. Shard ids are
    /// unguessable hashes of ciphertext, so this reveals nothing without
    /// the keys. Default: true.
    pub public_read: bool,
    /// Most connections served at once; more are refused. Default: 1024.
    pub max_connections: usize,
    /// A connection with no request for this long is closed. Default: 300.
    pub idle_timeout_secs: u64,
    /// A request must arrive whole within this many seconds of its first
    /// byte, which is what stops a client trickling a byte a second.
    /// Default: 60.
    pub request_timeout_secs: u64,
    /// On SIGINT or SIGTERM, requests in flight get this long to finish.
    /// Default: 10.
    pub shutdown_grace_secs: u64,
    /// Largest shard accepted. Default: 64M (the largest shard cairn makes).
    pub max_shard_size: Size,
    /// Request bodies held in memory at once, over all connections; a
    /// request that would exceed it waits. Default: 512M.
    pub body_memory: Size,
    /// Flush every shard and database commit to disk before acknowledging
    /// it. Turning it off risks losing acknowledged data on a power loss.
    /// Default: true.
    pub sync: bool,
    /// Read every shard back from the disk after writing it, and refuse the
    /// put if the disk returned other bytes. Costs one read per write.
    /// Default: true.
    pub verify_writes: bool,
    /// Append new shards to segment files (`DIR/segments/`) instead of
    /// writing one file each: fewer files, flushes shared by concurrent
    /// puts (issue 17). Shards of both layouts are read whatever this
    /// says; `false` keeps writing new shards as files under
    /// `DIR/shards/`. Default: true (a `node.toml` without the key gets
    /// segments).
    pub segments: bool,
    /// Read rate of the background scrub, per second. Default: 50M
    /// (50 MiB/s).
    pub scrub_rate: Size,
    /// Seconds from the end of one full scrub to the start of the next; 0
    /// turns the background scrub off. Default: 604800 (a week).
    pub scrub_interval_secs: u64,
    /// Congestion controller of what the node sends over `quic://` (the
    /// answers to gets): `bbr` or `cubic`. Default: `bbr`, which keeps
    /// about half the clean rate on links that lose packets at random (Wi-Fi,
    /// long mobile paths), where Cubic keeps a few percent (see
    /// `cairn_net::quic`).
    pub quic_congestion: Congestion,
    /// Rate of the background migration of shard files into segments,
    /// which a node with [`segments`](Self::segments) on runs at start-up
    /// while shard files remain, in bytes of shards moved per second.
    /// Default: 50M (50 MiB/s).
    pub migrate_rate: Size,
    /// Seconds between background compactions of the segments; 0 turns
    /// them off. Default: 3600 (an hour). See [`crate::maintenance`].
    pub compact_interval_secs: u64,
    /// The share of a segment, in percent, that must be dead (dropped or
    /// damaged shards) for a compaction to rewrite it; 100 deletes only
    /// segments with nothing live. From 1 to 100. Default: 50.
    pub compact_dead_percent: u8,
    /// Rate of the background compaction, in bytes of live shards copied
    /// per second. Default: 50M (50 MiB/s).
    pub compact_rate: Size,
}

/// Default [`NodeConfig::compact_interval_secs`]: an hour.
pub const DEFAULT_COMPACT_INTERVAL_SECS: u64 = 60 * 60;

/// Default [`NodeConfig::scrub_interval_secs`]: a week.
pub const DEFAULT_SCRUB_INTERVAL_SECS: u64 = 7 * 24 * 60 * 60;

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            public_read: true,
            max_connections: 1024,
            idle_timeout_secs: 300,
            request_timeout_secs: 60,
            shutdown_grace_secs: 10,
            max_shard_size: Size(cairn_core::erasure::MAX_SHARD_LEN as u64),
            body_memory: Size(512 * 1024 * 1024),
            sync: true,
            verify_writes: true,
            segments: true,
            scrub_rate: Size(50 * 1024 * 1024),
            scrub_interval_secs: DEFAULT_SCRUB_INTERVAL_SECS,
            quic_congestion: Congestion::Bbr,
            migrate_rate: Size(50 * 1024 * 1024),
            compact_interval_secs: DEFAULT_COMPACT_INTERVAL_SECS,
            compact_dead_percent: 50,
            compact_rate: Size(50 * 1024 * 1024),
        }
    }
}

/// Why a configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not parse.
    #[error("node.toml: {0}")]
    Parse(#[from] toml::de::Error),
    /// A setting has an impossible value.
    #[error("node.toml: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Parses and checks `node.toml`.
    ///
    /// # Errors
    /// [`ConfigError`] for a syntax error, an unknown setting or an
    /// impossible value.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first impossible value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.listen.is_empty() {
            return invalid("listen: give at least one address".into());
        }
        for address in &self.listen {
            if address.node_id.is_some() {
                return invalid(format!(
                    "listen: {address} carries a node id; listen addresses are plain URLs"
                ));
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1".into());
        }
        if self.request_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return invalid("timeouts must be at least 1 second".into());
        }
        let max = cairn_core::erasure::MAX_SHARD_LEN as u64;
        if self.max_shard_size.0 == 0 || self.max_shard_size.0 > max {
            return invalid(format!(
                "max_shard_size must be between 1 and {} ({max} bytes)",
                Size(max)
            ));
        }
        if self.body_memory.0 < self.max_shard_size.0 {
            return invalid("body_memory must be at least max_shard_size".into());
        }
        if self.scrub_rate.0 == 0 {
            return invalid(
                "scrub_rate must be at least 1 (to turn the background scrub off, set scrub_interval_secs = 0)"
                    .into(),
            );
        }
        if self.migrate_rate.0 == 0 {
            return invalid(
                "migrate_rate must be at least 1 (the migration cannot be turned off while segments = true; set segments = false to keep shard files)"
                    .into(),
            );
        }
        if self.compact_rate.0 == 0 {
            return invalid(
                "compact_rate must be at least 1 (to turn background compaction off, set compact_interval_secs = 0)"
                    .into(),
            );
        }
        if !(1..=100).contains(&self.compact_dead_percent) {
            return invalid(format!(
                "compact_dead_percent must be between 1 and 100, not {}",
                self.compact_dead_percent
            ));
        }
        Ok(())
    }

    /// The file `cairn node init` writes: every setting, commented.
    pub fn to_toml(&self) -> String {
        let listen: Vec<String> = self.listen.iter().map(|a| format!("\"{a}\"")).collect();
        format!(
            r#"# cairn node settings. Every setting is listed with its value; the
# comments give the defaults. Restart the node after editing.

# Addresses to serve, as scheme://host:port. Schemes: tcp:// (cairn's
# protocol over TLS 1.3), https:// (the REST API) and quic://.
listen = [{listen}]

# Whether shards can be read without logging in (default: true). Shard ids
# are hashes of ciphertext: reading one reveals nothing without the keys.
public_read = {public_read}

# Most connections served at once; more are refused (default: 1024).
max_connections = {max_connections}

# Seconds a connection may stay without a request before it is closed
# (default: 300).
idle_timeout_secs = {idle}

# Seconds within which a request must arrive whole once it has started
# (default: 60). This is what stops a client trickling a byte a second.
request_timeout_secs = {request}

# Seconds requests in flight get to finish on SIGINT or SIGTERM (default: 10).
shutdown_grace_secs = {grace}

# Largest shard accepted (default: "64M"). Sizes take K, M, G, T (powers of 1024).
max_shard_size = "{max_shard}"

# Request bodies held in memory at once over all connections; a request that
# would exceed it waits (default: "512M").
body_memory = "{body_memory}"

# Flush every shard and database commit to disk before acknowledging it
# (default: true). false risks losing acknowledged data on a power loss.
sync = {sync}

# Read every shard back from the disk after writing it, before acknowledging
# it, and refuse the put if the disk returned other bytes (default: true).
# Costs one read of every shard written.
verify_writes = {verify_writes}

# Append new shards to segment files in DIR/segments/ instead of writing one
# file per shard under DIR/shards/ (default: true; false keeps the old
# layout for new shards). Shards of both layouts are read either way;
# `cairn node migrate` moves existing files over.
segments = {segments}

# The background scrub re-reads every shard, checks it against its hash,
# quarantines damaged ones and lists lost ones in the log and in
# `cairn node status`. Read rate per second (default: "50M"): 1 TiB takes
# about 6 hours at 50M.
scrub_rate = "{scrub_rate}"

# Seconds from the end of one full scrub to the start of the next (default:
# 604800, a week); 0 turns the background scrub off. A node never scrubbed
# starts its first pass an hour after it starts (or after this interval, if
# shorter). `cairn node scrub` runs a pass while the node is stopped.
scrub_interval_secs = {scrub_interval}

# Congestion control of what the node sends over quic:// (the answers to
# gets; each client sets its own for puts): "bbr" (default) or "cubic".
# "bbr" keeps about half the clean throughput on links that lose packets at
# random (Wi-Fi, long mobile or satellite paths), where "cubic" falls to a
# few percent.
quic_congestion = "{quic_congestion}"

# With segments = true, shard files left under DIR/shards/ are moved into
# segments in the background from start-up on, while the node serves; a kill
# at any moment loses nothing, and the next start goes on. Rate in bytes of
# shards moved per second (default: "50M"). `cairn node migrate` does the
# same while the node is stopped, at full speed.
migrate_rate = "{migrate_rate}"

# Dropped shards leave dead bytes in their segments. Every this many seconds
# (default: 3600, an hour; 0 turns it off) the node rewrites the segments in
# which at least compact_dead_percent of the bytes are dead (default: 50; 100
# only deletes segments with nothing live), copying their live shards at
# compact_rate per second (default: "50M") and then deleting them. The first
# compaction runs 5 minutes after start-up (or after the interval, if shorter).
compact_interval_secs = {compact_interval}
compact_dead_percent = {compact_dead_percent}
compact_rate = "{compact_rate}"
"#,
            listen = listen.join(", "),
            public_read = self.public_read,
            max_connections = self.max_connections,
            idle = self.idle_timeout_secs,
            request = self.request_timeout_secs,
            grace = self.shutdown_grace_secs,
            max_shard = self.max_shard_size,
            body_memory = self.body_memory,
            sync = self.sync,
            verify_writes = self.verify_writes,
            segments = self.segments,
            scrub_rate = self.scrub_rate,
            scrub_interval = self.scrub_interval_secs,
            quic_congestion = self.quic_congestion,
            migrate_rate = self.migrate_rate,
            compact_interval = self.compact_interval_secs,
            compact_dead_percent = self.compact_dead_percent,
            compact_rate = self.compact_rate,
        )
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The time between full scrubs, or `None` if the background scrub is
    /// off.
    pub fn scrub_interval(&self) -> Option<Duration> {
        (self.scrub_interval_secs > 0).then(|| Duration::from_secs(self.scrub_interval_secs))
    }

    /// The time between background compactions, or `None` if they are off.
    pub fn compact_interval(&self) -> Option<Duration> {
        (self.compact_interval_secs > 0).then(|| Duration::from_secs(self.compact_interval_secs))
    }

    /// The share of a segment that must be dead for a compaction to
    /// rewrite it, from 0.01 to 1.
    pub fn compact_dead_share(&self) -> f64 {
        f64::from(self.compact_dead_percent) / 100.0
    }

    /// The host names and addresses the node listens on, for its
    /// certificate.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.listen.iter().map(|a| a.host.clone()).collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The listen addresses of one transport.
    pub fn listeners(&self, scheme: Scheme) -> impl Iterator<Item = &NodeAddress> {
        self.listen.iter().filter(move |a| a.scheme == scheme)
    }
}

/// A size in bytes, written as a number with an optional unit: `500M`,
/// `20G`, `1T`, `4096`. Units are powers of 1024; `K`, `KB` and `KiB` mean
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// Why a string is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a size: write a number of bytes, or a number with K, M, G or T (e.g. 500M, 20G)"
)]
pub struct SizeError(String);

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| SizeError(s.to_owned()))?;
        let unit = unit.trim().to_ascii_uppercase();
        let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => return Err(SizeError(s.to_owned())),
        };
        number
            .checked_mul(1u64 << shift)
            .map(Size)
            .ok_or_else(|| SizeError(s.to_owned()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Size(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("500M".parse::<Size>().unwrap(), Size(500 << 20));
        assert_eq!("20G".parse::<Size>().unwrap(), Size(20 << 30));
        assert_eq!("20gib".parse::<Size>().unwrap(), Size(20 << 30));
        assert_eq!("4096".parse::<Size>().unwrap(), Size(4096));
        assert_eq!("1 T".parse::<Size>().unwrap(), Size(1 << 40));
        for bad in ["", "M", "-1", "1.5G", "12X", "99999999999T"] {
            assert!(bad.parse::<Size>().is_err(), "{bad}");
        }
        assert_eq!(Size(64 << 20).to_string(), "64M");
        assert_eq!(Size(1500).to_string(), "1500");
    }

    #[test]
    fn written_file_parses_back_to_the_same_settings() {
        let config = NodeConfig {
            listen: vec![
                "tcp://127.0.0.1:7001".parse().unwrap(),
                "https://127.0.0.1:7443".parse().unwrap(),
            ],
            ..NodeConfig::default()
        };
        let text = config.to_toml();
        assert_eq!(NodeConfig::parse(&text).unwrap(), config);
        // Every setting is in the file.
        for key in [
            "listen",
            "public_read",
            "max_connections",
            "idle_timeout_secs",
            "request_timeout_secs",
            "shutdown_grace_secs",
            "max_shard_size",
            "body_memory",
            "sync",
            "verify_writes",
            "segments",
            "scrub_rate",
            "scrub_interval_secs",
            "quic_congestion",
            "migrate_rate",
            "compact_interval_secs",
            "compact_dead_percent",
            "compact_rate",
        ] {
            assert!(text.contains(&format!("\n{key} = ")), "{key}");
        }
    }

    #[test]
    fn refuses_typos_and_impossible_values() {
        let ok = "listen = [\"tcp://127.0.0.1:1\"]\n";
        assert!(NodeConfig::parse(ok).is_ok());
        assert!(NodeConfig::parse(&format!("{ok}pubic_read = false\n")).is_err());
        assert!(NodeConfig::parse("listen = []\n").is_err());
        assert!(NodeConfig::parse(&format!("{ok}max_shard_size = \"1T\"\n")).is_err());
        assert!(NodeConfig::parse("listen = [\"ftp://h:1\"]\n").is_err());
        assert!(NodeConfig::parse(&format!("{ok}scrub_rate = 0\n")).is_err());
        let err = NodeConfig::parse(&format!("{ok}quic_congestion = \"reno\"\n")).unwrap_err();
        assert!(err.to_string().contains("cubic"), "{err}");
        assert!(NodeConfig::parse(&format!("{ok}quic_congestion = \"BBR\"\n")).is_err());
    }

    /// The maintenance settings: defaults when absent (older files), each
    /// written back, and impossible values refused with the setting named.
    #[test]
    fn maintenance_settings_default_round_trip_and_are_checked() {
        let ok = "listen = [\"tcp://127.0.0.1:1\"]\n";
        let config = NodeConfig::parse(ok).unwrap();
        assert_eq!(config.migrate_rate, Size(50 << 20));
        assert_eq!(config.compact_interval(), Some(Duration::from_secs(3600)));
        assert_eq!(config.compact_dead_share(), 0.5);
        assert_eq!(config.compact_rate, Size(50 << 20));

        let set = NodeConfig::parse(&format!(
            "{ok}migrate_rate = \"1M\"\ncompact_interval_secs = 0\ncompact_dead_percent = 80\ncompact_rate = 4096\n"
        ))
        .unwrap();
        assert_eq!(set.migrate_rate, Size(1 << 20));
        assert_eq!(set.compact_interval(), None);
        assert_eq!(set.compact_dead_share(), 0.8);
        assert_eq!(set.compact_rate, Size(4096));
        assert_eq!(NodeConfig::parse(&set.to_toml()).unwrap(), set);

        for (bad, named) in [
            ("migrate_rate = 0", "migrate_rate"),
            ("compact_rate = \"0M\"", "compact_rate"),
            ("compact_dead_percent = 0", "compact_dead_percent"),
            ("compact_dead_percent = 101", "compact_dead_percent"),
            ("compact_dead_percent = 0.5", "compact_dead_percent"),
            ("compact_interval_secs = -1", "compact_interval_secs"),
        ] {
            let err = NodeConfig::parse(&format!("{ok}{bad}\n")).unwrap_err();
            assert!(err.to_string().contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn quic_congestion_is_bbr_unless_set() {
        let ok = "listen = [\"quic://127.0.0.1:1\"]\n";
        assert_eq!(
            NodeConfig::parse(ok).unwrap().quic_congestion,
            Congestion::Bbr
        );
        let cubic = NodeConfig::parse(&format!("{ok}quic_congestion = \"cubic\"\n")).unwrap();
        assert_eq!(cubic.quic_congestion, Congestion::Cubic);
        assert_eq!(NodeConfig::parse(&cubic.to_toml()).unwrap(), cubic);
    }

    /// A node.toml written before the scrub and write-verification
    /// settings existed must still load, with their defaults.
    #[test]
    fn a_file_without_the_newer_settings_loads_with_their_defaults() {
        let old = "listen = [\"tcp://127.0.0.1:7001\"]\npublic_read = true\nmax_connections = 1024\n\
                   idle_timeout_secs = 300\nrequest_timeout_secs = 60\nshutdown_grace_secs = 10\n\
                   max_shard_size = \"64M\"\nbody_memory = \"512M\"\nsync = true\n";
        let config = NodeConfig::parse(old).unwrap();
        assert!(config.verify_writes);
        assert_eq!(config.scrub_rate, Size(50 << 20));
        assert_eq!(
            config.scrub_interval(),
            Some(Duration::from_secs(7 * 24 * 3600))
        );
        let off = NodeConfig::parse(&format!("{old}scrub_interval_secs = 0\n")).unwrap();
        assert_eq!(off.scrub_interval(), None);
        // Segments, the default since issue 17, even for a file written
        // before the key existed; `segments = false` keeps shard files.
        assert!(config.segments);
        let files = NodeConfig::parse(&format!("{old}segments = false\n")).unwrap();
        assert!(!files.segments);
        assert_eq!(NodeConfig::parse(&files.to_toml()).unwrap(), files);
    }
}
