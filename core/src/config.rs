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
    /// `[curve]`: the keys that authenticate every connection to the broker.
    #[serde(default)]
    pub curve: CurveConfig,
    /// `[ledger]`: the verifiable log's signed checkpoints, kept by the broker.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// `[plugins.<name>]`: each plugin's own table, handed to it as JSON; the plugin checks it.
    #[serde(default)]
    pub plugins: BTreeMap<String, toml::Table>,
    /// `[logd]`: the log intake, `bonnie-logd`, which reads and checks this table itself
    /// (unknown keys refused when it starts), so that the other binaries need not know it.
    #[serde(default)]
    pub logd: toml::Table,
    /// `[retention]`: how long archived entries are kept; read and checked by
    /// `bonnie_retention::RetentionConfig` (unknown keys refused) where retention runs.
    #[serde(default)]
    pub retention: toml::Table,
    /// `[discovery]`: e-discovery's time zone and local domains; read and checked by
    /// `bonnie_discovery::config::DiscoveryConfig` (unknown keys refused) where searches run.
    #[serde(default)]
    pub discovery: toml::Table,
    /// The file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[ledger]`: the verifiable log. The broker appends a leaf for every job DONE whatever this
/// says; with a signing key it also signs checkpoints of the tree, on the interval and when
/// `bonnie checkpoint` asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// The archive's Ed25519 signing key (owner-only; `bonnie ledger init` makes it). No key,
    /// no checkpoints. Default: none.
    pub signing_key: Option<PathBuf>,
    /// Seconds between checkpoints, when the tree grew. Default 3600 (hourly).
    pub checkpoint_interval_s: u64,
    /// A folder to publish each checkpoint to (`<size>.checkpoint`, `<size>.tsr`), for an
    /// admin to copy elsewhere. Default: none.
    pub publish_dir: Option<PathBuf>,
    /// An RFC 3161 time-stamping authority's URL: each checkpoint is stamped by it. Default:
    /// none.
    pub tsa_url: Option<String>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            checkpoint_interval_s: 3600,
            publish_dir: None,
            tsa_url: None,
        }
    }
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
    /// This worker is the only worker process writing its storage (one SQLite file): the
    /// storage may then hold the handlers' record writes (views, sessions, trails) until the
    /// next batch is logged and write them with it, in one commit, which is much faster; a
    /// second worker on the same file is refused at start-up. Several workers on one storage
    /// need false in every worker's config; more `threads` in one worker are as fast.
    /// Default: false (the shipped configuration sets true).
    pub sole_writer: bool,
    /// Where Prometheus scrapes the worker's metrics (`GET /metrics`), `address:port`; read by
    /// anyone who reaches it, so keep it on loopback. Several workers on one host each need
    /// their own: `bonnie-worker --metrics-listen` overrides this. Default: empty, no metrics
    /// served.
    pub metrics_listen: String,
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
            sole_writer: false,
            metrics_listen: String::new(),
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
    /// Where Prometheus scrapes the broker's metrics (`GET /metrics`), `address:port`; read
    /// by anyone who reaches it, so keep it on loopback. Default: empty, no metrics served.
    pub metrics_listen: String,
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
            metrics_listen: String::new(),
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
    /// Where Prometheus scrapes the dealer daemon's metrics (`GET /metrics`), `address:port`; read
    /// by anyone who reaches it, so keep it on loopback. Default: empty, no metrics served.
    pub metrics_listen: String,
    /// A copy of the file's `[curve]` table: the keys the dealer connects with.
    #[serde(skip)]
    pub curve: CurveConfig,
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
            metrics_listen: String::new(),
            curve: CurveConfig::default(),
        }
    }
}

impl DealerConfig {
    /// The host name to report: `host`, else the system's.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(system_host_name)
    }
}

/// How the collector's IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// Plain TCP.
    #[default]
    Plain,
    /// Plain TCP, then STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// The commands a collector can serve (plugin-api's `handler::COLLECTOR_COMMANDS`, which
