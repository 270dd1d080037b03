//! The `vmrm.v1.Admin` gRPC service: proto in, checks, core operation, proto out. Every call
//! first makes sure this controller is the active one; a standby answers `UNAVAILABLE` with the
//! active controller's endpoint in the `vmrm-leader` metadata.
use crate::controller::config::affinity::AffinityChange;
use crate::controller::core::ControllerCore;
use crate::controller::migration::evacuation::check_request;
use crate::controller::migration::lpm::LpmOut;
use crate::domain::AffinityKind;
use crate::error::VmrmError;
use crate::logic::event_page::EventPage;
use crate::pb::{self, admin_server::Admin};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

pub struct AdminService {
    core: ControllerCore,
}

impl AdminService {
    pub fn new(core: ControllerCore) -> Self {
        Self { core }
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

fn reply(lines: Result<Vec<String>, VmrmError>) -> Result<Response<pb::CommandReply>, Status> {
    Ok(Response::new(pb::CommandReply { lines: lines? }))
}

fn not_empty<'a>(what: &str, value: &'a str) -> Result<&'a str, Status> {
    match value.trim().is_empty() {
        true => Err(Status::invalid_argument(format!("{what} is required"))),
        false => Ok(value),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn add_cluster(&self, req: Request<pb::AddClusterRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(
            self.active()?
                .config
                .add_cluster(not_empty("the ksyscluster name", &r.name)?, &r.r#type, r.ksysnodes, r.sync)
                .await,
        )
    }

    async fn add_hmc(&self, req: Request<pb::AddHmcRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.add_hmc(not_empty("the HMC name", &r.name)?, &r.login, &r.password, &r.ip).await)
    }

    async fn add_host(&self, req: Request<pb::AddHostRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.add_host(not_empty("the host name", &r.name)?).await)
    }

    async fn add_host_group(
        &self,
        req: Request<pb::AddHostGroupRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        let name = not_empty("the host_group name", &r.name)?;
        reply(self.active()?.config.add_host_group(name, &r.hosts, r.repo_disk, r.ha_disk).await)
    }

