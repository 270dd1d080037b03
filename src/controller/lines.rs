//! The progress lines a person reads (the seed's wording), collected for the admin reply and
//! logged as they happen — lines of parallel restarts interleave, as in the seed's monitor.
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    pub fn push(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(target: "vmrm::ksys", "{line}");
        self.0.lock().expect("lines lock").push(line);
    }

    /// An indented step line, as the seed prints them under a heading.
    pub fn step(&self, line: impl AsRef<str>) {
        self.push(format!("        {}", line.as_ref()));
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().expect("lines lock"))
    }
}
