//! Application scripts as real processes. Each runs in its own process group, so a script that
//! ran past its timeout is killed with everything it started; when the VM stops, every group
//! it launched is killed (its processes die with it).
use super::guest::{GUEST_ENV, GuestDir};
use crate::logic::app_engine::Outcome;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

/// The script exists and is executable (seed: "is not executable. Needs repair !").
pub fn usable(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A launched script: its process group, and a future for how it ends.
pub struct Launched {
    pub group: i32,
    pub child: tokio::process::Child,
}

/// Starts `program ARGS` with the guest directory in its environment, output appended to the
/// AME log.
pub fn launch(program: &str, args: &[String], guest: &GuestDir) -> Result<Launched, Outcome> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(guest.ame_log_path());
    let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env(GUEST_ENV, guest.root())
        .current_dir(guest.root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| Outcome::Unusable(format!("{program}: {e}")))?;
    let group = child.id().map(|id| id as i32).ok_or_else(|| Outcome::Unusable(format!("{program}: no pid")))?;
    Ok(Launched { group, child })
}

/// Kills a script's whole process group.
pub fn kill_group(group: i32) {
    signal_group(group, Signal::SIGKILL);
}

/// Some process of the group still exists (no signal is sent: only the group's existence is
/// checked).
pub fn group_alive(group: i32) -> bool {
    killpg(Pid::from_raw(group), None).is_ok()
}

/// Sends `signal` (or its raw number, as the VM's power switch passes it) to a whole process
/// group; a group that is gone, or a number that is no signal, is ignored.
pub fn signal_group(group: i32, signal: impl TryInto<Signal>) {
    if let Ok(signal) = signal.try_into() {
        let _ = killpg(Pid::from_raw(group), signal);
    }
}

/// How a finished process ended, for the engine.
pub fn outcome(status: std::io::Result<std::process::ExitStatus>, killed: bool) -> Outcome {
    match status {
        _ if killed => Outcome::TimedOut,
        Ok(s) => Outcome::Exited(s.code().unwrap_or(-1)),
        Err(e) => Outcome::Unusable(e.to_string()),
    }
}
