//! One error type for the library and its single mapping to `tonic::Status`, so every gRPC
//! caller gets the same code for the same kind of problem.
use tonic::{Code, Status};

/// Metadata key carrying the active controller's endpoint on an `UNAVAILABLE` answer.
pub const LEADER_METADATA: &str = "vmrm-leader";
/// Metadata key marking an `UNAVAILABLE` answer from a standby controller (safe to retry elsewhere).
pub const STANDBY_METADATA: &str = "vmrm-standby";

#[derive(Debug, thiserror::Error)]
pub enum VmrmError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A limit is reached (e.g. the guest application server's 30 processes).
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("this controller is standby; the active controller is {}", leader.as_deref().unwrap_or("not elected yet"))]
    NotLeader { leader: Option<String> },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A wait that ran out (a MONJV watch): the thing waited for did not happen in time.
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl VmrmError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
    pub fn precondition(msg: impl Into<String>) -> Self {
        Self::FailedPrecondition(msg.into())
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::Unavailable(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }
}

impl From<VmrmError> for Status {
    fn from(e: VmrmError) -> Self {
        let msg = e.to_string();
        match e {
            VmrmError::InvalidArgument(_) => Status::invalid_argument(msg),
            VmrmError::NotFound(_) => Status::not_found(msg),
            VmrmError::FailedPrecondition(_) => Status::failed_precondition(msg),
            VmrmError::AlreadyExists(_) => Status::already_exists(msg),
            VmrmError::ResourceExhausted(_) => Status::resource_exhausted(msg),
            VmrmError::Unavailable(_) => Status::unavailable(msg),
            VmrmError::Internal(_) => Status::internal(msg),
            VmrmError::DeadlineExceeded(_) => Status::deadline_exceeded(msg),
            VmrmError::NotLeader { leader } => {
                let mut status = Status::unavailable(msg);
                status.metadata_mut().insert(STANDBY_METADATA, tonic::metadata::MetadataValue::from_static("1"));
                if let Some(addr) = leader.and_then(|l| l.parse().ok()) {
                    status.metadata_mut().insert(LEADER_METADATA, addr);
                }
                status
            }
        }
    }
}

impl From<Status> for VmrmError {
    fn from(s: Status) -> Self {
        let msg = s.message().to_string();
        if s.metadata().contains_key(STANDBY_METADATA) {
            let leader = s.metadata().get(LEADER_METADATA).and_then(|v| v.to_str().ok()).map(str::to_string);
            return Self::NotLeader { leader };
        }
        match s.code() {
            Code::InvalidArgument => Self::InvalidArgument(msg),
            Code::NotFound => Self::NotFound(msg),
            Code::FailedPrecondition => Self::FailedPrecondition(msg),
            Code::AlreadyExists => Self::AlreadyExists(msg),
            Code::ResourceExhausted => Self::ResourceExhausted(msg),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable(msg),
            _ => Self::Internal(msg),
        }
    }
}

impl From<actix::MailboxError> for VmrmError {
    fn from(e: actix::MailboxError) -> Self {
        Self::Unavailable(format!("actor unavailable: {e}"))
    }
}

pub type Result<T, E = VmrmError> = std::result::Result<T, E>;
