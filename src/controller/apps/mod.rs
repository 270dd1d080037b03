//! Applications inside the VMs as the controller sees them: the reports from the VM agents
//! (PUT/QUERY/GET/ACK through a VIOS) and what a critical application's FAILURE does to its VM
//! ([`report`]).
pub mod report;
