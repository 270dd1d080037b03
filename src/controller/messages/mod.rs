//! Every step the controller reports to an administrator, in one place: for each, the code a
//! program switches on, the objects it names, and the line a person reads in the seed's wording
//! (seed 000's `ksysmgr` outputs, as the README's tour shows them). Nothing else writes a line.
mod dr;

pub use dr::*;

use crate::hsdb::Member;
use crate::pb::{Step, StepCode as Code};

fn say(code: Code, text: String) -> Step {
    Step { code: code as i32, text, ..Default::default() }
}

/// The parts of a step beyond its code and text.
trait Parts: Sized {
    fn about(self, subject: &str) -> Self;
    fn to(self, target: &str) -> Self;
    fn counted(self, count: usize, total: usize) -> Self;
    fn because(self, detail: impl ToString) -> Self;
}

impl Parts for Step {
    fn about(mut self, subject: &str) -> Self {
        self.subject = subject.to_string();
        self
    }
    fn to(mut self, target: &str) -> Self {
        self.target = target.to_string();
        self
    }
    fn counted(mut self, count: usize, total: usize) -> Self {
        (self.count, self.total) = (count as u32, total as u32);
        self
    }
    fn because(mut self, detail: impl ToString) -> Self {
        self.detail = detail.to_string();
        self
    }
}

/// `n out of m VMs have been successfully {what}` (the seed's summaries).
fn out_of(code: Code, n: usize, m: usize, what: &str) -> Step {
    say(code, format!("{n} out of {m} {what}")).counted(n, m)
}

// Configuration.

pub fn cluster_node_added() -> Step {
    say(Code::ClusterNodeAdded, "Adding node to current cluster configuration".into())
}
pub fn cluster_created(name: &str) -> Step {
    say(Code::ClusterCreated, "Ksyscluster has been created, you can begin adding HMCs, Hosts, etc".into()).about(name)
}
pub fn cluster_verifying(name: &str) -> Step {
    say(Code::ClusterVerifying, "Ksyscluster has been created, running verify now".into()).about(name)
}
pub fn cluster_verified(name: &str, voters: usize) -> Step {
    let text = format!("Ksyscluster has been verified: {voters} HSDB voters agreed on its record");
    say(Code::ClusterVerified, text).about(name).counted(voters, voters)
}
pub fn ksys_running(active: &str) -> Step {
    let text =
        format!("KSYS subsystem is running on the active controller {active}, you can begin adding HMCs, Hosts, etc");
    say(Code::KsysRunning, text).about(active)
}
pub fn hmc_added(name: &str) -> Step {
    say(Code::HmcAdded, format!("HMC {name} added successfully")).about(name)
}
pub fn host_added(name: &str) -> Step {
    say(Code::HostAdded, format!("Host {name} added successfully")).about(name)
}
pub fn host_group_added(name: &str) -> Step {
    say(Code::HostGroupAdded, format!("Host_group {name} added successfully")).about(name)
}
pub fn run_discovery(group: &str) -> Step {
    say(Code::RunDiscovery, "Run discover command to proceed further".into()).about(group)
}

// Discovery and verification.

