//! The unit's VIOS partitions as its hypervisor sees them, so the HMC reports them as the seed's
//! HMC does and the FDE's rule "a VIOS shut down on purpose is healthy" has its evidence. A VIOS
//! is Running until the unit shuts it down on purpose (an administrator's shutdown through the
//! HMC: the drill `vmrmd fault <vios> shutdown --su …`); then it is Not Activated. A VIOS that
//! dies on its own still shows Running here — a hypervisor does not see its OS crash — so a
//! crash never passes for a deliberate shutdown. A shut-down VIOS whose node answers again (it
//! was started anew) is Running again.
use super::ServerUnit;
use crate::config::ViosRef;
use crate::domain::{LparState, identity};
use crate::error::{Result, VmrmError};
use crate::pb::{self, vios_client::ViosClient};
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use strum::{EnumString, VariantNames};

/// What the unit can do to one of its VIOS partitions (the drills' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames)]
#[strum(serialize_all = "kebab-case")]
pub enum ViosFault {
    /// Shuts the VIOS down on purpose: it records the clean stop (the CAA reason SHUTDOWN) and
    /// its node stops; the partition is Not Activated.
    Shutdown,
}

/// How often a shut-down VIOS is asked whether it runs again.
const REACTIVATION_PROBE: Duration = Duration::from_secs(1);

/// The unit's VIOS partitions and their states, by VIOS name.
pub(super) struct ViosPartitions {
    vioses: Vec<ViosRef>,
    states: BTreeMap<String, LparState>,
}

impl ViosPartitions {
    pub(super) fn new(vioses: &[ViosRef]) -> Self {
        let states = vioses.iter().map(|v| (v.name.clone(), LparState::Running)).collect();
        Self { vioses: vioses.to_vec(), states }
    }

    pub(super) fn is_vios(&self, name: &str) -> bool {
        self.states.contains_key(name)
    }

    /// The partitions as the unit's inventory reports them.
    pub(super) fn inventory(&self) -> Vec<pb::ViosInfo> {
        self.vioses
            .iter()
            .map(|v| pb::ViosInfo {
                name: v.name.clone(),
                uuid: identity::uuid_for("vios", &v.name),
                endpoint: v.endpoint.clone(),
                version: concat!("vmrm ", env!("CARGO_PKG_VERSION")).into(),
                state: self.states.get(&v.name).copied().unwrap_or(LparState::Running).into(),
            })
            .collect()
    }

    fn endpoint(&self, name: &str) -> Option<String> {
        self.vioses.iter().find(|v| v.name == name).map(|v| v.endpoint.clone())
    }

    fn shut_down(&self) -> Vec<(String, String)> {
        self.vioses
            .iter()
            .filter(|v| self.states.get(&v.name) == Some(&LparState::NotActivated))
            .map(|v| (v.name.clone(), v.endpoint.clone()))
            .collect()
    }

    /// The partition as a drill's answer shows it.
    fn lpar(&self, name: &str) -> pb::Lpar {
        pb::Lpar {
            definition: Some(pb::LparDefinition {
                name: name.to_string(),
                uuid: identity::uuid_for("vios", name),
                ..Default::default()
            }),
            state: self.states.get(name).copied().unwrap_or(LparState::Running).into(),
            ..Default::default()
        }
    }
}

async fn ask_shutdown(pool: ChannelPool, endpoint: String, wait: Duration) -> Result<()> {
    let mut client = ViosClient::new(pool.get(&endpoint)?);
    client.shutdown(deadline(pb::ViosShutdownRequest {}, wait)).await?;
    Ok(())
}

async fn answers(pool: ChannelPool, endpoint: String, wait: Duration) -> bool {
    let Ok(channel) = pool.get(&endpoint) else {
        return false;
    };
    ViosClient::new(channel).sanity(deadline(pb::SanityRequest {}, wait)).await.is_ok()
}

impl ServerUnit {
    /// Carries out a drill on VIOS partition `name`: the partition as it is afterwards.
    pub(super) fn vios_fault(&mut self, name: &str, fault: ViosFault) -> ResponseActFuture<Self, Result<pb::Lpar>> {
        let Some(endpoint) = self.vios_partitions.endpoint(name) else {
            return Box::pin(fut::ready(Err(VmrmError::not_found(format!("no VIOS {name} on this host")))));
        };
        let name = name.to_string();
        match fault {
            ViosFault::Shutdown => {
                let asked = ask_shutdown(self.pool.clone(), endpoint, self.timing.rpc_deadline);
                Box::pin(asked.into_actor(self).map(move |done, act, _| {
                    done.map_err(|e| VmrmError::unavailable(format!("VIOS {name} did not shut down: {e}")))?;
                    act.vios_partitions.states.insert(name.clone(), LparState::NotActivated);
                    tracing::warn!(host = %act.cfg.host, vios = %name, "VIOS partition shut down on purpose: Not Activated");
                    Ok(act.vios_partitions.lpar(&name))
                }))
            }
        }
    }

    /// Every [`REACTIVATION_PROBE`], asks each shut-down VIOS whether it runs again.
    pub(super) fn watch_vios_partitions(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(REACTIVATION_PROBE, |act, ctx| {
            for (name, endpoint) in act.vios_partitions.shut_down() {
                // Answered (or given up) before the next probe: probes never pile up.
                let probe = answers(act.pool.clone(), endpoint, REACTIVATION_PROBE / 2);
                ctx.spawn(probe.into_actor(act).map(move |running, act, _| {
                    if running && act.vios_partitions.states.get(&name) == Some(&LparState::NotActivated) {
                        act.vios_partitions.states.insert(name.clone(), LparState::Running);
                        tracing::info!(host = %act.cfg.host, vios = %name, "VIOS partition runs again");
                    }
                }));
            }
        });
    }
}
