//! `bonnie case`: e-discovery cases. A case gathers what a legal request or an investigation
//! is about: its custodians (logins), its saved queries (the query language of
//! bonnie-discovery), the legal holds placed from it and the exports made of it. Its items are
//! the items any of its queries matches among those that lived in a folder of one of its
//! custodians; an export takes them as they are frozen then ([`freeze`]), and the frozen list
//! is kept so that a rerun, or a re-export years later, takes exactly the same items
//! ([`frozen`]).
//!
//! Cases are records of the storage's collection [`COLLECTION`] keyed by name (one record per
//! case: the audit log has every change, each command is audited), frozen lists records of
//! [`FROZEN`] keyed `<case>/<export id>`. A closed case takes no new custodian, query, hold or
//! freeze; what was frozen stays readable.

use anyhow::{Context as _, bail};
use bonnie_core::{Config, ledger::hex, time::now_ms};
use bonnie_discovery::{item::Item, query::Query, search::SearchOptions};
use bonnie_plugin_api::{Record, storage::StorageClient};
use bonnie_retention::{
    DiscoveryCriteria, Hold,
    discovery::of_custodians,
    holds::{self, MAX_CASE_CHARS},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    audit::{Auditor, os_user},
    discovery::{self as review, Archive, SHORT_ID},
};

/// The storage collection of cases, keyed by name.
pub const COLLECTION: &str = "cases";

/// The storage collection of frozen item lists, keyed `<case>/<export id>`.
pub const FROZEN: &str = "case-frozen";

/// The longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// The longest saved query name, in characters.
const MAX_QUERY_NAME_CHARS: usize = 100;

/// The longest custodian login, in bytes (as Cyrus takes them).
const MAX_LOGIN_BYTES: usize = 255;

/// `bonnie case`'s commands.
#[derive(clap::Subcommand)]
pub enum CaseCommand {
    /// Opens a case
    Create {
        /// Its name: 1 to 200 characters, no control characters, unique
        name: String,
        /// What it is about
        #[arg(long)]
        description: Option<String>,
        /// A custodian (login) whose items it is about; repeat for more
        #[arg(long = "custodian", value_name = "LOGIN")]
        custodians: Vec<String>,
    },
    /// The cases, open and closed
    List {
        /// Print the cases as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// One case: its custodians, its queries with their hit counts now, its holds and exports
    Show {
        /// The case
        name: String,
        /// Print the case as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Closes a case: it then takes no new custodian, query, hold or freeze (its frozen
    /// exports stay reproducible; a hold placed from it stands until `bonnie hold release`)
    Close {
        /// The case
        name: String,
        /// Why it is closed
        #[arg(long, required = true)]
        reason: String,
    },
    /// The case's custodians
    Custodian {
        #[command(subcommand)]
        command: CustodianCommand,
    },
    /// The case's saved queries
    Query {
        #[command(subcommand)]
        command: QueryCommand,
    },
    /// Places a legal hold from the case: every log entry of the items its queries match
    /// among its custodians' (as they stand now, and as they will: evaluated at every purge)
    /// is kept until `bonnie hold release <case>`
    Hold {
        /// The case
        case: String,
        /// Why the hold is placed
        #[arg(long, required = true)]
        reason: String,
    },
    /// The case's items: any of its queries, among the items that lived in a folder of one of
    /// its custodians (what an export of the case takes), or the list frozen for an export
    Items {
        /// The case
        case: String,
        /// As the mailboxes stood then: a date or a time ([discovery] time_zone unless it has
        /// an offset)
        #[arg(long, value_name = "WHEN", conflicts_with = "export")]
        as_of: Option<String>,
        /// The items frozen for this export of the case (`bonnie case show` lists them)
        #[arg(long, value_name = "ID")]
        export: Option<String>,
        /// Print the items as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// Freezes the case's item list now (or as the mailboxes stood `--as-of`), as an export
    /// does: the list is kept under a new export id, and reproduced whatever arrives later
    Freeze {
        /// The case
        case: String,
        /// As the mailboxes stood then: a date or a time ([discovery] time_zone unless it has
        /// an offset)
        #[arg(long, value_name = "WHEN")]
        as_of: Option<String>,
        /// Print the frozen list (without its digests) as one JSON object
        #[arg(long)]
        json: bool,
    },
}

/// `bonnie case custodian`'s commands.
#[derive(clap::Subcommand)]
pub enum CustodianCommand {
    /// Adds a custodian (a login, kept in lower case)
    Add {
        /// The case
        case: String,
        /// The login
        login: String,
    },
    /// Removes a custodian
    Remove {
        /// The case
        case: String,
        /// The login
        login: String,
    },
}

/// `bonnie case query`'s commands.
#[derive(clap::Subcommand)]
pub enum QueryCommand {
    /// Saves a query in the case (checked first; an error says where it is wrong)
    Add {
        /// The case
        case: String,
        /// The query's name in the case
        name: String,
        /// The query, as `bonnie search` takes it
        query: String,
    },
    /// Removes a saved query
    Remove {
        /// The case
        case: String,
        /// The query's name
        name: String,
    },
}

/// Whether a case takes changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It takes custodians, queries, holds and freezes.
    Open,
    /// It takes none; what was frozen stays readable.
    Closed,
}

/// Who did something to a case, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The OS user, as the audit log names them.
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Why, when asked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl Act {
    /// Now, by the OS user running this process.
    fn now(reason: &str) -> Act {
        Act {
            by: os_user(),
            at_ms: now_ms(),
            reason: reason.to_string(),
        }
    }
}

/// A saved query of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedQuery {
    /// Its name in the case.
    pub name: String,
    /// The query as it was written.
    pub text: String,
    /// Its canonical form (dates as UTC instants): what the case evaluates, whatever
    /// `[discovery] time_zone` says later.
    pub canonical: String,
    /// Who added it, when.
    pub added: Act,
}

/// A hold placed from a case: what it held, as it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedHold {
    /// Who placed it, when, why.
    pub placed: Act,
    /// The case's queries then, canonical.
    pub queries: Vec<String>,
    /// The case's custodians then.
    pub custodians: Vec<String>,
}

