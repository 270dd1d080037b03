//! Which rows a caller may write. Controllers and HSDB members write every table (through the
//! schema's checks); the host-side nodes write only their own host's rows of the tables their
//! role keeps — a server unit its alive message, a VIOS its health row, its VMs' missed
//! heartbeats and the application-reporting exchange — so a compromised host cannot rewrite
//! the cluster's configuration, take a lock or forge another host's health. Deletions name only
//! a key: a VIOS may delete rows of its own tables, whoever's host they name.
//!
//! Every node captures for FFDC incidents (seed 003), so every node role writes the FFDC rows
//! that name it: its registration, the incidents it opens (new ones only) and the bundles and
//! chunks it stores — for itself, or for a peer that handed it its report (`captured_by`).
//!
//! Reading is open to every node but for the tables only controllers and members read: the
//! HMCs' (it holds their login credentials), the audit trail, and the notification contacts
//! and their deliveries (people's addresses; a webhook URL may carry a token), and the
//! configuration snapshots (they hold the HMCs' logins).
use super::tables::Table;
use super::types::Command;
use crate::transport::tls::{Principal, Role};

/// The tables a host-side role keeps, and whether their rows name their host (`host`).
fn kept_by(role: Role) -> &'static [(Table, bool)] {
    match role {
        Role::ServerUnit => &[(Table::SuAlive, true)],
        Role::Vios => {
            &[(Table::HmHealth, true), (Table::VmHbMissed, true), (Table::ShortMsg, true), (Table::Trans, false)]
        }
        _ => &[],
    }
}

/// Whether `who` may read `table`, and if not, why.
pub fn may_read(who: &Principal, table: Table) -> Result<(), String> {
    let private = matches!(table, Table::Hmc | Table::Audit | Table::Notify | Table::Delivery | Table::Snapshot);
    match !private || who.unchecked || who.has(Role::Controller) || who.has(Role::Hsdb) {
        true => Ok(()),
        false => Err(format!("{who} may not read table {table}: only controllers do")),
    }
}

/// Whether `who` may write `command`, and if not, why.
pub fn may_write(who: &Principal, command: &Command) -> Result<(), String> {
    if who.unchecked || who.has(Role::Controller) || who.has(Role::Hsdb) {
        return Ok(());
    }
    if let Command::Batch(ops) = command {
        return ops.iter().try_for_each(|op| may_write(who, op));
    }
    if let Some(field) = command_ffdc_field(command) {
        return ffdc_row(who, command, field);
    }
    let Some(host) = &who.host else {
        return Err(format!("{who} writes no HSDB row: its certificate names no host"));
    };
    let kept = |table: Table| {
        who.roles.iter().flat_map(|r| kept_by(*r)).find(|(t, _)| *t == table).map(|(_, names_host)| *names_host)
    };
    let not_kept = |table: Table| format!("{who} may not write table {table}: its role does not keep it");
    match command {
        Command::Put { table, value, .. } | Command::PutIfVersion { table, value, .. } => match kept(*table) {
            None => Err(not_kept(*table)),
            Some(true) if value.get("host").and_then(|h| h.as_str()) != Some(host.as_str()) => {
                Err(format!("{who} may write only host {host}'s rows of table {table}"))
            }
            Some(_) => Ok(()),
        },
        Command::Delete { table, .. } => kept(*table).map(drop).ok_or_else(|| not_kept(*table)),
        _ => Err(format!("{who} may only put and delete its host's rows, not take locks or append events")),
    }
}

/// The field of an FFDC row that must name its writer, if `command` writes one.
fn command_ffdc_field(command: &Command) -> Option<&'static str> {
    let table = match command {
        Command::Put { table, .. } | Command::PutIfVersion { table, .. } | Command::Delete { table, .. } => *table,
        _ => return None,
    };
    match table {
        Table::FfdcNode => Some("node"),
        Table::FfdcIncident => Some("opened_by"),
        Table::FfdcBundle | Table::FfdcChunk => Some("captured_by"),
        _ => None,
    }
}

