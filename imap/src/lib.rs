//! One IMAP layer for bonnie: the collector, restore and back-fill talk to Cyrus through it.
//! A blocking client (the collector is thread-pool based) over std's TCP and rustls, whose
//! server responses are framed and parsed by imap-proto (the `imap` crate's parser); sizes the
//! server announces are bounded before anything is allocated for them, mailbox names are
//! UTF-8 to callers and modified UTF-7 on the wire. See docs/decisions.md for why this and
//! not imap-codec or the `imap` crate.
#![forbid(unsafe_code)]

mod command;
mod connection;
mod error;
mod metadata;
mod ops;
mod pool;
pub mod tls;
pub mod utf7;

pub use command::{Command, quote};
pub use connection::{Config, Connection, DEFAULT_MAX_LITERAL_BYTES, Done, Security};
pub use error::ImapError;
/// The parsed responses, as imap-proto gives them (for [`Connection::run`]'s callers).
pub use imap_proto::{Response, ResponseCode};
pub use ops::{
    AppendOptions, AppendUid, Fetched, ListEntry, MailboxStatus, Selected, StoreMode,
    internal_date_ms,
};
pub use pool::{Credentials, Identity, Pool};
