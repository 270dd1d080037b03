//! Monitoring job variables (seed 004): `ksysmgr add|modify|remove|query monjv`, the gRPC
//! watch that waits for a byte range to change, and the system's own updates — a VM's MONJV
//! follows its VM (`MIGR-OUT` at bytes 87–94 while it migrates, `$T` on the source once it
//! migrated, `$A` when it was lost with its host and restarted elsewhere), a migration's MONJV
//! follows that migration (`$S` → `$R` → `$T`/`$TW`/`$AE`, or `$AF`). The layout is the pure
//! [`crate::domain::monjv`]; rows live in the HSDB table `monjv`, so a MONJV survives the VM,
//! the host and the controller.
use crate::controller::gateway::HmcGateway;
use crate::controller::messages as say;
use crate::controller::records::Records;
use crate::domain::monjv::{self, MonjvKind, MonjvRecord, SystemPart};
use crate::domain::names::VmName;
use crate::domain::{HostRecord, VmRecord};
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::hsdb::LocalHsdb;
use crate::pb;
use crate::profile::Timing;
use std::sync::Arc;
use std::time::Duration;

/// The longest a watch may wait.
pub const MAX_WATCH: Duration = Duration::from_secs(3600);
/// Watches one controller serves at once: each reads its MONJV every poll, so their number is
/// bounded like every other thing a caller can open.
pub const MAX_WATCHES: usize = 64;

/// MONJV `name` as `hsdb` reads it.
async fn monjv_in(hsdb: &LocalHsdb, name: &str) -> Result<(MonjvRecord, u64)> {
    hsdb.get::<MonjvRecord>(name)
        .await?
        .ok_or_else(|| VmrmError::not_found(format!("MONJV {} does not exist", quote(name))))
}

/// What happened to a VM that its MONJVs record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmMonjvEvent {
    MigrationStarted,
    MigrationAborted,
    /// Migrated away: on its source the VM is terminated.
    Migrated,
    /// Restarted on another host; `abnormal` when it was lost with its host.
    Restarted {
        abnormal: bool,
    },
}

/// A job variable name: 1–54 characters of letters, digits and `.$#@_-` (BS2000 path names),
/// neither beginning with `.` nor holding `..`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 54
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ".$#@_-".contains(c))
        && !name.starts_with('.')
        && !name.contains("..");
    match ok {
        true => Ok(()),
        false => Err(VmrmError::invalid(format!(
            "`{}` is not a MONJV name: 1-54 letters, digits or . $ # @ _ -",
            quote(name)
        ))),
    }
}

/// A change of a MONJV, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonjvChange {
    /// A MONJV that monitors `vm` from now on.
    Add { vm: VmName, password: String },
    /// Writes the user part (bytes 129-256).
    Modify { user: String, password: String },
    /// Once monitoring ended.
    Remove { password: String },
}

impl MonjvChange {
    /// The MONJV a request names and what it asks.
    pub fn from_wire(req: pb::MonjvChange) -> Result<(String, Self)> {
        check_name(&req.name)?;
        let password = req.password;
        let change = match pb::ChangeAction::try_from(req.action) {
            Ok(pb::ChangeAction::Add) => Self::Add { vm: VmName::parse(&req.vm)?, password },
            Ok(pb::ChangeAction::Modify) => Self::Modify { user: req.user, password },
            Ok(pb::ChangeAction::Remove) => Self::Remove { password },
            _ => return Err(VmrmError::invalid(format!("action {} is not one of add, modify, remove", req.action))),
        };
        Ok((req.name, change))
    }
}

/// The host's catalog id in a MONJV: the first four characters of its uuid.
fn catalog_of(host: &HostRecord) -> String {
    host.uuid.chars().filter(char::is_ascii_alphanumeric).take(4).collect::<String>().to_ascii_uppercase()
}

fn view(jv: &MonjvRecord, readable: bool) -> pb::MonjvView {
    let fields = match readable {
        true => {
            monjv::fields(&jv.bytes).into_iter().map(|(n, v)| pb::MonjvField { name: n.into(), value: v }).collect()
        }
        false => Vec::new(),
    };
    pb::MonjvView {
        name: jv.name.clone(),
        vm: jv.vm.clone(),
        kind: jv.kind.into(),
        monitoring: jv.monitoring,
        password_protected: jv.password.is_some(),
        bytes: if readable { jv.bytes.clone() } else { Vec::new() },
        fields,
        changed_ms: jv.changed_ms,
    }
}

