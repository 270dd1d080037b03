//! gRPC face of the server unit: the HMCs' calls (inventory, LPAR jobs, the source side of a
//! live migration) and the operator's drills. Another unit's inbound migration stream has a
//! service of its own ([`super::lane`]).
use super::drills::{InjectFault, SetWorkload};
use super::outbound::{BeginOutbound, Driver};
use super::{Activate, Inventory, LparMigration, ServerUnit, Shutdown};
use crate::domain::LparDefinition;
use crate::error::VmrmError;
use crate::pb::migration_limits::limits_of;
use crate::pb::{self, server_unit_server::ServerUnit as SuRpc};
use crate::profile::Timing;
use crate::sim::workload::WorkloadSettings;
use actix::prelude::*;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct SuService {
    pub unit: Addr<ServerUnit>,
    pub host: String,
    pub timing: Timing,
    /// Whether the node's config allows fault drills (`su.fault_drills`).
    pub fault_drills: bool,
}

impl SuService {
    fn drills_allowed(&self) -> Result<(), Status> {
        match self.fault_drills {
            true => Ok(()),
            false => Err(VmrmError::denied(format!(
                "fault drills are off on host {}: set `fault_drills = true` in its [su] section to allow them",
                self.host
            ))
            .into()),
        }
    }
}

/// Asks the outbound migration of one LPAR to stop.
#[derive(Message)]
#[rtype(result = "crate::error::Result<pb::Lpar>")]
struct CancelOutbound(String);

impl Handler<CancelOutbound> for ServerUnit {
    type Result = crate::error::Result<pb::Lpar>;
    fn handle(&mut self, CancelOutbound(name): CancelOutbound, _: &mut Context<Self>) -> Self::Result {
        match self.lpars.get(&name) {
            Some(l @ super::Lpar { migration: Some(LparMigration::Out { cancel, .. }), .. }) => {
                cancel.store(true, Ordering::Relaxed);
                Ok(self.lpar_pb(l))
            }
            Some(_) => Err(VmrmError::precondition(format!("VM {name} has no outbound migration running"))),
            None => Err(VmrmError::not_found(format!("no LPAR {name} on host {}", self.cfg.host))),
        }
    }
}

fn lpar_reply(lpar: pb::Lpar) -> Response<pb::LparReply> {
    Response::new(pb::LparReply { lpar: Some(lpar) })
}

#[tonic::async_trait]
impl SuRpc for SuService {
    async fn inventory(&self, _: Request<pb::SuInventoryRequest>) -> Result<Response<pb::HostInventory>, Status> {
        Ok(Response::new(self.unit.send(Inventory).await.map_err(VmrmError::from)?))
    }

    async fn activate(&self, req: Request<pb::LparDefinition>) -> Result<Response<pb::LparReply>, Status> {
        let def = LparDefinition::try_from(req.into_inner())?;
        Ok(lpar_reply(self.unit.send(Activate(def)).await.map_err(VmrmError::from)??))
    }

    async fn shutdown(&self, req: Request<pb::LparRef>) -> Result<Response<pb::LparReply>, Status> {
        let pb::LparRef { name, fence, .. } = req.into_inner();
        Ok(lpar_reply(self.unit.send(Shutdown { name, fence, remove: false }).await.map_err(VmrmError::from)??))
    }

    async fn remove(&self, req: Request<pb::LparRef>) -> Result<Response<pb::LparReply>, Status> {
        let pb::LparRef { name, fence, .. } = req.into_inner();
        Ok(lpar_reply(self.unit.send(Shutdown { name, fence, remove: true }).await.map_err(VmrmError::from)??))
    }

    async fn inject_fault(&self, req: Request<pb::LparFault>) -> Result<Response<pb::LparReply>, Status> {
        self.drills_allowed()?;
        let pb::LparFault { name, fault } = req.into_inner();
        Ok(lpar_reply(self.unit.send(InjectFault { name, fault }).await.map_err(VmrmError::from)??))
    }

    async fn set_workload(&self, req: Request<pb::LparWorkload>) -> Result<Response<pb::LparReply>, Status> {
        self.drills_allowed()?;
        let w = req.into_inner();
        let settings = WorkloadSettings { resident_mb: w.resident_mb, dirty_kb_s: w.dirty_kb_s, log: w.log };
        Ok(lpar_reply(self.unit.send(SetWorkload { name: w.name, settings }).await.map_err(VmrmError::from)??))
    }

    type MigrateOutStream = ReceiverStream<Result<pb::MigrationProgress, Status>>;

    async fn migrate_out(
        &self,
        req: Request<pb::MigrateOutRequest>,
    ) -> Result<Response<Self::MigrateOutStream>, Status> {
        let req = req.into_inner();
        if req.lpar.is_empty() || req.target_host.is_empty() || req.target_endpoint.is_empty() {
            return Err(Status::invalid_argument("a migration needs the LPAR, the target host and its endpoint"));
        }
        if req.target_host == self.host {
            return Err(Status::invalid_argument(format!("VM {} already runs on host {}", req.lpar, self.host)));
        }
        let (limits, bandwidth) = limits_of(req.limits.as_ref())?;
        let begin =
            BeginOutbound { lpar: req.lpar.clone(), target: req.target_host.clone(), operation: req.operation.clone() };
        let out = self.unit.send(begin).await.map_err(VmrmError::from)??;
        let (progress, rx) = mpsc::channel(64);
        let driver = Driver { su: self.unit.clone(), out, req, limits, bandwidth, timing: self.timing, progress };
        tokio::spawn(driver.run());
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn cancel_migration(&self, req: Request<pb::LparRef>) -> Result<Response<pb::LparReply>, Status> {
        let name = req.into_inner().name;
        Ok(lpar_reply(self.unit.send(CancelOutbound(name)).await.map_err(VmrmError::from)??))
    }
}
