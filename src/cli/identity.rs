//! Who a command-line tool is to the cluster: `--ca`, `--cert`, `--key` (or `VMRM_CA`,
//! `VMRM_CERT`, `VMRM_KEY`), defaulting to the local datacenter's administrator, so `ksysmgr`
//! beside `vmrmd local` needs no flags; `--insecure` talks plaintext to a cluster that serves it.
use crate::error::Result;
use crate::launcher::certs::ADMIN;
use crate::transport::Security;
use crate::transport::tls::TlsFiles;
use std::path::PathBuf;

/// Where `vmrmd local` keeps its data (and its certificates, in `certs/`) by default.
pub fn local_data_dir() -> PathBuf {
    std::env::temp_dir().join("vmrm-local")
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Identity {
    /// The cluster CA's certificate [default: the local datacenter's]
    #[arg(long, env = "VMRM_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// This client's certificate [default: the local datacenter's administrator]
    #[arg(long, env = "VMRM_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// This client's private key [default: the local datacenter's administrator]
    #[arg(long, env = "VMRM_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Talk plaintext, without a certificate (only nodes configured `insecure = true` answer)
    #[arg(long, global = true)]
    pub insecure: bool,
}

impl Identity {
    /// The credentials to call with: the files given, each missing one from the local
    /// datacenter's administrator.
    pub fn security(&self) -> Result<Security> {
        if self.insecure {
            return Ok(Security::Plaintext);
        }
        let local = TlsFiles::in_dir(&local_data_dir().join("certs"), ADMIN);
        Security::load(&TlsFiles {
            ca: self.ca.clone().unwrap_or(local.ca),
            cert: self.cert.clone().unwrap_or(local.cert),
            key: self.key.clone().unwrap_or(local.key),
        })
    }
}
