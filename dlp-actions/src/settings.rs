//! The alert settings, the DLP plugin's table `[plugins.dlp.alerts]`: how webhooks, syslog
//! and e-mail are reached, and how often and how long a failing alert is retried. Every
//! field has a default; [`AlertSettings::check`] names the key at fault.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::SettingsError;

/// `[plugins.dlp.alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Milliseconds between two looks for due alerts [default: 2000].
    pub poll_interval_ms: u64,
    /// Milliseconds a sender holds an alert it took; one whose sender died in between is
    /// sent again after it. More than every channel's timeout [default: 300000].
    pub claim_ms: u64,
    /// Retries of a failing alert.
    pub retry: RetrySettings,
    /// `webhook` alerts.
    pub webhook: WebhookSettings,
    /// `syslog` alerts.
    pub syslog: SyslogSettings,
    /// `email` alerts; without it an e-mail alert fails (and says so).
    pub smtp: Option<SmtpSettings>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 2000,
            claim_ms: 300_000,
            retry: RetrySettings::default(),
            webhook: WebhookSettings::default(),
            syslog: SyslogSettings::default(),
            smtp: None,
        }
    }
}

/// `[plugins.dlp.alerts.retry]`: after a failed attempt the next waits `initial_backoff_ms`,
/// then twice as long each time up to `max_backoff_ms`; after `max_attempts` attempts the
/// alert is `failed`, with the last reason.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Milliseconds before the first retry [default: 30000].
    pub initial_backoff_ms: u64,
    /// The longest wait between two attempts, in milliseconds [default: 3600000].
    pub max_backoff_ms: u64,
    /// Attempts in all, the first included [default: 12].
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 30_000,
            max_backoff_ms: 3_600_000,
            max_attempts: 12,
        }
    }
}

impl RetrySettings {
    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(63);
        let ms = self
            .initial_backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_backoff_ms);
        Duration::from_millis(ms)
    }
}

/// `[plugins.dlp.alerts.webhook]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Milliseconds a POST may take, connecting included [default: 10000].
    pub timeout_ms: u64,
    /// A file (mode 0600 or 0400) holding the secret of the `X-Bonnie-Signature` header, an
    /// HMAC-SHA256 of the body (`sha256=<hex>`); no signature without it [default: none].
    pub secret_file: Option<PathBuf>,
    /// A PEM file of the CA certificates an `https://` receiver's certificate must chain to,
    /// for receivers with a private CA [default: none: the webpki roots].
    pub ca_file: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            secret_file: None,
            ca_file: None,
        }
    }
}

/// `[plugins.dlp.alerts.syslog]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogSettings {
    /// Where: a Unix socket path (`/dev/log`), `udp:<host>:<port>` or `tcp:<host>:<port>`
    /// [default: `/dev/log`].
    pub target: String,
    /// `rfc5424` or `rfc3164` [default: `rfc5424`].
    pub format: SyslogFormat,
    /// The facility: `user`, `daemon`, `auth`, `authpriv` or `local0` to `local7`
    /// [default: `auth`].
    pub facility: String,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        Self {
            target: "/dev/log".to_string(),
            format: SyslogFormat::Rfc5424,
            facility: "auth".to_string(),
        }
    }
}

/// How syslog lines are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164 (BSD).
    Rfc3164,
}

/// Where syslog lines go, as [`SyslogSettings::target`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A Unix socket.
    Unix(PathBuf),
    /// UDP to `host:port`.
    Udp(String),
    /// TCP to `host:port`.
    Tcp(String),
}

impl SyslogSettings {
    /// The target, parsed.
    pub fn target(&self) -> Result<SyslogTarget, SettingsError> {
        let address = |rest: &str| {
            if rest.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            }) {
                Ok(rest.to_string())
            } else {
                Err(SettingsError::new(
                    "syslog.target",
                    format!("{rest:?} is not <host>:<port>"),
                ))
            }
        };
        if let Some(rest) = self.target.strip_prefix("udp:") {
            address(rest).map(SyslogTarget::Udp)
        } else if let Some(rest) = self.target.strip_prefix("tcp:") {
            address(rest).map(SyslogTarget::Tcp)
        } else if self.target.starts_with('/') {
            Ok(SyslogTarget::Unix(PathBuf::from(&self.target)))
        } else {
            Err(SettingsError::new(
                "syslog.target",
                format!(
                    "{:?} is neither a socket path nor udp:<host>:<port> nor tcp:<host>:<port>",
                    self.target
                ),
            ))
        }
    }

    /// The facility, parsed.
    pub fn facility(&self) -> Result<fasyslog::Facility, SettingsError> {
        use fasyslog::Facility;
        Ok(match self.facility.as_str() {
            "user" => Facility::USER,
            "daemon" => Facility::DAEMON,
            "auth" => Facility::AUTH,
            "authpriv" => Facility::AUTHPRIV,
            "local0" => Facility::LOCAL0,
            "local1" => Facility::LOCAL1,
            "local2" => Facility::LOCAL2,
            "local3" => Facility::LOCAL3,
            "local4" => Facility::LOCAL4,
            "local5" => Facility::LOCAL5,
            "local6" => Facility::LOCAL6,
            "local7" => Facility::LOCAL7,
            other => {
                return Err(SettingsError::new(
                    "syslog.facility",
                    format!(
                        "{other:?} is not one of user, daemon, auth, authpriv, local0 to local7"
                    ),
                ));
            }
        })
    }
}

