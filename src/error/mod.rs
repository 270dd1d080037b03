//! One error type for the library and its single mapping to `tonic::Status`, so every gRPC
//! caller gets the same code for the same kind of problem. A layer whose failures must be told
//! apart has its own error inside it ([`hmc`]: the way to the HMCs); [`VmrmError::code`] gives
//! every kind its code in one exhaustive match.
pub mod hmc;

pub use hmc::HmcError;
use tonic::{Code, Status};

/// Metadata key carrying the active controller's endpoint on an `UNAVAILABLE` answer.
pub const LEADER_METADATA: &str = "vmrm-leader";
/// Metadata key marking an answer whose call did not run on the node that gave it (a standby
/// controller, an HSDB member that is not the leader): trying another node is safe. It is the
/// only way a node says so; nothing is inferred from an answer without it.
pub const DID_NOT_RUN_METADATA: &str = "vmrm-did-not-run";

/// Whether the call that ended with `status` certainly did not run: the node that answered said
/// so ([`DID_NOT_RUN_METADATA`]), or the request never left this process because no connection
/// could be made (refused, unreachable, the connect timeout, a name that does not resolve). A
/// call that timed out or lost its connection later may have run, and is not retried elsewhere.
pub fn did_not_run(status: &Status) -> bool {
    status.metadata().contains_key(DID_NOT_RUN_METADATA) || never_sent(status)
}

/// The call got no answer: the peer did not answer in time (tonic reports its own deadline as
/// `Cancelled`, "Timeout expired"), or the connection or the answer was lost. Unless
/// [`did_not_run`] says otherwise, it may have run there.
pub fn unanswered(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled)
}

/// The status is this client's own, made because it could not connect.
fn never_sent(status: &Status) -> bool {
    use std::io::ErrorKind::*;
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let connect_io = e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(io.kind(), ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | AddrNotAvailable)
        });
        // hyper-util's connector names its own failures so ("tcp connect error", "dns error").
        let connector = matches!(e.to_string().as_str(), "tcp connect error" | "dns error");
        if connect_io || connector {
            return true;
        }
        source = e.source();
    }
    false
}

/// The most of an error's text a reply carries. A gRPC status travels in an HTTP/2 header,
/// which peers limit (16 KiB by default): a longer text would break the reply itself, and the
/// caller would see a protocol error instead of the reason.
const MESSAGE_LIMIT: usize = 1024;
/// The most of any input an error text quotes.
const QUOTE_LIMIT: usize = 64;

/// `input` as an error text quotes it: whole, or cut after [`QUOTE_LIMIT`] bytes (at a
/// character boundary) with its whole length said.
pub fn quote(input: &str) -> String {
    match input.len() <= QUOTE_LIMIT {
        true => input.to_string(),
        false => format!("{}… ({} bytes)", prefix(input, QUOTE_LIMIT), input.len()),
    }
}

/// The longest prefix of `s` of at most `limit` bytes that ends at a character boundary.
pub fn prefix(s: &str, limit: usize) -> &str {
    let end = (0..=limit.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[..end]
}

/// An error text cut to what a reply can carry.
fn bounded(msg: String) -> String {
    match msg.len() <= MESSAGE_LIMIT {
        true => msg,
        false => format!("{}… ({} bytes of error text cut)", prefix(&msg, MESSAGE_LIMIT), msg.len() - MESSAGE_LIMIT),
    }
}

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
    /// A compare-and-set lost to another writer of the same row; nothing was written, and
    /// reading the row again and redoing the change may well succeed.
    #[error("{0}")]
    Aborted(String),
    /// A limit is reached (e.g. the guest application server's 30 processes).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The caller showed no certificate of this cluster.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow the call.
    #[error("{0}")]
    PermissionDenied(String),
    #[error("this controller is standby; the active controller is {}", leader.as_deref().unwrap_or("not elected yet"))]
    NotLeader { leader: Option<String> },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A wait that ran out (a MONJV watch): the thing waited for did not happen in time.
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error(transparent)]
    Hmc(#[from] HmcError),
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
    pub fn denied(msg: impl Into<String>) -> Self {
        Self::PermissionDenied(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }
}

impl VmrmError {
    /// The gRPC code of this kind of problem: the one place that decides it.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Aborted(_) => Code::Aborted,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::NotLeader { .. } | Self::Unavailable(_) => Code::Unavailable,
            Self::Internal(_) => Code::Internal,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Hmc(e) => e.code(),
        }
    }
}

