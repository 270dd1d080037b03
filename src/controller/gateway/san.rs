//! The controller's way to the SAN: the fence. Before a VM starts anywhere else, its disk's
//! reservation goes to the target host, under the VM lock's epoch as fencing token, so the old
//! host's writes fail and an operation superseded by a newer one cannot fence at all. In a DR
//! cluster it also sets each site's SAN's part in a host group's replication.
use crate::domain::HostRecord;
use crate::error::Result;
use crate::pb;
use crate::transport::{ChannelPool, deadline};
use std::time::Duration;

#[derive(Clone)]
pub struct SanGateway {
    pool: ChannelPool,
    rpc_deadline: Duration,
}

impl SanGateway {
    pub fn new(pool: ChannelPool, rpc_deadline: Duration) -> Self {
        Self { pool, rpc_deadline }
    }

    /// Gives the disk's reservation to `host`, so every other host's writes fail. `fence` is the
    /// VM lock's epoch: the SAN refuses it once a newer operation preempted.
    pub async fn preempt_disk(&self, san: &str, disk: &str, host: &HostRecord, fence: u64) -> Result<()> {
        let holder = (disk, host.san_key, host.name.as_str());
        crate::transport::san::preempt(&self.pool, san, holder, fence, self.rpc_deadline).await
    }

    /// Sets a SAN's part in a consistency group (DR replication).
    pub async fn configure_group(&self, san: &str, group: pb::ConsistencyGroup) -> Result<pb::GroupStatus> {
        let mut client = pb::san_client::SanClient::new(self.pool.get(san)?);
        Ok(client.configure_group(deadline(group, self.rpc_deadline)).await?.into_inner())
    }

    /// A SAN's part in consistency group `name`; with an empty name, only the SAN's own name.
    pub async fn query_group(&self, san: &str, name: &str) -> Result<pb::GroupStatus> {
        let mut client = pb::san_client::SanClient::new(self.pool.get(san)?);
        let req = deadline(pb::GroupRef { name: name.to_string() }, self.rpc_deadline);
        Ok(client.query_group(req).await?.into_inner())
    }

    /// Takes (or, with `discard`, drops) a DR test's point-in-time copy at a group's secondary.
    pub async fn test_copy(&self, san: &str, group: &str, discard: bool) -> Result<pb::TestCopyReply> {
        let mut client = pb::san_client::SanClient::new(self.pool.get(san)?);
        let req = deadline(pb::TestCopyRequest { group: group.to_string(), discard }, self.rpc_deadline);
        Ok(client.test_copy(req).await?.into_inner())
    }
}