/// handlers may ask for).
pub const COLLECTOR_COMMANDS: [&str; 6] = [
    "FETCH",
    "HEADER",
    "GETMETADATA",
    "GETACL",
    "GETUSERDATA",
    "DLPACTION",
];

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
    /// The commands it serves. Default: all of FETCH, HEADER, GETMETADATA, GETACL, GETUSERDATA,
    /// DLPACTION.
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
    /// The admin's password. Default: empty. A configuration file that holds it must not be
    /// readable by others (mode 0640 at most); or use `imap_password_file`.
    pub imap_password: String,
    /// A file holding the admin's password (its first line), mode 0600 or 0640, instead of
    /// `imap_password`: the configuration file itself can then stay readable by Cyrus's
    /// dealer. Read at the collector's start. Default: none.
    pub imap_password_file: Option<PathBuf>,
    /// Timeout of one IMAP exchange, in milliseconds. Default: 30000.
    pub imap_timeout_ms: u64,
    /// How the IMAP connection is protected: `plain` (Cyrus on this host, over loopback),
    /// `starttls` (port 143) or `tls` (port 993). Default: `plain`.
    pub imap_security: ImapSecurity,
    /// PEM file of the CA (or the self-signed certificate) Cyrus's certificate is checked
    /// against, for `starttls` and `tls`. Default: none (the webpki roots).
    pub imap_tls_ca_file: Option<PathBuf>,
    /// The name Cyrus's certificate must carry. Default: the host of `imap_address`.
    pub imap_tls_server_name: Option<String>,
    /// The largest literal (a message) accepted from Cyrus, in bytes; a larger one is
    /// refused before it is read, and the command fails for good. Default: 268435456 (256 MiB).
    pub imap_max_literal_bytes: u64,
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
    /// Where Prometheus scrapes the collector's metrics (`GET /metrics`), `address:port`; read
    /// by anyone who reaches it, so keep it on loopback. Default: empty, no metrics served.
    pub metrics_listen: String,
    /// A copy of the file's `[curve]` table: the keys the collector connects with.
    #[serde(skip)]
    pub curve: CurveConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            broker_address: "tcp://127.0.0.1:5569".to_string(),
            host: None,
            threads: 4,
            commands: COLLECTOR_COMMANDS.iter().map(|c| c.to_string()).collect(),
            heartbeat_ms: 1000,
            heartbeat_liveness: 3,
            imap_address: "127.0.0.1:143".to_string(),
            imap_admin: "cyrus".to_string(),
            imap_password: String::new(),
            imap_password_file: None,
            imap_timeout_ms: 30_000,
            imap_security: ImapSecurity::Plain,
            imap_tls_ca_file: None,
            imap_tls_server_name: None,
            imap_max_literal_bytes: 256 * 1024 * 1024,
            partitions: vec![PathBuf::from("/var/spool/cyrus/mail")],
            max_inline_bytes: 8 * 1024 * 1024,
            payload_dir: None,
            ldap: LdapConfig::default(),
            metrics_listen: String::new(),
            curve: CurveConfig::default(),
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
    /// Failed logins a client name, or an address (IPv6: its /64), may have before its
    /// logins are refused with 429 and `Retry-After`. Default: 5.
    pub max_login_failures: u32,
    /// How long the first refusal after `max_login_failures` lasts, in milliseconds; each
    /// further failure doubles it. Default: 1000.
    pub login_backoff_ms: u64,
    /// The longest refusal, in milliseconds; failures are forgotten after twice this (at
    /// least 10 minutes) without one. Default: 300000.
    pub login_backoff_max_ms: u64,
    /// argon2 password verifications run at once (each takes about 19 MiB and a core for
    /// tens of milliseconds); at most `threads` - 1. A login beyond them is answered 429.
    /// Default: 2.
    pub max_password_checks: usize,
    /// PEM certificate (chain) for HTTPS; with `tls_key`. Default: none (plain HTTP).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8 or RSA) for HTTPS; with `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// Where Prometheus scrapes bonnie-api's metrics (`GET /metrics`), `address:port`; read
    /// by anyone who reaches it, so keep it on loopback. Default: empty, no metrics served.
    pub metrics_listen: String,
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
            max_login_failures: 5,
            login_backoff_ms: 1000,
            login_backoff_max_ms: 300_000,
            max_password_checks: 2,
            tls_certificate: None,
            tls_key: None,
            metrics_listen: String::new(),
        }
    }
}

