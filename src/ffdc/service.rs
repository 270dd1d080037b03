//! The `vmrm.v1.Ffdc` service every node serves: capture requests and hand-overs from its
//! peers, and the incidents, archives and trace logs for people — read from the HSDB, so
//! any node answers the same.
use super::module::FfdcModule;
use super::views;
use crate::pb;
use crate::transport::gate::caller;
use tonic::{Request, Response, Status};

/// An archive as a stream of parts.
pub type ArchiveStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::FfdcArchivePart, Status>>>;

pub struct FfdcService {
    pub module: FfdcModule,
}

/// The parts of incident `id`'s archive as a stream.
pub fn archive_stream(parts: Vec<pb::FfdcArchivePart>) -> ArchiveStream {
    tokio_stream::iter(parts.into_iter().map(Ok).collect::<Vec<_>>())
}

/// Runs `work` in a task of its own and waits for it.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = crate::error::Result<T>> + Send + 'static,
) -> Result<T, Status> {
    match tokio::spawn(work).await {
        Ok(done) => done.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("the capture stopped: {e}"))),
    }
}

#[tonic::async_trait]
impl pb::ffdc_server::Ffdc for FfdcService {
    // A capture or a hand-over runs to its end in a task of its own: a caller that dies (the
    // DBN killed as it asks) must not cancel it halfway.

    async fn capture(&self, req: Request<pb::CaptureRequest>) -> Result<Response<pb::CaptureReply>, Status> {
        let module = self.module.clone();
        let outcome = detached(async move { module.on_capture(req.into_inner()).await }).await?;
        Ok(Response::new(pb::CaptureReply { outcome: outcome.to_string() }))
    }

    async fn delegate(&self, req: Request<pb::DelegateRequest>) -> Result<Response<pb::CaptureReply>, Status> {
        let who = caller(&req)?;
        let name = (!who.unchecked).then(|| who.name.clone());
        let module = self.module.clone();
        let outcome = detached(async move { module.on_delegate(name.as_deref(), req.into_inner()).await }).await?;
        Ok(Response::new(pb::CaptureReply { outcome: outcome.to_string() }))
    }

    async fn list(&self, req: Request<pb::FfdcQuery>) -> Result<Response<pb::FfdcList>, Status> {
        let list = views::list(self.module.hsdb(), &req.into_inner().id, self.module.node()).await?;
        Ok(Response::new(list))
    }

    type SnapStream = ArchiveStream;

    async fn snap(&self, req: Request<pb::FfdcSnapRequest>) -> Result<Response<Self::SnapStream>, Status> {
        let archive = views::archive(self.module.hsdb(), &req.into_inner().id).await?;
        Ok(Response::new(archive_stream(views::parts(archive))))
    }

    async fn trace(&self, req: Request<pb::TraceRequest>) -> Result<Response<pb::TraceReply>, Status> {
        let r = req.into_inner();
        if !r.node.is_empty() && r.node != self.module.node() {
            return Err(Status::invalid_argument(format!(
                "this is node {}: ask node {} itself (or the admin API, which relays)",
                self.module.node(),
                r.node
            )));
        }
        Ok(Response::new(views::trace(self.module.node(), &r.log, r.lines)?))
    }
}
