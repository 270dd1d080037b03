//! The VM agent's application side (seed: `ksys_vmmd`'s AME and UnixSocket threads): the
//! engine's shell that runs the user's scripts as real processes ([`ame`], [`scripts`]), the
//! VM's own files ([`guest`]) and the local socket `ksysvmmgr` uses ([`socket`]), application
//! reporting to the controller ([`report`]) and the guest application server a host-side
//! manager talks to over TLS ([`appserver`], [`process_table`], [`guest_tls`]). Today a
//! simulated partition hosts it, and the agent's heartbeats are sent from there
//! (`sim::vm`); nothing here imports the simulator, so a real guest can host the same pieces.
pub mod ame;
pub mod appserver;
pub mod guest;
pub mod guest_tls;
pub mod process_table;
pub mod report;
pub mod scripts;
pub mod socket;
