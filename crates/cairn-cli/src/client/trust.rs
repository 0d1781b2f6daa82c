//! Servers given without `#NODE_ID` (`init` and `get --cap` with
//! `--trust-on-first-use`): connect, and pin each to the id it shows.

use anyhow::{Result, anyhow};
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::{NodeAddress, NodeId};

use super::error::node_failure;

/// The URLs of the servers given without a node id.
pub fn unpinned(servers: &[NodeAddress]) -> Vec<String> {
    servers
        .iter()
        .filter(|s| s.node_id.is_none())
        .map(NodeAddress::url)
        .collect()
}

/// Connects to each server without a node id and pins it to the id it
/// shows. Returns the servers, all pinned, and those that were trusted.
pub async fn trust_on_first_use(
    servers: Vec<NodeAddress>,
    options: &ClientOptions,
) -> Result<(Vec<NodeAddress>, Vec<NodeAddress>)> {
    let resolved = futures::future::join_all(servers.into_iter().map(|server| async move {
        if server.node_id.is_some() {
            return Ok((server, false));
        }
        let connection = Connection::connect(&server, options, true)
            .await
            .map_err(|e| anyhow!("cannot learn the node id of {}", node_failure(&server, &e)))?;
        let id: NodeId = connection.node_id();
        connection.close().await;
        Ok::<_, anyhow::Error>((server.with_node_id(id), true))
    }))
    .await;
    let mut all = Vec::new();
    let mut trusted = Vec::new();
    for result in resolved {
        let (server, was_trusted) = result?;
        if was_trusted {
            trusted.push(server.clone());
        }
        all.push(server);
    }
    Ok((all, trusted))
}
