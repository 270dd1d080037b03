//! A server unit: one host's hypervisor. It owns the host's capacity and LPAR table and runs
//! the partitions' guests through its [`Hypervisor`] backend (simulated ones today). Activation reserves the VM's disk on the SAN with the host's key first: a disk
//! held by another host means the VM runs there, and the LPAR stays `Not Activated` (this is how
//! a host that comes back after a failure shows stale definitions instead of running VMs twice).
//! The partitions that should run — configured ones and those the controller activated here —
//! are kept in the node's data directory, so a hypervisor that restarts powers all of them on
//! again, not only the ones in its configuration file.
//!
//! Live migration is here too: [`outbound`] drives a VM's migration to another unit (an HMC
//! job), [`inbound`] receives one over the [`lane`]; [`drills`] holds the operator's faults and
//! workloads; [`service`] is the gRPC face.
mod drills;
mod inbound;
mod lane;
mod outbound;
mod service;
mod vios_partitions;

pub use crate::sim::vm::IoFailed;
pub use drills::UnitFault;
pub use lane::LaneServer;
pub use service::SuService;
pub use vios_partitions::ViosFault;

use crate::config::{SuConfig, VmConfig};
use crate::domain::{HostState, LparDefinition, LparState, SuAliveRecord, identity};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, RemoteHsdb};
use crate::in_flight::InFlight;
use crate::pb::vocabulary::{REFCODE_OFF, REFCODE_RUNNING};
use crate::pb::{self, san_client::SanClient};
use crate::profile::Timing;
use crate::sim::hypervisor::{GuestState, Hypervisor, PartitionStopped, Stop};
use crate::sim::vm::{SimulatedHypervisor, VmHost};
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

struct Lpar {
    def: LparDefinition,
    /// The partition's id on this host, from 1 (VM2000's VM index).
    id: u32,
    state: LparState,
    reference_code: String,
    /// Where the running VM answers ping.
    address: String,
    /// Why it was last shut down on purpose (seed: word3 of the `D200A200` reference code).
    shutdown_reason: String,
    migration: Option<LparMigration>,
}

/// A live migration the partition takes part in.
#[derive(Debug, Clone)]
enum LparMigration {
    /// Leaving for `target`; `cancel` asks the driver to roll back at its next step.
    Out { target: String, operation: String, cancel: Arc<AtomicBool> },
    /// Arriving from `source`; `resumed` once the VM runs here.
    In { source: String, resumed: bool },
}

impl std::fmt::Display for LparMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Out { target, .. } => write!(f, "out to {target}"),
            Self::In { source, .. } => write!(f, "in from {source}"),
        }
    }
}

impl Lpar {
    fn off(def: LparDefinition, id: u32) -> Self {
        Self {
            def,
            id,
            state: LparState::NotActivated,
            reference_code: REFCODE_OFF.into(),
            address: String::new(),
            shutdown_reason: String::new(),
            migration: None,
        }
    }
}

/// Conditions of the unit itself that a live migration's pre-check or phases look at.
#[derive(Debug, Clone, Copy, Default)]
struct UnitConditions {
    reconfiguring: bool,
    shutting_down: bool,
    refuse_next_inbound: bool,
    fail_next_resume: bool,
    fail_next_activate: bool,
    fail_next_shutdown: bool,
}

/// The file (in the node's data directory) listing the partitions to power on at start.
const BOOT_LIST: &str = "lpars-to-start.json";

/// `shutdown_reason` of a partition shut down through its HMC.
const SHUTDOWN_BY_HMC: &str = "HMC shutdown";

pub struct ServerUnit {
    cfg: SuConfig,
    endpoint: String,
    san_key: u64,
    timing: Timing,
    pool: ChannelPool,
    lpars: BTreeMap<String, Lpar>,
    /// Where the definitions of the partitions that should run are kept.
    boot_list: std::path::PathBuf,
    conditions: UnitConditions,
    /// The partitions' guests.
    hypervisor: Box<dyn Hypervisor>,
    /// Where this unit writes its alive messages (none: no HSDB configured).
    hsdb: Option<RemoteHsdb>,
    incarnation: String,
    alive: InFlight,
    vios_partitions: vios_partitions::ViosPartitions,
}

