//! Starts the loaded plugins in dependency order (storage, outputs, handlers, inputs), each
//! with its own host context, and reports every plugin's state. It fails closed: a worker
//! that would mark jobs DONE without doing what it is configured to do does not start.

use abi_stable::std_types::RResult;
use anyhow::{Context, bail};
use bonnie_core::Config;
use bonnie_plugin_api::{PluginError, input::InputBox, output::OutputBox, storage::StorageBox};
use tracing::{error, info};

use crate::{
    context::{HostContext, Shared},
    loader::{Kind, Module, Plugin},
    metrics::WorkerMetrics,
    pipeline::HandlerSlot,
};

/// A started input.
pub struct InputSlot {
    /// The plugin's name.
    pub name: String,
    /// The input.
    pub input: InputBox,
}

/// A started output.
pub struct OutputSlot {
    /// The plugin's name.
    pub name: String,
    /// The output.
    pub output: OutputBox,
}

/// Every started plugin, ready to run jobs.
pub struct Started {
    /// Inputs, by name.
    pub inputs: Vec<InputSlot>,
    /// Handlers, in the order they run.
    pub handlers: Vec<HandlerSlot>,
    /// The storage and its name, if one is configured.
    pub storage: Option<(String, StorageBox)>,
    /// Outputs, by name.
    pub outputs: Vec<OutputSlot>,
}

/// The input plugin that takes jobs from the broker.
const BROKER_INPUT: &str = "zmq-input";

/// Starts the plugins. A storage, output or handler that fails to start stops the start-up,
/// and so does having neither storage nor output: running on would mark jobs DONE whose
/// records were never kept, or kept without what that handler adds. An input that fails to
/// start is reported and skipped (its jobs wait where they are), as long as one starts.
/// Each handler's series are made in `metrics`.
pub fn start(
    config: &Config,
    plugins: &[Plugin],
    mut shared: Shared,
    metrics: &WorkerMetrics,
) -> anyhow::Result<Started> {
    let context = |plugin: &Plugin, shared: &Shared| {
        HostContext::new_box(
            plugin.name(),
            config.plugin_json(plugin.name()),
            shared.clone(),
        )
    };

    let storage = open_storage(config, plugins, &shared)?;
    if let Some((name, storage)) = &storage {
        // Before any handler runs: a sole worker's storage holds record writes from the first.
        let sole = config.worker.sole_writer;
        storage
            .claim_writer(sole)
            .into_result()
            .map_err(|e| anyhow::anyhow!("the storage plugin {name} refused this worker: {e}"))?;
        shared.storage = Some(storage.clone());
    }

    let mut outputs = Vec::new();
    for plugin in plugins.iter().filter(|p| p.kind() == Kind::Output) {
        let Module::Output(module) = plugin.module else {
            continue;
        };
        let output = started(plugin, module.new()(context(plugin, &shared)))
            .with_context(|| format!("the output plugin {} did not start", plugin.name()))?;
        outputs.push(OutputSlot {
            name: plugin.name().to_string(),
            output,
        });
    }
    match (&storage, outputs.is_empty()) {
        (None, true) => bail!(
            "neither a storage nor an output plugin is in {} (enabled): every job would be \
             marked DONE without its record being kept anywhere",
            config.worker.plugin_dir.display()
        ),
        (None, false) => {
            tracing::warn!("No storage plugin is configured: records are only written to outputs.")
        }
        _ => {}
    }

    let mut handlers = Vec::new();
    for plugin in ordered_handlers(config, plugins) {
        let Module::Handler(module) = plugin.module else {
            continue;
        };
        // The reason goes into the message itself: the start-up error is printed without
        // its chain of causes.
        let refused = |e: PluginError| {
            anyhow::anyhow!(
                "the handler plugin {} did not start ({e}), and jobs must not be stored without \
                 it; fix it, or list it in [worker] disabled to run without it",
                plugin.name()
            )
        };
        let handler = started(plugin, module.new()(context(plugin, &shared))).map_err(refused)?;
        let events = handler.events().into_result().map_err(|e| {
            error!(plugin = plugin.name(), error = %e, "Handler failed to list its events.");
            refused(e)
        })?;
        let events: Vec<String> = events.into_iter().map(|e| e.into_string()).collect();
        info!(plugin = plugin.name(), events = ?events, "Handler subscribed.");
        handlers.push(HandlerSlot {
            name: plugin.name().to_string(),
            handler,
            events,
            metrics: metrics.handler(plugin.name()),
        });
    }

    let mut inputs = Vec::new();
    for plugin in plugins.iter().filter(|p| p.kind() == Kind::Input) {
        let Module::Input(module) = plugin.module else {
            continue;
        };
        if let Ok(input) = started(plugin, module.new()(context(plugin, &shared))) {
            inputs.push(InputSlot {
                name: plugin.name().to_string(),
                input,
            });
        }
    }
    if inputs.is_empty() {
        bail!(
            "no input plugin started, so there are no jobs to run; check the plugin directory and the log above"
        );
    }
    // Only the broker's jobs become leaves of the verifiable log: said where it matters.
    if config.ledger.signing_key.is_some() {
        for slot in inputs.iter().filter(|s| s.name != BROKER_INPUT) {
            tracing::warn!(input = %slot.name,
                "This input's jobs do not come from the broker: what it archives has no leaf in the verifiable log, and `bonnie verify` does not cover it.");
        }
    }
    Ok(Started {
        inputs,
        handlers,
        storage,
        outputs,
    })
}

