//! Handler plugin `messages`: Message and flag events: copy, move, expunge, expire, read, trash, flags set and cleared. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names (Cyrus 3.6 sends the vnd.cmu names;
/// RFC 5423 names them without the prefix).
const EVENTS: &[&str] = &[
    "vnd.cmu.MessageCopy",
    "vnd.cmu.MessageMove",
    "MessageCopy",
    "MessageMove",
    "MessageExpunge",
    "MessageExpire",
    "MessageRead",
    "MessageTrash",
    "FlagsSet",
    "FlagsClear",
];

bonnie_plugin_api::export_handler! {
    name: "messages",
    description: "Message and flag events: copy, move, expunge, expire, read, trash, flags set and cleared.",
    new: |host| ArchiveHandler::new(host, Events::Named(EVENTS)),
}
