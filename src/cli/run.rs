//! Runs a parsed `ksysmgr` command against the active controller and renders the answer.
use super::format;
use super::grammar::{Class, KsysCommand};
use super::progress;
use crate::error::{Result, VmrmError, unanswered};
use crate::pb;
use crate::transport::AdminClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Steps as ksysmgr prints them.
fn printed(steps: &[pb::Step]) -> String {
    pb::steps::printed(steps).iter().map(|l| format!("{l}\n")).collect()
}

fn lines(reply: pb::CommandReply, output: Output) -> String {
    match output {
        Output::Json => json(&reply),
        Output::Text => printed(&reply.steps),
    }
}

macro_rules! render {
    ($output:expr, $value:expr, $text:expr) => {{
        let value = $value;
        match $output {
            Output::Json => json(&value),
            Output::Text => $text(&value),
        }
    }};
}

/// Prints a migration's lines as they come (JSON: one reply per line), until it ends.
async fn stream_migration(admin: &mut AdminClient, req: pb::MigrateRequest, output: Output) -> Result<String> {
    use std::io::Write;
    let mut stream = admin.migrate(req).await?;
    if progress::on_terminal(output) {
        let mut bars = progress::MigrationBars::default();
        while let Some(reply) = stream.message().await? {
            reply.steps.iter().for_each(|s| bars.line(&s.printed()));
            if let Some(p) = &reply.progress {
                bars.progress(&reply.vm, p);
            }
        }
        return Ok(String::new());
    }
    while let Some(reply) = stream.message().await? {
        let mut stdout = std::io::stdout().lock();
        let _ = match output {
            Output::Json => writeln!(stdout, "{}", serde_json::to_string(&reply).unwrap_or_default()),
            Output::Text => reply.steps.iter().try_for_each(|s| writeln!(stdout, "{}", s.printed())),
        };
        let _ = stdout.flush();
    }
    Ok(String::new())
}

/// A call that answers when its operation is done: under a spinner on a terminal.
async fn long<T>(
    admin: &mut AdminClient,
    output: Output,
    label: &str,
    call: impl AsyncFnOnce(&mut AdminClient) -> Result<T>,
) -> Result<T> {
    match progress::on_terminal(output) {
        true => {
            let watcher = admin.clone();
            progress::spinning(&watcher, label, call(admin)).await
        }
        false => call(admin).await,
    }
}

/// Prints one line (text or JSON) as soon as it comes.
fn print_now<T: serde::Serialize>(output: Output, value: &T, text: impl FnOnce(&T) -> String) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = match output {
        Output::Json => writeln!(stdout, "{}", serde_json::to_string(value).unwrap_or_default()),
        Output::Text => write!(stdout, "{}", text(value)),
    };
    let _ = stdout.flush();
}

/// Follows the event log until Ctrl-C, at whichever controller is active.
async fn watch_events(admin: &mut AdminClient, watch: pb::EventWatch, output: Output) -> Result<String> {
    use futures::StreamExt;
    print_now(output, &(), |_| format::event_header());
    let mut events = std::pin::pin!(admin.follow_events(watch));
    while let Some(event) = events.next().await {
        print_now(output, &event?, format::event_line);
    }
    Ok(String::new())
}

/// The live status; with `monitor`, then the operations' lines until Ctrl-C, the status again
/// from the new active controller when it changes.
async fn watch_status(admin: &mut AdminClient, monitor: bool, output: Output) -> Result<String> {
    loop {
        let mut stream = admin.watch_status(pb::StatusWatch { monitor }).await?;
        loop {
            match stream.message().await {
                Ok(Some(step)) => print_now(output, &step, |s| format!("{}\n", s.printed())),
                Ok(None) => return Ok(String::new()),
                Err(status) if monitor && unanswered(&status) => break,
                Err(status) => return Err(status.into()),
            }
        }
    }
}

/// Writes a snapshot to `path` (a directory: as `NAME.json` in it); the path written.
fn write_snapshot(path: &str, name: &str, content: &[u8]) -> Result<String> {
    let mut path = std::path::PathBuf::from(path);
    if path.is_dir() {
        path.push(format!("{name}.json"));
    }
    // It holds the HMCs' logins: readable by its owner only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| VmrmError::invalid(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, content)
        .map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

/// A snapshot file's bytes (the controller checks what they hold).
fn read_snapshot(path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| VmrmError::invalid(format!("{path}: {e}")))?;
    let limit = crate::domain::snapshot::SNAPSHOT_MAX_BYTES as u64;
    let mut content = Vec::new();
    file.take(limit + 1).read_to_end(&mut content).map_err(|e| VmrmError::invalid(format!("{path}: {e}")))?;
    if content.len() as u64 > limit {
        return Err(VmrmError::invalid(format!("{path} is larger than a snapshot ({limit} bytes at most)")));
    }
    Ok(content)
}

