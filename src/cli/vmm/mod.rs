//! `ksysvmmgr`: the in-VM agent's command line (seed 000 §3.7). [`grammar`] parses the seed's
//! syntax (pure, tested); [`run`] edits the VM's configuration file and talks to the agent
//! through its local socket.
pub mod grammar;
pub mod run;
