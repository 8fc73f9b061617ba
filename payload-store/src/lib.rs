//! Where the storage plugins keep message payloads outside their records: a folder of files
//! (the default: sqlite-storage's payload folder) or an S3-compatible bucket, for archives
//! beyond one disk. Both are content-addressed alike ([`bonnie_core::payload`]): a payload is
//! named by its SHA-256, kept once under `<first two hex digits>/<digest>.zst` as its size
//! then its zstd frame, and checked against its digest on every read, so that damage is an
//! error and never a wrong payload. With a key file (`payload_key_file`) every store seals
//! what it keeps ([`Sealer`]) and still reads what it kept plain before.
//!
//! The collector hands payloads too large for a job over in a folder
//! (`[collector] payload_dir`). A storage whose payloads live in a bucket reads that folder
//! through [`HandedOver`]: a payload found there is copied into the bucket at its first read
//! (the worker reads it when it records the message) and its file removed.
#![forbid(unsafe_code)]

mod local;
mod s3;
mod seal;
mod settings;

pub use local::LocalFolder;
pub use s3::{S3Bucket, S3Config};
pub use seal::{Sealer, is_sealed};
pub use settings::{Kind, Settings};

/// Why a payload could not be kept or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// What the store keeps under a digest is not that payload (altered, truncated, not
    /// ours): refused, never returned.
    Damaged(String),
    /// The store could not be reached or refused the request: a passing fault, the job is
    /// tried again.
    Unavailable(String),
    /// The payload is sealed with a key this store was not given (no key file, or one
    /// without the id the payload names): the key file must be put right.
    Key(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged(message) | Self::Unavailable(message) | Self::Key(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The same error, its message saying where (a folder, a bucket).
    fn within(self, place: &str) -> Self {
        match self {
            Self::Damaged(m) => Self::Damaged(format!("{m} (in {place})")),
            Self::Unavailable(m) => Self::Unavailable(format!("{m} (in {place})")),
            Self::Key(m) => Self::Key(format!("{m} (in {place})")),
        }
    }
}

/// A store of payloads, content-addressed.
pub trait PayloadStore: Send + Sync {
    /// Keeps `bytes` unless a payload of their digest is kept already (then nothing
    /// changes); their digest. Kept once this returns.
    fn put(&self, bytes: &[u8]) -> Result<String, Error>;

    /// The payload of this digest, checked against it; `None` if none is kept (or `digest`
    /// is not a digest).
    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Where the payloads are, for messages: a folder, or a bucket at an endpoint.
    fn location(&self) -> String;

    /// Removes the payload of `digest`, if kept: retention's purge, the one caller, removes a
    /// payload once no kept record names it. A store that cannot remove refuses, so a purge
    /// never reports a payload gone that is still kept.
    fn remove(&self, digest: &str) -> Result<(), Error> {
        Err(Error::Unavailable(format!(
            "{} cannot remove payload {digest}",
            self.location()
        )))
    }
}

/// A store that also takes in the payloads the collector handed over in a folder: one not in
/// the store but in the folder is copied into the store when first read, then its file is
/// removed (the store has it; a later copy handed over again is taken in again).
pub struct HandedOver<S> {
    store: S,
    folder: LocalFolder,
}

impl<S: PayloadStore> HandedOver<S> {
    /// `store`, taking in what the collector leaves in `folder`.
    pub fn new(store: S, folder: LocalFolder) -> Self {
        Self { store, folder }
    }
}

impl<S: PayloadStore> PayloadStore for HandedOver<S> {
    fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        self.store.put(bytes)
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(bytes) = self.store.get(digest)? {
            return Ok(Some(bytes));
        }
        let Some(bytes) = self.folder.get(digest)? else {
            return Ok(None);
        };
        self.store.put(&bytes)?;
        self.folder.remove(digest)?;
        Ok(Some(bytes))
    }

    fn remove(&self, digest: &str) -> Result<(), Error> {
        self.store.remove(digest)?;
        self.folder.remove(digest)
    }

    fn location(&self) -> String {
        format!(
            "{} (taking in {})",
            self.store.location(),
            self.folder.location()
        )
    }
}
