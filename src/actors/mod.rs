//! The simulated hardware, one actix actor per object, each with a thin gRPC service in front:
//! [`san`] (reservations: the fence), [`su`] (a host's hypervisor and its LPAR table),
//! [`vm`] (a running partition with its agent; the agent's application side is [`agent`]),
//! [`hmc`] (inventory and asynchronous jobs),
//! [`vios`] (a VIOS with its host monitor).
pub mod agent;
pub mod ar_gateway;
pub mod hmc;
pub mod san;
pub mod su;
pub mod vios;
pub mod vm;
