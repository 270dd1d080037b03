//! One `vmrmd` process: it starts the actors of the roles its config names, serves all their
//! gRPC services on one listening address (plus the standard health service and reflection) —
//! all but the HSDB members' Raft, which has a port of its own ([`peer_port`]) — and on the
//! shutdown signal stops serving, shuts the HSDB member down and returns. Nodes are
//! crash-only ([`crash_only`]): a panic aborts the process, and a role whose actor (or Raft
//! core) stopped turns the node NOT_SERVING and stops it with an error.
pub mod crash_only;
mod peer_port;

use crate::agents::{ar_gateway::ArGateway, host_monitor as vios};
use crate::config::NodeConfig;
use crate::controller::api::audit::record_refusals;
use crate::controller::{Controller, ControllerCore, api::admin::AdminService};
use crate::domain::FfdcTrigger;
use crate::error::{Result, VmrmError};
use crate::ffdc::FfdcModule;
use crate::ffdc::bundle::NodeFacts;
use crate::ffdc::coordinator::Coordinator;
use crate::ffdc::service::FfdcService;
use crate::hsdb::{HsdbNode, LocalHsdb, RemoteHsdb, service::HsdbService};
use crate::pb;
use crate::sim::{hmc, san, su};
use crate::transport::gate::{Gate, REFUSALS_QUEUED};
use crate::transport::{ChannelPool, Security};
use actix::Actor;
use crash_only::{LIVENESS_EVERY, Liveness};
use std::collections::BTreeMap;
use std::future::Future;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

/// Calls one connection may have open at once (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`).
const MAX_STREAMS: u32 = 512;
/// Calls of one connection the node serves at the same time.
const MAX_CALLS: usize = 256;

