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
    /// `[broker]`: the broker.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// `[dealer]`: the dealer Cyrus runs.
    #[serde(default)]
    pub dealer: DealerConfig,
    /// `[collector]`: the collector on the IMAP host.
    #[serde(default)]
    pub collector: CollectorConfig,
    /// `[api]`: the JSON-RPC service for Kolab clients.
    #[serde(default)]
    pub api: ApiConfig,
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

/// `[broker]`: the broker, `bonnie-broker`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Where dealers submit notifications. Default: `tcp://127.0.0.1:5570`.
    pub dealer_address: String,
    /// Where collectors connect. Default: `tcp://127.0.0.1:5569`.
    pub collector_address: String,
    /// Where workers fetch jobs (GET/JOB). Default: `tcp://127.0.0.1:5560`.
    pub worker_address: String,
    /// Where workers announce themselves and report outcomes. Default: `tcp://127.0.0.1:5561`.
    pub controller_address: String,
    /// Where the admin command line (`bonnie status`, `bonnie jobs`) asks. Keep it on
    /// loopback. Default: `tcp://127.0.0.1:5562`.
    pub admin_address: String,
    /// The job store (SQLite). Default: `var/broker.db`.
    pub database: PathBuf,
    /// Interval of heartbeats to and from workers and collectors, in milliseconds.
    /// Default: 1000.
    pub heartbeat_ms: u64,
    /// Heartbeats a worker or collector may miss before it is dropped and its jobs return to
    /// PENDING. Default: 3.
    pub heartbeat_liveness: u32,
    /// Seconds an allocated job may stay unfinished before it returns to PENDING.
    /// Default: 300.
    pub job_timeout_s: u64,
    /// Seconds before a postponed job is retried the first time; doubled on each further
    /// postponement. Default: 5.
    pub postpone_delay_s: u64,
    /// Longest wait between retries of a postponed job, in seconds. Default: 600.
    pub postpone_max_delay_s: u64,
    /// Postponements after which a job becomes FAILED. Default: 8.
    pub max_postpones: u32,
    /// Seconds DONE jobs are kept before they are purged. Default: 3600.
    pub done_retention_s: u64,
    /// Largest message accepted from a peer, in bytes; a larger one drops the connection.
    /// Default: 67108864 (64 MiB).
    pub max_message_bytes: i64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            dealer_address: "tcp://127.0.0.1:5570".to_string(),
            collector_address: "tcp://127.0.0.1:5569".to_string(),
            worker_address: "tcp://127.0.0.1:5560".to_string(),
            controller_address: "tcp://127.0.0.1:5561".to_string(),
            admin_address: "tcp://127.0.0.1:5562".to_string(),
            database: PathBuf::from("var/broker.db"),
            heartbeat_ms: 1000,
            heartbeat_liveness: 3,
            job_timeout_s: 300,
            postpone_delay_s: 5,
            postpone_max_delay_s: 600,
            max_postpones: 8,
            done_retention_s: 3600,
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[dealer]`: the dealer, `bonnie-dealer`, run by Cyrus for each event or as a daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DealerConfig {
    /// The broker's dealer address. Default: `tcp://127.0.0.1:5570`.
    pub broker_address: String,
    /// How long to wait for the broker's ACK before spooling, in milliseconds. Default: 200.
    pub ack_timeout_ms: u64,
    /// The local spool of notifications the broker has not acknowledged yet.
    /// Default: `var/dealer-spool`.
    pub spool_dir: PathBuf,
    /// After the broker failed to answer, seconds an exec-mode dealer spools without trying it,
    /// so that Cyrus is not slowed by a broker that is down; doubles with each failed try up to
    /// 30 s, and the first ACK ends it. The daemon tries again at most 1 s after a failure.
    /// Default: 1.
    pub retry_after_s: u64,
    /// The IMAP host name this dealer reports (collectors on this host serve its jobs).
    /// Default: the system's host name.
    pub host: Option<String>,
    /// Daemon mode: the unix socket Cyrus's `notifysocket: dlist:` points to.
    /// Default: `var/dealer.sock`.
    pub socket: PathBuf,
    /// Daemon mode: the socket's permissions; imapd and lmtpd (user cyrus) must be able to
    /// connect. Default: `0o660`.
    pub socket_mode: u32,
    /// Daemon mode: most Cyrus connections served at once; more wait in the socket's backlog.
    /// Default: 1024.
    pub daemon_connections: usize,
    /// Daemon mode: how long a connection may take to send its whole request, in
    /// milliseconds; what came by then is forwarded as it is. Default: 30000.
    pub request_timeout_ms: u64,
    /// Events to drop, by exact name. Default: none.
    pub drop_events: Vec<String>,
    /// Event and user pairs to drop, as `"Event user"`, e.g. `"Login cyrus"`. Default: none.
    pub drop_event_users: Vec<String>,
}

