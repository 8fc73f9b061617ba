//! The command line's audit records, and `bonnie audit`. Every command that reads or changes the
//! archive keeps an audit record in the broker's verifiable log, with the OS user who ran it: a
//! change before it is made (it is refused when the broker does not keep the record), a read
//! before its result is shown. `verify` and `audit` read the job store itself and must work on
//! an auditor's copy without a broker: they are audited when the broker answers, and say so when
//! it does not. The files the broker and bonnie-api read at their start (CURVE keys, API
//! clients) are made before there is a broker to ask: with no broker listening at the admin
//! address, such a change is made and said to be unaudited; with one listening, it is refused
//! unless its record is kept, except while this host has no admin key yet (a bootstrap: no
//! broker can be asked to keep a record before the key it would be asked with exists, so a
//! broker answering then, another bonnie's on the same ports, is not this host's to ask).
//! `bonnie audit` lists the records from the job store read-only (as `bonnie
//! verify` reads the log, decision 45), each checked against its leaf.

use std::path::Path;

use anyhow::{Context as _, bail};
use bonnie_api::{admin::Admin, audit::AuditLedger as _};
use bonnie_core::{
    Config,
    config::CurveConfig,
    keys::KeyDir,
    protocol::AuditRecord,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_ledger::{LeafData, LeafKind};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Keeps the command line's audit records through the broker's admin socket.
pub struct Auditor<'a> {
    broker: &'a Admin,
    /// The `[curve]` table the broker is asked with: where this host's admin key is.
    curve: &'a CurveConfig,
    user: String,
}

impl<'a> Auditor<'a> {
    /// Audits as the OS user running this process, through `broker` reached with the keys of
    /// `curve`.
    pub fn new(broker: &'a Admin, curve: &'a CurveConfig) -> Self {
        Self {
            broker,
            curve,
            user: os_user(),
        }
    }

