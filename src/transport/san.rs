//! The SAN's client side: every fence and every reservation move is one persistent-reservation
//! preempt (SCSI-3 PR's PREEMPT), whoever asks — the controller's fence before a restart, a
//! migration target taking the disk over, a migration source taking it back on rollback.
use crate::error::Result;
use crate::pb;
use crate::transport::{ChannelPool, deadline};
use std::time::Duration;

/// Gives `disk`'s reservation to `key` (held by `owner`) with fencing token `fence`; the SAN
/// refuses a token older than one it has seen for the disk.
pub async fn preempt(
    pool: &ChannelPool,
    san: &str,
    (disk, key, owner): (&str, u64, &str),
    fence: u64,
    timeout: Duration,
) -> Result<()> {
    let req = pb::PreemptRequest { disk: disk.to_string(), key, owner: owner.to_string(), fence };
    pb::san_client::SanClient::new(pool.get(san)?).preempt(deadline(req, timeout)).await?;
    Ok(())
}
