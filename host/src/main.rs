//! `bonnie-worker`: loads the plugins of the plugin directory and runs jobs from the inputs
//! through handlers, storage and outputs until SIGTERM/SIGINT or until every input ends.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use bonnie_core::{
    Config,
    daemon::{self, DaemonArgs},
};
use clap::Parser;
use serde::Serialize;

use bonnie_host::{
    context::Shared,
    loader::{self, Entry, LayoutCheck, Plugin},
    metrics::WorkerMetrics,
    runtime, start,
};

/// bonnie's worker host: runs Cyrus notifications through input, handler, storage and output
/// plugins loaded from the plugin directory.
#[derive(Parser)]
#[command(name = "bonnie-worker", version)]
struct Args {
    #[command(flatten)]
    common: DaemonArgs,
    /// List every plugin file (file, name, kind, plugin-api version, loaded or refused) and
    /// exit; the exit status is 1 if an enabled plugin was refused
    #[arg(long)]
    check_plugins: bool,
    /// With --check-plugins: print the listing as one JSON document (file, name, kind,
    /// plugin-api version, layout check, panic strategy, status and reason of each file)
    #[arg(long, requires = "check_plugins")]
    json: bool,
    /// Serve Prometheus metrics at http://ADDRESS/metrics instead of where [worker]
    /// metrics_listen says: each of several workers on one host needs its own port (the
    /// systemd template derives it from the instance); empty for none
    #[arg(long, value_name = "ADDRESS")]
    metrics_listen: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::run("bonnie-worker", &args.common, |config| run(&args, &config))
}

fn run(args: &Args, config: &Config) -> anyhow::Result<ExitCode> {
    if args.check_plugins {
        // Disabled plugins are loaded too, so a plugin can be checked before it is enabled.
        let entries = loader::load_dir(&config.worker.plugin_dir, &[])?;
        return check_plugins(&entries, config, args.json);
    }
    let entries = loader::load_dir(&config.worker.plugin_dir, &config.worker.disabled)?;

    let mut plugins: Vec<Plugin> = Vec::new();
    for entry in entries {
        match entry {
            Entry::Loaded(plugin) => {
                tracing::info!(plugin = plugin.name(), kind = %plugin.kind(), file = %plugin.file.display(),
                    api = %plugin.api_version, "Plugin loaded.");
                plugins.push(plugin);
            }
            Entry::Disabled { file } => {
                tracing::info!(file = %file.display(), "Plugin disabled by configuration.")
            }
            Entry::Refused { file, reason, .. } => {
                tracing::error!(file = %file.display(), reason = %reason, "Plugin refused; skipped.")
            }
        }
    }

    let shutdown = daemon::shutdown_flag().context("installing the signal handlers")?;
    let shared = Shared {
        config_dir: config.dir().to_string_lossy().into_owned(),
        storage: None,
        stopping: shutdown.clone(),
    };
    // Served before the plugins start, so that a bad address stops the worker before they
    // do; each handler's series appear in the families as it starts.
    let mut registry = bonnie_metrics::Registry::default();
    let metrics = WorkerMetrics::register(&mut registry);
    let (key, address) = match &args.metrics_listen {
        Some(address) => ("--metrics-listen", address),
        None => ("[worker] metrics_listen", &config.worker.metrics_listen),
    };
    bonnie_metrics::serve(key, address, registry)?;
    let started = start::start(config, &plugins, shared, &metrics)?;
    runtime::run(started, &config.worker, &shutdown, &metrics)?;
    Ok(ExitCode::SUCCESS)
}

/// One plugin file as `--check-plugins` reports it.
#[derive(Serialize)]
struct Row {
    /// The file name in the plugin directory.
    file: String,
    /// The plugin's name, when it got far enough to say.
    name: Option<String>,
    /// input, handler, storage or output, when known.
    kind: Option<String>,
    /// The plugin-api version it was built against, when known.
    plugin_api: Option<String>,
    /// passed, failed or not checked.
    layout_check: String,
    /// unwind, abort, or null when not known (plugins built against plugin-api 1.0 do not say).
    panic: Option<&'static str>,
    /// loaded, disabled or refused.
    status: &'static str,
    /// False when `[worker] disabled` names it.
    enabled: bool,
    /// Why it was refused.
    reason: Option<String>,
}

/// Prints one line per plugin file (or, with `json`, one JSON document); status 1 if an
/// enabled plugin was refused.
fn check_plugins(entries: &[Entry], config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let disabled = &config.worker.disabled;
    let file_name = |f: &PathBuf| {
        f.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let is_disabled = |file: &PathBuf, name: Option<&str>| {
        disabled
            .iter()
            .any(|d| *d == file_name(file) || Some(d.as_str()) == name)
    };
    let rows: Vec<Row> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Loaded(p) => Row {
                file: file_name(&p.file),
                name: Some(p.name().to_string()),
                kind: Some(p.kind().to_string()),
                plugin_api: Some(p.api_version.clone()),
                layout_check: LayoutCheck::Passed.to_string(),
                panic: p.build.map(|_| "unwind"),
                status: "loaded",
                enabled: !is_disabled(&p.file, Some(p.name())),
                reason: None,
            },
            Entry::Disabled { file } => Row {
                file: file_name(file),
                name: None,
                kind: None,
                plugin_api: None,
                layout_check: LayoutCheck::NotChecked.to_string(),
                panic: None,
                status: "disabled",
                enabled: false,
                reason: None,
            },
            Entry::Refused {
                file,
                name,
                kind,
                api_version,
                layout,
                reason,
            } => Row {
                file: file_name(file),
                name: name.clone(),
                kind: kind.map(|k| k.to_string()),
                plugin_api: api_version.clone(),
                layout_check: layout.to_string(),
                panic: (reason == loader::PANIC_ABORT).then_some("abort"),
                status: "refused",
                enabled: !is_disabled(file, name.as_deref()),
                reason: Some(reason.clone()),
            },
        })
        .collect();
    let refused = rows.iter().any(|r| r.status == "refused" && r.enabled);
    if json {
        let report = serde_json::json!({
            "plugin_dir": config.worker.plugin_dir.display().to_string(),
            "host_plugin_api": bonnie_plugin_api::ABI_VERSION,
            "plugins": rows,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", listing(&rows));
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The text listing: file, name, kind, plugin-api version in aligned columns, then the status.
fn listing(rows: &[Row]) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let status = match (r.status, r.enabled) {
                ("loaded", true) => "loaded".to_string(),
                ("loaded", false) => "loaded (disabled)".to_string(),
                ("refused", enabled) => format!(
                    "refused: {}{}",
                    r.reason.as_deref().unwrap_or(""),
                    if enabled { "" } else { " (disabled)" }
                ),
                (other, _) => other.to_string(),
            };
            [
                r.file.clone(),
                dash(&r.name),
                dash(&r.kind),
                r.plugin_api
                    .as_ref()
                    .map(|v| format!("plugin-api {v}"))
                    .unwrap_or_else(|| "-".into()),
                status,
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..4)
        .map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        for (c, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:width$}  ", row[c], width = width));
        }
        out.push_str(&row[4]);
        out.push('\n');
    }
    if cells.is_empty() {
        out.push_str("no plugin files (*.so) in the plugin directory\n");
    }
    out
}