pub fn discovery_started(group: &str) -> Step {
    say(Code::DiscoveryStarted, format!("Running discovery on Host_group {group}, this may take few minutes..."))
        .about(group)
}
pub fn host_not_queried(host: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::HostNotQueried, format!("ERROR: Host {host} could not be queried through its HMCs: {why}"))
        .about(host)
        .because(why)
}
pub fn vios_preparing(host: &str) -> Step {
    say(Code::ViosPreparing, format!("Preparing VIOS in {host} for HA management")).about(host)
}
pub fn vios_prepared(host: &str) -> Step {
    say(Code::ViosPrepared, format!("VIOS in {host} prepared for HA management")).about(host)
}
pub fn vm_discovery_skipped(vm: &str, host: &str) -> Step {
    say(Code::VmDiscoverySkipped, format!("Skipping VM {vm} on Host {host} due to some other process in progress"))
        .about(vm)
        .to(host)
}
pub fn vm_discovery_started(vm: &str) -> Step {
    say(Code::VmDiscoveryStarted, format!("Discovery has started for VM {vm}")).about(vm)
}
pub fn vm_discovered(vm: &str) -> Step {
    say(Code::VmDiscovered, format!("Discovery for VM {vm} is complete")).about(vm)
}
pub fn discovery_finished(group: &str) -> Step {
    say(Code::DiscoveryFinished, format!("Discovery has finished for {group}")).about(group)
}
pub fn vms_skipped(skipped: usize) -> Step {
    let s = if skipped == 1 { "managed VM has" } else { "managed VMs have" };
    say(Code::VmsSkipped, format!("{skipped} {s} been skipped for discovery")).counted(skipped, skipped)
}
pub fn vms_discovered(discovered: usize, managed: usize) -> Step {
    out_of(Code::VmsDiscovered, discovered, managed, "managed VMs have been successfully discovered")
}
pub fn verification_started(group: &str) -> Step {
    say(Code::VerificationStarted, format!("Host_group verification started for {group}")).about(group)
}
pub fn vm_verification_started(vm: &str) -> Step {
    say(Code::VmVerificationStarted, format!("{vm} verification has started")).about(vm)
}
pub fn vm_verified(vm: &str) -> Step {
    say(Code::VmVerified, format!("{vm} verification has completed")).about(vm)
}
pub fn vm_verify_error(vm: &str, why: &str) -> Step {
    say(Code::VmVerifyError, format!("ERROR: Verify has encountered an error for VM {vm}")).about(vm).because(why)
}
pub fn verification_finished(group: &str) -> Step {
    say(Code::VerificationFinished, format!("Verification has finished for {group}")).about(group)
}
pub fn vms_verified(verified: usize, total: usize) -> Step {
    out_of(Code::VmsVerified, verified, total, "VMs have been successfully verified")
}
pub fn unverified_vms() -> Step {
    say(Code::UnverifiedVms, "Unverified VMs:".into())
}
pub fn unverified_vm(vm: &str) -> Step {
    say(Code::UnverifiedVm, vm.to_string()).about(vm)
}
pub fn vm_error_follows(vm: &str) -> Step {
    say(Code::VmErrorFollows, format!("Following error is returned for VM {vm}:")).about(vm)
}
pub fn vm_errors(vm: &str, why: &str) -> Step {
    say(Code::VmErrors, format!("Errors: {why}")).about(vm).because(why)
}
pub fn review_errors() -> Step {
    say(Code::ReviewErrors, "Please review the error(s) and take any corrective actions".into())
}

// Settings and policies.

pub fn notify_added(user: &str, contact: &str) -> Step {
    say(Code::NotifyAdded, "successfully added user info".into()).about(user).to(contact)
}
/// `contacts`: how many of the user's contacts were deleted.
pub fn notify_deleted(user: &str, contacts: usize) -> Step {
    say(Code::NotifyDeleted, "successfully deleted user info".into()).about(user).counted(contacts, contacts)
}
pub fn ksys_setting_updated(setting: &str) -> Step {
    say(Code::KsysSettingUpdated, format!("KSYS {setting} has been updated")).because(setting)
}
/// `settings`: the changed settings' names, quoted as the seed quotes them.
pub fn host_group_modified(group: &str, settings: &str) -> Step {
    let text = format!("For Host_group {group} attribute(s) {settings} was successfully modified.");
    say(Code::HostGroupModified, text).about(group).because(settings)
}
pub fn host_modified(host: &str, settings: &str) -> Step {
    let text = format!("For Host {host} attribute(s) {settings} was successfully modified.");
    say(Code::HostModified, text).about(host).because(settings)
}
/// `ksysmgr modify ffdc …`.
pub fn ffdc_modified(settings: &str) -> Step {
    let text = format!("For FFDC attribute(s) {settings} was successfully modified.");
    say(Code::FfdcModified, text).about("ffdc").because(settings)
}
pub fn vm_modified(vm: &str, settings: &str) -> Step {
    let text = format!("For VM {vm} attribute(s) {settings} was successfully modified.");
    say(Code::VmModified, text).about(vm).because(settings)
}
pub fn no_backup_host(vm: &str) -> Step {
    say(Code::NoBackupHost, format!("WARNING: No backup host will be left for this VM {vm}.")).about(vm)
}
pub fn vm_managed(vm: &str, managed: bool) -> Step {
    let (code, word) = match managed {
        true => (Code::VmManaged, "managed"),
        false => (Code::VmUnmanaged, "unmanaged"),
    };
    say(code, format!("VM {vm} was successfully {word}. Please run discovery to apply changes")).about(vm)
}
/// `kind`: Collocation, Anticollocation or Workgroup.
pub fn affinity_group_created(kind: &str, name: &str) -> Step {
    say(Code::AffinityGroupCreated, format!("{kind} group {name} was created")).about(name).because(kind)
}
pub fn affinity_group_modified(kind: &str, name: &str) -> Step {
    say(Code::AffinityGroupModified, format!("{kind} group {name} was modified")).about(name).because(kind)
}
pub fn affinity_group_removed(kind: &str, name: &str) -> Step {
    say(Code::AffinityGroupRemoved, format!("{kind} group {name} was removed")).about(name).because(kind)
}

