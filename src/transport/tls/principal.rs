//! Who is calling: the principal a client certificate of the cluster's CA names. The certificate
//! carries it as URI subject alternative names, written by [`super::issue`] and read here:
//! `vmrm:name:ctl-1`, one `vmrm:role:…` per role, `vmrm:host:host-1` for the host a server unit
//! or VIOS belongs to, and `vmrm:vm:vm-1-1` per VM an operator may act on. The chain itself is
//! verified by TLS before any of this is read; what is read is still checked (a name is a name,
//! a role one this version knows), and a certificate that names no role grants nothing.
use crate::domain::names::{HostName, NodeName, VmName};
use crate::error::{Result, VmrmError, quote};
use std::collections::BTreeSet;
use std::fmt;

/// The URI scheme of every vmrm name in a certificate.
pub const URI_PREFIX: &str = "vmrm:";

/// What a principal may be: a node's roles (the ones its config plays) and the people's roles
/// (seed 001: administrator, operator, monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Runs the FDEs and the admin API (always with an HSDB member).
    Controller,
    /// A Raft member of the HSDB.
    Hsdb,
    Hmc,
    /// A host's hypervisor: the server unit (and the VMs it runs, whose agents speak through it).
    ServerUnit,
    /// A VIOS and its host monitor.
    Vios,
    San,
    /// Everything an operator of the cluster may do.
    Admin,
    /// Queries, and actions on the VMs the certificate names.
    Operator,
    /// Queries only.
    Monitor,
}

impl Role {
    /// Roles a person holds, as opposed to a node.
    pub const PEOPLE: [Role; 3] = [Role::Admin, Role::Operator, Role::Monitor];
}

/// A caller, from its verified certificate (or everyone, on a node that serves plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// The host a server unit or VIOS certificate is bound to.
    pub host: Option<HostName>,
    /// The VMs an operator may act on.
    pub vms: BTreeSet<VmName>,
    /// Plaintext serving: no caller is known, every call is allowed (the explicit insecure mode).
    pub unchecked: bool,
}

impl Principal {
    /// The caller on a node serving without TLS.
    pub fn unchecked() -> Self {
        Self { name: "(insecure)".into(), roles: BTreeSet::new(), host: None, vms: BTreeSet::new(), unchecked: true }
    }

    /// A caller without a certificate, on a call that needs none (the health check).
    pub fn anonymous() -> Self {
        Self { name: "(anonymous)".into(), roles: BTreeSet::new(), host: None, vms: BTreeSet::new(), unchecked: false }
    }

    pub fn has(&self, role: Role) -> bool {
        self.unchecked || self.roles.contains(&role)
    }

    /// Whether the principal may act on VM `vm`: an administrator (or a controller acting for
    /// one) on every VM, an operator on the VMs its certificate names.
    pub fn may_act_on(&self, vm: &str) -> bool {
        self.has(Role::Admin)
            || self.has(Role::Controller)
            || (self.has(Role::Operator) && self.vms.iter().any(|v| v.as_str() == vm))
    }

    /// The principal the URIs of a certificate name, or why they name none.
    pub fn from_uris<'a>(uris: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut name = None;
        let mut p = Self::anonymous();
        for uri in uris {
            let Some(rest) = uri.strip_prefix(URI_PREFIX) else { continue };
            let (kind, value) = rest
                .split_once(':')
                .ok_or_else(|| VmrmError::invalid(format!("certificate URI `{}` has no value", quote(uri))))?;
            match kind {
                "name" => name = Some(NodeName::parse(value)?.to_string()),
                "role" => {
                    let role = value
                        .parse::<Role>()
                        .map_err(|_| VmrmError::invalid(format!("certificate role `{}` is unknown", quote(value))))?;
                    p.roles.insert(role);
                }
                "host" => p.host = Some(HostName::parse(value)?),
                "vm" => {
                    p.vms.insert(VmName::parse(value)?);
                }
                _ => return Err(VmrmError::invalid(format!("certificate URI `{}` is unknown", quote(uri)))),
            }
        }
        p.name = name.ok_or_else(|| VmrmError::invalid("the certificate names no vmrm principal"))?;
        Ok(p)
    }

    /// The URIs that name this principal in its certificate (the inverse of [`Self::from_uris`]).
    pub fn uris(&self) -> Vec<String> {
        let mut out = vec![format!("{URI_PREFIX}name:{}", self.name)];
        out.extend(self.roles.iter().map(|r| format!("{URI_PREFIX}role:{r}")));
        out.extend(self.host.iter().map(|h| format!("{URI_PREFIX}host:{h}")));
        out.extend(self.vms.iter().map(|v| format!("{URI_PREFIX}vm:{v}")));
        out
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<String> = self.roles.iter().map(Role::to_string).collect();
        write!(f, "{} ({})", self.name, roles.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_survives_its_certificate_uris() {
        let p = Principal {
            name: "bob".into(),
            roles: [Role::Operator].into(),
            host: None,
            vms: [VmName::parse("vm-1-1").unwrap(), VmName::parse("vm-2-1").unwrap()].into(),
            unchecked: false,
        };
        let uris = p.uris();
        assert_eq!(Principal::from_uris(uris.iter().map(String::as_str)).unwrap(), p);
        assert!(p.may_act_on("vm-1-1") && !p.may_act_on("vm-1-2"));
    }

    #[test]
    fn foreign_uris_are_ignored_and_bad_vmrm_ones_refused() {
        let p = Principal::from_uris(["https://example.com", "vmrm:name:ctl-1", "vmrm:role:controller"]).unwrap();
        assert_eq!(p.roles, [Role::Controller].into());
        for bad in [
            vec!["vmrm:role:controller"],
            vec!["vmrm:name:ctl-1", "vmrm:role:root"],
            vec!["vmrm:name:../x"],
            vec!["vmrm:name:a", "vmrm:vm:/tmp/x"],
            vec!["vmrm:name:a", "vmrm:colour:red"],
            vec!["vmrm:name"],
        ] {
            assert!(Principal::from_uris(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_grant_what_they_name() {
        let monitor = Principal::from_uris(["vmrm:name:m", "vmrm:role:monitor"]).unwrap();
        assert!(!monitor.may_act_on("vm-1-1") && !monitor.has(Role::Admin));
        let admin = Principal::from_uris(["vmrm:name:a", "vmrm:role:admin"]).unwrap();
        assert!(admin.may_act_on("vm-1-1"));
        assert!(Principal::unchecked().has(Role::Hsdb));
    }
}
