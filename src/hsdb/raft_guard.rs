//! Bounds on what a Raft message may carry, checked before openraft sees it. openraft adopts
//! any higher vote and persists it; a term near `u64::MAX` would later overflow its election
//! (`term + 1`) on every member, and again after every restart. No real cluster comes near
//! these bounds: at one election every 100 ms, 2^48 terms take 89,000 years.
use super::types::TypeConfig;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{LogId, Vote};

/// Highest term a message may carry.
pub const MAX_TERM: u64 = 1 << 48;
/// Highest log index a message may carry.
pub const MAX_INDEX: u64 = 1 << 48;
/// Largest snapshot a member receives (the tables are capped far below it).
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

pub fn check_vote_request(req: &VoteRequest<u64>) -> Result<(), String> {
    check_vote(&req.vote)?;
    check_log_id(req.last_log_id.as_ref())
}

pub fn check_pre_vote(req: &super::election::PreVote) -> Result<(), String> {
    check_log_id(req.last_log.as_ref())
}

pub fn check_append(req: &AppendEntriesRequest<TypeConfig>) -> Result<(), String> {
    check_vote(&req.vote)?;
    check_log_id(req.prev_log_id.as_ref())?;
    check_log_id(req.leader_commit.as_ref())?;
    req.entries.iter().try_for_each(|e| check_log_id(Some(&e.log_id)))
}

pub fn check_snapshot(req: &InstallSnapshotRequest<TypeConfig>) -> Result<(), String> {
    check_vote(&req.vote)?;
    check_log_id(req.meta.last_log_id.as_ref())?;
    let end = req.offset.saturating_add(req.data.len() as u64);
    match end <= MAX_SNAPSHOT_BYTES {
        true => Ok(()),
        false => Err(format!(
            "a snapshot chunk ending at byte {end} exceeds the snapshot limit of {MAX_SNAPSHOT_BYTES} bytes"
        )),
    }
}

fn check_vote(vote: &Vote<u64>) -> Result<(), String> {
    check_term(vote.leader_id.term)
}

fn check_log_id(log_id: Option<&LogId<u64>>) -> Result<(), String> {
    let Some(log_id) = log_id else { return Ok(()) };
    check_term(log_id.leader_id.term)?;
    match log_id.index <= MAX_INDEX {
        true => Ok(()),
        false => Err(format!("log index {} exceeds the limit of {MAX_INDEX}", log_id.index)),
    }
}

fn check_term(term: u64) -> Result<(), String> {
    match term <= MAX_TERM {
        true => Ok(()),
        false => Err(format!("term {term} exceeds the limit of {MAX_TERM}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LeaderId};

    fn vote(term: u64) -> VoteRequest<u64> {
        VoteRequest { vote: Vote { leader_id: LeaderId::new(term, 1), committed: false }, last_log_id: None }
    }

    #[test]
    fn absurd_terms_and_indexes_are_refused() {
        assert_eq!(check_vote_request(&vote(7)), Ok(()));
        assert_eq!(check_vote_request(&vote(MAX_TERM)), Ok(()));
        assert_eq!(
            check_vote_request(&vote(u64::MAX)),
            Err(format!("term {} exceeds the limit of {MAX_TERM}", u64::MAX))
        );
        let mut far = vote(3);
        far.last_log_id = Some(LogId::new(CommittedLeaderId::new(3, 1), u64::MAX - 1));
        assert!(check_vote_request(&far).unwrap_err().starts_with("log index"));
    }

    #[test]
    fn a_snapshot_chunk_far_out_is_refused() {
        let chunk = |offset| InstallSnapshotRequest::<TypeConfig> {
            vote: Vote { leader_id: LeaderId::new(2, 1), committed: true },
            meta: Default::default(),
            offset,
            data: vec![0; 16],
            done: false,
        };
        assert_eq!(check_snapshot(&chunk(0)), Ok(()));
        assert!(check_snapshot(&chunk(1 << 40)).is_err());
        assert!(check_snapshot(&chunk(u64::MAX)).is_err());
    }
}
