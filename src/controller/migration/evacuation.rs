//! Planned HA (seed 000: "use the LPM option … to evacuate the host by migrating all its VMs to
//! neighboring hosts in the group … bring the VMs back to their original host in a single
//! operation"): the admin's `Migrate` call for one or more VMs or a whole host, and the move
//! back home (`restore vm|host`: by live migration, or by a restart for a VM that runs reduced). An evacuation migrates the host's managed VMs in priority order (High, Medium,
//! Low), [`EVACUATION_PARALLEL`] at a time, to the hosts the relocation mapper picks at full
//! size (flexible capacity is for restarts only); its migrations share one operation, so the
//! source allows them side by side while any other second outbound migration is refused.
use crate::controller::messages as say;
use crate::controller::migration::Migration;
use crate::controller::migration::lpm::{LpmOrder, LpmOut};
use crate::domain::names::{HostName, VmName};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::pb;
use futures::StreamExt;

/// Migrations of one evacuation that run at once.
pub const EVACUATION_PARALLEL: usize = 2;

/// What a live migration moves: VMs, or every managed VM of a host (an evacuation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LpmScope {
    Vms(Vec<VmName>),
    Host(HostName),
}

/// A `Migrate` request, checked: a malformed one is refused before anything starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LpmRequest {
    pub scope: LpmScope,
    pub to: Option<HostName>,
    pub action: pb::MigrateAction,
    pub limits: pb::MigrationLimits,
    /// A MONJV that follows the migration of one VM, and its password.
    pub monjv: Option<(String, String)>,
}

impl TryFrom<pb::MigrateRequest> for LpmRequest {
    type Error = VmrmError;
    fn try_from(req: pb::MigrateRequest) -> Result<Self> {
        let action = pb::MigrateAction::try_from(req.action).map_err(|_| {
            VmrmError::invalid(format!("action {} is not one of migrate, validate, cancel", req.action))
        })?;
        let scope = match (pb::Scope::try_from(req.scope), req.names.as_slice()) {
            (Ok(pb::Scope::Vm), []) => return Err(VmrmError::invalid("name the VMs: ksysmgr lpm vm NAME [to=HOST]")),
            (Ok(pb::Scope::Vm), names) => LpmScope::Vms(VmName::all(names)?),
            (Ok(pb::Scope::Host), [host]) => LpmScope::Host(HostName::parse(host)?),
            (Ok(pb::Scope::Host), _) => return Err(VmrmError::invalid("evacuate one host at a time")),
            _ => return Err(VmrmError::invalid(format!("scope {} is not one of vm, host", req.scope))),
        };
        if matches!(scope, LpmScope::Host(_)) && action == pb::MigrateAction::Cancel {
            return Err(VmrmError::invalid("cancel applies to a VM's migration, not to a host"));
        }
        let monjv = match (req.monjv.is_empty(), &scope) {
            (true, _) => None,
            (false, LpmScope::Vms(vms)) if vms.len() == 1 => {
                crate::controller::monjv::check_name(&req.monjv)?;
                Some((req.monjv, req.monjv_password))
            }
            (false, _) => return Err(VmrmError::invalid("a MONJV follows the migration of one VM")),
        };
        crate::pb::migration_limits::limits_of(req.limits.as_ref())?;
        Ok(Self { scope, to: HostName::optional(&req.to)?, action, limits: req.limits.unwrap_or_default(), monjv })
    }
}

/// What `restore` moves back home: one VM, or every VM whose home is the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    Vm(VmName),
    Host(HostName),
}

impl Restore {
    pub fn from_wire(scope: i32, name: &str) -> Result<Self> {
        match pb::Scope::try_from(scope) {
            Ok(pb::Scope::Vm) => Ok(Self::Vm(VmName::parse(name)?)),
            Ok(pb::Scope::Host) => Ok(Self::Host(HostName::parse(name)?)),
            _ => Err(VmrmError::invalid(format!("scope {scope} is not one of vm, host"))),
        }
    }
}

impl Migration {
    /// The admin's `Migrate` call.
    pub async fn lpm(&self, req: LpmRequest, out: &LpmOut) -> Result<()> {
        let to = req.to.as_ref().map(HostName::as_str);
        let limits = req.limits;
        let (monjv, password) = req.monjv.clone().unwrap_or_default();
        let validate = req.action == pb::MigrateAction::Validate;
        let names = match req.scope {
            LpmScope::Vms(vms) => crate::domain::names::strings(vms),
            LpmScope::Host(host) => return self.evacuate(host.as_str(), to, limits, validate, out).await,
        };
        match req.action {
            pb::MigrateAction::Cancel => {
                for name in &names {
                    for step in self.cancel_lpm(name).await? {
                        out.line(name, step);
                    }
                }
                Ok(())
            }
            pb::MigrateAction::Validate => {
                for name in &names {
                    for line in self.validate_lpm(name, to).await? {
                        out.line(name, say::vm2000(name, &line));
                    }
                }
                Ok(())
            }
            pb::MigrateAction::Migrate => self.migrate_vms(&names, to, limits, (&monjv, &password), out).await,
        }
    }

