//! The admin API's edge: the `vmrm.v1.Admin` gRPC service ([`admin`]) and the records turned
//! into its query replies ([`views`]). Nothing here decides; it checks, calls a room, answers.
pub mod admin;
pub mod views;
