//! Monitoring job variables (seed 004, VM2000's MONJV; seed 001 §4.4): 256 bytes a watcher
//! reads to follow a VM or a migration. The system part (bytes 1–128) is written by the system
//! only; the user part (129–256) is the user's. A MONJV outlives what it monitors: when the VM
//! is terminated — after a migration too, on the source — it is kept, its status `$T`, and no
//! longer protected. An optional password guards reading and writing it.
//!
//! System part, by byte (1-based, as the seed counts):
//! ```text
//!  1–3  status, left-aligned ($R …)      17     'V' (a VM2000 MONJV)
//!  4    '0'                              18–20  system sequence number, 001–999
//!  5–8  spaces                           21–36  start of monitoring, UTC yyyy-mm-ddhhmmss
//!  9–12 catalog id of the host           71–78  VM name (not for $S and $A)
//!  13–16 spaces                          79–81  VM index, e.g. 002
//!                                        82–86  guest status, 87–94 migration status
//! ```
//! The seed's table of status values did not survive; what its example procedure shows, and
//! what this module therefore uses for a VM: `$R` the VM runs, `$T` it was terminated (a
//! migration's source included), and — an inference — `$A` it ended abnormally (lost with its
//! host). A migration's own MONJV (`/MIGRATE-VM … MONJV=`) carries seed 001's `$S` accepted,
//! `$R` running, `$T` done, `$TW` done with warnings (the pause exceeded the maximum downtime),
//! `$AE` aborted, `$AF` rejected.
use crate::error::{Result, VmrmError};
use serde::{Deserialize, Serialize};
use strum::Display;

pub const MONJV_BYTES: usize = 256;
/// Bytes 1..=128 are the system's.
pub const SYSTEM_PART: usize = 128;

/// What a MONJV follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MonjvKind {
    /// A VM, from its definition on (`/ACTIVATE-VM-DEFINITION … MONJV=`).
    Vm,
    /// One live migration (`/MIGRATE-VM … MONJV=`).
    Migration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonjvRecord {
    pub name: String,
    pub vm: String,
    pub kind: MonjvKind,
    /// A hash of the password, if one was set (the password itself is never stored).
    pub password: Option<PasswordHash>,
    /// 256 bytes.
    pub bytes: Vec<u8>,
    /// The system still updates it; its system part and the record itself are protected.
    pub monitoring: bool,
    pub changed_ms: i64,
}

/// What the system part says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPart {
    pub status: String,
    /// The host's catalog id (4 characters).
    pub catalog: String,
    pub sequence: u32,
    /// Start of monitoring, ms since the Unix epoch.
    pub started_ms: i64,
    pub vm_name: String,
    pub vm_index: u32,
    /// Guest status, e.g. RUN, NTERM, ABORT.
    pub guest: String,
    /// Migration status, e.g. MIGR-OUT.
    pub migration: String,
}

fn put(bytes: &mut [u8], first: usize, last: usize, text: &str) {
    let field = &mut bytes[first - 1..last];
    field.fill(b' ');
    for (slot, b) in field.iter_mut().zip(text.bytes()) {
        *slot = b;
    }
}

fn get(bytes: &[u8], first: usize, last: usize) -> String {
    String::from_utf8_lossy(&bytes[first - 1..last]).trim_end().to_string()
}

/// `yyyy-mm-ddhhmmss` in UTC (civil date from days since 1970, H. Hinnant's algorithm).
pub fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

impl SystemPart {
    /// The 128 bytes of the system part.
    pub fn encode(&self) -> [u8; SYSTEM_PART] {
        let mut b = [b' '; SYSTEM_PART];
        put(&mut b, 1, 3, &self.status);
        put(&mut b, 4, 4, "0");
        put(&mut b, 9, 12, &self.catalog);
        put(&mut b, 17, 17, "V");
        put(&mut b, 18, 20, &format!("{:03}", self.sequence % 1000));
        put(&mut b, 21, 36, &utc_stamp(self.started_ms));
        if !matches!(self.status.as_str(), "$S" | "$A") {
            put(&mut b, 71, 78, &self.vm_name);
        }
        put(&mut b, 79, 81, &format!("{:03}", self.vm_index % 1000));
        put(&mut b, 82, 86, &self.guest);
        put(&mut b, 87, 94, &self.migration);
        b
    }
}

/// The status in bytes 1–3.
pub fn status(bytes: &[u8]) -> String {
    get(bytes, 1, 3)
}

