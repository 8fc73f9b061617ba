//! What bonnie's binaries share and what is not part of the plugin ABI: the configuration
//! file, the model of a Cyrus notification, and logging set-up.
#![forbid(unsafe_code)]

pub mod b64;
pub mod config;
pub mod daemon;
pub mod imap;
pub mod jsonl;
#[cfg(feature = "transport")]
pub mod keys;
pub mod ledger;
pub mod logging;
pub mod notification;
pub mod payload;
pub mod protocol;
pub mod run_lock;
pub mod systemd;
pub mod time;
#[cfg(feature = "transport")]
pub mod transport;

pub use config::{Config, ConfigError};
