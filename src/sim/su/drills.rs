//! What an operator does to a server unit to rehearse (`vmrmd fault`, `vmrmd workload`, the
//! tests, the chaos suite): faults inside one running VM, conditions of the unit itself that a
//! live migration must respect, a deliberate shutdown of one of its VIOS partitions, and the
//! workload a guest runs.
use super::vios_partitions::ViosFault;
use super::{Lpar, ServerUnit};
use crate::error::{Result, VmrmError};
use crate::pb;
use crate::sim::hypervisor::{GuestState, VmFault, parse_fault};
use crate::sim::workload::WorkloadSettings;
use actix::prelude::*;
use strum::{EnumString, VariantNames};

/// A fault of the unit itself (an `InjectFault` with an empty LPAR name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames)]
#[strum(serialize_all = "kebab-case")]
pub enum UnitFault {
    /// VM2000's `/START-CONFIGURATION-UPDATE`: a dynamic I/O configuration change runs.
    ConfigurationUpdateStart,
    ConfigurationUpdateEnd,
    /// VM2000's `/SHUTDOWN-VM VM-ID=*VM2000` was started.
    ShutdownStart,
    ShutdownEnd,
    /// The next inbound migration cannot get its resources here (its setup fails).
    RefuseNextInbound,
    /// The next inbound migration cannot resume its VM here.
    FailNextResume,
    /// The next activation of a partition fails here (its firmware refuses to start it).
    FailNextActivate,
    /// The next shutdown of a partition fails here (it does not stop; a removal still does).
    FailNextShutdown,
    /// A defect in the unit's own code: its actor panics, which ends the whole node.
    Panic,
}

impl ServerUnit {
    fn unit_fault(&mut self, fault: UnitFault) -> Result<()> {
        let c = &mut self.conditions;
        match fault {
            UnitFault::ConfigurationUpdateStart if self.lpars.values().any(|l| l.migration.is_some()) => {
                return Err(VmrmError::precondition(
                    "a live migration runs on this unit: no dynamic I/O configuration change now",
                ));
            }
            UnitFault::ConfigurationUpdateStart => c.reconfiguring = true,
            UnitFault::ConfigurationUpdateEnd => c.reconfiguring = false,
            UnitFault::ShutdownStart => c.shutting_down = true,
            UnitFault::ShutdownEnd => c.shutting_down = false,
            UnitFault::RefuseNextInbound => c.refuse_next_inbound = true,
            UnitFault::FailNextResume => c.fail_next_resume = true,
            UnitFault::FailNextActivate => c.fail_next_activate = true,
            UnitFault::FailNextShutdown => c.fail_next_shutdown = true,
            UnitFault::Panic => panic!("unit fault injected on host {}: panic", self.cfg.host),
        }
        tracing::warn!(host = %self.cfg.host, "unit fault injected: {fault:?}");
        Ok(())
    }

    /// The running VM of `name`, or why there is none.
    pub(super) fn running_vm(&self, name: &str) -> Result<&Lpar> {
        let host = &self.cfg.host;
        match self.lpars.get(name) {
            None => Err(VmrmError::not_found(format!("no LPAR {name} on host {host}"))),
            Some(l) if self.hypervisor.guest_state(name) != GuestState::Off => Ok(l),
            Some(Lpar { state, .. }) => {
                Err(VmrmError::precondition(format!("VM {name} is {state} on host {host}, not running")))
            }
        }
    }
}

/// A fault inside one running VM, or (empty name) of the unit.
#[derive(Message)]
#[rtype(result = "Result<pb::Lpar>")]
pub struct InjectFault {
    pub name: String,
    pub fault: String,
}

impl Handler<InjectFault> for ServerUnit {
    type Result = ResponseActFuture<Self, Result<pb::Lpar>>;
    fn handle(&mut self, msg: InjectFault, _: &mut Context<Self>) -> Self::Result {
        if msg.name.is_empty() {
            let done =
                parse_fault(&msg.fault, "a server unit").and_then(|f| self.unit_fault(f)).map(|()| pb::Lpar::default());
            return Box::pin(fut::ready(done));
        }
        if self.vios_partitions.is_vios(&msg.name) {
            return match parse_fault::<ViosFault>(&msg.fault, "a VIOS") {
                Ok(fault) => self.vios_fault(&msg.name, fault),
                Err(e) => Box::pin(fut::ready(Err(e))),
            };
        }
        let injected = match parse_fault::<VmFault>(&msg.fault, "a VM")
            .and_then(|fault| Ok((fault, self.running_vm(&msg.name)?)))
        {
            Ok((fault, _)) => self.hypervisor.inject(&msg.name, fault),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let name = msg.name;
        Box::pin(injected.into_actor(self).map(move |done, act, _| {
            done?;
            let lpar = act.lpars.get(&name).ok_or_else(|| VmrmError::not_found(format!("no LPAR {name}")))?;
            Ok(act.lpar_pb(lpar))
        }))
    }
}

/// Sets the workload of one running VM.
#[derive(Message)]
#[rtype(result = "Result<pb::Lpar>")]
pub struct SetWorkload {
    pub name: String,
    pub settings: WorkloadSettings,
}

impl Handler<SetWorkload> for ServerUnit {
    type Result = Result<pb::Lpar>;
    fn handle(&mut self, msg: SetWorkload, _: &mut Context<Self>) -> Self::Result {
        let lpar = self.running_vm(&msg.name)?;
        if lpar.migration.is_some() {
            return Err(VmrmError::precondition(format!("VM {} is being live-migrated", msg.name)));
        }
        self.hypervisor.set_workload(&msg.name, msg.settings)?;
        Ok(self.lpar_pb(&self.lpars[&msg.name]))
    }
}
