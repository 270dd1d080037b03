//! Timing tunables. The `seed` profile keeps the seed's defaults (IBM VMRM: host failure
//! detection 90 s, VM heartbeat 10 s, HM heartbeat 30 s, FDE poll every 20 s); the `fast`
//! profile scales them down for the local datacenter, demos and tests, which name it; a node
//! configuration without `profile` runs the seed's. They are values passed to the parts that
//! need them, never globals.
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// The seed's timing: what a node runs with when its configuration names no profile.
    #[default]
    Seed,
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// VM agent → host monitor heartbeat period (seed: 10 s).
    pub vm_heartbeat: Duration,
    /// A host monitor marks a VM MISSING after this silence (seed: ~19 s, just under two periods).
    pub vm_missing_after: Duration,
    /// Host monitor → HSDB liveness heartbeat (seed: 30 s).
    pub hm_heartbeat: Duration,
    /// A VIOS whose HM has not heartbeaten for this long is reported DOWN / not responsive.
    pub vios_down_after: Duration,
    /// Sleep between two FDE requests (seed: 20 s after the previous one finished).
    pub fde_poll: Duration,
    /// `host_failure_detection_time`: both VIOSs unhealthy this long → host failure (seed: 90 s).
    pub host_failure_detection_time: Duration,
    /// VMthreshold: VMFDT = host detection time + k × this (seed: 50 s, hard-coded there).
    pub vm_threshold: Duration,
    /// A partition `Migrating - Running` this long with missing heartbeats is a hung LPM (seed: 24 h).
    pub lpm_hang_after: Duration,
    /// Deadline of one remote call between nodes.
    pub rpc_deadline: Duration,
    /// How often an HMC refreshes its inventory of the hosts it manages.
    pub hmc_refresh: Duration,
    /// How often the controller polls an HMC job.
    pub job_poll: Duration,
    /// How often a server unit writes its alive message to the HSDB (seed 001: the monitor
    /// system's "regular activity messages" on the CRD; the seed gives no interval).
    pub su_alive: Duration,
    /// An SU that wrote no alive message for this long is not running, as far as its SU
    /// cluster can tell: its VM definitions may be recovered (seed: "the intended time").
    pub su_alive_lease: Duration,
    /// After a VM's relocation failed, the FDE tries again after this, then after twice as long
    /// each time (vSphere HA's restart retries: +2 min, then doubling; not in the seeds).
    pub relocation_retry: Duration,
    /// A DR primary SAN accepts its consistency group's writes only while its role was
    /// confirmed (by its peer SAN or the HSDB) this recently; an unplanned move waits this long
    /// before the new primary accepts writes (not in the seeds).
    pub replication_lease: Duration,
}

impl Timing {
    pub fn of(profile: ProfileName) -> Self {
        match profile {
            ProfileName::Seed => Self {
                vm_heartbeat: Duration::from_secs(10),
                vm_missing_after: Duration::from_secs(19),
                hm_heartbeat: Duration::from_secs(30),
                vios_down_after: Duration::from_secs(65),
                fde_poll: Duration::from_secs(20),
                host_failure_detection_time: Duration::from_secs(90),
                vm_threshold: Duration::from_secs(50),
                lpm_hang_after: Duration::from_secs(86_400),
                rpc_deadline: Duration::from_secs(10),
                hmc_refresh: Duration::from_secs(30),
                job_poll: Duration::from_secs(1),
                su_alive: Duration::from_secs(30),
                su_alive_lease: Duration::from_secs(90),
                relocation_retry: Duration::from_secs(120),
                replication_lease: Duration::from_secs(30),
            },
            ProfileName::Fast => Self {
                vm_heartbeat: Duration::from_millis(200),
                vm_missing_after: Duration::from_millis(450),
                hm_heartbeat: Duration::from_millis(200),
                vios_down_after: Duration::from_millis(700),
                fde_poll: Duration::from_millis(200),
                host_failure_detection_time: Duration::from_millis(1500),
                vm_threshold: Duration::from_millis(1000),
                lpm_hang_after: Duration::from_secs(120),
                rpc_deadline: Duration::from_millis(1500),
                hmc_refresh: Duration::from_millis(500),
                job_poll: Duration::from_millis(50),
                su_alive: Duration::from_millis(300),
                su_alive_lease: Duration::from_millis(1500),
                relocation_retry: Duration::from_secs(1),
                replication_lease: Duration::from_secs(2),
            },
        }
    }
}
