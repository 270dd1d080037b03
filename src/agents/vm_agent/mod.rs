//! The VM agent inside a guest (seed: `ksys_vmmd`): the daemon itself ([`agent`]: heartbeats to
//! the host monitors, the HM identifier handshake, the controller's application requests), the
//! engine's shell that runs the user's scripts as real processes ([`ame`], [`scripts`]), the
//! VM's own files ([`guest`]) and the local socket `ksysvmmgr` uses ([`socket`]), application
//! reporting's bookkeeping ([`report`]) and the guest application server a host-side manager
//! talks to over TLS ([`appserver`], [`process_table`], [`guest_tls`]). Today a simulated
//! partition hosts it; nothing here imports the simulator, so a real guest can host the same
//! agent.
pub mod agent;
pub mod ame;
pub mod appserver;
pub mod guest;
pub mod guest_tls;
pub mod process_table;
pub mod report;
pub mod scripts;
pub mod socket;
