//! The controller actor: it watches whether its HSDB member is the DBN and, while it is, keeps
//! one FDE actor running per discovered host group; when it is not, it stops them all. On
//! becoming active it first resumes the unfinished recovery tasks, then starts the FDEs, so a
//! failure already being recovered is not detected and planned a second time.
use crate::controller::core::ControllerCore;
use crate::controller::detection::fde::{FdeActor, StopFde};
use crate::controller::detection::world::LiveGroup;
use crate::domain::{EventName, EventRecord, HostGroupRecord};
use crate::hsdb::HsdbAccess;
use crate::in_flight::InFlight;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the controller re-checks leadership and the discovered host groups.
pub const SUPERVISE_EVERY: Duration = Duration::from_millis(250);
/// How often the active controller looks whether a scheduled discovery is due.
pub const DISCOVERY_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often the active controller looks for events to notify.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(500);

pub struct Controller {
    core: ControllerCore,
    fdes: BTreeMap<String, Addr<FdeActor<LiveGroup>>>,
    checking: InFlight,
    /// The active period (its start) whose unfinished recovery tasks were resumed.
    resumed_for: Option<i64>,
    /// An SU cluster status check runs.
    watching_clusters: InFlight,
    /// The HSDB's NOSPACE alarms already raised as events.
    alarms_raised: BTreeMap<u64, String>,
    /// A delivery pass of the notification outbox runs.
    notifying: InFlight,
    /// A scheduled discovery runs.
    discovering: InFlight,
}

impl Controller {
    pub fn new(core: ControllerCore) -> Self {
        Self {
            core,
            fdes: BTreeMap::new(),
            checking: InFlight::default(),
            resumed_for: None,
            watching_clusters: InFlight::default(),
            alarms_raised: BTreeMap::new(),
            notifying: InFlight::default(),
            discovering: InFlight::default(),
        }
    }

    /// Raises an event for each NOSPACE alarm of the HSDB raised or cleared since the last
    /// look (events are taken under the alarm). One not recorded is tried again next time.
    fn raise_space_alarms(&mut self, ctx: &mut Context<Self>) {
        let now = self.core.hsdb.node().space_alarms();
        if now == self.alarms_raised {
            return;
        }
        let mut events = Vec::new();
        for (member, why) in now.iter().filter(|(m, why)| self.alarms_raised.get(m) != Some(why)) {
            let message = format!("HSDB member {member} raised the NOSPACE alarm: {why}");
            events.push(EventRecord::new(EventName::HsdbNospace, format!("hsdb-{member}"), message));
        }
        for member in self.alarms_raised.keys().filter(|m| !now.contains_key(m)) {
            let message = format!("the NOSPACE alarm of HSDB member {member} cleared");
            events.push(EventRecord::new(EventName::HsdbNospaceCleared, format!("hsdb-{member}"), message));
        }
        let hsdb = self.core.hsdb.clone();
        let raise = async move {
            for event in &events {
                hsdb.append_event(event).await?;
            }
            Ok::<_, crate::error::VmrmError>(())
        };
        self.alarms_raised = now.clone();
        ctx.spawn(raise.into_actor(self).map(|raised, act, _| {
            if let Err(e) = raised {
                tracing::warn!("NOSPACE alarm event not recorded: {e}");
                act.alarms_raised.clear();
            }
        }));
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
        self.raise_space_alarms(ctx);
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

/// The periodic jobs of the active controller besides its FDEs, each one pass at a time.
#[derive(Clone, Copy)]
enum Job {
    /// Every SU cluster's status from its units' alive messages (seed 001: the Master MU's
    /// network heartbeat recomputes the states and raises the events).
    WatchSuClusters,
    /// The contacts are told of the events after their cursors.
    Notify,
    /// The scheduled Quick and Deep discoveries.
    AutoDiscovery,
}

impl Controller {
    fn in_flight(&mut self, job: Job) -> &mut InFlight {
        match job {
            Job::WatchSuClusters => &mut self.watching_clusters,
            Job::Notify => &mut self.notifying,
            Job::AutoDiscovery => &mut self.discovering,
        }
    }

    /// Runs a pass of `job` while active, unless the last one still runs.
    fn run(&mut self, job: Job, ctx: &mut Context<Self>) {
        if self.core.active_since().is_none() || !self.in_flight(job).start() {
            return;
        }
        let core = self.core.clone();
        let pass = async move {
            match job {
                Job::WatchSuClusters => core.migration.refresh_su_clusters().await,
                Job::Notify => core.notify.deliver().await,
                Job::AutoDiscovery => core.config.auto_discover().await,
            }
        };
        ctx.spawn(pass.into_actor(self).map(move |done, act, _| {
            act.in_flight(job).end();
            if let Err(e) = done {
                let what = match job {
                    Job::WatchSuClusters => "SU cluster status not computed",
                    Job::Notify => "notification pass stopped",
                    Job::AutoDiscovery => "scheduled discovery stopped",
                };
                tracing::debug!("{what}: {e}");
            }
        }));
    }
}

impl Actor for Controller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SUPERVISE_EVERY, |act, ctx| act.supervise(ctx));
        ctx.run_interval(self.core.timing.su_alive, |act, ctx| act.run(Job::WatchSuClusters, ctx));
        ctx.run_interval(NOTIFY_EVERY, |act, ctx| act.run(Job::Notify, ctx));
        ctx.run_interval(DISCOVERY_CHECK_EVERY, |act, ctx| act.run(Job::AutoDiscovery, ctx));
    }
}
