//! The HSDB's sled Raft log and state machine, opened on disk exactly as a member opens them,
//! pass openraft 0.9's own storage conformance suite (`openraft::testing::Suite`): every one of
//! its tests runs on a fresh store in a temporary directory of its own.
use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use tempfile::TempDir;
use vmrm::hsdb::TypeConfig;
use vmrm::hsdb::log_store::SledLogStore;
use vmrm::hsdb::raft_node::open_storage;
use vmrm::hsdb::state_machine::SledStateMachine;

/// The suite's log ids and votes all name member 0, so the stores are opened as member 0.
const NODE_ID: u64 = 0;

/// Opens a member's storage in a new temporary directory; the directory is the guard the suite
/// holds until the test on that store is over.
struct OnDisk;

impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, TempDir> for OnDisk {
    async fn build(&self) -> Result<(TempDir, SledLogStore, SledStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::read(&e))?;
        let (_db, log_store, state_machine) =
            open_storage(dir.path(), NODE_ID).map_err(|e| StorageIOError::read(&e))?;
        Ok((dir, log_store, state_machine))
    }
}

/// The suite runs each test in a runtime of its own, so this test is a plain one.
#[test]
fn the_sled_stores_pass_openraft_storage_suite() {
    Suite::test_all(OnDisk).expect("a store operation failed");
}
