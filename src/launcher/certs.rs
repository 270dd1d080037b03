//! A topology's certificates: the cluster CA, one certificate per node (its roles and the
//! addresses it is reached at, from its config) and the people of a demonstration cluster — an
//! administrator, a monitor, and an operator of the first host's VMs. `vmrmd local` and the
//! tests issue them into the data directory; the container cluster's are issued once on the
//! machine that builds its image (`vmrmd certs --compose`), never committed.
use super::Topology;
use crate::domain::names::VmName;
use crate::error::Result;
use crate::transport::tls::issue::{Authority, CA_CERT};
use crate::transport::tls::{Principal, Role, Security, TlsFiles};
use std::path::Path;

/// The administrator's certificate name (`ksysmgr`'s default identity).
pub const ADMIN: &str = "admin";
pub const MONITOR: &str = "monitor";
pub const OPERATOR: &str = "operator";

/// The people of `t`'s cluster.
pub fn people(t: &Topology) -> Vec<Principal> {
    let person = |name: &str, role: Role| {
        let mut p = Principal::anonymous();
        p.name = name.into();
        p.roles = [role].into();
        p
    };
    let mut operator = person(OPERATOR, Role::Operator);
    operator.vms =
        t.hosts.first().map(|h| h.vms.iter().filter_map(|v| VmName::parse(&v.name).ok()).collect()).unwrap_or_default();
    vec![person(ADMIN, Role::Admin), person(MONITOR, Role::Monitor), operator]
}

/// Issues every certificate of `t` into `out` under a new CA, unless `out` already holds one.
pub fn issue_all(t: &Topology, out: &Path) -> Result<()> {
    if out.join(CA_CERT).exists() {
        return Ok(());
    }
    let ca = Authority::create(&t.cluster_name)?;
    ca.save(out)?;
    issue_missing(&ca, t, out)
}

/// Issues, under the CA `out` holds, the certificates of `t`'s nodes and people that `out` has
/// none of yet (the DR container cluster beside the HA one: the same people, one more SAN).
pub fn issue_missing(ca: &Authority, t: &Topology, out: &Path) -> Result<()> {
    let missing = |name: &str| !TlsFiles::in_dir(out, name).cert.exists();
    for cfg in t.node_configs().into_iter().filter(|c| missing(&c.name)) {
        ca.issue_into(out, &cfg.principal(), &cfg.reached_at())?;
    }
    for who in people(t).into_iter().filter(|p| missing(&p.name)) {
        ca.issue_into(out, &who, &[])?;
    }
    Ok(())
}

/// `name`'s credentials in certificate directory `dir`.
pub fn security_of(dir: &Path, name: &str) -> Result<Security> {
    Security::load(&TlsFiles::in_dir(dir, name))
}

/// Issues a certificate for `who` from the CA in `dir` (tests: a principal of their choosing).
pub fn issue_for(dir: &Path, who: &Principal) -> Result<Security> {
    Authority::load(dir)?.issue_into(dir, who, &[])?;
    security_of(dir, &who.name)
}