/// A named field of the system part, for display: (label, value).
pub fn fields(bytes: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("Status", get(bytes, 1, 3)),
        ("Catalog_id", get(bytes, 9, 12)),
        ("Type", get(bytes, 17, 17)),
        ("Sequence", get(bytes, 18, 20)),
        ("Monitoring_since", get(bytes, 21, 36)),
        ("VM_name", get(bytes, 71, 78)),
        ("VM_index", get(bytes, 79, 81)),
        ("Guest_status", get(bytes, 82, 86)),
        ("Migration_status", get(bytes, 87, 94)),
        ("User_part", get(bytes, SYSTEM_PART + 1, MONJV_BYTES)),
    ]
}

/// How a MONJV's password is kept: PBKDF2-HMAC-SHA256 with a random salt of its own, slow
/// enough that a copy of the HSDB does not give the passwords away. Rows written before it kept
/// a fast 64-bit hash keyed by the MONJV's name; they are still checked (and replaced when the
/// password is set again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PasswordHash {
    Pbkdf2 { salt: String, iterations: u32, hash: String },
    Legacy(u64),
}

/// PBKDF2 rounds (OWASP's 2023 figure for PBKDF2-HMAC-SHA256 is 600,000 for login passwords; a
/// MONJV is checked on every watch and query, and its password guards job status, not an account).
const PBKDF2_ROUNDS: u32 = 100_000;

impl PasswordHash {
    /// A new hash of `password`, with a fresh salt.
    pub fn new(password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        let mut hash = [0u8; 32];
        let rounds = std::num::NonZeroU32::new(PBKDF2_ROUNDS).expect("a positive count");
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, &salt, password.as_bytes(), &mut hash);
        Self::Pbkdf2 { salt: super::hex::encode(&salt), iterations: PBKDF2_ROUNDS, hash: super::hex::encode(&hash) }
    }

    /// Whether `password` is the one hashed (MONJV `name` keyed the old hashes).
    pub fn matches(&self, name: &str, password: &str) -> bool {
        match self {
            Self::Pbkdf2 { salt, iterations, hash } => {
                let (Some(salt), Some(hash), Some(rounds)) =
                    (super::hex::decode(salt), super::hex::decode(hash), std::num::NonZeroU32::new(*iterations))
                else {
                    return false;
                };
                let algorithm = ring::pbkdf2::PBKDF2_HMAC_SHA256;
                ring::pbkdf2::verify(algorithm, rounds, &salt, password.as_bytes(), &hash).is_ok()
            }
            Self::Legacy(hash) => legacy_hash(name, password) == *hash,
        }
    }
}

/// The hash rows kept before [`PasswordHash::Pbkdf2`].
fn legacy_hash(name: &str, password: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(password.as_bytes(), xxhash_rust::xxh3::xxh3_64(name.as_bytes()))
}

impl MonjvRecord {
    pub fn new(name: &str, vm: &str, kind: MonjvKind, password: Option<&str>, system: &SystemPart) -> Self {
        let mut bytes = vec![b' '; MONJV_BYTES];
        bytes[..SYSTEM_PART].copy_from_slice(&system.encode());
        Self {
            name: name.into(),
            vm: vm.into(),
            kind,
            password: password.filter(|p| !p.is_empty()).map(PasswordHash::new),
            bytes,
            monitoring: true,
            changed_ms: crate::now_ms(),
        }
    }

