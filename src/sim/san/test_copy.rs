//! A DR test's disks (seed: Dr Test State). At the secondary of a consistency group, each of
//! its disks is copied as it stands — the replica's consistent point — to a test disk of its
//! own (`VM.drtest-rootvg`), which the test copies of the VMs reserve and write like any disk,
//! while replication into the group's own disks goes on untouched. The test's cleanup discards
//! the test disks: their reservations, fences and logs go; the record keeps what happened.
use super::San;
use super::replication::Role;
use crate::domain::identity::{disk_for_vm, vm_of_disk};
use crate::domain::test_copy_of;
use crate::error::{Result, VmrmError};
use crate::pb;

impl San {
    pub(super) fn test_copy(&mut self, r: &pb::TestCopyRequest) -> Result<pb::TestCopyReply> {
        let group = self
            .groups
            .get(&r.group)
            .cloned()
            .ok_or_else(|| VmrmError::not_found(format!("this SAN holds no consistency group {}", r.group)))?;
        if group.role != Role::Secondary {
            return Err(VmrmError::precondition(format!(
                "consistency group {} is primary here: a DR test copies the replica, at the other site",
                group.name
            )));
        }
        let tests = group
            .disks
            .iter()
            .map(|disk| Ok((disk.clone(), disk_for_vm(&test_copy_of(vm_of_disk(disk)?.as_str())))))
            .collect::<Result<Vec<_>>>()?;
        tests.iter().try_for_each(|(_, test)| vm_of_disk(test).map(drop))?;
        let mut copies = Vec::new();
        for (disk, test) in tests {
            self.forget(&test)?;
            if r.discard {
                self.log(&test, "DISCARD", 0, "", 0)?;
                continue;
            }
            let (block, writer) = self.heads.get(&disk).cloned().unwrap_or_default();
            self.set_head(&test, block, &writer)?;
            self.log_write(&test, "RESYNC", 0, "", 0, (&writer, block))?;
            copies.push(pb::DiskHead { disk: test, block, writer });
        }
        Ok(pb::TestCopyReply { copies, sequence: group.sequence, consistent_at_ms: group.consistent_at_ms })
    }

    /// A disk forgotten: no reservation, no fence, no log.
    fn forget(&mut self, disk: &str) -> Result<()> {
        self.store.forget(disk)?;
        self.holders.remove(disk);
        self.fences.remove(disk);
        self.heads.remove(disk);
        self.last_ops.remove(disk);
        Ok(())
    }
}
