//! A transport that injects faults into the requests of another (as
//! mountpoint-s3's `failure_client` does for its object client).
//!
//! Faults are aimed by rules: "the next N requests of this kind to this
//! node fail this way". A rule applies to requests in the order they are
//! made and wears out after its count; the first rule that matches a
//! request is used. Requests no rule matches go to the inner transport
//! unchanged.
//!
//! ```
//! # async fn example() {
//! use cairn_client::transport::{FailureTransport, Fault, MemoryTransport, Op, Transport};
//! use cairn_core::Id;
//!
//! let nodes = FailureTransport::new(MemoryTransport::new(4));
//! // Node 1 loses the connection under its next two shard puts.
//! nodes.inject(1, Op::PutShard, 2, Fault::Break);
//! let shard = bytes::Bytes::from_static(b"shard");
//! assert!(nodes.put_shard(1, Id::of(&shard), shard.clone()).await.is_err());
//! assert!(nodes.put_shard(1, Id::of(&shard), shard.clone()).await.is_err());
//! assert!(nodes.put_shard(1, Id::of(&shard), shard.clone()).await.is_ok());
//! assert_eq!(nodes.fired(), 2);
//! # }
//! ```

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::client::{ChangePage, ClientError, Has, IndexEntry, IndexPage};
use cairn_net::protocol::{Dropped, ErrorBody, ErrorCode, FolderTag, IndexName, NodeInfo};
use cairn_net::{NodeAddress, NodeId};

use super::{NodeFailure, Op, Patience, Transport};

/// What goes wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The node cannot be reached: the connection is refused and nothing
    /// is sent.
    Unreachable,
    /// The connection breaks before the request reaches the node.
    Break,
    /// The node refuses the request with this code, doing nothing.
    Refuse(ErrorCode),
    /// The request reaches the node and is carried out, but the answer is
    /// lost on the way back (the connection breaks): the caller cannot
    /// tell that it succeeded.
    DropAnswer,
    /// No answer: the request fails as timed out after waiting this long.
    Timeout(Duration),
    /// The answer comes, this much later.
    Delay(Duration),
    /// A bit of the shard returned is flipped on the way (shard reads
    /// only): the transport's check finds it and the read fails as
    /// [`ClientError::Corrupt`], naming the id expected and the one found.
    CorruptShard,
}

#[derive(Debug)]
struct Rule {
    node: Option<usize>,
    op: Op,
    remaining: usize,
    fault: Fault,
}

/// Another transport, with faults injected; see the module docs.
#[derive(Debug)]
pub struct FailureTransport<T> {
    inner: T,
    rules: Mutex<Vec<Rule>>,
    fired: Mutex<Vec<(usize, Op, Fault)>>,
}

