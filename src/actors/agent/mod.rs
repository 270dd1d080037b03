//! The VM agent's application side (seed: `ksys_vmmd`'s AME and UnixSocket threads): the
//! engine's shell that runs the user's scripts as real processes ([`ame`], [`scripts`]), the
//! VM's own files ([`guest`]) and the local socket `ksysvmmgr` uses ([`socket`]). The VM actor
//! owns them: the agent's heartbeats are in [`super::vm`].
pub mod ame;
pub mod guest;
pub mod report;
pub mod scripts;
pub mod socket;