/// `[curve]`: ZeroMQ CURVE on every broker socket. The broker lets a connection in only with
/// a key listed for that socket's role; `bonnie keys` makes and lists the keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurveConfig {
    /// CURVE on every socket between the broker and its peers. Without it the broker binds
    /// only loopback and `ipc://` addresses (and refuses to start otherwise). Default: true.
    pub enabled: bool,
    /// The keys folder: `broker.key` and `broker.pub` (the broker's pair), `<role>.key` (this
    /// host's own secret key for the role dealer, collector, worker or admin, mode 0600), and
    /// `<role>s/<name>.pub`, the public keys the broker allows per role (`dealers/<host>.pub`,
    /// `collectors/<host>.pub`, `workers/<name>.pub`, `admins/<name>.pub`), read by the broker
    /// at start and on SIGHUP. Default: `keys`.
    pub keys_dir: PathBuf,
}

impl Default for CurveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keys_dir: PathBuf::from("keys"),
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
    /// Its password. Default: empty. A configuration file that holds it must not be readable
    /// by others (mode 0640 at most); or use `bind_password_file`.
    pub bind_password: String,
    /// A file holding the bind password (its first line), mode 0600 or 0640, instead of
    /// `bind_password`. Default: none.
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched. Default: `dc=example,dc=org`.
    pub base: String,
    /// Where static groups are searched (a user's groups for GETUSERDATA, the groups retention
    /// rules name by `cn`), when they are kept outside `base` (Kolab: `ou=Groups` beside
    /// `ou=People`). Default: `base`.
    pub group_base: Option<String>,
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
            bind_password_file: None,
            base: "dc=example,dc=org".to_string(),
            group_base: None,
            filter: "(&(objectClass=inetOrgPerson)(|(mail=%s)(uid=%s)))".to_string(),
            unique_attribute: "nsuniqueid".to_string(),
            timeout_ms: 10_000,
        }
    }
}

impl LdapConfig {
    /// The object classes of a static group (RFC 4519) and the attribute listing its members:
    /// `groupOfNames` in `member`, `groupOfUniqueNames` (Kolab's and 389-ds's groups) in
    /// `uniqueMember`.
    pub const GROUP_CLASSES: [(&'static str, &'static str); 2] = [
        ("groupOfNames", "member"),
        ("groupOfUniqueNames", "uniqueMember"),
    ];

    /// Where static groups are searched: `group_base`, else `base`.
    pub fn group_base(&self) -> &str {
        self.group_base.as_deref().unwrap_or(&self.base)
    }
}