    /// The broker the records are kept by (for a command that also asks it something).
    pub fn broker(&self) -> &'a Admin {
        self.broker
    }

    /// This host's admin key file, when CURVE is on and the key is not there yet: until it
    /// is, no broker can be asked to keep a record (the key would be the one asked with).
    fn missing_admin_key(&self) -> Option<std::path::PathBuf> {
        let file = KeyDir::new(self.curve).pair_file("admin");
        (self.curve.enabled && std::fs::symlink_metadata(&file).is_err()).then_some(file)
    }

    fn record(&self, action: &str, params: Value, count: Option<u64>) -> AuditRecord {
        AuditRecord {
            id: bonnie_api::audit::action_id("cli"),
            time: format_rfc3339_ms(now_ms()),
            source: "cli".to_string(),
            user: self.user.clone(),
            client: None,
            peer: None,
            action: action.to_string(),
            params,
            count,
            outcome: "ok".to_string(),
            error: None,
        }
    }

    /// Runs the change `action` (of `count` items, when known) once its record is kept; a
    /// change that then fails gets a second record with what went wrong.
    pub fn change<T>(
        &self,
        action: &str,
        params: Value,
        count: Option<u64>,
        make: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let requested = AuditRecord {
            outcome: "requested".to_string(),
            ..self.record(action, params.clone(), count)
        };
        self.broker.keep(&requested).with_context(|| {
            format!("`bonnie {action}` was not run: its audit record cannot be written")
        })?;
        make().inspect_err(|e| {
            let failed = AuditRecord {
                outcome: "error".to_string(),
                error: Some(format!("{e:#}")),
                ..self.record(action, params, Some(0))
            };
            if let Err(not_kept) = self.broker.keep(&failed) {
                eprintln!("bonnie: the failure's audit record was not written: {not_kept:#}");
            }
        })
    }

    /// Like [`Auditor::change`] for a change of files read at a start (keys, API clients):
    /// made unaudited, and said to be, when no broker listens at the admin address at all, or
    /// while this host has no admin key yet (the first setup: whatever broker answers then,
    /// this host has no key to ask it with). Once the admin key exists, a broker answering
    /// must keep the record or the change is refused.
    pub fn setup_change<T>(
        &self,
        action: &str,
        params: Value,
        count: Option<u64>,
        make: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if !listening(self.broker.address()) {
            eprintln!(
                "bonnie: `bonnie {action}` is not audited: no broker listens at {} (a change made before the broker's first start).",
                self.broker.address()
            );
            return make();
        }
        if let Some(admin_key) = self.missing_admin_key() {
            eprintln!(
                "bonnie: `bonnie {action}` is not audited: this host has no admin key yet ({}), so no broker can be asked to keep its record (a first setup; the broker answering at {} is not asked). Changes made once the admin key exists are audited.",
                admin_key.display(),
                self.broker.address()
            );
            return make();
        }
        self.change(action, params, count, make)
    }

    /// Records one step of a change under way (`action`, touching `count` items) before the
    /// step is made; an error, and the step must not be made, when the broker does not keep it.
    pub fn step(&self, action: &str, params: Value, count: u64) -> anyhow::Result<()> {
        self.keep_done(action, params, count)
            .with_context(|| format!("the audit record of `{action}` cannot be written"))
    }

    /// Records the read `action` of `count` items; an error (the result must not be shown)
    /// when the broker does not keep it.
    pub fn read(&self, action: &str, params: Value, count: u64) -> anyhow::Result<()> {
        self.keep_done(action, params, count).with_context(|| {
            format!("`bonnie {action}` shows nothing: its audit record cannot be written")
        })
    }

    /// Keeps the record of `action` done (`ok`) on `count` items.
    fn keep_done(&self, action: &str, params: Value, count: u64) -> anyhow::Result<()> {
        self.broker
            .keep(&self.record(action, params, Some(count)))
            .map(drop)
    }

    /// Records the read `action` of a job store that may be an auditor's copy, with no broker
    /// to ask: when no broker listens, or it does not keep the record, says so on standard
    /// error and goes on.
    pub fn read_offline(&self, action: &str, params: Value, count: u64, error: Option<String>) {
        if !listening(self.broker.address()) {
            eprintln!(
                "bonnie: this `bonnie {action}` is not audited: no broker listens at {}.",
                self.broker.address()
            );
            return;
        }
        let record = AuditRecord {
            outcome: if error.is_some() { "error" } else { "ok" }.to_string(),
            error,
            ..self.record(action, params, Some(count))
        };
        if let Err(e) = self.broker.keep(&record) {
            eprintln!(
                "bonnie: this `bonnie {action}` is not audited (the broker at {} did not keep its record: {e:#}); it reads the job store as it is.",
                self.broker.address()
            );
        }
    }
}

/// Whether anything accepts connections at a ZeroMQ endpoint (`tcp://host:port`,
/// `ipc://path`); other transports are taken to be there.
pub(crate) fn listening(endpoint: &str) -> bool {
    if let Some(address) = endpoint.strip_prefix("tcp://") {
        use std::net::ToSocketAddrs as _;
        let timeout = std::time::Duration::from_secs(1);
        return address.to_socket_addrs().is_ok_and(|mut addresses| {
            addresses.any(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
        });
    }
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        return std::os::unix::net::UnixStream::connect(path).is_ok();
    }
    true
}

/// The OS user running this process (its real uid), by name when the system knows one.
pub fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::process::Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            let line = String::from_utf8(out.stdout).ok()?;
            let name = line.split(':').next()?.trim().to_string();
            (!name.is_empty()).then_some(name)
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// What `bonnie audit` was asked.
pub struct ListArgs<'a> {
    /// Only records of actions since: an instant, a date or a span before now.
    pub since: Option<&'a str>,
    /// Only records of this user (the OS user, or the user an API client acted for).
    pub user: Option<&'a str>,
    /// The job store to read; default `[broker] database`.
    pub job_store: Option<&'a Path>,
    /// JSON instead of text.
    pub json: bool,
}