// The HSDB's members.

pub fn hsdb_node_added(node_id: u64, member: &Member, index: u64) -> Step {
    let text = format!(
        "HSDB node {node_id} ({member}) added as a learner and caught up to log index {index}. \
         Make it a voter with: ksysmgr modify hsdb_node {node_id} role=voter"
    );
    say(Code::HsdbNodeAdded, text).about(&node_id.to_string()).to(&member.api).because(index)
}
pub fn hsdb_node_role_changed(node_id: u64, role: &str) -> Step {
    say(Code::HsdbNodeRoleChanged, format!("HSDB node {node_id} is now a {role}"))
        .about(&node_id.to_string())
        .because(role)
}
pub fn hsdb_node_removed(node_id: u64, member: &Member) -> Step {
    let text = format!("HSDB node {node_id} ({member}) removed from the HSDB");
    say(Code::HsdbNodeRemoved, text).about(&node_id.to_string()).to(&member.api)
}

// Restarts.

pub fn host_group_restart_in_progress(group: &str) -> Step {
    say(Code::HostGroupRestartInProgress, format!("Restart in progress for Host_group {group}")).about(group)
}
pub fn vm_restart_in_progress(vm: &str) -> Step {
    say(Code::VmRestartInProgress, format!("Restart in progress for VM {vm}")).about(vm)
}
// Configuration snapshots (seed: `ksysmgr add snapshot`).

pub fn snapshot_created(name: &str) -> Step {
    say(Code::SnapshotCreated, format!("Successfully created a configuration snapshot: {name}")).about(name)
}
pub fn snapshot_restored(name: &str) -> Step {
    say(Code::SnapshotRestored, format!("Configuration snapshot {name} has been restored")).about(name)
}
pub fn snapshot_vm_missing(vm: &str) -> Step {
    let text = format!("WARNING: VM {vm} of the snapshot was not discovered; its policies were not restored");
    say(Code::SnapshotVmMissing, text).about(vm)
}

// remove ksyscluster (seed Example 3-89).

pub fn cluster_removing() -> Step {
    say(Code::ClusterRemoving, "This may take a few minutes to safely remove the ksyscluster".into())
}
pub fn host_groups_deleted() -> Step {
    say(Code::HostGroupsDeleted, "Host_groups have been deleted".into())
}
pub fn hosts_deleted() -> Step {
    say(Code::HostsDeleted, "Hosts have been deleted".into())
}
pub fn hmcs_deleted() -> Step {
    say(Code::HmcsDeleted, "HMCs have been deleted".into())
}
pub fn cluster_removed(name: &str) -> Step {
    say(Code::ClusterRemoved, format!("Ksyscluster {name} has been removed")).about(name)
}

// The live status (seed: `query system status monitor=yes`).