/// Monitoring job variables: the admin's and the system's updates.
#[derive(Clone)]
pub struct Monjvs {
    hsdb: LocalHsdb,
    timing: Timing,
    hmc: HmcGateway,
    records: Records,
    watches: Arc<tokio::sync::Semaphore>,
}

impl Monjvs {
    pub fn new(hsdb: LocalHsdb, timing: Timing, hmc: HmcGateway, records: Records) -> Self {
        Self { hsdb, timing, hmc, records, watches: Arc::new(tokio::sync::Semaphore::new(MAX_WATCHES)) }
    }

    /// A place among the [`MAX_WATCHES`] watches, held until the watch ends.
    fn watch_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.watches.clone().try_acquire_owned().map_err(|_| {
            VmrmError::ResourceExhausted(format!(
                "{MAX_WATCHES} MONJV watches are already waiting on this controller; try again when one ends"
            ))
        })
    }

    async fn monjv(&self, name: &str) -> Result<(MonjvRecord, u64)> {
        monjv_in(&self.hsdb, name).await
    }

    /// The system part of `vm` as it runs now, with `status`.
    async fn vm_part(&self, vm: &VmRecord, status: &str) -> Result<SystemPart> {
        let host = self.records.host(&vm.host).await?;
        let lpar = match self.hmc.host_inventory(&host).await {
            Ok(inv) if inv.state() == pb::HostState::Operating => {
                inv.lpars.into_iter().find(|l| l.definition.as_ref().is_some_and(|d| d.name == vm.name))
            }
            _ => None,
        };
        let running = lpar.as_ref().is_some_and(|l| l.state() == pb::LparState::Running);
        Ok(SystemPart {
            status: status.into(),
            catalog: catalog_of(&host),
            sequence: (vm.epoch % 999 + 1) as u32,
            started_ms: crate::now_ms(),
            vm_name: vm.name.clone(),
            vm_index: lpar.map_or(0, |l| l.lpar_id),
            guest: if running { "RUN" } else { "NTERM" }.into(),
            migration: String::new(),
        })
    }

    /// `add|modify|remove monjv` of the MONJV `name` (checked by [`MonjvChange::from_wire`]).
    pub async fn change_monjv(&self, name: &str, change: MonjvChange) -> Result<Vec<pb::Step>> {
        match change {
            MonjvChange::Add { vm, password } => {
                let (vm, _) = self.records.vm(vm.as_str()).await?;
                if let Some((old, _)) = self.hsdb.get::<MonjvRecord>(name).await? {
                    if old.monitoring {
                        return Err(VmrmError::AlreadyExists(format!("MONJV {name} monitors VM {} already", old.vm)));
                    }
                    old.check_password(&password)?;
                }
                let status = if vm.managed { "$R" } else { "$T" };
                let part = self.vm_part(&vm, status).await?;
                let password = (!password.is_empty()).then_some(password.as_str());
                self.hsdb.put(&MonjvRecord::new(name, &vm.name, MonjvKind::Vm, password, &part)).await?;
                Ok(vec![say::monjv_monitoring(name, &vm.name, status)])
            }
            MonjvChange::Modify { user, password } => {
                let (mut jv, version) = self.monjv(name).await?;
                jv.check_password(&password)?;
                jv.write_user(&user)?;
                self.hsdb.put_if_version(&jv, version).await?;
                Ok(vec![say::monjv_user_written(name)])
            }
            MonjvChange::Remove { password } => {
                let (jv, _) = self.monjv(name).await?;
                jv.check_password(&password)?;
                if jv.monitoring {
                    return Err(VmrmError::precondition(format!(
                        "MONJV {name} still monitors VM {}: it is protected until the VM is terminated",
                        jv.vm
                    )));
                }
                self.hsdb.delete::<MonjvRecord>(name).await?;
                Ok(vec![say::monjv_removed(name)])
            }
        }
    }

    /// `query monjv [NAME]`: a protected MONJV shows its bytes only with its password.
    pub async fn query_monjv(&self, name: &str, password: &str) -> Result<Vec<pb::MonjvView>> {
        if !name.is_empty() {
            let (jv, _) = self.monjv(name).await?;
            jv.check_password(password)?;
            return Ok(vec![view(&jv, true)]);
        }
        let all = self.hsdb.list::<MonjvRecord>().await?;
        Ok(all.iter().map(|jv| view(jv, jv.check_password(password).is_ok())).collect())
    }

    /// Waits until bytes `from..=to` of a MONJV differ from what they are now.
    pub async fn watch_monjv(&self, w: pb::MonjvWatch) -> Result<pb::MonjvView> {
        let _slot = self.watch_slot()?;
        let (jv, _) = self.monjv(&w.name).await?;
        jv.check_password(&w.password)?;
        let (from, to) = (w.from as usize, w.to as usize);
        let seen = monjv::range(&jv.bytes, from, to)?.to_vec();
        let wait = match w.timeout_ms {
            0 => MAX_WATCH,
            ms => Duration::from_millis(ms.into()).min(MAX_WATCH),
        };
        let give_up = tokio::time::Instant::now() + wait;
        // Polled from this controller's own copy: a change shows within the apply lag, and a
        // waiting watch costs a local read, not a round through Raft, per poll.
        let own_copy = self.hsdb.follower_reads();
        loop {
            tokio::time::sleep(self.timing.job_poll).await;
            let (jv, _) = monjv_in(&own_copy, &w.name).await?;
            if monjv::range(&jv.bytes, from, to)? != seen.as_slice() {
                return Ok(view(&jv, true));
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(VmrmError::DeadlineExceeded(format!(
                    "bytes {from}-{to} of MONJV {} did not change within {} ms",
                    w.name,
                    wait.as_millis()
                )));
            }
        }
    }

    /// Records `event` in every MONJV that still monitors `vm` (best effort: a MONJV that
    /// cannot be written is logged, the operation goes on).
    pub(in crate::controller) async fn vm_monjvs(&self, vm: &str, event: VmMonjvEvent) {
        let Ok(all) = self.hsdb.list_versioned::<MonjvRecord>().await else { return };
        for (mut jv, version) in all.into_iter().filter(|(j, _)| j.vm == vm && j.kind == MonjvKind::Vm && j.monitoring)
        {
            let mut part = jv.system();
            let end = match event {
                VmMonjvEvent::MigrationStarted => {
                    part.migration = "MIGR-OUT".into();
                    false
                }
                VmMonjvEvent::MigrationAborted => {
                    part.migration.clear();
                    false
                }
                VmMonjvEvent::Migrated => {
                    part.status = "$T".into();
                    true
                }
                VmMonjvEvent::Restarted { abnormal } => {
                    (part.status, part.guest) = match abnormal {
                        true => ("$A".into(), "ABORT".into()),
                        false => ("$T".into(), "NTERM".into()),
                    };
                    true
                }
            };
            jv.set_system(&part, end);
            if let Err(e) = self.hsdb.put_if_version(&jv, version).await {
                tracing::warn!(vm, "MONJV {} not updated ({event:?}): {e}", jv.name);
            }
        }
    }

    /// Writes a migration's own MONJV (`name` empty: none asked) with `status`.
    pub(in crate::controller) async fn migration_monjv(
        &self,
        name: &str,
        password: &str,
        vm: &VmRecord,
        status: &str,
    ) -> Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        check_name(name)?;
        let existing = self.hsdb.get::<MonjvRecord>(name).await?;
        if let Some((jv, _)) = &existing {
            jv.check_password(password)?;
            if jv.monitoring && jv.kind == MonjvKind::Vm {
                return Err(VmrmError::AlreadyExists(format!("MONJV {name} monitors VM {}", jv.vm)));
            }
        }
        let mut part = match &existing {
            Some((jv, _)) if jv.kind == MonjvKind::Migration && jv.vm == vm.name && status != "$S" => jv.system(),
            _ => self.vm_part(vm, status).await?,
        };
        part.status = status.into();
        part.migration = "MIGR-OUT".into();
        let done = !matches!(status, "$S" | "$R");
        let mut jv = match existing {
            Some((jv, _)) if jv.kind == MonjvKind::Migration && status != "$S" => jv,
            _ => {
                let password = (!password.is_empty()).then_some(password);
                MonjvRecord::new(name, &vm.name, MonjvKind::Migration, password, &part)
            }
        };
        jv.set_system(&part, done);
        self.hsdb.put(&jv).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_job_variable_rules() {
        assert!(check_name("MONJV.LM.VM12PROD").is_ok());
        assert!(check_name("JV.VM.MIGVM.3").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("..JV").is_err() && check_name("JV..X").is_err() && check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(55)).is_err());
    }
}