fn started<T>(plugin: &Plugin, result: RResult<T, PluginError>) -> Result<T, PluginError> {
    match result.into_result() {
        Ok(object) => {
            info!(plugin = plugin.name(), kind = %plugin.kind(), "Plugin started.");
            Ok(object)
        }
        Err(e) => {
            error!(plugin = plugin.name(), kind = %plugin.kind(), error = %e, "Plugin failed to start.");
            Err(e)
        }
    }
}

/// Starts the configured storage plugin (`[worker] storage`, or the only one loaded); none
/// when no storage plugin was loaded. Also what other programs reading the archive (the API)
/// use, so they read whichever storage the workers write.
pub fn open_storage(
    config: &Config,
    plugins: &[Plugin],
    shared: &Shared,
) -> anyhow::Result<Option<(String, StorageBox)>> {
    let Some(plugin) = choose_storage(config, plugins)? else {
        return Ok(None);
    };
    let Module::Storage(module) = plugin.module else {
        unreachable!("chosen by kind")
    };
    let context = HostContext::new_box(
        plugin.name(),
        config.plugin_json(plugin.name()),
        shared.clone(),
    );
    let storage = started(plugin, module.new()(context))
        .with_context(|| format!("the storage plugin {} did not start", plugin.name()))?;
    Ok(Some((plugin.name().to_string(), storage)))
}

/// The configured storage plugin, or the only one found.
fn choose_storage<'a>(
    config: &Config,
    plugins: &'a [Plugin],
) -> anyhow::Result<Option<&'a Plugin>> {
    let storages: Vec<&Plugin> = plugins
        .iter()
        .filter(|p| p.kind() == Kind::Storage)
        .collect();
    match &config.worker.storage {
        Some(name) => match storages.iter().find(|p| p.name() == name) {
            Some(plugin) => Ok(Some(*plugin)),
            None => bail!(
                "[worker] storage = {name:?}, but no storage plugin of that name was loaded (found: {})",
                names(&storages)
            ),
        },
        None => match storages.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(*only)),
            several => bail!(
                "several storage plugins were loaded ({}); choose one with [worker] storage = \"<name>\"",
                names(several)
            ),
        },
    }
}

fn names(plugins: &[&Plugin]) -> String {
    if plugins.is_empty() {
        return "none".to_string();
    }
    plugins
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Handlers in `[worker] handler_order`, then the others by name.
fn ordered_handlers<'a>(config: &Config, plugins: &'a [Plugin]) -> Vec<&'a Plugin> {
    let mut handlers: Vec<&Plugin> = plugins
        .iter()
        .filter(|p| p.kind() == Kind::Handler)
        .collect();
    let order = &config.worker.handler_order;
    for name in order {
        if !handlers.iter().any(|p| p.name() == name) {
            tracing::warn!(plugin = %name, "[worker] handler_order names a handler that was not loaded.");
        }
    }
    handlers.sort_by_key(|p| {
        let rank = order
            .iter()
            .position(|n| n == p.name())
            .unwrap_or(order.len());
        (rank, p.name().to_string())
    });
    handlers
}
