//! One mail layer for every part of bonnie: a message's bytes read with `mail-parser` into
//! what the archive keeps (every header in order, decoded in every charset mail-parser knows;
//! addresses and groups; bodies and attachments as text) and what search indexes, folded the
//! same way at indexing and at query time.
#![forbid(unsafe_code)]

mod fold;
mod headers;
mod message;
mod part;
mod rfc2231;
mod text;

pub use fold::{MAX_INDEXED_WORD_BYTES, fold_for_search, index_words};
pub use headers::{decode_words, format_address, headers};
pub use message::{Address, Attachment, Header, Message, TextPart, parse, parse_with_attachments};
pub use part::{PartError, RawPart, decode_charset, find_part};
pub use text::{DEFAULT_MAX_INDEXED_TEXT_BYTES, SearchText};
