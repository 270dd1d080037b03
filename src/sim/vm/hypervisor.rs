//! The simulated partitions behind a server unit's [`Hypervisor`] boundary: each running guest
//! is a [`VmActor`] on memory taken from the host's page pool, answering ping on an address of
//! its own on the host's interface.
use super::{PauseVm, ResumeVm, StopVm, VmActor, VmHost, bind_network};
use crate::config::WorkloadConfig;
use crate::domain::LparDefinition;
use crate::error::{Result, VmrmError};
use crate::sim::guest_memory::{GuestMemory, PagePool, SharedMemory};
use crate::sim::hypervisor::{GuestState, Hypervisor, Stop, VmFault};
use crate::sim::workload::{self, WorkloadSettings};
use actix::prelude::*;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A defined partition's guest.
struct Guest {
    def: LparDefinition,
    vm: Option<Addr<VmActor>>,
    /// Its memory while it holds any (running, or arriving by migration).
    memory: Option<SharedMemory>,
    hung: bool,
}

pub struct SimulatedHypervisor {
    host: VmHost,
    /// The interface the guests' addresses are bound on.
    ip: String,
    /// The workload a guest boots with.
    workload: WorkloadConfig,
    /// The memory of guests that left, for the next ones (up to the host's memory).
    pages: PagePool,
    guests: BTreeMap<String, Guest>,
}

impl SimulatedHypervisor {
    pub fn new(host: VmHost, ip: String, workload: WorkloadConfig, memory_mb: u64) -> Self {
        Self { host, ip, workload, pages: PagePool::new(memory_mb << 20), guests: BTreeMap::new() }
    }

    fn guest(&self, name: &str) -> Result<&Guest> {
        self.guests
            .get(name)
            .ok_or_else(|| VmrmError::not_found(format!("no partition {name} on host {}", self.host.name)))
    }

    /// The running guest's VM.
    fn vm(&self, name: &str) -> Result<Addr<VmActor>> {
        self.guest(name)?
            .vm
            .clone()
            .ok_or_else(|| VmrmError::precondition(format!("VM {name} is not running on host {}", self.host.name)))
    }

    /// A fresh guest memory of the partition's size, running the host's default workload.
    fn boot_memory(&self, def: &LparDefinition) -> Result<SharedMemory> {
        let mut memory = GuestMemory::in_pool(def.memory_mb << 20, self.pages.clone())?;
        let w = self.workload;
        let settings =
            WorkloadSettings { resident_mb: w.resident_mb.min(def.memory_mb), dirty_kb_s: w.dirty_kb_s, log: false };
        workload::configure(&mut memory, settings)?;
        Ok(Arc::new(Mutex::new(memory)))
    }
}

impl Hypervisor for SimulatedHypervisor {
    fn define(&mut self, def: &LparDefinition) {
        self.guests.insert(def.name.clone(), Guest { def: def.clone(), vm: None, memory: None, hung: false });
    }

    fn remove(&mut self, name: &str) {
        self.shut_down(name, Stop::PowerOff);
        self.guests.remove(name);
    }

    fn activate(&mut self, name: &str) -> Result<String> {
        let guest = self.guest(name)?;
        let memory = match &guest.memory {
            Some(arrived) => arrived.clone(),
            None => self.boot_memory(&guest.def)?,
        };
        let (network, address) = bind_network(&self.ip)?;
        // A DR test copy's network is isolated: its agent reaches none of the host's monitors.
        let host = match guest.def.isolated {
            true => VmHost { vios: Vec::new(), ..self.host.clone() },
            false => self.host.clone(),
        };
        let vm = VmActor::new(guest.def.clone(), host, network, memory.clone()).start();
        let guest = self.guests.get_mut(name).expect("looked up above");
        (guest.vm, guest.memory, guest.hung) = (Some(vm), Some(memory), false);
        Ok(address)
    }

    fn shut_down(&mut self, name: &str, how: Stop) {
        let Some(guest) = self.guests.get_mut(name) else { return };
        if let Some(vm) = guest.vm.take() {
            vm.do_send(StopVm { clean: how == Stop::Clean });
        }
        (guest.memory, guest.hung) = (None, false);
    }

    fn guest_state(&self, name: &str) -> GuestState {
        match self.guests.get(name) {
            Some(Guest { vm: Some(_), hung: true, .. }) => GuestState::Hung,
            Some(Guest { vm: Some(_), .. }) => GuestState::Running,
            _ => GuestState::Off,
        }
    }

    fn pause(&mut self, name: &str) -> BoxFuture<'static, Result<()>> {
        let vm = self.vm(name);
        async move { vm?.send(PauseVm).await.map_err(VmrmError::from) }.boxed()
    }

    fn resume(&mut self, name: &str) -> BoxFuture<'static, Result<()>> {
        let vm = self.vm(name);
        async move { vm?.send(ResumeVm).await.map_err(VmrmError::from) }.boxed()
    }

    fn memory_image(&self, name: &str) -> Result<SharedMemory> {
        self.vm(name)?;
        self.guest(name)?.memory.clone().ok_or_else(|| VmrmError::internal("a running VM without memory"))
    }

    fn receive(&mut self, name: &str, bytes: u64) -> Result<SharedMemory> {
        let memory = Arc::new(Mutex::new(GuestMemory::in_pool(bytes, self.pages.clone())?));
        let guest = self.guests.get_mut(name).ok_or_else(|| VmrmError::not_found(format!("no partition {name}")))?;
        guest.memory = Some(memory.clone());
        Ok(memory)
    }

    fn inject(&mut self, name: &str, fault: VmFault) -> BoxFuture<'static, Result<()>> {
        let vm = self.vm(name);
        if vm.is_ok()
            && fault == VmFault::HangOs
            && let Some(guest) = self.guests.get_mut(name)
        {
            // The VM refuses a fault only when its OS already hangs.
            guest.hung = true;
        }
        async move { vm?.send(fault).await.map_err(VmrmError::from)? }.boxed()
    }

    fn set_workload(&mut self, name: &str, settings: WorkloadSettings) -> Result<()> {
        let memory = self.memory_image(name)?;
        workload::configure(&mut memory.lock().expect("guest memory"), settings)
    }
}
