//! Stable identities derived from names: the simulated hardware has no serial numbers, so a
//! UUID and a SAN reservation key are computed from the object's name. The same name gives the
//! same identity in every process and after every restart.
use uuid::Uuid;

/// The namespace of every identity derived here (RFC 9562 name-based UUIDs, version 5).
const NAMESPACE: Uuid = uuid::uuid!("75e2374e-f212-4b95-8f37-8a2d46dd3b8a");

fn name_based(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{kind}/{name}").as_bytes())
}

/// The UUID of a named object, lowercase and hyphenated (`kind` keeps a host and a VM of the
/// same name apart).
pub fn uuid_for(kind: &str, name: &str) -> String {
    name_based(kind, name).to_string()
}

/// The SAN persistent-reservation key a host registers for the disks of the VMs it runs (never
/// zero: zero means "no key" to the SAN).
pub fn san_key_for_host(host: &str) -> u64 {
    name_based("san-key", host).as_u64_pair().1 | 1
}

/// The suffix of a VM's disk name.
const DISK_SUFFIX: &str = "-rootvg";

/// The SAN disk that carries a VM's storage.
pub fn disk_for_vm(vm: &str) -> String {
    format!("{vm}{DISK_SUFFIX}")
}

/// The VM whose storage `disk` is, or why `disk` is not a VM's disk (`InvalidArgument`).
pub fn vm_of_disk(disk: &str) -> crate::error::Result<super::names::VmName> {
    match disk.strip_suffix(DISK_SUFFIX) {
        Some(vm) => super::names::VmName::parse(vm),
        None => Err(crate::error::VmrmError::invalid(format!(
            "`{}` is not a VM's disk (`VM{DISK_SUFFIX}`)",
            crate::error::quote(disk)
        ))),
    }
}

/// The stamp a running copy of a VM puts on every block it writes: its host and its activation
/// (`host-2#1f2e3d4c`). Read back from the disk, the stamps show which copy wrote what.
pub fn copy_stamp(host: &str, activation: u32) -> String {
    format!("{host}#{activation:08x}")
}

/// Checks a stamp that arrived with a write (`InvalidArgument` when it is not one).
pub fn check_copy_stamp(stamp: &str) -> crate::error::Result<()> {
    let bad = || {
        crate::error::VmrmError::invalid(format!(
            "`{}` is not a copy stamp (`HOST#ACTIVATION`)",
            crate::error::quote(stamp)
        ))
    };
    let (host, activation) = stamp.split_once('#').ok_or_else(bad)?;
    super::names::HostName::parse(host).map_err(|_| bad())?;
    match activation.len() == 8 && activation.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(()),
        false => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stamp_names_a_host_and_an_activation() {
        check_copy_stamp(&copy_stamp("host-2", 0x1f2e)).unwrap();
        assert_eq!(copy_stamp("host-2", 0x1f2e), "host-2#00001f2e");
        for bad in ["", "host-2", "host-2#", "host-2#xyz", "../h#00000001", "host-2#000000001", "#00000001"] {
            assert!(check_copy_stamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_disk_names_its_vm() {
        assert_eq!(vm_of_disk(&disk_for_vm("vm-1-1")).unwrap().as_str(), "vm-1-1");
        for bad in ["vm-1-1", "-rootvg", "../x-rootvg", ""] {
            assert!(vm_of_disk(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identities_are_stable_and_distinct() {
        assert_eq!(uuid_for("vm", "a"), uuid_for("vm", "a"));
        assert_ne!(uuid_for("vm", "a"), uuid_for("host", "a"));
        assert_eq!(uuid_for("vm", "a").len(), 36);
        assert_ne!(san_key_for_host("host-1"), san_key_for_host("host-2"));
        assert_ne!(san_key_for_host("host-1"), 0);
        let uuid = uuid_for("host", "host-1");
        assert_eq!(uuid, uuid.to_ascii_lowercase());
        assert_eq!(Uuid::parse_str(&uuid).map(|u| u.get_version_num()), Ok(5));
    }
}
