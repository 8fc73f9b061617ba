//! What Cyrus puts in its notifications, parsed: IMAP URLs and mailbox paths, UID sets,
//! ACL strings, ENVELOPE structures and what is left of base64 here. Talking IMAP to Cyrus is
//! bonnie-imap's.

pub mod acl;
pub mod envelope;
pub mod uidset;
pub mod uri;
