//! HSDB members outside the datacenter's own three, and what members report about themselves.
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vmrm::launcher::{Datacenter, datacenter::serving};
use vmrm::pb::{HsdbStatus, HsdbStatusRequest, hsdb_client::HsdbClient};
use vmrm::transport::Security;
use vmrm::transport::channel::lazy_channel;
use vmrm::transport::tls::{TlsFiles, issue::Authority};

/// A fourth HSDB-only member process, killed when dropped.
pub struct Extra(Child);

impl Drop for Extra {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node 4, an empty HSDB-only member on the datacenter's base port + 4 (its Raft on
/// peer port 4) (not yet in the
/// membership: `ksysmgr add hsdb_node` brings it in). Returns it with its endpoint.
pub async fn start_fourth_member(dc: &Datacenter, dir: &std::path::Path) -> (Extra, String) {
    let mut cfg = dc.topology.node_configs().into_iter().find(|c| c.name == "ctl-1").expect("ctl-1 config");
    let endpoint = format!("127.0.0.1:{}", dc.topology.base_port + 4);
    cfg.name = "hsdb-4".into();
    cfg.listen = endpoint.clone();
    cfg.metrics_listen = None;
    cfg.data_dir = dir.join("hsdb-4");
    cfg.controller = None;
    let hsdb = cfg.hsdb.as_mut().expect("hsdb section");
    hsdb.node_id = 4;
    hsdb.members.insert("4".into(), endpoint.clone());
    hsdb.peer_listen = format!("127.0.0.1:{}", dc.topology.peer_port(4));
    hsdb.peers.insert("4".into(), hsdb.peer_listen.clone());
    let certs = dc.topology.certs_dir();
    Authority::load(&certs).expect("the CA").issue_into(&certs, &cfg.principal(), &cfg.reached_at()).expect("cert");
    cfg.tls = Some(TlsFiles::in_dir(&certs, &cfg.name));
    let path = dir.join("hsdb-4.toml");
    std::fs::write(&path, cfg.to_toml()).expect("config");
    let log = std::fs::File::create(dir.join("hsdb-4.log")).expect("log");
    let child = Command::new(super::vmrmd())
        .arg("--config")
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("vmrmd starts");
    let extra = Extra(child);
    super::wait_until("the fourth member to serve", Duration::from_secs(30), || async {
        serving(&endpoint, dc.security()).await.then_some(())
    })
    .await;
    (extra, endpoint)
}

/// What the member at `endpoint` says about itself (`None` if it does not answer).
pub async fn status(endpoint: &str, security: &Security) -> Option<HsdbStatus> {
    let mut client = HsdbClient::new(lazy_channel(endpoint, Duration::from_millis(500), security).ok()?);
    client.status(HsdbStatusRequest {}).await.ok().map(|s| s.into_inner())
}

/// The status of the member that is DBN (waits for one).
pub async fn dbn_status(dc: &Datacenter) -> HsdbStatus {
    super::wait_until("an HSDB leader", Duration::from_secs(15), || async {
        for endpoint in dc.topology.controller_endpoints() {
            if let Some(s) =
                status(&endpoint, dc.security()).await.filter(|s| s.state() == vmrm::pb::HsdbMemberState::Leader)
            {
                return Some(s);
            }
        }
        None
    })
    .await
}