pub fn host_group_ready(group: &str) -> Step {
    say(Code::HostGroupReady, format!("Host_group {group} is currently in Ready state")).about(group)
}
pub fn host_group_not_discovered(group: &str) -> Step {
    let text = format!("Host_group {group} is not discovered yet: run `ksysmgr discover host_group {group}`");
    say(Code::HostGroupReady, text).about(group)
}
pub fn monitoring_activity() -> Step {
    say(Code::MonitoringActivity, "Press Ctrl-C to quit monitoring for activity".into())
}
pub fn lpm_in_progress(vm: &str, host: &str) -> Step {
    say(Code::LpmInProgress, format!("LPM in progress for VM {vm} from host {host}")).about(vm).to(host)
}
pub fn lines_missed(count: u64) -> Step {
    let text = format!("... {count} lines were not shown: this watcher fell behind");
    say(Code::LinesMissed, text).counted(count as usize, count as usize)
}
pub fn event_acknowledged(sequence: u64) -> Step {
    say(Code::EventAcknowledged, format!("Event {sequence} has been acknowledged")).because(sequence)
}
pub fn events_acknowledged(count: u64, through: u64) -> Step {
    let text = format!("{count} events have been acknowledged (every event up to {through})");
    say(Code::EventAcknowledged, text).counted(count as usize, count as usize).because(through)
}
pub fn restart_resumed(subject: &str) -> Step {
    say(Code::RestartResumed, format!("Restart in progress for {subject} (resumed)")).about(subject)
}
/// `by_lpm`: home by live migration (the VM runs at full size), else by a restart.
pub fn restore_in_progress(vm: &str, home: &str, by_lpm: bool) -> Step {
    let (how, detail) = if by_lpm { (" (LPM)", "LPM") } else { ("", "restart") };
    say(Code::RestoreInProgress, format!("Restore in progress for VM {vm} to home host {home}{how}"))
        .about(vm)
        .to(home)
        .because(detail)
}
pub fn vm_definition_recovered(vm: &str, from: &str, on: &str) -> Step {
    say(Code::VmDefinitionRecovered, format!("Definition of VM {vm} recovered from host {from} on host {on}"))
        .about(vm)
        .to(on)
        .because(from)
}
pub fn restart_error(vm: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::RestartError, format!("ERROR: Restart has encountered an error for VM {vm}: {why}"))
        .about(vm)
        .because(why)
}
pub fn ha_monitoring_stopping(vm: &str) -> Step {
    say(Code::HaMonitoringStopping, format!("Stopping HA monitoring for VM {vm}")).about(vm)
}
pub fn ha_monitoring_stopped(vm: &str) -> Step {
    say(Code::HaMonitoringStopped, format!("HA monitoring for VM {vm} stopped")).about(vm)
}
pub fn restart_started(vm: &str) -> Step {
    say(Code::RestartStarted, format!("Restart has started for VM {vm}")).about(vm)
}
pub fn ha_monitoring_starting(vm: &str) -> Step {
    say(Code::HaMonitoringStarting, format!("Starting HA monitoring for VM {vm}")).about(vm)
}
pub fn ha_monitoring_started(vm: &str) -> Step {
    say(Code::HaMonitoringStarted, format!("HA monitoring for VM {vm} started")).about(vm)
}
pub fn restart_completed(vm: &str, target: &str) -> Step {
    say(Code::RestartCompleted, format!("Restart on Target host {target} has completed for VM {vm}"))
        .about(vm)
        .to(target)
}
pub fn shutdown_started(vm: &str) -> Step {
    say(Code::ShutdownStarted, format!("Shutdown has started for VM {vm}")).about(vm)
}
pub fn shutdown_completed(vm: &str) -> Step {
    say(Code::ShutdownCompleted, format!("Shutdown has completed for VM {vm}")).about(vm)
}
/// The source did not stop the VM; the SAN reservation keeps it from writing its disk.
pub fn shutdown_failed(vm: &str, host: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    let text = format!("Shutdown has failed for VM {vm} on host {host} ({why}); the SAN fence keeps it off its disk");
    say(Code::ShutdownFailed, text).about(vm).to(host).because(why)
}
pub fn configuration_cleanup_started(vm: &str) -> Step {
    say(Code::ConfigurationCleanupStarted, format!("Configuration cleanup started for VM {vm}")).about(vm)
}
pub fn configuration_cleanup_error(vm: &str, why: impl ToString) -> Step {
    let text = format!("ERROR: Restart has encountered an error for VM {vm} during Configuration Cleanup");
    say(Code::ConfigurationCleanupError, text).about(vm).because(why)
}
pub fn restart_advised(vm: &str, target: &str) -> Step {
    let text = format!(
        "restart_policy is advisory_mode: VM {vm} would be restarted on host {target}; run `ksysmgr restart vm {vm}` to do it"
    );
    say(Code::RestartAdvised, text).about(vm).to(target)
}
pub fn advisory_summary(group: &str, total: usize) -> Step {
    let text = format!("Host_group {group} is in advisory_mode: 0 out of {total} VMs restarted");
    say(Code::AdvisorySummary, text).about(group).counted(0, total)
}
pub fn restart_summary(restarted: usize, total: usize) -> Step {
    out_of(Code::RestartSummary, restarted, total, "VMs have been successfully restarted")
}

// Stale definitions.

