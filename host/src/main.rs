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

use bonnie_host::{
    context::Shared,
    loader::{self, Entry, Plugin},
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::run("bonnie-worker", &args.common, |config| run(&args, &config))
}

fn run(args: &Args, config: &Config) -> anyhow::Result<ExitCode> {
    if args.check_plugins {
        // Disabled plugins are loaded too, so a plugin can be checked before it is enabled.
        let entries = loader::load_dir(&config.worker.plugin_dir, &[])?;
        return Ok(check_plugins(&entries, &config.worker.disabled));
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
    let started = start::start(config, &plugins, shared)?;
    runtime::run(started, &config.worker, &shutdown)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per plugin file; status 1 if an enabled plugin was refused.
fn check_plugins(entries: &[Entry], disabled: &[String]) -> ExitCode {
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
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut refused = false;
    for entry in entries {
        rows.push(match entry {
            Entry::Loaded(p) => {
                let status = if is_disabled(&p.file, Some(p.name())) {
                    "loaded (disabled)"
                } else {
                    "loaded"
                };
                [
                    file_name(&p.file),
                    p.name().to_string(),
                    p.kind().to_string(),
                    format!("plugin-api {}", p.api_version),
                    status.to_string(),
                ]
            }
            Entry::Disabled { file } => [
                file_name(file),
                "-".into(),
                "-".into(),
                "-".into(),
                "disabled".into(),
            ],
            Entry::Refused {
                file,
                name,
                kind,
                api_version,
                reason,
            } => {
                let off = is_disabled(file, name.as_deref());
                refused |= !off;
                [
                    file_name(file),
                    name.clone().unwrap_or_else(|| "-".into()),
                    kind.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                    api_version
                        .as_ref()
                        .map(|v| format!("plugin-api {v}"))
                        .unwrap_or_else(|| "-".into()),
                    format!("refused: {reason}{}", if off { " (disabled)" } else { "" }),
                ]
            }
        });
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:width$}  ", row[c], width = width));
        }
        out.push_str(&row[4]);
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("no plugin files (*.so) in the plugin directory\n");
    }
    print!("{out}");
    if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