/// Where a frozen list was exported to (told by the export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Who exported it, when.
    pub exported: Act,
    /// The export's format (`eml`, `mbox`, `dat`).
    pub format: String,
    /// The directory it was written to.
    pub dir: String,
}

/// An export of a case: its frozen item list, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseExport {
    /// The export's id in the case (`e1`, `e2`...).
    pub id: String,
    /// Who froze its list, when.
    pub frozen: Act,
    /// The moment the mailboxes were taken at (ms since the epoch), if not the freeze's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
    /// The query its items are (canonical).
    pub query: String,
    /// How many items.
    pub items: u64,
    /// The SHA-256 of its item list ([`list_digest`]).
    pub sha256: String,
    /// Each export written of it.
    #[serde(default)]
    pub written: Vec<Written>,
}

/// An e-discovery case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Its name, unique.
    pub name: String,
    /// What it is about.
    #[serde(default)]
    pub description: String,
    /// Who opened it, when.
    pub created: Act,
    /// Open or closed.
    pub status: Status,
    /// Who closed it, when, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Act>,
    /// Its custodians' logins, lower case, in the order added.
    pub custodians: Vec<String>,
    /// Its saved queries, in the order added.
    pub queries: Vec<SavedQuery>,
    /// The holds placed from it, oldest first.
    pub holds: Vec<PlacedHold>,
    /// Its exports, oldest first.
    pub exports: Vec<CaseExport>,
}

impl Case {
    fn record(&self) -> anyhow::Result<Record> {
        Ok(
            Record::new(COLLECTION, &self.name, &serde_json::to_value(self)?)
                .at(self.created.at_ms),
        )
    }

    /// An error unless the case is open.
    fn open(&self) -> anyhow::Result<()> {
        match &self.closed {
            Some(closed) if self.status == Status::Closed => bail!(
                "case {:?} is closed (by {} at {}: {}): it takes no new custodian, query, hold \
                 or freeze",
                self.name,
                closed.by,
                time_text(closed.at_ms),
                closed.reason
            ),
            _ if self.status == Status::Closed => bail!("case {:?} is closed", self.name),
            _ => Ok(()),
        }
    }