    async fn discover(&self, req: Request<pb::DiscoverRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.discover(not_empty("the host_group name", &r.host_group)?, r.verify).await)
    }

    async fn verify(&self, req: Request<pb::VerifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.verify(not_empty("the host_group name", &r.host_group)?).await)
    }

    async fn restart_vm(&self, req: Request<pb::RestartVmRequest>) -> Result<Response<pb::RestartVmReply>, Status> {
        let r = req.into_inner();
        let target = (!r.host.is_empty()).then_some(r.host.as_str());
        let done = self.active()?.recovery.admin_restart(not_empty("the VM name", &r.vm)?, target).await?;
        Ok(Response::new(pb::RestartVmReply {
            vm: done.vm,
            source: done.source,
            target: done.target,
            epoch: done.epoch,
            task: done.task,
            lines: done.lines,
        }))
    }

    type MigrateStream = UnboundedReceiverStream<Result<pb::MigrateReply, Status>>;

    /// Checked first (a malformed request fails the call itself), then run in a task whose
    /// lines and progress stream back; a rejection or an abort is the stream's last item.
    async fn migrate(&self, req: Request<pb::MigrateRequest>) -> Result<Response<Self::MigrateStream>, Status> {
        let core = self.active()?.clone();
        let req = req.into_inner();
        check_request(&req)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let out = LpmOut::streaming(tx.clone());
        tokio::spawn(async move {
            if let Err(e) = core.migration.lpm(req, &out).await {
                let _ = tx.send(Err(e.into()));
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn query_cluster(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::ClusterList>, Status> {
        Ok(Response::new(pb::ClusterList {
            clusters: self.reader(req.get_ref().follower_read)?.views.query_cluster().await?,
        }))
    }

    async fn query_hmc(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HmcList>, Status> {
        Ok(Response::new(pb::HmcList {
            hmcs: self.reader(req.get_ref().follower_read)?.views.query_hmc(&req.get_ref().name).await?,
        }))
    }

    async fn query_host(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HostList>, Status> {
        Ok(Response::new(pb::HostList {
            hosts: self.reader(req.get_ref().follower_read)?.views.query_host(&req.get_ref().name).await?,
        }))
    }

    async fn query_host_group(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HostGroupList>, Status> {
        let host_groups = self.reader(req.get_ref().follower_read)?.views.query_host_group(&req.get_ref().name).await?;
        Ok(Response::new(pb::HostGroupList { host_groups }))
    }

    async fn query_vios(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::ViosList>, Status> {
        Ok(Response::new(pb::ViosList {
            vioses: self.reader(req.get_ref().follower_read)?.views.query_vios(&req.get_ref().name).await?,
        }))
    }

    async fn query_vm(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::VmList>, Status> {
        Ok(Response::new(pb::VmList {
            vms: self.reader(req.get_ref().follower_read)?.views.query_vm(&req.get_ref().name).await?,
        }))
    }

    async fn query_event(&self, req: Request<pb::EventQuery>) -> Result<Response<pb::EventList>, Status> {
        let q = req.into_inner();
        let page = EventPage::new(&q.name, q.before, q.limit)?;
        Ok(Response::new(self.reader(q.follower_read)?.views.query_event(&page).await?))
    }

    async fn query_app(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::AppList>, Status> {
        Ok(Response::new(pb::AppList {
            apps: self.reader(req.get_ref().follower_read)?.views.query_app(&req.get_ref().name).await?,
        }))
    }

    async fn add_hsdb_node(&self, req: Request<pb::AddHsdbNodeRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.add_hsdb_node(r.node_id, not_empty("the endpoint", &r.endpoint)?).await)
    }

    async fn modify_hsdb_node(
        &self,
        req: Request<pb::ModifyHsdbNodeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.modify_hsdb_node(r.node_id, not_empty("the role", &r.role)?).await)
    }

    async fn remove_hsdb_node(
        &self,
        req: Request<pb::RemoveHsdbNodeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        reply(self.active()?.config.remove_hsdb_node(req.into_inner().node_id).await)
    }

    async fn query_hsdb(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::HsdbView>, Status> {
        Ok(Response::new(self.reader(req.get_ref().follower_read)?.config.query_hsdb().await?))
    }

    async fn modify(&self, req: Request<pb::ModifyRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        let core = self.active()?;
        let name = match r.class.as_str() {
            "system" => r.name.as_str(),
            _ => not_empty("the name", &r.name)?,
        };
        let attributes = r.attributes.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        reply(core.config.modify(&r.class, name, &attributes).await)
    }

    async fn manage(&self, req: Request<pb::ManageRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.config.manage(not_empty("the VM names", &r.vms)?, r.manage).await)
    }

    async fn change_affinity(&self, req: Request<pb::AffinityRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        let core = self.active()?;
        let kind: AffinityKind = r.kind.parse().map_err(Status::invalid_argument)?;
        let change = match (r.action.as_str(), r.policy.to_ascii_lowercase().as_str()) {
            ("add", "") => AffinityChange::Add(r.vms),
            ("modify", "add") => AffinityChange::Members(true, r.vms),
            ("modify", "delete") => AffinityChange::Members(false, r.vms),
            ("modify", _) => {
                return Err(Status::invalid_argument("modify needs policy=add or policy=delete with vm=..."));
            }
            ("delete", "") if r.vms.is_empty() => AffinityChange::Delete,
            (action, _) => {
                return Err(Status::invalid_argument(format!(
                    "{action} {kind}: use add NAME vm=..., modify NAME policy=add|delete vm=..., or delete NAME"
                )));
            }
        };
        reply(core.config.change_affinity(kind, not_empty("the group name", &r.name)?, change).await)
    }

    async fn query_affinity(&self, req: Request<pb::AffinityQuery>) -> Result<Response<pb::AffinityList>, Status> {
        let r = req.into_inner();
        let kind = match r.kind.as_str() {
            "" => None,
            k => Some(k.parse::<AffinityKind>().map_err(Status::invalid_argument)?),
        };
        let groups = self.active()?.config.query_affinity(kind, &r.name).await?;
        let groups = groups
            .into_iter()
            .map(|g| pb::AffinityView { name: g.name, kind: g.kind.title().into(), vms: g.vms })
            .collect();
        Ok(Response::new(pb::AffinityList { groups }))
    }

    async fn restore(&self, req: Request<pb::RestoreRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.migration.restore(&r.class, not_empty("the name", &r.name)?).await)
    }

    async fn cleanup(&self, req: Request<pb::CleanupRequest>) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.recovery.cleanup(not_empty("the host_group name", &r.host_group)?).await)
    }

    async fn query_system(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SystemView>, Status> {
        Ok(Response::new(self.reader(req.get_ref().follower_read)?.views.query_system().await?))
    }

    async fn change_monjv(&self, req: Request<pb::MonjvChange>) -> Result<Response<pb::CommandReply>, Status> {
        reply(self.active()?.monjvs.change_monjv(req.into_inner()).await)
    }

    async fn query_monjv(&self, req: Request<pb::MonjvQuery>) -> Result<Response<pb::MonjvList>, Status> {
        let q = req.into_inner();
        Ok(Response::new(pb::MonjvList { monjvs: self.active()?.monjvs.query_monjv(&q.name, &q.password).await? }))
    }

    async fn watch_monjv(&self, req: Request<pb::MonjvWatch>) -> Result<Response<pb::MonjvView>, Status> {
        Ok(Response::new(self.active()?.monjvs.watch_monjv(req.into_inner()).await?))
    }

    async fn change_su_cluster(&self, req: Request<pb::SuClusterChange>) -> Result<Response<pb::CommandReply>, Status> {
        reply(self.active()?.migration.change_su_cluster(req.into_inner()).await)
    }

    async fn query_su_cluster(&self, req: Request<pb::QueryRequest>) -> Result<Response<pb::SuClusterList>, Status> {
        let clusters =
            self.reader(req.get_ref().follower_read)?.migration.query_su_cluster(&req.get_ref().name).await?;
        Ok(Response::new(pb::SuClusterList { clusters }))
    }

    async fn recover_vm_definition(
        &self,
        req: Request<pb::RecoverVmDefinitionRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        reply(self.active()?.migration.recover_vm_definition(not_empty("the VM name", &r.vm)?, r.host.trim()).await)
    }
}
