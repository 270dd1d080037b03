//! The FDE's two direct looks at a node, besides what the host monitors report: a ping (a TCP
//! connection to its endpoint is accepted) and the final sanity check of a VIOS (it answers).
use crate::pb;
use crate::transport::{ChannelPool, deadline};
use std::time::Duration;

/// The longest either look waits, whatever the RPC deadline.
const LOOK_AT_MOST: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Reach {
    pool: ChannelPool,
    wait: Duration,
}

impl Reach {
    pub fn new(pool: ChannelPool, rpc_deadline: Duration) -> Self {
        Self { pool, wait: rpc_deadline.min(LOOK_AT_MOST) }
    }

    /// IP reachability of a node, the FDE's ping.
    pub async fn pingable(&self, endpoint: &str) -> bool {
        let connect = tokio::net::TcpStream::connect(endpoint);
        matches!(tokio::time::timeout(self.wait, connect).await, Ok(Ok(_)))
    }

    /// A direct check of one VIOS (the FDE's final sanity check): true if it answers.
    pub async fn vios_answers(&self, endpoint: &str) -> bool {
        let Ok(channel) = self.pool.get(endpoint) else {
            return false;
        };
        let req = deadline(pb::SanityRequest {}, self.wait);
        pb::vios_client::ViosClient::new(channel).sanity(req).await.is_ok()
    }
}