    /// The query of the case's items: any of its queries, among its custodians' items;
    /// `None` while it has no query or no custodian.
    fn items_query(&self, archive: &Archive) -> anyhow::Result<Option<Query>> {
        if self.queries.is_empty() || self.custodians.is_empty() {
            return Ok(None);
        }
        let queries = self
            .queries
            .iter()
            .map(|q| archive.parse(&q.canonical))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(of_custodians(queries, &self.custodians)))
    }

    /// What the case lacks to have items, if anything.
    fn lacking(&self) -> Option<String> {
        let missing = match (self.queries.is_empty(), self.custodians.is_empty()) {
            (true, true) => "no saved query and no custodian",
            (true, false) => "no saved query",
            (false, true) => "no custodian",
            (false, false) => return None,
        };
        Some(format!(
            "case {:?} has {missing} (bonnie case query add, bonnie case custodian add), so no items",
            self.name
        ))
    }
}

/// A case's item list as frozen for an export: what the export takes, reproducibly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenList {
    /// The case.
    pub case: String,
    /// The export's id in the case.
    pub id: String,
    /// Who froze it, when.
    pub frozen: Act,
    /// The moment the mailboxes were taken at, if not the freeze's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
    /// The query its items are (canonical).
    pub query: String,
    /// The items' digests, sorted, each once.
    pub digests: Vec<String>,
    /// [`list_digest`] of `digests`.
    pub sha256: String,
}

