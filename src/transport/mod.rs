//! How nodes reach each other: lazily connected tonic channels with a deadline on every call,
//! and the admin client that follows the active controller.
pub mod admin_client;
pub mod channel;

pub use admin_client::AdminClient;
pub use channel::{ChannelPool, deadline, is_endpoint};