impl Default for DealerConfig {
    fn default() -> Self {
        Self {
            broker_address: "tcp://127.0.0.1:5570".to_string(),
            ack_timeout_ms: 200,
            spool_dir: PathBuf::from("var/dealer-spool"),
            retry_after_s: 1,
            host: None,
            socket: PathBuf::from("var/dealer.sock"),
            socket_mode: 0o660,
            daemon_connections: 1024,
            request_timeout_ms: 30_000,
            drop_events: Vec::new(),
            drop_event_users: Vec::new(),
        }
    }
}

impl DealerConfig {
    /// The host name to report: `host`, else the system's.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(system_host_name)
    }
}

/// `[collector]`: the collector, `bonnie-collector`, on the IMAP host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// The broker's collector address. Default: `tcp://127.0.0.1:5569`.
    pub broker_address: String,
    /// The IMAP host name it serves: the same as the dealers' on this host. Default: the
    /// system's host name.
    pub host: Option<String>,
    /// Jobs run at once. Default: 4.
    pub threads: usize,
    /// The commands it serves. Default: all of FETCH, HEADER, GETMETADATA, GETACL, GETUSERDATA.
    pub commands: Vec<String>,
    /// Heartbeat interval in milliseconds; keep it equal to the broker's. Default: 1000.
    pub heartbeat_ms: u64,
    /// Heartbeats the broker may miss before the connection is made anew. Default: 3.
    pub heartbeat_liveness: u32,
    /// Cyrus's IMAP server, `host:port`. Default: `127.0.0.1:143`.
    pub imap_address: String,
    /// A Cyrus admin (listed in `admins:`), for GETACL, GETMETADATA and, acting as the folder's
    /// owner, FETCH. Default: `cyrus`.
    pub imap_admin: String,
    /// The admin's password. Default: empty.
    pub imap_password: String,
    /// Timeout of one IMAP exchange, in milliseconds. Default: 30000.
    pub imap_timeout_ms: u64,
    /// Cyrus partition folders (`partition-*` of imapd.conf): message files are read there
    /// (`<partition>/uuid/<a>/<b>/<mailboxID>/<UID>.`) before falling back to IMAP.
    /// Default: `/var/spool/cyrus/mail`.
    pub partitions: Vec<PathBuf>,
    /// Payloads larger than this, in bytes, are written to `payload_dir` instead of travelling
    /// in the job (when `payload_dir` is set). Default: 8388608 (8 MiB).
    pub max_inline_bytes: usize,
    /// The payload store's folder of files, when it is reachable from this host. Default: none.
    pub payload_dir: Option<PathBuf>,
    /// `[collector.ldap]`: where GETUSERDATA finds users.
    pub ldap: LdapConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            broker_address: "tcp://127.0.0.1:5569".to_string(),
            host: None,
            threads: 4,
            commands: ["FETCH", "HEADER", "GETMETADATA", "GETACL", "GETUSERDATA"]
                .iter()
                .map(|c| c.to_string())
                .collect(),
            heartbeat_ms: 1000,
            heartbeat_liveness: 3,
            imap_address: "127.0.0.1:143".to_string(),
            imap_admin: "cyrus".to_string(),
            imap_password: String::new(),
            imap_timeout_ms: 30_000,
            partitions: vec![PathBuf::from("/var/spool/cyrus/mail")],
            max_inline_bytes: 8 * 1024 * 1024,
            payload_dir: None,
            ldap: LdapConfig::default(),
        }
    }
}

impl CollectorConfig {
    /// The host name to announce: `host`, else the system's.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(system_host_name)
    }
}

/// `[api]`: `bonnie-api`, the JSON-RPC service Kolab clients (Roundcube) read history from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where it listens, `address:port`. Default: `127.0.0.1:8080` (loopback: set
    /// `tls_certificate` and `tls_key` before opening it to the network).
    pub listen: String,
    /// The API clients' credentials, written by `bonnie api-client add`. Default:
    /// `/var/lib/bonnie/api-clients.json`.
    pub clients: PathBuf,
    /// Clients that may read every user's objects (an e-discovery console). Default: none.
    pub admin_clients: Vec<String>,
    /// The audit log of every call, one JSON object a line. Default:
    /// `/var/log/bonnie/api-audit.log`.
    pub audit_log: PathBuf,
    /// Threads that run calls (storage queries, password checks); connections themselves are
    /// served asynchronously, up to `max_connections`. Default: 4.
    pub threads: usize,
    /// Largest request body accepted, in bytes: a larger `Content-Length` is answered 413
    /// before anything is read, and the connection closed. Default: 1048576.
    pub max_request_bytes: usize,
    /// Largest request head (request line and headers), in bytes; larger is answered 431.
    /// Default: 16384.
    pub max_header_bytes: usize,
    /// Time a client has to send a request's head, in milliseconds, from its first byte (or
    /// from the end of the previous answer on a kept-alive connection), and to finish TLS.
    /// Default: 10000.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds, once the head is in;
    /// later is answered 408 and the connection closed. Default: 30000.
    pub body_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog. Default: 1024.
    pub max_connections: usize,
    /// Most calls in one JSON-RPC batch; more is refused as one -32600 error. Default: 100.
    pub max_batch_calls: usize,
    /// PEM certificate (chain) for HTTPS; with `tls_key`. Default: none (plain HTTP).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8 or RSA) for HTTPS; with `tls_certificate`.
    pub tls_key: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_string(),
            clients: PathBuf::from("/var/lib/bonnie/api-clients.json"),
            admin_clients: Vec::new(),
            audit_log: PathBuf::from("/var/log/bonnie/api-audit.log"),
            threads: 4,
            max_request_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            max_batch_calls: 100,
            tls_certificate: None,
            tls_key: None,
        }
    }
}

