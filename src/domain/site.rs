//! Disaster recovery's objects (seed 000 §1.8, §2.4): the sites of a DR cluster, the SAN of each
//! (a storage agent), and the consistency group that replicates a host group's disks from the
//! site it runs at to the other. The group's record in the HSDB is what a SAN confirms its
//! primary role against: the generation rises with every move, and the primary it names is the
//! only SAN that accepts the group's writes.
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString};

/// A site's part (seed: `sitetype=home|backup`): where the host groups run at first, or where
/// they are moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SiteType {
    Home,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRecord {
    pub name: String,
    pub site_type: SiteType,
}

/// A site's SAN: its node name (the SAN answers with it) and where it is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageAgentRecord {
    pub name: String,
    pub site: String,
    pub endpoint: String,
}

/// A host group's replication between the two sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyGroupRecord {
    /// The host group (the group's name).
    pub host_group: String,
    /// Raised by every move; each SAN holds its part at a generation.
    pub generation: u64,
    /// The site the host group runs at, and its storage agent (the primary).
    pub primary_site: String,
    pub primary_san: String,
    /// The other site, and its storage agent (the secondary).
    pub secondary_site: String,
    pub secondary_san: String,
    /// After an unplanned move: the sequence the new primary began from (writes after it on
    /// the old primary are lost); 0 otherwise.
    #[serde(default)]
    pub consistent_point: u64,
    /// The move under way (its target site): a second one is refused meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<String>,
    /// The DR test running, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_test: Option<DrTest>,
}

/// A DR test (seed: Dr Test State): test copies of the host group's VMs running at the other
/// site from a point-in-time copy of its replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrTest {
    pub site: String,
    pub started_ms: i64,
    /// Each test copy and the host it runs on.
    pub copies: Vec<(String, String)>,
}

/// What a DR test copy of a VM is called (its disk follows: `VM.drtest-rootvg`).
pub fn test_copy_of(vm: &str) -> String {
    format!("{vm}.drtest")
}
