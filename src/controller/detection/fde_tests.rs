//! The FDE actor in process, against a small fake world, with tokio's clock paused: minutes of
//! the seed's detection times pass in milliseconds, and each test asserts when things happen,
//! not only that they do.
use super::fde::{FdeActor, StopFde};
use super::world::{FdeWorld, Polled, Relocation};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::logic::fde::{HostObservation, ViosObservation};
use crate::logic::vm_failure::{Evidence, LparFacts, RELOCATION_ATTEMPTS, VmAction, VmRule};
use crate::logic::vm_watch::VmSighting;
use crate::pb;
use crate::profile::{ProfileName, Timing};
use actix::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const SECOND: i64 = 1_000;

/// What the fake world is like, and what the FDE did to it (times in ms since the test began).
struct State {
    timing: Timing,
    began_ms: i64,
    /// host → when both its VIOSs went silent (ms since the test began).
    host_down_at: Vec<(String, Option<i64>)>,
    /// The one VM and when its heartbeats stopped (ms since the test began).
    vm_silent_at: Option<i64>,
    /// Every relocation of the VM fails.
    relocations_fail: bool,
    polls: Vec<(i64, bool)>,
    host_relocations: Vec<(String, i64)>,
    acts: Vec<(VmAction, i64)>,
    retries: Vec<(u32, i64)>,
    events: Vec<(EventName, String, i64)>,
}

#[derive(Clone)]
struct Fake(Rc<RefCell<State>>);

impl Fake {
    fn new(hosts: &[&str]) -> Self {
        Fake(Rc::new(RefCell::new(State {
            timing: Timing::of(ProfileName::Seed),
            began_ms: crate::now_ms(),
            host_down_at: hosts.iter().map(|h| (h.to_string(), None)).collect(),
            vm_silent_at: None,
            relocations_fail: false,
            polls: Vec::new(),
            host_relocations: Vec::new(),
            acts: Vec::new(),
            retries: Vec::new(),
            events: Vec::new(),
        })))
    }

    fn elapsed(&self) -> i64 {
        crate::now_ms() - self.0.borrow().began_ms
    }

    fn state(&self) -> std::cell::Ref<'_, State> {
        self.0.borrow()
    }

    fn host_down(&self, host: &str) {
        let now = self.elapsed();
        let mut s = self.0.borrow_mut();
        s.host_down_at.iter_mut().filter(|(h, _)| h == host).for_each(|(_, at)| *at = Some(now));
    }

    fn vm(&self) -> VmRecord {
        VmRecord { vm_status: VmStatus::NoOperationInProgress, ..VmRecord::at_rest("vm-1", "host-1") }
    }

    /// When the events of `name` were raised, in whole seconds since the test began (the
    /// paused clock moves exactly; the real milliseconds a loaded machine adds do not count).
    fn events_named(&self, name: EventName) -> Vec<i64> {
        self.state().events.iter().filter(|(n, ..)| *n == name).map(|(.., at)| *at / SECOND).collect()
    }
}

fn vios(uuid: String, down_at: Option<i64>, began_ms: i64, now_ms: i64) -> ViosObservation {
    let up = down_at.is_none();
    let last_heard_ms = Some(down_at.map_or(now_ms, |at| began_ms + at));
    ViosObservation { uuid, up, healthy: up, last_heard_ms, hm_incarnation: up.then(|| "1".to_string()) }
}

impl FdeWorld for Fake {
    fn timing(&self) -> Timing {
        self.state().timing
    }

    async fn poll(&self, _group: &str, start: usize, needs_attention: bool) -> Result<Polled> {
        let (now, elapsed) = (crate::now_ms(), self.elapsed());
        let mut s = self.0.borrow_mut();
        s.polls.push((elapsed, needs_attention));
        let observations = s
            .host_down_at
            .iter()
            .map(|(host, down)| HostObservation {
                host: host.clone(),
                vios: ["a", "b"].map(|v| vios(format!("{host}-{v}"), *down, s.began_ms, now)).to_vec(),
            })
            .collect();
        let rule = VmRule { vmfdt: Duration::from_secs(190), lpm_hang_after: s.timing.lpm_hang_after };
        let missed = s.vm_silent_at.map(|at| Duration::from_millis((elapsed - at) as u64));
        let vms = needs_attention.then(|| vec![VmSighting { vm: self.vm(), missed, rule }]);
        let host_fdt = s.timing.host_failure_detection_time;
        Ok(Polled { vios_index: start, observations, vios_names: Default::default(), vms, doorbells: vec![], host_fdt })
    }

    async fn gather_evidence(&self, _vm: &VmRecord) -> Result<Evidence> {
        Ok(Evidence::Silent(LparFacts::bare(LparState::Running)))
    }

    async fn act(&self, _group: &str, _vm: VmRecord, action: VmAction, _missed: Duration) -> Result<()> {
        let at = self.elapsed();
        let mut s = self.0.borrow_mut();
        s.acts.push((action, at));
        match s.relocations_fail {
            true => Err(VmrmError::unavailable("no host takes the VM")),
            false => Ok(()),
        }
    }

