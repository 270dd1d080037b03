//! The chaos suite: randomized, bounded rounds of faults against the container cluster
//! (`docker-compose.yml`), each followed by the invariant checks of [`vmrm::testing::chaos`].
//!
//! Fault kinds: a whole host killed (its SU and both VIOS containers), one VIOS killed, only the
//! SU killed, the active controller killed, `docker pause`d or cut off the network, an HMC
//! killed, a host cut off the network and reconnected, a live migration's target SU killed in
//! the middle of pre-copy (the migration must roll back, the VM run on, on its source), the SAN
//! restarted (it must remember every reservation: no VM may stop), one HSDB member's disk
//! filled (it must raise the NOSPACE alarm, and the cluster take writes again once the space is
//! back). After each round: no VM ran twice (read from the copy stamps the VMs wrote),
//! no acknowledged admin write lost, every managed VM running exactly once, and no VM moved for
//! a single VIOS, HMC, controller or SAN fault. Prints a table per fault kind and exits 1 on any
//! violation. Every wait is bounded; the whole suite stops by itself.
//!
//! With `--dr` it drives the two-site DR cluster (`docker-compose.dr.yml`) instead: the site the
//! host group runs at lost (SAN, HMC, hosts and that site's controller killed; an unplanned move to the other site, the
//! lost site back, its stale copies cleaned up, the replication caught up again), the
//! replication link cut (the backup SAN off the network: production moves nothing, and the
//! backup catches up once back), a planned move to the other site, and a host killed at the
//! site the group runs at (HA inside the site). The same checks, on the SAN of the site the
//! group runs at (double runs on both).
//!
//! `bash docker/build-image.sh && cargo run --release --example chaos -- --rounds 21 [--seed N] [--dr]`
mod disks;

use anyhow::{Context, Result, bail};
use clap::Parser;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use strum::{Display, VariantArray};
use vmrm::launcher::Topology;
use vmrm::launcher::compose::{Profile, published};
use vmrm::pb;
use vmrm::testing::chaos::{KindResult, Running, double_runs, exactly_once, log_breaks, moved, table};
use vmrm::transport::{AdminClient, Security};

#[derive(Parser)]
#[command(name = "chaos", about = "Randomized fault rounds against the container cluster, with invariant checks")]
struct Args {
    /// Rounds in all (spread over every fault kind).
    #[arg(long, default_value_t = 21)]
    rounds: usize,
    /// Seed of the random choices (printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Leave the cluster running at the end.
    #[arg(long)]
    keep: bool,
    /// Only these fault kinds (repeatable; all of the cluster's by default).
    #[arg(long, value_enum)]
    only: Vec<Fault>,
    /// The two-site DR cluster and its fault kinds.
    #[arg(long)]
    dr: bool,
}

const PROJECT: &str = "vmrmchaos";
/// Longest wait for any one thing (a recovery, a heal, a stable cluster).
const BOUND: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Display, VariantArray, clap::ValueEnum)]
enum Fault {
    #[strum(to_string = "host killed (SU + both VIOSs)")]
    HostKill,
    #[strum(to_string = "one VIOS killed")]
    ViosKill,
    #[strum(to_string = "only the SU killed")]
    SuKill,
    #[strum(to_string = "active controller killed")]
    ControllerKill,
    #[strum(to_string = "active controller paused")]
    ControllerPause,
    #[strum(to_string = "one HMC killed")]
    HmcKill,
    #[strum(to_string = "host cut off the network")]
    HostDisconnect,
    #[strum(to_string = "LPM target SU killed mid-copy")]
    MigrationTargetLost,
    #[strum(to_string = "SAN restarted")]
    SanRestart,
    #[strum(to_string = "active controller cut off")]
    ControllerPartition,
    #[strum(to_string = "one HSDB member's disk full")]
    HsdbDiskFull,
    #[strum(to_string = "DR: the active site lost")]
    SiteLost,
    #[strum(to_string = "DR: replication link cut")]
    ReplicationCut,
    #[strum(to_string = "DR: planned move")]
    PlannedMove,
}

impl Fault {
    /// The fault kinds of the HA cluster, or of the DR cluster (whose HA inside a site is
    /// tried by killing a host).
    fn of(dr: bool) -> Vec<Fault> {
        let kinds = Fault::VARIANTS.iter().copied();
        match dr {
            true => vec![Fault::SiteLost, Fault::ReplicationCut, Fault::PlannedMove, Fault::HostKill],
            false => {
                kinds.filter(|f| !matches!(f, Fault::SiteLost | Fault::ReplicationCut | Fault::PlannedMove)).collect()
            }
        }
    }

