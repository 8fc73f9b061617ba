//! `bonnie config check`: the whole configuration file checked as the daemons would use it, with
//! one finding a problem (the key at fault, what is wrong, what to do) instead of the first
//! refusal of the first daemon started. It checks that the file parses with no unknown key;
//! the folders the daemons write (can be made) and the files they read (are there), with the
//! permissions of every file of secrets and folder of mail; the plugins, loaded and started as
//! the worker does, each with its table; and, unless `--offline`, the peers the file names: the
//! broker (its admin socket answers; the addresses dealers, collectors and zmq-input connect to
//! accept connections), LDAP, IMAP and Elasticsearch.
//!
//! One file configures every host, and a host runs only some of the daemons: the roles checked
//! are those given with `--role`, else those whose table the file has (`[broker]` and
//! `[ledger]` the broker, `[dealer]`, `[collector]`, `[worker]` or a `[plugins.*]` table the
//! worker, `[api]`), so that nothing is said of a table the file does not have.

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use bonnie_api::admin::Admin;
use bonnie_core::{
    Config, ConfigError,
    config::ImapSecurity,
    keys::{AllowList, KeyDir},
    protocol::AdminRequest,
};
use bonnie_host::{
    context::{HostContext, Shared},
    loader::{self, Entry, Kind, Module, Plugin},
};
use serde_json::{Value, json};

/// A daemon a host may run, whose part of the file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// `bonnie-broker`: `[broker]`, `[ledger]`, the broker's keys.
    Broker,
    /// `bonnie-dealer`: `[dealer]`.
    Dealer,
    /// `bonnie-collector`: `[collector]` with its IMAP server and directory.
    Collector,
    /// `bonnie-worker`: `[worker]` and the plugins with their `[plugins.*]` tables.
    Worker,
    /// `bonnie-api`: `[api]`.
    Api,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Dealer => "dealer",
            Role::Collector => "collector",
            Role::Worker => "worker",
            Role::Api => "api",
        }
    }
}

/// The kinds of key file, each read by its own daemon's reader.
#[derive(Clone, Copy)]
enum KeyFile {
    /// A CURVE key pair (`<role>.key`).
    CurvePair,
    /// The broker's CURVE public key (`broker.pub`).
    CurvePublic,
    /// The archive's Ed25519 signing key (`[ledger] signing_key`).
    Signing,
}

/// What `bonnie config check` was asked.
pub struct CheckArgs<'a> {
    /// The configuration file.
    pub path: &'a Path,
    /// The roles to check; empty: those whose tables the file has.
    pub roles: &'a [Role],
    /// Skip the peers (broker, LDAP, IMAP, Elasticsearch).
    pub offline: bool,
    /// How long each peer may take to answer.
    pub timeout: Duration,
    /// The findings as one JSON object.
    pub json: bool,
}

/// One problem: where, what is wrong, what to do.
struct Finding {
    /// The key or table at fault, as `[table] key`.
    key: String,
    /// What is wrong.
    problem: String,
    /// What to do about it.
    fix: String,
}

/// The most a secret's file may be open: read by the owner and bonnie's group (0600 or 0640).
/// The daemons' rule for password files (`Config::load_secrets`); it holds CURVE keys to it
/// too, whose reader refuses only access by others, so that no group member may replace a key.
const SECRET_MASK: u32 = 0o027;
/// The archive's signing key: its owner only (0600), as the broker requires.
const SIGNING_KEY_MASK: u32 = 0o077;

/// Runs the check; an error (a non-zero exit) when it found a problem.
pub fn run(args: &CheckArgs<'_>) -> anyhow::Result<()> {
    let mut check = Check {
        findings: Vec::new(),
        roles: BTreeSet::new(),
        loaded: BTreeSet::new(),
    };
    let config = check.load(args);
    let peers = !args.offline && config.is_some();
    if let Some(config) = &config {
        check.structure(config);
        if check.has(Role::Worker) {
            check.plugins(config);
        }
        check.retention(config, peers);
        check.discovery(config);
        check.dlp(config);
        if peers {
            check.peers(config, args.timeout);
        }
    }
    let file = std::path::absolute(args.path).unwrap_or_else(|_| args.path.to_path_buf());
    if args.json {
        let findings: Vec<Value> = check
            .findings
            .iter()
            .map(|f| json!({ "file": file, "key": f.key, "problem": f.problem, "fix": f.fix }))
            .collect();
        let roles: Vec<&str> = check.roles.iter().map(|r| r.name()).collect();
        println!(
            "{}",
            json!({ "file": file, "roles": roles, "peers_checked": peers, "ok": findings.is_empty(), "findings": findings })
        );
    } else {
        for f in &check.findings {
            println!("{}: {}: {}; {}", file.display(), f.key, f.problem, f.fix);
        }
        if check.findings.is_empty() {
            let roles: Vec<&str> = check.roles.iter().map(|r| r.name()).collect();
            let scope = if peers {
                "its peers answer"
            } else {
                "peers not asked (--offline)"
            };
            println!(
                "{}: no problem found (checked: {}; {scope}).",
                file.display(),
                roles.join(", ")
            );
        }
    }
    match check.findings.len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} problem(s) in {}", file.display()),
    }
}

