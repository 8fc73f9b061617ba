//! Handler plugin `sessions`: Login and Logout, kept as sessions with their duration. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names.
const EVENTS: &[&str] = &["Login", "Logout"];

bonnie_plugin_api::export_handler! {
    name: "sessions",
    description: "Login and Logout, kept as sessions with their duration.",
    new: |host| ArchiveHandler::new(host, Events::Named(EVENTS)),
}
