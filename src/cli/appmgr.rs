//! The host-side application manager (seed 002: `cmappmgr`). It opens a TLS session with the
//! guest application server of one VM (trusting only the certificate the VM generated), has it
//! launch a command, polls it, and ends with the command's exit code. The session is kept alive
//! by the manager: when the server goes away (the agent restarted, the VM moved to another host)
//! it reconnects — through the VM's files, which name the server's current endpoint — for up to
//! `cmappserver_timeout`, and when it finds a new session (the server restarted, its processes
//! were killed with it), it launches the command again.
use crate::agents::vm_agent::guest::GuestDir;
use crate::agents::vm_agent::guest_tls::trusted_certificate;
use crate::error::{Result, VmrmError};
use crate::pb::{self, app_server_client::AppServerClient};
use crate::transport::Security;
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Opens a TLS session with the application server of `vm`, showing `me`'s certificate.
pub async fn connect(guest: &GuestDir, vm: &str, timeout: Duration, me: &Security) -> Result<AppServerClient<Channel>> {
    let cert = trusted_certificate(guest, vm)?;
    let path = guest.appserver_endpoint_path();
    let endpoint = std::fs::read_to_string(&path).map_err(|_| {
        VmrmError::unavailable(format!("the application server of VM {vm} is not running (no {})", path.display()))
    })?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(cert)).domain_name(vm);
    if let Some(identity) = me.identity() {
        tls = tls.identity(identity);
    }
    let channel = Endpoint::from_shared(format!("https://{}", endpoint.trim()))
        .map_err(|e| VmrmError::internal(format!("application server endpoint {endpoint:?}: {e}")))?
        .tls_config(tls)
        .map_err(|e| VmrmError::internal(format!("TLS: {e}")))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| VmrmError::unavailable(format!("the application server of VM {vm} at {endpoint}: {e}")))?;
    Ok(AppServerClient::new(channel))
}

/// What the manager runs and how patiently.
#[derive(Debug, Clone)]
pub struct Manager {
    pub vm: String,
    pub guest: GuestDir,
    pub command: Vec<String>,
    pub poll: Duration,
    /// Seed: `cmappserver_timeout` — how long a lost server is waited for.
    pub server_timeout: Duration,
    /// The manager's certificate (an administrator's of the cluster's CA).
    pub security: Security,
}

struct Session {
    client: AppServerClient<Channel>,
    id: u64,
    session: String,
}

impl Manager {
    /// Runs until the command ends: its exit code (128 + signal when it was killed).
    pub async fn run(&self) -> Result<i32> {
        if self.command.first().is_none_or(|p| p.is_empty()) {
            return Err(VmrmError::invalid("cmappmgr needs a command to launch in the VM"));
        }
        let mut current: Option<Session> = None;
        let mut lost_since: Option<Instant> = None;
        loop {
            let Some(s) = current.as_mut() else {
                match self.launch().await {
                    Ok(s) => {
                        lost_since = None;
                        current = Some(s);
                        continue;
                    }
                    // A refusal is final; only an absent server is waited for.
                    Err(e @ VmrmError::Unavailable(_)) => self.wait_for_server(&mut lost_since, e)?,
                    Err(e) => return Err(e),
                }
                tokio::time::sleep(self.poll).await;
                continue;
            };
            match s.client.poll(pb::PollRequest { id: s.id }).await.map(|r| r.into_inner()) {
                Ok(st) if st.session != s.session => {
                    tracing::warn!(vm = %self.vm, "the application server restarted (session {} → {}): launching again", s.session, st.session);
                    current = None;
                    continue;
                }
                Ok(st) if !st.running => return Ok(st.exit_code),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(vm = %self.vm, "session with the application server lost ({}); reconnecting", e.message());
                    current = None;
                    lost_since.get_or_insert_with(Instant::now);
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    fn wait_for_server(&self, lost_since: &mut Option<Instant>, e: VmrmError) -> Result<()> {
        let since = *lost_since.get_or_insert_with(Instant::now);
        match since.elapsed() >= self.server_timeout {
            true => Err(VmrmError::unavailable(format!(
                "no application server in VM {} for {} s: {e}",
                self.vm,
                self.server_timeout.as_secs()
            ))),
            false => Ok(()),
        }
    }

    async fn launch(&self) -> Result<Session> {
        let mut client = connect(&self.guest, &self.vm, self.server_timeout, &self.security).await?;
        let reply = client.launch(pb::LaunchRequest { command: self.command.clone() }).await?.into_inner();
        tracing::info!(vm = %self.vm, "launched {:?} as process {} (pid {}) in VM {}, session {}", self.command, reply.id, reply.pid, self.vm, reply.session);
        Ok(Session { client, id: reply.id, session: reply.session })
    }
}