/// Asks `question` on the terminal (stderr), reading the answer from stdin (`y` or `n`); `yes`
/// answers yes without asking (`-y`, for scripts).
fn confirm(question: &str, yes: bool) -> Result<bool> {
    eprintln!("{question}");
    if yes {
        eprintln!("y (-y)");
        return Ok(true);
    }
    let mut answer = String::new();
    let read = std::io::stdin().read_line(&mut answer).map_err(|e| VmrmError::invalid(format!("no answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        _ if read == 0 => Err(VmrmError::invalid("no answer (stdin is closed): answer y or n, or pass -y")),
        "y" | "yes" => Ok(true),
        "n" | "no" => Ok(false),
        other => Err(VmrmError::invalid(format!("`{}` is not y or n; nothing was done", crate::error::quote(other)))),
    }
}

/// A password read from the terminal without echo (or one line from a pipe): never in the
/// command line, where every user of the machine could read it.
fn ask_password(prompt: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    let unread = |e: std::io::Error| VmrmError::invalid(format!("the password could not be read: {e}"));
    let mut line = String::new();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let saved = tcgetattr(&stdin).map_err(|e| unread(e.into()))?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| unread(e.into()))?;
        let read = stdin.read_line(&mut line);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        eprintln!();
        read.map_err(unread)?;
    } else {
        stdin.read_line(&mut line).map_err(unread)?;
    }
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    match password.is_empty() {
        true => Err(VmrmError::invalid("no password was given (password=, or one line on stdin)")),
        false => Ok(password),
    }
}

/// `remove ksyscluster` as the seed runs it: the warning, a snapshot first if wanted (kept in
/// the HSDB, which the removal leaves; written to `filepath` too), then the confirmation.
async fn remove_cluster(
    admin: &mut AdminClient,
    name: String,
    filepath: Option<String>,
    yes: bool,
    output: Output,
) -> Result<String> {
    eprintln!(
        "WARNING: This action will remove all configuration and destroy the KSYS setup, its recommended to create a backup \"ksysmgr add snapshot -h\""
    );
    if confirm("Do you want to a backup to be created now ? [y|n]", yes)? {
        let reply = admin.add_snapshot(pb::SnapshotRequest {}).await?;
        if let Some(path) = &filepath {
            println!("Created: {}", write_snapshot(path, &reply.name, &reply.content)?);
        }
        print!("{}", printed(&reply.steps));
    }
    if !confirm("Do you wish to proceed? [y|n]", yes)? {
        return Ok(format!("ksyscluster {name} was not removed\n"));
    }
    Ok(lines(admin.remove_cluster(pb::RemoveClusterRequest { name, confirm: true }).await?, output))
}

/// One page of the audit trail, and how to ask for the next.
async fn audit(admin: &mut AdminClient, query: pb::EventQuery, output: Output) -> Result<String> {
    let name = query.name.clone();
    Ok(render!(output, admin.query_audit(query).await?, |v: &pb::AuditList| format::audit(v, &name)))
}

/// One page of events, and how to ask for the next.
async fn events(admin: &mut AdminClient, query: pb::EventQuery, output: Output) -> Result<String> {
    let name = query.name.clone();
    Ok(render!(output, admin.query_event(query).await?, |v: &pb::EventList| format::events(v, &name)))
}

