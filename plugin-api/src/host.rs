//! The host context: what the worker host gives every plugin (its config table, a logging
//! callback, storage access), as an FFI trait object and as the [`Host`] helper around it.

use std::{fmt::Display, path::PathBuf};

use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, ROption, RStr, RString},
};
use serde::de::DeserializeOwned;

use crate::{PluginError, storage::StorageBox};

/// The level of a log line a plugin emits through the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [u32; 1], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum LogLevel {
    /// Something failed. (since 1.0)
    Error,
    /// Something is wrong but work goes on. (since 1.0)
    Warn,
    /// What happened, for the administrator. (since 1.0)
    Info,
    /// Details for debugging. (since 1.0)
    Debug,
    /// Very verbose details. (since 1.0)
    Trace,
}

/// The services the host offers a plugin. Implemented by the host, called by plugins.
/// Methods may only be added at the end, with a default body.
#[sabi_trait]
pub trait HostApi: Send + Sync {
    /// The plugin's name, as the host knows it. (since 1.0)
    fn plugin_name(&self) -> RString;

    /// The plugin's own config table (`[plugins.<name>]`), as JSON text; `{}` when absent.
    /// (since 1.0)
    fn config_json(&self) -> RString;

    /// The folder of the configuration file: relative paths in the plugin's config are
    /// relative to it. (since 1.0)
    fn config_dir(&self) -> RString;

    /// Emits a log line through the host's logger. `fields` is a JSON object (or empty).
    /// (since 1.0)
    fn log(&self, level: LogLevel_NE, message: RStr<'_>, fields: RStr<'_>);

    /// The storage the host was configured with, if any. (since 1.0)
    fn storage(&self) -> ROption<StorageBox>;

    /// True once the host was asked to stop; long-running plugin threads should wind down.
    /// (since 1.0)
    #[sabi(last_prefix_field)]
    fn is_stopping(&self) -> bool;
}

/// The FFI trait object for [`HostApi`].
pub type HostBox = HostApi_TO<'static, RBox<()>>;

/// A plugin's handle on the host: typed helpers over [`HostApi`].
pub struct Host {
    inner: HostBox,
}

impl Host {
    /// Wraps the host object a plugin constructor receives.
    pub fn new(inner: HostBox) -> Self {
        Self { inner }
    }

    /// The plugin's name.
    pub fn plugin_name(&self) -> String {
        self.inner.plugin_name().into_string()
    }

    /// The plugin's config table, deserialized. Unknown or mistyped fields are a config error
    /// that names the plugin.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let json = self.inner.config_json();
        serde_json::from_str(json.as_str()).map_err(|e| {
            PluginError::config(format!(
                "invalid configuration for plugin {}: {e}",
                self.plugin_name()
            ))
        })
    }

    /// A path from the plugin's config, resolved against the configuration file's folder.
    pub fn path(&self, configured: &str) -> PathBuf {
        let configured = PathBuf::from(configured);
        if configured.is_absolute() {
            configured
        } else {
            PathBuf::from(self.inner.config_dir().as_str()).join(configured)
        }
    }

    /// Emits a log line with key/value fields.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &dyn Display)]) {
        let fields = if fields.is_empty() {
            String::new()
        } else {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            serde_json::Value::Object(map).to_string()
        };
        self.inner.log(
            LogLevel_NE::new(level),
            message.into(),
            fields.as_str().into(),
        );
    }

    /// Logs an error.
    pub fn error(&self, message: &str, fields: &[(&str, &dyn Display)]) {
        self.log(LogLevel::Error, message, fields);
    }

    /// Logs a warning.
    pub fn warn(&self, message: &str, fields: &[(&str, &dyn Display)]) {
        self.log(LogLevel::Warn, message, fields);
    }

    /// Logs an informational line.
    pub fn info(&self, message: &str, fields: &[(&str, &dyn Display)]) {
        self.log(LogLevel::Info, message, fields);
    }

    /// Logs a debug line.
    pub fn debug(&self, message: &str, fields: &[(&str, &dyn Display)]) {
        self.log(LogLevel::Debug, message, fields);
    }

    /// The configured storage, or a transient error when none is configured.
    pub fn storage(&self) -> Result<crate::storage::StorageClient, PluginError> {
        match self.inner.storage() {
            ROption::RSome(storage) => Ok(crate::storage::StorageClient::new(storage)),
            ROption::RNone => Err(PluginError::config(format!(
                "plugin {} needs storage, but no storage plugin is configured",
                self.plugin_name()
            ))),
        }
    }

    /// True once the host is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.inner.is_stopping()
    }
}
