//! `ksysmgr lpm vm NAME to=HOST` (seed 001's live migration): the request is checked before
//! anything moves — a VM that is not managed or already has an operation in progress (a
//! migration, a restart), a target that is missing, the VM's own host, outside its host group,
//! or not powered on. The migration itself is not in this release yet: a request that passes
//! the checks is answered FAILED_PRECONDITION saying so, and nothing changes.
use super::core::ControllerCore;
use crate::actors::su::HOST_OPERATING;
use crate::error::{Result, VmrmError};

impl ControllerCore {
    pub async fn migrate_vm(&self, vm: &str, to: &str) -> Result<Vec<String>> {
        if to.trim().is_empty() {
            return Err(VmrmError::invalid(format!("name the target host: ksysmgr lpm vm {vm} to=HOST")));
        }
        let (vm, group) = self.restartable(vm).await?;
        let target = self.other_host_of_group(&vm, &group, to).await?;
        let state = self.host_inventory(&target).await.map(|inv| inv.state);
        if state.as_deref().ok() != Some(HOST_OPERATING) {
            let state = state.unwrap_or_else(|e| format!("not reachable: {e}"));
            return Err(VmrmError::precondition(format!(
                "host {to} is not powered on ({state}); VM {} stays",
                vm.name
            )));
        }
        Err(VmrmError::precondition(
            "live partition mobility (lpm) is not yet supported by this release; use `ksysmgr restart vm` to move a VM",
        ))
    }
}
