//! Planned HA (seed 000: "use the LPM option … to evacuate the host by migrating all its VMs to
//! neighboring hosts in the group … bring the VMs back to their original host in a single
//! operation"): the admin's `Migrate` call for one or more VMs or a whole host, and the move
//! back home (`restore vm|host`: by live migration, or by a restart for a VM that runs reduced). An evacuation migrates the host's managed VMs in priority order (High, Medium,
//! Low), [`EVACUATION_PARALLEL`] at a time, to the hosts the relocation mapper picks at full
//! size (flexible capacity is for restarts only); its migrations share one operation, so the
//! source allows them side by side while any other second outbound migration is refused.
use crate::controller::migration::Migration;
use crate::controller::migration::lpm::{LpmOrder, LpmOut};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::pb;
use futures::StreamExt;

/// Migrations of one evacuation that run at once.
pub const EVACUATION_PARALLEL: usize = 2;

/// A `Migrate` request that cannot run, refused before anything starts.
pub fn check_request(req: &pb::MigrateRequest) -> Result<()> {
    if req.name.split(',').all(|n| n.trim().is_empty()) {
        return Err(VmrmError::invalid(format!("name the {}: ksysmgr lpm vm|host NAME [to=HOST]", req.class)));
    }
    match (req.class.as_str(), req.action.as_str()) {
        ("vm", "" | "validate" | "cancel") | ("host", "" | "validate") => {}
        ("vm" | "host", other) => {
            return Err(VmrmError::invalid(format!(
                "action `{other}` is not one of validate, cancel (vm only); leave it out to migrate"
            )));
        }
        (other, _) => return Err(VmrmError::invalid(format!("lpm applies to a vm or a host, not `{other}`"))),
    }
    if req.class == "host" && req.name.contains(',') {
        return Err(VmrmError::invalid("evacuate one host at a time"));
    }
    if !req.monjv.is_empty() && (req.class != "vm" || req.name.contains(',')) {
        return Err(VmrmError::invalid("a MONJV follows the migration of one VM"));
    }
    crate::pb::migration_limits::limits_of(req.limits.as_ref()).map(|_| ())
}

fn summary(done: usize, total: usize) -> String {
    format!("{done} out of {total} VMs have been successfully performed LPM")
}

