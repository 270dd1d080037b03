//! `vmrmd`: one node of a vmrm cluster (roles from `--config`), or `vmrmd local`: a whole
//! simulated datacenter on loopback, one process per node.
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};
use vmrm::cli::{Identity, certs::CertsCmd};
use vmrm::config::NodeConfig;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::node;

/// mimalloc instead of glibc's malloc: a member spends about a tenth of its CPU allocating and
/// freeing the small buffers of gRPC messages and rows, and mimalloc does that markedly faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vmrmd", about = "vmrm node daemon", version)]
struct Args {
    /// The node's TOML configuration (see cluster-configs/).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a whole datacenter on loopback: 3 controllers, 2 HMCs, 4 hosts (SU + 2 VIOSs), a SAN, 12 VMs.
    Local {
        /// Where node data and logs go (emptied first).
        #[arg(long, default_value_os_t = vmrm::cli::identity::local_data_dir())]
        data_dir: PathBuf,
        /// A DR datacenter instead: sites Austin and Dallas, each with a SAN, an HMC and 2 hosts;
        /// 6 VMs at Austin, replicated to Dallas.
        #[arg(long)]
        dr: bool,
    },
    /// Inject a fault into a running VM (drills and tests): kill-agent, stop-agent, start-agent,
    /// hang-os; or, with an empty VM name (""), into the server unit itself:
    /// configuration-update-start|end, shutdown-start|end, refuse-next-inbound, fail-next-resume,
    /// fail-next-activate, fail-next-shutdown, panic (the unit's own code fails: the node aborts);
    /// or, naming one of the unit's VIOSs, shutdown (shut down on purpose: its partition is Not
    /// Activated and the FDE does not take it for a failure).
    Fault {
        /// The VM (LPAR) name, a VIOS of the unit, or "" for the server unit.
        vm: String,
        /// kill-agent | stop-agent | start-agent | hang-os | a server unit fault | shutdown (a VIOS)
        fault: String,
        /// The server unit running the VM (local datacenter: host-N's is 127.0.0.1:73N0).
        #[arg(long)]
        su: String,
        #[command(flatten)]
        identity: Identity,
    },
    /// Set what a running VM's guest does: the memory it holds and how fast it dirties it (what
    /// a live migration must keep up with); --log writes every counter value with the host to
    /// the guest's var/ksys/log/workload.log.
    Workload {
        vm: String,
        #[arg(long)]
        resident_mb: u64,
        #[arg(long, default_value_t = 0)]
        dirty_kb_s: u64,
        #[arg(long)]
        log: bool,
        /// The server unit running the VM.
        #[arg(long)]
        su: String,
        #[command(flatten)]
        identity: Identity,
    },
    /// Write the local datacenter's node configs into a directory (e.g. cluster-configs/local);
    /// with --compose the container cluster's, and docker-compose.yml in the current directory
    /// (with --dr the two-site cluster's, and docker-compose.dr.yml).
    GenConfigs {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        compose: bool,
        #[arg(long, requires = "compose")]
        dr: bool,
    },
    /// Exit 0 when the node at ENDPOINT serves (a container health check).
    Probe {
        endpoint: String,
        #[command(flatten)]
        identity: Identity,
    },
    /// The cluster's certificate authority: create it, issue node and user certificates.
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// Configure the container cluster once its nodes serve (the compose file's one-shot step);
    /// does nothing when the ksyscluster already exists.
    Setup {
        #[arg(long, required = true)]
        compose: bool,
        /// The two-site DR container cluster (`docker-compose.dr.yml`).
        #[arg(long)]
        dr: bool,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,openraft=error,sled=warn,h2=warn,tower=warn,hyper=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // The console shows what the filter lets through; the named trace logs (`ksysmgr trace`,
    // FFDC bundles) keep their own lines whatever it is.
    let console = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_filter(filter);
    tracing_subscriber::registry().with(console).with(vmrm::ffdc::trace_log::layer()).init();
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("vmrmd: {msg}");
    std::process::exit(1);
}

fn main() {
    node::crash_only::abort_on_panic();
    let args = Args::parse();
    match (args.config, args.command) {
        (Some(path), None) => {
            init_tracing();
            let cfg = NodeConfig::load(&path).unwrap_or_else(|e| fail(e));
            if let Err(e) = node::with_runtime(node::run(cfg, node::shutdown_signal())) {
                fail(e);
            }
        }
        (None, Some(Cmd::Local { data_dir, dr })) => {
            init_tracing();
            if let Err(e) = node::with_runtime(run_local(data_dir, dr)) {
                fail(e);
            }
        }
        (None, Some(Cmd::Fault { vm, fault, su, identity })) => {
            let security = identity.security().unwrap_or_else(|e| fail(e));
            let injected = node::with_runtime(vmrm::launcher::inject_fault(&su, &vm, &fault, &security));
            match injected {
                Ok(lpar) => println!("VM {vm}: {fault} injected; LPAR state {}", lpar.state),
                Err(e) => fail(e),
            }
        }
        (None, Some(Cmd::Workload { vm, resident_mb, dirty_kb_s, log, su, identity })) => {
            let security = identity.security().unwrap_or_else(|e| fail(e));
            let w = vmrm::pb::LparWorkload { name: vm.clone(), resident_mb, dirty_kb_s, log };
            match node::with_runtime(vmrm::launcher::set_workload(&su, w, &security)) {
                Ok(_) => println!("VM {vm}: {resident_mb} MB resident, {dirty_kb_s} KB/s dirtied"),
                Err(e) => fail(e),
            }
        }
        (None, Some(Cmd::GenConfigs { out, compose, dr })) => {
            use vmrm::launcher::compose::{Profile, compose_file};
            std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(e));
            let profile = compose.then_some(if dr { Profile::Dr } else { Profile::Ha });
            let topology = match profile {
                Some(p) => p.topology(),
                None => Topology::local(PathBuf::from("/tmp/vmrm-local")),
            };
            for cfg in topology.node_configs() {
                std::fs::write(out.join(format!("{}.toml", cfg.name)), cfg.to_toml()).unwrap_or_else(|e| fail(e));
            }
            if let Some(p) = profile {
                std::fs::write(p.file(), compose_file(p)).unwrap_or_else(|e| fail(e));
            }
        }
        (None, Some(Cmd::Probe { endpoint, identity })) => {
            let security = identity.security().unwrap_or_else(|e| fail(e));
            if !node::with_runtime(vmrm::launcher::serving(&endpoint, &security)) {
                fail(format!("{endpoint} does not serve"));
            }
        }
        (None, Some(Cmd::Certs { cmd })) => match vmrm::cli::certs::run(cmd) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => fail(e),
        },
        (None, Some(Cmd::Setup { dr, .. })) => {
            init_tracing();
            match node::with_runtime(setup_compose(dr)) {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => fail(e),
            }
        }
        _ => fail(
            "give either --config FILE or a command (local, fault, workload, gen-configs, probe, setup, certs); see --help",
        ),
    }
}