pub fn cleanup_started(group: &str) -> Step {
    say(Code::CleanupStarted, format!("Cleanup started for Host_group {group}")).about(group)
}
pub fn cleanup_host_skipped(host: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::CleanupHostSkipped, format!("Host {host} skipped: {why}")).about(host).because(why)
}
pub fn stale_definition_removed(vm: &str, host: &str) -> Step {
    say(Code::StaleDefinitionRemoved, format!("Removed stale definition of VM {vm} from host {host}"))
        .about(vm)
        .to(host)
}
pub fn stale_definition_not_removed(vm: &str, host: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    let text = format!("ERROR: stale definition of VM {vm} on host {host} not removed: {why}");
    say(Code::StaleDefinitionNotRemoved, text).about(vm).to(host).because(why)
}
pub fn cleanup_finished(group: &str, removed: usize) -> Step {
    let text = format!("Cleanup has finished for {group}: {removed} stale definition(s) removed");
    say(Code::CleanupFinished, text).about(group).counted(removed, removed)
}

// Live partition mobility.

pub fn lpm_running() -> Step {
    say(Code::LpmRunning, "Running LPM on VM(S), this may take few minutes...".into())
}
pub fn lpm_running_on_host(host: &str) -> Step {
    say(Code::LpmRunningOnHost, format!("Running LPM on VM(S) of host {host}, this may take few minutes..."))
        .about(host)
}
pub fn no_managed_vm_on_host(host: &str) -> Step {
    say(Code::NoManagedVmOnHost, format!("No managed VM runs on host {host}")).about(host)
}
pub fn lpm_started(vm: &str) -> Step {
    say(Code::LpmStarted, format!("LPM has started for {vm}")).about(vm)
}
pub fn lpm_completed(vm: &str, target: &str) -> Step {
    say(Code::LpmCompleted, format!("LPM has completed for {vm} on Target host {target}")).about(vm).to(target)
}
pub fn lpm_failed(vm: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::LpmFailed, format!("ERROR: LPM has failed for {vm}: {why}")).about(vm).because(why)
}
pub fn lpm_summary(done: usize, total: usize) -> Step {
    out_of(Code::LpmSummary, done, total, "VMs have been successfully performed LPM")
}
pub fn lpm_cancel_requested(vm: &str, target: &str, source: &str) -> Step {
    let text = format!(
        "Cancel requested for the LPM of VM {vm} to host {target}: it rolls back and keeps running on host {source}"
    );
    say(Code::LpmCancelRequested, text).about(vm).to(target)
}
/// A VM2000 message a server unit or the pre-check reported (`VMS2460 …`), as it was.
pub fn vm2000(vm: &str, message: &str) -> Step {
    say(Code::Vm2000Message, message.to_string()).about(vm).because(message)
}
pub fn all_home(host: &str) -> Step {
    say(Code::AllHome, format!("All VMs of home host {host} already run there")).about(host)
}

// MONJVs and SU clusters.

pub fn monjv_monitoring(name: &str, vm: &str, status: &str) -> Step {
    say(Code::MonjvMonitoring, format!("MONJV {name} monitors VM {vm} from now on (status {status})"))
        .about(name)
        .to(vm)
        .because(status)
}
pub fn monjv_user_written(name: &str) -> Step {
    say(Code::MonjvUserWritten, format!("MONJV {name}: user part (bytes 129-256) written")).about(name)
}
pub fn monjv_removed(name: &str) -> Step {
    say(Code::MonjvRemoved, format!("MONJV {name} removed")).about(name)
}
pub fn su_cluster_added(name: &str, hosts: (&str, &str), status: &str) -> Step {
    let text = format!("SU cluster {name} of hosts {} and {} added; status {status}", hosts.0, hosts.1);
    say(Code::SuClusterAdded, text).about(name).because(status)
}
pub fn su_cluster_status(name: &str, status: &str) -> Step {
    say(Code::SuClusterStatus, format!("SU cluster {name} is {status}")).about(name).because(status)
}
pub fn su_cluster_removed(name: &str) -> Step {
    say(Code::SuClusterRemoved, format!("SU cluster {name} removed")).about(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_carries_its_code_its_objects_and_the_seeds_line() {
        let s = restart_completed("vm-1", "host-2");
        assert_eq!((s.code(), s.subject.as_str(), s.target.as_str()), (Code::RestartCompleted, "vm-1", "host-2"));
        assert_eq!(s.text, "Restart on Target host host-2 has completed for VM vm-1");
        let s = vms_discovered(3, 4);
        assert_eq!(
            (s.count, s.total, s.text.as_str()),
            (3, 4, "3 out of 4 managed VMs have been successfully discovered")
        );
        let s = shutdown_failed("vm-1", "host-1", "no answer");
        assert_eq!((s.detail.as_str(), s.target.as_str()), ("no answer", "host-1"));
        assert_eq!(vms_skipped(1).text, "1 managed VM has been skipped for discovery");
    }
}