impl ServerUnit {
    /// Starts the unit of `cfg`; its partitions are simulated ones (the only backend yet).
    pub fn start(
        cfg: SuConfig,
        endpoint: String,
        timing: Timing,
        pool: ChannelPool,
        data_dir: &Path,
        hsdb: Option<RemoteHsdb>,
        io_failed: Option<IoFailed>,
    ) -> Addr<Self> {
        Self::create(|ctx| {
            let san_key = identity::san_key_for_host(&cfg.host);
            let host = VmHost {
                name: cfg.host.clone(),
                san_key,
                vios: cfg.vios.clone(),
                san: cfg.san.clone(),
                timing,
                pool: pool.clone(),
                su: ctx.address().recipient(),
                guests: cfg.guests.clone().unwrap_or_else(|| data_dir.join("guests")),
                io_failed,
            };
            let ip = endpoint.rsplit_once(':').map_or("127.0.0.1", |(ip, _)| ip).to_string();
            let partitions = SimulatedHypervisor::new(host, ip, cfg.workload, cfg.memory_mb);
            Self {
                vios_partitions: vios_partitions::ViosPartitions::new(&cfg.vios),
                cfg,
                endpoint,
                san_key,
                timing,
                pool,
                lpars: BTreeMap::new(),
                boot_list: data_dir.join(BOOT_LIST),
                conditions: UnitConditions::default(),
                hypervisor: Box::new(partitions),
                hsdb,
                incarnation: format!("{}-{}", std::process::id(), crate::now_ms()),
                alive: InFlight::default(),
            }
        })
    }

    fn used(&self) -> (u32, u64) {
        self.lpars
            .values()
            .filter(|l| l.state != LparState::NotActivated)
            .fold((0, 0), |(c, m), l| (c + l.def.cpu, m + l.def.memory_mb))
    }

    fn lpar_pb(&self, l: &Lpar) -> pb::Lpar {
        let hung = self.hypervisor.guest_state(&l.def.name) == GuestState::Hung;
        let guest_state = match (l.state, hung) {
            (_, true) => pb::GuestState::Wait,
            (LparState::Running | LparState::MigratingRunning, _) => pb::GuestState::Running,
            (LparState::NotActivated, _) => pb::GuestState::DefinedOnly,
            _ => pb::GuestState::Down,
        };
        let migration = l.migration.as_ref().map(|m| match m {
            LparMigration::Out { target, .. } => pb::LparMigration { outbound: true, peer: target.clone() },
            LparMigration::In { source, .. } => pb::LparMigration { outbound: false, peer: source.clone() },
        });
        pb::Lpar {
            definition: Some(l.def.clone().into()),
            state: l.state.into(),
            reference_code: l.reference_code.clone(),
            address: l.address.clone(),
            shutdown_reason: l.shutdown_reason.clone(),
            lpar_id: l.id,
            guest_state: guest_state as i32,
            migration,
        }
    }

    /// The lowest partition id not in use.
    fn free_id(&self) -> u32 {
        (1..).find(|id| !self.lpars.values().any(|l| l.id == *id)).expect("a free id")
    }

    /// The id partition `def` gets here: the one it has, its permanent VM index (refused when
    /// another partition has it), or the lowest free one.
    fn id_for(&self, def: &LparDefinition) -> Result<u32> {
        if let Some(l) = self.lpars.get(&def.name) {
            return Ok(l.id);
        }
        let Some(index) = def.permanent_index else {
            return Ok(self.free_id());
        };
        match self.lpars.values().find(|l| l.id == index) {
            Some(other) => Err(VmrmError::precondition(format!(
                "VM index {index} of VM {} is in use on host {} (VM {})",
                def.name, self.cfg.host, other.def.name
            ))),
            None => Ok(index),
        }
    }

    /// The operation of the outbound migrations running from this unit.
    fn outbound_operation(&self) -> Option<(&str, &str)> {
        self.lpars.values().find_map(|l| match &l.migration {
            Some(LparMigration::Out { operation, .. }) => Some((l.def.name.as_str(), operation.as_str())),
            _ => None,
        })
    }