/// The compose file's one-shot setup: configure the cluster unless it already is.
async fn setup_compose(dr: bool) -> vmrm::error::Result<Vec<String>> {
    let topology = match dr {
        true => Topology::compose_two_sites(),
        false => Topology::compose(),
    };
    let security = vmrm::launcher::certs::security_of(&topology.certs_dir(), vmrm::launcher::certs::ADMIN)?;
    let mut admin = vmrm::transport::AdminClient::new(topology.controller_endpoints(), security.clone())?;
    match admin.query_cluster(vmrm::pb::QueryRequest::default()).await {
        Ok(list) if !list.clusters.is_empty() => {
            Ok(vec![format!("ksyscluster {} is already configured; nothing to do", list.clusters[0].name)])
        }
        Ok(_) | Err(vmrm::VmrmError::FailedPrecondition(_)) => vmrm::launcher::configure(&topology, &security).await,
        Err(e) => Err(e),
    }
}

async fn run_local(data_dir: PathBuf, dr: bool) -> vmrm::error::Result<()> {
    prepare_data_dir(&data_dir)?;
    let binary = std::env::current_exe().map_err(vmrm::VmrmError::internal)?;
    let topology = match dr {
        true => Topology::local_two_sites(data_dir.clone()),
        false => Topology::local(data_dir.clone()),
    };
    println!("Starting the local datacenter in {} ...", data_dir.display());
    let mut dc = Datacenter::start(topology, &binary).await?;
    for line in dc.setup().await? {
        println!("{line}");
    }
    println!("\nThe local datacenter is up. Nodes (kill a host's three processes to see a host failure):");
    for (name, pid) in dc.nodes() {
        println!("  {name:<18} pid {pid:<8} log {}", dc.log_path(name).display());
    }
    println!(
        "\nCertificates (the cluster CA, every node, and the people admin, operator, monitor): {}",
        dc.topology.certs_dir().display()
    );
    let certs = dc.topology.certs_dir();
    println!(
        "\nDashboard: {} (any controller; import {} into the browser as an authority, log in with {} and {})",
        dc.topology.dashboard_urls().join(" "),
        certs.join("ca.pem").display(),
        certs.join("admin.pem").display(),
        certs.join("admin.key").display()
    );
    let tries = match dr {
        true => "ksysmgr query site\n      ksysmgr query host_group HG1\n      ksysmgr move host_group HG1 to=Dallas",
        false => "ksysmgr query host\n      ksysmgr restart vm vm-1-1 host=host-2",
    };
    println!(
        "\nTry:  ksysmgr query vm        (cargo run --release --bin ksysmgr -- query vm)\n      {tries}\nControllers: {} — press Ctrl-C to stop.",
        dc.topology.controller_endpoints().join(",")
    );
    node::shutdown_signal().await;
    println!("Stopping ...");
    dc.stop();
    Ok(())
}

/// Empties the data directory of an earlier local run (and only such a directory).
fn prepare_data_dir(dir: &std::path::Path) -> vmrm::error::Result<()> {
    const MARKER: &str = ".vmrm-local";
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty && !dir.join(MARKER).exists() {
            return Err(vmrm::VmrmError::invalid(format!(
                "{} is not empty and was not made by `vmrmd local`; choose another --data-dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(vmrm::VmrmError::internal)?;
    }
    std::fs::create_dir_all(dir).map_err(vmrm::VmrmError::internal)?;
    std::fs::write(dir.join(MARKER), "").map_err(vmrm::VmrmError::internal)
}
