//! The `vmrm.v1.Admin` gRPC service: proto in, checks, core operation, proto out. Every call
//! first makes sure this controller is the active one; a standby answers `UNAVAILABLE` with the
//! active controller's endpoint in the `vmrm-leader` metadata.
use crate::controller::api::audit::{Attempt, object_of};
use crate::controller::api::{events, status};
use crate::controller::config::affinity::AffinityChange;
use crate::controller::config::hsdb_membership::Role;
use crate::controller::config::policies::ModifyTarget;
use crate::controller::core::ControllerCore;
use crate::controller::migration::evacuation::{LpmRequest, LpmScope, Restore};
use crate::controller::migration::lpm::LpmOut;
use crate::controller::migration::su_cluster::SuClusterChange;
use crate::controller::monjv::{self, MonjvChange};
use crate::domain::names::*;
use crate::domain::{AffinityKind, Contact, NetworkIdentity, Severity, SiteType};
use crate::error::{VmrmError, quote};
use crate::hsdb::LocalHsdb;
use crate::logic::event_page::{EventKinds, EventPage};
use crate::pb::{self, admin_server::Admin, states::WireEnum};
use crate::transport::gate::caller;
use crate::transport::tls::{Principal, Role as CallerRole};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status};

/// The most event and status streams one controller serves at once.
pub const MAX_STREAMS: usize = 64;

pub struct AdminService {
    core: ControllerCore,
    /// Places for the open event and status streams.
    streams: Arc<Semaphore>,
}

impl AdminService {
    pub fn new(core: ControllerCore) -> Self {
        Self { core, streams: Arc::new(Semaphore::new(MAX_STREAMS)) }
    }

    /// A place among the [`MAX_STREAMS`] streams, held until the stream ends.
    fn stream_slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_STREAMS} event and status streams are already open on this controller; try again when one ends"
            ))
        })
    }

    /// Runs a call that changes something under the audit trail: "Start" is written before
    /// it runs (it does not run without it), then how it ended.
    async fn audited<R: Serialize, T, F, Fut>(&self, action: &'static str, req: Request<R>, run: F) -> Result<T, Status>
    where
        F: FnOnce(Principal, R) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let attempt = self.attempt(action, &req)?;
        attempt.start().await?;
        let result = run(attempt.who.clone(), req.into_inner()).await;
        attempt.end(&result).await;
        result
    }

    /// The audit record of `req`, on the active controller (a standby records nothing: it
    /// runs nothing).
    fn attempt<R: Serialize>(&self, action: &'static str, req: &Request<R>) -> Result<Attempt<LocalHsdb>, Status> {
        let core = self.active()?;
        Ok(Attempt { hsdb: core.hsdb.clone(), who: caller(req)?.clone(), action, object: object_of(req.get_ref()) })
    }

    fn active(&self) -> Result<&ControllerCore, Status> {
        self.core.ensure_active()?;
        Ok(&self.core)
    }

    /// Who answers a query: the active controller, or with `follower_read` this one, from its
    /// own copy of the HSDB.
    fn reader(&self, follower_read: bool) -> Result<ControllerCore, Status> {
        match follower_read {
            true => Ok(self.core.follower_reads()),
            false => self.active().cloned(),
        }
    }
}

/// An operator acts only on the VMs its certificate names; an administrator on every VM.
fn may_act_on<'a>(who: &Principal, vms: impl IntoIterator<Item = &'a VmName>) -> Result<(), Status> {
    match vms.into_iter().find(|vm| !who.may_act_on(vm.as_str())) {
        None => Ok(()),
        Some(vm) => Err(VmrmError::denied(format!("{who} may not act on VM {vm}: it is not one of its VMs")).into()),
    }
}

fn reply(steps: Result<Vec<pb::Step>, VmrmError>) -> Result<Response<pb::CommandReply>, Status> {
    Ok(Response::new(pb::CommandReply { steps: steps? }))
}

