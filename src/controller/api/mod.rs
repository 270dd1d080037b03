//! The admin API's edge: the `vmrm.v1.Admin` gRPC service ([`admin`]), the records turned
//! into its query replies ([`views`]), the audit trail of its calls ([`audit`]), and what it
//! streams: the event log as it grows with its acknowledgements ([`events`]) and the live status
//! ([`status`]). Nothing here
//! decides; it checks, calls a room, answers.
pub mod admin;
pub mod audit;
pub mod events;
pub mod ffdc;
pub mod status;
pub mod views;
