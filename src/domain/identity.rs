//! Stable identities derived from names: the simulated hardware has no serial numbers, so a
//! UUID and a SAN reservation key are computed from the object's name. The same name gives the
//! same identity in every process and after every restart.

/// FNV-1a, 64 bit, with a seed so two independent halves can be drawn from one name.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A UUID-shaped identifier for a named object (`kind` keeps a host and a VM of the same name apart).
pub fn uuid_for(kind: &str, name: &str) -> String {
    let key = format!("{kind}/{name}");
    let a = fnv1a(0, key.as_bytes());
    let b = fnv1a(0x9e37_79b9_7f4a_7c15, key.as_bytes());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// The SAN persistent-reservation key a host registers for the disks of the VMs it runs.
pub fn san_key_for_host(host: &str) -> u64 {
    fnv1a(0x5a4e, host.as_bytes()) | 1
}

/// The SAN disk that carries a VM's storage.
pub fn disk_for_vm(vm: &str) -> String {
    format!("{vm}-rootvg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_stable_and_distinct() {
        assert_eq!(uuid_for("vm", "a"), uuid_for("vm", "a"));
        assert_ne!(uuid_for("vm", "a"), uuid_for("host", "a"));
        assert_eq!(uuid_for("vm", "a").len(), 36);
        assert_ne!(san_key_for_host("host-1"), san_key_for_host("host-2"));
        assert_ne!(san_key_for_host("host-1"), 0);
    }
}
