//! Handler plugin `messageappend`: MessageAppend and MessageNew: the appended or delivered message. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names.
const EVENTS: &[&str] = &["MessageAppend", "MessageNew"];

bonnie_plugin_api::export_handler! {
    name: "messageappend",
    description: "MessageAppend and MessageNew: the appended or delivered message.",
    new: |host| ArchiveHandler::new(host, Events::Named(EVENTS)),
}
