//! Long operations on a terminal: `lpm` and `lpm host` draw a bar per VM from the migration's
//! own progress reports (the guest memory already clean on the target, the round, what was
//! sent, the pause at the end), and `restore` and `discover` — one call that answers when it is
//! done — a spinner with the time so far and the latest line of the operations in progress
//! (the `WatchStatus` stream). The steps' lines are printed above them as they come, and stay.
//! Anywhere else (a pipe, a file, `-o json`) only the plain lines are printed, as before.
use super::run::Output;
use crate::pb::{self, MigrationPhase};
use crate::transport::AdminClient;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

/// Bars and spinners only for text on a terminal.
pub fn on_terminal(output: Output) -> bool {
    output == Output::Text && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

const MIB: f64 = 1024.0 * 1024.0;

/// A bar per VM of a migration.
pub struct MigrationBars {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl Default for MigrationBars {
    fn default() -> Self {
        Self { multi: MultiProgress::new(), bars: BTreeMap::new() }
    }
}

/// How far a migration is, in bytes of guest memory: what the first pass sent, then what is no
/// longer dirty while pages go, all of it once done.
fn position(p: &pb::MigrationProgress, phase: MigrationPhase) -> u64 {
    match phase {
        MigrationPhase::Unspecified | MigrationPhase::Setup => 0,
        // The first pass copies every page once.
        MigrationPhase::Precopy if p.sent_bytes < p.memory_bytes => p.sent_bytes,
        MigrationPhase::Precopy | MigrationPhase::Switchover => p.memory_bytes.saturating_sub(p.dirty_bytes),
        MigrationPhase::Completed | MigrationPhase::Aborted => p.memory_bytes,
    }
}

impl MigrationBars {
    /// A step's line, above the bars.
    pub fn line(&self, text: &str) {
        self.multi.suspend(|| println!("{text}"));
    }

    pub fn progress(&mut self, vm: &str, p: &pb::MigrationProgress) {
        let phase = MigrationPhase::try_from(p.phase).unwrap_or(MigrationPhase::Unspecified);
        let multi = &self.multi;
        let bar = self.bars.entry(vm.to_string()).or_insert_with(|| {
            let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            multi.add(ProgressBar::new(1).with_style(style).with_prefix(vm.to_string()))
        });
        bar.set_length(p.memory_bytes.max(1));
        bar.set_position(position(p, phase));
        let sent = p.sent_bytes as f64 / MIB;
        match phase {
            MigrationPhase::Completed => {
                bar.finish_with_message(format!("completed, {sent:.1} MiB sent, paused {} ms", p.downtime_us / 1000))
            }
            MigrationPhase::Aborted => bar.abandon_with_message(format!("aborted: {}", p.error)),
            _ => {
                let phase = phase.as_str_name().trim_start_matches("MIGRATION_PHASE_").to_ascii_lowercase();
                bar.set_message(format!("{phase} round {}, {sent:.1} MiB sent", p.round))
            }
        }
    }
}

/// Runs `work` under a spinner showing `label`, the time so far and the latest line of the
/// operations in progress (from a second client at the same controllers).
pub async fn spinning<T>(admin: &AdminClient, label: &str, work: impl Future<Output = T>) -> T {
    let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let spinner = ProgressBar::new_spinner().with_style(style).with_message(label.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut watcher = admin.clone();
    let follow = async {
        if let Ok(mut lines) = watcher.watch_status(pb::StatusWatch { monitor: true }).await {
            while let Ok(Some(step)) = lines.message().await {
                // The status the stream starts with is not news.
                let code = pb::StepCode::try_from(step.code);
                if !matches!(code, Ok(pb::StepCode::HostGroupReady | pb::StepCode::MonitoringActivity)) {
                    spinner.set_message(format!("{label}: {}", step.text.trim()));
                }
            }
        }
        // Following never ends by itself: the work does.
        std::future::pending::<T>().await
    };
    let out = tokio::select! {
        out = work => out,
        out = follow => out,
    };
    spinner.finish_and_clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_is_as_far_as_its_memory_is_clean_on_the_target() {
        let p = |phase: MigrationPhase, round, dirty| pb::MigrationProgress {
            phase: phase as i32,
            round,
            memory_bytes: 1000,
            dirty_bytes: dirty,
            ..Default::default()
        };
        assert_eq!(position(&p(MigrationPhase::Setup, 0, 0), MigrationPhase::Setup), 0);
        let first_pass = pb::MigrationProgress { sent_bytes: 400, ..p(MigrationPhase::Precopy, 0, 0) };
        assert_eq!(position(&first_pass, MigrationPhase::Precopy), 400);
        let later = pb::MigrationProgress { sent_bytes: 1500, ..p(MigrationPhase::Precopy, 2, 300) };
        assert_eq!(position(&later, MigrationPhase::Precopy), 700);
        let pausing = pb::MigrationProgress { sent_bytes: 1600, ..p(MigrationPhase::Switchover, 3, 20) };
        assert_eq!(position(&pausing, MigrationPhase::Switchover), 980);
        assert_eq!(position(&p(MigrationPhase::Completed, 3, 0), MigrationPhase::Completed), 1000);
    }
}