    /// VMs named by the admin, one after another (seed: all of them on one host).
    async fn migrate_vms(
        &self,
        names: &[String],
        to: Option<&str>,
        limits: pb::MigrationLimits,
        (monjv, monjv_password): (&str, &str),
        out: &LpmOut,
    ) -> Result<()> {
        let mut hosts = std::collections::BTreeSet::new();
        for name in names {
            hosts.insert(self.records.vm(name).await?.0.host);
        }
        if hosts.len() > 1 {
            return Err(VmrmError::invalid("the VMs of one lpm must all run on the same host"));
        }
        out.line("", say::lpm_running());
        let mut done = 0;
        for name in names {
            let order = LpmOrder {
                vm: name.clone(),
                target: to.map(String::from),
                limits,
                monjv: monjv.to_string(),
                monjv_password: monjv_password.to_string(),
                ..Default::default()
            };
            match self.migrate_one(&order, out).await {
                Ok(()) => done += 1,
                Err(e) if names.len() == 1 => return Err(e),
                Err(e) => out.line(name, say::lpm_failed(name, e)),
            }
        }
        out.line("", say::lpm_summary(done, names.len()));
        match done == names.len() {
            true => Ok(()),
            false => Err(VmrmError::precondition(say::lpm_summary(done, names.len()).text)),
        }
    }

