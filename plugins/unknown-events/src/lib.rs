//! Handler plugin `unknown-events`: Events bonnie does not know by name, stored as received and flagged, never dropped. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

bonnie_plugin_api::export_handler! {
    name: "unknown-events",
    description: "Events bonnie does not know by name, stored as received and flagged, never dropped.",
    new: |host| ArchiveHandler::new(host, Events::Unknown),
}