    /// Access with `password` (none needed when the MONJV has none).
    pub fn check_password(&self, password: &str) -> Result<()> {
        match &self.password {
            Some(hash) if !hash.matches(&self.name, password) => Err(VmrmError::precondition(format!(
                "MONJV {}: the password is missing or wrong (give it with password=)",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// The system's update of the system part; monitoring ends with `end`.
    pub fn set_system(&mut self, system: &SystemPart, end: bool) {
        self.bytes[..SYSTEM_PART].copy_from_slice(&system.encode());
        self.monitoring &= !end;
        self.changed_ms = crate::now_ms();
    }

    /// The system part as it is now, to change a field of it.
    pub fn system(&self) -> SystemPart {
        let b = &self.bytes;
        let started_ms = self.changed_ms;
        SystemPart {
            status: get(b, 1, 3),
            catalog: get(b, 9, 12),
            sequence: get(b, 18, 20).parse().unwrap_or(1),
            started_ms: parse_stamp(&get(b, 21, 36)).unwrap_or(started_ms),
            vm_name: get(b, 71, 78),
            vm_index: get(b, 79, 81).parse().unwrap_or(0),
            guest: get(b, 82, 86),
            migration: get(b, 87, 94),
        }
    }

    /// The user writes `text` into the user part (bytes 129–256; the rest padded with spaces).
    pub fn write_user(&mut self, text: &str) -> Result<()> {
        if text.len() > MONJV_BYTES - SYSTEM_PART {
            return Err(VmrmError::invalid(format!(
                "the user part holds {} bytes; {} given",
                MONJV_BYTES - SYSTEM_PART,
                text.len()
            )));
        }
        put(&mut self.bytes, SYSTEM_PART + 1, MONJV_BYTES, text);
        self.changed_ms = crate::now_ms();
        Ok(())
    }
}

/// Parses [`utc_stamp`]'s format back (for a field kept while another one changes).
fn parse_stamp(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(10..12)?, num(12..14)?, num(14..16)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000)
}

/// Bytes `from..=to` (1-based) of a MONJV, the range a watcher waits on.
pub fn range(bytes: &[u8], from: usize, to: usize) -> Result<&[u8]> {
    if from == 0 || from > to || to > MONJV_BYTES {
        return Err(VmrmError::invalid(format!("bytes {from}-{to}: a range within 1-{MONJV_BYTES}")));
    }
    Ok(&bytes[from - 1..to.min(bytes.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> SystemPart {
        SystemPart {
            status: "$R".into(),
            catalog: "A1B2".into(),
            sequence: 7,
            started_ms: 1_575_626_822_000,
            vm_name: "VM12PROD".into(),
            vm_index: 12,
            guest: "RUN".into(),
            migration: String::new(),
        }
    }

    #[test]
    fn the_system_part_sits_at_the_seeds_bytes() {
        let b = running().encode();
        assert_eq!(&b[0..4], b"$R 0");
        assert_eq!(&b[8..12], b"A1B2");
        assert_eq!(b[16], b'V');
        assert_eq!(&b[17..20], b"007");
        assert_eq!(&b[20..36], b"2019-12-06100702", "the seed's IPL: 2019-12-06 10:07:02 UTC");
        assert_eq!(&b[70..78], b"VM12PROD");
        assert_eq!(&b[78..81], b"012");
        assert_eq!(&b[81..86], b"RUN  ");
        assert_eq!(&b[86..94], b"        ");
        let accepted = SystemPart { status: "$S".into(), ..running() }.encode();
        assert_eq!(&accepted[70..78], b"        ", "no VM name for $S");
    }

    #[test]
    fn the_user_part_is_the_users_and_the_password_guards_it() {
        let mut jv = MonjvRecord::new("MONJV.VM12", "VM12PROD", MonjvKind::Vm, Some("secret"), &running());
        assert_eq!(jv.bytes.len(), MONJV_BYTES);
        jv.write_user("backup done").unwrap();
        assert_eq!(&jv.bytes[128..139], b"backup done");
        assert!(jv.write_user(&"x".repeat(129)).is_err());
        assert!(jv.check_password("secret").is_ok());
        assert!(jv.check_password("guess").is_err());
        let again = MonjvRecord::new("MONJV.VM12", "VM12PROD", MonjvKind::Vm, Some("secret"), &running());
        assert_ne!(jv.password, again.password, "each hash has a salt of its own");
        let stored = serde_json::to_string(&jv.password).unwrap();
        assert!(!stored.contains("secret") && stored.contains("\"iterations\":100000"), "{stored}");
        assert_eq!(status(&jv.bytes), "$R");
    }

    /// A row written with the old 64-bit hash still decodes, and its password still works.
    #[test]
    fn an_old_rows_password_is_still_checked() {
        let mut jv = MonjvRecord::new("MONJV.OLD", "VM1", MonjvKind::Vm, None, &running());
        jv.password = Some(PasswordHash::Legacy(legacy_hash("MONJV.OLD", "secret")));
        let row: MonjvRecord = serde_json::from_str(&serde_json::to_string(&jv).unwrap()).unwrap();
        assert_eq!(row.password, jv.password);
        assert!(row.check_password("secret").is_ok());
        assert!(row.check_password("guess").is_err());
    }

    #[test]
    fn a_migration_marks_and_terminates_the_source_monjv() {
        let mut jv = MonjvRecord::new("M", "VM12PROD", MonjvKind::Vm, None, &running());
        let mut system = jv.system();
        assert_eq!(system, running());
        system.migration = "MIGR-OUT".into();
        jv.set_system(&system, false);
        assert_eq!(&jv.bytes[86..94], b"MIGR-OUT");
        system.status = "$T".into();
        jv.set_system(&system, true);
        assert!(!jv.monitoring);
        assert_eq!(fields(&jv.bytes)[0], ("Status", "$T".to_string()));
    }

    #[test]
    fn ranges_are_checked() {
        let b = [b' '; MONJV_BYTES];
        assert_eq!(range(&b, 1, 3).unwrap().len(), 3);
        assert!(range(&b, 0, 3).is_err());
        assert!(range(&b, 4, 3).is_err());
        assert!(range(&b, 1, 257).is_err());
    }
}
