//! `vmrmd certs`: the cluster's certificate authority on the command line — create the CA,
//! issue a node's certificate from its config (its roles and addresses), a person's with a role
//! (and an operator's VMs), or every certificate of the container cluster at once.
use crate::config::NodeConfig;
use crate::domain::names::{NodeName, VmName};
use crate::error::{Result, VmrmError};
use crate::launcher::{Topology, certs};
use crate::transport::tls::issue::Authority;
use crate::transport::tls::{Principal, Role};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum CertsCmd {
    /// Create the cluster CA in DIR (never replaces one).
    Ca {
        #[arg(long)]
        dir: PathBuf,
        /// The cluster's name, in the CA's subject.
        #[arg(long, default_value = "vmrm")]
        cluster: String,
    },
    /// Issue the certificate of the node whose config is FILE, from the CA in DIR.
    Node {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        config: PathBuf,
    },
    /// Issue a person's certificate, from the CA in DIR.
    User {
        name: String,
        /// admin, operator or monitor
        #[arg(long)]
        role: Role,
        /// A VM an operator may act on (repeat for more).
        #[arg(long = "vm")]
        vms: Vec<String>,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue every certificate of the container clusters (HA and DR) into DIR (an existing CA is
    /// kept; only the certificates it lacks are issued).
    Compose {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `cmd`: the lines to print.
pub fn run(cmd: CertsCmd) -> Result<Vec<String>> {
    match cmd {
        CertsCmd::Ca { dir, cluster } => {
            Authority::create(&cluster)?.save(&dir)?;
            Ok(vec![format!("CA of cluster {cluster} created in {}", dir.display())])
        }
        CertsCmd::Node { dir, config } => {
            let cfg = NodeConfig::load(&config)?;
            let (cert, _) = Authority::load(&dir)?.issue_into(&dir, &cfg.principal(), &cfg.reached_at())?;
            Ok(vec![format!("{}: {} for {}", cfg.principal(), cert.display(), cfg.reached_at().join(", "))])
        }
        CertsCmd::User { name, role, vms, dir } => {
            if !Role::PEOPLE.contains(&role) {
                return Err(VmrmError::invalid(format!(
                    "{role} is a node's role: a person is admin, operator or monitor"
                )));
            }
            if !vms.is_empty() && role != Role::Operator {
                return Err(VmrmError::invalid("--vm names an operator's VMs: only with --role operator"));
            }
            let mut who = Principal::anonymous();
            who.name = NodeName::parse(&name)?.to_string();
            who.roles = [role].into();
            who.vms = VmName::all(&vms)?.into_iter().collect();
            let (cert, _) = Authority::load(&dir)?.issue_into(&dir, &who, &[])?;
            Ok(vec![format!("{who}: {}", cert.display())])
        }
        CertsCmd::Compose { out } => {
            certs::issue_all(&Topology::compose(), &out)?;
            certs::issue_missing(&Authority::load(&out)?, &Topology::compose_two_sites(), &out)?;
            Ok(vec![format!("the container clusters' certificates (HA and DR) are in {}", out.display())])
        }
    }
}
