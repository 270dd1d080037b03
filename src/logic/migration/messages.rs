//! The console messages of a live migration, in the seed's texts (seed 001 §4.7.1, SU /390):
//! the source monitor prints VMS2450 … VMS2452 … VMS4009 … VMS4024 … VMS2451, the target
//! monitor VMS2430, VMS3050, VMS4005 … VMS2432, VMS2431. A VM is named `(index,name)`, a unit
//! by its host name. Each line is prefixed with the unit that printed it.

/// `(index,name)`, as VM2000 names a VM.
pub fn vm_ref(index: u32, name: &str) -> String {
    format!("({index},{name})")
}

/// A line of `unit`'s console.
pub fn on(unit: &str, text: impl AsRef<str>) -> String {
    format!("{unit}: {}", text.as_ref())
}

pub fn started(vm: &str, target: &str) -> String {
    format!("VMS2450 LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' STARTED")
}

pub fn suspended(vm: &str, target: &str) -> String {
    format!("VMS2452 VM {vm} SUSPENDED AT LIVE MIGRATION TO TARGET SU '{target}'")
}

pub fn device_removed(vm: &str, device: &str) -> String {
    format!("VMS4009 DEVICE '{device}' REMOVED FROM VIRTUAL MACHINE {vm}")
}

pub fn terminated(vm: &str) -> String {
    format!("VMS4024 VIRTUAL MACHINE {vm} TERMINATED")
}

/// The source's final message: every action of the migration is done.
pub fn completed(vm: &str, target: &str) -> String {
    format!("VMS2451 LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' COMPLETED")
}

/// Pre-copy does not converge and the policy is `abort` (SU /390).
pub fn not_in_time(vm: &str, target: &str) -> String {
    format!(
        "VMS2425 CHANGING MEMORY PAGES CANNOT BE TRANSFERRED IN TIME. LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' ABORTED"
    )
}

/// Any other abort (the seed gives the reason "in extra messages", without a number).
pub fn aborted(vm: &str, target: &str, why: &str) -> String {
    format!("LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' ABORTED: {why}. THE VM CONTINUES ON THIS SU")
}

pub fn inbound_started(vm: &str, source: &str) -> String {
    format!("VMS2430 LIVE MIGRATION OF VM {vm} FROM SOURCE SU '{source}' STARTED")
}

pub fn created(vm: &str) -> String {
    format!("VMS3050 VIRTUAL MACHINE {vm} CREATED")
}

pub fn device_assigned(vm: &str, device: &str) -> String {
    format!("VMS4005 DEVICE '{device}' ASSIGNED TO VIRTUAL MACHINE {vm}")
}

pub fn resumed(vm: &str, source: &str) -> String {
    format!("VMS2432 VM {vm} RESUMED AT LIVE MIGRATION FROM SOURCE SU '{source}'")
}

pub fn inbound_completed(vm: &str, source: &str) -> String {
    format!("VMS2431 LIVE MIGRATION OF VM {vm} FROM SOURCE SU '{source}' COMPLETED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_lines() {
        let vm = vm_ref(12, "VM12PROD");
        assert_eq!(
            started(&vm, "ABGSE701"),
            "VMS2450 LIVE MIGRATION OF VM (12,VM12PROD) TO TARGET SU 'ABGSE701' STARTED"
        );
        assert_eq!(
            suspended(&vm, "ABGSE701"),
            "VMS2452 VM (12,VM12PROD) SUSPENDED AT LIVE MIGRATION TO TARGET SU 'ABGSE701'"
        );
        assert_eq!(device_removed(&vm, "CS"), "VMS4009 DEVICE 'CS' REMOVED FROM VIRTUAL MACHINE (12,VM12PROD)");
        assert_eq!(terminated(&vm), "VMS4024 VIRTUAL MACHINE (12,VM12PROD) TERMINATED");
        assert_eq!(
            completed(&vm, "ABGSE701"),
            "VMS2451 LIVE MIGRATION OF VM (12,VM12PROD) TO TARGET SU 'ABGSE701' COMPLETED"
        );
        assert_eq!(
            inbound_started(&vm, "ABGSE501"),
            "VMS2430 LIVE MIGRATION OF VM (12,VM12PROD) FROM SOURCE SU 'ABGSE501' STARTED"
        );
        assert_eq!(created(&vm), "VMS3050 VIRTUAL MACHINE (12,VM12PROD) CREATED");
        assert_eq!(device_assigned(&vm, "CS"), "VMS4005 DEVICE 'CS' ASSIGNED TO VIRTUAL MACHINE (12,VM12PROD)");
        assert_eq!(
            resumed(&vm, "ABGSE501"),
            "VMS2432 VM (12,VM12PROD) RESUMED AT LIVE MIGRATION FROM SOURCE SU 'ABGSE501'"
        );
        assert_eq!(
            inbound_completed(&vm, "ABGSE501"),
            "VMS2431 LIVE MIGRATION OF VM (12,VM12PROD) FROM SOURCE SU 'ABGSE501' COMPLETED"
        );
        assert!(
            not_in_time(&vm, "ABGSE701").starts_with("VMS2425 CHANGING MEMORY PAGES CANNOT BE TRANSFERRED IN TIME.")
        );
        assert_eq!(on("host-1", "x"), "host-1: x");
    }
}