struct Check {
    findings: Vec<Finding>,
    roles: BTreeSet<Role>,
    /// The plugins that loaded from the plugin folder, by name.
    loaded: BTreeSet<String>,
}

impl Check {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Reads and parses the file as every daemon does, and settles the roles to check.
    fn load(&mut self, args: &CheckArgs<'_>) -> Option<Config> {
        let text = match std::fs::read_to_string(args.path) {
            Ok(text) => text,
            Err(e) => {
                self.add(
                    "(file)",
                    format!("cannot be read: {e}"),
                    "give the right file with --config or $BONNIE_CONFIG, readable by this user",
                );
                return None;
            }
        };
        match Config::parse(&text, args.path) {
            Ok(config) => {
                self.roles = if args.roles.is_empty() {
                    roles_of(&text)
                } else {
                    args.roles.iter().copied().collect()
                };
                Some(config)
            }
            Err(ConfigError::Parse { source, .. }) => {
                let (key, line) = locate(&text, source.span());
                let problem = match line {
                    Some(line) => format!("line {line}: {}", source.message().trim_end()),
                    None => source.message().trim_end().to_string(),
                };
                let fix = if source.message().contains("unknown field") {
                    "remove it or correct its name (docs/operations.md lists every key); then check again"
                } else {
                    "correct it; then check again"
                };
                self.add(key, problem, fix);
                None
            }
            Err(ConfigError::Invalid { message, .. }) => {
                self.add(
                    table_of_message(&message),
                    message,
                    "correct the value; then check again",
                );
                None
            }
            Err(e @ ConfigError::Read { .. }) => {
                self.add("(file)", e.to_string(), "make it readable by this user");
                None
            }
        }
    }

    /// The `[retention]` rules, as `bonnie retention plan` and the timer read them: their keys,
    /// keeps and names, and, when peers are asked, the directory groups they name.
    fn retention(&mut self, config: &Config, peers: bool) {
        if config.retention.is_empty() {
            return;
        }
        let fix = "see docs/operations.md, \"Retention and legal holds\"";
        let parsed: Result<bonnie_retention::RetentionConfig, _> =
            toml::Value::Table(config.retention.clone()).try_into();
        let retention = match parsed {
            Ok(retention) => retention,
            // One line a finding: the parser's message spans several.
            Err(e) => {
                let problem = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                return self.add("[retention]", problem, fix);
            }
        };
        // The structure alone: every group taken as known (and empty).
        if let Err(e) = bonnie_retention::Policy::new(&retention, |_| Ok(Vec::new())) {
            return self.add("[retention]", e.to_string(), fix);
        }
        if peers
            && retention.rules.iter().any(|r| !r.groups.is_empty())
            && let Err(e) = crate::retention::policy(config)
        {
            self.add(
                "[retention] groups",
                format!("{e:#}"),
                "check [collector.ldap] and the group names",
            );
        }
    }

    /// The `[discovery]` table: its keys, its time zone and local domains.
    fn discovery(&mut self, config: &Config) {
        if let Err(e) = bonnie_discovery::config::DiscoveryConfig::from_table(&config.discovery) {
            self.add(
                "[discovery]",
                e.to_string(),
                "see docs/ediscovery.md, \"Configuration\"",
            );
        }
    }

    /// The `[plugins.dlp]` table, the rules it names (compiled as the handler compiles them)
    /// and its alert settings.
    fn dlp(&mut self, config: &Config) {
        let Some(table) = config.plugins.get("dlp") else {
            return;
        };
        let dir = config.path.parent().unwrap_or(Path::new("."));
        let checked = bonnie_dlp_archive::config::PluginConfig::from_table(table).and_then(|dlp| {
            dlp.rule_set(dir)?;
            dlp.alert_settings().map(|_| ())
        });
        if let Err(e) = checked {
            self.add(
                e.key,
                e.message,
                "`bonnie dlp check --rules <file> <message>` tries rules on a message",
            );
        }
    }

