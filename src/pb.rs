//! Generated protobuf and gRPC code for `vmrm.v1`, and the descriptor set served by reflection.
#![allow(clippy::all, missing_docs)]
tonic::include_proto!("vmrm.v1");

/// Encoded `FileDescriptorSet` of every `vmrm.v1` proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vmrm_descriptor.bin"));