    fn inventory(&self) -> pb::HostInventory {
        pb::HostInventory {
            name: self.cfg.host.clone(),
            uuid: identity::uuid_for("host", &self.cfg.host),
            state: HostState::Operating.into(),
            cpu_total: self.cfg.cpu,
            memory_total_mb: self.cfg.memory_mb,
            vios: self.vios_partitions.inventory(),
            lpars: self.lpars.values().map(|l| self.lpar_pb(l)).collect(),
            san_key: self.san_key,
            endpoint: self.endpoint.clone(),
            san: self.cfg.san.clone(),
            max_definitions: self.cfg.max_definitions,
            reconfiguring: self.conditions.reconfiguring,
            shutting_down: self.conditions.shutting_down,
            outbound_operation: self.outbound_operation().map(|(_, op)| op.to_string()).unwrap_or_default(),
        }
    }

    /// Powers the defined partition on (a fresh boot, or a guest that arrived by migration).
    fn start_partition(&mut self, name: &str) -> Result<pb::Lpar> {
        let started = self.hypervisor.activate(name);
        let lpar = self.lpars.get_mut(name).ok_or_else(|| VmrmError::not_found(format!("no LPAR {name}")))?;
        match started {
            Ok(address) => {
                lpar.state = LparState::Running;
                lpar.reference_code = REFCODE_RUNNING.into();
                lpar.address = address;
                lpar.shutdown_reason.clear();
                let lpar = &self.lpars[name];
                Ok(self.lpar_pb(lpar))
            }
            Err(e) => {
                lpar.state = LparState::Error;
                Err(e)
            }
        }
    }

    /// Capacity and state checks before anything is reserved; marks the LPAR as booting.
    fn admit(&mut self, def: &LparDefinition) -> Result<()> {
        if let Some(l) = self.lpars.get(&def.name)
            && l.state != LparState::NotActivated
            && l.state != LparState::Error
        {
            return Err(VmrmError::AlreadyExists(format!(
                "VM {} is already {} on host {}",
                def.name, l.state, self.cfg.host
            )));
        }
        if !self.lpars.contains_key(&def.name) && self.lpars.len() >= self.cfg.max_definitions as usize {
            return Err(VmrmError::precondition(format!(
                "host {} has reached its maximum of {} VM definitions",
                self.cfg.host, self.cfg.max_definitions
            )));
        }
        let (cpu, mem) = self.used();
        let (free_cpu, free_mem) = (self.cfg.cpu.saturating_sub(cpu), self.cfg.memory_mb.saturating_sub(mem));
        if def.cpu > free_cpu || def.memory_mb > free_mem {
            return Err(VmrmError::precondition(format!(
                "host {} has not enough free capacity for VM {}: it needs {} CPU / {} MB, {} CPU / {} MB are free",
                self.cfg.host, def.name, def.cpu, def.memory_mb, free_cpu, free_mem
            )));
        }
        let mut lpar = Lpar::off(def.clone(), self.id_for(def)?);
        lpar.state = LparState::OpenFirmware;
        lpar.reference_code = String::new();
        self.lpars.insert(def.name.clone(), lpar);
        self.hypervisor.define(def);
        Ok(())
    }

    /// The alive message (seed 001: the monitor system's activity message on the CRD), which
    /// tells the SU cluster this unit runs; one in flight at a time.
    fn write_alive(&mut self, ctx: &mut Context<Self>) {
        let Some(hsdb) = self.hsdb.clone() else { return };
        if !self.alive.start() {
            return;
        }
        let row = SuAliveRecord {
            host: self.cfg.host.clone(),
            incarnation: self.incarnation.clone(),
            at_ms: crate::now_ms(),
        };
        ctx.spawn(async move { hsdb.put(&row).await }.into_actor(self).map(|written, act, _| {
            act.alive.end();
            if let Err(e) = written {
                tracing::debug!(host = %act.cfg.host, "alive message not written: {e}");
            }
        }));
    }