    /// Files, folders and permissions of the roles checked.
    fn structure(&mut self, config: &Config) {
        self.inline_secrets(config);
        self.keys(config);
        if self.has(Role::Broker) {
            self.mail_file("[broker] database", &config.broker.database);
            if let Some(key) = &config.ledger.signing_key {
                self.key_file(
                    "[ledger] signing_key",
                    key,
                    KeyFile::Signing,
                    "make it with `bonnie ledger init`",
                );
            }
            if let Some(dir) = &config.ledger.publish_dir {
                self.folder("[ledger] publish_dir", dir, false);
            }
        }
        if self.has(Role::Dealer) {
            self.folder("[dealer] spool_dir", &config.dealer.spool_dir, true);
            if let Some(folder) = config.dealer.socket.parent() {
                self.folder("[dealer] socket", folder, false);
            }
        }
        if self.has(Role::Collector) {
            self.collector_files(config);
        }
        if self.has(Role::Worker) {
            // The worker's own mail: a payload folder of any plugin, the SQLite archive.
            for (plugin, table) in &config.plugins {
                if let Some(toml::Value::String(dir)) = table.get("payload_dir") {
                    let key = format!("[plugins.{plugin}] payload_dir");
                    self.folder(&key, &config.resolve(Path::new(dir)), true);
                }
            }
            if let Some(toml::Value::String(path)) = config
                .plugins
                .get("sqlite-storage")
                .and_then(|t| t.get("path"))
            {
                self.mail_file(
                    "[plugins.sqlite-storage] path",
                    &config.resolve(Path::new(path)),
                );
            }
        }
        if self.has(Role::Api) {
            let api = &config.api;
            if api.clients.exists() {
                self.secret_file(
                    "[api] clients",
                    &api.clients,
                    SECRET_MASK,
                    "add a client with `bonnie api-client add <name>`",
                );
            } else {
                self.add(
                    "[api] clients",
                    format!(
                        "{} does not exist: bonnie-api lets no client in",
                        api.clients.display()
                    ),
                    "add one with `bonnie api-client add <name>` (e.g. roundcube)",
                );
            }
            if let Some(folder) = api.audit_log.parent() {
                self.folder("[api] audit_log", folder, false);
            }
            if let Some(certificate) = &api.tls_certificate {
                self.file(
                    "[api] tls_certificate",
                    certificate,
                    "give the PEM certificate chain",
                );
            }
            if let Some(key) = &api.tls_key {
                self.secret_file(
                    "[api] tls_key",
                    key,
                    SECRET_MASK,
                    "give the PEM private key",
                );
            }
        }
    }

    /// A file that holds secrets must not be readable by every user.
    fn inline_secrets(&mut self, config: &Config) {
        let secrets: Vec<String> = config
            .inline_secrets()
            .into_iter()
            .filter(|name| {
                (name.starts_with("[collector") && self.has(Role::Collector))
                    || (name.starts_with("[plugins.") && self.has(Role::Worker))
            })
            .collect();
        if secrets.is_empty() {
            return;
        }
        if let Ok(meta) = std::fs::metadata(&config.path)
            && meta.permissions().mode() & 0o004 != 0
        {
            self.add(
                secrets.join(", "),
                format!(
                    "the file holds these secrets and every local user can read it (mode {:04o}); the daemons refuse it",
                    meta.permissions().mode() & 0o7777
                ),
                "chmod 0640 it (group bonnie), or move them to files of their own (imap_password_file, bind_password_file)",
            );
        }
    }