/// `[collector.ldap]`: the directory GETUSERDATA searches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// The server. Default: `ldap://127.0.0.1:389`.
    pub url: String,
    /// The DN to bind as; empty binds anonymously. Default: empty.
    pub bind_dn: String,
    /// Its password. Default: empty.
    pub bind_password: String,
    /// Where users are searched. Default: `dc=example,dc=org`.
    pub base: String,
    /// The search filter; `%s` is replaced by the login (escaped).
    /// Default: `(&(objectClass=inetOrgPerson)(|(mail=%s)(uid=%s)))`.
    pub filter: String,
    /// The attribute that identifies a user for good: `nsuniqueid` on 389-ds, `entryUUID` on
    /// OpenLDAP. Default: `nsuniqueid`.
    pub unique_attribute: String,
    /// Timeout of one LDAP exchange, in milliseconds. Default: 10000.
    pub timeout_ms: u64,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            url: "ldap://127.0.0.1:389".to_string(),
            bind_dn: String::new(),
            bind_password: String::new(),
            base: "dc=example,dc=org".to_string(),
            filter: "(&(objectClass=inetOrgPerson)(|(mail=%s)(uid=%s)))".to_string(),
            unique_attribute: "nsuniqueid".to_string(),
            timeout_ms: 10_000,
        }
    }
}

/// The system's host name, or `localhost` when it cannot be read.
pub fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
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
        config.broker.database = config.resolve(&config.broker.database);
        config.dealer.spool_dir = config.resolve(&config.dealer.spool_dir);
        config.dealer.socket = config.resolve(&config.dealer.socket);
        config.collector.partitions = config
            .collector
            .partitions
            .iter()
            .map(|p| config.resolve(p))
            .collect();
        config.collector.payload_dir = config
            .collector
            .payload_dir
            .as_ref()
            .map(|p| config.resolve(p));
        config.api.clients = config.resolve(&config.api.clients);
        config.api.audit_log = config.resolve(&config.api.audit_log);
        config.api.tls_certificate = config
            .api
            .tls_certificate
            .as_ref()
            .map(|p| config.resolve(p));
        config.api.tls_key = config.api.tls_key.as_ref().map(|p| config.resolve(p));
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
        let b = &self.broker;
        if b.heartbeat_ms == 0 || b.heartbeat_liveness == 0 {
            return Err(
                self.invalid("[broker] heartbeat_ms and heartbeat_liveness must be at least 1")
            );
        }
        if b.postpone_delay_s > b.postpone_max_delay_s {
            return Err(
                self.invalid("[broker] postpone_delay_s must not exceed postpone_max_delay_s")
            );
        }
        let a = &self.api;
        if a.threads == 0
            || a.max_request_bytes == 0
            || a.max_header_bytes == 0
            || a.header_timeout_ms == 0
            || a.body_timeout_ms == 0
            || a.max_connections == 0
            || a.max_batch_calls == 0
        {
            return Err(self.invalid(
                "[api] threads, max_request_bytes, max_header_bytes, header_timeout_ms, \
                 body_timeout_ms, max_connections and max_batch_calls must be at least 1",
            ));
        }
        if a.tls_certificate.is_some() != a.tls_key.is_some() {
            return Err(self.invalid("[api] tls_certificate and tls_key go together"));
        }
        let c = &self.collector;
        if c.threads == 0 || c.heartbeat_ms == 0 || c.heartbeat_liveness == 0 {
            return Err(self.invalid(
                "[collector] threads, heartbeat_ms and heartbeat_liveness must be at least 1",
            ));
        }
        for command in &c.commands {
            if !["FETCH", "HEADER", "GETMETADATA", "GETACL", "GETUSERDATA"]
                .contains(&command.as_str())
            {
                return Err(self.invalid(format!(
                    "[collector] commands: {command:?} is not a collector command"
                )));
            }
        }
        if self.dealer.daemon_connections == 0 || self.dealer.request_timeout_ms == 0 {
            return Err(self
                .invalid("[dealer] daemon_connections and request_timeout_ms must be at least 1"));
        }
        for pair in &self.dealer.drop_event_users {
            if pair.split_whitespace().count() != 2 {
                return Err(self.invalid(format!(
                    "[dealer] drop_event_users: {pair:?} is not \"Event user\""
                )));
            }
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
