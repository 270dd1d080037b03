//! Who may do what, over real mutual TLS against a running cluster: a call without a
//! certificate is UNAUTHENTICATED, one from another CA never gets in, a monitor queries but
//! does not act, an operator acts only on its VMs, a host's certificate cannot pass for a
//! controller's — and the audit trail shows every attempt, refused or not.
mod common;

use common::*;
use std::time::Duration;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use vmrm::hsdb::Command as HsdbCommand;
use vmrm::launcher::Topology;
use vmrm::launcher::certs::{MONITOR, OPERATOR};
use vmrm::pb;
use vmrm::transport::channel::lazy_channel;
use vmrm::transport::tls::issue::Authority;
use vmrm::transport::tls::{Principal, Role, TlsFiles};
use vmrm::transport::{AdminClient, Security};

fn admin_as(dc: &vmrm::launcher::Datacenter, security: Security) -> AdminClient {
    let mut admin = AdminClient::new(dc.topology.controller_endpoints(), security).expect("admin client");
    admin.call_timeout = Duration::from_secs(60);
    admin
}

fn code<T: std::fmt::Debug>(result: Result<T, vmrm::VmrmError>) -> Code {
    tonic::Status::from(result.expect_err("refused")).code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_may_do_what_its_certificate_allows_and_the_audit_shows_every_attempt() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("trust");
    let dc = start(Topology::uniform(11000, 2, 2, dir.path().to_path_buf())).await;
    let ctl = dc.topology.controller_endpoints()[0].clone();
    let certs = dc.topology.certs_dir();

    // No certificate: the TLS handshake completes (the client trusts the CA), the call does not.
    let ca = std::fs::read(TlsFiles::in_dir(&certs, "admin").ca).unwrap();
    let anonymous = Endpoint::from_shared(format!("https://{ctl}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .unwrap()
        .connect()
        .await
        .expect("a TLS connection without a client certificate");
    let refused = pb::admin_client::AdminClient::new(anonymous).query_vm(pb::QueryRequest::default()).await;
    let refused = refused.expect_err("no certificate, no answer");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Plaintext does not reach a TLS node at all.
    let plain = lazy_channel(&ctl, Duration::from_secs(1), &Security::Plaintext).unwrap();
    assert!(pb::admin_client::AdminClient::new(plain).query_vm(pb::QueryRequest::default()).await.is_err());

    // A certificate of another CA, naming an administrator: the handshake refuses it.
    let forger = dir.path().join("forged");
    let mut fake_admin = Principal::anonymous();
    fake_admin.name = "admin".into();
    fake_admin.roles = [Role::Admin].into();
    Authority::create("elsewhere").unwrap().issue_into(&forger, &fake_admin, &[]).unwrap();
    let forged =
        Security::load(&TlsFiles { ca: TlsFiles::in_dir(&certs, "admin").ca, ..TlsFiles::in_dir(&forger, "admin") })
            .unwrap();
    let channel = lazy_channel(&ctl, Duration::from_secs(1), &forged).unwrap();
    let refused = pb::admin_client::AdminClient::new(channel).query_vm(pb::QueryRequest::default()).await;
    assert!(refused.is_err(), "a foreign CA's certificate got an answer: {refused:?}");

    // A monitor queries, and nothing else.
    let mut monitor = admin_as(&dc, dc.security_of(MONITOR).unwrap());
    assert!(!monitor.query_vm(pb::QueryRequest::default()).await.unwrap().vms.is_empty());
    let modify = common::modify("system", "", &[("ha_monitor", "disable")]);
    assert_eq!(code(monitor.modify(modify).await), Code::PermissionDenied);
    let restart = |vm: &str, host: &str| pb::RestartVmRequest { vm: vm.into(), host: host.into() };
    assert_eq!(code(monitor.restart_vm(restart("vm-1-1", "host-2")).await), Code::PermissionDenied);

    // An operator acts on its VMs (host-1's) only, and never on a whole host.
    let mut operator = admin_as(&dc, dc.security_of(OPERATOR).unwrap());
    assert_eq!(code(operator.restart_vm(restart("vm-2-1", "host-1")).await), Code::PermissionDenied);
    let host = pb::MigrateRequest {
        scope: pb::Scope::Host as i32,
        names: vec!["host-2".into()],
        to: "host-1".into(),
        ..Default::default()
    };
    let evacuation = operator.migrate_all(host).await;
    assert_eq!(code(evacuation), Code::PermissionDenied);
    let done = operator.restart_vm(restart("vm-1-1", "host-2")).await.expect("the operator restarts its own VM");
    assert_eq!(done.target, "host-2");

    // A job of an older operation (a controller that woke up after its successor restarted
    // the VM) stops nothing: the host knows the epoch the VM was activated under.
    let hmc = common::node_pool(&dc, Duration::from_secs(1));
    let mut host2 =
        pb::server_unit_client::ServerUnitClient::new(hmc.get(&dc.topology.su_endpoint("host-2").unwrap()).unwrap());
    for fence in [0, done.epoch - 1] {
        let stale = pb::LparRef { name: "vm-1-1".into(), immediate: true, fence };
        let refused = host2.shutdown(stale).await.expect_err("a stale shutdown");
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("is stale"), "{}", refused.message());
    }
    assert_eq!(running_vms(&dc).await.get("vm-1-1").map(Vec::as_slice), Some(&["host-2".to_string()][..]));

    // A host's certificate cannot pass for a controller's or for another host.
    let su = dc.security_of("host-1-su").unwrap();
    assert_eq!(code(admin_as(&dc, su.clone()).query_vm(pb::QueryRequest::default()).await), Code::PermissionDenied);
    let mut hsdb = pb::hsdb_client::HsdbClient::new(lazy_channel(&ctl, Duration::from_secs(1), &su).unwrap());
    let foreign = vmrm::domain::SuAliveRecord { host: "host-2".into(), incarnation: "x".into(), at_ms: 1 };
    let write = |cmd: HsdbCommand| pb::HsdbWrite { command: serde_json::to_vec(&cmd).unwrap() };
    let forged_row = HsdbCommand::Put {
        table: vmrm::hsdb::Table::SuAlive,
        key: "host-2".into(),
        value: serde_json::to_value(&foreign).unwrap(),
    };
    let refused = hsdb.write(write(forged_row)).await.expect_err("another host's row");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("host host-1's rows"), "{}", refused.message());
    let vote = pb::RaftPayload { data: b"{}".to_vec() };
    let peer = lazy_channel(&dc.topology.hsdb_members()[0].peer, Duration::from_secs(1), &su).unwrap();
    let refused = pb::raft_peer_client::RaftPeerClient::new(peer).vote(vote).await.expect_err("a host is no member");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The trail: every attempt above, with its principal and how it ended.
    let mut admin = dc.admin().unwrap();
    let trail = wait_until("the refusals in the audit trail", Duration::from_secs(10), || {
        let mut admin = dc.admin().unwrap();
        async move {
            let page = admin.query_audit(pb::EventQuery { limit: Some(1000), ..Default::default() }).await.ok()?;
            let refused = page.entries.iter().filter(|a| a.stage == "Refused").count();
            (refused >= 5).then_some(page.entries)
        }
    })
    .await;
    let has = |who: &str, action: &str, stage: &str, says: &str| {
        trail
            .iter()
            .any(|a| a.principal.starts_with(who) && a.action == action && a.stage == stage && a.detail.contains(says))
    };
    assert!(has("(no certificate", "QueryVm", "Refused", "needs a client certificate"), "{trail:#?}");
    assert!(has("monitor (monitor)", "Modify", "Refused", "needs the role admin"), "{trail:#?}");
    assert!(has("monitor (monitor)", "RestartVm", "Refused", ""), "{trail:#?}");
    assert!(has("operator (operator)", "RestartVm", "Start", ""), "{trail:#?}");
    assert!(has("operator (operator)", "RestartVm", "Failed", "may not act on VM vm-2-1"), "{trail:#?}");
    assert!(has("operator (operator)", "Migrate", "Failed", "only an administrator"), "{trail:#?}");
    assert!(has("operator (operator)", "RestartVm", "OK", ""), "{trail:#?}");
    assert!(has("host-1-su (server_unit)", "QueryVm", "Refused", ""), "{trail:#?}");
    assert!(has("host-1-su (server_unit)", "Vote", "Refused", ""), "{trail:#?}");
    assert!(has("admin (admin)", "AddCluster", "OK", ""), "the setup is on the trail: {trail:#?}");
    let events = events(&dc).await;
    let added = events.iter().find(|e| e.name == "CONFIGURATION_CHANGED" && e.subject == "AddHost");
    assert!(added.is_some_and(|e| e.message.starts_with("by admin (admin): ")), "{events:#?}");
    // The operator's restart's object names the VM, in order: Start before OK.
    let start = trail.iter().position(|a| a.action == "RestartVm" && a.stage == "Start" && a.object.contains("vm-1-1"));
    let ok = trail.iter().position(|a| a.action == "RestartVm" && a.stage == "OK");
    assert!(start.is_some() && start < ok, "{trail:#?}");
    // ksysmgr shows it, and can ask for one person.
    let page = admin
        .query_audit(pb::EventQuery { name: OPERATOR.into(), limit: Some(1000), ..Default::default() })
        .await
        .unwrap();
    assert!(page.entries.iter().all(|a| a.principal.starts_with("operator ")), "{page:#?}");
    let text = vmrm::cli::format::audit(&page, OPERATOR);
    assert!(text.contains("RestartVm") && text.contains("Failed") && text.contains("operator (operator)"), "{text}");
}