impl<T: Transport> FailureTransport<T> {
    /// `inner`, with no fault yet.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            rules: Mutex::new(Vec::new()),
            fired: Mutex::new(Vec::new()),
        }
    }

    /// The transport underneath.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Injects `fault` into the next `times` requests of kind `op` to node
    /// `node` (`usize::MAX` times: all of them).
    pub fn inject(&self, node: usize, op: Op, times: usize, fault: Fault) {
        self.add(Some(node), op, times, fault);
    }

    /// Injects `fault` into the next `times` requests of kind `op`, to
    /// whichever node.
    pub fn inject_any(&self, op: Op, times: usize, fault: Fault) {
        self.add(None, op, times, fault);
    }

    fn add(&self, node: Option<usize>, op: Op, times: usize, fault: Fault) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rule {
                node,
                op,
                remaining: times,
                fault,
            });
    }

    /// Drops every rule not yet worn out.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many faults fired so far.
    pub fn fired(&self) -> usize {
        self.fired.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The faults that fired, in order: node, request, fault.
    pub fn fired_faults(&self) -> Vec<(usize, Op, Fault)> {
        self.fired.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The fault for the next request of kind `op` to `node`, if a rule
    /// matches it (and is then worn by one).
    fn take(&self, node: usize, op: Op) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let rule = rules
            .iter_mut()
            .find(|r| r.op == op && r.remaining > 0 && r.node.is_none_or(|n| n == node))?;
        rule.remaining -= 1;
        let fault = rule.fault;
        rules.retain(|r| r.remaining > 0);
        drop(rules);
        self.fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((node, op, fault));
        Some(fault)
    }

    /// Runs `request` (a request of kind `op` to `node`), faults and all.
    async fn run<R>(
        &self,
        node: usize,
        op: Op,
        request: impl Future<Output = Result<R, ClientError>>,
    ) -> Result<R, ClientError> {
        match self.take(node, op) {
            None => request.await,
            Some(fault) => self.apply(node, fault, request).await,
        }
    }

    async fn apply<R>(
        &self,
        node: usize,
        fault: Fault,
        request: impl Future<Output = Result<R, ClientError>>,
    ) -> Result<R, ClientError> {
        match fault {
            Fault::Unreachable => Err(ClientError::Connect {
                address: self.inner.addresses()[node].to_string(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            }),
            Fault::Break => Err(ClientError::Broken("the link broke (injected)".into())),
            Fault::Refuse(code) => Err(ClientError::Node(ErrorBody::new(
                code,
                "refused (injected)",
            ))),
            Fault::DropAnswer => {
                let _ = request.await;
                Err(ClientError::Broken("the answer was lost (injected)".into()))
            }
            Fault::Timeout(after) => {
                tokio::time::sleep(after).await;
                Err(ClientError::Timeout {
                    what: "a request (injected)".into(),
                    after,
                })
            }
            Fault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                request.await
            }
            // Only a shard read has a shard to corrupt.
            Fault::CorruptShard => request.await,
        }
    }
}

impl<T: Transport> Transport for FailureTransport<T> {
    fn addresses(&self) -> &[NodeAddress] {
        self.inner.addresses()
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.inner.node_ids()
    }

    fn is_down(&self, node: usize) -> bool {
        self.inner.is_down(node)
    }

    fn down(&self) -> Vec<NodeFailure> {
        self.inner.down()
    }

    async fn login(&self, node: usize) -> Result<(), ClientError> {
        self.run(node, Op::Login, self.inner.login(node)).await
    }

    async fn info(&self, node: usize) -> Result<NodeInfo, ClientError> {
        self.run(node, Op::Info, self.inner.info(node)).await
    }

    async fn put_shard(&self, node: usize, id: Id, bytes: Bytes) -> Result<bool, ClientError> {
        self.run(node, Op::PutShard, self.inner.put_shard(node, id, bytes))
            .await
    }

    // `put_shard_unless_held` is the trait's: a question, then a put, each
    // through the faults above.

    async fn get_shard(
        &self,
        node: usize,
        id: Id,
        patience: Patience,
    ) -> Result<Bytes, ClientError> {
        let request = self.inner.get_shard(node, id, patience);
        match self.take(node, Op::GetShard) {
            None => request.await,
            Some(Fault::CorruptShard) => {
                let mut bytes = request.await?.to_vec();
                match bytes.first_mut() {
                    Some(first) => *first ^= 1,
                    None => bytes.push(0),
                }
                Err(ClientError::Corrupt {
                    expected: id,
                    actual: Id::of(&bytes),
                })
            }
            Some(fault) => self.apply(node, fault, request).await,
        }
    }

    async fn has_shards(&self, node: usize, ids: &[Id]) -> Result<Has, ClientError> {
        self.run(node, Op::HasShards, self.inner.has_shards(node, ids))
            .await
    }

    async fn drop_shards(&self, node: usize, ids: &[Id]) -> Result<Vec<Dropped>, ClientError> {
        self.run(node, Op::DropShards, self.inner.drop_shards(node, ids))
            .await
    }

    async fn put_index(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        let request = self.inner.put_index(node, name, version, data);
        self.run(node, Op::PutIndex, request).await
    }

