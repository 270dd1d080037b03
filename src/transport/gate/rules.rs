//! Which roles may call which RPC: one table, read by the gate before any service sees a call.
//! Nodes call each other along the seed's lines (controller → HMC → server unit, VM agent →
//! host monitor, host monitor → HSDB, server unit → SAN); people call the admin API by their
//! role (seed 001: administrator, operator, monitor). What a role may do *inside* an allowed
//! call — an operator's VMs, a host monitor's own rows, a fencing token — is checked by the
//! service, which gets the caller from the request.
use crate::error::{Result, VmrmError};
use crate::transport::tls::{Principal, Role};

use Role::*;

/// Every node role (calls any node may make: reading the HSDB, its status).
const NODES: &[Role] = &[Controller, Hsdb, Hmc, ServerUnit, Vios, San];
/// Every person's role, for the admin API's queries.
const PEOPLE: &[Role] = &[Admin, Operator, Monitor];

/// The roles allowed to call `/package.Service/Method`; `None` when the call needs no
/// certificate at all (the standard health check, which orchestrators and probes use).
pub fn allowed(path: &str) -> Option<&'static [Role]> {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    Some(match (service, method) {
        ("grpc.health.v1.Health", _) => return None,
        ("grpc.reflection.v1.ServerReflection", _) => &[Admin, Operator, Monitor, Controller],
        ("vmrm.v1.RaftPeer", _) => &[Hsdb],
        // The host-side roles write their own rows (alive messages, heartbeat misses, AR
        // messages), every node its FFDC rows: the HSDB service checks which.
        ("vmrm.v1.Hsdb", "Write") => NODES,
        // A member's status, like `etcdctl endpoint status`: for the people running it too.
        ("vmrm.v1.Hsdb", "Status") => &[Controller, Hsdb, Hmc, ServerUnit, Vios, San, Admin, Monitor],
        ("vmrm.v1.Hsdb", _) => NODES,
        // People's addresses, and webhook URLs that may carry a token; snapshots hold the HMCs'
        // logins.
        ("vmrm.v1.Admin", "QueryNotify" | "QuerySnapshot") => &[Admin],
        ("vmrm.v1.Admin", m) if m.starts_with("Query") || m.starts_with("Watch") => PEOPLE,
        // Actions on one VM: an operator's certificate names the VMs it may act on; an operator
        // also acknowledges events.
        ("vmrm.v1.Admin", "RestartVm" | "Migrate" | "Manage" | "RecoverVmDefinition" | "AckEvent") => {
            &[Admin, Operator]
        }
        ("vmrm.v1.Admin", _) => &[Admin],
        ("vmrm.v1.ServerUnit", "Inventory") => &[Hmc, Controller, Admin, Monitor],
        // Fault drills: only where the node's config enables them (the service checks).
        ("vmrm.v1.ServerUnit", "InjectFault" | "SetWorkload") => &[Admin],
        ("vmrm.v1.ServerUnit", _) => &[Hmc],
        ("vmrm.v1.MigrationLane", _) => &[ServerUnit],
        ("vmrm.v1.San", "Record" | "QueryGroup") => &[Admin, Monitor, Controller],
        // Replication between the sites' SANs; the controller sets each SAN's part.
        ("vmrm.v1.San", "Replicate") => &[San],
        ("vmrm.v1.San", "ConfigureGroup" | "TestCopy") => &[Controller],
        ("vmrm.v1.San", _) => &[ServerUnit, Controller],
        // The VM agents of a host speak through its server unit.
        ("vmrm.v1.HostMonitor", _) => &[ServerUnit],
        ("vmrm.v1.Vios", "Shutdown") => &[ServerUnit],
        ("vmrm.v1.Vios", "Sanity") => &[Controller, ServerUnit],
        ("vmrm.v1.Vios", _) => &[Controller],
        ("vmrm.v1.Hmc", _) => &[Controller],
        // FFDC (seed 003): nodes ask each other to capture and hand over reports; people read
        // the incidents and the trace logs from any node.
        ("vmrm.v1.Ffdc", "Capture" | "Delegate") => NODES,
        // An archive holds every node's logs: for administrators, like a snapshot.
        ("vmrm.v1.Ffdc", "Snap") => &[Admin],
        ("vmrm.v1.Ffdc", _) => &[Admin, Operator, Monitor, Controller],
        // A VM's guest application server: its manager, `cmappmgr`, acts for an administrator.
        ("vmrm.v1.AppServer", _) => &[Admin],
        _ => &[],
    })
}

