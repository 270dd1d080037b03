//! The names of the objects vmrm manages — VMs, hosts, VIOSs, host groups, HMCs, the
//! ksyscluster, affinity groups, SU clusters — checked once, where a request or a partition definition
//! arrives, so no name deeper in the code can be empty, oversized or a path (a VM's name
//! becomes a directory of its guest files). A name is 1 to 64 letters, digits, `-`, `_` or
//! `.`, beginning with a letter, a digit or `_`: no `/`, no `..`, nothing an option parser
//! would take for a flag.
use crate::error::{Result, VmrmError, quote};
use std::fmt;

/// The longest name (seed: a host group's "logical name up to 64 characters").
pub const NAME_MAX: usize = 64;

/// Why `raw` is not a valid name of `kind`, if it is not.
fn check(raw: &str, kind: &str) -> Result<()> {
    let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let chars_ok = raw.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match (raw.is_empty(), raw.len() <= NAME_MAX && first_ok && chars_ok) {
        (true, _) => Err(VmrmError::invalid(format!("the {kind} name is required"))),
        (false, true) => Ok(()),
        (false, false) => Err(VmrmError::invalid(format!(
            "`{}` is not a valid {kind} name: use 1 to {NAME_MAX} letters, digits, '-', '_' or '.', \
             beginning with a letter, a digit or '_'",
            quote(raw)
        ))),
    }
}

macro_rules! object_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name `raw`, or why it is not one (`InvalidArgument`).
            pub fn parse(raw: &str) -> Result<Self> {
                check(raw, $kind).map(|()| Self(raw.to_string()))
            }

            /// `None` for an empty `raw` (a request's "every object"), else [`Self::parse`].
            pub fn optional(raw: &str) -> Result<Option<Self>> {
                match raw.is_empty() {
                    true => Ok(None),
                    false => Self::parse(raw).map(Some),
                }
            }

            /// Every name of a list, or the first that is not one.
            pub fn all(raw: &[String]) -> Result<Vec<Self>> {
                raw.iter().map(|r| Self::parse(r)).collect()
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

object_name!(
    /// A VM (an LPAR) — also the directory of its guest files, hence never a path.
    VmName,
    "VM"
);
object_name!(
    /// A host (a managed system, seed: `ksysmgr add host`).
    HostName,
    "host"
);
object_name!(HostGroupName, "host_group");
object_name!(ViosName, "VIOS");
object_name!(HmcName, "HMC");
object_name!(ClusterName, "ksyscluster");
object_name!(
    /// A collocation, anticollocation or workgroup.
    AffinityGroupName,
    "affinity group"
);
object_name!(SuClusterName, "SU cluster");
object_name!(
    /// A data centre of a DR cluster (seed: `ksysmgr add site`).
    SiteName,
    "site"
);
object_name!(
    /// A site's SAN as the cluster knows it (seed: a storage agent): its node name.
    StorageAgentName,
    "storage_agent"
);
object_name!(
    /// A `vmrmd` process (its config's `name`): names its log and data files.
    NodeName,
    "node"
);
object_name!(
    /// A person told of events (seed: `ksysmgr add notify user=NAME`).
    UserName,
    "user"
);
object_name!(
    /// What `query event` filters on: an event's name (VM_FAILURE_DETECTED) or its subject (a
    /// VM, host, VIOS or host group).
    EventFilter,
    "event or subject"
);

/// The names of a list as plain strings, once each was checked.
pub fn strings<N: Into<String>>(names: Vec<N>) -> Vec<String> {
    names.into_iter().map(Into::into).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_words_never_paths() {
        for ok in ["vm-1-1", "HG1", "host_2", "a", "_x", "v.1", "9lives", &"x".repeat(NAME_MAX)] {
            assert_eq!(VmName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["../vm-2-1", "/tmp/x", "a/b", "..", ".", ".hidden", "-rf", "a b", "vm\n", "é", "a\\b"] {
            let e = VmName::parse(bad).unwrap_err();
            assert!(matches!(e, VmrmError::InvalidArgument(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains("not a valid VM name"), "{e}");
        }
        let long = "x".repeat(NAME_MAX + 1);
        assert!(HostName::parse(&long).unwrap_err().to_string().contains("not a valid host name"));
        assert_eq!(HostGroupName::parse("").unwrap_err().to_string(), "the host_group name is required");
        assert!(VmName::parse(&"y".repeat(10_000)).unwrap_err().to_string().len() < 300, "the input is quoted cut");
    }

    #[test]
    fn an_empty_optional_name_is_none_and_lists_stop_at_the_first_bad_one() {
        assert_eq!(VmName::optional("").unwrap(), None);
        assert_eq!(VmName::optional("vm").unwrap().unwrap().as_str(), "vm");
        assert!(VmName::optional("../x").is_err());
        let list = |v: &[&str]| HostName::all(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(strings(list(&["h1", "h2"]).unwrap()), ["h1", "h2"]);
        assert!(list(&["h1", "h/2"]).unwrap_err().to_string().contains("h/2"));
    }
}
