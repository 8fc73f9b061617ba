//! The state of an unfinished export, in `.bonnie-export/state.json`: how many items of the
//! list are done, the part being filled, and how long each appended file was after the last
//! complete item (a rerun cuts them back to that, so a half-written item leaves nothing). It
//! is written whole (a temporary file fsync'd and renamed) after every item.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{ExportError, files, item::Exception, item::ExportHeader};

/// The folder of an unfinished export's state, inside the export.
pub(crate) const STATE_DIR: &str = ".bonnie-export";

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