/// Whether `who` may call `path`: PERMISSION_DENIED naming the call and the roles it needs.
pub fn authorize(who: &Principal, path: &str) -> Result<()> {
    let Some(roles) = allowed(path) else { return Ok(()) };
    if who.unchecked || roles.iter().any(|r| who.has(*r)) {
        return Ok(());
    }
    let needs: Vec<String> = roles.iter().map(Role::to_string).collect();
    Err(VmrmError::denied(match needs.is_empty() {
        true => format!("{who} may not call {path}: no role may"),
        false => format!("{who} may not call {path}: it needs the role {}", needs.join(" or ")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(role: Role) -> Principal {
        Principal::from_uris(["vmrm:name:p".to_string(), format!("vmrm:role:{role}")].iter().map(String::as_str))
            .unwrap()
    }

    #[test]
    fn a_monitor_queries_but_does_not_act() {
        let m = with(Monitor);
        assert!(authorize(&m, "/vmrm.v1.Admin/QueryVm").is_ok());
        assert!(authorize(&m, "/vmrm.v1.Admin/WatchMonjv").is_ok());
        assert!(authorize(&m, "/vmrm.v1.Admin/WatchEvents").is_ok());
        assert!(authorize(&m, "/vmrm.v1.Admin/WatchStatus").is_ok());
        assert!(authorize(&with(Operator), "/vmrm.v1.Admin/AckEvent").is_ok());
        for call in [
            "/vmrm.v1.Admin/RestartVm",
            "/vmrm.v1.Admin/Modify",
            "/vmrm.v1.Hsdb/Write",
            "/vmrm.v1.San/Preempt",
            "/vmrm.v1.Admin/QueryNotify",
            "/vmrm.v1.Admin/QuerySnapshot",
            "/vmrm.v1.Admin/AckEvent",
        ] {
            let e = authorize(&m, call).unwrap_err();
            assert!(matches!(e, VmrmError::PermissionDenied(_)), "{call}: {e:?}");
        }
    }

    #[test]
    fn an_operator_acts_on_vms_but_not_on_the_cluster() {
        let o = with(Operator);
        assert!(authorize(&o, "/vmrm.v1.Admin/RestartVm").is_ok());
        for call in ["/vmrm.v1.Admin/AddHsdbNode", "/vmrm.v1.Admin/Modify", "/vmrm.v1.ServerUnit/InjectFault"] {
            assert!(authorize(&o, call).is_err(), "{call}");
        }
    }

    #[test]
    fn raft_is_only_between_members_and_the_hardware_only_from_its_managers() {
        assert!(authorize(&with(Hsdb), "/vmrm.v1.RaftPeer/Vote").is_ok());
        assert!(authorize(&with(Hsdb), "/vmrm.v1.RaftPeer/PreVote").is_ok());
        for r in [Controller, Admin, Vios, ServerUnit] {
            assert!(authorize(&with(r), "/vmrm.v1.RaftPeer/AppendEntries").is_err(), "{r}");
            assert!(
                authorize(&with(r), "/vmrm.v1.RaftPeer/PreVote").is_err(),
                "{r}: a pre-vote could hold off elections"
            );
        }
        assert!(authorize(&with(Hmc), "/vmrm.v1.ServerUnit/Activate").is_ok());
        assert!(authorize(&with(Admin), "/vmrm.v1.ServerUnit/Activate").is_err());
        assert!(authorize(&with(Controller), "/vmrm.v1.Hmc/SubmitJob").is_ok());
        assert!(authorize(&with(ServerUnit), "/vmrm.v1.Hmc/SubmitJob").is_err());
        assert!(authorize(&with(ServerUnit), "/vmrm.v1.MigrationLane/MigrateIn").is_ok());
        assert!(authorize(&with(Admin), "/vmrm.v1.MigrationLane/MigrateIn").is_err());
    }

    #[test]
    fn health_is_open_and_unknown_calls_are_closed() {
        assert_eq!(allowed("/grpc.health.v1.Health/Check"), None);
        assert!(authorize(&with(Admin), "/vmrm.v1.Nothing/Call").is_err());
        assert!(authorize(&with(Admin), "garbage").is_err());
        assert!(authorize(&Principal::unchecked(), "/vmrm.v1.RaftPeer/Vote").is_ok());
    }
}
