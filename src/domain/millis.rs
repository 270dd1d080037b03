//! Durations as stored rows and messages carry them: whole milliseconds. In code a duration is
//! always a [`Duration`]; a field that is stored as milliseconds says so with
//! `#[serde(with = "crate::domain::millis::option")]`, and the conversion happens only here.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// A timestamp in milliseconds as people read it: `2026-12-05 03:45:01.123 UTC`.
pub fn utc(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map_or_else(|| at_ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
}

/// `Option<Duration>` as an optional number of milliseconds.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        value.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "option", default)]
        wait_ms: Option<Duration>,
    }

    #[test]
    fn durations_are_stored_as_milliseconds() {
        let row = Row { wait_ms: Some(Duration::from_millis(1_500)) };
        assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"wait_ms":1500}"#);
        assert_eq!(serde_json::from_str::<Row>(r#"{"wait_ms":1500}"#).unwrap(), row);
        assert_eq!(serde_json::from_str::<Row>(r#"{"wait_ms":null}"#).unwrap(), Row { wait_ms: None });
        assert_eq!(serde_json::from_str::<Row>("{}").unwrap(), Row { wait_ms: None });
    }
}
