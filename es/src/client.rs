//! The connection: the official `elasticsearch` client on a small tokio runtime owned by the
//! plugin (the host's threads block on it; nothing is spawned on a runtime of the host's).

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bonnie_payload_store::{PayloadStore, Sealer};
use bonnie_plugin_api::PluginError;
use elasticsearch::{
    Elasticsearch,
    auth::Credentials,
    http::{
        Url,
        transport::{SingleNodeConnectionPool, TransportBuilder},
    },
};

use crate::{Settings, readback::RecentWrites, templates};

/// A connection to one Elasticsearch or OpenSearch server.
pub struct Es {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) client: Elasticsearch,
    pub(crate) settings: Settings,
    dead_letter: Mutex<File>,
    templates_installed: AtomicBool,
    /// Log documents written and not read back yet (`get_log_entry`).
    pub(crate) recent_writes: Mutex<RecentWrites>,
    /// Whether `recent_writes` is kept (only by a storage that reads its log back).
    pub(crate) reads_back_log: bool,
    /// Where payloads are kept when not as documents of this server (`with_payload_store`).
    pub(crate) payload_store: Option<Arc<dyn PayloadStore>>,
    /// How payload documents are sealed and opened (`with_payload_sealer`).
    pub(crate) payload_sealer: Sealer,
}

impl Es {
    /// The client of the plugin `plugin`: its table read and checked, the index templates
    /// installed if the server answers (else before the first write).
    pub fn for_plugin(host: &bonnie_plugin_api::Host, plugin: &str) -> Result<Self, PluginError> {
        Self::for_plugin_with(host, plugin, host.config()?)
    }

    /// The client of the plugin `plugin` with `settings` read from its table (by a plugin
    /// whose table holds more keys than these), as [`Self::for_plugin`].
    pub fn for_plugin_with(
        host: &bonnie_plugin_api::Host,
        plugin: &str,
        settings: Settings,
    ) -> Result<Self, PluginError> {
        settings.validate(plugin).map_err(PluginError::config)?;
        let es = Es::new(settings.clone(), &host.path(&settings.dead_letter))?;
        match es.ensure_templates() {
            Ok(()) => host.info(
                "Connected; index templates installed.",
                &[("url", &es.url())],
            ),
            Err(e) => host.warn(
                "The server does not answer yet; retrying before the first write.",
                &[("url", &es.url()), ("error", &e)],
            ),
        }
        Ok(es)
    }

    /// Connects (lazily: nothing is sent yet) and opens the dead-letter store.
    pub fn new(settings: Settings, dead_letter: &Path) -> Result<Self, PluginError> {
        let url = Url::parse(&settings.url)
            .map_err(|e| PluginError::config(format!("invalid url {:?}: {e}", settings.url)))?;
        let mut transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .disable_proxy();
        if let Some(username) = &settings.username {
            let password = settings.password.clone().unwrap_or_default();
            transport = transport.auth(Credentials::Basic(username.clone(), password));
        }
        let transport = transport.build().map_err(|e| {
            PluginError::config(format!(
                "cannot set up the connection to {}: {e}",
                settings.url
            ))
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("es-client")
            .enable_all()
            .build()
            .map_err(|e| PluginError::config(format!("cannot start the client's runtime: {e}")))?;
        if let Some(dir) = dead_letter.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                PluginError::config(format!(
                    "cannot create the folder of {}: {e}",
                    dead_letter.display()
                ))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dead_letter)
            .map_err(|e| {
                PluginError::config(format!(
                    "cannot open the dead-letter store {}: {e}",
                    dead_letter.display()
                ))
            })?;
        Ok(Self {
            runtime,
            client: Elasticsearch::new(transport),
            settings,
            dead_letter: Mutex::new(file),
            templates_installed: AtomicBool::new(false),
            recent_writes: Mutex::new(RecentWrites::default()),
            reads_back_log: false,
            payload_store: None,
            payload_sealer: Sealer::default(),
        })
    }

    /// Installs the index templates unless that was done; a failure is a passing fault (the
    /// server may be starting), retried before the next write.
    pub fn ensure_templates(&self) -> Result<(), PluginError> {
        if !self.settings.install_templates || self.templates_installed.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.runtime
            .block_on(templates::install(&self.client, &self.settings))?;
        self.templates_installed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Notes that the server stopped answering: it may come back as a fresh server without
    /// the templates, so they are installed again before the next write.
    pub(crate) fn templates_lost(&self) {
        self.templates_installed.store(false, Ordering::Relaxed);
    }

    /// Appends lines to the dead-letter store and syncs them.
    pub(crate) fn dead_letter(&self, lines: &[serde_json::Value]) -> Result<(), PluginError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for line in lines {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let mut file = self.dead_letter.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| PluginError::transient(format!("cannot write the dead-letter store: {e}")))
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.settings.url
    }
}

/// A request-level failure: a passing fault, with the server's words when it answered.
pub(crate) fn request_error(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::transient(format!("{what}: {e}"))
}
