//! A partition definition: what an HMC needs to (re)create and activate a VM on any host.
use crate::error::{Result, VmrmError};
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
        }
    }
}

impl TryFrom<pb::LparDefinition> for LparDefinition {
    type Error = VmrmError;
    fn try_from(d: pb::LparDefinition) -> Result<Self> {
        if d.name.is_empty() || d.uuid.is_empty() || d.disk.is_empty() {
            return Err(VmrmError::invalid("an LPAR definition needs a name, a uuid and a disk"));
        }
        if d.cpu == 0 || d.memory_mb == 0 {
            return Err(VmrmError::invalid(format!("LPAR {} needs positive cpu and memory", d.name)));
        }
        if d.permanent_index == Some(0) {
            return Err(VmrmError::invalid(format!("LPAR {}: a permanent VM index starts at 1", d.name)));
        }
        Ok(Self {
            name: d.name,
            uuid: d.uuid,
            cpu: d.cpu,
            memory_mb: d.memory_mb,
            disk: d.disk,
            permanent_index: d.permanent_index,
        })
    }
}
