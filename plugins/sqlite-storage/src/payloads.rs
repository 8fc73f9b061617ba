//! Where the storage keeps message payloads: in the database (`payloads` table) beside the
//! payload folder the collector writes large ones into (the default), or in an S3 bucket
//! (`payload_store = "s3"`) that takes in that folder's payloads. Either way a payload in the
//! database is found first, so an archive moved to a bucket still reads what it kept before.

use std::sync::Arc;

use bonnie_payload_store::{Error, LocalFolder, PayloadStore};

/// Where payloads are written, and looked for beyond the database.
#[derive(Clone)]
pub enum Payloads {
    /// Written into the database; looked for in the collector's payload folder after it.
    InDatabase(Option<LocalFolder>),
    /// Written into a store beyond this host, which takes in the collector's folder.
    Beyond(Arc<dyn PayloadStore>),
}

impl Default for Payloads {
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
    /// The payload of `digest` outside the database, if it is there (checked).
    pub fn beyond_database(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::InDatabase(None) => Ok(None),
            Self::InDatabase(Some(folder)) => folder.get(digest),
            Self::Beyond(store) => store.get(digest),
        }
    }

    /// Removes the payload of `digest` outside the database, wherever it may be.
    pub fn remove(&self, digest: &str) -> Result<(), Error> {
        match self {
            Self::InDatabase(None) => Ok(()),
            Self::InDatabase(Some(folder)) => folder.remove(digest),
            Self::Beyond(store) => store.remove(digest),
        }
    }

    /// Where payloads are, for the start-up message.
    pub fn location(&self) -> String {
        match self {
            Self::InDatabase(None) => "the database".to_string(),
            Self::InDatabase(Some(folder)) => format!("the database and {}", folder.location()),
            Self::Beyond(store) => store.location(),
        }
    }
}
