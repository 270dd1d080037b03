//! The controller's way to the SAN: the fence. Before a VM starts anywhere else, its disk's
//! reservation goes to the target host, under the VM lock's epoch as fencing token, so the old
//! host's writes fail and an operation superseded by a newer one cannot fence at all.
use crate::domain::HostRecord;
use crate::error::Result;
use crate::transport::ChannelPool;
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
}
