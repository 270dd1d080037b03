//! Crash-only nodes: a node serves whole or not at all. The cluster copes with a dead node (its
//! VIOS peers, the other HSDB members, the controllers' failover), but not with a half-dead one
//! whose health check says SERVING while the actor behind one of its services is gone.
//!
//! * A panic anywhere logs the version and a backtrace, then aborts the process, in every build
//!   profile (the release profile also sets `panic = "abort"`).
//! * [`Liveness`] watches each role's actor and the Raft core; when one stops, every service of
//!   the node turns NOT_SERVING and the node stops with an error (exit code ≠ 0), so whatever
//!   supervises it starts it afresh.
use crate::hsdb::HsdbNode;
use actix::{Actor, Addr};
use std::time::Duration;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How often the node checks that its roles still run.
pub const LIVENESS_EVERY: Duration = Duration::from_millis(500);

/// Makes any panic fatal for the whole process: logged with the version (and, on stderr, a
/// backtrace), then `abort`, whatever the build profile.
pub fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        let version = env!("CARGO_PKG_VERSION");
        tracing::error!("vmrmd {version} panicked, aborting: {info}");
        eprintln!("vmrmd {version} panicked, aborting: {info}\n{backtrace}");
        std::process::abort();
    }));
}

type Probe = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The roles a node runs, each with a probe that names what stopped.
#[derive(Default)]
pub struct Liveness {
    probes: Vec<Probe>,
    /// The gRPC services the node registered with its health reporter.
    services: Vec<&'static str>,
    /// Services that are NOT_SERVING while their probe names an alarm, without the node
    /// stopping (the HSDB's NOSPACE).
    alarms: Vec<(&'static str, Probe)>,
}

impl Liveness {
    /// Watches one role's actor: stopped once its mailbox has no actor behind it.
    pub fn actor<A: Actor>(&mut self, role: &str, addr: Addr<A>) {
        let role = role.to_string();
        self.probes.push(Box::new(move || (!addr.connected()).then(|| format!("the {role} actor stopped"))));
    }

    /// Watches the HSDB member's Raft core.
    pub fn raft(&mut self, node: HsdbNode) {
        self.probes
            .push(Box::new(move || node.core_stopped().map(|why| format!("the HSDB's Raft core stopped: {why}"))));
    }

    /// Has `service` NOT_SERVING while `probe` names an alarm, SERVING again once it clears.
    pub fn alarm(&mut self, service: &'static str, probe: impl Fn() -> Option<String> + Send + Sync + 'static) {
        self.alarms.push((service, Box::new(probe)));
    }

    /// Notes a service whose health must turn NOT_SERVING with the node's.
    pub fn service(&mut self, name: &'static str) {
        self.services.push(name);
    }

    /// What stopped, if anything did.
    pub fn stopped(&self) -> Option<String> {
        self.probes.iter().find_map(|probe| probe())
    }

    /// Checks every `every` and resolves once something stopped, after every service (and the
    /// server as a whole) was marked NOT_SERVING; what stopped.
    pub async fn watch(self, reporter: HealthReporter, every: Duration) -> String {
        let mut tick = tokio::time::interval(every);
        let mut raised = vec![false; self.alarms.len()];
        let why = loop {
            tick.tick().await;
            if let Some(why) = self.stopped() {
                break why;
            }
            for ((service, probe), raised) in self.alarms.iter().zip(&mut raised) {
                let now = probe().is_some();
                if now != *raised {
                    *raised = now;
                    let status = if now { ServingStatus::NotServing } else { ServingStatus::Serving };
                    reporter.set_service_status(*service, status).await;
                    crate::metrics::metrics().serving(service, !now);
                }
            }
        };
        tracing::error!("{why}: the node stops serving");
        for service in self.services.iter().copied().chain([""]) {
            reporter.set_service_status(service, ServingStatus::NotServing).await;
            crate::metrics::metrics().serving(service, false);
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::{HealthCheckRequest, health_server::Health};
    use tonic_health::server::HealthService;

    struct Role;
    impl Actor for Role {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Stop;
    impl Handler<Stop> for Role {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    async fn status(health: &HealthService, service: &str) -> i32 {
        let req = tonic::Request::new(HealthCheckRequest { service: service.to_string() });
        health.check(req).await.expect("a registered service").into_inner().status
    }

    /// A role's actor that stops turns every service and the node NOT_SERVING, and names it.
    #[actix::test]
    async fn a_stopped_actor_turns_the_node_not_serving() {
        let (reporter, _) = tonic_health::server::health_reporter();
        reporter.set_service_status("vmrm.v1.Role", ServingStatus::Serving).await;
        let health = HealthService::from_health_reporter(reporter.clone());
        let role = Role.start();
        let mut liveness = Liveness::default();
        liveness.actor("server unit", role.clone());
        liveness.service("vmrm.v1.Role");
        assert_eq!(liveness.stopped(), None);

        let watch = actix::spawn(liveness.watch(reporter, Duration::from_millis(10)));
        assert_eq!(status(&health, "").await, Wire::Serving as i32);
        role.send(Stop).await.expect("delivered");
        let why = tokio::time::timeout(Duration::from_secs(5), watch).await.expect("noticed").expect("ran");
        assert_eq!(why, "the server unit actor stopped");
        assert_eq!(status(&health, "").await, Wire::NotServing as i32);
        assert_eq!(status(&health, "vmrm.v1.Role").await, Wire::NotServing as i32);
    }
}