/// A node writes FFDC rows naming it in `field`; an incident only when it opens it (a new row),
/// and it deletes none (the controller settles and evicts).
fn ffdc_row(who: &Principal, command: &Command, field: &str) -> Result<(), String> {
    let (table, value) = match command {
        Command::PutIfVersion { table: Table::FfdcIncident, expected_version: 0, value, .. } => {
            (Table::FfdcIncident, value)
        }
        Command::PutIfVersion { table: Table::FfdcIncident, .. } | Command::Put { table: Table::FfdcIncident, .. } => {
            return Err(format!("{who} may only open new FFDC incidents; the controller settles them"));
        }
        Command::Put { table, value, .. } | Command::PutIfVersion { table, value, .. } => (*table, value),
        _ => return Err(format!("{who} may not delete FFDC rows; the controller evicts them")),
    };
    match value.get(field).and_then(|v| v.as_str()) == Some(who.name.as_str()) {
        true => Ok(()),
        false => Err(format!("{who} may write only rows of table {table} whose {field} is {}", who.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(role: &str, host: &str) -> Principal {
        Principal::from_uris(
            ["vmrm:name:n".to_string(), format!("vmrm:role:{role}"), format!("vmrm:host:{host}")]
                .iter()
                .map(String::as_str),
        )
        .unwrap()
    }

    fn put(table: Table, host: &str) -> Command {
        Command::Put { table, key: "k".into(), value: json!({ "host": host }) }
    }

    #[test]
    fn credentials_and_the_audit_trail_are_read_by_controllers_only() {
        for role in ["vios", "server_unit", "san", "hmc"] {
            let host_side = node(role, "host-1");
            assert!(may_read(&host_side, Table::Hmc).unwrap_err().contains("may not read table hmc"), "{role}");
            assert!(may_read(&host_side, Table::Audit).is_err(), "{role}");
            assert!(may_read(&host_side, Table::Notify).is_err(), "{role}");
            assert!(may_read(&host_side, Table::Delivery).is_err(), "{role}");
            assert_eq!(may_read(&host_side, Table::HmHealth), Ok(()), "{role}");
        }
        assert_eq!(may_read(&node("controller", "x"), Table::Hmc), Ok(()));
        assert_eq!(may_read(&node("hsdb", "x"), Table::Audit), Ok(()));
    }

    #[test]
    fn a_host_writes_its_own_rows_only() {
        let vios = node("vios", "host-1");
        assert_eq!(may_write(&vios, &put(Table::HmHealth, "host-1")), Ok(()));
        assert!(may_write(&vios, &put(Table::HmHealth, "host-2")).unwrap_err().contains("host host-1's rows"));
        assert!(may_write(&vios, &put(Table::Vm, "host-1")).unwrap_err().contains("does not keep it"));
        assert_eq!(may_write(&vios, &Command::Delete { table: Table::VmHbMissed, key: "vm-9".into() }), Ok(()));
        let su = node("server_unit", "host-1");
        assert_eq!(may_write(&su, &put(Table::SuAlive, "host-1")), Ok(()));
        assert!(may_write(&su, &put(Table::HmHealth, "host-1")).is_err());
        let batch = Command::Batch(vec![put(Table::SuAlive, "host-1"), put(Table::SuAlive, "host-2")]);
        assert!(may_write(&su, &batch).is_err(), "one foreign row refuses the batch");
        let append = Command::Append { table: Table::Event, value: json!({}) };
        assert!(may_write(&su, &append).unwrap_err().contains("not take locks or append events"));
    }

    #[test]
    fn controllers_write_everything_and_people_nothing() {
        let ctl = Principal::from_uris(["vmrm:name:c", "vmrm:role:controller"]).unwrap();
        assert_eq!(may_write(&ctl, &put(Table::Vm, "x")), Ok(()));
        let admin = Principal::from_uris(["vmrm:name:a", "vmrm:role:admin"]).unwrap();
        assert!(may_write(&admin, &put(Table::SuAlive, "x")).is_err());
    }

    #[test]
    fn every_node_writes_the_ffdc_rows_that_name_it_and_only_opens_incidents() {
        let san = Principal::from_uris(["vmrm:name:san-1", "vmrm:role:san"]).unwrap();
        let row =
            |table, field: &str, name: &str| Command::Put { table, key: "k".into(), value: json!({ field: name }) };
        assert_eq!(may_write(&san, &row(Table::FfdcNode, "node", "san-1")), Ok(()));
        assert_eq!(may_write(&san, &row(Table::FfdcChunk, "captured_by", "san-1")), Ok(()));
        let forged = may_write(&san, &row(Table::FfdcBundle, "captured_by", "ctl-1")).unwrap_err();
        assert!(forged.contains("whose captured_by is san-1"), "{forged}");
        let open = |expected_version| Command::PutIfVersion {
            table: Table::FfdcIncident,
            key: "i".into(),
            expected_version,
            value: json!({ "opened_by": "san-1" }),
        };
        assert_eq!(may_write(&san, &open(0)), Ok(()));
        assert!(may_write(&san, &open(7)).unwrap_err().contains("only open new FFDC incidents"));
        assert!(may_write(&san, &row(Table::FfdcIncident, "opened_by", "san-1")).is_err());
        let evict = Command::Delete { table: Table::FfdcChunk, key: "k".into() };
        assert!(may_write(&san, &evict).unwrap_err().contains("may not delete FFDC rows"));
        let batch = Command::Batch(vec![row(Table::FfdcChunk, "captured_by", "san-1"), row(Table::Vm, "x", "y")]);
        assert!(may_write(&san, &batch).is_err(), "one row that is not its own refuses the batch");
    }
}
