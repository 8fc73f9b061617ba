//! What the es-output and es-storage plugins share: a client of Elasticsearch 7+/8 or
//! OpenSearch on a tokio runtime of the plugin's own (never the host's), the index templates,
//! event-log writes through `_bulk` with retries and a dead-letter store, the log read back by
//! job id, and keyed records.
#![forbid(unsafe_code)]

mod client;
mod items;
mod log;
mod readback;
mod records;
mod settings;
mod templates;

pub use client::Es;
pub use settings::Settings;
