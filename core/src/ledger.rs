//! What a worker and a verifier both compute of a log record as its storage holds it: the
//! record's canonical bytes and digest, its payloads' digests, and the leaf report a worker
//! sends with `DONE` (the broker appends it to the verifiable log, `bonnie verify` recomputes
//! it from storage and compares).
//!
//! # Canonical bytes of a log record, version 1
//!
//! The record is a JSON object. Every value that is not an object is named by its dotted path
//! (`{"a":{"b":1}}` and `{"a.b":1}` both give the path `a.b`: Elasticsearch may hand back a
//! field whose name has dots as nested objects, so the two spellings are one record); an empty
//! object is a value of its own. The canonical bytes are the compact JSON text (as serde_json
//! writes it) of one object of these paths, sorted by their UTF-8 bytes; objects inside arrays
//! are canonical objects themselves, arrays keep their order. Storage-added fields are not part
//! of the record: a storage hands the record back as it was appended.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// One leaf a worker reports for a job it stored: the job id, the SHA-256 of the stored log
/// record's canonical bytes and the SHA-256 of each payload it names, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafReport {
    /// The job id.
    pub id: String,
    /// SHA-256 of the record's canonical bytes, hex.
    pub record_digest: String,
    /// SHA-256 of each payload the record names, hex, sorted, each once.
    pub payload_digests: Vec<String>,
}

impl LeafReport {
    /// The leaf of the log record `body` (JSON text, as the storage holds it) of job `id`.
    pub fn of_stored(id: &str, body: &str) -> Result<LeafReport, String> {
        let record: Value = serde_json::from_str(body)
            .map_err(|e| format!("the stored log record of job {id} is not JSON: {e}"))?;
        if !record.is_object() {
            return Err(format!(
                "the stored log record of job {id} is not a JSON object"
            ));
        }
        Ok(LeafReport {
            id: id.to_string(),
            record_digest: hex(&Sha256::digest(canonical_bytes(&record))),
            payload_digests: crate::payload::digests_of_record(&record),
        })
    }

    /// The digests as bytes, or which one is not 64 hex digits.
    pub fn digests(&self) -> Result<([u8; 32], Vec<[u8; 32]>), String> {
        let record = from_hex(&self.record_digest)
            .ok_or_else(|| format!("job {}: record digest {:?}", self.id, self.record_digest))?;
        let payloads = self
            .payload_digests
            .iter()
            .map(|d| from_hex(d).ok_or_else(|| format!("job {}: payload digest {d:?}", self.id)))
            .collect::<Result<_, _>>()?;
        Ok((record, payloads))
    }
}

/// The canonical bytes (version 1, see the module docs) of a record.
pub fn canonical_bytes(record: &Value) -> Vec<u8> {
    // serde_json writes a `Value` without failing: its keys are strings.
    serde_json::to_vec(&canonical(record)).unwrap_or_default()
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            let mut paths = Vec::new();
            flatten("", fields, &mut paths);
            paths.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            // Inserted in order: sorted whether or not serde_json keeps insertion order.
            let mut out = Map::new();
            for (path, value) in paths {
                out.insert(path, value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn flatten(prefix: &str, fields: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (key, value) in fields {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten(&path, inner, out),
            other => out.push((path, canonical(other))),
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_and_nested_objects_are_one_record_in_any_key_order() {
        let flat =
            r#"{"event":"Login","vnd.cmu.sessionId":"s1","payloads":[{"uid":1,"digest":"d"}]}"#;
        let nested = r#"{"vnd":{"cmu":{"sessionId":"s1"}},"payloads":[{"digest":"d","uid":1}],"event":"Login"}"#;
        let a = LeafReport::of_stored("j", flat).unwrap();
        let b = LeafReport::of_stored("j", nested).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            canonical_bytes(&serde_json::from_str(flat).unwrap()),
            br#"{"event":"Login","payloads":[{"digest":"d","uid":1}],"vnd.cmu.sessionId":"s1"}"#
        );
        let changed =
            r#"{"event":"Login","vnd.cmu.sessionId":"s2","payloads":[{"uid":1,"digest":"d"}]}"#;
        assert_ne!(a, LeafReport::of_stored("j", changed).unwrap());
    }

    #[test]
    fn payload_digests_are_read_from_the_record_and_parse_back() {
        let digest = "ab".repeat(32);
        let body = format!(
            r#"{{"event":"MessageAppend","payload_digest":"{digest}","payloads":[{{"digest":"{digest}"}}]}}"#
        );
        let leaf = LeafReport::of_stored("j", &body).unwrap();
        assert_eq!(leaf.payload_digests, vec![digest]);
        let (_, payloads) = leaf.digests().unwrap();
        assert_eq!(payloads, vec![[0xab; 32]]);
        assert!(LeafReport::of_stored("j", "[1]").is_err());
    }
}
