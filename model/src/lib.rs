//! The archive model the handler plugins share: the normalized record (the design's log
//! entry), user records, folder records with their state checksum, sessions, and the revisions
//! of Kolab groupware objects, all kept through the host's storage.
#![forbid(unsafe_code)]

mod cache;
pub mod collect;
pub mod custodians;
pub mod dlp_incidents;
pub mod folder_view;
pub mod folders;
pub mod handler;
pub mod items;
pub mod log_pages;
pub mod mail_history;
pub mod message_places;
pub mod objects;
pub mod record;
pub mod restores;
pub mod sessions;
pub mod users;

pub use handler::{ArchiveHandler, Events};
