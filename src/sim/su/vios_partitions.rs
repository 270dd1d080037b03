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

/// One VIOS partition of the unit and its state.
struct Partition {
    vios: ViosRef,
    state: LparState,
}

impl Partition {
    fn info(&self) -> pb::ViosInfo {
        pb::ViosInfo {
            name: self.vios.name.clone(),
            uuid: identity::uuid_for("vios", &self.vios.name),
            endpoint: self.vios.endpoint.clone(),
            version: concat!("vmrm ", env!("CARGO_PKG_VERSION")).into(),
            state: self.state.into(),
        }
    }

    /// The partition as a drill's answer shows it.
    fn lpar(&self) -> pb::Lpar {
        pb::Lpar {
            definition: Some(pb::LparDefinition {
                name: self.vios.name.clone(),
                uuid: identity::uuid_for("vios", &self.vios.name),
                ..Default::default()
            }),
            state: self.state.into(),
            ..Default::default()
        }
    }
}

/// The unit's VIOS partitions.
pub(super) struct ViosPartitions(Vec<Partition>);

impl ViosPartitions {
    pub(super) fn new(vioses: &[ViosRef]) -> Self {
        Self(vioses.iter().map(|v| Partition { vios: v.clone(), state: LparState::Running }).collect())
    }

    fn get(&self, name: &str) -> Option<&Partition> {
        self.0.iter().find(|p| p.vios.name == name)
    }

    fn set(&mut self, name: &str, state: LparState) {
        if let Some(p) = self.0.iter_mut().find(|p| p.vios.name == name) {
            p.state = state;
        }
    }

    pub(super) fn is_vios(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The partitions as the unit's inventory reports them.
    pub(super) fn inventory(&self) -> Vec<pb::ViosInfo> {
        self.0.iter().map(Partition::info).collect()
    }

    /// The VIOSs shut down on purpose: their names and endpoints.
    fn shut_down(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|p| p.state == LparState::NotActivated)
            .map(|p| (p.vios.name.clone(), p.vios.endpoint.clone()))
            .collect()
    }
}

async fn ask_shutdown(pool: ChannelPool, endpoint: String, wait: Duration) -> Result<()> {
    let mut client = ViosClient::new(pool.get(&endpoint)?);
    client.shutdown(deadline(pb::ViosShutdownRequest {}, wait)).await?;
    Ok(())
}

/// Whether the VIOS at `endpoint` answers within `wait` (connecting included).
async fn answers(pool: ChannelPool, endpoint: String, wait: Duration) -> bool {
    let Ok(channel) = pool.get(&endpoint) else {
        return false;
    };
    let mut client = ViosClient::new(channel);
    let sanity = client.sanity(deadline(pb::SanityRequest {}, wait));
    matches!(tokio::time::timeout(wait, sanity).await, Ok(Ok(_)))
}

impl ServerUnit {
    /// Carries out a drill on VIOS partition `name`: the partition as it is afterwards.
    pub(super) fn vios_fault(&mut self, name: &str, fault: ViosFault) -> ResponseActFuture<Self, Result<pb::Lpar>> {
        let Some(endpoint) = self.vios_partitions.get(name).map(|p| p.vios.endpoint.clone()) else {
            return Box::pin(fut::ready(Err(VmrmError::not_found(format!("no VIOS {name} on this host")))));
        };
        let name = name.to_string();
        match fault {
            ViosFault::Shutdown => {
                let asked = ask_shutdown(self.pool.clone(), endpoint, self.timing.rpc_deadline);
                Box::pin(asked.into_actor(self).map(move |done, act, _| {
                    done.map_err(|e| VmrmError::unavailable(format!("VIOS {name} did not shut down: {e}")))?;
                    act.vios_partitions.set(&name, LparState::NotActivated);
                    tracing::warn!(host = %act.cfg.host, vios = %name, "VIOS partition shut down on purpose: Not Activated");
                    act.vios_partitions
                        .get(&name)
                        .map(Partition::lpar)
                        .ok_or_else(|| VmrmError::not_found(format!("no VIOS {name} on this host")))
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
                    let still_down = act.vios_partitions.get(&name).is_some_and(|p| p.state == LparState::NotActivated);
                    if running && still_down {
                        act.vios_partitions.set(&name, LparState::Running);
                        tracing::info!(host = %act.cfg.host, vios = %name, "VIOS partition runs again");
                    }
                }));
            }
        });
    }
}
