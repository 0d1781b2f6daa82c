//! `cairn init`: write the client config, pinning every server, and say
//! which nodes accept the user.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cairn_client::{Client, ClientConfig};
use cairn_net::NodeId;
use serde::Serialize;

use super::config_file;
use super::error::usage;
use super::login::{Login, logins};
use super::options::Options;
use super::output::plural;
use super::trust::{trust_on_first_use, unpinned};
use crate::cli::InitArgs;

/// `init`, its arguments checked.
#[derive(Debug)]
pub struct InitOptions {
    /// The config file to write.
    path: PathBuf,
    /// The config to write: valid but for the servers given without an id
    /// (allowed with --trust-on-first-use), which are pinned before
    /// writing.
    config: ClientConfig,
    /// Replace an existing config file.
    force: bool,
}

impl InitOptions {
    /// Checks everything that needs no connection.
    pub fn resolve(args: InitArgs, options: &Options) -> Result<Self> {
        let path = options.config.path()?.to_owned();
        if args.user.is_empty() {
            return Err(usage("--user is empty: name the user as on the nodes"));
        }
        let loose = unpinned(&args.servers);
        if !loose.is_empty() && !args.trust_on_first_use {
            return Err(usage(format!(
                "{} {} no #NODE_ID: give each server as `cairn node init` or `cairn node address` \
                 printed it (URL#NODE_ID), or pass --trust-on-first-use to record the id the node shows",
                loose.join(", "),
                if loose.len() == 1 { "has" } else { "have" }
            )));
        }
        let mut config = ClientConfig::new(args.user, args.servers);
        config.data = args.data.map(usize::from);
        config.total = args.total.map(usize::from);
        config.min_shards = args.min_shards.map(usize::from);
        // Check everything but the ids before connecting anywhere: stand-in
        // ids for the servers still to be asked.
        let mut probe = config.clone();
        for (i, server) in probe.servers.iter_mut().enumerate() {
            if server.node_id.is_none() {
                let stand_in = cairn_core::Id::of(format!("unpinned server {i}").as_bytes());
                server.node_id = Some(NodeId(stand_in));
            }
        }
        probe
            .validate()
            .map_err(|e| usage(e.to_string().replace("client config: ", "")))?;
        Ok(Self {
            path,
            config,
            force: args.force,
        })
    }
}

#[derive(Serialize)]
struct InitJson {
    config: String,
    user: String,
    servers: Vec<String>,
    data: usize,
    total: usize,
    min_shards: usize,
    trusted: Vec<String>,
    nodes: Vec<NodeLoginJson>,
}

#[derive(Serialize)]
struct NodeLoginJson {
    address: String,
    login: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs `init`.
pub async fn run(options: &Options, init: InitOptions) -> Result<()> {
    let InitOptions {
        path,
        mut config,
        force,
    } = init;
    let out = &options.output;
    if !force && path.exists() {
        return Err(config_file::already_exists(&path));
    }

    let (servers, trusted) =
        trust_on_first_use(config.servers.clone(), &config.client_options()).await?;
    for server in &trusted {
        let line = format!(
            "trusted {server} on first use: check that `cairn node address` on that node prints it"
        );
        // Shown even with --quiet: this is what the user must check.
        if out.json {
            eprintln!("{line}");
        } else {
            out.data(&line)?;
        }
    }
    config.servers = servers;
    config
        .validate()
        .with_context(|| "the servers given".to_owned())?;
    config_file::write(&path, &config, force)?;
    let redundancy = config.redundancy()?;
    out.note(&format!(
        "wrote {}: user {}, {}, {} (a put needs {} of each chunk stored)",
        path.display(),
        config.user,
        plural(config.servers.len(), "server", ""),
        redundancy,
        plural(config.min_shards(), "shard", ""),
    ))?;

    // Check the login where a passphrase is at hand; never fail init for it.
    let passphrase = options.passphrase.if_at_hand(&config.user)?;
    let mut nodes = Vec::new();
    match passphrase {
        Some(passphrase) => {
            let client = Client::open(&config, passphrase.as_bytes()).await?;
            for (address, login) in logins(&client).await {
                let (status, error) = match login {
                    Login::Accepted => {
                        out.note(&format!("{} accepts {}", address.url(), config.user))?;
                        ("accepted", None)
                    }
                    Login::Refused => {
                        out.warn(&format!(
                            "{} refused the login of {}: wrong passphrase, or no such user there \
                             (`cairn node user add` adds one)",
                            address.url(),
                            config.user
                        ));
                        ("refused", None)
                    }
                    Login::Unreachable(why) => {
                        out.warn(&format!("cannot reach {why}"));
                        ("unreachable", Some(why))
                    }
                };
                nodes.push(NodeLoginJson {
                    address: address.to_string(),
                    login: status,
                    error,
                });
            }
            client.close().await;
        }
        None => {
            out.note(
                "logins not checked: set $CAIRN_PASSPHRASE or pass --passphrase-file to check them",
            )?;
            nodes.extend(config.servers.iter().map(|s| NodeLoginJson {
                address: s.to_string(),
                login: "unchecked",
                error: None,
            }));
        }
    }
    if out.json {
        out.json(&InitJson {
            config: path.display().to_string(),
            user: config.user.clone(),
            servers: config.servers.iter().map(ToString::to_string).collect(),
            data: redundancy.data(),
            total: redundancy.total(),
            min_shards: config.min_shards(),
            trusted: trusted.iter().map(ToString::to_string).collect(),
            nodes,
        })?;
    }
    Ok(())
}
