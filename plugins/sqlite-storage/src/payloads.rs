//! Where the storage keeps message payloads: in the database (`payloads` table) beside the
//! payload folder the collector writes large ones into (the default), or in an S3 bucket
//! (`payload_store = "s3"`) that takes in that folder's payloads. Either way a payload in the
//! database is found first, so an archive moved to a bucket still reads what it kept before.
//! With `payload_key_file` every one of them holds payloads sealed ([`Sealer`]): the
//! database's rows, the folder's files (the collector's plain ones sealed in place when the
//! worker first reads them) and the bucket's objects.

use std::sync::Arc;

use bonnie_payload_store::{Error, LocalFolder, PayloadStore, Sealer};

/// Where payloads are written, and looked for beyond the database, and how they are sealed.
#[derive(Clone, Default)]
pub struct Payloads {
    place: Place,
    sealer: Sealer,
}

#[derive(Clone)]
enum Place {
    /// Written into the database; looked for in the collector's payload folder after it.
    InDatabase(Option<LocalFolder>),
    /// Written into a store beyond this host, which takes in the collector's folder.
    Beyond(Arc<dyn PayloadStore>),
}

impl Default for Place {
    fn default() -> Self {
        Self::InDatabase(None)
    }
}

impl std::fmt::Debug for Payloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

impl Payloads {
    /// Payloads written into the database, those `folder` holds read after it; all sealed by
    /// `sealer` (the folder's plain files at their first read).
    pub fn in_database(folder: LocalFolder, sealer: Sealer) -> Self {
        Self {
            place: Place::InDatabase(Some(folder.sealed_by(sealer.clone()))),
            sealer,
        }
    }

    /// Payloads written into `store` (which seals them itself); the database's rows, kept
    /// before, opened by `sealer`.
    pub fn beyond(store: Arc<dyn PayloadStore>, sealer: Sealer) -> Self {
        Self {
            place: Place::Beyond(store),
            sealer,
        }
    }

    /// The store new payloads go to when it is not the database.
    pub fn store_beyond(&self) -> Option<&dyn PayloadStore> {
        match &self.place {
            Place::InDatabase(_) => None,
            Place::Beyond(store) => Some(store.as_ref()),
        }
    }

    /// What the database keeps of payload `bytes` in its `data` column, beside their size:
    /// their zstd frame, sealed if there are keys.
    pub fn row(&self, digest: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        self.sealer.keep(digest, bytes)
    }

    /// The payload in a `payloads` row (`size`, `data`), checked against its digest: damage,
    /// a key the sealer lacks and a size that is not one are errors, never a wrong payload.
    pub fn open_row(&self, digest: &str, size: i64, data: &[u8]) -> Result<Vec<u8>, Error> {
        let size = u64::try_from(size)
            .map_err(|_| Error::Damaged(format!("payload {digest} claims {size} bytes")))?;
        self.sealer.open(digest, size, data)
    }

    /// The payload of `digest` outside the database, if it is there (checked).
    pub fn beyond_database(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        match &self.place {
            Place::InDatabase(None) => Ok(None),
            Place::InDatabase(Some(folder)) => folder.get(digest),
            Place::Beyond(store) => store.get(digest),
        }
    }

    /// Removes the payload of `digest` outside the database, wherever it may be.
    pub fn remove(&self, digest: &str) -> Result<(), Error> {
        match &self.place {
            Place::InDatabase(None) => Ok(()),
            Place::InDatabase(Some(folder)) => folder.remove(digest),
            Place::Beyond(store) => store.remove(digest),
        }
    }

    /// Where payloads are, for the start-up message.
    pub fn location(&self) -> String {
        let sealed = if self.sealer.seals() { ", sealed" } else { "" };
        match &self.place {
            Place::InDatabase(None) => format!("the database{sealed}"),
            Place::InDatabase(Some(folder)) => {
                format!("the database{sealed} and {}", folder.location())
            }
            Place::Beyond(store) => store.location(),
        }
    }
}