/// Lists the audit records asked for, oldest first; an error when one does not match its
/// leaf (it was changed after it was logged).
pub fn list(config: &Config, auditor: &Auditor<'_>, args: &ListArgs<'_>) -> anyhow::Result<()> {
    let since = args
        .since
        .map(crate::trace::parse_since)
        .transpose()?
        .map(|t| t.as_millisecond());
    let path = args.job_store.unwrap_or(&config.broker.database);
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open the job store {}", path.display()))?;
    let mut statement = conn
        .prepare(
            "SELECT a.seq, a.record, l.data FROM audit_records a
             LEFT JOIN ledger_leaves l ON l.seq = a.seq ORDER BY a.seq",
        )
        .with_context(|| format!("cannot read the audit records in {}", path.display()))?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)? as u64,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, Option<Vec<u8>>>(2)?,
        ))
    })?;
    let mut shown = Vec::new();
    let mut altered = Vec::new();
    for row in rows {
        let (seq, bytes, leaf) = row?;
        let mut record = serde_json::from_slice(&bytes).map_or_else(
            |_| json!({ "unreadable": String::from_utf8_lossy(&bytes) }),
            readable,
        );
        let verified = leaf.is_some_and(|leaf| matches_leaf(&bytes, &record, &leaf));
        if !verified {
            altered.push(seq);
        }
        let time_ms = record["time"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond());
        let wanted = since.is_none_or(|since| time_ms.is_some_and(|t| t >= since))
            && args.user.is_none_or(|user| record["user"] == user);
        if wanted {
            record["seq"] = json!(seq);
            record["verified"] = json!(verified);
            shown.push(record);
        }
    }
    auditor.read_offline(
        "audit",
        json!({ "since": args.since, "user": args.user, "job_store": args.job_store }),
        shown.len() as u64,
        None,
    );
    if args.json {
        println!("{}", Value::Array(shown));
    } else {
        if shown.is_empty() {
            println!("No audit records.");
        }
        for record in &shown {
            println!("{}", render(record));
        }
    }
    if !altered.is_empty() {
        bail!(
            "audit record(s) at sequence number(s) {altered:?} do not match their leaves: changed after they were logged (bonnie verify tells more)"
        );
    }
    Ok(())
}

/// A record as kept (canonical bytes: its parameters at `params.<path>`) with its parameters
/// gathered again under `params`, by their paths.
fn readable(kept: Value) -> Value {
    let Value::Object(fields) = kept else {
        return kept;
    };
    let mut params = serde_json::Map::new();
    let mut record = serde_json::Map::new();
    for (name, value) in fields {
        match name.strip_prefix("params.") {
            Some(path) => {
                params.insert(path.to_string(), value);
            }
            None => {
                record.insert(name, value);
            }
        }
    }
    if !params.is_empty() {
        record.insert("params".to_string(), Value::Object(params));
    }
    Value::Object(record)
}

/// Whether `bytes` (the record `record`) is what the audit leaf `leaf` committed to.
fn matches_leaf(bytes: &[u8], record: &Value, leaf: &[u8]) -> bool {
    LeafData::decode(leaf).is_ok_and(|leaf| {
        leaf.entry.kind == LeafKind::Audit
            && record["id"] == leaf.entry.id.as_str()
            && <[u8; 32]>::from(Sha256::digest(bytes)) == leaf.entry.record_digest
    })
}

/// One record on one line: sequence number, time, who, what, how many, outcome.
fn render(record: &Value) -> String {
    let text = |field: &str| record[field].as_str().unwrap_or("").to_string();
    let who = match record["client"].as_str() {
        Some(client) => format!("{}@{client}", text("user")),
        None => text("user"),
    };
    let count = record["count"]
        .as_u64()
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut outcome = text("outcome");
    if let Some(error) = record["error"].as_str() {
        outcome.push_str(&format!(" ({error})"));
    }
    let mark = if record["verified"] == true {
        ""
    } else {
        "  NOT MATCHING ITS LEAF"
    };
    format!(
        "{:>6}  {}  {} {}  {}  {}  items {count}  {outcome}{mark}",
        record["seq"],
        text("time"),
        text("source"),
        who,
        text("action"),
        record["params"],
    )
}
