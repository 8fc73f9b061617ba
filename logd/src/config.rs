//! `[logd]`: what the log intake listens on and follows, where it keeps its state, and the
//! bounds on what it accepts. The broker connection (address, ACK timeout, host name, CURVE
//! keys) is the dealer's, from `[dealer]` and `[curve]`: a logd submits as its host's dealer.

use std::path::PathBuf;

use bonnie_core::Config;
use serde::Deserialize;

/// The largest `max_batch_bytes`: eight times it is below the broker's default
/// `max_message_bytes` (64 MiB), so that no batch is too large for the broker to take.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// `[logd]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogdConfig {
    /// UDP addresses to receive syslog datagrams on (RFC 5426), such as `"127.0.0.1:5514"`.
    /// Default: none.
    pub udp: Vec<String>,
    /// TCP addresses to receive syslog on (RFC 6587: octet counting or newline framing, per
    /// message). Default: none.
    pub tcp: Vec<String>,
    /// Unix datagram sockets to receive syslog on, as `/dev/log` and rsyslog's omuxsock
    /// send. Default: none.
    pub unix: Vec<PathBuf>,
    /// The unix sockets' permissions. Default: `0o660`.
    pub unix_mode: u32,
    /// Log files to follow (a mail.log, Postfix's `maillog_file`), read from their first line,
    /// followed across rotation by rename and by copytruncate. Default: none.
    pub files: Vec<PathBuf>,
    /// Where each followed file's position is kept (synced). Default: `var/logd-state`.
    pub state_dir: PathBuf,
    /// The spool of batches the broker has not acknowledged yet. Default: `var/logd-spool`.
    pub spool_dir: PathBuf,
    /// Longest line kept, in bytes; the rest of a longer line is dropped and the batch counts
    /// it in `truncated`. Default: 16384.
    pub max_line_bytes: usize,
    /// Most lines in one batch. Default: 1000.
    pub max_batch_lines: usize,
    /// Most bytes of lines in one batch, at most 8388608. Default: 1048576.
    pub max_batch_bytes: usize,
    /// How long received lines wait for more before their batch is handed over, in
    /// milliseconds. Default: 200.
    pub batch_wait_ms: u64,
    /// How often followed files are looked at, in milliseconds. Default: 200.
    pub poll_ms: u64,
    /// Most TCP connections served at once; more wait in the backlog. Default: 256.
    pub max_connections: usize,
    /// Where Prometheus scrapes bonnie-logd's metrics (`GET /metrics`), `address:port`; read
    /// by anyone who reaches it, so keep it on loopback. Default: empty, no metrics served.
    pub metrics_listen: String,
}

impl Default for LogdConfig {
    fn default() -> Self {
        Self {
            udp: Vec::new(),
            tcp: Vec::new(),
            unix: Vec::new(),
            unix_mode: 0o660,
            files: Vec::new(),
            state_dir: PathBuf::from("var/logd-state"),
            spool_dir: PathBuf::from("var/logd-spool"),
            max_line_bytes: 16 * 1024,
            max_batch_lines: 1000,
            max_batch_bytes: 1024 * 1024,
            batch_wait_ms: 200,
            poll_ms: 200,
            max_connections: 256,
            metrics_listen: String::new(),
        }
    }
}

impl LogdConfig {
    /// Reads and checks `[logd]` of `config`, its paths resolved against the file's folder.
    pub fn from(config: &Config) -> anyhow::Result<Self> {
        let table = toml::Value::Table(config.logd.clone());
        let mut logd: LogdConfig = table
            .try_into()
            .map_err(|e| anyhow::anyhow!("invalid [logd] in {}: {e}", config.path.display()))?;
        logd.files = logd.files.iter().map(|p| config.resolve(p)).collect();
        logd.unix = logd.unix.iter().map(|p| config.resolve(p)).collect();
        logd.state_dir = config.resolve(&logd.state_dir);
        logd.spool_dir = config.resolve(&logd.spool_dir);
        let bounds = [
            ("max_line_bytes", logd.max_line_bytes),
            ("max_batch_lines", logd.max_batch_lines),
            ("max_batch_bytes", logd.max_batch_bytes),
            ("max_connections", logd.max_connections),
        ];
        if let Some((name, _)) = bounds.iter().find(|(_, value)| *value == 0) {
            anyhow::bail!(
                "invalid [logd] in {}: {name} must be above 0",
                config.path.display()
            );
        }
        if logd.max_batch_bytes > MAX_BATCH_BYTES {
            anyhow::bail!(
                "invalid [logd] in {}: max_batch_bytes ({}) is above {MAX_BATCH_BYTES}: a batch's \
                 JSON may be eight times its lines (escapes, and the bytes of lines that are not \
                 UTF-8 kept twice) and must stay below the broker's max_message_bytes",
                config.path.display(),
                logd.max_batch_bytes
            );
        }
        if logd.max_batch_bytes < logd.max_line_bytes {
            anyhow::bail!(
                "invalid [logd] in {}: max_batch_bytes ({}) is below max_line_bytes ({}): a \
                 longest line would fit no batch",
                config.path.display(),
                logd.max_batch_bytes,
                logd.max_line_bytes
            );
        }
        let sources = logd.udp.len() + logd.tcp.len() + logd.unix.len() + logd.files.len();
        if sources == 0 {
            anyhow::bail!(
                "[logd] in {} names nothing to read: set udp, tcp, unix or files",
                config.path.display()
            );
        }
        Ok(logd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> anyhow::Result<LogdConfig> {
        let config = Config::parse(text, Path::new("/etc/bonnie/bonnie.toml"))?;
        LogdConfig::from(&config)
    }

    #[test]
    fn unknown_keys_and_empty_tables_are_refused_and_paths_resolved() {
        let error = parse("[logd]\nfiles = [\"mail.log\"]\nfollow = true\n").unwrap_err();
        assert!(error.to_string().contains("follow"), "{error}");
        let error = parse("[logd]\n").unwrap_err();
        assert!(error.to_string().contains("nothing to read"), "{error}");
        let logd = parse("[logd]\nfiles = [\"mail.log\", \"/var/log/mail.log\"]\n").unwrap();
        assert_eq!(
            logd.files,
            [
                PathBuf::from("/etc/bonnie/mail.log"),
                PathBuf::from("/var/log/mail.log")
            ]
        );
        assert_eq!(logd.state_dir, PathBuf::from("/etc/bonnie/var/logd-state"));
    }
}
