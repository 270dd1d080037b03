//! The guest application server (seed 002: `cmappserver`). A host-side manager asks it, over
//! TLS, to launch a command in the VM, polls it, and gets its exit code when it ends; at most
//! 30 processes are watched at once ([`ProcessTable`]). It runs with the VM agent: it listens on
//! the VM's address, writes that endpoint and its certificate into the VM's own files, and has
//! a new session id on every start, so a manager can tell that the processes it watched are
//! gone. When the agent stops, the processes it launched are killed with it.
use super::ame::ProcessGroups;
use super::guest::GuestDir;
use super::guest_tls::server_identity;
use super::process_table::{ProcessState, ProcessTable};
use super::scripts;
use crate::error::{Result, VmrmError};
use crate::logic::app_engine::Outcome;
use crate::pb::{self, app_server_server::AppServerServer};
use crate::transport::gate::Gate;
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex, MutexGuard};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

#[derive(Clone)]
struct Shared {
    vm: String,
    guest: GuestDir,
    session: String,
    table: Arc<Mutex<ProcessTable>>,
    groups: ProcessGroups,
    /// Set when the agent stops, before its processes are killed: from then on the server
    /// answers nothing, so no manager takes a process killed by the stop for one that ended
    /// (it reconnects, finds the next session, and launches again).
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    fn serving(&self) -> Result<(), Status> {
        match self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(Status::unavailable(format!("the application server of VM {} is stopping", self.vm))),
            false => Ok(()),
        }
    }

    fn table(&self) -> MutexGuard<'_, ProcessTable> {
        self.table.lock().expect("process table lock")
    }
}

#[tonic::async_trait]
impl pb::app_server_server::AppServer for Shared {
    async fn launch(&self, req: Request<pb::LaunchRequest>) -> Result<Response<pb::LaunchReply>, Status> {
        self.serving()?;
        let command = req.into_inner().command;
        let Some((program, args)) = command.split_first().filter(|(p, _)| !p.is_empty()) else {
            return Err(VmrmError::invalid("a launch needs a command: the program, then its arguments").into());
        };
        let mut table = self.table();
        let id = table.admit()?;
        let launched = scripts::launch(program, args, &self.guest).map_err(|outcome| {
            let why = match outcome {
                Outcome::Unusable(why) => why,
                other => format!("{other:?}"),
            };
            VmrmError::invalid(format!("cannot run {program} in VM {}: {why}", self.vm))
        })?;
        self.groups.add(launched.group);
        table.started(id, launched.group);
        drop(table);
        tracing::info!(vm = %self.vm, "application server: process {id} (pid {}) launched: {command:?}", launched.group);
        let (shared, mut child) = (self.clone(), launched.child);
        tokio::spawn(async move {
            let exit_code = match child.wait().await {
                Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                Err(_) => -1,
            };
            tracing::info!(vm = %shared.vm, "application server: process {id} ended with exit code {exit_code}");
            shared.table().ended(id, exit_code);
        });
        Ok(Response::new(pb::LaunchReply { id, pid: launched.group as u32, session: self.session.clone() }))
    }

    async fn poll(&self, req: Request<pb::PollRequest>) -> Result<Response<pb::ProcessStatus>, Status> {
        self.serving()?;
        let session = self.session.clone();
        let status = match self.table().status(req.into_inner().id)? {
            ProcessState::Running { .. } => pb::ProcessStatus { running: true, exit_code: 0, session },
            ProcessState::Ended { exit_code } => pb::ProcessStatus { running: false, exit_code, session },
        };
        Ok(Response::new(status))
    }
}

/// A running application server; dropping it stops the server (its processes keep running:
/// a hung VM freezes them, a stopped VM kills them).
pub struct AppServer {
    shared: Shared,
    endpoint: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl AppServer {
    /// Serves on `ip` (any free port) for VM `vm`, with the key from the VM's files, to
    /// managers whose certificate the cluster's CA (`managers`) issued to an administrator
    /// (to any caller when the cluster runs without TLS).
    pub fn start(
        vm: &str,
        ip: IpAddr,
        guest: &GuestDir,
        groups: ProcessGroups,
        managers: Option<Certificate>,
    ) -> Result<Self> {
        let (cert, key) = server_identity(guest, vm)?;
        let listener = std::net::TcpListener::bind((ip, 0)).map_err(VmrmError::internal)?;
        listener.set_nonblocking(true).map_err(VmrmError::internal)?;
        let endpoint = listener.local_addr().map_err(VmrmError::internal)?.to_string();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(VmrmError::internal)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let shared = Shared {
            vm: vm.to_string(),
            guest: guest.clone(),
            session: format!("{}.{}", now.as_secs(), now.subsec_nanos()),
            table: Arc::default(),
            groups,
            stopping: Arc::default(),
        };
        let checks_managers = managers.is_some();
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = managers {
            tls = tls.client_ca_root(ca).client_auth_optional(true);
        }
        let router = Server::builder()
            .tls_config(tls)
            .map_err(|e| VmrmError::internal(format!("application server TLS: {e}")))?
            .layer(Gate::new(checks_managers))
            .add_service(AppServerServer::new(shared.clone()));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let name = vm.to_string();
        actix::spawn(async move {
            let incoming = TcpIncoming::from(listener);
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, async { stopped.await.unwrap_or(()) }).await {
                tracing::warn!(vm = %name, "application server stopped: {e}");
            }
        });
        let path = guest.appserver_endpoint_path();
        std::fs::write(&path, &endpoint).map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
        tracing::info!(vm = %vm, "application server listening on {endpoint} (TLS), session {}", shared.session);
        Ok(Self { shared, endpoint, shutdown: Some(shutdown) })
    }

    /// The agent stops: so do the server and the processes it launched.
    pub fn kill_processes(&self) {
        self.shared.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        for group in self.shared.table().running_groups() {
            scripts::kill_group(group);
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Only our own endpoint: the VM may already run elsewhere with a new server.
        let path = self.shared.guest.appserver_endpoint_path();
        if std::fs::read_to_string(&path).is_ok_and(|e| e == self.endpoint) {
            let _ = std::fs::remove_file(path);
        }
    }
}
