//! The one error type that crosses the plugin boundary, and what the host makes of it.

use std::fmt;

use abi_stable::{StableAbi, std_types::RString};

/// Why a plugin call failed. The host maps the kind onto the job's outcome.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [u32; 1], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The plugin's configuration is invalid; the plugin cannot start. (since 1.0)
    Config,
    /// A passing fault (a peer is down, a lock is busy): retry the job later. (since 1.0)
    Transient,
    /// The input is bad and retrying will not help: keep the job as failed. (since 1.0)
    Rejected,
    /// The plugin panicked; the panic was caught at the boundary. (since 1.0)
    Panicked,
}

/// An error returned by a plugin (or by the host to a plugin).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PluginError {
    /// What kind of failure this is. (since 1.0)
    pub kind: ErrorKind_NE,
    /// A sentence for the administrator. (since 1.0)
    pub message: RString,
}

impl PluginError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind_NE::new(kind),
            message: RString::from(message.into()),
        }
    }

    /// The plugin's configuration is invalid.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A passing fault: retry later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// Bad input: do not retry.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// A caught panic, with its message.
    pub fn panicked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Panicked, message)
    }

    /// The kind, or `None` when a newer plugin sent a kind this build does not know.
    pub fn kind(&self) -> Option<&ErrorKind> {
        self.kind.as_enum().ok()
    }

    /// The kind's name for logs; unknown kinds name their discriminant.
    pub fn kind_name(&self) -> String {
        match self.kind() {
            Some(kind) => format!("{kind:?}").to_lowercase(),
            None => format!("unknown kind {}", self.kind.get_discriminant()),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind_name(), self.message)
    }
}

impl std::error::Error for PluginError {}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}