/// Collects the keys of `table` (and the tables in it) that name a password, secret or token
/// and hold a non-empty string, as `<prefix>.<key>`.
fn secret_keys(prefix: &str, table: &toml::Table, found: &mut Vec<String>) {
    for (key, value) in table {
        let lower = key.to_ascii_lowercase();
        match value {
            toml::Value::String(text)
                if !text.is_empty()
                    && ["password", "secret", "token"]
                        .iter()
                        .any(|word| lower.contains(word))
                    && !lower.ends_with("_file") =>
            {
                found.push(format!("[{prefix}] {key}"));
            }
            toml::Value::Table(inner) => secret_keys(&format!("{prefix}.{key}"), inner, found),
            _ => {}
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
    /// The folder of the runs' state and locks (back-fill, reconciliation, restore), beside
    /// the broker's job store: every command and daemon that runs them finds it alike.
    pub fn run_state_dir(&self) -> PathBuf {
        self.broker.database.with_file_name("backfill")
    }

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
        config.collector.imap_password_file = config
            .collector
            .imap_password_file
            .as_ref()
            .map(|p| config.resolve(p));
        config.collector.imap_tls_ca_file = config
            .collector
            .imap_tls_ca_file
            .as_ref()
            .map(|p| config.resolve(p));
        config.collector.ldap.bind_password_file = config
            .collector
            .ldap
            .bind_password_file
            .as_ref()
            .map(|p| config.resolve(p));
        config.ledger.signing_key = config
            .ledger
            .signing_key
            .as_ref()
            .map(|p| config.resolve(p));
        config.ledger.publish_dir = config
            .ledger
            .publish_dir
            .as_ref()
            .map(|p| config.resolve(p));
        config.api.clients = config.resolve(&config.api.clients);
        config.curve.keys_dir = config.resolve(&config.curve.keys_dir);
        config.dealer.curve = config.curve.clone();
        config.collector.curve = config.curve.clone();
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

    /// The secrets this configuration holds in the file itself, by name: the IMAP and LDAP
    /// passwords, and any non-empty string of a plugin table whose key names a password,
    /// secret or token.
    pub fn inline_secrets(&self) -> Vec<String> {
        let mut found = Vec::new();
        if !self.collector.imap_password.is_empty() {
            found.push("[collector] imap_password".to_string());
        }
        if !self.collector.ldap.bind_password.is_empty() {
            found.push("[collector.ldap] bind_password".to_string());
        }
        for (plugin, table) in &self.plugins {
            secret_keys(&format!("plugins.{plugin}"), table, &mut found);
        }
        found
    }

    /// What a process that uses secrets does after [`Config::load`]: refuses a configuration
    /// file holding secrets that others may read (mode `o+r`), and reads the secrets kept in
    /// files of their own (`imap_password_file`, `bind_password_file`), which must not be
    /// readable by others nor writable by the group (0600 or 0640). The dealer, which Cyrus
    /// runs as its own user and which needs no secret, does not call it.
    pub fn load_secrets(&mut self) -> Result<(), ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let inline = self.inline_secrets();
        if !inline.is_empty() {
            let mode = std::fs::metadata(&self.path)
                .map_err(|source| ConfigError::Read {
                    path: self.path.clone(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o004 != 0 {
                return Err(self.invalid(format!(
                    "it holds secrets ({}) and every local user can read it (mode {:04o}): \
                     make it readable by bonnie only (chmod 0640, group bonnie) or move them \
                     to files of their own (imap_password_file, bind_password_file)",
                    inline.join(", "),
                    mode & 0o7777
                )));
            }
        }
        let files = [
            (
                "[collector] imap_password_file",
                self.collector.imap_password_file.clone(),
                !self.collector.imap_password.is_empty(),
            ),
            (
                "[collector.ldap] bind_password_file",
                self.collector.ldap.bind_password_file.clone(),
                !self.collector.ldap.bind_password.is_empty(),
            ),
        ];
        let mut read = Vec::new();
        for (name, file, inline) in files {
            let Some(file) = file else {
                read.push(None);
                continue;
            };
            if inline {
                return Err(self.invalid(format!(
                    "{name} and the password it replaces are both set; keep one"
                )));
            }
            read.push(Some(self.read_secret_file(name, &file)?));
        }
        if let [imap, ldap] = read.as_mut_slice() {
            if let Some(password) = imap.take() {
                self.collector.imap_password = password;
            }
            if let Some(password) = ldap.take() {
                self.collector.ldap.bind_password = password;
            }
        }
        Ok(())
    }

    /// The first line of a secret's file, refused when others may read it or the group
    /// write it.
    fn read_secret_file(&self, name: &str, file: &Path) -> Result<String, ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let unreadable = |e: std::io::Error| {
            self.invalid(format!("{name}: cannot read {}: {e}", file.display()))
        };
        let mode = std::fs::metadata(file)
            .map_err(unreadable)?
            .permissions()
            .mode();
        if mode & 0o027 != 0 {
            return Err(self.invalid(format!(
                "{name}: {} must be readable by bonnie only (mode 0600 or 0640), not {:04o}",
                file.display(),
                mode & 0o7777
            )));
        }
        let text = std::fs::read_to_string(file).map_err(unreadable)?;
        Ok(text.lines().next().unwrap_or_default().to_string())
    }

    fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (section, address) in [
            ("worker", &self.worker.metrics_listen),
            ("broker", &self.broker.metrics_listen),
            ("dealer", &self.dealer.metrics_listen),
            ("collector", &self.collector.metrics_listen),
            ("api", &self.api.metrics_listen),
        ] {
            if !address.is_empty() && address.parse::<std::net::SocketAddr>().is_err() {
                return Err(self.invalid(format!(
                    "[{section}] metrics_listen = {address:?}: an address and port such as \
                     \"127.0.0.1:9431\", or empty for no metrics"
                )));
            }
        }
        let w = &self.worker;
        if w.batch_size == 0 {
            return Err(self.invalid("[worker] batch_size must be at least 1"));
        }
        if w.batch_wait_ms > 10_000 {
            return Err(self.invalid("[worker] batch_wait_ms must be at most 10000"));
        }
        let ledger = &self.ledger;
        if ledger.checkpoint_interval_s == 0 {
            return Err(self.invalid("[ledger] checkpoint_interval_s must be at least 1"));
        }
        if let Some(url) = &ledger.tsa_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(self.invalid(format!(
                "[ledger] tsa_url = {url:?}: an http:// or https:// URL"
            )));
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
            || a.login_backoff_ms == 0
            || a.max_password_checks == 0
        {
            return Err(self.invalid(
                "[api] threads, max_request_bytes, max_header_bytes, header_timeout_ms, \
                 body_timeout_ms, max_connections, max_batch_calls, login_backoff_ms and \
                 max_password_checks must be at least 1",
            ));
        }
        if a.login_backoff_max_ms < a.login_backoff_ms {
            return Err(
                self.invalid("[api] login_backoff_max_ms must not be below login_backoff_ms")
            );
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
            if !COLLECTOR_COMMANDS.contains(&command.as_str()) {
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

    /// Writes `text` as `bonnie.toml` with `mode` into `dir` and loads it as a daemon does.
    fn load_with_secrets(dir: &Path, text: &str, mode: u32) -> Result<Config, ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("bonnie.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut config = Config::load(&path)?;
        config.load_secrets().map(|()| config)
    }

    #[test]
    fn a_configuration_with_secrets_that_others_can_read_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            "[collector]\nimap_password = \"s3cret\"\n\n[collector.ldap]\nbind_password = \"x\"\n";
        let err = load_with_secrets(dir.path(), text, 0o644)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[collector] imap_password"), "{err}");
        assert!(err.contains("[collector.ldap] bind_password"), "{err}");
        assert!(err.contains("0644"), "{err}");
        assert!(
            !err.contains("s3cret"),
            "the reason never shows the secret: {err}"
        );
        let config = load_with_secrets(dir.path(), text, 0o640).expect("group bonnie may read it");
        assert_eq!(config.collector.imap_password, "s3cret");
        // Without secrets, others may read it (Cyrus's dealer reads it as user cyrus).
        load_with_secrets(dir.path(), "[worker]\nthreads = 2\n", 0o644).expect("no secret");
        let plugin = "[plugins.es-output]\napi_token = \"t\"\n";
        let err = load_with_secrets(dir.path(), plugin, 0o604)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[plugins.es-output] api_token"), "{err}");
    }

    #[test]
    fn secrets_in_files_of_their_own_are_read_when_only_bonnie_can_read_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("imap-password");
        std::fs::write(&secret, "from-file\n").unwrap();
        std::fs::write(dir.path().join("ldap-password"), "ldap\n").unwrap();
        for file in ["imap-password", "ldap-password"] {
            let path = dir.path().join(file);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = "[collector]\nimap_password_file = \"imap-password\"\n\n\
                    [collector.ldap]\nbind_password_file = \"ldap-password\"\n";
        let config = load_with_secrets(dir.path(), text, 0o644).expect("no secret inline");
        assert_eq!(config.collector.imap_password, "from-file");
        assert_eq!(config.collector.ldap.bind_password, "ldap");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_with_secrets(dir.path(), text, 0o644)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("imap_password_file") && err.contains("0644"),
            "{err}"
        );
        let both = "[collector]\nimap_password = \"x\"\nimap_password_file = \"imap-password\"\n";
        let err = load_with_secrets(dir.path(), both, 0o600)
            .unwrap_err()
            .to_string();
        assert!(err.contains("both set"), "{err}");
    }

    #[test]
    fn a_metrics_address_that_is_not_one_is_refused_with_its_key() {
        let err = Config::parse(
            "[collector]\nmetrics_listen = \"localhost:80\"\n",
            Path::new("/x/b.toml"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("[collector] metrics_listen = \"localhost:80\""),
            "{err}"
        );
        let config = Config::parse(
            "[api]\nmetrics_listen = \"[::1]:9436\"\n",
            Path::new("/x/b.toml"),
        )
        .expect("valid");
        assert_eq!(config.api.metrics_listen, "[::1]:9436");
        assert!(config.broker.metrics_listen.is_empty());
    }

    #[test]
    fn zero_batch_size_is_refused() {
        let err = Config::parse("[worker]\nbatch_size = 0\n", Path::new("/x/b.toml")).unwrap_err();
        assert!(err.to_string().contains("batch_size"));
    }
}