    /// Writes the definitions of the partitions that should run (best effort: a hypervisor that
    /// cannot write it only forgets them at its next restart).
    fn save_boot_list(&self) {
        let should_run: Vec<&LparDefinition> = self
            .lpars
            .values()
            .filter(|l| matches!(l.state, LparState::Running | LparState::OpenFirmware | LparState::MigratingRunning))
            .map(|l| &l.def)
            .collect();
        let written = serde_json::to_vec(&should_run)
            .map_err(VmrmError::internal)
            .and_then(|json| std::fs::write(&self.boot_list, json).map_err(VmrmError::internal));
        if let Err(e) = written {
            tracing::warn!(host = %self.cfg.host, "partitions to start not saved: {e}");
        }
    }

    /// The partitions that ran before a restart and are not in the configuration.
    /// A definition that is not one a partition can have is left out (and logged): the file is
    /// input like any other.
    fn saved_boot_list(&self) -> Vec<LparDefinition> {
        let saved: Vec<LparDefinition> =
            std::fs::read(&self.boot_list).ok().and_then(|json| serde_json::from_slice(&json).ok()).unwrap_or_default();
        saved
            .into_iter()
            .filter(|d| match d.check() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(host = %self.cfg.host, "boot list {}: {e}; not started", self.boot_list.display());
                    false
                }
            })
            .filter(|d| !self.cfg.vm.iter().any(|v| v.name == d.name))
            .collect()
    }

    fn stop_vm(&mut self, name: &str, how: Stop) -> Result<&mut Lpar> {
        let host = self.cfg.host.clone();
        let lpar =
            self.lpars.get_mut(name).ok_or_else(|| VmrmError::not_found(format!("no LPAR {name} on host {host}")))?;
        self.hypervisor.shut_down(name, how);
        lpar.state = LparState::NotActivated;
        lpar.reference_code = REFCODE_OFF.into();
        lpar.address.clear();
        lpar.shutdown_reason = SHUTDOWN_BY_HMC.into();
        Ok(lpar)
    }
}

impl Actor for ServerUnit {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let configured: Vec<LparDefinition> = self.cfg.vm.iter().map(VmConfig::definition).collect();
        self.write_alive(ctx);
        ctx.run_interval(self.timing.su_alive, |act, ctx| act.write_alive(ctx));
        self.watch_vios_partitions(ctx);
        let mut defs: Vec<LparDefinition> = configured.into_iter().chain(self.saved_boot_list()).collect();
        // Permanent VM indexes first: a partition that takes any free id must not take theirs.
        defs.sort_by_key(|d| d.permanent_index.is_none());
        for def in defs {
            let id = match self.id_for(&def) {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(host = %self.cfg.host, vm = %def.name, "partition not defined: {e}");
                    continue;
                }
            };
            self.lpars.insert(def.name.clone(), Lpar::off(def.clone(), id));
            self.hypervisor.define(&def);
            ctx.notify(BootActivate { def, failures: 0 });
        }
    }
}

/// Power-on activation of a configured LPAR: retried while the SAN cannot be reached (nodes
/// start in any order), given up when the disk is reserved by another host (the VM runs there).
#[derive(Message)]
#[rtype(result = "()")]
struct BootActivate {
    def: LparDefinition,
    /// Attempts that found the SAN unreachable so far.
    failures: u32,
}

/// First retry of a power-on activation whose SAN is not reachable yet, and the longest wait.
const BOOT_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
const BOOT_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Handler<BootActivate> for ServerUnit {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, BootActivate { def, failures }: BootActivate, ctx: &mut Context<Self>) -> Self::Result {
        let activate = self.handle(Activate(def.clone()), ctx);
        Box::pin(activate.map(move |result, _, ctx| {
            if let Err(VmrmError::Unavailable(_)) = result {
                let failures = failures + 1;
                let wait = crate::logic::retries::backoff(failures, BOOT_RETRY, BOOT_RETRY_MAX);
                ctx.notify_later(BootActivate { def, failures }, wait);
            }
        }))
    }
}

#[derive(Message)]
#[rtype(result = "pb::HostInventory")]
pub struct Inventory;