    /// The CURVE keys each role connects or serves with, and every secret key in the folder.
    fn keys(&mut self, config: &Config) {
        if !config.curve.enabled {
            return;
        }
        let dir = KeyDir::new(&config.curve);
        if dir.path().exists() && !dir.path().is_dir() {
            self.add(
                "[curve] keys_dir",
                format!("{} is not a folder", dir.path().display()),
                "remove what is there, or correct keys_dir",
            );
            return;
        }
        let mut own: Vec<(&str, &str)> = Vec::new();
        if self.has(Role::Broker) {
            own.push(("broker", "the broker"));
            if let Err(e) = AllowList::load(&dir) {
                self.add(
                    "[curve] keys_dir",
                    format!("the broker cannot read its allowed keys: {e}"),
                    "remove or correct the file it names (`bonnie keys list`)",
                );
            }
        }
        if self.has(Role::Dealer) {
            own.push(("dealer", "the dealer"));
        }
        if self.has(Role::Collector) {
            own.push(("collector", "the collector"));
        }
        let checked: Vec<PathBuf> = own.iter().map(|(who, _)| dir.pair_file(who)).collect();
        let connects = own.iter().any(|(who, _)| *who != "broker");
        for (who, what) in own {
            self.key_file(
                "[curve] keys_dir",
                &dir.pair_file(who),
                KeyFile::CurvePair,
                &format!("{what} needs it: `bonnie keys generate {who}`"),
            );
        }
        if connects {
            self.key_file(
                "[curve] keys_dir",
                &dir.broker_public_file(),
                KeyFile::CurvePublic,
                "the dealer and the collector need the broker's public key: copy broker.pub from the broker's keys folder (`bonnie keys generate broker` makes it there)",
            );
        }
        // Every other secret key in the folder (this host's worker and admin keys, the
        // archive's signing key when it is kept there) is held to the same rule.
        let Ok(entries) = std::fs::read_dir(dir.path()) else {
            return;
        };
        let mut others: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "key") && !checked.contains(p))
            .collect();
        others.sort();
        for file in others {
            let signing = config.ledger.signing_key.as_ref() == Some(&file);
            if !signing || !self.has(Role::Broker) {
                let kind = if signing {
                    KeyFile::Signing
                } else {
                    KeyFile::CurvePair
                };
                self.key_file("[curve] keys_dir", &file, kind, "");
            }
        }
    }

    fn collector_files(&mut self, config: &Config) {
        let c = &config.collector;
        for partition in &c.partitions {
            if !partition.is_dir() {
                self.add(
                    "[collector] partitions",
                    format!("{} is not a folder", partition.display()),
                    "list Cyrus's partition-* folders of imapd.conf",
                );
            }
        }
        if let Some(dir) = &c.payload_dir {
            self.folder("[collector] payload_dir", dir, true);
        }
        let passwords = [
            (
                "[collector] imap_password_file",
                &c.imap_password_file,
                !c.imap_password.is_empty(),
            ),
            (
                "[collector.ldap] bind_password_file",
                &c.ldap.bind_password_file,
                !c.ldap.bind_password.is_empty(),
            ),
        ];
        for (key, file, inline) in passwords {
            let Some(file) = file else { continue };
            if inline {
                self.add(
                    key,
                    "is set, and so is the password it replaces",
                    "keep one of them",
                );
            }
            self.secret_file(
                key,
                file,
                SECRET_MASK,
                "write the password on its first line",
            );
        }
        if c.imap_security != ImapSecurity::Plain
            && let Some(ca) = &c.imap_tls_ca_file
        {
            self.file(
                "[collector] imap_tls_ca_file",
                ca,
                "give the PEM file of the CA that signed Cyrus's certificate",
            );
        }
    }

    /// A folder a daemon writes: there, or creatable; with `mail`, closed to other users.
    fn folder(&mut self, key: &str, dir: &Path, mail: bool) {
        match std::fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => self.add(
                key,
                format!("{} is not a folder", dir.display()),
                "remove what is there or name another folder",
            ),
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o7777;
                if mail && mode & 0o007 != 0 {
                    self.add(
                        key,
                        format!(
                            "the folder {} holds mail and is open to every user (mode {mode:04o})",
                            dir.display()
                        ),
                        format!("chmod o-rwx {}", dir.display()),
                    );
                }
            }
            Err(_) => {
                let Some(existing) = dir.ancestors().skip(1).find(|a| a.exists()) else {
                    return;
                };
                let writable = existing.is_dir()
                    && rustix::fs::access(existing, rustix::fs::Access::WRITE_OK).is_ok();
                if !writable {
                    self.add(
                        key,
                        format!(
                            "{} does not exist and cannot be made: {} is not a folder this user may write",
                            dir.display(),
                            existing.display()
                        ),
                        format!(
                            "make it for bonnie: install -d -o bonnie -g bonnie -m 0750 {} (and check as the user the daemons run as)",
                            dir.display()
                        ),
                    );
                }
            }
        }
    }

    /// A database of mail: its folder there or creatable, the file closed to other users.
    fn mail_file(&mut self, key: &str, file: &Path) {
        if let Some(folder) = file.parent() {
            self.folder(key, folder, false);
        }
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o007 != 0 {
                self.add(
                    key,
                    format!(
                        "{} holds mail and is open to every user (mode {mode:04o})",
                        file.display()
                    ),
                    format!(
                        "chmod o-rwx {} (and its -wal and -shm files)",
                        file.display()
                    ),
                );
            }
        }
    }

    /// A file a daemon reads; `missing` says how to provide it. False when it is not there.
    fn file(&mut self, key: &str, file: &Path, missing: &str) -> bool {
        match std::fs::File::open(file) {
            Ok(_) if file.is_file() => true,
            Ok(_) => {
                self.add(key, format!("{} is not a file", file.display()), missing);
                false
            }
            Err(e) => {
                let fix = if e.kind() == std::io::ErrorKind::NotFound {
                    missing.to_string()
                } else {
                    "let bonnie read it (check as the user the daemons run as)".to_string()
                };
                self.add(key, format!("cannot read {}: {e}", file.display()), fix);
                false
            }
        }
    }

    /// A key file: there, closed as its kind requires, and read as the daemon using it reads
    /// it (the same functions), so that a damaged key is found too.
    fn key_file(&mut self, key: &str, file: &Path, kind: KeyFile, missing: &str) {
        let usable = match kind {
            KeyFile::CurvePair => self.secret_file(key, file, SECRET_MASK, missing),
            KeyFile::Signing => self.secret_file(key, file, SIGNING_KEY_MASK, missing),
            KeyFile::CurvePublic => self.file(key, file, missing),
        };
        if !usable {
            return;
        }
        let read = match kind {
            KeyFile::CurvePair => KeyDir::read_pair(file).map(drop).map_err(|e| e.to_string()),
            KeyFile::CurvePublic => KeyDir::read_public(file)
                .map(drop)
                .map_err(|e| e.to_string()),
            KeyFile::Signing => bonnie_ledger::ArchiveKey::read(file)
                .map(drop)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = read {
            self.add(
                key,
                format!("{} is not a usable key: {e}", file.display()),
                "make it anew (`bonnie keys generate <role> --force`, `bonnie ledger init`) or copy it again",
            );
        }
    }

    /// A file of secrets: there, and open at most as far as `mask` allows. False when it is
    /// not there or too open.
    fn secret_file(&mut self, key: &str, file: &Path, mask: u32, missing: &str) -> bool {
        if !self.file(key, file, missing) {
            return false;
        }
        let Ok(meta) = std::fs::metadata(file) else {
            return false;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & mask != 0 {
            let allowed = if mask == SIGNING_KEY_MASK {
                "its owner alone: chmod 0600"
            } else {
                "bonnie alone: chmod 0600 (or 0640 with group bonnie)"
            };
            self.add(
                key,
                format!(
                    "{} holds a secret and is open to {} (mode {mode:04o})",
                    file.display(),
                    if mode & 0o007 != 0 {
                        "every user"
                    } else {
                        "its group"
                    }
                ),
                format!("make it readable by {allowed} {}", file.display()),
            );
            return false;
        }
        true
    }

    /// Loads the plugin folder as the worker does and starts every enabled plugin with its
    /// table, the storage first (the others may use it), then outputs, handlers and inputs.
    fn plugins(&mut self, config: &Config) {
        let w = &config.worker;
        let entries = match loader::load_dir(&w.plugin_dir, &w.disabled) {
            Ok(entries) => entries,
            Err(e) => {
                self.add(
                    "[worker] plugin_dir",
                    e.to_string(),
                    "install the plugins there (mode 0644, in folders only root or bonnie may write), or correct plugin_dir",
                );
                return;
            }
        };
        let mut plugins = Vec::new();
        let mut known: BTreeSet<String> = w.disabled.iter().map(|d| plugin_name_of(d)).collect();
        for entry in entries {
            match entry {
                Entry::Loaded(plugin) => {
                    known.insert(plugin.name().to_string());
                    self.loaded.insert(plugin.name().to_string());
                    plugins.push(plugin);
                }
                Entry::Disabled { file } => {
                    known.insert(plugin_name_of(&file.to_string_lossy()));
                }
                Entry::Refused {
                    file, name, reason, ..
                } => {
                    let which = name.map(|n| format!(" ({n})")).unwrap_or_default();
                    self.add(
                        "[worker] plugin_dir",
                        format!(
                            "the plugin file {}{which} is not loaded: {reason}",
                            file.display()
                        ),
                        "replace it with a build for this bonnie, remove it, or list it in [worker] disabled",
                    );
                }
            }
        }
        for name in config.plugins.keys() {
            if !known.contains(name) {
                self.add(
                    format!("[plugins.{name}]"),
                    format!(
                        "configures a plugin that is not in {}",
                        w.plugin_dir.display()
                    ),
                    "install the plugin there, or correct the table's name or remove it",
                );
            }
        }
        for name in &w.handler_order {
            if !plugins
                .iter()
                .any(|p| p.kind() == Kind::Handler && p.name() == name)
            {
                self.add(
                    "[worker] handler_order",
                    format!("names {name:?}, which is not an enabled handler plugin"),
                    "install it, or remove it from the list",
                );
            }
        }
        self.start_plugins(config, &plugins);
    }

    fn start_plugins(&mut self, config: &Config, plugins: &[Plugin]) {
        let mut shared = Shared {
            config_dir: config.dir().to_string_lossy().into_owned(),
            storage: None,
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let refused = |plugin: &Plugin, e: &dyn std::fmt::Display| Finding {
            key: format!("[plugins.{}]", plugin.name()),
            problem: format!(
                "the {} plugin {} refuses to start: {e}",
                plugin.kind(),
                plugin.name()
            ),
            fix: format!(
                "correct [plugins.{}] (docs/plugins.md), or list it in [worker] disabled",
                plugin.name()
            ),
        };
        if let Some(storage) = self.chosen_storage(config, plugins) {
            match bonnie_host::start::open_storage(config, std::slice::from_ref(storage), &shared) {
                Ok(Some((_, started))) => shared.storage = Some(started),
                Ok(None) => {}
                Err(e) => {
                    let cause = e.root_cause().to_string();
                    self.findings.push(refused(storage, &cause));
                }
            }
        }
        for plugin in plugins {
            let context = HostContext::new_box(
                plugin.name(),
                config.plugin_json(plugin.name()),
                shared.clone(),
            );
            let outcome = match plugin.module {
                Module::Storage(_) => continue,
                Module::Output(module) => module.new()(context).into_result().map(drop),
                Module::Handler(module) => module.new()(context)
                    .into_result()
                    .and_then(|handler| handler.events().into_result().map(drop)),
                Module::Input(module) => module.new()(context).into_result().map(drop),
            };
            if let Err(e) = outcome {
                self.findings.push(refused(plugin, &e));
            }
        }
        let dir = config.worker.plugin_dir.display();
        // A storage, output or input that is there but refused is a finding already.
        let writers = plugins
            .iter()
            .any(|p| matches!(p.kind(), Kind::Storage | Kind::Output));
        if !writers {
            self.add(
                "[worker] plugin_dir",
                format!("neither a storage nor an output plugin is enabled in {dir}: the worker refuses to start"),
                "install and enable sqlite-storage (or another storage or output plugin)",
            );
        }
        if !plugins.iter().any(|p| p.kind() == Kind::Input) {
            self.add(
                "[worker] plugin_dir",
                format!("no input plugin is enabled in {dir}: the worker has no jobs to run"),
                "install and enable zmq-input (jobs from the broker)",
            );
        }
    }

    /// The storage plugin the worker would start: `[worker] storage`, else the only one.
    fn chosen_storage<'p>(&mut self, config: &Config, plugins: &'p [Plugin]) -> Option<&'p Plugin> {
        let storages: Vec<&Plugin> = plugins
            .iter()
            .filter(|p| p.kind() == Kind::Storage)
            .collect();
        let names = || {
            let names: Vec<&str> = storages.iter().map(|p| p.name()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        match &config.worker.storage {
            Some(name) => {
                let found = storages.iter().find(|p| p.name() == name).copied();
                if found.is_none() {
                    self.add(
                        "[worker] storage",
                        format!(
                            "names {name:?}, which is not an enabled storage plugin in {} (enabled: {})",
                            config.worker.plugin_dir.display(),
                            names()
                        ),
                        "install that plugin, or name one that is there",
                    );
                }
                found
            }
            None if storages.len() > 1 => {
                self.add(
                    "[worker] storage",
                    format!(
                        "is not set and several storage plugins are enabled ({})",
                        names()
                    ),
                    "choose one: storage = \"<name>\", and disable the others",
                );
                None
            }
            None => storages.first().copied(),
        }
    }

    /// Asks every peer the roles checked talk to, each within `timeout`.
    fn peers(&mut self, config: &Config, timeout: Duration) {
        if self.has(Role::Broker) || self.has(Role::Api) {
            self.admin_socket(config, timeout);
        }
        if self.has(Role::Dealer) {
            self.listens(
                "[dealer] broker_address",
                &config.dealer.broker_address,
                timeout,
            );
        }
        if self.has(Role::Collector) {
            self.listens(
                "[collector] broker_address",
                &config.collector.broker_address,
                timeout,
            );
            let mut secrets = config.clone();
            // A password that cannot be read is a finding already (structure).
            if secrets.load_secrets().is_ok() {
                self.imap(&secrets, timeout);
                if secrets
                    .collector
                    .commands
                    .iter()
                    .any(|c| c == "GETUSERDATA")
                {
                    self.ldap(&secrets, timeout);
                }
            }
        }
        if self.has(Role::Worker) {
            if self.loaded.contains("zmq-input") {
                // zmq-input's defaults are the broker's own.
                let defaults = bonnie_core::config::BrokerConfig::default();
                let table = config.plugins.get("zmq-input");
                for (key, default) in [
                    ("worker_address", defaults.worker_address),
                    ("controller_address", defaults.controller_address),
                ] {
                    let endpoint = table
                        .and_then(|t| t.get(key))
                        .and_then(toml::Value::as_str)
                        .map_or(default, str::to_string);
                    self.listens(&format!("[plugins.zmq-input] {key}"), &endpoint, timeout);
                }
            }
            self.elasticsearch(config, timeout);
        }
    }

    /// The broker's admin socket answers `bonnie status`.
    fn admin_socket(&mut self, config: &Config, timeout: Duration) {
        let address = &config.broker.admin_address;
        if !crate::audit::listening(address) {
            self.add(
                "[broker] admin_address",
                format!("nothing listens at {address}"),
                "start bonnie-broker (systemctl start bonnie-broker), or correct the address",
            );
            return;
        }
        let admin = Admin::new(address, timeout, &config.curve);
        if let Err(e) = admin.ask(&AdminRequest::Status) {
            self.add(
                "[broker] admin_address",
                format!("the broker at {address} does not answer: {e:#}"),
                "check that it is this bonnie's broker and that this host's admin key is allowed there (bonnie keys list)",
            );
        }
    }

    /// Something accepts connections at a ZeroMQ endpoint a daemon connects to.
    fn listens(&mut self, key: &str, endpoint: &str, timeout: Duration) {
        let Some(address) = endpoint.strip_prefix("tcp://") else {
            return;
        };
        if !tcp_reachable(address, timeout) {
            self.add(
                key,
                format!("nothing listens at {endpoint}"),
                "start the broker there, or correct the address (and its firewall)",
            );
        }
    }

    /// Cyrus's IMAP server lets the collector's admin log in, as the collector does.
    fn imap(&mut self, config: &Config, timeout: Duration) {
        let c = &config.collector;
        let imap = match crate::backfill::imap_config(c, timeout) {
            Ok(imap) => imap,
            Err(e) => {
                self.add(
                    "[collector] imap_tls_ca_file",
                    e.to_string(),
                    "give a PEM file of the CA",
                );
                return;
            }
        };
        let logged_in = bonnie_imap::Connection::connect(&imap)
            .map_err(|e| ("[collector] imap_address", format!("cannot reach IMAP at {}: {e}", c.imap_address), "start Cyrus, or correct imap_address and imap_security"))
            .and_then(|mut connection| {
                let login = connection.login(&c.imap_admin, &c.imap_password).map_err(|e| {
                    (
                        "[collector] imap_admin",
                        format!("IMAP at {} refuses the login of {:?}: {e}", c.imap_address, c.imap_admin),
                        "give a Cyrus admin (admins: in imapd.conf) and its password (imap_password_file)",
                    )
                });
                let _ = connection.logout();
                login
            });
        if let Err((key, problem, fix)) = logged_in {
            self.add(key, problem, fix);
        }
    }

    /// The directory lets the collector bind, as GETUSERDATA does.
    fn ldap(&mut self, config: &Config, timeout: Duration) {
        let l = &config.collector.ldap;
        let settings = ldap3::LdapConnSettings::new().set_conn_timeout(timeout);
        let mut ldap = match ldap3::LdapConn::with_settings(settings, &l.url) {
            Ok(ldap) => ldap,
            Err(e) => {
                self.add(
                    "[collector.ldap] url",
                    format!("cannot reach LDAP at {}: {e}", l.url),
                    "start the directory server, or correct url",
                );
                return;
            }
        };
        ldap.with_timeout(timeout);
        if !l.bind_dn.is_empty()
            && let Err(e) = ldap
                .simple_bind(&l.bind_dn, &l.bind_password)
                .and_then(|r| r.success())
        {
            self.add(
                "[collector.ldap] bind_dn",
                format!("LDAP at {} refuses the bind as {}: {e}", l.url, l.bind_dn),
                "give the service account's DN and its password (bind_password_file)",
            );
        }
        let _ = ldap.unbind();
    }

    /// The Elasticsearch server of each loaded es-storage or es-output answers its root.
    fn elasticsearch(&mut self, config: &Config, timeout: Duration) {
        for plugin in ["es-storage", "es-output"] {
            if !self.loaded.contains(plugin) {
                continue;
            }
            let table = config.plugins.get(plugin);
            let text = |key: &str| table.and_then(|t| t.get(key)).and_then(toml::Value::as_str);
            let url = text("url").unwrap_or("http://127.0.0.1:9200");
            let key = format!("[plugins.{plugin}] url");
            let client = match reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
            {
                Ok(client) => client,
                Err(e) => {
                    self.add(key, format!("cannot make an HTTP client: {e}"), "");
                    continue;
                }
            };
            let mut request = client.get(url);
            if let Some(user) = text("username") {
                request = request.basic_auth(user, text("password"));
            }
            match request.send() {
                Ok(answer) if answer.status().is_success() => {}
                Ok(answer) => self.add(
                    key,
                    format!("Elasticsearch at {url} answers {}", answer.status()),
                    "check username and password, and the server's health",
                ),
                Err(e) => self.add(
                    key,
                    format!("cannot reach Elasticsearch at {url}: {e}"),
                    "start the server, or correct url",
                ),
            }
        }
    }
}

/// The roles whose tables the file has.
fn roles_of(text: &str) -> BTreeSet<Role> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return BTreeSet::new();
    };
    let mut roles = BTreeSet::new();
    for (name, role) in [
        ("broker", Role::Broker),
        ("ledger", Role::Broker),
        ("dealer", Role::Dealer),
        ("collector", Role::Collector),
        ("worker", Role::Worker),
        ("plugins", Role::Worker),
        ("api", Role::Api),
    ] {
        if table.contains_key(name) {
            roles.insert(role);
        }
    }
    roles
}

