//! Auditing, in two places. Every call of an authenticated client is an audit record in the
//! broker's verifiable log ([`AuditLedger`], `AUDIT` on the admin socket), kept before the call
//! is answered; the local audit log holds one JSON object a line for every request, refused or
//! not, and for what went wrong on a connection before a request was whole: what no client
//! was authenticated for stays out of the verifiable log, so that nobody without credentials
//! can make it grow. What a client sent is bounded on the way in: a string longer than
//! [`MAX_STRING`] bytes, or parameters longer than [`MAX_JSON`] bytes as JSON, is cut and
//! marked (`…[cut: <n> bytes]`, and `"cut": true` on the line), so one client cannot fill
//! either with megabyte names.

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{Mutex, PoisonError},
};

use anyhow::Context;
use bonnie_core::protocol::{AdminRequest, AuditRecord};
use serde_json::{Value, json};

/// The longest string kept whole in an audit line, in bytes.
pub const MAX_STRING: usize = 1024;

/// The longest object or array (as JSON text) kept whole in an audit line, in bytes.
pub const MAX_JSON: usize = 4096;

/// The audit log could not be written: the request must not be served.
#[derive(Debug)]
pub struct AuditDown;

/// The open audit log.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating: mode 0640, its folder 0750) the audit log at `path` for appending.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("opening the audit log {}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends `line` (its fields without a value left out, what is too long cut, the time
    /// added); an error (logged) when it cannot be written.
    pub fn write(&self, mut line: Value) -> Result<(), AuditDown> {
        let mut cut = false;
        if let Value::Object(fields) = &mut line {
            fields.retain(|_, v| !v.is_null());
            for value in fields.values_mut() {
                cut |= bound(value);
            }
        }
        if cut {
            line["cut"] = json!(true);
        }
        line["time"] = json!(bonnie_core::time::format_rfc3339_ms(
            bonnie_core::time::now_ms()
        ));
        let mut text = line.to_string();
        text.push('\n');
        // A panic elsewhere cannot leave the file half-changed: a poisoned lock is still good.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(text.as_bytes()).map_err(|e| {
            tracing::error!(error = %e, "Cannot write the audit log; the request is refused with 503.");
            AuditDown
        })
    }
}

/// Where audit records are kept: the broker's verifiable log.
pub trait AuditLedger: Send + Sync {
    /// Keeps `record`: its sequence number in the log once it is committed, or why not.
    fn keep(&self, record: &AuditRecord) -> anyhow::Result<u64>;
}

impl<L: AuditLedger + ?Sized> AuditLedger for std::sync::Arc<L> {
    fn keep(&self, record: &AuditRecord) -> anyhow::Result<u64> {
        (**self).keep(record)
    }
}

impl AuditLedger for crate::admin::Admin {
    fn keep(&self, record: &AuditRecord) -> anyhow::Result<u64> {
        let answer = self.ask(&AdminRequest::Audit(Box::new(bounded(record.clone()))))?;
        answer["seq"].as_u64().with_context(|| {
            format!("the broker's answer to AUDIT names no sequence number: {answer}")
        })
    }
}

/// `record` with what is too long cut (and marked) as in the audit log.
fn bounded(mut record: AuditRecord) -> AuditRecord {
    for text in [&mut record.user, &mut record.action]
        .into_iter()
        .chain(record.client.as_mut())
        .chain(record.error.as_mut())
    {
        if let Some(shorter) = cut(text, MAX_STRING) {
            *text = shorter;
        }
    }
    bound(&mut record.params);
    record
}

/// A new action id, unique across processes and restarts: `<source>-<ms>-<pid>-<n>`.
pub fn action_id(source: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{source}-{}-{}-{n}",
        bonnie_core::time::now_ms(),
        std::process::id()
    )
}

/// Cuts what is too long in `value`; whether anything was cut.
fn bound(value: &mut Value) -> bool {
    match value {
        Value::String(text) => match cut(text, MAX_STRING) {
            Some(shorter) => {
                *text = shorter;
                true
            }
            None => false,
        },
        Value::Array(_) | Value::Object(_) => {
            let text = value.to_string();
            if text.len() > MAX_JSON {
                *value = Value::String(cut(&text, MAX_STRING).unwrap_or(text));
                return true;
            }
            let mut cut_any = false;
            match value {
                Value::Array(items) => items.iter_mut().for_each(|v| cut_any |= bound(v)),
                Value::Object(fields) => fields.values_mut().for_each(|v| cut_any |= bound(v)),
                _ => {}
            }
            cut_any
        }
        _ => false,
    }
}

/// `text` cut to at most `max` bytes and marked with its length, if it is longer.
fn cut(text: &str, max: usize) -> Option<String> {
    match bonnie_core::logging::clip_to(text, max) {
        std::borrow::Cow::Owned(shorter) => Some(shorter),
        std::borrow::Cow::Borrowed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_and_parameters_are_cut_and_marked_short_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let log = AuditLog::open(&path).unwrap();
        let huge = "é".repeat(1_000_000);
        let many: serde_json::Map<String, Value> =
            (0..1000).map(|i| (format!("k{i}"), json!("v"))).collect();
        log.write(json!({ "client": huge, "params": many, "peer": "127.0.0.1:1", "x": null }))
            .unwrap();
        log.write(json!({ "client": "roundcube", "params": { "uid": "a" } }))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let client = lines[0]["client"].as_str().unwrap();
        assert!(client.len() < MAX_STRING + 40, "{}", client.len());
        assert!(
            client.ends_with("…[cut: 2000000 bytes]"),
            "{}",
            &client[client.len() - 40..]
        );
        assert!(lines[0]["params"].as_str().unwrap().contains("[cut: "));
        assert_eq!(lines[0]["cut"], true);
        assert!(lines[0].get("x").is_none());
        assert!(text.lines().next().unwrap().len() < 3 * MAX_STRING);
        assert_eq!(lines[1]["client"], "roundcube");
        assert_eq!(lines[1]["params"]["uid"], "a");
        assert!(lines[1].get("cut").is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path) & 0o037, 0, "{:o}", mode(&path));
        assert_eq!(mode(&dir.path().join("logs")) & 0o027, 0);
    }
}
