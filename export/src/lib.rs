//! e-Discovery exports: the items a search or a case chose, written as files review tools load,
//! with the proof that each is what the archive holds.
//!
//! The caller (the `bonnie export` command) hands [`export`] an [`ExportHeader`] (the query, the
//! case, the time zone, the signed checkpoint and the archive's public key) and the items, one
//! at a time, each with its native bytes as a reader, its leaf and its inclusion proof; this
//! crate reads no storage. [`verify()`] checks a finished export offline.
//!
//! - [`item`]: what the caller gives: the header, the items, the options.
//! - [`mbox`]: the mboxrd dialect (quoting `>*From ` lines, so a message round-trips).
//! - [`dat`]: the Concordance / Relativity load file (DAT) and its delimiters.
//! - [`manifest`]: the per-item and per-export manifest (JSON and CSV).
//! - `export` (re-exported at the root): the streamed, split, resumable writer.
//! - [`mod@verify`]: checksums, native digests against their leaves, inclusion proofs, the
//!   checkpoint's signature.
//!
//! # The layout of an export
//!
//! | path | what |
//! |---|---|
//! | `natives/<part>/<DOCID>.eml` | EML and DAT: each message's archived bytes, unchanged |
//! | `natives/<part>/<DOCID>.<n>.<ext>` | DAT: each attachment, a family member of its message |
//! | `text/<part>/<DOCID>.txt` | DAT: the extracted text of each document |
//! | `mbox/<part>.mbox` | MBOX: the messages in mboxrd |
//! | `loadfile.dat` | DAT: the load file |
//! | `manifest.json`, `manifest.csv` | every item, and the export's query, counts, exceptions |
//! | `checkpoint.txt`, `public-key.txt` | the signed checkpoint the proofs lead to, and its key |
//! | `SHA256SUMS` | `sha256sum -c` format, over every other file |
//!
//! Parts are numbered `0001`, `0002`...: a part's natives (or its mbox file) stop growing once
//! they reach `part_bytes`. While an export runs, `.bonnie-export/` holds its state (what is
//! committed, synced every `commit_items` items) and the list of items the caller froze with
//! [`freeze_list`] before the first run, so a rerun exports the same items; a finished export
//! has none.

#![forbid(unsafe_code)]

pub mod dat;
mod export;
mod files;
mod finish;
pub mod item;
pub mod manifest;
pub mod mbox;
mod natives;
mod state;
pub mod verify;

use std::path::PathBuf;

pub use export::{Progress, Summary, export};
pub use item::{
    Attachment, Envelope, Exception, ExportHeader, ExportItem, Format, ItemList, ItemMeta, Options,
};
pub use state::{FrozenList, freeze_list, frozen_list};
pub use verify::{Finding, KeyTrust, Report, verify};

/// Why an export or its verification could not go on (an item that cannot be exported is not
/// an error: it goes to the exceptions list).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or folder of the export could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The folder holds something that is not an unfinished export of the same items.
    #[error("{path}: {message}")]
    Refused {
        /// The export's folder.
        path: PathBuf,
        /// Why it is refused.
        message: String,
    },
    /// The header's checkpoint or public key does not hold.
    #[error("the export's checkpoint: {0}")]
    Checkpoint(#[source] bonnie_ledger::LedgerError),
    /// The header names a time zone jiff does not know.
    #[error("time zone {zone:?}: {message}")]
    Zone {
        /// The zone's name.
        zone: String,
        /// What jiff said.
        message: String,
    },
    /// The items given are not the list the header announced.
    #[error("the items are not the list the header names: {0}")]
    ListMismatch(String),
    /// A state file or manifest that cannot be read.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ExportError {
    /// An I/O error on `path`, for `map_err`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
        move |source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
