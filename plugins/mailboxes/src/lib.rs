//! Handler plugin `mailboxes`: Folder events: create, delete, rename, (un)subscribe, modseq and ACL changes. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names.
const EVENTS: &[&str] = &[
    "MailboxCreate",
    "MailboxDelete",
    "MailboxRename",
    "MailboxSubscribe",
    "MailboxUnSubscribe",
    "MailboxModseq",
    "AclChange",
    // `bonnie reconcile`'s record of a folder or message the archive lacked.
    "vnd.bonnie.ReconcileGap",
];

bonnie_plugin_api::export_handler! {
    name: "mailboxes",
    description: "Folder events: create, delete, rename, (un)subscribe, modseq and ACL changes.",
    new: |host| ArchiveHandler::new(host, Events::Named(EVENTS)),
}
