//! JSON of the wire's messages (`ksysmgr -o json`): an enum field shows its value's name
//! (`READY_TO_MOVE`), not the number the generated struct holds; a number this build does not
//! know stays a number. `build.rs` puts these on every enum field.
use serde::{Serialize, Serializer};

pub fn enum_name<E, S>(raw: &i32, s: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    match E::try_from(*raw) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_i32(*raw),
    }
}

pub fn optional_enum_name<E, S>(raw: &Option<i32>, s: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    match raw {
        Some(raw) => enum_name::<E, S>(raw, s),
        None => s.serialize_none(),
    }
}

pub fn enum_names<E, S>(raw: &[i32], s: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(raw.len()))?;
    for r in raw {
        match E::try_from(*r) {
            Ok(value) => seq.serialize_element(&value)?,
            Err(_) => seq.serialize_element(r)?,
        }
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use crate::pb;

    #[test]
    fn enum_fields_read_as_names() {
        let view = pb::EventView { severity: pb::Severity::Critical as i32, ..Default::default() };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["severity"], "CRITICAL");
        let unknown = pb::EventView { severity: 42, ..Default::default() };
        assert_eq!(serde_json::to_value(&unknown).unwrap()["severity"], 42);
    }
}
