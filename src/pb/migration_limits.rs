//! A migration request's limits into the convergence rule's: defaults filled in, the policy's
//! number checked (the controller checks a request with this before anything runs; the source
//! unit converts the same way when its job starts).
use crate::error::{Result, VmrmError};
use crate::logic::migration::convergence::{
    ConvergencePolicy, DEFAULT_MAX_DOWNTIME, DEFAULT_MAX_ROUNDS, PrecopyLimits,
};
use crate::pb;
use std::time::Duration;

/// The limits of a request, defaults filled in, and the bandwidth cap in bytes a second.
pub fn limits_of(l: Option<&pb::MigrationLimits>) -> Result<(PrecopyLimits, Option<u64>)> {
    let l = l.cloned().unwrap_or_default();
    let policy = match pb::ConvergencePolicy::try_from(l.policy) {
        Ok(pb::ConvergencePolicy::Abort) => ConvergencePolicy::Abort,
        Ok(pb::ConvergencePolicy::Force) => ConvergencePolicy::Force,
        Err(_) => return Err(VmrmError::invalid(format!("policy {} is not abort or force", l.policy))),
    };
    let max_downtime = match l.max_downtime_ms {
        0 => DEFAULT_MAX_DOWNTIME,
        ms => Duration::from_millis(ms.into()),
    };
    let max_rounds = if l.max_rounds == 0 { DEFAULT_MAX_ROUNDS } else { l.max_rounds };
    let bandwidth = (l.bandwidth_mb_s > 0).then_some(u64::from(l.bandwidth_mb_s) * 1_000_000);
    Ok((PrecopyLimits { max_downtime, max_rounds, policy }, bandwidth))
}
