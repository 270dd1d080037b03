//! A partition definition: what an HMC needs to (re)create and activate a VM on any host.
use crate::domain::identity::disk_for_vm;
use crate::error::{Result, VmrmError, quote};
use crate::pb;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LparDefinition {
    pub name: String,
    pub uuid: String,
    pub cpu: u32,
    pub memory_mb: u64,
    pub disk: String,
    /// VM2000's permanent VM index (`None`: `VM-INDEX=*ANY`, any free partition id).
    #[serde(default)]
    pub permanent_index: Option<u32>,
    /// The fencing epoch of the operation that activated it (0: the host's own boot).
    #[serde(default)]
    pub fence: u64,
    /// A DR test copy: on an isolated network, no host monitor hears it and no discovery
    /// takes it for a production VM.
    #[serde(default)]
    pub isolated: bool,
    /// The guest's network identity per host serial (DR: each site's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<super::GuestIdentity>,
}

impl From<LparDefinition> for pb::LparDefinition {
    fn from(d: LparDefinition) -> Self {
        Self {
            name: d.name,
            uuid: d.uuid,
            cpu: d.cpu,
            memory_mb: d.memory_mb,
            disk: d.disk,
            permanent_index: d.permanent_index,
            fence: d.fence,
            isolated: d.isolated,
            identities: d.identities.iter().map(Into::into).collect(),
        }
    }
}

/// Most processors one partition may have.
pub const MAX_CPU: u32 = 4096;
/// Most memory one partition may have (16 TiB): its bytes must fit a `u64` with room to spare.
pub const MAX_MEMORY_MB: u64 = 16 << 20;

impl LparDefinition {
    /// Refuses a definition no partition can have: a name that is not a VM name (it becomes a
    /// directory of the guest), a disk other than the VM's own, a uuid that is not one, no or
    /// absurd processors and memory, a permanent index of 0.
    pub fn check(&self) -> Result<()> {
        let name = crate::domain::names::VmName::parse(&self.name)?;
        if crate::domain::identity::vm_of_disk(&self.disk).ok().as_ref() != Some(&name) {
            return Err(VmrmError::invalid(format!("LPAR {name}: its disk must be {}", disk_for_vm(&self.name))));
        }
        if uuid::Uuid::parse_str(&self.uuid).is_err() {
            return Err(VmrmError::invalid(format!("LPAR {name}: `{}` is not a uuid", quote(&self.uuid))));
        }
        if !(1..=MAX_CPU).contains(&self.cpu) || !(1..=MAX_MEMORY_MB).contains(&self.memory_mb) {
            return Err(VmrmError::invalid(format!(
                "LPAR {name} needs 1 to {MAX_CPU} processors and 1 to {MAX_MEMORY_MB} MB of memory"
            )));
        }
        if self.permanent_index == Some(0) {
            return Err(VmrmError::invalid(format!("LPAR {name}: a permanent VM index starts at 1")));
        }
        Ok(())
    }

    /// Refuses a shutdown or removal by an operation older than the one that activated the
    /// partition (`job_fence` below [`Self::fence`]): it acts on a world that has moved on.
    pub fn admits(&self, job_fence: u64) -> Result<()> {
        match job_fence < self.fence {
            false => Ok(()),
            true => Err(VmrmError::precondition(format!(
                "VM {} was activated here by the operation of epoch {}: a job of epoch {job_fence} is stale and \
                 changes nothing",
                self.name, self.fence
            ))),
        }
    }
}

impl TryFrom<pb::LparDefinition> for LparDefinition {
    type Error = VmrmError;
    fn try_from(d: pb::LparDefinition) -> Result<Self> {
        if d.identities.len() > super::guest_identity::MAX_IDENTITIES {
            return Err(VmrmError::invalid(format!(
                "LPAR {}: at most {} identities",
                quote(&d.name),
                super::guest_identity::MAX_IDENTITIES
            )));
        }
        let identities = d.identities.iter().map(super::GuestIdentity::try_from).collect::<Result<_>>()?;
        let def = Self {
            name: d.name,
            uuid: d.uuid,
            cpu: d.cpu,
            memory_mb: d.memory_mb,
            disk: d.disk,
            permanent_index: d.permanent_index,
            fence: d.fence,
            isolated: d.isolated,
            identities,
        };
        def.check()?;
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::uuid_for;

    fn wire(name: &str) -> pb::LparDefinition {
        pb::LparDefinition {
            name: name.into(),
            uuid: uuid_for("vm", name),
            cpu: 1,
            memory_mb: 512,
            disk: disk_for_vm(name),
            permanent_index: None,
            fence: 0,
            isolated: false,
            identities: Vec::new(),
        }
    }

    #[test]
    fn only_an_operation_as_recent_as_the_activation_stops_a_partition() {
        let def = LparDefinition { fence: 6, ..LparDefinition::try_from(wire("vm-1-1")).unwrap() };
        assert!(def.admits(6).is_ok() && def.admits(7).is_ok());
        let stale = def.admits(5).unwrap_err();
        assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
        assert!(stale.to_string().contains("epoch 6: a job of epoch 5 is stale"), "{stale}");
        let booted = LparDefinition { fence: 0, ..def };
        assert!(booted.admits(0).is_ok(), "the host's own boot is stopped by anyone allowed");
    }

    #[test]
    fn a_definition_from_the_wire_is_a_vm_s_and_nothing_else() {
        assert!(LparDefinition::try_from(wire("vm-1-1")).is_ok());
        for bad in [
            wire("../vm-2-1"),
            wire("/tmp/x"),
            pb::LparDefinition { disk: disk_for_vm("vm-2-1"), ..wire("vm-1-1") },
            pb::LparDefinition { uuid: "u".into(), ..wire("vm-1-1") },
            pb::LparDefinition { memory_mb: u64::MAX, ..wire("vm-1-1") },
            pb::LparDefinition { cpu: 0, ..wire("vm-1-1") },
            pb::LparDefinition { permanent_index: Some(0), ..wire("vm-1-1") },
        ] {
            let err = LparDefinition::try_from(bad.clone()).expect_err(&format!("{bad:?}"));
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        }
    }
}