    /// Every managed VM of `host` elsewhere, in priority order.
    async fn evacuate(
        &self,
        name: &str,
        to: Option<&str>,
        limits: pb::MigrationLimits,
        validate: bool,
        out: &LpmOut,
    ) -> Result<()> {
        let host = self.records.host(name).await?;
        let group_name = host
            .host_group
            .clone()
            .ok_or_else(|| VmrmError::precondition(format!("host {name} is in no host_group")))?;
        let (group, _) = self.records.host_group(&group_name).await?;
        if let Some(t) = to {
            self.records.host(t).await?;
            if t == name {
                return Err(VmrmError::invalid(format!("host {name} cannot be evacuated to itself")));
            }
        }
        let mut vms: Vec<VmRecord> =
            self.hsdb.list::<VmRecord>().await?.into_iter().filter(|v| v.host == name && v.managed).collect();
        vms.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        if vms.is_empty() {
            out.line("", say::no_managed_vm_on_host(name));
            return Ok(());
        }
        let targets: Vec<(String, Result<String>)> = match to {
            Some(t) => vms.iter().map(|v| (v.name.clone(), Ok(t.to_string()))).collect(),
            None => self.lpm_targets(&vms, &group, name).await?,
        };
        if validate {
            return self.validate_evacuation(targets, out).await;
        }
        let operation = format!("evacuate {name} {}", crate::now_ms());
        out.line("", say::lpm_running_on_host(name));
        let total = targets.len();
        let runs = futures::stream::iter(targets).map(|(vm, target)| {
            let order = LpmOrder {
                vm: vm.clone(),
                target: target.as_ref().ok().cloned(),
                limits,
                operation: operation.clone(),
                ..Default::default()
            };
            async move {
                let done = match target {
                    Ok(_) => self.migrate_one(&order, out).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &done {
                    out.line(&vm, say::lpm_failed(&vm, e));
                }
                done.is_ok()
            }
        });
        let done = runs.buffered(EVACUATION_PARALLEL).filter(|ok| futures::future::ready(*ok)).count().await;
        out.line("", say::lpm_summary(done, total));
        match done == total {
            true => Ok(()),
            false => Err(VmrmError::precondition(format!(
                "{}; host {name} still runs VMs",
                say::lpm_summary(done, total).text
            ))),
        }
    }

    async fn validate_evacuation(&self, targets: Vec<(String, Result<String>)>, out: &LpmOut) -> Result<()> {
        let mut possible = true;
        for (vm, target) in targets {
            let lines = match target {
                Ok(t) => self.validate_lpm(&vm, Some(&t)).await,
                Err(e) => Err(e),
            };
            match lines {
                Ok(lines) => lines.iter().for_each(|l| out.line(&vm, say::vm2000(&vm, l))),
                Err(e) => {
                    possible = false;
                    out.line(&vm, say::vm2000(&vm, &e.to_string()));
                }
            }
        }
        match possible {
            true => Ok(()),
            false => Err(VmrmError::precondition("not every VM of the host can be migrated now")),
        }
    }

    /// `ksysmgr restore vm NAME` / `restore host NAME`: VMs away from home go back to their home
    /// host — by live migration when they run at full size, else by a restart, which gives
    /// them their full size again (flexible capacity applies only away).
    pub async fn restore(&self, what: &Restore) -> Result<Vec<pb::Step>> {
        let (class, name) = match what {
            Restore::Vm(vm) => ("vm", vm.as_str()),
            Restore::Host(host) => ("host", host.as_str()),
        };
        let names: Vec<String> = match what {
            Restore::Vm(vm) => vec![vm.to_string()],
            Restore::Host(_) => {
                self.records.host(name).await?;
                let vms = self.hsdb.list::<VmRecord>().await?;
                vms.into_iter().filter(|v| v.homehost == name && v.host != name && v.managed).map(|v| v.name).collect()
            }
        };
        let mut checked = Vec::new();
        for n in &names {
            let (vm, group) = self.records.restartable(n).await?;
            if vm.host == vm.homehost {
                if class == "vm" {
                    return Err(VmrmError::precondition(format!(
                        "VM {n} already runs on its home host {}",
                        vm.homehost
                    )));
                }
                continue;
            }
            let home = vm.homehost.clone();
            self.recovery.check_target(&vm, &group, &home).await?;
            checked.push((vm, group, home));
        }
        if checked.is_empty() {
            return Ok(vec![say::all_home(name)]);
        }
        let mut lines = Vec::new();
        for (vm, group, home) in checked {
            // Running at full size: home by live migration, without an outage. Reduced by
            // flexible capacity: a restart gives it its full size back.
            if self.runs_at_full_size(&vm).await {
                lines.extend(self.restore_by_lpm(&vm).await?);
                continue;
            }
            let heading = say::restore_in_progress(&vm.name, &home, false);
            lines.extend(self.recovery.restart_one_vm(vm, &group, Some(&home), heading).await?.steps);
        }
        Ok(lines)
    }

    /// The VM runs on its host at its full size (not reduced by flexible capacity): it can go
    /// home by live migration instead of a restart.
    pub(in crate::controller) async fn runs_at_full_size(&self, vm: &VmRecord) -> bool {
        let Ok(host) = self.records.host(&vm.host).await else { return false };
        let Ok(inv) = self.hmc.host_inventory(&host).await else { return false };
        inv.lpars.iter().any(|l| {
            l.state() == pb::LparState::Running
                && l.definition
                    .as_ref()
                    .is_some_and(|d| d.name == vm.name && d.cpu == vm.cpu && d.memory_mb == vm.memory_mb)
        })
    }

    /// Moves a VM home by live migration; its lines.
    pub(in crate::controller) async fn restore_by_lpm(&self, vm: &VmRecord) -> Result<Vec<pb::Step>> {
        let out = LpmOut::default();
        out.line(&vm.name, say::restore_in_progress(&vm.name, &vm.homehost, true));
        let order = LpmOrder { vm: vm.name.clone(), target: Some(vm.homehost.clone()), ..Default::default() };
        self.migrate_one(&order, &out).await?;
        Ok(out.lines.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(scope: pb::Scope, names: &[&str], action: pb::MigrateAction) -> pb::MigrateRequest {
        pb::MigrateRequest {
            scope: scope as i32,
            names: names.iter().map(|n| n.to_string()).collect(),
            action: action as i32,
            ..Default::default()
        }
    }

    #[test]
    fn malformed_requests_are_refused_before_anything_runs() {
        use pb::{MigrateAction as A, Scope as S};
        let ok = LpmRequest::try_from(req(S::Vm, &["vm-1", "vm-2"], A::Migrate)).unwrap();
        assert_eq!(ok.scope, LpmScope::Vms(VmName::all(&["vm-1".into(), "vm-2".into()]).unwrap()));
        assert!(LpmRequest::try_from(req(S::Host, &["host-1"], A::Validate)).is_ok());
        for bad in [
            req(S::Vm, &[], A::Migrate),
            req(S::Vm, &["../vm"], A::Migrate),
            req(S::Host, &["h1", "h2"], A::Migrate),
            req(S::Unspecified, &["v"], A::Migrate),
            req(S::Host, &["host-1"], A::Cancel),
            pb::MigrateRequest { action: 7, ..req(S::Vm, &["vm-1"], A::Migrate) },
            pb::MigrateRequest { to: "a/b".into(), ..req(S::Vm, &["vm-1"], A::Migrate) },
            pb::MigrateRequest { monjv: "JV".into(), ..req(S::Vm, &["vm-1", "vm-2"], A::Migrate) },
            pb::MigrateRequest { monjv: "../JV".into(), ..req(S::Vm, &["vm-1"], A::Migrate) },
        ] {
            let e = LpmRequest::try_from(bad.clone()).unwrap_err();
            assert!(matches!(e, VmrmError::InvalidArgument(_)), "{bad:?}: {e}");
        }
        let mut forced = req(S::Vm, &["vm-1"], A::Migrate);
        forced.limits = Some(pb::MigrationLimits { policy: 9, ..Default::default() });
        assert!(LpmRequest::try_from(forced).unwrap_err().to_string().contains("abort or force"));
    }
}