/// The SHA-256 (hex) of an item list: of its digests, sorted, each followed by a line feed.
pub fn list_digest(sorted: &[String]) -> String {
    let mut hasher = Sha256::new();
    for digest in sorted {
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Checks a text an admin gives: not empty, at most `max` characters, no control characters
/// (but line breaks and tabs where `multiline`), no spaces at its ends.
fn check_text(what: &str, text: &str, max: usize, multiline: bool) -> anyhow::Result<()> {
    if text.trim().is_empty() || text.chars().count() > max {
        bail!("{what} has 1 to {max} characters");
    }
    if text.trim() != text {
        bail!("{what} {text:?} has spaces at its ends");
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        bail!("{what} {text:?} has control characters");
    }
    Ok(())
}

/// A custodian's login as kept: trimmed, lower case; refused when empty, too long or holding
/// spaces or control characters.
fn login(text: &str) -> anyhow::Result<String> {
    let login = text.trim().to_lowercase();
    if login.is_empty() || login.len() > MAX_LOGIN_BYTES {
        bail!("a custodian's login has 1 to {MAX_LOGIN_BYTES} bytes");
    }
    if login.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the login {text:?} has spaces or control characters");
    }
    Ok(login)
}

/// The case `name` as stored.
pub fn read(storage: &StorageClient, name: &str) -> anyhow::Result<Case> {
    let record = storage
        .get(COLLECTION, name)
        .map_err(|e| anyhow::anyhow!("reading case {name:?}: {e}"))?
        .with_context(|| format!("no case {name:?} (bonnie case list shows the cases)"))?;
    parse_case(&record)
}

fn parse_case(record: &Record) -> anyhow::Result<Case> {
    serde_json::from_str(record.body.as_str())
        .with_context(|| format!("the stored case {:?} cannot be read", record.key.as_str()))
}

/// Every case, by name.
pub fn list(storage: &StorageClient) -> anyhow::Result<Vec<Case>> {
    let query = bonnie_plugin_api::RecordQuery {
        collection: COLLECTION.to_string(),
        all: true,
        ..Default::default()
    };
    let mut cases = storage
        .query(&query)
        .map_err(|e| anyhow::anyhow!("reading the cases: {e}"))?
        .iter()
        .map(parse_case)
        .collect::<anyhow::Result<Vec<_>>>()?;
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Changes case `name` with `change` as one atomic step (run again on what is stored when
/// another admin changed the case meanwhile); the case as written.
fn change(
    storage: &StorageClient,
    name: &str,
    mut change: impl FnMut(&mut Case) -> anyhow::Result<()>,
) -> anyhow::Result<Case> {
    let mut refused = None;
    let written = storage
        .update(COLLECTION, name, |stored| {
            refused = None;
            let outcome = stored
                .with_context(|| format!("no case {name:?} (bonnie case list shows the cases)"))
                .and_then(parse_case)
                .and_then(|mut case| {
                    change(&mut case)?;
                    case.record()
                });
            match outcome {
                Ok(record) => Ok(Some(record)),
                Err(e) => {
                    refused = Some(e);
                    Ok(None)
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("writing case {name:?}: {e}"))?;
    if let Some(e) = refused {
        return Err(e);
    }
    let record = written.with_context(|| format!("case {name:?} was not written"))?;
    parse_case(&record)
}

/// The case's items as the mailboxes stand now (or stood at `as_of`), in date order; none
/// while it has no query or no custodian.
pub fn items(archive: &Archive, case: &Case, as_of: Option<i64>) -> anyhow::Result<Vec<Item>> {
    let Some(query) = case.items_query(archive)? else {
        return Ok(Vec::new());
    };
    archive.search(
        &query,
        &SearchOptions {
            as_of,
            ..SearchOptions::default()
        },
    )
}

/// Freezes the items of case `case` for an export: computes them now (as the mailboxes stood
/// at `as_of`, ms since the epoch, when given), keeps their sorted digests in [`FROZEN`] under
/// a new export id (`e1`, `e2`...) and lists the export in the case. The items (in date
/// order) and the frozen list; a rerun or a later re-export reads the list back with
/// [`frozen`]. Refused for a closed case and for one without query or custodian.
pub fn freeze(
    archive: &Archive,
    case: &str,
    as_of: Option<i64>,
) -> anyhow::Result<(Vec<Item>, FrozenList)> {
    let storage = &archive.storage;
    let current = read(storage, case)?;
    current.open()?;
    if let Some(lacking) = current.lacking() {
        bail!("{lacking} to freeze");
    }
    let query = current
        .items_query(archive)?
        .with_context(|| format!("case {case:?} has no items to freeze"))?;
    let items = archive.search(
        &query,
        &SearchOptions {
            as_of,
            ..SearchOptions::default()
        },
    )?;
    let mut digests: Vec<String> = items.iter().map(|i| i.doc.digest.clone()).collect();
    digests.sort();
    digests.dedup();
    let mut list = FrozenList {
        case: case.to_string(),
        id: String::new(),
        frozen: Act::now(""),
        as_of_ms: as_of,
        query: query.to_string(),
        sha256: list_digest(&digests),
        digests,
    };
    // The next id free: another freeze of the case may take one at the same moment.
    let mut number = current.exports.len() + 1;
    loop {
        list.id = format!("e{number}");
        let record = Record::new(
            FROZEN,
            &frozen_key(case, &list.id),
            &serde_json::to_value(&list)?,
        )
        .at(list.frozen.at_ms);
        if storage
            .put_if(record, None)
            .map_err(|e| anyhow::anyhow!("keeping the frozen list of case {case:?}: {e}"))?
        {
            break;
        }
        number += 1;
    }
    let export = CaseExport {
        id: list.id.clone(),
        frozen: list.frozen.clone(),
        as_of_ms: as_of,
        query: list.query.clone(),
        items: list.digests.len() as u64,
        sha256: list.sha256.clone(),
        written: Vec::new(),
    };
    let listed = change(storage, case, |c| {
        c.open()?;
        c.exports.push(export.clone());
        Ok(())
    });
    if let Err(e) = listed {
        // Closed meanwhile: the list no export names goes again.
        let _ = storage.delete(FROZEN, &frozen_key(case, &list.id));
        return Err(e);
    }
    Ok((items, list))
}

/// [`freeze`], audited: the request (`params`: what was asked) before, as a change `case
/// freeze`, and the frozen list after (`case frozen`: its export id, query, SHA-256 and item
/// count), so the audit log names the very list each export of a case takes.
pub fn audited_freeze(
    archive: &Archive,
    auditor: &Auditor<'_>,
    case: &str,
    as_of: Option<i64>,
    params: Value,
) -> anyhow::Result<(Vec<Item>, FrozenList)> {
    let (items, list) =
        auditor.change("case freeze", params, None, || freeze(archive, case, as_of))?;
    auditor.step(
        "case frozen",
        json!({ "case": case, "export": list.id, "query": list.query, "sha256": list.sha256 }),
        list.digests.len() as u64,
    )?;
    Ok((items, list))
}

fn frozen_key(case: &str, export_id: &str) -> String {
    format!("{case}/{export_id}")
}

/// The item list frozen for export `export_id` of case `case`: exactly the items the export
/// took, whatever arrived or was deleted since. An error when there is none, or when it no
/// longer matches the SHA-256 the case recorded for it (changed in the storage).
pub fn frozen(storage: &StorageClient, case: &str, export_id: &str) -> anyhow::Result<FrozenList> {
    let listed = read(storage, case)?;
    let export = listed
        .exports
        .iter()
        .find(|e| e.id == export_id)
        .with_context(|| {
            format!("case {case:?} has no export {export_id:?} (bonnie case show lists them)")
        })?;
    let record = storage
        .get(FROZEN, &frozen_key(case, export_id))
        .map_err(|e| anyhow::anyhow!("reading the frozen list of {case:?} {export_id}: {e}"))?
        .with_context(|| {
            format!("the frozen list of case {case:?} export {export_id} is not in the storage")
        })?;
    let list: FrozenList = serde_json::from_str(record.body.as_str()).with_context(|| {
        format!("the frozen list of case {case:?} export {export_id} cannot be read")
    })?;
    let digest = list_digest(&list.digests);
    if digest != export.sha256 || list.sha256 != export.sha256 || list.case != case {
        bail!(
            "the frozen list of case {case:?} export {export_id} is not the one frozen (SHA-256 \
             {digest}, the case recorded {}): it was changed in the storage",
            export.sha256
        );
    }
    Ok(list)
}

/// Records that the frozen list of export `export_id` of case `case` was written in `format`
/// to `dir` (an export, or a re-export of the same list); closed cases too.
pub fn exported(
    storage: &StorageClient,
    case: &str,
    export_id: &str,
    format: &str,
    dir: &str,
) -> anyhow::Result<()> {
    let written = Written {
        exported: Act::now(""),
        format: format.to_string(),
        dir: dir.to_string(),
    };
    change(storage, case, |c| {
        let export = c
            .exports
            .iter_mut()
            .find(|e| e.id == export_id)
            .with_context(|| format!("case {case:?} has no export {export_id:?}"))?;
        export.written.push(written.clone());
        Ok(())
    })
    .map(drop)
}

/// Runs a `bonnie case` command.
pub fn run(config: &Config, auditor: &Auditor<'_>, command: &CaseCommand) -> anyhow::Result<()> {
    let archive = Archive::open(config)?;
    let storage = &archive.storage;
    match command {
        CaseCommand::Create {
            name,
            description,
            custodians,
        } => {
            check_text("a case name", name, MAX_CASE_CHARS, false)?;
            let description = description.clone().unwrap_or_default();
            if !description.is_empty() {
                check_text("a description", &description, MAX_DESCRIPTION_CHARS, true)?;
            }
            let mut logins: Vec<String> = Vec::new();
            for given in custodians {
                let login = login(given)?;
                if !logins.contains(&login) {
                    logins.push(login);
                }
            }
            let case = Case {
                name: name.clone(),
                description,
                created: Act::now(""),
                status: Status::Open,
                closed: None,
                custodians: logins,
                queries: Vec::new(),
                holds: Vec::new(),
                exports: Vec::new(),
            };
            let params = json!({
                "case": case.name,
                "description": case.description,
                "custodians": case.custodians,
            });
            auditor.change("case create", params, Some(1), || {
                let written = storage
                    .put_if(case.record()?, None)
                    .map_err(|e| anyhow::anyhow!("writing case {name:?}: {e}"))?;
                if !written {
                    bail!("a case {name:?} exists already: choose another name");
                }
                Ok(())
            })?;
            println!("Case {name:?} is open.");
        }
        CaseCommand::List { json } => {
            let cases = list(storage)?;
            auditor.read("case list", json!({}), cases.len() as u64)?;
            if *json {
                println!("{}", serde_json::to_value(&cases)?);
            } else if cases.is_empty() {
                println!("No cases.");
            } else {
                for case in &cases {
                    println!(
                        "{}  {}  {} custodian(s), {} query(ies), {} hold(s), {} export(s); opened {} by {}",
                        case.name,
                        if case.status == Status::Open {
                            "OPEN"
                        } else {
                            "CLOSED"
                        },
                        case.custodians.len(),
                        case.queries.len(),
                        case.holds.len(),
                        case.exports.len(),
                        time_text(case.created.at_ms),
                        case.created.by
                    );
                }
            }
        }
        CaseCommand::Show { name, json } => show(&archive, auditor, name, *json)?,
        CaseCommand::Close { name, reason } => {
            check_text("a reason", reason, MAX_DESCRIPTION_CHARS, true)?;
            let params = json!({ "case": name, "reason": reason });
            let closed = auditor.change("case close", params, Some(1), || {
                change(storage, name, |c| {
                    c.open()?;
                    c.status = Status::Closed;
                    c.closed = Some(Act::now(reason));
                    Ok(())
                })
            })?;
            println!("Case {name:?} is closed.");
            if standing_hold(storage, &closed)?.is_some() {
                println!(
                    "Its hold still stands: `bonnie hold release {name:?} --reason ...` releases it."
                );
            }
        }
        CaseCommand::Custodian { command } => custodian(storage, auditor, command)?,
        CaseCommand::Query { command } => query(&archive, auditor, command)?,
        CaseCommand::Hold { case, reason } => hold(config, &archive, auditor, case, reason)?,
        CaseCommand::Items {
            case,
            as_of,
            export,
            json,
        } => list_items(
            &archive,
            auditor,
            case,
            as_of.as_deref(),
            export.as_deref(),
            *json,
        )?,
        CaseCommand::Freeze { case, as_of, json } => {
            let as_of_ms = archive.moment(as_of.as_deref())?;
            let params = json!({ "case": case, "as_of": as_of });
            let (_, list) = audited_freeze(&archive, auditor, case, as_of_ms, params)?;
            if *json {
                let mut shown = serde_json::to_value(&list)?;
                shown["items"] = json!(list.digests.len());
                if let Value::Object(fields) = &mut shown {
                    fields.remove("digests");
                }
                println!("{shown}");
            } else {
                println!(
                    "Case {case:?}: {} items frozen as export {} (SHA-256 {}).",
                    list.digests.len(),
                    list.id,
                    list.sha256
                );
            }
        }
    }
    Ok(())
}

/// The standing hold placed from `case`, if one stands.
fn standing_hold(storage: &StorageClient, case: &Case) -> anyhow::Result<Option<Hold>> {
    Ok(holds::list(storage)?
        .into_iter()
        .find(|h| h.case == case.name && h.standing() && h.discovery.is_some()))
}

/// `bonnie case custodian ...`
fn custodian(
    storage: &StorageClient,
    auditor: &Auditor<'_>,
    command: &CustodianCommand,
) -> anyhow::Result<()> {
    let (case, login, adding) = match command {
        CustodianCommand::Add { case, login: l } => (case, login(l)?, true),
        CustodianCommand::Remove { case, login: l } => (case, login(l)?, false),
    };
    let action = if adding {
        "case custodian add"
    } else {
        "case custodian remove"
    };
    let params = json!({ "case": case, "login": login });
    let changed = auditor.change(action, params, Some(1), || {
        change(storage, case, |c| {
            c.open()?;
            let at = c.custodians.iter().position(|l| *l == login);
            match (adding, at) {
                (true, Some(_)) => bail!("{login} is a custodian of case {case:?} already"),
                (true, None) => c.custodians.push(login.clone()),
                (false, Some(at)) => {
                    c.custodians.remove(at);
                }
                (false, None) => bail!("{login} is no custodian of case {case:?}"),
            }
            Ok(())
        })
    })?;
    println!(
        "Case {case:?}: {} {login}; its custodians are {}.",
        if adding { "added" } else { "removed" },
        if changed.custodians.is_empty() {
            "none".to_string()
        } else {
            changed.custodians.join(", ")
        }
    );
    stale_hold_note(storage, &changed)
}

/// Says so when a hold placed from the case stands with other queries or custodians than the
/// case has now (a hold holds what it was placed with).
fn stale_hold_note(storage: &StorageClient, case: &Case) -> anyhow::Result<()> {
    let Some(criteria) = standing_hold(storage, case)?.and_then(|h| h.discovery) else {
        return Ok(());
    };
    let queries: Vec<&str> = case.queries.iter().map(|q| q.canonical.as_str()).collect();
    if criteria.queries != queries || criteria.custodians != case.custodians {
        println!(
            "The hold placed from the case still holds its queries and custodians as they were \
             then: release it (`bonnie hold release`) and place it again (`bonnie case hold`) to \
             hold what the case names now."
        );
    }
    Ok(())
}

/// `bonnie case query ...`
fn query(archive: &Archive, auditor: &Auditor<'_>, command: &QueryCommand) -> anyhow::Result<()> {
    let storage = &archive.storage;
    let changed = match command {
        QueryCommand::Add { case, name, query } => {
            check_text("a query name", name, MAX_QUERY_NAME_CHARS, false)?;
            let parsed = archive.parse(query)?;
            let saved = SavedQuery {
                name: name.clone(),
                text: query.clone(),
                canonical: parsed.to_string(),
                added: Act::now(""),
            };
            let params = json!({
                "case": case, "name": name, "query": query, "canonical": saved.canonical,
            });
            let changed = auditor.change("case query add", params, Some(1), || {
                change(storage, case, |c| {
                    c.open()?;
                    if c.queries.iter().any(|q| q.name == *name) {
                        bail!("case {case:?} has a query {name:?} already");
                    }
                    c.queries.push(saved.clone());
                    Ok(())
                })
            })?;
            println!(
                "Case {case:?}: query {name:?} saved as {}.",
                saved.canonical
            );
            changed
        }
        QueryCommand::Remove { case, name } => {
            let params = json!({ "case": case, "name": name });
            let changed = auditor.change("case query remove", params, Some(1), || {
                change(storage, case, |c| {
                    c.open()?;
                    let at = c
                        .queries
                        .iter()
                        .position(|q| q.name == *name)
                        .with_context(|| format!("case {case:?} has no query {name:?}"))?;
                    c.queries.remove(at);
                    Ok(())
                })
            })?;
            println!("Case {case:?}: query {name:?} removed.");
            changed
        }
    };
    stale_hold_note(storage, &changed)
}

/// `bonnie case hold`: a legal hold from the case's queries and custodians, as they are.
fn hold(
    config: &Config,
    archive: &Archive,
    auditor: &Auditor<'_>,
    name: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let storage = &archive.storage;
    let case = read(storage, name)?;
    case.open()?;
    if let Some(lacking) = case.lacking() {
        bail!("{lacking} to hold");
    }
    let time_zone = bonnie_discovery::config::DiscoveryConfig::from_table(&config.discovery)
        .with_context(|| format!("in {}", config.path.display()))?
        .time_zone;
    let placed = Act::now(reason);
    let criteria = DiscoveryCriteria {
        queries: case.queries.iter().map(|q| q.canonical.clone()).collect(),
        custodians: case.custodians.clone(),
        time_zone,
        local_domains: archive.context.local_domains.clone(),
    };
    let hold = Hold {
        case: case.name.clone(),
        custodians: case.custodians.clone(),
        folder: None,
        from_ms: None,
        to_ms: None,
        query: None,
        reason: reason.to_string(),
        created_by: placed.by.clone(),
        created_ms: placed.at_ms,
        released: None,
        discovery: Some(criteria.clone()),
    };
    hold.validate()?;
    let params = serde_json::to_value(&hold)?;
    auditor.change("case hold", params, Some(1), || {
        holds::create(storage, &hold)?;
        change(storage, name, |c| {
            c.holds.push(PlacedHold {
                placed: placed.clone(),
                queries: criteria.queries.clone(),
                custodians: criteria.custodians.clone(),
            });
            Ok(())
        })
    })?;
    println!(
        "Case {name:?} is on hold: every entry of the items its {} queries match among its {} \
         custodians' is kept, those archived later too, until `bonnie hold release`.",
        criteria.queries.len(),
        criteria.custodians.len()
    );
    Ok(())
}

/// `bonnie case show`.
fn show(
    archive: &Archive,
    auditor: &Auditor<'_>,
    name: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let storage = &archive.storage;
    let case = read(storage, name)?;
    let mut hits = Vec::new();
    for saved in &case.queries {
        let count = if case.custodians.is_empty() {
            0
        } else {
            let one = of_custodians(vec![archive.parse(&saved.canonical)?], &case.custodians);
            archive.search(&one, &SearchOptions::default())?.len()
        };
        hits.push(count);
    }
    let placed = holds::list(storage)?;
    let hold_state = |held: &PlacedHold| -> Value {
        match placed
            .iter()
            .find(|h| h.case == case.name && h.created_ms == held.placed.at_ms)
        {
            Some(h) => match &h.released {
                None => json!({ "standing": true }),
                Some(r) => json!({
                    "standing": false,
                    "released": { "by": r.by, "at_ms": r.at_ms, "reason": r.reason },
                }),
            },
            None => json!({ "standing": false }),
        }
    };
    auditor.read("case show", json!({ "case": name }), 1)?;
    if json_out {
        let mut shown = serde_json::to_value(&case)?;
        for (i, count) in hits.iter().enumerate() {
            shown["queries"][i]["hits"] = json!(count);
        }
        for (i, held) in case.holds.iter().enumerate() {
            let state = hold_state(held);
            shown["holds"][i]["standing"] = state["standing"].clone();
            if let Some(released) = state.get("released") {
                shown["holds"][i]["released"] = released.clone();
            }
        }
        println!("{shown}");
        return Ok(());
    }
    let zone = &archive.context.zone;
    println!(
        "Case {}  {}",
        case.name,
        if case.status == Status::Open {
            "OPEN"
        } else {
            "CLOSED"
        }
    );
    if !case.description.is_empty() {
        println!("  {}", case.description);
    }
    println!(
        "  opened {} by {}",
        review::local_time(case.created.at_ms, zone),
        case.created.by
    );
    if let Some(closed) = &case.closed {
        println!(
            "  closed {} by {}: {}",
            review::local_time(closed.at_ms, zone),
            closed.by,
            closed.reason
        );
    }
    println!(
        "Custodians: {}",
        if case.custodians.is_empty() {
            "none".to_string()
        } else {
            case.custodians.join(", ")
        }
    );
    println!("Queries:");
    if case.queries.is_empty() {
        println!("  none");
    }
    for (saved, count) in case.queries.iter().zip(&hits) {
        println!("  {}: {}  ({count} items now)", saved.name, saved.text);
        if saved.canonical != saved.text {
            println!("    as {}", saved.canonical);
        }
    }
    println!("Holds:");
    if case.holds.is_empty() {
        println!("  none");
    }
    for held in &case.holds {
        let state = hold_state(held);
        let status = match (&state["standing"], state.get("released")) {
            (Value::Bool(true), _) => "STANDING".to_string(),
            (_, Some(r)) => format!(
                "released {} by {}: {}",
                r["at_ms"]
                    .as_i64()
                    .map(|ms| review::local_time(ms, zone))
                    .unwrap_or_default(),
                r["by"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or("")
            ),
            _ => "released".to_string(),
        };
        println!(
            "  placed {} by {}: {}  {status}",
            review::local_time(held.placed.at_ms, zone),
            held.placed.by,
            held.placed.reason
        );
    }
    println!("Exports:");
    if case.exports.is_empty() {
        println!("  none");
    }
    for export in &case.exports {
        println!(
            "  {}  frozen {} by {}{}: {} items, SHA-256 {}",
            export.id,
            review::local_time(export.frozen.at_ms, zone),
            export.frozen.by,
            export
                .as_of_ms
                .map(|ms| format!(" as of {}", review::local_time(ms, zone)))
                .unwrap_or_default(),
            export.items,
            export.sha256
        );
        for written in &export.written {
            println!(
                "    {} to {} ({} by {})",
                written.format,
                written.dir,
                review::local_time(written.exported.at_ms, zone),
                written.exported.by
            );
        }
    }
    Ok(())
}

/// `bonnie case items`.
fn list_items(
    archive: &Archive,
    auditor: &Auditor<'_>,
    name: &str,
    as_of: Option<&str>,
    export: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let case = read(&archive.storage, name)?;
    let (items, as_of_ms) = match export {
        Some(id) => {
            let list = frozen(&archive.storage, name, id)?;
            let items = list
                .digests
                .iter()
                .map(|digest| archive.item(digest))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (items, list.as_of_ms)
        }
        None => {
            let as_of_ms = archive.moment(as_of)?;
            (items(archive, &case, as_of_ms)?, as_of_ms)
        }
    };
    auditor.read(
        "case items",
        json!({ "case": name, "as_of": as_of, "export": export }),
        items.len() as u64,
    )?;
    let zone = &archive.context.zone;
    if json_out {
        let listed: Vec<Value> = items
            .iter()
            .map(|i| review::summary(i, as_of_ms, zone))
            .collect();
        println!("{}", Value::Array(listed));
        return Ok(());
    }
    if items.is_empty() {
        match case.lacking() {
            Some(lacking) => println!("{lacking}."),
            None => println!("Case {name:?} has no items."),
        }
        return Ok(());
    }
    for item in &items {
        let doc = &item.doc;
        println!(
            "{}  {}  {}  {}  {}",
            &doc.digest[..SHORT_ID.min(doc.digest.len())],
            review::local_time(doc.date_ms, zone),
            review::custodians(item, None).join(","),
            doc.from.first().map(String::as_str).unwrap_or("-"),
            doc.subject
        );
    }
    println!("{} items.", items.len());
    Ok(())
}
