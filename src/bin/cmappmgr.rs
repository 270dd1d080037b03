//! `cmappmgr`: the host-side application manager (seed 002). Launches a command in a VM through
//! its guest application server (TLS), watches it, and exits with the command's exit code.
use clap::Parser;
use std::time::Duration;
use vmrm::agents::vm_agent::guest::{GuestDir, default_guests_root};
use vmrm::cli::appmgr::Manager;

/// Exit code of the manager itself failing (not the command's).
const MANAGER_FAILED: i32 = 255;

#[derive(Parser)]
#[command(
    name = "cmappmgr",
    about = "Launch a command in a VM through its application server and exit with its exit code",
    after_help = "Example: cmappmgr --vm vm-1-1 -- /usr/bin/myapp --serve"
)]
struct Args {
    /// The VM (its guest directory holds the server's endpoint and certificate).
    #[arg(long)]
    vm: String,
    /// Root of the VMs' guest directories (default: $VMRM_GUESTS, else the local datacenter's).
    #[arg(long)]
    guests: Option<std::path::PathBuf>,
    /// Seconds a lost application server is waited for (seed: cmappserver_timeout).
    #[arg(long = "cmappserver-timeout", default_value_t = 30)]
    server_timeout: u64,
    /// Milliseconds between two polls of the command.
    #[arg(long = "poll-ms", default_value_t = 1000)]
    poll_ms: u64,
    #[command(flatten)]
    identity: vmrm::cli::Identity,
    /// The command and its arguments, run inside the VM.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let guests = args.guests.unwrap_or_else(default_guests_root);
    let guest = GuestDir::of(&guests, &args.vm).unwrap_or_else(|e| {
        eprintln!("cmappmgr: {e}");
        std::process::exit(MANAGER_FAILED);
    });
    let security = args.identity.security().unwrap_or_else(|e| {
        eprintln!("cmappmgr: {e}");
        std::process::exit(MANAGER_FAILED);
    });
    let manager = Manager {
        security,
        guest,
        vm: args.vm,
        command: args.command,
        poll: Duration::from_millis(args.poll_ms.max(10)),
        server_timeout: Duration::from_secs(args.server_timeout),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(manager.run()) {
        Ok(code) => {
            tracing::info!("the command ended with exit code {code}");
            std::process::exit(code);
        }
        Err(e) => {
            eprintln!("cmappmgr: {e}");
            std::process::exit(MANAGER_FAILED);
        }
    }
}
