//! What a restore puts back: a user's folders and messages as they stood at one moment, read
//! from the archive, and where each goes in live Cyrus.
//!
//! - [`snapshot`]: the point-in-time state: for a user and a folder (with its subfolders or
//!   not) or one message, the folders then (their names then, following renames; deleted
//!   ones as they were before their deletion) and the messages in each (payload digest, flags
//!   then, INTERNALDATE). Folders come from their views (`folders-current`), messages from
//!   the places the archive recorded there and each message's state
//!   ([`bonnie_discovery::state`]).
//! - [`plan`]: the folder each restored folder goes to (a new `Restored/<moment>/...` by
//!   default, the original name, or a folder named by the admin).
//! - [`restored`]: the places restores filed messages in, which a message's own history
//!   leaves out.
//! - [`run`]: the restore into live Cyrus over IMAP, which `bonnie restore` and bonnie-api's
//!   `restore.start` both run.

#![forbid(unsafe_code)]

pub mod plan;
pub mod restored;
pub mod run;
pub mod snapshot;

use bonnie_discovery::DiscoveryError;
use bonnie_plugin_api::PluginError;

/// Why a snapshot cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The storage failed while reading `what`.
    #[error("cannot read {what} from the storage: {source}")]
    Storage {
        /// What was being read.
        what: String,
        /// The storage's error.
        source: PluginError,
    },
    /// A message's state could not be read.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The archive holds nothing the request names.
    #[error("{0}")]
    NotFound(String),
}

impl RestoreError {
    /// A storage failure while reading `what`.
    fn storage(what: impl Into<String>) -> impl FnOnce(PluginError) -> RestoreError {
        let what = what.into();
        move |source| RestoreError::Storage { what, source }
    }
}