/// Runs `cmd`; `follower_read` lets queries be answered by any controller from its own copy;
/// `yes` answers every question with yes.
pub async fn execute(
    admin: &mut AdminClient,
    cmd: KsysCommand,
    output: Output,
    follower_read: bool,
    yes: bool,
) -> Result<String> {
    Ok(match cmd {
        KsysCommand::AddCluster(req) => lines(admin.add_cluster(req).await?, output),
        KsysCommand::AddHmc { name, login, password, ip, site } => {
            let password = match password {
                Some(password) => password,
                None => ask_password(&format!("Password of {login} on HMC {name}: "))?,
            };
            lines(admin.add_hmc(pb::AddHmcRequest { name, login, password, ip, site }).await?, output)
        }
        KsysCommand::AddSite(req) => lines(admin.add_site(req).await?, output),
        KsysCommand::AddStorageAgent(req) => lines(admin.add_storage_agent(req).await?, output),
        KsysCommand::PairHost(req) => lines(admin.pair_host(req).await?, output),
        KsysCommand::ChangeDrIdentity(req) => lines(admin.change_dr_identity(req).await?, output),
        KsysCommand::DiscoverSite(req) => {
            let label = format!("Discovering site {}", req.site);
            lines(long(admin, output, &label, async |a: &mut AdminClient| a.discover_site(req).await).await?, output)
        }
        KsysCommand::Move(req) if req.dr_test => {
            let label = format!("Starting a DR test of host_group {} at {}", req.host_group, req.to);
            lines(long(admin, output, &label, async |a: &mut AdminClient| a.move_host_group(req).await).await?, output)
        }
        KsysCommand::Move(req) => {
            eprintln!("You are initiating a failover across sites");
            if !confirm("Do you wish to proceed? [y|n]", yes)? {
                return Ok(format!("host_group {} was not moved\n", req.host_group));
            }
            let req = pb::MoveRequest { confirm: true, ..req };
            let label = format!("Moving host_group {} to {}", req.host_group, req.to);
            lines(long(admin, output, &label, async |a: &mut AdminClient| a.move_host_group(req).await).await?, output)
        }
        KsysCommand::AddHost { name } => lines(admin.add_host(pb::AddHostRequest { name }).await?, output),
        KsysCommand::AddHostGroup { name, hosts, repo_disk, ha_disk } => {
            lines(admin.add_host_group(pb::AddHostGroupRequest { name, hosts, repo_disk, ha_disk }).await?, output)
        }
        KsysCommand::Discover { host_group, verify } => {
            let label = format!("Discovering host_group {host_group}");
            let req = pb::DiscoverRequest { host_group, verify };
            lines(long(admin, output, &label, async |a: &mut AdminClient| a.discover(req).await).await?, output)
        }
        KsysCommand::Verify { host_group } => lines(admin.verify(pb::VerifyRequest { host_group }).await?, output),
        KsysCommand::RestartVm { vm, host } => {
            let reply = admin.restart_vm(pb::RestartVmRequest { vm, host }).await?;
            render!(output, reply, |r: &pb::RestartVmReply| printed(&r.steps))
        }
        KsysCommand::AddHsdbNode { node_id, endpoint } => {
            lines(admin.add_hsdb_node(pb::AddHsdbNodeRequest { node_id, endpoint }).await?, output)
        }
        KsysCommand::ModifyHsdbNode(req) => lines(admin.modify_hsdb_node(req).await?, output),
        KsysCommand::RemoveHsdbNode { node_id } => {
            lines(admin.remove_hsdb_node(pb::RemoveHsdbNodeRequest { node_id }).await?, output)
        }
        KsysCommand::Modify(req) => lines(admin.modify(req).await?, output),
        KsysCommand::Manage(req) => lines(admin.manage(req).await?, output),
        KsysCommand::Affinity(req) => lines(admin.change_affinity(req).await?, output),
        KsysCommand::Restore(req) => {
            let label = format!("Restoring {}", req.name);
            lines(long(admin, output, &label, async |a: &mut AdminClient| a.restore(req).await).await?, output)
        }
        KsysCommand::Cleanup { host_group, dr_test } => {
            lines(admin.cleanup(pb::CleanupRequest { host_group, dr_test }).await?, output)
        }
        cmd @ (KsysCommand::AddFfdc { .. }
        | KsysCommand::QueryFfdc { .. }
        | KsysCommand::SnapFfdc { .. }
        | KsysCommand::ModifyFfdc(_)
        | KsysCommand::Trace { .. }) => super::ffdc::execute(admin, cmd, output).await?,
        KsysCommand::AddNotify(req) => lines(admin.add_notify(req).await?, output),
        KsysCommand::DeleteNotify(req) => lines(admin.delete_notify(req).await?, output),
        KsysCommand::Lpm(req) => stream_migration(admin, req, output).await?,
        KsysCommand::ChangeMonjv(change) => lines(admin.change_monjv(change).await?, output),
        KsysCommand::ChangeSuCluster(change) => lines(admin.change_su_cluster(change).await?, output),
        KsysCommand::RecoverVmDefinition { vm, host } => {
            lines(admin.recover_vm_definition(pb::RecoverVmDefinitionRequest { vm, host }).await?, output)
        }
        KsysCommand::QueryMonjv { name, password, wait: None, .. } => {
            let list = admin.query_monjv(pb::MonjvQuery { name, password }).await?;
            render!(output, list, |v: &pb::MonjvList| format::monjvs(&v.monjvs))
        }
        KsysCommand::QueryMonjv { name, password, wait: Some((from, to)), timeout_ms } => {
            let watch = pb::MonjvWatch { name, password, from, to, timeout_ms };
            let changed = admin.watch_monjv(watch).await?;
            render!(output, changed, |v: &pb::MonjvView| format::monjvs(std::slice::from_ref(v)))
        }
        KsysCommand::QueryEvent(query) => events(admin, pb::EventQuery { follower_read, ..query }, output).await?,
        KsysCommand::WatchEvents(watch) => watch_events(admin, watch, output).await?,
        KsysCommand::AckEvent(req) => lines(admin.ack_event(req).await?, output),
        KsysCommand::RemoveCluster { name, filepath } => remove_cluster(admin, name, filepath, yes, output).await?,
        KsysCommand::AddSnapshot { filepath } => {
            let reply = admin.add_snapshot(pb::SnapshotRequest {}).await?;
            let written = match &filepath {
                Some(path) => Some(write_snapshot(path, &reply.name, &reply.content)?),
                None => None,
            };
            render!(output, reply, |r: &pb::SnapshotReply| {
                let created = written.as_ref().map(|p| format!("Created: {p}\n")).unwrap_or_default();
                created + &printed(&r.steps)
            })
        }
        KsysCommand::RestoreSnapshot { name, filepath } => {
            let content = match filepath {
                Some(path) => read_snapshot(&path)?,
                None => Vec::new(),
            };
            lines(admin.restore_snapshot(pb::RestoreSnapshotRequest { content, name }).await?, output)
        }
        KsysCommand::QueryStatus { monitor } => watch_status(admin, monitor, output).await?,
        KsysCommand::QueryAudit { name, before, limit } => {
            let query = pb::EventQuery { name, follower_read, before, limit, ..Default::default() };
            audit(admin, query, output).await?
        }
        KsysCommand::QueryVm { name, managed } => {
            let mut list = admin.query_vm(pb::QueryRequest { name: name.clone(), follower_read }).await?;
            list.vms.retain(|v| managed.is_none_or(|m| v.managed == m));
            render!(output, list, |v: &pb::VmList| format::vms(&v.vms, !name.is_empty()))
        }
        KsysCommand::Query { class, name } => {
            let q = pb::QueryRequest { name: name.clone(), follower_read };
            match class {
                Class::System => render!(output, admin.query_system(q).await?, format::system),
                Class::Cluster => {
                    render!(output, admin.query_cluster(q).await?, |v: &pb::ClusterList| format::clusters(&v.clusters))
                }
                Class::Hmc => render!(output, admin.query_hmc(q).await?, |v: &pb::HmcList| { format::hmcs(&v.hmcs) }),
                Class::Host => {
                    render!(output, admin.query_host(q).await?, |v: &pb::HostList| { format::hosts(&v.hosts) })
                }
                Class::HostGroup => {
                    render!(output, admin.query_host_group(q).await?, |v: &pb::HostGroupList| format::host_groups(
                        &v.host_groups
                    ))
                }
                Class::Vios => {
                    render!(output, admin.query_vios(q).await?, |v: &pb::ViosList| { format::vioses(&v.vioses) })
                }
                Class::Affinity(kind) => {
                    let q = pb::AffinityQuery { kind: kind.into(), name };
                    render!(output, admin.query_affinity(q).await?, |v: &pb::AffinityList| format::affinity(&v.groups))
                }
                Class::Hsdb => render!(output, admin.query_hsdb(q).await?, format::hsdb),
                Class::HsdbNode => render!(output, admin.query_hsdb(q).await?, format::hsdb),
                Class::Event => {
                    events(admin, pb::EventQuery { name, follower_read, ..Default::default() }, output).await?
                }
                Class::Audit => {
                    audit(admin, pb::EventQuery { name, follower_read, ..Default::default() }, output).await?
                }
                Class::App => render!(output, admin.query_app(q).await?, |v: &pb::AppList| format::apps(&v.apps)),
                Class::Snapshot => {
                    render!(output, admin.query_snapshot(q).await?, |v: &pb::SnapshotList| format::snapshots(
                        &v.snapshots
                    ))
                }
                Class::Notify => {
                    render!(output, admin.query_notify(q).await?, |v: &pb::NotifyList| format::contacts(&v.contacts))
                }
                Class::Monjv => {
                    let list = admin.query_monjv(pb::MonjvQuery { name, password: String::new() }).await?;
                    render!(output, list, |v: &pb::MonjvList| format::monjvs(&v.monjvs))
                }
                Class::SuCluster => {
                    render!(output, admin.query_su_cluster(q).await?, |v: &pb::SuClusterList| format::su_clusters(
                        &v.clusters
                    ))
                }
                Class::Site => render!(output, admin.query_site(q).await?, |v: &pb::SiteList| format::sites(&v.sites)),
                Class::DrIdentity => {
                    render!(output, admin.query_vm(q).await?, |v: &pb::VmList| format::vms(&v.vms, true))
                }
                Class::StorageAgent => {
                    let q = pb::QueryRequest { name: String::new(), follower_read };
                    render!(output, admin.query_site(q).await?, |v: &pb::SiteList| format::storage_agents(&v.sites))
                }
                Class::Ffdc => {
                    super::ffdc::execute(admin, KsysCommand::QueryFfdc { id: name, node: None }, output).await?
                }
                Class::Vm | Class::VmDefinition => render!(output, admin.query_vm(q).await?, |v: &pb::VmList| {
                    format::vms(&v.vms, !name.is_empty())
                }),
            }
        }
    })
}
