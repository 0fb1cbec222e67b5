//! Reading the web client's backup file as a stream: `{"executions": [...], "chatMessages":
//! [...], "settings": {...}}`, as its export function writes it.
//!
//! Each element of `executions` is handed on as its raw JSON text, one at a time, so a file
//! of any size is read with memory bounded by one chunk of records; every other key
//! (`chatMessages`, `settings`, anything the client adds later) is skipped without being
//! kept. The text of each record is judged later by the same parser as the sync route.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The key of the records in a backup file.
pub const EXECUTIONS: &str = "executions";

/// Reads a backup file from `reader`, giving each record's JSON text to `sink` in order.
///
/// Returns `Ok(false)` when the file's first JSON value is an object without an
/// `executions` key: then it is not a backup (an NDJSON file's first record, say), and
/// `sink` was never called. A `sink` error stops the reading and is returned as a custom
/// JSON error.
pub fn read<R, S>(reader: R, sink: &mut S) -> Result<bool, serde_json::Error>
where
    R: Read,
    S: FnMut(String) -> Result<(), String>,
{
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let found = (&mut deserializer).deserialize_map(BackupVisitor { sink })?;
    if found {
        deserializer.end()?;
    }
    Ok(found)
}

/// The top-level object: `executions` is streamed, everything else skipped.
struct BackupVisitor<'s, S> {
    sink: &'s mut S,
}

impl<'de, S> Visitor<'de> for BackupVisitor<'_, S>
where
    S: FnMut(String) -> Result<(), String>,
{
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the web client's backup object with an \"executions\" array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == EXECUTIONS && !found {
                map.next_value_seed(Executions {
                    sink: &mut *self.sink,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The `executions` array, element by element.
struct Executions<'s, S> {
    sink: &'s mut S,
}

impl<'de, S> DeserializeSeed<'de> for Executions<'_, S>
where
    S: FnMut(String) -> Result<(), String>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S> Visitor<'de> for Executions<'_, S>
where
    S: FnMut(String) -> Result<(), String>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of execution records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Box<RawValue>>()? {
            (self.sink)(String::from(Box::<str>::from(record))).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> (Result<bool, serde_json::Error>, Vec<String>) {
        let mut records = Vec::new();
        let result = read(text.as_bytes(), &mut |record| {
            records.push(record);
            Ok(())
        });
        (result, records)
    }

    #[test]
    fn records_are_handed_on_and_other_keys_skipped() {
        let text = r#"{"chatMessages": [{"text": "hi"}],
                      "executions": [{"id": "a"}, 7, {"id": "b"}],
                      "settings": {"theme": "dark"}}"#;
        let (result, records) = collect(text);
        assert!(result.unwrap());
        assert_eq!(records, [r#"{"id": "a"}"#, "7", r#"{"id": "b"}"#]);
    }

    #[test]
    fn an_object_without_executions_is_not_a_backup() {
        let (result, records) = collect("{\"id\": \"a\", \"provider\": \"p\"}\n{\"id\": \"b\"}\n");
        assert!(!result.unwrap());
        assert!(records.is_empty());
    }

    #[test]
    fn executions_that_are_not_an_array_or_a_truncated_file_are_errors() {
        assert!(collect(r#"{"executions": {"id": "a"}}"#).0.is_err());
        assert!(collect(r#"{"executions": [{"id": "a"}, {"id""#).0.is_err());
        assert!(collect("[1, 2]").0.is_err());
    }

    #[test]
    fn a_sink_error_stops_the_reading() {
        let mut calls = 0;
        let result = read(r#"{"executions": [1, 2, 3]}"#.as_bytes(), &mut |_| {
            calls += 1;
            Err("stopped".to_owned())
        });
        assert!(result.unwrap_err().to_string().contains("stopped"));
        assert_eq!(calls, 1);
    }
}
