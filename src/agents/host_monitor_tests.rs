//! The host monitor in process, with tokio's clock paused and a store that records what it is
//! asked to write: the seed's timing (VM heartbeats every 10 s, MISSING after 19 s of silence,
//! the HM's own heartbeat every 30 s) and "transitions only" are checked by the clock.
use super::host_monitor::{Heartbeat, HostMonitorActor, ShutDown};
use crate::domain::{HmHealthRecord, VmHbMissedRecord};
use crate::error::Result;
use crate::hsdb::client::Row;
use crate::hsdb::{Command, CommandResult, HsdbAccess, Record, Table};
use crate::pb;
use crate::profile::{ProfileName, Timing};
use actix::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A store that applies nothing and remembers every write, with when it came (ms since the
/// test began).
#[derive(Clone)]
struct Recorder {
    began_ms: i64,
    writes: Arc<Mutex<Vec<(i64, Command)>>>,
}

impl Recorder {
    fn new() -> Self {
        Self { began_ms: crate::now_ms(), writes: Arc::default() }
    }

    /// The writes to `table`: when, and whether they were deletions.
    fn writes_to(&self, table: Table) -> Vec<(i64, Command)> {
        let writes = self.writes.lock().unwrap();
        writes
            .iter()
            .filter(
                |(_, c)| matches!(c, Command::Put { table: t, .. } | Command::Delete { table: t, .. } if *t == table),
            )
            .cloned()
            .collect()
    }
}

impl HsdbAccess for Recorder {
    async fn write(&self, command: Command) -> Result<CommandResult> {
        let at = crate::now_ms() - self.began_ms;
        self.writes.lock().unwrap().push((at, command));
        Ok(CommandResult::Applied { version: 1 })
    }

    async fn read(&self, _table: Table, _key: Option<&str>) -> Result<Vec<Row>> {
        Ok(Vec::new())
    }
}

fn heartbeat(shutdown: bool) -> Heartbeat {
    Heartbeat(pb::VmHeartbeat { vm: "vm-1".into(), vm_uuid: "uuid-vm-1".into(), shutdown, ..Default::default() })
}

fn monitor(store: &Recorder) -> Addr<HostMonitorActor<Recorder>> {
    HostMonitorActor::new("vios-a".into(), "host-1".into(), Timing::of(ProfileName::Seed), store.clone()).start()
}

async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

const S: i64 = 1_000;

/// The HM heartbeats itself into the HSDB every 30 s (seed: `vioHmHb`).
#[actix::test]
async fn the_host_monitor_heartbeats_every_thirty_seconds() {
    tokio::time::pause();
    let store = Recorder::new();
    let _hm = monitor(&store);
    pass(Duration::from_millis(90_500)).await;
    let times: Vec<i64> = store.writes_to(HmHealthRecord::TABLE).iter().map(|(at, _)| at / S).collect();
    assert_eq!(times, [0, 30, 60, 90]);
}

/// A deliberate shutdown writes one last row that says so, answers once it is written, and no
/// heartbeat follows it.
#[actix::test]
async fn a_shutdown_writes_the_last_row_and_nothing_after_it() {
    tokio::time::pause();
    let store = Recorder::new();
    let hm = monitor(&store);
    pass(Duration::from_secs(45)).await;
    hm.send(ShutDown).await.expect("delivered").expect("recorded");
    hm.send(ShutDown).await.expect("delivered").expect("a second ask is answered too");
    pass(Duration::from_secs(90)).await;
    let rows: Vec<(i64, HmHealthRecord)> = store
        .writes_to(HmHealthRecord::TABLE)
        .into_iter()
        .map(|(at, c)| match c {
            Command::Put { value, .. } => (at / S, serde_json::from_value(value).unwrap()),
            other => panic!("not a put: {other:?}"),
        })
        .collect();
    let flags: Vec<(i64, bool)> = rows.iter().map(|(at, r)| (*at, r.shut_down)).collect();
    assert_eq!(flags, [(0, false), (30, false), (45, true)]);
}

/// A VM whose heartbeats stop is MISSING 19 s after the last one — one row written then, none
/// while it stays missing — and the row goes when its heartbeats come back. Nothing is
/// written while its heartbeats arrive.
#[actix::test]
async fn a_silent_vm_is_written_missing_once_and_cleared_when_it_beats_again() {
    tokio::time::pause();
    let store = Recorder::new();
    let hm = monitor(&store);
    for at in [0, 10, 20] {
        if at > 0 {
            pass(Duration::from_secs(10)).await;
        }
        hm.send(heartbeat(false)).await.expect("delivered").expect("taken");
    }
    // Last heartbeat at 20 s. The first write clears a row an earlier incarnation may have left.
    let first = store.writes_to(VmHbMissedRecord::TABLE);
    assert!(matches!(&first[..], [(_, Command::Delete { .. })]), "{first:?}");

    pass(Duration::from_secs(18)).await;
    assert_eq!(store.writes_to(VmHbMissedRecord::TABLE).len(), 1, "38 s: 18 s of silence, not missing yet");
    pass(Duration::from_secs(4)).await;
    let missing = store.writes_to(VmHbMissedRecord::TABLE);
    let [_, (at, Command::Put { value, .. })] = &missing[..] else { panic!("one MISSING row: {missing:?}") };
    assert!((39 * S..=42 * S).contains(at), "written at {at} ms, 19 s after the last heartbeat at 20 s");
    let row: VmHbMissedRecord = serde_json::from_value(value.clone()).unwrap();
    assert_eq!((row.vm.as_str(), row.suspended), ("vm-1", false));

    pass(Duration::from_secs(60)).await;
    assert_eq!(store.writes_to(VmHbMissedRecord::TABLE).len(), 2, "missing is written once");
    hm.send(heartbeat(false)).await.expect("delivered").expect("taken");
    pass(Duration::from_secs(3)).await;
    let back = store.writes_to(VmHbMissedRecord::TABLE);
    assert!(matches!(&back[..], [_, _, (_, Command::Delete { .. })]), "the row is cleared: {back:?}");
}

/// A clean agent stop (SHDN) makes the VM SUSPENDED, written as such, and never MISSING.
#[actix::test]
async fn a_cleanly_stopped_agent_is_suspended_not_missing() {
    tokio::time::pause();
    let store = Recorder::new();
    let hm = monitor(&store);
    hm.send(heartbeat(false)).await.expect("delivered").expect("taken");
    pass(Duration::from_secs(5)).await;
    hm.send(heartbeat(true)).await.expect("delivered").expect("taken");
    pass(Duration::from_secs(120)).await;
    let writes = store.writes_to(VmHbMissedRecord::TABLE);
    let [(_, Command::Delete { .. }), (_, Command::Put { value, .. })] = &writes[..] else {
        panic!("one SUSPENDED row and nothing more: {writes:?}")
    };
    let row: VmHbMissedRecord = serde_json::from_value(value.clone()).unwrap();
    assert!(row.suspended);
}
