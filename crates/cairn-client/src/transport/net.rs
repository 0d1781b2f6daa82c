//! The real transport: `cairn_net` connections to the nodes, through a
//! [`Cluster`] and its retry rules (see [`crate::cluster`]).

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::client::{ChangePage, ClientError, Connection, Has, IndexEntry, IndexPage};
use cairn_net::protocol::{Dropped, FolderTag, IndexName, NodeInfo};
use cairn_net::{NodeAddress, NodeId};

use super::{NodeFailure, Patience, ShardPut, Transport};
use crate::cluster::Cluster;

/// [`Transport`] over real connections; every request goes through
/// [`Cluster::on`] (or [`Cluster::on_now`] in a [`Patience::Hurry`]), so a
/// broken link is retried on a fresh connection and a dead node is marked
/// down once.
#[derive(Debug)]
pub struct NetTransport {
    cluster: Cluster,
    addresses: Vec<NodeAddress>,
}

impl NetTransport {
    /// The transport of `cluster`.
    pub fn new(cluster: Cluster) -> Self {
        let addresses = (0..cluster.len())
            .map(|i| cluster.address(i).clone())
            .collect();
        Self { cluster, addresses }
    }

    /// The cluster underneath.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    async fn on<T, F, Fut>(&self, node: usize, patience: Patience, op: F) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        match patience {
            Patience::Wait => self.cluster.on(node, op).await,
            Patience::Hurry => self.cluster.on_now(node, op).await,
        }
    }
}

impl Transport for NetTransport {
    fn addresses(&self) -> &[NodeAddress] {
        &self.addresses
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.cluster.node_ids()
    }

    fn is_down(&self, node: usize) -> bool {
        self.cluster.is_down(node)
    }

    fn down(&self) -> Vec<NodeFailure> {
        self.cluster
            .down_nodes()
            .into_iter()
            .map(|(i, why)| NodeFailure::down(i, &self.addresses[i], why))
            .collect()
    }

    async fn login(&self, node: usize) -> Result<(), ClientError> {
        self.cluster.connection(node).await.map(drop)
    }

    async fn info(&self, node: usize) -> Result<NodeInfo, ClientError> {
        self.cluster
            .on(node, |c| async move { c.info().await })
            .await
    }

    async fn put_shard(&self, node: usize, id: Id, bytes: Bytes) -> Result<bool, ClientError> {
        self.cluster
            .on(node, |c| {
                let bytes = bytes.clone();
                async move { c.put_shard(&id, bytes).await }
            })
            .await
    }

    async fn put_shard_unless_held(
        &self,
        node: usize,
        id: Id,
        bytes: Bytes,
    ) -> Result<ShardPut, ClientError> {
        // One operation for the retry rule: after a break, the node is asked
        // again, and a shard it stored before the break is not sent again.
        self.cluster
            .on(node, |c| {
                let bytes = bytes.clone();
                async move {
                    if c.has_shards(&[id]).await?.mine[0] {
                        return Ok(ShardPut::Held);
                    }
                    let written = c.put_shard(&id, bytes).await?;
                    Ok(ShardPut::Sent { written })
                }
            })
            .await
    }

    async fn get_shard(
        &self,
        node: usize,
        id: Id,
        patience: Patience,
    ) -> Result<Bytes, ClientError> {
        self.on(node, patience, |c| async move { c.get_shard(&id).await })
            .await
    }

    async fn has_shards(&self, node: usize, ids: &[Id]) -> Result<Has, ClientError> {
        self.cluster
            .on(node, |c| async move { c.has_shards(ids).await })
            .await
    }

    async fn drop_shards(&self, node: usize, ids: &[Id]) -> Result<Vec<Dropped>, ClientError> {
        self.cluster
            .on(node, |c| async move { c.drop_shards(ids).await })
            .await
    }

    async fn put_index(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        self.cluster
            .on(node, |c| {
                let data = data.clone();
                async move { c.put_index(&name, version, data).await }
            })
            .await
    }

    async fn get_index(
        &self,
        node: usize,
        name: IndexName,
        patience: Patience,
    ) -> Result<Option<IndexEntry>, ClientError> {
        self.on(node, patience, |c| async move { c.get_index(&name).await })
            .await
    }

    async fn list_index(
        &self,
        node: usize,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        self.cluster
            .on(node, |c| async move {
                c.list_index(after.as_ref(), limit).await
            })
            .await
    }

    async fn put_entry(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        folder: FolderTag,
        summary_len: u32,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        self.cluster
            .on(node, |c| {
                let data = data.clone();
                async move {
                    c.put_entry(&name, version, &folder, summary_len, data)
                        .await
                }
            })
            .await
    }

    async fn list_folder(
        &self,
        node: usize,
        folder: FolderTag,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        self.cluster
            .on(node, |c| async move {
                c.list_folder(&folder, after.as_ref(), limit).await
            })
            .await
    }

    async fn changes(
        &self,
        node: usize,
        since: u64,
        folder: Option<FolderTag>,
        limit: u32,
    ) -> Result<ChangePage, ClientError> {
        self.cluster
            .on(node, |c| async move {
                c.changes(since, folder.as_ref(), limit).await
            })
            .await
    }

    async fn delete_index(&self, node: usize, name: IndexName) -> Result<Option<u64>, ClientError> {
        self.cluster
            .on(node, |c| async move { c.delete_index(&name).await })
            .await
    }

    async fn close(&self) {
        self.cluster.close().await;
    }
}
