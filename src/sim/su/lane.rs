//! The live migration's page lane, `vmrm.v1.MigrationLane/MigrateIn`, framed by hand on both
//! ends ([`grpc_wire`]): the source hands its guest's pages to HTTP/2 as they are (shared
//! copy-on-write, never copied into a send buffer), and the target decodes each frame from the
//! slices HTTP/2 received, so a page is copied once in user space — into the arriving guest's
//! memory. Through tonic's codec every byte was copied twice more: side by side, the same
//! migration ran at 0.65 of a loopback copy that way and 0.81 this way (BENCHMARKS.md). The
//! acknowledgements, small, go through tonic's codec.
use super::{ServerUnit, inbound};
use crate::hsdb::RemoteHsdb;
use crate::pb::{self, migration_frame::Frame};
use crate::transport::grpc_wire::{self, MessageReader};
use crate::transport::tls::Principal;
use actix::Addr;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, EncodeBody, SingleMessageCompressionOverride};
use tonic::{Status, body::Body};
use tonic_prost::ProstCodec;

/// The call's path.
pub const PATH: &str = "/vmrm.v1.MigrationLane/MigrateIn";
/// The largest frame a target takes; the source's frames are about 1 MiB.
const FRAME_LIMIT: usize = 64 << 20;
/// Field numbers: `MigrationFrame.pages`, `MigrationPages.indexes` and `.pages`.
const FRAME_PAGES: u32 = 2;
const PAGES_INDEXES: u32 = 1;
const PAGES_DATA: u32 = 2;
const GRPC: &str = "application/grpc";

/// A control frame (setup, round end, switchover mark, commit) on the wire.
pub fn control(frame: Frame) -> Bytes {
    grpc_wire::message(&pb::MigrationFrame { frame: Some(frame) })
}

/// The wire chunks of one `pages` frame: a head (prefix, field keys, the indexes), then each
/// page as given, each after the few bytes of its own key and length.
pub fn pages(indexes: &[u32], pages: Vec<Bytes>) -> Vec<Bytes> {
    let indexes_len: usize = indexes.iter().map(|&i| encoded_len_varint(i.into())).sum();
    let indexes_field = match indexes_len {
        0 => 0,
        n => 1 + encoded_len_varint(n as u64) + n,
    };
    let pages_len: usize = pages.iter().map(|p| 1 + encoded_len_varint(p.len() as u64) + p.len()).sum();
    let inner = indexes_field + pages_len;
    let message = 1 + encoded_len_varint(inner as u64) + inner;
    let mut head = BytesMut::with_capacity(grpc_wire::PREFIX + 16 + indexes_field + 8 * pages.len());
    head.put_slice(&grpc_wire::prefix(message));
    encode_key(FRAME_PAGES, WireType::LengthDelimited, &mut head);
    encode_varint(inner as u64, &mut head);
    if indexes_len > 0 {
        encode_key(PAGES_INDEXES, WireType::LengthDelimited, &mut head);
        encode_varint(indexes_len as u64, &mut head);
        indexes.iter().for_each(|&i| encode_varint(i.into(), &mut head));
    }
    let mut chunks = Vec::with_capacity(2 * pages.len() + 1);
    for page in pages {
        encode_key(PAGES_DATA, WireType::LengthDelimited, &mut head);
        encode_varint(page.len() as u64, &mut head);
        chunks.push(head.split().freeze());
        chunks.push(page);
    }
    if !head.is_empty() {
        chunks.push(head.freeze());
    }
    chunks
}

/// Source side: the call to the target unit on `channel`, sending the wire chunks `rx` gives;
/// the target's acknowledgements come back.
pub async fn open(
    mut channel: tonic::transport::Channel,
    rx: mpsc::Receiver<Bytes>,
) -> Result<tonic::Streaming<pb::MigrationAck>, Status> {
    use tower_service::Service;
    let frames = ReceiverStream::new(rx).map(|chunk| Ok::<_, Status>(http_body::Frame::data(chunk)));
    let request = http::Request::post(PATH)
        .header(http::header::CONTENT_TYPE, GRPC)
        .header(http::header::TE, "trailers")
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .map_err(|e| Status::internal(format!("the migration request: {e}")))?;
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await.map_err(|e| Status::unavailable(e.to_string()))?;
    let response = channel.call(request).await.map_err(|e| Status::unavailable(e.to_string()))?;
    if let Some(refused) = Status::from_header_map(response.headers()).filter(|s| s.code() != tonic::Code::Ok) {
        return Err(refused);
    }
    let status = response.status();
    let decoder = ProstCodec::<pb::MigrationFrame, pb::MigrationAck>::default().decoder();
    Ok(tonic::Streaming::new_response(decoder, response.into_body(), status, None, None))
}

/// Target side: serves `MigrateIn` for the unit beside its `ServerUnit` service.
#[derive(Clone)]
pub struct LaneServer {
    pub unit: Addr<ServerUnit>,
    pub host: String,
    /// A source silent this long has gone: the arrival is dropped.
    pub silence: Duration,
    /// Where an arrival's token is checked (see [`inbound`]'s admission).
    pub hsdb: Option<RemoteHsdb>,
}

impl tonic::server::NamedService for LaneServer {
    const NAME: &'static str = "vmrm.v1.MigrationLane";
}

impl tower_service::Service<http::Request<Body>> for LaneServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != PATH {
            let unknown = Status::unimplemented(format!("no method {} in MigrationLane", request.uri().path()));
            return std::future::ready(Ok(unknown.into_http()));
        }
        let (acks, rx) = mpsc::channel(8);
        let sender = request.extensions().get::<Principal>().cloned();
        let frames = MessageReader::new(request.into_body(), FRAME_LIMIT);
        let arrival = inbound::Arrival { sender, hsdb: self.hsdb.clone(), silence: self.silence };
        tokio::spawn(inbound::serve(self.unit.clone(), self.host.clone(), frames, acks, arrival));
        let encoder = ProstCodec::<pb::MigrationAck, pb::MigrationFrame>::default().encoder();
        let compression = SingleMessageCompressionOverride::default();
        let body = EncodeBody::new_server(encoder, ReceiverStream::new(rx), None, compression, None);
        let mut response = http::Response::new(Body::new(body));
        response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(GRPC));
        std::future::ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.to_vec()).collect()
    }

    #[test]
    fn a_pages_frame_is_the_message_prost_would_encode() {
        let pages_of = |n: usize| (0..n).map(|i| Bytes::from(vec![i as u8 + 1; 65536])).collect::<Vec<_>>();
        for (indexes, n) in [(vec![0u32, 5, 200, 70_000], 4), (vec![], 0), (vec![3], 1)] {
            let expected = pb::MigrationPages { indexes: indexes.clone(), pages: pages_of(n) };
            let chunks = pages(&indexes, pages_of(n));
            let wire = grpc_wire::message(&pb::MigrationFrame { frame: Some(Frame::Pages(expected)) });
            assert_eq!(joined(&chunks), wire.to_vec(), "{indexes:?}");
        }
    }

    #[test]
    fn the_pages_themselves_go_to_the_transport() {
        let page = Bytes::from(vec![9u8; 65536]);
        let chunks = pages(&[1], vec![page.clone()]);
        assert!(chunks.iter().any(|c| c.as_ptr() == page.as_ptr()), "the page is not copied");
    }
}
