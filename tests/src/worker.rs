//! A temporary lab for `bonnie-worker`: a plugin directory, a configuration file, notification
//! files for the JSON-lines input, and readers for what the worker wrote.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;
use tempfile::TempDir;

use crate::{
    paths,
    process::{self, ChildGuard},
};

/// The configuration most worker tests start from: JSON-lines in and out, SQLite storage.
pub const BASE_CONFIG: &str = r#"
[worker]
plugin_dir = "plugins"
threads = 2

[plugins.jsonl-input]
files = ["in.jsonl"]
retry_delay_ms = 10

[plugins.jsonl-output]
path = "var/output.jsonl"

[plugins.sqlite-storage]
path = "var/bonnie.db"
"#;

/// The archive handler plugins, by crate name.
pub const ARCHIVE_HANDLERS: [&str; 6] = [
    "bonnie-sessions",
    "bonnie-mailboxes",
    "bonnie-messages",
    "bonnie-messageappend",
    "bonnie-quota",
    "bonnie-unknown-events",
];

/// The plugins of [`BASE_CONFIG`].
pub const BASE_PLUGINS: [&str; 3] = [
    "bonnie-jsonl-input",
    "bonnie-jsonl-output",
    "bonnie-sqlite-storage",
];

/// A temporary folder with a plugin directory and a configuration file.
pub struct WorkerLab {
    dir: TempDir,
}

impl Default for WorkerLab {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerLab {
    /// An empty lab.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bonnie-worker-lab-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("plugins")).expect("creating the plugin directory");
        Self { dir }
    }

    /// A lab with the base plugins, the given workspace plugins and [`BASE_CONFIG`] plus
    /// `extra` (TOML appended; a repeated table is an error, so add only new tables).
    pub fn with_plugins(crates: &[&str], extra: &str) -> Self {
        let lab = Self::new();
        for name in BASE_PLUGINS.iter().chain(crates) {
            lab.add_plugin(&paths::plugin(name));
        }
        lab.write("bonnie.toml", &format!("{BASE_CONFIG}\n{extra}"));
        lab
    }

    /// A lab whose worker reads `in.jsonl`, writes JSON lines and stores into es-storage at
    /// `url`, with the given workspace plugins; `worker` is added to the `[worker]` table
    /// (`threads = 4`...), `storage` to the `[plugins.es-storage]` table, and `extra` (new
    /// tables) after them.
    pub fn on_elasticsearch(
        url: &str,
        crates: &[&str],
        worker: &str,
        storage: &str,
        extra: &str,
    ) -> Self {
        let lab = Self::new();
        for name in [
            "bonnie-jsonl-input",
            "bonnie-jsonl-output",
            "bonnie-es-storage",
        ]
        .iter()
        .chain(crates)
        {
            lab.add_plugin(&paths::plugin(name));
        }
        lab.write(
            "bonnie.toml",
            &format!(
                "[worker]\nplugin_dir = \"plugins\"\n{worker}\n\n\
                 [plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\nretry_delay_ms = 10\n\n\
                 [plugins.jsonl-output]\npath = \"var/output.jsonl\"\n\n\
                 [plugins.es-storage]\nurl = \"{url}\"\n{storage}\n\n{extra}"
            ),
        );
        lab
    }

    /// The lab's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The plugin directory.
    pub fn plugin_dir(&self) -> PathBuf {
        self.path().join("plugins")
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.path().join("bonnie.toml")
    }

    /// Copies a plugin library into the plugin directory.
    pub fn add_plugin(&self, library: &Path) {
        let name = library.file_name().expect("a library file name");
        std::fs::copy(library, self.plugin_dir().join(name))
            .unwrap_or_else(|e| panic!("copying {}: {e}", library.display()));
    }

