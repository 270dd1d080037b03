//! Detection settings and where they apply (seed: `ksysmgr modify system|host_group|vm`).
//! `host_failure_detection_time` is set for the system or a host group, within the profile's
//! range (seed: 90–600 s); `vm_failure_detection_speed` for the system, a host group or a VM.
//! The most specific level that sets a value wins; unset everywhere, the profile's default
//! applies (seed: 90 s, `normal`).
use super::vm_failure::{VmRule, vm_failure_detection_time};
use crate::domain::{DetectionSettings, DetectionSpeed};
use crate::error::{Result, VmrmError};
use crate::profile::Timing;
use std::time::Duration;

/// The allowed `host_failure_detection_time` of a profile: the seed's 90–600 s, scaled like
/// its default (the `fast` profile allows 1.5–10 s around its 1.5 s).
pub fn host_fdt_range(timing: &Timing) -> (Duration, Duration) {
    let default = timing.host_failure_detection_time;
    (default, default * 20 / 3)
}

/// Checks an asked `host_failure_detection_time` against the profile's range.
pub fn check_host_fdt(asked: Duration, timing: &Timing) -> Result<Duration> {
    let (min, max) = host_fdt_range(timing);
    match asked >= min && asked <= max {
        true => Ok(asked),
        false => Err(VmrmError::invalid(format!(
            "host_failure_detection_time={} is out of range: use {}-{} seconds",
            secs(asked),
            secs(min),
            secs(max)
        ))),
    }
}

/// Seconds as people write them: `90`, `1.5`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s.fract() == 0.0 {
        true => format!("{s:.0}"),
        false => format!("{s}"),
    }
}

/// The settings in force for one host group and (optionally) one VM of it.
#[derive(Debug, Clone, Copy)]
pub struct Levels {
    pub timing: Timing,
    pub system: DetectionSettings,
    pub host_group: DetectionSettings,
}

impl Levels {
    pub fn host_failure_detection_time(&self) -> Duration {
        let set = self.host_group.host_failure_detection_time.or(self.system.host_failure_detection_time);
        set.unwrap_or(self.timing.host_failure_detection_time)
    }

    /// The group's speed, or the VM's own when it sets one.
    pub fn speed(&self, vm: Option<DetectionSpeed>) -> DetectionSpeed {
        vm.or(self.host_group.vm_failure_detection_speed).or(self.system.vm_failure_detection_speed).unwrap_or_default()
    }

    /// The VM rule for a VM with its own speed setting `vm`.
    pub fn vm_rule(&self, vm: Option<DetectionSpeed>) -> VmRule {
        let vmfdt =
            vm_failure_detection_time(self.host_failure_detection_time(), self.speed(vm), self.timing.vm_threshold);
        VmRule { vmfdt, lpm_hang_after: self.timing.lpm_hang_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileName;

    fn seed() -> Timing {
        Timing::of(ProfileName::Seed)
    }

    #[test]
    fn host_time_is_checked_against_the_seed_range() {
        let s = Duration::from_secs;
        assert_eq!(check_host_fdt(s(90), &seed()).unwrap(), s(90));
        assert_eq!(check_host_fdt(s(600), &seed()).unwrap(), s(600));
        for bad in [s(89), s(601), s(0), Duration::from_millis(89_999)] {
            let e = check_host_fdt(bad, &seed()).unwrap_err().to_string();
            assert!(e.contains("90-600 seconds"), "{bad:?}: {e}");
        }
        let fast = Timing::of(ProfileName::Fast);
        assert_eq!(check_host_fdt(Duration::from_millis(2500), &fast).unwrap(), Duration::from_millis(2500));
        assert!(check_host_fdt(s(90), &fast).unwrap_err().to_string().contains("1.5-10 seconds"));
    }

    #[test]
    fn the_most_specific_level_wins() {
        let t = seed();
        let set = |fdt: Option<u64>, speed| DetectionSettings {
            host_failure_detection_time: fdt.map(Duration::from_secs),
            vm_failure_detection_speed: speed,
        };
        let defaults = Levels { timing: t, system: set(None, None), host_group: set(None, None) };
        assert_eq!(defaults.vm_rule(None).vmfdt, Duration::from_secs(190), "seed defaults: 90 + 2 × 50");
        let system = Levels { timing: t, system: set(Some(120), Some(DetectionSpeed::Slow)), ..defaults };
        assert_eq!(system.host_failure_detection_time(), Duration::from_secs(120));
        assert_eq!(system.vm_rule(None).vmfdt, Duration::from_secs(270));
        let group = Levels { host_group: set(Some(100), Some(DetectionSpeed::Fast)), ..system };
        assert_eq!(group.host_failure_detection_time(), Duration::from_secs(100));
        assert_eq!(group.vm_rule(None).vmfdt, Duration::from_secs(150));
        assert_eq!(group.vm_rule(Some(DetectionSpeed::Slow)).vmfdt, Duration::from_secs(250), "the VM's own speed");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5");
        assert_eq!(secs(Duration::from_secs(90)), "90");
    }
}
