//! The guest's workload: what runs inside a simulated VM and dirties its memory, so a live
//! migration has real, changing bytes to move. Every step counts one up and dirties pages at
//! the configured rate, walking through the resident set. Its whole state — the counter, where
//! it is, its settings — lives in the guest's own first page ("registers"), so it moves with
//! the memory: on the target the workload continues from the counter the source stopped at,
//! which is how a test sees that nothing was lost or repeated. Pure: the VM actor calls it on
//! its clock and writes the log line.
use super::guest_memory::{GuestMemory, PAGE_SIZE};
use crate::error::{Result, VmrmError};
use std::time::Duration;

/// How often the workload runs (a named constant: the rate, not the step, is the setting).
pub const WORKLOAD_TICK: Duration = Duration::from_millis(10);

/// Marks a first page that holds workload registers.
const MAGIC: &[u8; 8] = b"VMRMWKLD";

/// Register offsets in page 0.
const COUNTER: u64 = 8;
const CURSOR: u64 = 16;
const RESIDENT_PAGES: u64 = 24;
const DIRTY_BYTES_PER_S: u64 = 32;
const LOG: u64 = 40;
const OWED: u64 = 48;

/// What the workload does, as set with `SetWorkload` or the SU's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSettings {
    pub resident_mb: u64,
    pub dirty_kb_s: u64,
    /// Write each counter value to the guest's workload log.
    pub log: bool,
}

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub counter: u64,
    pub log: bool,
}

fn get(mem: &GuestMemory, at: u64) -> u64 {
    let bytes = mem.read(at, 8).unwrap_or_else(|_| vec![0; 8]);
    u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
}

fn put(mem: &mut GuestMemory, at: u64, value: u64) -> Result<()> {
    mem.write(at, &value.to_le_bytes())
}

/// Sets the workload up (or changes it): the resident pages not yet written are filled once.
/// The counter goes on where it was.
pub fn configure(mem: &mut GuestMemory, settings: WorkloadSettings) -> Result<()> {
    let resident = (settings.resident_mb << 20).div_ceil(PAGE_SIZE as u64).max(1);
    if resident > mem.page_count() as u64 {
        return Err(VmrmError::invalid(format!(
            "a workload of {} MB does not fit the guest's {} MB",
            settings.resident_mb,
            mem.size() >> 20
        )));
    }
    mem.write(0, MAGIC)?;
    put(mem, RESIDENT_PAGES, resident)?;
    put(mem, DIRTY_BYTES_PER_S, settings.dirty_kb_s * 1000)?;
    put(mem, LOG, settings.log as u64)?;
    let pattern = vec![0xA5u8; PAGE_SIZE];
    for page in 1..resident as usize {
        if mem.page(page).is_none() {
            mem.write((page * PAGE_SIZE) as u64, &pattern)?;
        }
    }
    Ok(())
}

/// The settings in the guest's registers; `None` when it runs no workload.
pub fn settings(mem: &GuestMemory) -> Option<WorkloadSettings> {
    if mem.read(0, 8).ok()?.as_slice() != MAGIC {
        return None;
    }
    let resident_mb = (get(mem, RESIDENT_PAGES) * PAGE_SIZE as u64) >> 20;
    Some(WorkloadSettings { resident_mb, dirty_kb_s: get(mem, DIRTY_BYTES_PER_S) / 1000, log: get(mem, LOG) == 1 })
}

/// One step `elapsed` after the previous: the counter goes up by one and the pages the rate
/// asks for are dirtied. `None` when the guest runs no workload.
pub fn step(mem: &mut GuestMemory, elapsed: Duration) -> Option<Step> {
    settings(mem)?;
    let counter = get(mem, COUNTER) + 1;
    let resident = get(mem, RESIDENT_PAGES).max(1);
    let owed = get(mem, OWED) + (get(mem, DIRTY_BYTES_PER_S) as f64 * elapsed.as_secs_f64()) as u64;
    let pages = owed / PAGE_SIZE as u64;
    // The walk skips page 0 (the registers are written every step anyway).
    let first = if resident > 1 { 1 } else { 0 };
    let mut cursor = get(mem, CURSOR).max(first);
    let stamp = [counter.to_le_bytes(), cursor.to_le_bytes()].concat();
    for _ in 0..pages.min(resident) {
        let within = if cursor == 0 { PAGE_SIZE as u64 / 2 } else { (counter * 16) % PAGE_SIZE as u64 };
        mem.write(cursor * PAGE_SIZE as u64 + within, &stamp).ok()?;
        cursor = if cursor + 1 >= resident { first } else { cursor + 1 };
    }
    for (at, value) in [(COUNTER, counter), (CURSOR, cursor), (OWED, owed % PAGE_SIZE as u64)] {
        put(mem, at, value).ok()?;
    }
    Some(Step { counter, log: get(mem, LOG) == 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(mb: u64) -> GuestMemory {
        GuestMemory::new(mb << 20).unwrap()
    }

    #[test]
    fn no_registers_no_workload() {
        let mut mem = memory(4);
        assert_eq!(settings(&mem), None);
        assert_eq!(step(&mut mem, WORKLOAD_TICK), None);
    }

    #[test]
    fn the_resident_set_is_filled_and_dirtied_at_the_rate() {
        let mut mem = memory(16);
        configure(&mut mem, WorkloadSettings { resident_mb: 8, dirty_kb_s: 6554, log: true }).unwrap();
        assert_eq!(settings(&mem), Some(WorkloadSettings { resident_mb: 8, dirty_kb_s: 6554, log: true }));
        assert_eq!(mem.take_dirty().len(), (8 << 20) / PAGE_SIZE, "8 MB of pages written once");
        // 6.554 MB/s for one second: its whole pages, and page 0 (the registers).
        for _ in 0..100 {
            step(&mut mem, WORKLOAD_TICK).unwrap();
        }
        assert_eq!(mem.take_dirty().len(), 6_554_000 / PAGE_SIZE + 1);
        assert_eq!(step(&mut mem, WORKLOAD_TICK).unwrap(), Step { counter: 101, log: true });
    }

    #[test]
    fn the_counter_continues_in_a_copy_of_the_memory() {
        let mut source = memory(4);
        configure(&mut source, WorkloadSettings { resident_mb: 1, dirty_kb_s: 0, log: false }).unwrap();
        for _ in 0..41 {
            step(&mut source, WORKLOAD_TICK);
        }
        source.mark_all_written_dirty();
        let pages: Vec<u32> = source.take_dirty().into_iter().map(|p| p as u32).collect();
        let mut target = memory(4);
        target.load_pages(&pages, source.share_pages(&pages)).unwrap();
        assert_eq!(step(&mut target, WORKLOAD_TICK).unwrap().counter, 42);
    }

    #[test]
    fn a_workload_larger_than_the_guest_is_refused() {
        let mut mem = memory(4);
        assert!(configure(&mut mem, WorkloadSettings { resident_mb: 5, dirty_kb_s: 0, log: false }).is_err());
        assert_eq!(settings(&mem), None, "nothing written");
    }
}
