//! The stable ABI between `bonnie-worker` and its plugins, built on abi_stable.
//!
//! A plugin is a `cdylib` exporting exactly one root module: an [`input`], a [`handler`], a
//! [`storage`] or an [`output`]. Plugin authors implement the plain Rust traits of the
//! [`plugin`] module and export them with one of the `export_*!` macros, which wrap every
//! call in a panic guard; the host only ever sees the FFI-safe types of the other modules.
//! With the feature `testing`, [`testing`] runs a plugin in a host of its own, for unit tests.
//!
//! This crate is an interface only. The abi_stable derives expand to `unsafe impl`s, so
//! unsafe code is allowed here; nothing in this crate writes an `unsafe` block of its own.
#![allow(unsafe_code)]

pub mod error;
pub mod frozen;
pub mod handler;
pub mod host;
pub mod input;
pub mod items;
pub mod output;
pub mod plugin;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub use abi_stable;

pub use error::{ErrorKind, PluginError};
pub use handler::HandlerOutcome;
pub use host::{Host, LogLevel};
pub use input::{Job, JobOutcome, NextJob};
pub use output::{ItemStatus, OutputItem};
pub use plugin::{BuildInfo, Handler, Input, Output, PluginInfo, Storage};
pub use storage::{IndexTerm, Record, RecordQuery};

/// The plugin-api version this crate was built as, which is the ABI version.
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The root-module names that identify a plugin's kind in its library header.
pub mod kind {
    /// Root-module name of input plugins.
    pub const INPUT: &str = "bonnie_input";
    /// Root-module name of handler plugins.
    pub const HANDLER: &str = "bonnie_handler";
    /// Root-module name of storage plugins.
    pub const STORAGE: &str = "bonnie_storage";
    /// Root-module name of output plugins.
    pub const OUTPUT: &str = "bonnie_output";
}

/// What plugin authors import.
pub mod prelude {
    pub use crate::plugin::{Handler, Input, Output, PluginInfo, Storage};
    pub use crate::{
        ErrorKind, HandlerOutcome, Host, IndexTerm, ItemStatus, Job, JobOutcome, LogLevel, NextJob,
        OutputItem, PluginError, Record, RecordQuery,
    };
}