impl From<VmrmError> for Status {
    fn from(e: VmrmError) -> Self {
        let mut status = Status::new(e.code(), bounded(e.to_string()));
        // Only a standby says its call did not run: anything else may have done part of it.
        if let VmrmError::NotLeader { leader } = e {
            status.metadata_mut().insert(DID_NOT_RUN_METADATA, tonic::metadata::MetadataValue::from_static("1"));
            if let Some(addr) = leader.and_then(|l| l.parse().ok()) {
                status.metadata_mut().insert(LEADER_METADATA, addr);
            }
        }
        status
    }
}

impl From<Status> for VmrmError {
    fn from(s: Status) -> Self {
        let msg = s.message().to_string();
        if s.metadata().contains_key(DID_NOT_RUN_METADATA) {
            let leader = s.metadata().get(LEADER_METADATA).and_then(|v| v.to_str().ok()).map(str::to_string);
            return Self::NotLeader { leader };
        }
        match s.code() {
            Code::InvalidArgument => Self::InvalidArgument(msg),
            Code::NotFound => Self::NotFound(msg),
            Code::FailedPrecondition => Self::FailedPrecondition(msg),
            Code::AlreadyExists => Self::AlreadyExists(msg),
            Code::Aborted => Self::Aborted(msg),
            Code::ResourceExhausted => Self::ResourceExhausted(msg),
            Code::Unauthenticated => Self::Unauthenticated(msg),
            Code::PermissionDenied => Self::PermissionDenied(msg),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_input_is_quoted_by_its_prefix_and_length() {
        assert_eq!(quote("vm-1"), "vm-1");
        let long = "é".repeat(100);
        let quoted = quote(&long);
        assert!(quoted.starts_with(&format!("{}…", "é".repeat(32))), "{quoted}");
        assert!(quoted.ends_with("(200 bytes)"), "{quoted}");
    }

    #[test]
    fn a_status_carries_at_most_a_bounded_text() {
        let status = Status::from(VmrmError::not_found(format!("no VM {}", "x".repeat(100_000))));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().len() < MESSAGE_LIMIT + 64, "{} bytes", status.message().len());
        assert!(status.message().starts_with("no VM xxx"));
    }

    #[test]
    fn only_an_explicit_mark_or_a_failed_connect_says_a_call_did_not_run() {
        let standby: Status = VmrmError::NotLeader { leader: Some("127.0.0.1:7002".into()) }.into();
        assert!(did_not_run(&standby));
        assert!(matches!(VmrmError::from(standby), VmrmError::NotLeader { leader: Some(_) }));
        // A node's own UNAVAILABLE without the mark may have done part of the work.
        assert!(!did_not_run(&Status::unavailable("no VIOS of host_group HG1 answered")));
        assert!(!did_not_run(&Status::deadline_exceeded("no answer in time")));
    }

    #[tokio::test]
    async fn a_refused_connection_never_sent_the_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap().to_string();
        drop(listener);
        let channel = crate::transport::channel::lazy_channel(
            &closed,
            std::time::Duration::from_secs(1),
            &crate::transport::Security::Plaintext,
        )
        .unwrap();
        let mut admin = crate::pb::admin_client::AdminClient::new(channel);
        let status = admin.query_vm(crate::pb::QueryRequest::default()).await.unwrap_err();
        assert!(did_not_run(&status), "{status:?}");
    }
}
