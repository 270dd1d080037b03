//! Where an HSDB member is reached, as the Raft membership records it: its API endpoint (table
//! reads and writes, status — every node and person may call there, by role) and its peer
//! endpoint, a port of its own that serves nothing but Raft between members. Keeping the two
//! apart lets the peer port be firewalled to the members' network and gives Raft's large
//! messages a server, limits and a gate of their own.
use serde::{Deserialize, Serialize};
use std::fmt;

/// One member's two endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Table API and status (`vmrm.v1.Hsdb`), on the node's shared port.
    pub api: String,
    /// Raft between members (`vmrm.v1.RaftPeer`), on `[hsdb] peer_listen`.
    pub peer: String,
}

impl Member {
    pub fn new(api: impl Into<String>, peer: impl Into<String>) -> Self {
        Self { api: api.into(), peer: peer.into() }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (peer {})", self.api, self.peer)
    }
}