impl Handler<Inventory> for ServerUnit {
    type Result = MessageResult<Inventory>;
    fn handle(&mut self, _: Inventory, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.inventory())
    }
}

/// Boots an LPAR: admit, reserve its disk on the SAN with this host's key, start the VM.
#[derive(Message)]
#[rtype(result = "Result<pb::Lpar>")]
pub struct Activate(pub LparDefinition);

impl Handler<Activate> for ServerUnit {
    type Result = ResponseActFuture<Self, Result<pb::Lpar>>;

    fn handle(&mut self, Activate(def): Activate, _: &mut Context<Self>) -> Self::Result {
        if std::mem::take(&mut self.conditions.fail_next_activate) {
            let why = format!("the firmware of host {} refused to start partition {}", self.cfg.host, def.name);
            return Box::pin(fut::ready(Err(VmrmError::unavailable(why))));
        }
        if let Err(e) = self.admit(&def) {
            return Box::pin(fut::ready(Err(e)));
        }
        let req = deadline(
            pb::ReserveRequest { disk: def.disk.clone(), key: self.san_key, owner: self.cfg.host.clone() },
            self.timing.rpc_deadline,
        );
        let channel = self.pool.get(&self.cfg.san);
        let reserve = async move { SanClient::new(channel?).reserve(req).await.map_err(VmrmError::from) };
        Box::pin(reserve.into_actor(self).map(move |reserved, act, _| {
            let host = act.cfg.host.clone();
            let Some(lpar) = act.lpars.get_mut(&def.name) else {
                return Err(VmrmError::not_found(format!(
                    "VM {} was removed from host {host} while it was activated",
                    def.name
                )));
            };
            if let Err(e) = reserved {
                lpar.state = LparState::NotActivated;
                lpar.reference_code = REFCODE_OFF.into();
                tracing::warn!(vm = %def.name, "LPAR not activated on {host}: {e}");
                return Err(e);
            }
            let reply = act.start_partition(&def.name)?;
            act.save_boot_list();
            Ok(reply)
        }))
    }
}

/// Shuts an LPAR down (the VM stops cleanly); `remove` also deletes its definition.
#[derive(Message)]
#[rtype(result = "Result<pb::Lpar>")]
pub struct Shutdown {
    pub name: String,
    /// The epoch of the operation asking (a stale one is refused).
    pub fence: u64,
    pub remove: bool,
}

impl Handler<Shutdown> for ServerUnit {
    type Result = Result<pb::Lpar>;
    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        if let Some(Lpar { migration: Some(m), .. }) = self.lpars.get(&msg.name) {
            return Err(VmrmError::precondition(format!(
                "VM {} is being live-migrated ({m}); cancel the migration first",
                msg.name
            )));
        }
        if let Some(l) = self.lpars.get(&msg.name) {
            l.def.admits(msg.fence)?;
        }
        if !msg.remove && std::mem::take(&mut self.conditions.fail_next_shutdown) {
            let host = &self.cfg.host;
            return Err(VmrmError::unavailable(format!("partition {} on host {host} did not stop", msg.name)));
        }
        self.stop_vm(&msg.name, Stop::Clean)?;
        let lpar = self.lpar_pb(&self.lpars[&msg.name]);
        if msg.remove {
            self.lpars.remove(&msg.name);
            self.hypervisor.remove(&msg.name);
        }
        self.save_boot_list();
        Ok(lpar)
    }
}

impl Handler<PartitionStopped> for ServerUnit {
    type Result = ();
    fn handle(&mut self, msg: PartitionStopped, _: &mut Context<Self>) {
        tracing::warn!(vm = %msg.name, "VM crashed: {}", msg.reason);
        if let Some(l) = self.lpars.get_mut(&msg.name) {
            if let Some(LparMigration::In { .. }) = l.migration {
                // Fenced before the source let it go: the migration was rolled back there.
                self.lpars.remove(&msg.name);
                self.hypervisor.remove(&msg.name);
            } else {
                self.hypervisor.shut_down(&msg.name, Stop::PowerOff);
                l.state = LparState::Error;
                l.reference_code = String::new();
                l.address.clear();
            }
        }
        self.save_boot_list();
    }
}