    /// Writes a file of the lab.
    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path().join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("creating a folder of the lab");
        }
        std::fs::write(&path, content)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Writes `in.jsonl`, one notification per line.
    pub fn notifications(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        self.write("in.jsonl", &text);
    }

    /// `bonnie-worker --config <lab>/bonnie.toml` plus `args`, with output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with_config(&self.config(), args)
    }

    /// `bonnie-worker --config <config>` plus `args`, with output piped.
    pub fn command_with_config(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(paths::bin("bonnie-worker"));
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("BONNIE_LOG")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the worker until its inputs end.
    pub fn run(&self) -> Output {
        let output = process::run("bonnie-worker", &mut self.command(&[]));
        assert!(
            process::succeeded(&output.status),
            "bonnie-worker failed:\n{}",
            process::describe(&output)
        );
        output
    }

    /// Starts the worker in the background, logging to `worker.log` in the lab.
    pub fn spawn(&self) -> ChildGuard {
        let log = self.path().join("worker.log");
        let log = log.to_str().expect("a UTF-8 lab path");
        ChildGuard::spawn("bonnie-worker", &mut self.command(&["--log-file", log]))
    }

    /// Waits for a worker started by [`Self::spawn`] to end; fails the test, showing its
    /// output and log, unless it exited 0.
    pub fn wait_ok(&self, worker: ChildGuard) -> Output {
        let output = worker.wait();
        assert!(
            process::succeeded(&output.status),
            "{}\n{}",
            process::describe(&output),
            self.log()
        );
        output
    }

    /// What the worker started by [`Self::spawn`] has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("worker.log")).unwrap_or_default()
    }

    /// Runs `bonnie-worker --check-plugins`.
    pub fn check_plugins(&self) -> Output {
        process::run(
            "bonnie-worker --check-plugins",
            &mut self.command(&["--check-plugins"]),
        )
    }

    /// Runs `bonnie-worker --check-plugins --json`: its output and the JSON document it printed.
    pub fn check_plugins_json(&self) -> (Output, Value) {
        let output = process::run(
            "bonnie-worker --check-plugins --json",
            &mut self.command(&["--check-plugins", "--json"]),
        );
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "--check-plugins --json printed no JSON ({e}):\n{}",
                process::describe(&output)
            )
        });
        (output, report)
    }

    /// The records the JSON-lines output wrote, by job id order of writing.
    pub fn output_records(&self) -> Vec<Value> {
        read_json_lines(&self.path().join("var/output.jsonl"))
    }

    /// The record written for one job, by the start of its id (`in.jsonl:3`: file and line).
    pub fn record(&self, job: &str) -> Value {
        self.output_records()
            .into_iter()
            .find(|line| is_job(&line["job_id"], job))
            .map(|line| line["record"].clone())
            .unwrap_or_else(|| panic!("no record for job {job}"))
    }

    /// The outcomes the JSON-lines input journaled, in order.
    pub fn outcomes(&self) -> Vec<Value> {
        read_json_lines(&self.path().join("var/jsonl-input/outcomes.jsonl"))
    }

    /// Every outcome journaled for one job (by the start of its id), in order.
    pub fn outcomes_of(&self, job: &str) -> Vec<Value> {
        self.outcomes()
            .into_iter()
            .filter(|line| is_job(&line["job"], job))
            .collect()
    }

    /// The last outcome journaled for one job (by the start of its id).
    pub fn outcome(&self, job: &str) -> Value {
        self.outcomes_of(job)
            .pop()
            .unwrap_or_else(|| panic!("no outcome for job {job}"))
    }
}

/// The entry `--check-plugins --json` gave for a plugin file (by file name).
pub fn listed<'a>(report: &'a Value, file: &str) -> &'a Value {
    report["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["file"] == file))
        .unwrap_or_else(|| panic!("no entry for {file} in {report:#}"))
}

/// True if `id` (a JSON string) is the job `file:line` of the JSON-lines input, whose ids are
/// `file:line:digest`.
pub fn is_job(id: &Value, job: &str) -> bool {
    id.as_str().is_some_and(|id| {
        id.strip_prefix(job)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// Every line of a JSON-lines file, parsed; missing file means no lines.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()))
        })
        .collect()
}
