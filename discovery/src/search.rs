//! A search over a storage: the storage answers the content part of the query (relaxed to a
//! superset), each candidate gets its state from the log, and the whole query decides.

use bonnie_plugin_api::PluginError;

/// Why a search, or the state of an item, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The storage failed a read.
    #[error("{what}: {source}")]
    Storage {
        /// What was being read (`reading the log entries of payload 3f…`).
        what: String,
        /// The storage's error.
        source: PluginError,
    },
    /// A stored record could not be read as what it should be.
    #[error("{what} is not readable: {reason}")]
    Unreadable {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
}

impl DiscoveryError {
    /// A storage failure while doing `what`, for `map_err`.
    pub(crate) fn storage(what: String) -> impl FnOnce(PluginError) -> DiscoveryError {
        move |source| DiscoveryError::Storage { what, source }
    }
}
