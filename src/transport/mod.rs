//! How nodes reach each other: lazily connected tonic channels with a deadline on every call,
//! the admin client that follows the active controller, the SAN's reservation client, and gRPC
//! framing by hand for bulk bytes.
pub mod admin_client;
pub mod channel;
pub mod gate;
pub mod grpc_wire;
pub mod san;
pub mod tls;

pub use admin_client::AdminClient;
pub use channel::{ChannelPool, deadline, is_endpoint, within};
pub use tls::Security;