impl Migration {
    /// The admin's `Migrate` call, checked by [`check_request`].
    pub async fn lpm(&self, req: pb::MigrateRequest, out: &LpmOut) -> Result<()> {
        let names: Vec<String> =
            req.name.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
        let to = Some(req.to.trim()).filter(|t| !t.is_empty());
        let limits = req.limits.clone().unwrap_or_default();
        match (req.class.as_str(), req.action.as_str()) {
            ("vm", "cancel") => {
                for name in &names {
                    for line in self.cancel_lpm(name).await? {
                        out.line(name, line);
                    }
                }
                Ok(())
            }
            ("vm", "validate") => {
                for name in &names {
                    for line in self.validate_lpm(name, to).await? {
                        out.line(name, line);
                    }
                }
                Ok(())
            }
            ("vm", _) => self.migrate_vms(&names, to, limits, (&req.monjv, &req.monjv_password), out).await,
            (_, action) => self.evacuate(&names[0], to, limits, action == "validate", out).await,
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
        out.line("", "Running LPM on VM(S), this may take few minutes...");
        let mut done = 0;
        for name in names {
            let order = LpmOrder {
                vm: name.clone(),
                target: to.map(String::from),
                limits: limits.clone(),
                monjv: monjv.to_string(),
                monjv_password: monjv_password.to_string(),
                ..Default::default()
            };
            match self.migrate_one(&order, out).await {
                Ok(()) => done += 1,
                Err(e) if names.len() == 1 => return Err(e),
                Err(e) => out.line(name, format!("ERROR: LPM has failed for {name}: {e}")),
            }
        }
        out.line("", summary(done, names.len()));
        match done == names.len() {
            true => Ok(()),
            false => Err(VmrmError::precondition(summary(done, names.len()))),
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
            out.line("", format!("No managed VM runs on host {name}"));
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
        out.line("", format!("Running LPM on VM(S) of host {name}, this may take few minutes..."));
        let total = targets.len();
        let runs = futures::stream::iter(targets).map(|(vm, target)| {
            let order = LpmOrder {
                vm: vm.clone(),
                target: target.as_ref().ok().cloned(),
                limits: limits.clone(),
                operation: operation.clone(),
                ..Default::default()
            };
            async move {
                let done = match target {
                    Ok(_) => self.migrate_one(&order, out).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &done {
                    out.line(&vm, format!("ERROR: LPM has failed for {vm}: {e}"));
                }
                done.is_ok()
            }
        });
        let done = runs.buffered(EVACUATION_PARALLEL).filter(|ok| futures::future::ready(*ok)).count().await;
        out.line("", summary(done, total));
        match done == total {
            true => Ok(()),
            false => Err(VmrmError::precondition(format!("{}; host {name} still runs VMs", summary(done, total)))),
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
                Ok(lines) => lines.into_iter().for_each(|l| out.line(&vm, l)),
                Err(e) => {
                    possible = false;
                    out.line(&vm, e.to_string());
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
    pub async fn restore(&self, class: &str, name: &str) -> Result<Vec<String>> {
        let names: Vec<String> = match class {
            "vm" => vec![name.to_string()],
            "host" => {
                self.records.host(name).await?;
                let vms = self.hsdb.list::<VmRecord>().await?;
                vms.into_iter().filter(|v| v.homehost == name && v.host != name && v.managed).map(|v| v.name).collect()
            }
            other => return Err(VmrmError::invalid(format!("restore applies to a vm or a host, not {other}"))),
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
            return Ok(vec![format!("All VMs of home host {name} already run there")]);
        }
        let mut lines = Vec::new();
        for (vm, group, home) in checked {
            // Running at full size: home by live migration, without an outage. Reduced by
            // flexible capacity: a restart gives it its full size back.
            if self.runs_at_full_size(&vm).await {
                lines.extend(self.restore_by_lpm(&vm).await?);
                continue;
            }
            let heading = format!("Restore in progress for VM {} to home host {home}", vm.name);
            lines.extend(self.recovery.restart_one_vm(vm, &group, Some(&home), heading).await?.lines);
        }
        Ok(lines)
    }

    /// The VM runs on its host at its full size (not reduced by flexible capacity): it can go
    /// home by live migration instead of a restart.
    pub(in crate::controller) async fn runs_at_full_size(&self, vm: &VmRecord) -> bool {
        let Ok(host) = self.records.host(&vm.host).await else { return false };
        let Ok(inv) = self.hmc.host_inventory(&host).await else { return false };
        inv.lpars.iter().any(|l| {
            l.state == LparState::Running.as_str()
                && l.definition
                    .as_ref()
                    .is_some_and(|d| d.name == vm.name && d.cpu == vm.cpu && d.memory_mb == vm.memory_mb)
        })
    }

    /// Moves a VM home by live migration; its lines.
    pub(in crate::controller) async fn restore_by_lpm(&self, vm: &VmRecord) -> Result<Vec<String>> {
        let out = LpmOut::default();
        out.line(&vm.name, format!("Restore in progress for VM {} to home host {} (LPM)", vm.name, vm.homehost));
        let order = LpmOrder { vm: vm.name.clone(), target: Some(vm.homehost.clone()), ..Default::default() };
        self.migrate_one(&order, &out).await?;
        Ok(out.lines.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(class: &str, name: &str, action: &str) -> pb::MigrateRequest {
        pb::MigrateRequest { class: class.into(), name: name.into(), action: action.into(), ..Default::default() }
    }

    #[test]
    fn malformed_requests_are_refused_before_anything_runs() {
        assert!(check_request(&req("vm", "vm-1", "")).is_ok());
        assert!(check_request(&req("host", "host-1", "validate")).is_ok());
        for bad in [
            req("vm", "", ""),
            req("vm", " , ", ""),
            req("host", "h1,h2", ""),
            req("vios", "v", ""),
            req("vm", "vm-1", "later"),
            req("host", "host-1", "cancel"),
        ] {
            let e = check_request(&bad).unwrap_err();
            assert!(matches!(e, VmrmError::InvalidArgument(_)), "{bad:?}: {e}");
        }
        let mut forced = req("vm", "vm-1", "");
        forced.limits = Some(pb::MigrationLimits { policy: "maybe".into(), ..Default::default() });
        assert!(check_request(&forced).unwrap_err().to_string().contains("abort or force"));
    }
}
