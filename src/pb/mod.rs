//! The wire: generated protobuf and gRPC code for `vmrm.v1`, the descriptor set served by
//! reflection, the string values its messages carry ([`vocabulary`]), its enums mirrored by the
//! domain's ([`states`]), its JSON ([`json`]) and conversions of its messages into the values
//! the rest of the code works with.
pub mod json;
pub mod migration_limits;
pub mod states;
pub mod steps;
pub mod vocabulary;

mod generated {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("vmrm.v1");
}
pub use generated::*;

/// Encoded `FileDescriptorSet` of every `vmrm.v1` proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vmrm_descriptor.bin"));
