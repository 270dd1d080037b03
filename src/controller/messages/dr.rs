//! The lines of a DR cluster's commands (seed 000 §6.5): sites, storage agents and pairs, the
//! site's discovery with its storage state synchronization, and the move across sites.
use super::{Code, Parts, out_of, say};
use crate::pb::Step;

pub fn site_added(name: &str, site_type: crate::domain::SiteType) -> Step {
    say(Code::SiteAdded, format!("Site {name} was added ({site_type})")).about(name)
}
pub fn storage_agent_added(name: &str, site: &str) -> Step {
    say(Code::StorageAgentAdded, format!("Storage agent {name} added successfully for site {site}"))
        .about(name)
        .to(site)
}
pub fn hosts_paired(host: &str, pair: &str) -> Step {
    say(Code::HostsPaired, format!("Host {host} was paired with {pair}")).about(host).to(pair)
}
pub fn site_discovery_started(site: &str) -> Step {
    say(Code::SiteDiscoveryStarted, "Running discovery on entire site, this may take few minutes...".into()).about(site)
}
pub fn storage_sync_started(group: &str) -> Step {
    say(Code::StorageSyncStarted, format!("Storage state synchronization has started for Host_group {group}"))
        .about(group)
}
pub fn storage_sync_completed(group: &str) -> Step {
    say(Code::StorageSyncCompleted, format!("Storage state synchronization has completed for Host_group {group}"))
        .about(group)
}
pub fn storage_sync_failed(group: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::StorageSyncFailed, format!("ERROR: Storage state synchronization failed for Host_group {group}: {why}"))
        .about(group)
        .because(why)
}
pub fn site_discovery_finished(site: &str) -> Step {
    say(Code::SiteDiscoveryFinished, format!("Discovery has finished for {site}")).about(site)
}
pub fn site_verification_started(site: &str) -> Step {
    say(Code::SiteVerificationStarted, format!("Site verification started for {site}")).about(site)
}
pub fn site_verification_finished(site: &str) -> Step {
    say(Code::SiteVerificationFinished, format!("Verification has finished for {site}")).about(site)
}
pub fn move_started(group: &str, site: &str) -> Step {
    say(Code::MoveStarted, format!("Host_group move started for {group} to {site}")).about(group).to(site)
}
pub fn move_shutdown_started(group: &str, vm: &str) -> Step {
    say(Code::MoveShutdownStarted, format!("Shutdown on {group} Host_group has started for VM {vm}")).about(vm)
}
pub fn move_shutdown_completed(group: &str, vm: &str) -> Step {
    say(Code::MoveShutdownCompleted, format!("Shutdown on {group} Host_group has completed for VM {vm}")).about(vm)
}
pub fn replication_reversed(group: &str, primary: &str, generation: u64) -> Step {
    let text = format!(
        "Replication of Host_group {group} reversed: storage agent {primary} is its primary now (generation {generation})"
    );
    say(Code::MoveReplicationReversed, text).about(group).to(primary)
}
/// An unplanned move's starting point: when the target's copy was the source's state, and the
/// writes the source reported that never arrived (more may have followed).
pub fn consistent_point(group: &str, at_ms: i64, before_ms: i64, missing: u64) -> Step {
    let at = crate::domain::millis::utc(at_ms);
    let text = format!(
        "Host_group {group} starts from its consistent point of {at} ({before_ms} ms before the move): {missing} writes the lost site reported were not replicated"
    );
    say(Code::MoveConsistentPoint, text).about(group).counted(missing as usize, missing as usize)
}
pub fn move_restart_started(site: &str, vm: &str) -> Step {
    say(Code::MoveRestartStarted, format!("Restart on {site} Host_group has started for VM {vm}")).about(vm).to(site)
}
pub fn move_restart_completed(site: &str, vm: &str) -> Step {
    say(Code::MoveRestartCompleted, format!("Restart on {site} Host_group has completed for VM {vm}"))
        .about(vm)
        .to(site)
}
pub fn move_vm_completed(vm: &str) -> Step {
    say(Code::MoveVmCompleted, format!("Move has completed for VM {vm}")).about(vm)
}
pub fn move_cleanup_started(group: &str, vm: &str) -> Step {
    say(Code::MoveCleanupStarted, format!("Configuration cleanup started on {group} Host_group for VM {vm}")).about(vm)
}
pub fn move_rediscovering(vm: &str, site: &str) -> Step {
    say(Code::MoveRediscovering, format!("Rediscovering configuration for VM {vm} on {site}")).about(vm).to(site)
}
pub fn move_rediscovered(vm: &str, site: &str) -> Step {
    say(Code::MoveRediscovered, format!("Done rediscovering configuration for VM {vm} on {site}")).about(vm).to(site)
}
pub fn move_completed(group: &str, site: &str) -> Step {
    say(Code::MoveCompleted, format!("Host_group move completed for Host_group {group} to {site}"))
        .about(group)
        .to(site)
}
pub fn move_summary(moved: usize, total: usize, group: &str, site: &str) -> Step {
    out_of(Code::MoveSummary, moved, total, &format!("VMs have been successfully moved for {group} to {site}"))
        .about(group)
        .to(site)
}
pub fn move_failed(group: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::MoveFailed, format!("ERROR: Host_group move failed for {group}: {why}")).about(group).because(why)
}
pub fn dr_test_started(group: &str, site: &str) -> Step {
    say(Code::DrTestStarted, format!("DR test started for Host_group {group} at {site}")).about(group).to(site)
}
/// The point the test copies start from.
pub fn dr_test_copy(group: &str, san: &str, at_ms: i64) -> Step {
    let at = crate::domain::millis::utc(at_ms);
    let text = format!("Point-in-time copy of Host_group {group} taken on storage agent {san}, consistent as of {at}");
    say(Code::DrTestCopy, text).about(group).to(san)
}
pub fn dr_test_vm_started(copy: &str, vm: &str, host: &str) -> Step {
    let text = format!("DR test copy {copy} of VM {vm} has started on {host}, on an isolated network");
    say(Code::DrTestVmStarted, text).about(copy).to(host)
}
pub fn dr_test_vm_error(copy: &str, why: impl ToString) -> Step {
    let why = why.to_string();
    say(Code::DrTestVmError, format!("ERROR: DR test copy {copy} did not start: {why}")).about(copy).because(why)
}
pub fn dr_test_running(started: usize, total: usize, group: &str, site: &str) -> Step {
    out_of(Code::DrTestRunning, started, total, &format!("VMs of {group} run as DR test copies at {site}"))
        .about(group)
        .to(site)
}
pub fn dr_test_vm_removed(copy: &str, host: &str) -> Step {
    say(Code::DrTestVmRemoved, format!("DR test copy {copy} has been removed from {host}")).about(copy).to(host)
}
pub fn dr_test_ended(group: &str) -> Step {
    say(
        Code::DrTestEnded,
        format!("DR test of Host_group {group} has been cleaned up: its test copies and their disks are gone"),
    )
    .about(group)
}
pub fn dr_identity_set(vm: &str, site: &str, identity: &crate::domain::NetworkIdentity, hosts: usize) -> Step {
    let text = format!(
        "VM {vm} takes the network identity {} {}/{} via {} on the {hosts} hosts of site {site}",
        identity.hostname, identity.ip, identity.netmask, identity.gateway
    );
    say(Code::DrIdentitySet, text).about(vm).to(site).counted(hosts, hosts)
}
pub fn dr_identity_removed(vm: &str, site: &str) -> Step {
    say(Code::DrIdentityRemoved, format!("VM {vm} keeps its own network identity at site {site}")).about(vm).to(site)
}
