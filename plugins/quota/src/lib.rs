//! Handler plugin `quota`: Quota events: changes, exceeded and back within. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names (Cyrus says QuotaExceed; the design
/// spells it QuotaExceeded).
const EVENTS: &[&str] = &["QuotaChange", "QuotaExceed", "QuotaExceeded", "QuotaWithin"];

bonnie_plugin_api::export_handler! {
    name: "quota",
    description: "Quota events: changes, exceeded and back within.",
    new: |host| ArchiveHandler::new(host, Events::Named(EVENTS)),
}
