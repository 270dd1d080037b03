//! The wire's enums and the domain's, variant for variant. The controller fills replies from
//! domain values; a client (ksysmgr, or anything generated from `proto/`) reads the enum and
//! never a sentence. A number the wire does not know, or the `…_UNSPECIFIED` zero, is refused
//! where a request carries it and shown as `unknown (N)` where a reply does.
use crate::domain;
use crate::error::{Result, VmrmError};
use crate::logic::app_engine::{AppState, Color};
use crate::pb;

/// A domain enum that travels as a wire enum: the number in a message, checked on the way in.
pub trait WireEnum: Sized {
    /// Reads the number a message carries; the zero value and unknown numbers are refused.
    fn from_wire(field: &str, raw: i32) -> Result<Self>;
}

/// Declares that the domain enum `$domain` and the wire enum `pb::$wire` have the same variants.
macro_rules! mirror {
    ($domain:ty => $wire:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for pb::$wire {
            fn from(value: $domain) -> Self {
                match value {
                    $(<$domain>::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$domain> for i32 {
            fn from(value: $domain) -> Self {
                pb::$wire::from(value) as i32
            }
        }

        impl WireEnum for $domain {
            fn from_wire(field: &str, raw: i32) -> Result<Self> {
                match pb::$wire::try_from(raw) {
                    $(Ok(pb::$wire::$variant) => Ok(<$domain>::$variant),)+
                    _ => Err(unknown(field, raw, &[$(pb::$wire::$variant.as_str_name()),+])),
                }
            }
        }
    };
}

fn unknown(field: &str, raw: i32, known: &[&str]) -> VmrmError {
    VmrmError::invalid(format!("{field}: {raw} is not one of {}", known.join(", ")))
}

/// How a reply's enum number reads in ksysmgr's text: the domain's (the seed's) name.
pub fn shown<D: WireEnum + std::fmt::Display>(raw: i32) -> String {
    D::from_wire("", raw).map_or_else(|_| format!("unknown ({raw})"), |d| d.to_string())
}

mirror!(domain::VmState => VmState { Init, Ready, ReadyToMove, RestartFailed });
mirror!(domain::VmStatus => VmStatus { NoOperationInProgress, RestartInProgress, LpmInProgress });
mirror!(domain::Priority => Priority { High, Medium, Low });
mirror!(domain::LparState => LparState {
    Running,
    NotActivated,
    OpenFirmware,
    ShuttingDown,
    Error,
    NotAvailable,
    MigratingRunning,
    MigratingNotActivated,
    HardwareDiscovery,
});
mirror!(domain::HostState => HostState { Operating, PowerOff, PoweringOff, NoConnection, Error, Initializing });
mirror!(domain::DetectionSpeed => DetectionSpeed { Fast, Normal, Slow });
mirror!(domain::RestartPolicy => RestartPolicy { Auto, AdvisoryMode });
mirror!(domain::NotificationLevel => NotificationLevel { Disable, Low, Medium, High });
mirror!(domain::RestartPhase => RestartPhase { Locked, Fenced, Completed, Failed });
mirror!(Color => AppStatus { Green, Yellow, Red });
mirror!(AppState => AppState {
    NotMonitored,
    Unset,
    Normal,
    Failing,
    ToStop,
    NotStoppable,
    ToStart,
    NotStartable,
    Abnormal,
    Failure,
});
mirror!(domain::Severity => Severity { Critical, Warning, Maintenance, Informational });
mirror!(domain::SuClusterStatus => SuClusterStatus { Normal, Warning, Error, Inactive });
mirror!(domain::UnitHeartbeat => UnitHeartbeat { Normal, NotAccessible });
mirror!(domain::MonjvKind => MonjvKind { Vm, Migration });
mirror!(domain::AffinityKind => AffinityKind { Collocation, Anticollocation, Workgroup });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_value_goes_out_and_comes_back() {
        let wire = i32::from(domain::VmState::ReadyToMove);
        assert_eq!(domain::VmState::from_wire("state", wire).unwrap(), domain::VmState::ReadyToMove);
        assert_eq!(shown::<domain::LparState>(i32::from(domain::LparState::NotActivated)), "Not Activated");
    }

    #[test]
    fn zero_and_unknown_numbers_are_refused_with_the_known_names() {
        let e = domain::Priority::from_wire("priority", 0).unwrap_err().to_string();
        assert!(e.contains("priority: 0 is not one of PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW"), "{e}");
        assert!(domain::Priority::from_wire("priority", 99).is_err());
        assert_eq!(shown::<domain::Priority>(99), "unknown (99)");
    }
}
