//! A VM's own files (seed: `/var/ksys/{config,log}` inside the VM). They live in the VM's guest
//! directory, which every host the VM can run on reaches — as it reaches the VM's disk — so the
//! agent's configuration survives an agent restart and follows the VM to another host.
use crate::error::{Result, VmrmError};
use crate::logic::app_engine::HaMonitoring;
use std::path::{Path, PathBuf};

/// The environment variable that names the guest directory, for `ksysvmmgr` and the
/// application scripts run inside the VM.
pub const GUEST_ENV: &str = "KSYS_VMM_ROOT";

/// Where the guest directories are when nobody says (`VMRM_GUESTS`, else the local
/// datacenter's).
pub fn default_guests_root() -> PathBuf {
    std::env::var_os("VMRM_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("vmrm-local").join("guests"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestDir(PathBuf);

impl GuestDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self(root.into())
    }

    /// `guests/<vm>`: the guest directory of VM `vm` under the hosts' shared root. `vm` must be
    /// a VM name: a path (`../vm-2-1`, `/tmp/x`) would make the guest's files, and the scripts it
    /// runs, those of a directory of the sender's choosing.
    pub fn of(guests: &Path, vm: &str) -> crate::error::Result<Self> {
        crate::domain::names::VmName::parse(vm).map(|vm| Self(guests.join(vm.as_str())))
    }

    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Seed: `/var/ksys/config/HAMonitoring.xml`; kept as TOML here.
    pub fn config_path(&self) -> PathBuf {
        self.0.join("var/ksys/config/HAMonitoring.toml")
    }

    /// Where the agent's daemon listens for `ksysvmmgr`.
    pub fn socket_path(&self) -> PathBuf {
        self.0.join("var/ksys/ksys_vmm.sock")
    }

    /// The VM's uuid, written by the VM at boot (seed: `VmUUID` in `ksysvmmgr query vmm`).
    pub fn uuid_path(&self) -> PathBuf {
        self.0.join("var/ksys/config/VmUUID")
    }

    /// The scripts' output (seed: `/var/ksys/log/ksys_vmm_ame.log`).
    pub fn ame_log_path(&self) -> PathBuf {
        self.0.join("var/ksys/log/ksys_vmm_ame.log")
    }

    /// The guest workload's counter log, one `counter host` line per step when enabled.
    /// The network identity the agent applied for the host the guest runs on (seed:
    /// `vmr_dr_ip_conf`'s `ifcfg-net0` and `hostname`).
    pub fn dr_ip_conf_path(&self) -> PathBuf {
        self.0.join("etc/vmr_dr_ip.conf")
    }

    pub fn workload_log_path(&self) -> PathBuf {
        self.0.join("var/ksys/log/workload.log")
    }

    /// The application server's key and certificate (seed 002: generated on the guest).
    pub fn appserver_key_path(&self) -> PathBuf {
        self.0.join("var/ksys/appserver/key.pem")
    }

    pub fn appserver_cert_path(&self) -> PathBuf {
        self.0.join("var/ksys/appserver/cert.pem")
    }

    /// Where the application server listens (`IP:PORT`), while it runs.
    pub fn appserver_endpoint_path(&self) -> PathBuf {
        self.0.join("var/ksys/appserver/endpoint")
    }

    pub fn create(&self) -> Result<()> {
        for dir in ["var/ksys/config", "var/ksys/log", "var/ksys/appserver"] {
            std::fs::create_dir_all(self.0.join(dir)).map_err(|e| io_error(&self.0.join(dir), e))?;
        }
        Ok(())
    }

    /// The configuration; an absent file is an empty one (no application to monitor).
    pub fn load(&self) -> Result<HaMonitoring> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| VmrmError::invalid(format!("{} is not a valid configuration: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HaMonitoring::default()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Writes the configuration whole (a temporary file renamed over the old one).
    pub fn save(&self, cfg: &HaMonitoring) -> Result<()> {
        self.create()?;
        let path = self.config_path();
        let text = toml::to_string(cfg).map_err(VmrmError::internal)?;
        let tmp = path.with_extension("toml.new");
        std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }
}

pub(super) fn io_error(path: &Path, e: std::io::Error) -> VmrmError {
    VmrmError::internal(format!("{}: {e}", path.display()))
}