/// The key at a parse error's place, as `[table] key`, and its line (from 1).
fn locate(text: &str, span: Option<std::ops::Range<usize>>) -> (String, Option<usize>) {
    let Some(span) = span.filter(|s| s.start <= text.len()) else {
        return ("(file)".to_string(), None);
    };
    let before = &text[..span.start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let word = text
        .get(span.clone())
        .map(|w| w.trim().trim_matches(['"', '[', ']']).to_string())
        .filter(|w| !w.is_empty() && !w.contains('\n') && w.len() <= 100);
    // On a table's own line the error is the table's; else it is a key of the table above.
    let on_header = text[line_start..].trim_start().starts_with('[');
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string());
    let key = match (on_header, table, word) {
        (true, _, Some(word)) => format!("[{word}]"),
        (false, Some(table), Some(word)) => format!("[{table}] {word}"),
        (false, Some(table), None) => format!("[{table}]"),
        (false, None, Some(word)) => word,
        _ => "(file)".to_string(),
    };
    (key, Some(line))
}

/// The table a message of [`ConfigError::Invalid`] names first, as `[table]`.
fn table_of_message(message: &str) -> String {
    match message
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
    {
        Some((table, _)) => format!("[{table}]"),
        None => "(file)".to_string(),
    }
}

/// A plugin's name from a `[worker] disabled` entry or a file: `libbonnie_es_output.so` and
/// `es-output` are both `es-output`.
fn plugin_name_of(entry: &str) -> String {
    let file = Path::new(entry)
        .file_name()
        .map_or_else(|| entry.to_string(), |n| n.to_string_lossy().into_owned());
    file.strip_prefix("libbonnie_")
        .and_then(|rest| rest.strip_suffix(".so"))
        .map_or(file.clone(), |name| name.replace('_', "-"))
}

