//! An HSDB member's peer port (`[hsdb] peer_listen`): a gRPC server of its own that serves
//! nothing but Raft between members ([`RaftPeerService`]). The node's shared port no longer
//! carries Raft at all, so the peer port can be firewalled to the members' network, and
//! Raft's large messages (up to [`MAX_RAFT_MESSAGE`]) are accepted only here. The same gate
//! stands in front: only a certificate with the `hsdb` role gets through.
use crate::config::HsdbConfig;
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbNode, network::MAX_RAFT_MESSAGE, peer_service::RaftPeerService};
use crate::pb::raft_peer_server::RaftPeerServer;
use crate::transport::gate::Gate;
use std::future::Future;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// Calls one member may have open on another at once (Raft keeps a few per peer).
pub const MAX_STREAMS: u32 = 64;

/// Binds the peer port, before the member starts (a port in use fails the node at once).
pub async fn bind(node: &str, hsdb: &HsdbConfig) -> Result<TcpListener> {
    let addr = hsdb.peer_listen_addr()?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| VmrmError::unavailable(format!("node {node} cannot listen for HSDB peers on {addr}: {e}")))
}

/// Serves `member`'s Raft on `listener` with `server` until `until` resolves.
pub async fn serve(
    server: Server,
    listener: TcpListener,
    gate: Gate,
    member: HsdbNode,
    until: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let service = RaftPeerServer::new(RaftPeerService::new(member))
        .max_decoding_message_size(MAX_RAFT_MESSAGE)
        .max_encoding_message_size(MAX_RAFT_MESSAGE);
    // Nagle off: a Raft ack must not wait for the peer's delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    server
        .layer(gate)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, until)
        .await
        .map_err(|e| VmrmError::internal(format!("HSDB peer port failed: {e}")))
}