/// Runs the node until `shutdown` resolves.
pub async fn run(cfg: NodeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let timing = cfg.timing();
    let security = Security::choose(cfg.tls.as_ref(), cfg.insecure)?;
    if !security.is_mutual() {
        tracing::warn!(node = %cfg.name, "serving plaintext without authentication (insecure = true)");
    }
    let pool = ChannelPool::new(timing.rpc_deadline, security.clone());
    let addr = cfg.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| VmrmError::unavailable(format!("node {} cannot listen on {addr}: {e}", cfg.name)))?;
    let metrics_listener = match &cfg.metrics_listen {
        Some(addr) => Some(crate::metrics::endpoint::bind(&cfg.name, addr).await?),
        None => None,
    };
    let roles: Vec<String> = cfg.principal().roles.iter().map(ToString::to_string).collect();
    crate::metrics::metrics().describe_node(&cfg.name, &roles);
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| VmrmError::invalid(format!("cannot create data_dir {}: {e}", cfg.data_dir.display())))?;

    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(VmrmError::internal)?;
    // Windows wide enough for a live migration's pages; small calls do not notice. One peer's
    // connection carries at most MAX_STREAMS calls at once, and the node works on at most
    // MAX_CALLS of them (the rest wait): no client can open calls without bound.
    let mut gate = Gate::new(security.is_mutual());
    if cfg.controller.is_some() && security.is_mutual() {
        // What this controller's gate refuses goes to the audit trail, through the HSDB's DBN.
        let (report, refusals) = tokio::sync::mpsc::channel(REFUSALS_QUEUED);
        gate = gate.reporting(report);
        let hsdb = RemoteHsdb::new(cfg.hsdb_client_endpoints(), pool.clone(), timing.rpc_deadline);
        tokio::spawn(record_refusals(hsdb, refusals));
    }
    let mut router = server(&cfg.name, &security, MAX_STREAMS)?
        .concurrency_limit_per_connection(MAX_CALLS)
        .layer(gate.clone())
        .add_service(health)
        .add_service(reflection);

    let mut liveness = Liveness::default();
    // A role that ends its node on purpose (a VIOS shut down by its hypervisor) tells this.
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut hsdb_node = None;
    // Every node that reaches the HSDB captures for FFDC incidents (an HSDB member shows its own
    // state in its bundles).
    let mut ffdc = None;
    // The peer port and the metrics endpoint end with the node's main server.
    let (ended, ending) = tokio::sync::watch::channel(());
    let mut peers_served = None;
    if let Some(h) = &cfg.hsdb {
        let peer_listener = peer_port::bind(&cfg.name, h).await?;
        let node = HsdbNode::start(&cfg.data_dir.join("hsdb"), h, pool.clone()).await?;
        let serve = peer_port::serve(
            server(&cfg.name, &security, peer_port::MAX_STREAMS)?,
            peer_listener,
            gate.clone(),
            node.clone(),
            when_ended(ending.clone()),
        );
        peers_served = Some(tokio::spawn(serve));
        let local = LocalHsdb::new(node.clone());
        let service = HsdbService::new(local.clone(), pool.clone(), timing.rpc_deadline);
        router = router.add_service(pb::hsdb_server::HsdbServer::new(service));
        serving::<pb::hsdb_server::HsdbServer<HsdbService>>(&reporter, &mut liveness).await;
        ffdc = ffdc_module(&cfg, &pool, Some(local.clone()));
        if let (Some(module), true) = (&ffdc, cfg.controller.is_some()) {
            let coordinator = Coordinator::new(module.clone(), local.clone(), pool.clone(), timing.rpc_deadline);
            tokio::spawn(coordinator.run());
        }
        if let Some(module) = ffdc.clone().filter(|_| cfg.controller.is_some()) {
            let core = ControllerCore::new(local, pool.clone(), timing, module);
            liveness.actor("controller", Controller::new(core.clone()).start());
            if let Some(addr) = cfg.controller.as_ref().and_then(|c| c.dashboard_listen.as_ref()) {
                let listener = crate::controller::dashboard::bind(&cfg.name, addr).await?;
                let dashboard = crate::controller::dashboard::Dashboard::new(&cfg.name, core.clone(), &security)?;
                let (security, until) = (security.clone(), when_ended(ending.clone()));
                tokio::spawn(async move {
                    if let Err(e) = crate::controller::dashboard::serve(listener, dashboard, &security, until).await {
                        tracing::error!("{e}");
                    }
                });
            }
            router = router.add_service(pb::admin_server::AdminServer::new(AdminService::new(core)));
            serving::<pb::admin_server::AdminServer<AdminService>>(&reporter, &mut liveness).await;
        }
        liveness.raft(node.clone());
        let alarmed = node.clone();
        liveness.alarm(<pb::hsdb_server::HsdbServer<HsdbService> as NamedService>::NAME, move || alarmed.own_alarm());
        hsdb_node = Some(node);
    }
    if ffdc.is_none() {
        ffdc = ffdc_module(&cfg, &pool, None);
    }
    if let Some(module) = &ffdc {
        module.start();
        router = router.add_service(pb::ffdc_server::FfdcServer::new(FfdcService { module: module.clone() }));
        serving::<pb::ffdc_server::FfdcServer<FfdcService>>(&reporter, &mut liveness).await;
    }
    if cfg.san.is_some() {
        let store = san::store::SanStore::open(&cfg.data_dir.join("san"))?;
        // A preempt's caller waits one RPC deadline, the lock's read inside it included: each
        // member gets a quarter of it, so a paused member still leaves time for the others.
        let hsdb = RemoteHsdb::new(cfg.hsdb_client_endpoints(), pool.clone(), timing.rpc_deadline / 4);
        let links = san::Links {
            name: cfg.name.clone(),
            pool: pool.clone(),
            hsdb: hsdb.clone(),
            lease: timing.replication_lease,
            rpc_deadline: timing.rpc_deadline,
        };
        let san = san::San::open(store.clone())?.replicating(links).start();
        liveness.actor("SAN", san.clone());
        router = router.add_service(pb::san_server::SanServer::new(san::SanService::new(san, store, hsdb)));
        serving::<pb::san_server::SanServer<san::SanService>>(&reporter, &mut liveness).await;
    }
    if !cfg.hmc.is_empty() {
        let hmcs: BTreeMap<_, _> = cfg
            .hmc
            .iter()
            .map(|h| (h.name.clone(), hmc::HmcActor::new(h.clone(), timing, pool.clone()).start()))
            .collect();
        hmcs.iter().for_each(|(name, hmc)| liveness.actor(&format!("HMC {name}"), hmc.clone()));
        router = router.add_service(pb::hmc_server::HmcServer::new(hmc::HmcService { hmcs }));
        serving::<pb::hmc_server::HmcServer<hmc::HmcService>>(&reporter, &mut liveness).await;
    }
    if let Some(s) = &cfg.su {
        let endpoints = cfg.hsdb_client_endpoints();
        let hsdb = (!endpoints.is_empty()).then(|| RemoteHsdb::new(endpoints, pool.clone(), timing.rpc_deadline));
        let unit = su::ServerUnit::start(
            s.clone(),
            cfg.endpoint().to_string(),
            timing,
            pool.clone(),
            &cfg.data_dir,
            hsdb.clone(),
            ffdc.clone().map(|module| io_failures(module, &s.san)),
        );
        liveness.actor("server unit", unit.clone());
        let silence = timing.rpc_deadline * 2;
        let lane = su::LaneServer { unit: unit.clone(), host: s.host.clone(), silence, hsdb };
        let service = su::SuService { unit, host: s.host.clone(), timing, fault_drills: s.fault_drills };
        router = router.add_service(pb::server_unit_server::ServerUnitServer::new(service)).add_service(lane);
        serving::<pb::server_unit_server::ServerUnitServer<su::SuService>>(&reporter, &mut liveness).await;
    }
    if let Some(v) = &cfg.vios {
        let hsdb = RemoteHsdb::new(cfg.hsdb_client_endpoints(), pool.clone(), timing.rpc_deadline);
        let monitor = vios::HostMonitorActor::new(v.name.clone(), v.host.clone(), timing, hsdb.clone()).start();
        liveness.actor("host monitor", monitor.clone());
        let ar = ArGateway::new(hsdb.clone(), v.host.clone());
        let make = || vios::ViosService {
            monitor: monitor.clone(),
            ar: ar.clone(),
            hsdb: hsdb.clone(),
            vios: v.name.clone(),
            host: v.host.clone(),
            timing,
            stop: stop.clone(),
        };
        router = router
            .add_service(pb::host_monitor_server::HostMonitorServer::new(make()))
            .add_service(pb::vios_server::ViosServer::new(make()));
        serving::<pb::vios_server::ViosServer<vios::ViosService>>(&reporter, &mut liveness).await;
    }

    if let Some(listener) = metrics_listener {
        let until = when_ended(ending);
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::endpoint::serve(listener, until).await {
                tracing::error!("{e}");
            }
        });
    }
    tracing::info!(node = %cfg.name, %addr, metrics = ?cfg.metrics_listen, "node serving");
    // Nagle off on every accepted connection: with it, a small reply (a Raft ack, a write's
    // answer) waits for the peer's delayed ACK, about 40 ms.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn(async move {
        let _ = stopped_tx.send(liveness.watch(reporter, LIVENESS_EVERY).await);
    });
    let mut stopped_rx = std::pin::pin!(stopped_rx);
    let peers_failed = async {
        match &mut peers_served {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let mut peers_failed = std::pin::pin!(peers_failed);
    let mut peers_result = None;
    let until = async {
        tokio::select! {
            _ = shutdown => {}
            _ = stop.notified() => {}
            _ = &mut stopped_rx => {}
            ended = &mut peers_failed => peers_result = Some(ended),
        }
    };
    let served = router.serve_with_incoming_shutdown(incoming, until).await;
    watch.abort();
    drop(ended);
    let stopped = stopped_rx.try_recv().ok();
    if let Some(module) = ffdc.as_ref().filter(|_| stopped.is_none() && peers_result.is_none()) {
        // A stop on purpose: incidents stop expecting this node (NODE_REMOVED).
        let _ = tokio::time::timeout(timing.rpc_deadline, module.leave()).await;
    }
    if let Some(node) = hsdb_node {
        node.shutdown().await;
    }
    tracing::info!(node = %cfg.name, "node stopped");
    served.map_err(|e| VmrmError::internal(format!("gRPC server failed: {e}")))?;
    if let Some(ended) = peers_result {
        ended.map_err(VmrmError::internal)??;
        return Err(VmrmError::unavailable(format!("node {}: the HSDB peer port stopped serving", cfg.name)));
    }
    match stopped {
        Some(why) => Err(VmrmError::unavailable(format!("node {} stopped: {why}", cfg.name))),
        None => Ok(()),
    }
}

/// What a server unit's guests report of their failed I/O to SAN `san`: STORAGE_LOSS when the
/// SAN cannot be reached, IO_FAILURE for any other error (the node drops the repeats).
fn io_failures(module: FfdcModule, san: &str) -> su::IoFailed {
    let san = san.to_string();
    std::sync::Arc::new(move |path_lost: bool, disk: &str, why: &str| {
        let trigger = if path_lost { FfdcTrigger::StorageLoss } else { FfdcTrigger::IoFailure };
        let detail = format!("{} failed an I/O to disk {disk} on SAN {san}: {why}", module.node());
        module.report(trigger, &san, &detail);
    })
}

/// The node's FFDC module, if it reaches the HSDB.
fn ffdc_module(cfg: &NodeConfig, pool: &ChannelPool, member: Option<LocalHsdb>) -> Option<FfdcModule> {
    let endpoints = cfg.hsdb_client_endpoints();
    if endpoints.is_empty() {
        return None;
    }
    let timing = cfg.timing();
    let facts = NodeFacts {
        node: cfg.name.clone(),
        roles: cfg.principal().roles.iter().map(ToString::to_string).collect(),
        incarnation: format!("{:016x}", rand::random::<u64>()),
    };
    let hsdb = RemoteHsdb::new(endpoints, pool.clone(), timing.rpc_deadline);
    let endpoint = cfg.endpoint().to_string();
    Some(FfdcModule::new(facts, endpoint, hsdb, member, pool.clone(), timing.rpc_deadline, &cfg.data_dir))
}

/// Resolves once the node's main server has ended (its `ended` sender is dropped).
async fn when_ended(mut ending: tokio::sync::watch::Receiver<()>) {
    while ending.changed().await.is_ok() {}
}

/// A gRPC server of node `name`: TLS as `security` says, at most `streams` calls open per
/// connection, keepalives, and windows wide enough for a live migration's pages or a Raft
/// message (small calls do not notice).
fn server(name: &str, security: &Security, streams: u32) -> Result<Server> {
    let mut server = Server::builder();
    if let Some(tls) = security.server() {
        server = server.tls_config(tls).map_err(|e| VmrmError::invalid(format!("node {name}: TLS: {e}")))?;
    }
    Ok(server
        .max_concurrent_streams(Some(streams))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .max_frame_size(Some(1 << 20)))
}

/// Marks service `S` SERVING and has the node's liveness turn it NOT_SERVING with the node.
async fn serving<S: NamedService>(reporter: &HealthReporter, liveness: &mut Liveness) {
    reporter.set_serving::<S>().await;
    crate::metrics::metrics().serving(S::NAME, true);
    liveness.service(S::NAME);
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs `f` inside an actix System on a multi-thread tokio runtime (actors need the System;
/// tonic and openraft run on the worker threads).
pub fn with_runtime<F: Future>(f: F) -> F::Output {
    actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
    })
    .block_on(f)
}
