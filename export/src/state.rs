//! The state of an unfinished export, in `.bonnie-export/state.json`: how many items of the
//! list are done, the part being filled, and how long each appended file was after the last
//! complete item (a rerun cuts them back to that, so a half-written item leaves nothing). It
//! is written whole (a temporary file fsync'd and renamed) after every item.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    ExportError, files,
    item::{Exception, ExportHeader, ItemList},
};

/// The folder of an unfinished export's state, inside the export.
pub(crate) const STATE_DIR: &str = ".bonnie-export";
/// The list of items frozen before an export's first run ([`freeze_list`]).
pub(crate) const LIST_FILE: &str = ".bonnie-export/list.txt";

/// The items an unfinished export was begun with, as [`freeze_list`] kept them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenList {
    /// What the list is of, as the caller worded it (its query or case and moment): a rerun
    /// asking for something else must not continue this export.
    pub of: String,
    /// The items' digests, in export order.
    pub digests: Vec<String>,
    /// How many of them an earlier run finished (exported or excepted): a rerun may give
    /// those as bare exceptions, they are skipped.
    pub done: u64,
}

/// Keeps the digests of the items an export is about to be given in the export's state
/// folder, so that a rerun after an interruption exports the same items whatever the archive
/// answers by then ([`frozen_list`] reads them back). `out` must be missing or empty, as
/// [`crate::export`] requires; the list goes with the state when the export finishes.
pub fn freeze_list(out: &Path, of: &str, digests: &[String]) -> Result<ItemList, ExportError> {
    crate::export::check_empty(out)?;
    if let Some(bad) = digests.iter().find(|d| !is_digest(d)) {
        return Err(ExportError::ListMismatch(format!(
            "{bad:?} is not a SHA-256 digest (64 lower-case hex digits)"
        )));
    }
    let mut text = serde_json::to_string(of).map_err(|e| ExportError::Corrupt {
        path: out.join(LIST_FILE),
        message: format!("cannot encode what the list is of: {e}"),
    })?;
    text.push('\n');
    for digest in digests {
        text.push_str(digest);
        text.push('\n');
    }
    files::make_dir(&out.join(STATE_DIR))?;
    files::write_whole(&out.join(LIST_FILE), text.as_bytes())?;
    Ok(ItemList::of(digests.iter().map(String::as_str)))
}

/// The list [`freeze_list`] kept in `out`, while its export is unfinished; `None` when there
/// is none (no export there, or a finished one).
pub fn frozen_list(out: &Path) -> Result<Option<FrozenList>, ExportError> {
    let path = out.join(LIST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ExportError::io(&path)(e)),
    };
    let corrupt = |message: String| ExportError::Corrupt {
        path: path.clone(),
        message,
    };
    let mut lines = text.lines();
    let of: String = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| corrupt(format!("its first line is not what the list is of: {e}")))?;
    let mut digests = Vec::new();
    for (number, line) in lines.enumerate() {
        if !is_digest(line) {
            return Err(corrupt(format!("line {} is not a digest", number + 2)));
        }
        digests.push(line.to_string());
    }
    let state = State::load(out)?;
    if let Some(state) = &state
        && state.header.items != ItemList::of(digests.iter().map(String::as_str))
    {
        return Err(corrupt(format!(
            "not the list of {} items its export's state names",
            state.header.items.count
        )));
    }
    Ok(Some(FrozenList {
        of,
        digests,
        done: state.map_or(0, |s| s.done),
    }))
}

fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What is complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// What the export is of: a rerun must be of the same (see `export::fingerprint`).
    pub(crate) fingerprint: String,
    /// The header the export began with (its query, case and time stay those of the start).
    pub(crate) header: ExportHeader,
    /// Items of the list done, exported or excepted.
    pub(crate) done: u64,
    /// The part being filled, from 1.
    pub(crate) part: u32,
    /// The bytes written to it so far.
    pub(crate) part_used: u64,
    /// The length of each appended file (relative path) after the last complete item.
    pub(crate) lengths: BTreeMap<String, u64>,
    /// Items exported.
    pub(crate) exported: u64,
    /// Bytes of natives written.
    pub(crate) bytes: u64,
    /// Exported items per custodian.
    pub(crate) per_custodian: BTreeMap<String, u64>,
    /// The exceptions so far.
    pub(crate) exceptions: Vec<Exception>,
}

impl State {
    pub(crate) fn path(out: &Path) -> PathBuf {
        out.join(STATE_DIR).join("state.json")
    }

    /// The state of an unfinished export in `out`, if there is one.
    pub(crate) fn load(out: &Path) -> Result<Option<State>, ExportError> {
        let path = State::path(out);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ExportError::io(&path)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| ExportError::Corrupt {
                path,
                message: format!("not an export's state: {e}"),
            })
    }

    /// Writes the state whole and durably.
    pub(crate) fn save(&self, out: &Path) -> Result<(), ExportError> {
        let path = State::path(out);
        let text = serde_json::to_vec(self).map_err(|e| ExportError::Corrupt {
            path: path.clone(),
            message: format!("cannot encode the state: {e}"),
        })?;
        files::write_whole(&path, &text)
    }
}
