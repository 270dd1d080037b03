//! The steps of an operation as they happen ([`super::messages`] makes each), collected for the
//! admin reply and logged as the seed's lines — steps of parallel restarts interleave, as in the
//! seed's monitor.
use crate::pb::Step;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<Step>>>);

impl Lines {
    pub fn push(&self, step: Step) {
        tracing::info!(target: "vmrm::ksys", "{}", step.printed());
        super::activity::publish(&step);
        self.0.lock().expect("lines lock").push(step);
    }

    /// A step under the heading before it, as the seed indents them.
    pub fn step(&self, mut step: Step) {
        step.nested = true;
        self.push(step);
    }

    pub fn take(&self) -> Vec<Step> {
        std::mem::take(&mut self.0.lock().expect("lines lock"))
    }
}
