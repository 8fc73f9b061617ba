//! What Cyrus puts in its notifications, parsed: IMAP URLs and mailbox paths, UID sets,
//! ACL strings, ENVELOPE structures and RFC 2047 encoded words.

pub mod acl;
pub mod client;
pub mod envelope;
pub mod rfc2047;
pub mod uidset;
pub mod uri;
