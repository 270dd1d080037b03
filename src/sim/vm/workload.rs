//! The VM actor's side of the guest workload: it runs [`workload::step`] on the VM's clock
//! while the VM runs (not while it is paused for a migration's switchover, nor while its OS
//! hangs) and writes the counter to the guest's workload log when the workload asks for it.
//! The log names the host, so a migrated VM's log shows where each value was counted.
use super::VmActor;
use crate::agents::vm_agent::guest::GuestDir;
use crate::sim::workload::{self, WORKLOAD_TICK};
use actix::prelude::*;
use std::io::Write;
use std::time::Instant;

/// Stops the guest where it is (a migration's switchover): no workload step, heartbeat or
/// disk write until [`ResumeVm`]. Answered once the guest is stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PauseVm;

/// Lets a paused guest run on (a migration rolled back).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResumeVm;

impl VmActor {
    pub(super) fn start_workload(&mut self, ctx: &mut Context<Self>) {
        self.last_step = Instant::now();
        ctx.run_interval(WORKLOAD_TICK, |act, _| act.workload_tick());
    }

    fn workload_tick(&mut self) {
        let now = Instant::now();
        let elapsed = now - self.last_step;
        self.last_step = now;
        if !self.cpu.runs() {
            return;
        }
        let Some(step) = workload::step(&mut self.memory.lock().expect("guest memory"), elapsed) else {
            return;
        };
        if step.log {
            self.log_counter(step.counter);
        }
    }

    fn log_counter(&mut self, counter: u64) {
        if self.workload_log.is_none() {
            let path = match GuestDir::of(&self.host.guests, &self.def.name) {
                Ok(guest) => guest.workload_log_path(),
                Err(e) => return tracing::warn!(vm = %self.def.name, "no workload log: {e}"),
            };
            let opened = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&path));
            match opened {
                Ok(file) => self.workload_log = Some(file),
                Err(e) => return tracing::warn!(vm = %self.def.name, "workload log {}: {e}", path.display()),
            }
        }
        let host = &self.host.name;
        if let Some(file) = &mut self.workload_log
            && let Err(e) = writeln!(file, "{counter} {host}")
        {
            tracing::warn!(vm = %self.def.name, "workload log: {e}");
            self.workload_log = None;
        }
    }
}

impl Handler<PauseVm> for VmActor {
    type Result = ();
    fn handle(&mut self, _: PauseVm, _: &mut Context<Self>) {
        self.cpu.set_running(false);
    }
}

impl Handler<ResumeVm> for VmActor {
    type Result = ();
    fn handle(&mut self, _: ResumeVm, _: &mut Context<Self>) {
        self.cpu.set_running(!self.os_hung);
        self.last_step = Instant::now();
    }
}