/// Whether a TCP connection to `host:port` is accepted within `timeout`.
fn tcp_reachable(address: &str, timeout: Duration) -> bool {
    use std::net::ToSocketAddrs as _;
    address.to_socket_addrs().is_ok_and(|mut addresses| {
        addresses.any(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_named_with_its_table_and_line() {
        let text = "[worker]\nthreads = 2\n\n[broker]\ndatabse = \"x.db\"\n";
        let err = toml::from_str::<Config>(text).unwrap_err();
        let (key, line) = locate(text, err.span());
        assert_eq!(key, "[broker] databse");
        assert_eq!(line, Some(5));
        let text = "[wroker]\nthreads = 2\n";
        let err = toml::from_str::<Config>(text).unwrap_err();
        assert_eq!(locate(text, err.span()), ("[wroker]".to_string(), Some(1)));
    }

    #[test]
    fn roles_are_the_tables_the_file_has() {
        let roles = roles_of("[dealer]\nhost = \"a\"\n\n[plugins.zmq-input]\ncurve = true\n");
        assert_eq!(
            roles.into_iter().collect::<Vec<_>>(),
            [Role::Dealer, Role::Worker]
        );
    }

    #[test]
    fn disabled_entries_name_plugins_by_file_or_name() {
        assert_eq!(plugin_name_of("libbonnie_es_output.so"), "es-output");
        assert_eq!(plugin_name_of("es-output"), "es-output");
    }
}