/// An HSDB member's id: a positive number.
fn node_id(id: u64) -> Result<u64, Status> {
    match id {
        0 => Err(Status::invalid_argument("an HSDB node id must be a positive number")),
        id => Ok(id),
    }
}

/// An event filter's severity: none for UNSPECIFIED.
fn severity(raw: i32) -> Result<Option<Severity>, Status> {
    match raw {
        0 => Ok(None),
        raw => Ok(Some(Severity::from_wire("severity", raw)?)),
    }
}

/// A query of something there is one of takes no name.
fn no_name(raw: &str, what: &str) -> Result<(), Status> {
    match raw.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid_argument(format!("a query of {what} takes no name (got {})", quote(raw)))),
    }
}

/// A query's name: empty asks for every object, anything else must be a valid name of `N`.
fn query_name<N>(raw: &str, parse: impl Fn(&str) -> crate::error::Result<N>) -> Result<&str, Status> {
    if !raw.is_empty() {
        parse(raw)?;
    }
    Ok(raw)
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn add_cluster(&self, req: Request<pb::AddClusterRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddCluster", req, |_, r| async move {
            let name = ClusterName::parse(&r.name)?;
            let dr = match pb::ClusterType::try_from(r.r#type) {
                Ok(pb::ClusterType::Unspecified | pb::ClusterType::Ha) => false,
                Ok(pb::ClusterType::Dr) => true,
                Err(_) => return Err(Status::invalid_argument(format!("type {} is not one of HA, DR", r.r#type))),
            };
            let ksysnodes = HostName::all(&r.ksysnodes)?;
            reply(self.active()?.config.add_cluster(&name, dr, ksysnodes, r.sync).await)
        })
        .await
    }

    async fn add_site(&self, req: Request<pb::AddSiteRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddSite", req, |_, r| async move {
            let site_type = match pb::SiteType::try_from(r.site_type) {
                Ok(pb::SiteType::Home) => SiteType::Home,
                Ok(pb::SiteType::Backup) => SiteType::Backup,
                _ => return Err(Status::invalid_argument("a site's type is home or backup")),
            };
            reply(self.active()?.config.add_site(&SiteName::parse(&r.name)?, site_type).await)
        })
        .await
    }

    async fn add_storage_agent(
        &self,
        req: Request<pb::AddStorageAgentRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddStorageAgent", req, |_, r| async move {
            let (name, site) = (StorageAgentName::parse(&r.name)?, SiteName::parse(&r.site)?);
            reply(self.active()?.config.add_storage_agent(&name, &site, &r.ip).await)
        })
        .await
    }

    async fn pair_host(&self, req: Request<pb::PairHostRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("PairHost", req, |_, r| async move {
            let (host, pair) = (HostName::parse(&r.host)?, HostName::parse(&r.pair)?);
            reply(self.active()?.config.pair_host(&host, &pair).await)
        })
        .await
    }

    async fn query_site(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SiteList>, Status> {
        let name = query_name(&req.get_ref().name, SiteName::parse)?;
        Ok(Response::new(self.reader(req.get_ref().follower_read)?.config.query_site(name).await?))
    }

    async fn discover_site(&self, req: Request<pb::DiscoverSiteRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("DiscoverSite", req, |_, r| async move {
            reply(self.active()?.dr.discover_site(&SiteName::parse(&r.site)?, r.verify).await)
        })
        .await
    }

    async fn move_host_group(&self, req: Request<pb::MoveRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("MoveHostGroup", req, |_, r| async move {
            let (group, to) = (HostGroupName::parse(&r.host_group)?, SiteName::parse(&r.to)?);
            if r.dr_test {
                return reply(self.active()?.dr.start_test(&group, &to).await);
            }
            let unplanned = match pb::DrType::try_from(r.dr_type) {
                Ok(pb::DrType::Unspecified | pb::DrType::Planned) => false,
                Ok(pb::DrType::Unplanned) => true,
                Err(_) => return Err(Status::invalid_argument("dr_type is planned or unplanned")),
            };
            reply(self.active()?.dr.move_host_group(&group, &to, unplanned, r.confirm).await)
        })
        .await
    }

    async fn change_dr_identity(
        &self,
        req: Request<pb::DrIdentityChange>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ChangeDrIdentity", req, |_, r| async move {
            let (vm, site) = (VmName::parse(&r.vm)?, SiteName::parse(&r.site)?);
            let identity = match pb::ChangeAction::try_from(r.action) {
                Ok(pb::ChangeAction::Add) => Some(NetworkIdentity::parse(&r.hostname, &r.ip, &r.netmask, &r.gateway)?),
                Ok(pb::ChangeAction::Remove) => None,
                _ => return Err(Status::invalid_argument("a DR identity is added or removed")),
            };
            reply(self.active()?.config.change_dr_identity(&vm, &site, identity).await)
        })
        .await
    }

    async fn remove_cluster(
        &self,
        req: Request<pb::RemoveClusterRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("RemoveCluster", req, |_, r| async move {
            let name = ClusterName::parse(&r.name)?;
            reply(self.active()?.config.remove_cluster(&name, r.confirm).await)
        })
        .await
    }

    async fn add_hmc(&self, req: Request<pb::AddHmcRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddHmc", req, |_, r| async move {
            let site = SiteName::optional(&r.site)?;
            let name = HmcName::parse(&r.name)?;
            reply(self.active()?.config.add_hmc(&name, (&r.login, &r.password), &r.ip, site.as_ref()).await)
        })
        .await
    }

    async fn add_host(&self, req: Request<pb::AddHostRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddHost", req, |_, r| async move {
            reply(self.active()?.config.add_host(&HostName::parse(&r.name)?).await)
        })
        .await
    }

    async fn add_host_group(
        &self,
        req: Request<pb::AddHostGroupRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddHostGroup", req, |_, r| async move {
            let (name, hosts) = (HostGroupName::parse(&r.name)?, HostName::all(&r.hosts)?);
            reply(self.active()?.config.add_host_group(&name, hosts, r.repo_disk, r.ha_disk).await)
        })
        .await
    }

    async fn discover(&self, req: Request<pb::DiscoverRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Discover", req, |_, r| async move {
            reply(self.active()?.config.discover(HostGroupName::parse(&r.host_group)?.as_str(), r.verify).await)
        })
        .await
    }

    async fn verify(&self, req: Request<pb::VerifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Verify", req, |_, r| async move {
            reply(self.active()?.config.verify(HostGroupName::parse(&r.host_group)?.as_str()).await)
        })
        .await
    }

    async fn restart_vm(&self, req: Request<pb::RestartVmRequest>) -> Result<Response<pb::RestartVmReply>, Status> {
        self.audited("RestartVm", req, |who, r| async move {
            let (vm, target) = (VmName::parse(&r.vm)?, HostName::optional(&r.host)?);
            may_act_on(&who, [&vm])?;
            let done =
                self.active()?.recovery.admin_restart(vm.as_str(), target.as_ref().map(HostName::as_str)).await?;
            Ok(Response::new(pb::RestartVmReply {
                vm: done.vm,
                source: done.source,
                target: done.target,
                epoch: done.epoch,
                task: done.task,
                steps: done.steps,
            }))
        })
        .await
    }

    type MigrateStream = UnboundedReceiverStream<Result<pb::MigrateReply, Status>>;

    /// Checked first (a malformed request fails the call itself), then run in a task whose
    /// lines and progress stream back; a rejection or an abort is the stream's last item.
    async fn migrate(&self, req: Request<pb::MigrateRequest>) -> Result<Response<Self::MigrateStream>, Status> {
        let core = self.active()?.clone();
        let attempt = self.attempt("Migrate", &req)?;
        attempt.start().await?;
        let checked = LpmRequest::try_from(req.into_inner()).map_err(Status::from).and_then(|req| {
            let who = &attempt.who;
            match &req.scope {
                LpmScope::Vms(vms) => may_act_on(who, vms)?,
                LpmScope::Host(host) if !who.has(CallerRole::Admin) => {
                    let why = format!("{who} may not migrate host {host}: only an administrator may");
                    return Err(VmrmError::denied(why).into());
                }
                LpmScope::Host(_) => {}
            }
            Ok(req)
        });
        let req = match checked {
            Ok(req) => req,
            Err(refused) => {
                attempt.end(&Err::<(), _>(refused.clone())).await;
                return Err(refused);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let out = LpmOut::streaming(tx.clone());
        // The trail's end is the migration's, not the stream's start.
        tokio::spawn(async move {
            let result = core.migration.lpm(req, &out).await.map_err(Status::from);
            attempt.end(&result).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn query_cluster(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::ClusterList>, Status> {
        let name = query_name(&req.get_ref().name, ClusterName::parse)?;
        let mut clusters = self.reader(req.get_ref().follower_read)?.views.query_cluster().await?;
        clusters.retain(|c| name.is_empty() || c.name == name);
        if clusters.is_empty() {
            return Err(Status::not_found(format!("ksyscluster {name} does not exist")));
        }
        Ok(Response::new(pb::ClusterList { clusters }))
    }

    async fn query_hmc(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HmcList>, Status> {
        Ok(Response::new(pb::HmcList {
            hmcs: self
                .reader(req.get_ref().follower_read)?
                .views
                .query_hmc(query_name(&req.get_ref().name, HmcName::parse)?)
                .await?,
        }))
    }

    async fn query_host(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HostList>, Status> {
        Ok(Response::new(pb::HostList {
            hosts: self
                .reader(req.get_ref().follower_read)?
                .views
                .query_host(query_name(&req.get_ref().name, HostName::parse)?)
                .await?,
        }))
    }

    async fn query_host_group(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HostGroupList>, Status> {
        let name = query_name(&req.get_ref().name, HostGroupName::parse)?;
        let host_groups = self.reader(req.get_ref().follower_read)?.views.query_host_group(name).await?;
        Ok(Response::new(pb::HostGroupList { host_groups }))
    }

    async fn query_vios(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::ViosList>, Status> {
        Ok(Response::new(pb::ViosList {
            vioses: self
                .reader(req.get_ref().follower_read)?
                .views
                .query_vios(query_name(&req.get_ref().name, ViosName::parse)?)
                .await?,
        }))
    }

    async fn query_vm(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::VmList>, Status> {
        Ok(Response::new(pb::VmList {
            vms: self
                .reader(req.get_ref().follower_read)?
                .views
                .query_vm(query_name(&req.get_ref().name, VmName::parse)?)
                .await?,
        }))
    }

    async fn query_event(&self, req: Request<pb::EventQuery>) -> Result<Response<pb::EventList>, Status> {
        let q = req.into_inner();
        let page = EventPage::new(query_name(&q.name, EventFilter::parse)?, q.before, q.limit)?;
        let kinds = EventKinds { severity: severity(q.severity)?, unacknowledged: q.unacknowledged };
        Ok(Response::new(self.reader(q.follower_read)?.views.query_event(&page, kinds).await?))
    }

    async fn query_audit(&self, req: Request<pb::EventQuery>) -> Result<Response<pb::AuditList>, Status> {
        let q = req.into_inner();
        let page = EventPage::new(&q.name, q.before, q.limit)?;
        Ok(Response::new(self.reader(q.follower_read)?.views.query_audit(&page).await?))
    }

    async fn query_app(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::AppList>, Status> {
        Ok(Response::new(pb::AppList {
            apps: self
                .reader(req.get_ref().follower_read)?
                .views
                .query_app(query_name(&req.get_ref().name, VmName::parse)?)
                .await?,
        }))
    }

    async fn add_hsdb_node(&self, req: Request<pb::AddHsdbNodeRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddHsdbNode", req, |_, r| async move {
            reply(self.active()?.config.add_hsdb_node(r.node_id, &r.endpoint).await)
        })
        .await
    }

    async fn modify_hsdb_node(
        &self,
        req: Request<pb::ModifyHsdbNodeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ModifyHsdbNode", req, |_, r| async move {
            reply(self.active()?.config.modify_hsdb_node(node_id(r.node_id)?, Role::from_wire(r.role)?).await)
        })
        .await
    }

    async fn remove_hsdb_node(
        &self,
        req: Request<pb::RemoveHsdbNodeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("RemoveHsdbNode", req, |_, r| async move {
            reply(self.active()?.config.remove_hsdb_node(node_id(r.node_id)?).await)
        })
        .await
    }

    async fn query_hsdb(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HsdbView>, Status> {
        no_name(&req.get_ref().name, "the HSDB")?;
        Ok(Response::new(self.reader(req.get_ref().follower_read)?.config.query_hsdb().await?))
    }

    async fn modify(&self, req: Request<pb::ModifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Modify", req, |_, r| async move {
            let target = ModifyTarget::from_wire(r.level, &r.names)?;
            let settings =
                r.settings.ok_or_else(|| Status::invalid_argument("nothing to modify: settings are required"))?;
            reply(self.active()?.config.modify(&target, &settings).await)
        })
        .await
    }

    async fn manage(&self, req: Request<pb::ManageRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Manage", req, |who, r| async move {
            let vms = VmName::all(&r.vms)?;
            may_act_on(&who, &vms)?;
            reply(self.active()?.config.manage(&vms, r.manage).await)
        })
        .await
    }

    async fn change_affinity(&self, req: Request<pb::AffinityRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ChangeAffinity", req, |_, r| async move {
            let kind = AffinityKind::from_wire("kind", r.kind)?;
            let name = AffinityGroupName::parse(&r.name)?;
            let vms = strings(VmName::all(&r.vms)?);
            let change = match (pb::ChangeAction::try_from(r.action), vms.is_empty()) {
                (Ok(pb::ChangeAction::Add), false) if !r.remove_vms => AffinityChange::Add(vms),
                (Ok(pb::ChangeAction::Modify), false) => AffinityChange::Members(!r.remove_vms, vms),
                (Ok(pb::ChangeAction::Remove), true) if !r.remove_vms => AffinityChange::Delete,
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "{kind}: add NAME with vms, modify NAME with vms (remove_vms to take them out), or remove NAME"
                    )));
                }
            };
            reply(self.active()?.config.change_affinity(kind, &name, change).await)
        })
        .await
    }

    async fn query_affinity(&self, req: Request<pb::AffinityQuery>) -> Result<Response<pb::AffinityList>, Status> {
        let r = req.into_inner();
        let kind = match r.kind {
            0 => None,
            raw => Some(AffinityKind::from_wire("kind", raw)?),
        };
        let name = query_name(&r.name, AffinityGroupName::parse)?;
        let groups = self.active()?.config.query_affinity(kind, name).await?;
        let groups =
            groups.into_iter().map(|g| pb::AffinityView { name: g.name, kind: g.kind.into(), vms: g.vms }).collect();
        Ok(Response::new(pb::AffinityList { groups }))
    }

    async fn restore(&self, req: Request<pb::RestoreRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Restore", req, |_, r| async move {
            reply(self.active()?.migration.restore(&Restore::from_wire(r.scope, &r.name)?).await)
        })
        .await
    }

    async fn cleanup(&self, req: Request<pb::CleanupRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("Cleanup", req, |_, r| async move {
            let group = HostGroupName::parse(&r.host_group)?;
            match r.dr_test {
                true => reply(self.active()?.dr.end_test(&group).await),
                false => reply(self.active()?.recovery.cleanup(group.as_str()).await),
            }
        })
        .await
    }

    async fn query_system(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SystemView>, Status> {
        no_name(&req.get_ref().name, "the system")?;
        Ok(Response::new(self.reader(req.get_ref().follower_read)?.views.query_system().await?))
    }

    async fn change_monjv(&self, req: Request<pb::MonjvChange>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ChangeMonjv", req, |_, r| async move {
            let (name, change) = MonjvChange::from_wire(r)?;
            reply(self.active()?.monjvs.change_monjv(&name, change).await)
        })
        .await
    }

    async fn query_monjv(&self, req: Request<pb::MonjvQuery>) -> Result<Response<pb::MonjvList>, Status> {
        let q = req.into_inner();
        let name = query_name(&q.name, monjv::check_name)?;
        Ok(Response::new(pb::MonjvList { monjvs: self.active()?.monjvs.query_monjv(name, &q.password).await? }))
    }

    async fn watch_monjv(&self, req: Request<pb::MonjvWatch>) -> Result<Response<pb::MonjvView>, Status> {
        monjv::check_name(&req.get_ref().name)?;
        Ok(Response::new(self.active()?.monjvs.watch_monjv(req.into_inner()).await?))
    }

    async fn change_su_cluster(&self, req: Request<pb::SuClusterChange>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ChangeSuCluster", req, |_, r| async move {
            let (name, change) = SuClusterChange::from_wire(r)?;
            reply(self.active()?.migration.change_su_cluster(&name, change).await)
        })
        .await
    }

    async fn query_su_cluster(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SuClusterList>, Status> {
        let name = query_name(&req.get_ref().name, SuClusterName::parse)?;
        let clusters = self.reader(req.get_ref().follower_read)?.migration.query_su_cluster(name).await?;
        Ok(Response::new(pb::SuClusterList { clusters }))
    }

    async fn add_notify(&self, req: Request<pb::NotifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AddNotify", req, |_, r| async move {
            let (user, contact) = (UserName::parse(&r.user)?, Contact::parse(&r.contact)?);
            reply(self.active()?.notify.add_notify(&user, &contact).await)
        })
        .await
    }

    async fn delete_notify(&self, req: Request<pb::NotifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("DeleteNotify", req, |_, r| async move {
            let user = UserName::parse(&r.user)?;
            let contact = match r.contact.is_empty() {
                true => None,
                false => Some(Contact::parse(&r.contact)?),
            };
            reply(self.active()?.notify.delete_notify(&user, contact.as_ref()).await)
        })
        .await
    }

    async fn query_notify(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::NotifyList>, Status> {
        let user = UserName::optional(&req.get_ref().name)?;
        let contacts = self.reader(req.get_ref().follower_read)?.notify.query_notify(user.as_ref()).await?;
        Ok(Response::new(pb::NotifyList { contacts }))
    }

    type WatchEventsStream = ReceiverStream<Result<pb::EventView, Status>>;

    async fn watch_events(&self, req: Request<pb::EventWatch>) -> Result<Response<Self::WatchEventsStream>, Status> {
        let w = req.into_inner();
        let watch = events::EventWatch {
            names: EventPage::new(query_name(&w.name, EventFilter::parse)?, None, None)?,
            kinds: EventKinds { severity: severity(w.severity)?, unacknowledged: false },
            after: w.after,
        };
        let (core, slot) = (self.active()?.clone(), self.stream_slot()?);
        Ok(Response::new(ReceiverStream::new(events::watch(core, watch, slot).await?)))
    }

    async fn ack_event(&self, req: Request<pb::AckRequest>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("AckEvent", req, |_, r| async move {
            reply(events::acknowledge(self.active()?, r.sequence, r.all).await)
        })
        .await
    }

    async fn add_snapshot(&self, req: Request<pb::SnapshotRequest>) -> Result<Response<pb::SnapshotReply>, Status> {
        self.audited("AddSnapshot", req, |_, _| async move {
            let (record, steps) = self.active()?.config.take_snapshot().await?;
            Ok(Response::new(pb::SnapshotReply { name: record.name, content: record.content.into_bytes(), steps }))
        })
        .await
    }

    async fn query_snapshot(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SnapshotList>, Status> {
        let name = req.get_ref().name.clone();
        if name.len() > 128 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err(Status::invalid_argument(format!("`{}` is not a snapshot name", quote(&name))));
        }
        let kept = self.reader(req.get_ref().follower_read)?.config.query_snapshot(&name).await?;
        let snapshots = kept
            .into_iter()
            .map(|s| pb::SnapshotView {
                size_bytes: s.content.len() as u64,
                content: if name.is_empty() { Vec::new() } else { s.content.into_bytes() },
                name: s.name,
                taken_ms: s.taken_ms,
            })
            .collect();
        Ok(Response::new(pb::SnapshotList { snapshots }))
    }

    async fn restore_snapshot(
        &self,
        req: Request<pb::RestoreSnapshotRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("RestoreSnapshot", req, |_, r| async move {
            let config = &self.active()?.config;
            let content = match (r.content.is_empty(), r.name.is_empty()) {
                (false, true) => r.content,
                (true, false) => config.snapshot_content(&r.name).await?,
                _ => return Err(Status::invalid_argument("restore snapshot takes a snapshot's content or its name")),
            };
            reply(config.restore_snapshot(&content).await)
        })
        .await
    }

    async fn add_ffdc(&self, req: Request<pb::AddFfdcRequest>) -> Result<Response<pb::FfdcIncidentView>, Status> {
        self.audited("AddFfdc", req, |_, r| async move {
            Ok(Response::new(super::ffdc::add(self.active()?, &r.detail).await?))
        })
        .await
    }

    async fn query_ffdc(&self, req: Request<pb::FfdcQuery>) -> Result<Response<pb::FfdcList>, Status> {
        let core = self.active()?;
        Ok(Response::new(crate::ffdc::views::list(&core.hsdb, &req.get_ref().id, core.ffdc.node()).await?))
    }

    type SnapFfdcStream = crate::ffdc::service::ArchiveStream;

    async fn snap_ffdc(&self, req: Request<pb::FfdcSnapRequest>) -> Result<Response<Self::SnapFfdcStream>, Status> {
        self.audited("SnapFfdc", req, |_, r| async move {
            let archive = crate::ffdc::views::archive(&self.active()?.hsdb, &r.id).await?;
            Ok(Response::new(crate::ffdc::service::archive_stream(crate::ffdc::views::parts(archive))))
        })
        .await
    }

    async fn modify_ffdc(&self, req: Request<pb::FfdcSettingsChange>) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("ModifyFfdc", req, |_, r| async move {
            Ok(Response::new(super::ffdc::modify(self.active()?, &r).await?))
        })
        .await
    }

    async fn query_trace(&self, req: Request<pb::TraceRequest>) -> Result<Response<pb::TraceReply>, Status> {
        let core = self.active()?;
        Ok(Response::new(super::ffdc::trace(core, req.into_inner()).await?))
    }

    type WatchStatusStream = ReceiverStream<Result<pb::Step, Status>>;

    async fn watch_status(&self, req: Request<pb::StatusWatch>) -> Result<Response<Self::WatchStatusStream>, Status> {
        let (core, slot) = (self.active()?.clone(), self.stream_slot()?);
        Ok(Response::new(ReceiverStream::new(status::watch(core, req.get_ref().monitor, slot).await?)))
    }

    async fn recover_vm_definition(
        &self,
        req: Request<pb::RecoverVmDefinitionRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.audited("RecoverVmDefinition", req, |who, r| async move {
            let (vm, host) = (VmName::parse(&r.vm)?, HostName::optional(&r.host)?);
            may_act_on(&who, [&vm])?;
            let local = host.as_ref().map_or("", HostName::as_str);
            reply(self.active()?.migration.recover_vm_definition(vm.as_str(), local).await)
        })
        .await
    }
}