    async fn relocate_again(&self, _group: &str, _vm: &str, attempt: u32) -> Result<()> {
        let at = self.elapsed();
        self.0.borrow_mut().retries.push((attempt, at));
        Err(VmrmError::unavailable("still no host takes the VM"))
    }

    async fn relocate_host(&self, _group: &str, host: &str) -> Result<Relocation> {
        let at = self.elapsed();
        self.0.borrow_mut().host_relocations.push((host.to_string(), at));
        Ok(Relocation::Done)
    }

    async fn clean_host(&self, _host: &str) -> Result<usize> {
        Ok(0)
    }

    async fn report(&self, _group: &str, _doorbell: pb::ShortMsg) -> Result<()> {
        Ok(())
    }

    async fn vms(&self) -> Result<Vec<VmRecord>> {
        Ok(Vec::new())
    }

    async fn event(&self, event: EventRecord) -> Result<()> {
        let at = self.elapsed();
        self.0.borrow_mut().events.push((event.name, event.subject, at));
        Ok(())
    }
}

/// Lets paused time run for `d`: every timer due meanwhile fires, in order.
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The seed's cycle: a poll every 20 s, every third a NeedsAttention.
#[actix::test]
async fn the_fde_polls_quick_quick_attention_every_twenty_seconds() {
    tokio::time::pause();
    let world = Fake::new(&["host-1"]);
    let fde = FdeActor::new(world.clone(), "HG1".into()).start();
    pass(Duration::from_millis(100_500)).await;
    let polls = world.state().polls.clone();
    let times: Vec<i64> = polls.iter().map(|(at, _)| at / SECOND).collect();
    assert_eq!(times, [0, 20, 40, 60, 80, 100]);
    let attention: Vec<bool> = polls.iter().map(|(_, na)| *na).collect();
    assert_eq!(attention, [false, false, true, false, false, true]);
    fde.send(StopFde).await.expect("stopped");
}

/// Both VIOSs of a host silent: VIOS_NODE_FAILURE at the next poll, the host relocated once,
/// 90 s (the seed's host_failure_detection_time) after its VIOSs were last heard — not at the
/// next regular poll after that, and never before.
#[actix::test]
async fn a_host_whose_vioses_are_silent_is_relocated_at_its_detection_time() {
    tokio::time::pause();
    let world = Fake::new(&["host-1", "host-2"]);
    let _fde = FdeActor::new(world.clone(), "HG1".into()).start();
    pass(Duration::from_secs(30)).await;
    world.host_down("host-2");

    pass(Duration::from_secs(89)).await;
    assert_eq!(world.events_named(EventName::ViosNodeFailure), [40, 40], "both VIOSs, next poll");
    assert!(world.state().host_relocations.is_empty(), "89 s after: not yet");

    pass(Duration::from_secs(60)).await;
    let relocations = world.state().host_relocations.clone();
    let [(host, at)] = &relocations[..] else { panic!("one relocation: {relocations:?}") };
    assert_eq!(host, "host-2");
    assert!((120 * SECOND..=121 * SECOND).contains(at), "relocated at {at} ms, failure at 30 s");
}

/// A VM silent past VMFDT (190 s) and found running is relocated right then; a relocation that
/// keeps failing is tried again 2, 4, 8 and 16 minutes after each failure (the seed profile's
/// relocation_retry doubling), then given up with RESTART_FAILED.
#[actix::test]
async fn a_failing_vm_relocation_is_retried_with_backoff_then_given_up() {
    tokio::time::pause();
    let world = Fake::new(&["host-1"]);
    world.0.borrow_mut().relocations_fail = true;
    let _fde = FdeActor::new(world.clone(), "HG1".into()).start();
    pass(Duration::from_secs(10)).await;
    world.0.borrow_mut().vm_silent_at = Some(world.elapsed());

    pass(Duration::from_secs(189)).await;
    assert!(world.state().acts.is_empty(), "below VMFDT: no action");
    pass(Duration::from_secs(2)).await;
    let acts = world.state().acts.clone();
    let [(VmAction::Relocate, at)] = &acts[..] else { panic!("one relocation: {acts:?}") };
    assert!((200 * SECOND..=201 * SECOND).contains(at), "relocated at {at} ms, silent from 10 s");

    pass(Duration::from_secs(2 * 60 + 4 * 60 + 8 * 60 + 16 * 60 - 1)).await;
    assert_eq!(world.state().retries.len(), 3, "the fourth retry is 16 minutes after the third");
    assert_eq!(world.state().acts.len(), 1, "the watch leaves the VM alone while its retries run");
    pass(Duration::from_secs(2)).await;
    let retries = world.state().retries.clone();
    let attempts: Vec<u32> = retries.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, (2..=RELOCATION_ATTEMPTS).collect::<Vec<_>>());
    let times: Vec<i64> = [*at].into_iter().chain(retries.iter().map(|(_, t)| *t)).collect();
    let gaps: Vec<i64> = times.windows(2).map(|w| (w[1] - w[0] + SECOND / 2) / SECOND).collect();
    assert_eq!(gaps, [120, 240, 480, 960]);
    let given_up = world.events_named(EventName::RestartFailed);
    assert_eq!(given_up, [retries.last().unwrap().1 / SECOND], "RESTART_FAILED once, after the last attempt");
}
