//! The worker host as a library: loading plugins from the plugin directory, their host
//! contexts, starting them, and running jobs through them. `bonnie-worker` is its program;
//! other programs that read the archive (`bonnie-api`) open the configured storage plugin
//! through it.
// The one crate that loads libraries: unsafe only in loader.rs, each block with its SAFETY.
#![deny(unsafe_code)]

pub mod context;
pub mod loader;
pub mod metrics;
pub mod pipeline;
pub mod runtime;
pub mod start;
pub mod trust;

use bonnie_core::Config;
use bonnie_plugin_api::storage::StorageBox;

/// Loads the plugin directory and starts the configured storage plugin alone, for a program
/// that reads what the workers archive. Fails when no storage plugin is there.
pub fn open_storage(
    config: &Config,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(String, StorageBox)> {
    let plugins: Vec<loader::Plugin> =
        loader::load_dir(&config.worker.plugin_dir, &config.worker.disabled)?
            .into_iter()
            .filter_map(|entry| match entry {
                loader::Entry::Loaded(plugin) => Some(plugin),
                _ => None,
            })
            .collect();
    let shared = context::Shared {
        config_dir: config.dir().to_string_lossy().into_owned(),
        storage: None,
        stopping,
    };
    start::open_storage(config, &plugins, &shared)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no storage plugin is in {} (enabled); the archive cannot be read",
            config.worker.plugin_dir.display()
        )
    })
}
