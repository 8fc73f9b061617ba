//! The host context each plugin receives: its config table, its log lines re-emitted through
//! `tracing`, and a handle on the configured storage.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RStr, RString},
};
use bonnie_plugin_api::{
    LogLevel,
    host::{HostApi, HostApi_TO, HostBox, LogLevel_NE},
    storage::StorageBox,
};

/// What the host shares with every plugin context.
#[derive(Clone)]
pub struct Shared {
    /// The configuration file's folder.
    pub config_dir: String,
    /// The storage in use, once started; plugins get clones of it.
    pub storage: Option<StorageBox>,
    /// Set when the host is shutting down.
    pub stopping: Arc<AtomicBool>,
}

/// One plugin's context.
pub struct HostContext {
    plugin: String,
    config_json: String,
    shared: Shared,
}

impl HostContext {
    /// The FFI object handed to the plugin named `plugin`.
    pub fn new_box(plugin: &str, config_json: String, shared: Shared) -> HostBox {
        HostApi_TO::from_value(
            HostContext {
                plugin: plugin.to_string(),
                config_json,
                shared,
            },
            TD_Opaque,
        )
    }
}

impl HostApi for HostContext {
    fn plugin_name(&self) -> RString {
        self.plugin.as_str().into()
    }

    fn config_json(&self) -> RString {
        self.config_json.as_str().into()
    }

    fn config_dir(&self) -> RString {
        self.shared.config_dir.as_str().into()
    }

    fn log(&self, level: LogLevel_NE, message: RStr<'_>, fields: RStr<'_>) {
        emit(
            &self.plugin,
            level.as_enum().ok().copied(),
            message.as_str(),
            &render_fields(fields.as_str()),
        );
    }

    fn storage(&self) -> ROption<StorageBox> {
        self.shared.storage.clone().into()
    }

    fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Relaxed)
    }
}

/// Re-emits a plugin's log line. Unknown levels (from a newer plugin) log as warnings.
fn emit(plugin: &str, level: Option<LogLevel>, message: &str, fields: &str) {
    match level {
        Some(LogLevel::Error) => tracing::error!(plugin, "{message}{fields}"),
        Some(LogLevel::Info) => tracing::info!(plugin, "{message}{fields}"),
        Some(LogLevel::Debug) => tracing::debug!(plugin, "{message}{fields}"),
        Some(LogLevel::Trace) => tracing::trace!(plugin, "{message}{fields}"),
        _ => tracing::warn!(plugin, "{message}{fields}"),
    }
}

/// Turns the plugin's JSON fields into ` key=value` pairs appended to the message.
fn render_fields(json: &str) -> String {
    if json.is_empty() {
        return String::new();
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json) {
        Ok(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!(" {k}={s}"),
                other => format!(" {k}={other}"),
            })
            .collect(),
        Err(_) => format!(" fields={json}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_render_as_key_value_pairs() {
        assert_eq!(render_fields(r#"{"job":"7","n":3}"#), " job=7 n=3");
        assert_eq!(render_fields(""), "");
        assert_eq!(render_fields("garbage"), " fields=garbage");
    }
}
