//! The settings of `[plugins.es-output]` and `[plugins.es-storage]`.

use serde::Deserialize;

/// Where the server is and how bonnie writes to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The server's URL. Default: `http://127.0.0.1:9200`.
    #[serde(default = "default_url")]
    pub url: String,
    /// User name for HTTP Basic authentication. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for HTTP Basic authentication. Default: none.
    #[serde(default)]
    pub password: Option<String>,
    /// Daily event-log indices are `<log_prefix>-YYYY.MM.DD`, by the event's date (UTC).
    /// Default: `logstash`.
    #[serde(default = "default_log_prefix")]
    pub log_prefix: String,
    /// Indices of keyed records are `<records_prefix><collection>`. Default: `bonnie-`.
    #[serde(default = "default_records_prefix")]
    pub records_prefix: String,
    /// The dead-letter store: documents the server refused, with its reason (JSON lines).
    /// Default: `var/es-dead-letter.jsonl`.
    #[serde(default = "default_dead_letter")]
    pub dead_letter: String,
    /// Documents per `_bulk` request. Default: 500.
    #[serde(default = "default_bulk_docs")]
    pub bulk_docs: usize,
    /// `_bulk` requests in flight at once. Default: 2.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Tries of a document the server answers 429 or 503 for, with a doubling pause from
    /// 100 ms, before the job is postponed. Default: 5.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Timeout of one request, in milliseconds. Default: 30000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Install (update) the index templates at start. Default: true.
    #[serde(default = "default_true")]
    pub install_templates: bool,
    /// At most this many bytes of text of each message part (a body, an attachment) go into
    /// a log document's `search_text`; a message with a longer part is indexed in part and
    /// its document marked `text_truncated`. Default: 1048576 (1 MiB).
    #[serde(default = "default_max_indexed_text_bytes")]
    pub max_indexed_text_bytes: usize,
    /// Records per page of a query that pages (`search_after` on time and key), at most the
    /// server's `index.max_result_window` (10000 unless changed). Default: 5000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_page_size() -> u32 {
    5000
}

fn default_max_indexed_text_bytes() -> usize {
    bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES
}

fn default_url() -> String {
    "http://127.0.0.1:9200".to_string()
}

fn default_log_prefix() -> String {
    "logstash".to_string()
}

fn default_records_prefix() -> String {
    "bonnie-".to_string()
}

fn default_dead_letter() -> String {
    "var/es-dead-letter.jsonl".to_string()
}

fn default_bulk_docs() -> usize {
    500
}

fn default_concurrency() -> usize {
    2
}

fn default_retries() -> u32 {
    5
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}

impl Settings {
    /// Checks values that deserialization cannot.
    pub fn validate(&self, plugin: &str) -> Result<(), String> {
        if self.bulk_docs == 0 || self.concurrency == 0 {
            return Err(format!(
                "[plugins.{plugin}] bulk_docs and concurrency must be at least 1"
            ));
        }
        if self.page_size == 0 {
            return Err(format!("[plugins.{plugin}] page_size must be at least 1"));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "[plugins.{plugin}] url must start with http:// or https://, not {:?}",
                self.url
            ));
        }
        if self.url.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(format!(
                "[plugins.{plugin}] url is https, but this plugin was built without TLS; rebuild it with the tls feature"
            ));
        }
        let prefix_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        };
        if !prefix_ok(&self.log_prefix) || !prefix_ok(&self.records_prefix) {
            return Err(format!(
                "[plugins.{plugin}] log_prefix and records_prefix must be lowercase index names"
            ));
        }
        Ok(())
    }
}
