//! The controller's gateways to what it manages, each holding only what its calls need: the
//! HMCs ([`hmc`]: one first-answer strategy over a host's HMCs), the SAN ([`san`]: the fence)
//! and the FDE's direct looks at nodes ([`reach`]: ping, VIOS sanity).
pub mod hmc;
pub mod reach;
pub mod san;

pub use hmc::{Failover, HmcGateway};
pub use reach::Reach;
pub use san::SanGateway;
