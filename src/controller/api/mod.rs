//! The admin API's edge: the `vmrm.v1.Admin` gRPC service ([`admin`]), the records turned
//! into its query replies ([`views`]) and the audit trail of its calls ([`audit`]). Nothing here
//! decides; it checks, calls a room, answers.
pub mod admin;
pub mod audit;
pub mod views;