/// `[plugins.dlp.alerts.smtp]`: the relay e-mail alerts go through.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The relay's host name or address.
    pub host: String,
    /// Its port [default: 25].
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (required, not opportunistic), `tls` (implicit, port 465) or `plain`
    /// (a relay on this host) [default: `starttls`].
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The sender address (`bonnie@example.org`).
    pub from: String,
    /// Milliseconds one delivery may take [default: 30000].
    #[serde(default = "default_smtp_timeout_ms")]
    pub timeout_ms: u64,
    /// A PEM file of the CA certificates the relay's certificate must chain to, for a relay
    /// with a private CA [default: none: the webpki roots].
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    25
}

fn default_smtp_timeout_ms() -> u64 {
    30_000
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No TLS.
    Plain,
}

impl AlertSettings {
    /// Checks what serde cannot: non-zero intervals, a claim longer than every timeout, the
    /// syslog target and facility, the SMTP relay's addresses.
    pub fn check(&self) -> Result<(), SettingsError> {
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(SettingsError::new(key, "must be more than 0"))
            } else {
                Ok(())
            }
        };
        positive("poll_interval_ms", self.poll_interval_ms)?;
        positive("retry.initial_backoff_ms", self.retry.initial_backoff_ms)?;
        positive("retry.max_attempts", u64::from(self.retry.max_attempts))?;
        positive("webhook.timeout_ms", self.webhook.timeout_ms)?;
        if self.retry.max_backoff_ms < self.retry.initial_backoff_ms {
            return Err(SettingsError::new(
                "retry.max_backoff_ms",
                "is less than retry.initial_backoff_ms",
            ));
        }
        let longest = self
            .smtp
            .as_ref()
            .map_or(0, |s| s.timeout_ms)
            .max(self.webhook.timeout_ms);
        if self.claim_ms <= longest {
            return Err(SettingsError::new(
                "claim_ms",
                format!("must be more than the longest channel timeout ({longest} ms)"),
            ));
        }
        self.syslog.target()?;
        self.syslog.facility()?;
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return Err(SettingsError::new("smtp.host", "is empty"));
            }
            positive("smtp.timeout_ms", smtp.timeout_ms)?;
            if smtp.from.parse::<lettre::Address>().is_err() {
                return Err(SettingsError::new(
                    "smtp.from",
                    format!("{:?} is not an e-mail address", smtp.from),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings from their JSON form (the plugin receives its table as JSON).
    fn parsed(json: &str) -> AlertSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_backoff_doubles_up_to_its_cap() {
        let settings = AlertSettings::default();
        settings.check().unwrap();
        assert_eq!(settings.retry.backoff(1), Duration::from_secs(30));
        assert_eq!(settings.retry.backoff(2), Duration::from_secs(60));
        assert_eq!(settings.retry.backoff(9), Duration::from_secs(3600));
        assert_eq!(settings.retry.backoff(200), Duration::from_secs(3600));
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let settings = parsed(r#"{"syslog": {"target": "udp:nohost"}}"#);
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("syslog.target"), "{error}");
        let settings = parsed(r#"{"smtp": {"host": "relay", "from": "not an address"}}"#);
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("smtp.from"), "{error}");
        let settings = parsed(r#"{"claim_ms": 5000}"#);
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("claim_ms"), "{error}");
        let settings = parsed(r#"{"syslog": {"facility": "kern"}}"#);
        assert!(
            settings
                .check()
                .unwrap_err()
                .to_string()
                .contains("syslog.facility")
        );
        let unknown = serde_json::from_str::<AlertSettings>(r#"{"webhook": {"timeout": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("timeout"), "{unknown}");
    }
}
