//! What can go wrong on the way to the HMCs, told apart where it matters: a call that never
//! reached an HMC may go to the host's next one, a call that reached it and got no answer may
//! have run there (a job submitted twice runs twice) and must not, and a job that ran and failed
//! is the answer. [`super::VmrmError`] carries it; its conversion into a gRPC status is the one
//! place that gives each kind its code.
use super::{VmrmError, did_not_run, unanswered};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum HmcError {
    /// The call never reached the HMC (no connection, or it said it did not run it).
    #[error("HMC {hmc} cannot be reached: {why}")]
    NotReached { hmc: String, why: String },
    /// The HMC took the call and no answer came back in time: it may have run.
    #[error("HMC {hmc} did not answer: {why}")]
    NoAnswer { hmc: String, why: String },
    /// The HMC answered with a refusal (its code and reason).
    #[error("HMC {hmc}: {why}")]
    Refused { hmc: String, code: Code, why: String },
    #[error("host {host} has no HMC in the configuration")]
    NoneConfigured { host: String },
    /// Every HMC of the host was asked; none reports it.
    #[error("no HMC reports host {host}")]
    NotReported { host: String },
    #[error("HMC {hmc} job {job} did not complete in time")]
    JobTimedOut { hmc: String, job: u64 },
    /// The job ran and failed (seed: "Job execution failed with status …").
    #[error("Job execution on HMC {hmc} failed with status <{state}>. Message: <{message}>")]
    JobFailed { hmc: String, state: String, message: String },
    /// The HMC records could not be read.
    #[error(transparent)]
    Records(Box<VmrmError>),
}

impl HmcError {
    /// What a failed call to `hmc` means.
    pub fn of_call(hmc: &str, status: Status) -> Self {
        let (hmc, why) = (hmc.to_string(), status.message().to_string());
        match status.code() {
            _ if did_not_run(&status) => Self::NotReached { hmc, why },
            _ if unanswered(&status) => Self::NoAnswer { hmc, why },
            code => Self::Refused { hmc, code, why },
        }
    }

    /// The gRPC code a caller of the admin API gets for it.
    pub fn code(&self) -> Code {
        match self {
            Self::NotReached { .. } | Self::NoAnswer { .. } | Self::NotReported { .. } | Self::JobTimedOut { .. } => {
                Code::Unavailable
            }
            Self::Refused { code, .. } => *code,
            Self::NoneConfigured { .. } | Self::JobFailed { .. } => Code::FailedPrecondition,
            Self::Records(e) => e.code(),
        }
    }
}

impl From<VmrmError> for HmcError {
    fn from(e: VmrmError) -> Self {
        Self::Records(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DID_NOT_RUN_METADATA;

    #[test]
    fn a_call_that_may_have_run_is_told_from_one_that_did_not() {
        let mut standby = Status::unavailable("not the active one");
        standby.metadata_mut().insert(DID_NOT_RUN_METADATA, tonic::metadata::MetadataValue::from_static("1"));
        assert!(matches!(HmcError::of_call("hmc-1", standby), HmcError::NotReached { .. }));
        let late = HmcError::of_call("hmc-1", Status::deadline_exceeded("late"));
        assert!(matches!(late, HmcError::NoAnswer { .. }));
        assert_eq!(late.code(), Code::Unavailable);
        let refused = HmcError::of_call("hmc-1", Status::not_found("no LPAR vm-9"));
        assert_eq!((refused.code(), refused.to_string()), (Code::NotFound, "HMC hmc-1: no LPAR vm-9".to_string()));
        let failed =
            HmcError::JobFailed { hmc: "hmc-1".into(), state: "COMPLETED_WITH_ERROR".into(), message: "x".into() };
        assert_eq!(failed.code(), Code::FailedPrecondition);
    }
}
