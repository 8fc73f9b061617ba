//! bonnie's verifiable log. Every archived record, and every audit, purge and hold record, is a
//! leaf of an RFC 6962 Merkle tree (leaf hash SHA-256(0x00 || data), node hash
//! SHA-256(0x01 || left || right)); signed checkpoints of the tree, each with a consistency
//! proof from the one before and optionally an RFC 3161 time stamp, let anyone check that
//! nothing was changed, removed or reordered since.
//!
//! - [`merkle`]: hashes, roots, inclusion and consistency proofs and their verification.
//! - [`store`] and [`sqlite`]: the append-only tree on a node store, in memory or in SQLite
//!   inside the caller's transaction.
//! - [`leaf`]: what a leaf commits to, and its canonical bytes.
//! - [`checkpoint`]: signed tree heads in the C2SP signed-note format, the archive's key file,
//!   publishing.
//! - [`timestamp`]: RFC 3161 requests to a time-stamping authority and checks of its tokens.
//! - [`verify`]: a whole-log check that names the first bad sequence number and what is wrong.
//!
//! # Leaf encoding, version 1
//!
//! A leaf's data (what its hash covers) is, in this order, big-endian throughout:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, `0x01` |
//! | 8 | sequence number (the leaf's index in the tree, from 0) |
//! | 1 | kind: 1 record, 2 audit, 3 purge, 4 hold, 5 hold release |
//! | 2 | length of the id in bytes |
//! | n | the job id (records) or action id, UTF-8 |
//! | 32 | SHA-256 of the record's canonical bytes |
//! | 1 | `0x00`, or `0x01` followed by 8 bytes: the sequence number acted on (purge, release) |
//! | 4 | number of payload digests |
//! | 32 each | SHA-256 of each payload, sorted ascending, no repeats |
//!
//! Nothing else is accepted when reading, so one leaf has exactly one encoding; a test pins the
//! hash of a known leaf. A later version gets a new version byte; version 1 is never changed.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod leaf;
pub mod merkle;
pub mod sqlite;
pub mod store;
pub mod timestamp;
pub mod verify;

pub use checkpoint::{ArchiveKey, Checkpoint, PublicKey};
pub use leaf::{Entry, LeafData, LeafKind};
pub use merkle::{Frontier, Hash, NodeReader};
pub use sqlite::{SqliteStore, StoredCheckpoint};
pub use store::{MemoryStore, NodeStore, append};
pub use verify::{Finding, FindingKind, Report, verify};

use std::path::PathBuf;

/// Entries for tests: records `job-<i>` with distinct digests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::{Entry, LeafKind};

    /// Records for sequence numbers `range`.
    pub(crate) fn entries(range: std::ops::Range<u64>) -> impl Iterator<Item = Entry> {
        range.map(|i| Entry {
            kind: LeafKind::Record,
            id: format!("job-{i}"),
            record_digest: [i as u8; 32],
            payload_digests: vec![[(i % 7) as u8; 32]],
            refers_to: None,
        })
    }
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A root or proof was asked of more leaves than the tree has.
    #[error("the tree has {size} leaves, not {wanted}")]
    TreeTooSmall {
        /// The size asked for.
        wanted: u64,
        /// The tree's size.
        size: u64,
    },
    /// A proof was asked for a leaf outside the tree.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    NoSuchLeaf {
        /// The leaf asked for.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// The node store lacks a node its size implies: the store is damaged.
    #[error("the node store has no node at level {level}, index {index}")]
    MissingNode {
        /// The node's level (0: leaves).
        level: u32,
        /// Its index in the level.
        index: u64,
    },
    /// A leaf was written out of order.
    #[error("leaf {seq} written to a tree of {size} leaves: leaves are appended in order")]
    NotNext {
        /// The leaf's sequence number.
        seq: u64,
        /// The tree's size.
        size: u64,
    },
    /// A leaf's bytes are not a canonical encoding.
    #[error("not a leaf at byte {offset}: {message}")]
    BadLeaf {
        /// Where reading stopped.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// An id too long for the encoding.
    #[error("an id of {length} bytes: at most 65,535")]
    IdTooLong {
        /// The id's length.
        length: usize,
    },
    /// More payload digests than the encoding counts.
    #[error("{count} payload digests: at most 2^32 - 1")]
    TooManyPayloads {
        /// How many.
        count: usize,
    },
    /// SQLite refused a statement.
    #[error("cannot {what} in SQLite: {source}")]
    Sqlite {
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file holds no usable key, or is readable by others.
    #[error("{path}: {message}")]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A text is not a checkpoint, or its signature does not verify.
    #[error("not a valid checkpoint: {0}")]
    BadCheckpoint(String),
    /// The time-stamping authority could not be reached or answered badly.
    #[error("time-stamping authority {url}: {message}")]
    Timestamp {
        /// The TSA's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A time-stamp response does not stamp what it should.
    #[error("bad time-stamp token: {0}")]
    BadTimestamp(String),
}