    async fn get_index(
        &self,
        node: usize,
        name: IndexName,
        patience: Patience,
    ) -> Result<Option<IndexEntry>, ClientError> {
        let request = self.inner.get_index(node, name, patience);
        self.run(node, Op::GetIndex, request).await
    }

    async fn list_index(
        &self,
        node: usize,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        let request = self.inner.list_index(node, after, limit);
        self.run(node, Op::ListIndex, request).await
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
        let request = self
            .inner
            .put_entry(node, name, version, folder, summary_len, data);
        self.run(node, Op::PutEntry, request).await
    }

    async fn list_folder(
        &self,
        node: usize,
        folder: FolderTag,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        let request = self.inner.list_folder(node, folder, after, limit);
        self.run(node, Op::ListFolder, request).await
    }

    async fn changes(
        &self,
        node: usize,
        since: u64,
        folder: Option<FolderTag>,
        limit: u32,
    ) -> Result<ChangePage, ClientError> {
        let request = self.inner.changes(node, since, folder, limit);
        self.run(node, Op::Changes, request).await
    }

    async fn delete_index(&self, node: usize, name: IndexName) -> Result<Option<u64>, ClientError> {
        self.run(node, Op::DeleteIndex, self.inner.delete_index(node, name))
            .await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MemoryTransport;

    fn shard(n: u8) -> (Id, Bytes) {
        let bytes = Bytes::from(vec![n; 100]);
        (Id::of(&bytes), bytes)
    }

    #[tokio::test]
    async fn a_rule_wears_out_after_its_count_and_aims_at_its_node_and_request() {
        let nodes = FailureTransport::new(MemoryTransport::new(3));
        nodes.inject(1, Op::PutShard, 2, Fault::Refuse(ErrorCode::DiskFull));
        let (id, bytes) = shard(1);
        // Another node, another request: untouched.
        assert!(nodes.put_shard(0, id, bytes.clone()).await.is_ok());
        assert!(nodes.has_shards(1, &[id]).await.is_ok());
        for _ in 0..2 {
            let error = nodes.put_shard(1, id, bytes.clone()).await.unwrap_err();
            assert_eq!(error.code(), Some(ErrorCode::DiskFull));
        }
        assert!(!nodes.inner().holds(1, &id), "a refused put stores nothing");
        assert!(nodes.put_shard(1, id, bytes).await.unwrap());
        assert_eq!(
            nodes.fired_faults(),
            vec![
                (1, Op::PutShard, Fault::Refuse(ErrorCode::DiskFull)),
                (1, Op::PutShard, Fault::Refuse(ErrorCode::DiskFull))
            ]
        );
    }

    #[tokio::test]
    async fn a_dropped_answer_leaves_the_work_done() {
        let nodes = FailureTransport::new(MemoryTransport::new(2));
        nodes.inject_any(Op::PutShard, 1, Fault::DropAnswer);
        let (id, bytes) = shard(2);
        let error = nodes.put_shard(1, id, bytes.clone()).await.unwrap_err();
        assert!(matches!(error, ClientError::Broken(_)), "{error}");
        assert!(nodes.inner().holds(1, &id));
        // Sent again: the node had it.
        assert!(!nodes.put_shard(1, id, bytes).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupted_shard_is_refused_naming_both_ids() {
        let nodes = FailureTransport::new(MemoryTransport::new(1));
        let (id, bytes) = shard(3);
        nodes.put_shard(0, id, bytes.clone()).await.unwrap();
        nodes.inject(0, Op::GetShard, 1, Fault::CorruptShard);
        match nodes.get_shard(0, id, Patience::Wait).await {
            Err(ClientError::Corrupt { expected, actual }) => {
                assert_eq!(expected, id);
                assert_ne!(actual, id);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Only in flight: the node's copy is fine.
        assert_eq!(nodes.get_shard(0, id, Patience::Wait).await.unwrap(), bytes);
    }
}