    /// Faults after which no VM may move.
    fn moves_nothing(self) -> bool {
        matches!(
            self,
            Fault::ViosKill
                | Fault::ControllerKill
                | Fault::ControllerPause
                | Fault::ControllerPartition
                | Fault::HmcKill
                | Fault::SanRestart
                | Fault::HsdbDiskFull
                | Fault::ReplicationCut
        )
    }
}

fn container(service: &str) -> String {
    format!("{PROJECT}_{service}_1")
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output().context("running docker")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The compose file that gives the HSDB members file systems of their own ([`disks`]).
static OVERRIDE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
/// The cluster the suite drives.
static PROFILE: std::sync::OnceLock<Profile> = std::sync::OnceLock::new();

fn compose(args: &[&str]) -> Result<()> {
    let mut command = Command::new("docker-compose");
    command.args(["-p", PROJECT]);
    let profile = PROFILE.get().copied().unwrap_or(Profile::Ha);
    let main = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(profile.file());
    command.arg("-f").arg(main);
    if let Some(file) = OVERRIDE.get() {
        command.arg("-f").arg(file);
    }
    let status = command.args(args).status().context("docker-compose")?;
    if !status.success() {
        bail!("docker-compose {} failed", args.join(" "));
    }
    Ok(())
}

struct Cluster {
    topology: Topology,
    managed: Vec<String>,
    /// The last value of the probe attribute an admin write was acknowledged with.
    acked: Option<u32>,
    writes: u32,
    /// The administrator's credentials (issued with the cluster's certificates by the image build).
    security: Security,
    /// The HSDB members' own file systems (the HA cluster's disk-full rounds).
    disks: Option<disks::Disks>,
    /// The DR cluster's site the host group runs at now (0 in the HA cluster).
    active_site: usize,
}

impl Cluster {
    fn admin(&self, avoid: Option<&str>) -> Result<AdminClient> {
        let mut endpoints: Vec<String> = self.topology.controller_endpoints();
        // A faulted controller last: a paused one would hold each call until its deadline.
        let avoided = avoid.and_then(|a| self.topology.node_configs().into_iter().find(|n| n.name == a));
        endpoints.sort_by_key(|e| avoided.as_ref().is_some_and(|n| n.endpoint() == e));
        let mut admin = AdminClient::new(endpoints.iter().map(|e| published(e)).collect(), self.security.clone())?;
        admin.call_timeout = Duration::from_secs(3);
        Ok(admin)
    }

    /// Puts node `node`'s container back on the cluster's network at its own fixed address
    /// (the HSDB members reach each other there; Docker would otherwise hand out another).
    fn reconnect(&self, node: &str) -> Result<()> {
        let config = self.topology.node_configs().into_iter().find(|n| n.name == node).context("no such node")?;
        let address = vmrm::launcher::compose::node_address(&self.topology, config.endpoint());
        docker(&["network", "connect", "--ip", &address, &format!("{PROJECT}_dc"), &container(node)]).map(drop)
    }

    /// The active controller's service name (`ctl-2`), from the endpoint it reports.
    async fn active(&self) -> Result<String> {
        let clusters = self.admin(None)?.query_cluster(pb::QueryRequest::default()).await?.clusters;
        let active = clusters.first().map(|c| c.active_controller.clone()).context("no ksyscluster")?;
        // The active controller is named by its HSDB member address.
        let index = self.topology.hsdb_members().iter().position(|m| m.api == active);
        Ok(format!("ctl-{}", index.with_context(|| format!("no controller at {active}"))? + 1))
    }

    /// The next probe write: a new value of the Low priority's CPU capacity, which no VM of
    /// this cluster uses.
    fn probe_write(&mut self) -> (u32, pb::ModifyRequest) {
        self.writes += 1;
        let value = 100 - self.writes % 50;
        let settings =
            pb::Settings { cpu_capacity: Some(value), priority: pb::Priority::Low as i32, ..Default::default() };
        let req = pb::ModifyRequest {
            level: pb::ModifyLevel::HostGroup as i32,
            names: vec!["HG1".into()],
            settings: Some(settings),
        };
        (value, req)
    }

    /// One acknowledged admin write ([`Self::probe_write`]); returns when it was accepted, or
    /// gives up after [`BOUND`].
    async fn admin_write(&mut self, avoid: Option<&str>) -> Result<Instant> {
        let (value, req) = self.probe_write();
        let give_up = Instant::now() + BOUND;
        loop {
            match self.admin(avoid)?.modify(req.clone()).await {
                Ok(_) => {
                    self.acked = Some(value);
                    return Ok(Instant::now());
                }
                Err(e) if Instant::now() > give_up => {
                    print_controller_logs(&self.topology);
                    bail!("no admin write accepted within {BOUND:?} (the last refusal: {e})");
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until an admin write is refused for the HSDB's NOSPACE alarm.
    async fn refused_for_space(&mut self, deadline: Instant) -> std::result::Result<(), String> {
        let mut last = String::from("every write was accepted");
        while Instant::now() < deadline {
            let (value, req) = self.probe_write();
            match self.admin(None).map_err(|e| e.to_string())?.modify(req).await {
                Ok(_) => self.acked = Some(value),
                Err(e) if e.to_string().contains("NOSPACE") => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }

    /// The acknowledged write is what the cluster holds.
    async fn acked_write_kept(&self) -> Result<Vec<String>> {
        let Some(value) = self.acked else { return Ok(Vec::new()) };
        let groups = self.admin(None)?.query_host_group(pb::QueryRequest::default()).await?.host_groups;
        let low = groups.first().and_then(|g| g.cpu_capacity.get(2).copied());
        Ok(match low == Some(value) {
            true => Vec::new(),
            false => vec![format!("acknowledged write lost: Low cpu_capacity {value} acknowledged, {low:?} held")],
        })
    }

    /// What the hypervisors that answer run (ground truth, not the controller's view).
    async fn running(&self) -> Running {
        vmrm::launcher::running_vms(&self.topology, published, &self.security).await
    }

    /// The record of the SAN of `site`.
    async fn san_record(&self, site: usize) -> Result<Vec<pb::SanOperation>> {
        let san = published(&self.topology.san_endpoint_of(site));
        let channel = vmrm::transport::channel::lazy_channel(&san, Duration::from_secs(1), &self.security)?;
        let req = vmrm::transport::deadline(pb::RecordRequest { disk: String::new() }, Duration::from_secs(5));
        Ok(pb::san_client::SanClient::new(channel).record(req).await?.into_inner().operations)
    }

    /// Waits (bounded) until every managed VM runs exactly once; returns when, or the problems.
    async fn settled(&self, deadline: Instant) -> std::result::Result<Instant, Vec<String>> {
        loop {
            let problems = exactly_once(&self.managed, &self.running().await);
            if problems.is_empty() {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(problems);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until every container reports healthy.
    async fn healthy(&self) -> Result<()> {
        let give_up = Instant::now() + BOUND;
        loop {
            let names: Vec<String> = self.topology.node_configs().iter().map(|n| container(&n.name)).collect();
            let mut args = vec!["inspect", "--format", "{{.State.Health.Status}}"];
            args.extend(names.iter().map(String::as_str));
            if docker(&args).map(|o| o.lines().all(|l| l == "healthy")).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > give_up {
                bail!("the cluster did not become healthy within {BOUND:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// One round: inject, wait for the recovery it calls for, heal, check. Returns the recovery
/// time (ms) when the fault calls for one, and the violations.
async fn round(c: &mut Cluster, fault: Fault, rng: &mut rand::rngs::StdRng) -> Result<(Option<u64>, Vec<String>)> {
    let before = c.running().await;
    // A host that runs VMs, so a host fault has something to recover.
    let mut hosts: Vec<String> = before.values().flatten().cloned().collect();
    hosts.sort();
    hosts.dedup();
    let host = hosts.get(rng.random_range(0..hosts.len().max(1))).cloned().context("no host runs a VM")?;
    let on_host: Vec<String> = before.iter().filter(|(_, h)| h.contains(&host)).map(|(vm, _)| vm.clone()).collect();
    let started = Instant::now();
    let mut violations = Vec::new();
    let recovery = match fault {
        Fault::HostKill | Fault::HostDisconnect => {
            let nodes = Topology::host_nodes(&host);
            for n in &nodes {
                match fault {
                    Fault::HostKill => docker(&["kill", &container(n)]).map(drop)?,
                    _ => docker(&["network", "disconnect", &format!("{PROJECT}_dc"), &container(n)]).map(drop)?,
                }
            }
            // Recovered when every VM of the host runs, once, on another host.
            let deadline = started + BOUND;
            let recovered = loop {
                let now = c.running().await;
                let elsewhere = on_host.iter().all(|vm| now.get(vm).is_some_and(|h| h.len() == 1 && h[0] != host));
                if elsewhere {
                    break Some(started.elapsed().as_millis() as u64);
                }
                if Instant::now() > deadline {
                    violations.push(format!("{host}'s VMs not all running elsewhere within {BOUND:?}"));
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            for n in &nodes {
                match fault {
                    Fault::HostKill => docker(&["start", &container(n)]).map(drop)?,
                    _ => c.reconnect(n)?,
                }
            }
            recovered
        }
        Fault::ViosKill | Fault::SuKill => {
            let [a, b] = Topology::vios_names(&host);
            let node = match fault {
                Fault::ViosKill => [a, b][rng.random_range(0..2)].clone(),
                _ => format!("{host}-su"),
            };
            docker(&["kill", &container(&node)])?;
            // Longer than the host failure detection time: a single VIOS must not move anything.
            tokio::time::sleep(Duration::from_secs(3)).await;
            docker(&["start", &container(&node)])?;
            match c.settled(Instant::now() + BOUND).await {
                Ok(at) => Some((at - started).as_millis() as u64),
                Err(problems) => {
                    violations.extend(problems);
                    None
                }
            }
        }
        Fault::ControllerKill | Fault::ControllerPause | Fault::ControllerPartition => {
            let active = c.active().await?;
            let name = container(&active);
            let network = format!("{PROJECT}_dc");
            let started = Instant::now();
            match fault {
                Fault::ControllerKill => docker(&["kill", &name])?,
                Fault::ControllerPause => docker(&["pause", &name])?,
                _ => docker(&["network", "disconnect", &network, &name])?,
            };
            let accepted = c.admin_write(Some(&active)).await?;
            match fault {
                Fault::ControllerKill => docker(&["start", &name])?,
                Fault::ControllerPause => docker(&["unpause", &name])?,
                _ => c.reconnect(&active).map(|()| String::new())?,
            };
            Some((accepted - started).as_millis() as u64)
        }
        Fault::SanRestart => {
            // Every VM writes to the SAN all the time: restarted, it must still hold every
            // reservation, or the VMs' next writes are refused and they stop.
            docker(&["restart", "--time", "0", &container("san")])?;
            // Every VM writes several times in this while.
            tokio::time::sleep(Duration::from_secs(3)).await;
            match c.settled(Instant::now() + BOUND).await {
                Ok(at) => Some((at - started).as_millis() as u64),
                Err(problems) => {
                    violations.extend(problems);
                    None
                }
            }
        }
        Fault::MigrationTargetLost => {
            let vm = on_host.first().cloned().context("the host runs no VM")?;
            // Earlier rounds' restarts may have filled hosts: a target without room would
            // (rightly) refuse the migration before it starts.
            let room = hosts_with_room(c, &vm, &host).await?;
            if room.is_empty() {
                println!("    no other host has room for {vm}: no migration this round");
                None
            } else {
                let target = room[rng.random_range(0..room.len())].clone();
                let (ended, problems) = lose_migration_target(c, &vm, &host, &target).await?;
                violations.extend(problems);
                ended
            }
        }
        Fault::HsdbDiskFull => {
            let member = format!("ctl-{}", rng.random_range(1..=c.topology.hsdb_members().len()));
            println!("    filling {member}'s disk");
            c.disks.as_ref().context("the HSDB members' own disks")?.fill(&member)?;
            // The member raises its NOSPACE alarm within its next looks (each second), and the
            // HSDB then takes only what frees space.
            if let Err(last) = c.refused_for_space(Instant::now() + Duration::from_secs(10)).await {
                violations.push(format!("{member}'s disk is full, but no write was refused for it: {last}"));
            }
            let freed = Instant::now();
            c.disks.as_ref().context("the HSDB members' own disks")?.free(&member)?;
            let accepted = c.admin_write(None).await?;
            Some((accepted - freed).as_millis() as u64)
        }
        Fault::SiteLost => {
            let (recovered, problems) = lose_site(c).await?;
            violations.extend(problems);
            recovered
        }
        Fault::ReplicationCut => {
            violations.extend(cut_replication(c).await?);
            None
        }
        Fault::PlannedMove => {
            let to = 1 - c.active_site;
            match move_group(c, to, pb::DrType::Planned).await {
                Ok(()) => {
                    c.active_site = to;
                    Some(started.elapsed().as_millis() as u64)
                }
                Err(e) => {
                    violations.push(format!("the planned move to {} failed: {e}", c.topology.sites[to]));
                    None
                }
            }
        }
        Fault::HmcKill => {
            let hmc = format!("hmc-{}", rng.random_range(1..=c.topology.hmcs));
            docker(&["kill", &container(&hmc)])?;
            let accepted = c.admin_write(None).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            docker(&["start", &container(&hmc)])?;
            Some((accepted - started).as_millis() as u64)
        }
    };
    c.healthy().await?;
    c.admin_write(None).await?;
    if let Err(problems) = c.settled(Instant::now() + BOUND).await {
        violations.extend(problems);
    }
    let record = c.san_record(c.active_site).await?;
    let other = match c.topology.sites.len() > 1 {
        true => c.san_record(1 - c.active_site).await?,
        false => Vec::new(),
    };
    for vm in &c.managed {
        let disk = vmrm::domain::identity::disk_for_vm(vm);
        violations.extend(double_runs(&disk, &record));
        violations.extend(double_runs(&disk, &other));
        violations.extend(log_breaks(&disk, &record));
    }
    violations.extend(c.acked_write_kept().await?);
    if fault.moves_nothing() {
        violations.extend(moved(&before, &c.running().await));
    }
    let target = match fault {
        Fault::ControllerKill
        | Fault::ControllerPause
        | Fault::ControllerPartition
        | Fault::HmcKill
        | Fault::SanRestart
        | Fault::HsdbDiskFull => String::new(),
        Fault::SiteLost | Fault::ReplicationCut | Fault::PlannedMove => {
            format!(" (now {})", c.topology.sites[c.active_site])
        }
        _ => format!(" ({host})"),
    };
    println!(
        "{fault:<32}{target:<10} recovery {:>6} ms  violations {}",
        recovery.map_or("-".into(), |r| r.to_string()),
        violations.len()
    );
    for v in &violations {
        println!("    VIOLATION: {v}");
    }
    if !violations.is_empty() {
        print_controller_logs(&c.topology);
    }
    Ok((recovery, violations))
}

/// Moves the host group to site `to`, retrying (bounded) while the controller refuses — an
/// unplanned move waits until the FDE is done with the lost hosts.
async fn move_group(c: &Cluster, to: usize, dr_type: pb::DrType) -> Result<()> {
    let site = c.topology.sites[to].clone();
    let req = pb::MoveRequest {
        host_group: "HG1".into(),
        to: site.clone(),
        dr_type: dr_type as i32,
        confirm: true,
        dr_test: false,
    };
    let give_up = Instant::now() + BOUND;
    loop {
        let mut admin = c.admin(None)?;
        admin.call_timeout = BOUND;
        match admin.move_host_group(req.clone()).await {
            Ok(reply) => {
                let summary = reply.steps.last().map(|s| s.text.clone()).unwrap_or_default();
                let all = format!("{n} out of {n} VMs have been successfully moved", n = c.managed.len());
                return match summary.starts_with(&all) {
                    true => Ok(()),
                    false => bail!("{summary}"),
                };
            }
            Err(e) if Instant::now() > give_up => bail!("no move to {site} within {BOUND:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// The nodes of site `site`: its SAN, its HMC, its hosts and its controller — the controllers
/// are spread over the sites (ctl-1 at the first, ctl-2 at the second) with ctl-3 as the
/// tie-breaker, so the HSDB keeps its majority when a site is lost.
fn site_nodes(t: &Topology, site: usize) -> Vec<String> {
    let mut nodes = vec![Topology::san_name(site), format!("hmc-{}", site + 1), format!("ctl-{}", site + 1)];
    nodes.extend(t.hosts.iter().filter(|h| h.site == site).flat_map(|h| Topology::host_nodes(&h.name)));
    nodes
}

/// The host group's replication as the controller reports it.
async fn replication(c: &Cluster) -> Result<pb::ReplicationView> {
    let q = pb::QueryRequest { name: "HG1".into(), follower_read: false };
    let groups = c.admin(None)?.query_host_group(q).await?.host_groups;
    groups.first().and_then(|g| g.replication.clone()).context("HG1 is not replicated")
}

/// Waits (bounded) until the backup site holds everything the active one wrote.
async fn caught_up(c: &Cluster) -> std::result::Result<(), String> {
    let give_up = Instant::now() + BOUND;
    let mut last = String::new();
    while Instant::now() < give_up {
        match replication(c).await {
            Ok(r) if r.error.is_empty() && r.lag_writes == 0 && r.writable && r.moving.is_empty() => return Ok(()),
            Ok(r) => last = format!("{r:?}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("the replication did not catch up within {BOUND:?}: {last}"))
}

/// The site the host group runs at is lost: an unplanned move to the other site, then the
/// lost site comes back, its stale copies are cleaned up and the replication catches up.
/// Returns the time from the loss to every VM running once at the other site.
async fn lose_site(c: &mut Cluster) -> Result<(Option<u64>, Vec<String>)> {
    let (lost, to) = (c.active_site, 1 - c.active_site);
    let nodes = site_nodes(&c.topology, lost);
    let started = Instant::now();
    for n in &nodes {
        docker(&["kill", &container(n)])?;
    }
    let mut problems = Vec::new();
    let mut recovered = None;
    match move_group(c, to, pb::DrType::Unplanned).await {
        Ok(()) => c.active_site = to,
        Err(e) => problems.push(format!("the unplanned move to {} failed: {e}", c.topology.sites[to])),
    }
    let at_target: Vec<String> = c.topology.hosts.iter().filter(|h| h.site == to).map(|h| h.name.clone()).collect();
    let deadline = started + BOUND;
    while problems.is_empty() {
        let now = c.running().await;
        if c.managed.iter().all(|vm| now.get(vm).is_some_and(|h| h.len() == 1 && at_target.contains(&h[0]))) {
            recovered = Some(started.elapsed().as_millis() as u64);
            break;
        }
        if Instant::now() > deadline {
            problems.push(format!("not every VM runs once at {} within {BOUND:?}", c.topology.sites[to]));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in &nodes {
        docker(&["start", &container(n)])?;
    }
    c.healthy().await?;
    // The lost site's boot lists restarted stale copies, which its SAN refused: cleanup removes them.
    let cleanup = pb::CleanupRequest { host_group: "HG1".into(), dr_test: false };
    let give_up = Instant::now() + BOUND;
    loop {
        match c.admin(None)?.cleanup(cleanup.clone()).await {
            Ok(_) => break,
            Err(e) if Instant::now() > give_up => {
                problems.push(format!("cleanup after the lost site returned: {e}"));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    problems.extend(caught_up(c).await.err());
    Ok((recovered, problems))
}

/// The backup SAN is cut off the network: the active site writes on (the lag shows it), and
/// once back the backup catches up.
async fn cut_replication(c: &Cluster) -> Result<Vec<String>> {
    let backup = Topology::san_name(1 - c.active_site);
    let mut problems = Vec::new();
    docker(&["network", "disconnect", &format!("{PROJECT}_dc"), &container(&backup)])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    match replication(c).await {
        Ok(r) if r.lag_writes > 0 && r.writable => {}
        Ok(r) => problems.push(format!("with {backup} cut off the writes did not go on lagging: {r:?}")),
        Err(e) => problems.push(format!("no replication view while {backup} was cut off: {e}")),
    }
    c.reconnect(&backup)?;
    problems.extend(caught_up(c).await.err());
    Ok(problems)
}

/// The hosts other than `host` with free memory for `vm` (what the partitions that do not sit
/// `Not Activated` hold counts as used, as in the migration's pre-check).
async fn hosts_with_room(c: &Cluster, vm: &str, host: &str) -> Result<Vec<String>> {
    let inventory = |h: &str| {
        let su = c.topology.su_endpoint(h).map(|e| published(&e));
        async move {
            Ok::<_, anyhow::Error>(
                vmrm::launcher::su_inventory(&su.context("a host's SU")?, Duration::from_secs(2), &c.security).await?,
            )
        }
    };
    let held = |inv: &pb::HostInventory| -> u64 {
        let holding = inv.lpars.iter().filter(|l| l.state() != pb::LparState::NotActivated);
        holding.filter_map(|l| l.definition.as_ref()).map(|d| d.memory_mb).sum()
    };
    let source = inventory(host).await?;
    let definitions = source.lpars.iter().filter_map(|l| l.definition.as_ref());
    let need = definitions.filter(|d| d.name == vm).map(|d| d.memory_mb).next().context("the VM's definition")?;
    let mut room = Vec::new();
    for h in c.topology.hosts.iter().map(|h| h.name.as_str()).filter(|h| *h != host) {
        if let Ok(inv) = inventory(h).await
            && inv.memory_total_mb >= held(&inv) + need
        {
            room.push(h.to_string());
        }
    }
    Ok(room)
}

/// Migrates `vm` from `host` to `target` with enough memory to copy for seconds, and in the
/// middle of pre-copy kills the target's SU. The migration must end without moving the VM.
/// The target's SU starts again after the single-SU fault's wait, so what its own VMs' outage
/// calls for happens inside this round. Returns the time from the fault to the migration's end,
/// and what went wrong.
async fn lose_migration_target(c: &Cluster, vm: &str, host: &str, target: &str) -> Result<(Option<u64>, Vec<String>)> {
    let su = published(&c.topology.su_endpoint(host).context("the source's SU")?);
    let workload = |resident_mb| pb::LparWorkload { name: vm.into(), resident_mb, dirty_kb_s: 2000, log: false };
    vmrm::launcher::set_workload(&su, workload(128), &c.security).await?;
    let mut copying = until_precopy(c, vm, target).await?;
    if let Err(why) = &copying {
        // A target an earlier round cut off or killed may still be reconnecting to the HSDB:
        // it cannot confirm the migration's token in time, and the VM rightly stays where it
        // is. The round needs a migration that starts: once more, a little later.
        println!("    the migration of {vm} to {target} did not start ({why}); once more in 3 s");
        tokio::time::sleep(Duration::from_secs(3)).await;
        copying = until_precopy(c, vm, target).await?;
    }
    let mut stream = match copying {
        Ok(stream) => stream,
        Err(why) => {
            vmrm::launcher::set_workload(&su, workload(16), &c.security).await?;
            return Ok((None, vec![format!("the migration of {vm} to {target} never reached pre-copy ({why})")]));
        }
    };
    let node = container(&format!("{target}-su"));
    // From the fault's start: `docker kill` returns only after the container died, and the
    // migration may be rolled back by then.
    let lost = Instant::now();
    docker(&["kill", &node])?;
    let ended = tokio::time::timeout(BOUND, async { while stream.message().await.ok().flatten().is_some() {} }).await;
    let mut problems = Vec::new();
    if ended.is_err() {
        problems.push(format!("the migration of {vm} did not end within {BOUND:?} after its target was lost"));
    }
    let took = lost.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(lost.elapsed())).await;
    docker(&["start", &node])?;
    let running = c.running().await;
    if running.get(vm).is_some_and(|on| on.iter().any(|h| h != host)) {
        problems.push(format!("{vm} left {host} although its migration's target was lost: {running:?}"));
    }
    vmrm::launcher::set_workload(&su, workload(16), &c.security).await?;
    Ok((Some(took), problems))
}

/// Starts migrating `vm` to `target` slowly enough to copy for seconds: the migration's stream
/// once it is in pre-copy, or why it did not get there (with what it said).
async fn until_precopy(
    c: &Cluster,
    vm: &str,
    target: &str,
) -> Result<std::result::Result<tonic::Streaming<pb::MigrateReply>, String>> {
    let limits = pb::MigrationLimits { bandwidth_mb_s: 20, ..Default::default() };
    let req = pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vec![vm.into()],
        to: target.into(),
        limits: Some(limits),
        ..Default::default()
    };
    let mut stream = c.admin(None)?.migrate(req).await?;
    let mut said = Vec::new();
    let copying = tokio::time::timeout(BOUND, async {
        while let Some(reply) = stream.message().await? {
            said.extend(reply.printed().into_iter().map(|l| l.trim().to_string()));
            if reply.progress.is_some_and(|p| p.phase() == pb::MigrationPhase::Precopy) {
                return Ok(true);
            }
        }
        Ok::<_, tonic::Status>(false)
    })
    .await;
    let why = match copying {
        Ok(Ok(true)) => return Ok(Ok(stream)),
        Err(_) => format!("no pre-copy within {BOUND:?}"),
        Ok(Err(status)) => status.message().to_string(),
        Ok(Ok(false)) => "the stream ended".into(),
    };
    Ok(Err(format!("{why}: {}", said.join(" | "))))
}

/// The controllers' warnings and errors, to diagnose a violation after the cluster is gone.
fn print_controller_logs(t: &Topology) {
    for i in 1..=t.controllers {
        let name = container(&format!("ctl-{i}"));
        let Ok(out) = Command::new("docker").args(["logs", "--tail", "400", &name]).output() else { continue };
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
        println!("    --- {name}, last warnings and errors:");
        for l in &lines[lines.len().saturating_sub(25)..] {
            println!("    {l}");
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    println!("chaos: {} rounds, seed {seed}", args.rounds);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let profile = if args.dr { Profile::Dr } else { Profile::Ha };
    let _ = PROFILE.set(profile);
    let topology = profile.topology();
    let managed = topology.hosts.iter().flat_map(|h| h.vms.iter().map(|v| v.name.clone())).collect();
    let certs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(vmrm::launcher::compose::CERTS);
    let security = vmrm::launcher::certs::security_of(&certs, vmrm::launcher::certs::ADMIN)
        .context("the container cluster's certificates (bash docker/build-image.sh issues them)")?;
    let _ = compose(&["down", "-v", "-t", "1"]);
    let members: Vec<String> = (1..=topology.hsdb_members().len()).map(|i| format!("ctl-{i}")).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/chaos-disks");
    // The disk-full rounds need the members' own file systems; the DR cluster has none.
    let disks = match profile {
        Profile::Ha => Some(disks::Disks::create(&root, &members)?),
        Profile::Dr => None,
    };
    if let Some(d) = &disks {
        let _ = OVERRIDE.set(d.override_file());
    }
    let mut c = Cluster { topology, managed, acked: None, writes: 0, security, disks, active_site: 0 };
    compose(&["up", "-d"])?;
    let setup = docker(&["wait", &container("setup")])?;
    if setup.trim() != "0" {
        bail!("the setup step failed (docker-compose -p {PROJECT} logs setup)");
    }
    c.healthy().await?;
    if let Err(problems) = c.settled(Instant::now() + BOUND).await {
        bail!("the cluster did not start with every VM running once: {problems:?}");
    }

    let mut results: BTreeMap<String, KindResult> = BTreeMap::new();
    let mut order: Vec<Fault> = Vec::new();
    while order.len() < args.rounds {
        let mut cycle = match args.only.is_empty() {
            true => Fault::of(args.dr),
            false => args.only.clone(),
        };
        cycle.shuffle(&mut rng);
        order.extend(cycle);
    }
    order.truncate(args.rounds);
    let suite = Instant::now();
    for fault in order {
        let (recovery, violations) = round(&mut c, fault, &mut rng).await?;
        let r = results.entry(fault.to_string()).or_default();
        r.rounds += 1;
        r.recoveries.extend(recovery);
        r.violations.extend(violations);
    }
    println!("\n{} rounds in {:.0} s, seed {seed}:\n", args.rounds, suite.elapsed().as_secs_f64());
    println!("{}", table(&results));
    if !args.keep {
        tear_down().await?;
        if let Some(d) = &c.disks {
            d.remove(&d.members())?;
        }
    }
    Ok(results.values().all(|r| r.violations.is_empty()))
}

/// Removes the cluster. Docker sometimes keeps a stale endpoint on the network after containers
/// were disconnected and reconnected; the network's removal is then tried again for a while, and
/// if Docker still refuses, that is said — the containers are gone and the suite's verdict
/// stands.
async fn tear_down() -> Result<()> {
    if compose(&["down", "-v", "-t", "1"]).is_ok() {
        return Ok(());
    }
    let network = format!("{PROJECT}_dc");
    let left = docker(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={PROJECT}")])?;
    if !left.trim().is_empty() {
        bail!("docker-compose down left containers behind: {}", left.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let mut refused = String::new();
    for attempt in 0..5 {
        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        match docker(&["network", "rm", &network]) {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("not found") => return Ok(()),
            Err(e) => refused = e.to_string(),
        }
    }
    eprintln!("chaos: every container is removed, but Docker keeps the network {network}: {refused}");
    Ok(())
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("chaos: invariant violations (see above)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("chaos: {e:#}");
            let _ = compose(&["down", "-v", "-t", "1"]);
            std::process::exit(1);
        }
    }
}
