//! The controller actor: it watches whether its HSDB member is the DBN and, while it is, keeps
//! one FDE actor running per discovered host group; when it is not, it stops them all. On
//! becoming active it first resumes the unfinished recovery tasks, then starts the FDEs, so a
//! failure already being recovered is not detected and planned a second time.
use crate::controller::core::ControllerCore;
use crate::controller::detection::fde::{FdeActor, StopFde};
use crate::controller::detection::world::LiveGroup;
use crate::domain::HostGroupRecord;
use crate::hsdb::HsdbAccess;
use crate::in_flight::InFlight;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the controller re-checks leadership and the discovered host groups.
pub const SUPERVISE_EVERY: Duration = Duration::from_millis(250);

pub struct Controller {
    core: ControllerCore,
    fdes: BTreeMap<String, Addr<FdeActor<LiveGroup>>>,
    checking: InFlight,
    /// The active period (its start) whose unfinished recovery tasks were resumed.
    resumed_for: Option<i64>,
    /// An SU cluster status check runs.
    watching_clusters: InFlight,
}

impl Controller {
    pub fn new(core: ControllerCore) -> Self {
        Self {
            core,
            fdes: BTreeMap::new(),
            checking: InFlight::default(),
            resumed_for: None,
            watching_clusters: InFlight::default(),
        }
    }

    fn supervise(&mut self, ctx: &mut Context<Self>) {
        let Some(active_since_ms) = self.core.active_since() else {
            if !self.fdes.is_empty() {
                tracing::info!("controller is standby now");
            }
            for (_, fde) in std::mem::take(&mut self.fdes) {
                fde.do_send(StopFde);
            }
            return;
        };
        if !self.checking.start() {
            return;
        }
        let core = self.core.clone();
        if self.resumed_for != Some(active_since_ms) {
            let resume = async move {
                let tasks = core.recovery.resume_recovery(active_since_ms).await?;
                Ok::<_, crate::error::VmrmError>(tasks + core.migration.resume_migrations(active_since_ms).await?)
            };
            ctx.spawn(resume.into_actor(self).map(move |done, act, _| {
                act.checking.end();
                match done {
                    Ok(_) => act.resumed_for = Some(active_since_ms),
                    Err(e) => tracing::warn!("unfinished recovery tasks not resumed yet: {e}"),
                }
            }));
            return;
        }
        ctx.spawn(async move { core.hsdb.list::<HostGroupRecord>().await }.into_actor(self).map(|groups, act, _| {
            act.checking.end();
            let Ok(groups) = groups else { return };
            for g in groups.into_iter().filter(|g| g.discovered) {
                if !act.fdes.get(&g.name).is_some_and(|a| a.connected()) {
                    let fde = FdeActor::new(LiveGroup::new(&act.core), g.name.clone()).start();
                    act.fdes.insert(g.name, fde);
                }
            }
        }));
    }
}

impl Controller {
    /// While active: every SU cluster's status from its units' alive messages (seed 001: the
    /// Master MU's network heartbeat recomputes the states and raises the events).
    fn watch_su_clusters(&mut self, ctx: &mut Context<Self>) {
        if self.core.active_since().is_none() || !self.watching_clusters.start() {
            return;
        }
        let core = self.core.clone();
        ctx.spawn(async move { core.migration.refresh_su_clusters().await }.into_actor(self).map(|done, act, _| {
            act.watching_clusters.end();
            if let Err(e) = done {
                tracing::debug!("SU cluster status not computed: {e}");
            }
        }));
    }
}

impl Actor for Controller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SUPERVISE_EVERY, |act, ctx| act.supervise(ctx));
        ctx.run_interval(self.core.timing.su_alive, |act, ctx| act.watch_su_clusters(ctx));
    }
}
