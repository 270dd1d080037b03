//! Small file systems of their own for the HSDB members' data, so a round can fill one to the
//! brim without touching the machine's disk: a sparse 256 MiB image per controller, formatted
//! ext4, loop-mounted under `target/chaos-disks/`, and bind-mounted over the member's data
//! directory by a compose override file. Mounting needs root, as the suite's Docker does.
//!
//! The images live in shared memory (`/dev/shm`): on an image on the machine's disk a synced
//! write costs ten times as much (measured with `dd oflag=dsync`: 2 ms against 0.2 ms), which
//! slowed every HSDB write and a host's recovery by a second. The suite kills containers, never
//! the machine, so what the members sync stays either way.
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each member's file system.
const SIZE: &str = "256M";
/// What a "full" disk leaves free: less than the HSDB's `MIN_FREE_BYTES`, so the member raises
/// its NOSPACE alarm (a disk filled to the last byte before the alarm's next look stops the
/// member, which a controller kill already covers).
const LEFT_FREE: u64 = 16 << 20;
const BALLAST: &str = "ballast";

/// Where the images live.
const IMAGES: &str = "/dev/shm/vmrm-chaos-disks";

pub struct Disks {
    root: PathBuf,
    /// Member (`ctl-1`) → where its file system is mounted.
    mounts: Vec<(String, PathBuf)>,
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Whether `dir` is a mount point (its device differs from its parent's).
fn mounted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) {
        (Ok(d), Some(Ok(p))) => d.dev() != p.dev(),
        _ => false,
    }
}

impl Disks {
    /// A fresh file system for each of `members` (data directory `/data/NAME` in the
    /// container), replacing any a previous run left.
    pub fn create(root: &Path, members: &[String]) -> Result<Self> {
        let disks = Self { root: root.to_path_buf(), mounts: Vec::new() };
        disks.remove(members)?;
        std::fs::create_dir_all(root)?;
        std::fs::create_dir_all(IMAGES)?;
        let mut mounts = Vec::new();
        for member in members {
            let (image, dir) = (Path::new(IMAGES).join(format!("{member}.img")), root.join(member));
            std::fs::create_dir_all(&dir)?;
            run("truncate", &["-s", SIZE, &image.to_string_lossy()])?;
            run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()])?;
            run("mount", &["-o", "loop", &image.to_string_lossy(), &dir.to_string_lossy()])
                .context("the full-disk rounds loop-mount a small file system (run the suite as root)")?;
            mounts.push((member.clone(), dir));
        }
        let mut yaml = String::from("version: \"2.4\"\nservices:\n");
        for (member, dir) in &mounts {
            yaml.push_str(&format!("  {member}:\n    volumes: [\"{}:/data/{member}\"]\n", dir.display()));
        }
        std::fs::write(root.join("override.yml"), yaml)?;
        Ok(Self { root: root.to_path_buf(), mounts })
    }

    /// The compose file that mounts the file systems.
    pub fn override_file(&self) -> PathBuf {
        self.root.join("override.yml")
    }

    fn dir(&self, member: &str) -> Result<&Path> {
        self.mounts.iter().find(|(m, _)| m == member).map(|(_, d)| d.as_path()).context("no such member")
    }

    /// Fills `member`'s disk until [`LEFT_FREE`] bytes are left.
    pub fn fill(&self, member: &str) -> Result<()> {
        let dir = self.dir(member)?;
        let fs = nix::sys::statvfs::statvfs(dir)?;
        let free = (fs.blocks_available() as u64).saturating_mul(fs.fragment_size() as u64);
        let ballast = free.saturating_sub(LEFT_FREE).to_string();
        run("fallocate", &["-l", &ballast, &dir.join(BALLAST).to_string_lossy()])
    }

    /// Gives `member` its space back.
    pub fn free(&self, member: &str) -> Result<()> {
        Ok(std::fs::remove_file(self.dir(member)?.join(BALLAST))?)
    }

    /// Unmounts and deletes the file systems of `members` (once the containers are gone).
    pub fn remove(&self, members: &[String]) -> Result<()> {
        for member in members {
            let dir = self.root.join(member);
            if mounted(&dir) {
                run("umount", &["-l", &dir.to_string_lossy()])?;
            }
            let _ = std::fs::remove_file(Path::new(IMAGES).join(format!("{member}.img")));
        }
        Ok(())
    }

    pub fn members(&self) -> Vec<String> {
        self.mounts.iter().map(|(m, _)| m.clone()).collect()
    }
}
