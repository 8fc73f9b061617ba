//! The one TOML file that configures all of bonnie: a table per component, unknown keys
//! refused, relative paths taken relative to the file's own folder.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// Where the configuration is read from when neither `--config` nor `$BONNIE_CONFIG` is set.
pub const DEFAULT_PATH: &str = "/etc/bonnie/bonnie.toml";

/// The environment variable naming the configuration file.
pub const ENV_VAR: &str = "BONNIE_CONFIG";

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[worker]`: the worker host.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// `[plugins.<name>]`: each plugin's own table, handed to it as JSON; the plugin checks it.
    #[serde(default)]
    pub plugins: BTreeMap<String, toml::Table>,
    /// The file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[worker]`: the worker host, `bonnie-worker`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Folder whose `*.so` files are the plugins; each file found is enabled unless listed in
    /// `disabled`. Default: `/usr/lib/bonnie/plugins`.
    pub plugin_dir: PathBuf,
    /// Plugins not to load, by plugin name or by file name. Default: none.
    pub disabled: Vec<String>,
    /// Handler plugins in the order they run; handlers not listed run after them, by name.
    /// Default: none (all by name).
    pub handler_order: Vec<String>,
    /// The storage plugin to use, by name. Default: the only storage plugin found, if one.
    pub storage: Option<String>,
    /// Worker threads that run handlers. Default: 0, meaning one per CPU core.
    pub threads: usize,
    /// Jobs the host holds at once (the credit it announces to inputs). Default: 0, meaning
    /// 64 per thread.
    pub queue_depth: usize,
    /// Most processed jobs written to storage and outputs in one batch. Default: 256.
    pub batch_size: usize,
    /// Longest a processed job waits for more to fill its batch, in milliseconds. Default: 2.
    pub batch_wait_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            plugin_dir: PathBuf::from("/usr/lib/bonnie/plugins"),
            disabled: Vec::new(),
            handler_order: Vec::new(),
            storage: None,
            threads: 0,
            queue_depth: 0,
            batch_size: 256,
            batch_wait_ms: 2,
        }
    }
}

impl WorkerConfig {
    /// Worker threads, with 0 resolved to the number of cores.
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2)
        }
    }

    /// Jobs held at once, with 0 resolved to 64 per thread.
    pub fn queue_capacity(&self) -> usize {
        if self.queue_depth > 0 {
            self.queue_depth
        } else {
            64 * self.thread_count()
        }
    }
}

impl Config {
    /// The configuration file to read: `explicit` (from `--config`), else `$BONNIE_CONFIG`,
    /// else [`DEFAULT_PATH`].
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(path) = explicit {
            return path.to_path_buf();
        }
        match std::env::var_os(ENV_VAR) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(DEFAULT_PATH),
        }
    }

    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text as if read from `path` (which anchors relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        config.path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        config.worker.plugin_dir = config.resolve(&config.worker.plugin_dir);
        config.validate()?;
        Ok(config)
    }

    /// The folder relative paths are taken from: the configuration file's folder.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// A configured path, resolved against the configuration file's folder.
    pub fn resolve(&self, configured: &Path) -> PathBuf {
        if configured.is_absolute() {
            configured.to_path_buf()
        } else {
            self.dir().join(configured)
        }
    }

    /// A plugin's table as JSON text, `{}` when the file has none.
    pub fn plugin_json(&self, name: &str) -> String {
        match self.plugins.get(name) {
            Some(table) => serde_json::to_string(table).unwrap_or_else(|_| "{}".to_string()),
            None => "{}".to_string(),
        }
    }

    fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        if w.batch_size == 0 {
            return Err(self.invalid("[worker] batch_size must be at least 1"));
        }
        if w.batch_wait_ms > 10_000 {
            return Err(self.invalid("[worker] batch_wait_ms must be at most 10000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_config_folder() {
        let config = Config::parse(
            "[worker]\nplugin_dir = \"plugins\"\n",
            Path::new("/etc/bonnie/bonnie.toml"),
        )
        .expect("valid config");
        assert_eq!(
            config.worker.plugin_dir,
            PathBuf::from("/etc/bonnie/plugins")
        );
        assert_eq!(config.resolve(Path::new("/abs")), PathBuf::from("/abs"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::parse("[worker]\nthreds = 2\n", Path::new("/x/bonnie.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("threds"), "{text}");
        assert!(text.contains("/x/bonnie.toml"), "{text}");
    }

    #[test]
    fn plugin_tables_reach_plugins_as_json() {
        let config = Config::parse(
            "[plugins.jsonl-input]\nfiles = [\"a.jsonl\"]\nfollow = false\n",
            Path::new("/x/bonnie.toml"),
        )
        .expect("valid config");
        let json: serde_json::Value =
            serde_json::from_str(&config.plugin_json("jsonl-input")).unwrap();
        assert_eq!(json["files"][0], "a.jsonl");
        assert_eq!(json["follow"], false);
        assert_eq!(config.plugin_json("absent"), "{}");
    }

    #[test]
    fn zero_batch_size_is_refused() {
        let err = Config::parse("[worker]\nbatch_size = 0\n", Path::new("/x/b.toml")).unwrap_err();
        assert!(err.to_string().contains("batch_size"));
    }
}
