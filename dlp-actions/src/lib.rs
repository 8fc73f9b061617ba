//! DLP alerts, at least once and never in the archive's way: the DLP handler puts each alert a
//! rule hit asks for (syslog, webhook, e-mail) in a durable outbox in the storage
//! ([`Outbox::enqueue`], idempotent by key, so a redelivered job sends nothing twice), and a
//! [`Sender`] thread per worker delivers what is due, claiming each entry first so that two
//! workers' senders do not both send it, and retrying failures with doubling backoff until
//! the entry is `sent` or, after its last attempt, `failed` with the reason.
//!
//! An outbox entry (collection [`COLLECTION`], keyed as the caller chose) is a JSON object:
//! `action` (the rule's [`bonnie_dlp::Action`]), `incident` (what the alert tells), `state`
//! (`pending`, `sent`, `failed`; also an index term), `attempts`, `next_attempt_ms`,
//! `enqueued_ms`, and then `claim` (`{by, until_ms}`), `last_error`, `sent_ms`, `failed_ms`.
#![forbid(unsafe_code)]

mod channels;
mod outbox;
mod sender;
mod settings;
mod summary;

pub use outbox::{COLLECTION, EntryState, Outbox};
pub use sender::{AlertLog, Sender};
pub use settings::{
    AlertSettings, RetrySettings, SmtpSecurity, SmtpSettings, SyslogFormat, SyslogSettings,
    SyslogTarget, WebhookSettings,
};
pub use summary::summary;

/// A setting of `[plugins.dlp.alerts]` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[plugins.dlp.alerts] {key}: {message}")]
pub struct SettingsError {
    /// The key, dotted below the table (`smtp.from`).
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl SettingsError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            message: message.into(),
        }
    }
}
