//! Delivering one alert on its channel: a webhook POST of the incident JSON (optionally
//! signed), a syslog line (the summary, RFC 5424 or 3164 framing by fasyslog), an e-mail
//! through the SMTP relay (lettre). Each attempt either succeeds or says why not; retrying
//! is the sender's.

use std::{io::Read, time::Duration};

use bonnie_dlp::Action;
use hmac::{Hmac, Mac};
use lettre::{
    Message, SmtpTransport, Transport,
    message::{Mailbox, header::ContentType},
    transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    AlertSettings, SettingsError, SmtpSecurity, SyslogFormat, SyslogTarget, summary::summary,
};

/// The header that carries a webhook body's HMAC-SHA256.
pub(crate) const SIGNATURE_HEADER: &str = "X-Bonnie-Signature";
/// The header that carries the outbox key, for receivers that drop a repeated alert.
pub(crate) const ALERT_ID_HEADER: &str = "X-Bonnie-Alert-Id";

/// The most bytes of a webhook's answer kept for the reason of a failure.
const MAX_REASON_BYTES: u64 = 300;

/// Why an attempt did not deliver its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undelivered {
    /// What went wrong, for the entry's `last_error` and the log.
    pub reason: String,
    /// True when trying again cannot help (a recipient that is not an address, a 5xx answer
    /// from the SMTP relay, no relay configured): the entry fails now.
    pub permanent: bool,
}

impl Undelivered {
    fn retry(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// The channels, set up once from the settings.
pub(crate) struct Channels {
    http: reqwest::blocking::Client,
    secret: Option<Vec<u8>>,
    syslog_target: SyslogTarget,
    syslog_format: SyslogFormat,
    syslog_context: fasyslog::format::SyslogContext,
    smtp: Option<(SmtpTransport, Mailbox)>,
}

fn lowercase_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The webhook secret from `path`, which only bonnie may read.
fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, SettingsError> {
    use std::os::unix::fs::PermissionsExt;
    let key = "webhook.secret_file";
    let metadata = std::fs::metadata(path)
        .map_err(|e| SettingsError::new(key, format!("cannot read {}: {e}", path.display())))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(SettingsError::new(
            key,
            format!(
                "{} is readable by others than its owner (mode {:o}; make it 0600)",
                path.display(),
                metadata.permissions().mode() & 0o777
            ),
        ));
    }
    let secret = std::fs::read(path)
        .map_err(|e| SettingsError::new(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = secret.trim_ascii().to_vec();
    if secret.is_empty() {
        return Err(SettingsError::new(
            key,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(secret)
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own text is only the
/// outermost, `error sending request`).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A webhook URL as errors and logs show it: scheme, host and port only. Webhook URLs often
/// carry their credential in the path or query (`/services/T0/B0/<token>`), which must not
/// reach the log or the outbox's `last_error`.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}/...",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "a webhook URL that is not one".to_string(),
    }
}

impl Channels {
    /// The channels of `settings` (checked first).
    pub(crate) fn new(settings: &AlertSettings) -> Result<Self, SettingsError> {
        settings.check()?;
        let mut http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(settings.webhook.timeout_ms))
            // A redirect would re-send the incident to wherever the receiver points.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.webhook.ca_file {
            let key = "webhook.ca_file";
            let pem = std::fs::read(path).map_err(|e| {
                SettingsError::new(key, format!("cannot read {}: {e}", path.display()))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SettingsError::new(key, format!("{}: {e}", path.display())))?;
            if certificates.is_empty() {
                return Err(SettingsError::new(
                    key,
                    format!("{} holds no certificate", path.display()),
                ));
            }
            http = http.tls_built_in_root_certs(false);
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| SettingsError::new("webhook", format!("no HTTP client: {e}")))?;
        let secret = settings
            .webhook
            .secret_file
            .as_deref()
            .map(read_secret)
            .transpose()?;
        let mut syslog_context = fasyslog::format::SyslogContext::new();
        syslog_context
            .facility(settings.syslog.facility()?)
            .appname("bonnie-dlp");
        let smtp = match &settings.smtp {
            None => None,
            Some(s) => {
                let tls = || {
                    let mut builder = TlsParameters::builder(s.host.clone());
                    if let Some(path) = &s.ca_file {
                        let pem = std::fs::read(path).map_err(|e| {
                            SettingsError::new(
                                "smtp.ca_file",
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        let certificate = Certificate::from_pem(&pem).map_err(|e| {
                            SettingsError::new("smtp.ca_file", format!("{}: {e}", path.display()))
                        })?;
                        builder = builder
                            .certificate_store(CertificateStore::None)
                            .add_root_certificate(certificate);
                    }
                    builder.build_rustls().map_err(|e| {
                        SettingsError::new("smtp.host", format!("no TLS for {}: {e}", s.host))
                    })
                };
                let tls = match s.security {
                    SmtpSecurity::Plain => Tls::None,
                    SmtpSecurity::Starttls => Tls::Required(tls()?),
                    SmtpSecurity::Tls => Tls::Wrapper(tls()?),
                };
                let transport = SmtpTransport::builder_dangerous(&s.host)
                    .port(s.port)
                    .tls(tls)
                    .timeout(Some(Duration::from_millis(s.timeout_ms)))
                    .build();
                let from: Mailbox = s
                    .from
                    .parse()
                    .map_err(|e| SettingsError::new("smtp.from", format!("{:?}: {e}", s.from)))?;
                Some((transport, from))
            }
        };
        Ok(Self {
            http,
            secret,
            syslog_target: settings.syslog.target()?,
            syslog_format: settings.syslog.format,
            syslog_context,
            smtp,
        })
    }

    /// Delivers the alert of entry `key`; why not, if it was not.
    pub(crate) fn deliver(
        &self,
        key: &str,
        action: &Action,
        incident: &Value,
    ) -> Result<(), Undelivered> {
        match action {
            Action::Webhook { url } => self.webhook(key, url, incident),
            Action::Syslog {} => self.syslog(incident).map_err(Undelivered::retry),
            Action::Email { to } => self.email(key, to, incident),
            other => Err(Undelivered::permanent(format!("{other:?} is not an alert"))),
        }
    }

    fn webhook(&self, key: &str, url: &str, incident: &Value) -> Result<(), Undelivered> {
        let shown = shown_url(url);
        let body = incident.to_string();
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ALERT_ID_HEADER, key);
        if let Some(secret) = &self.secret {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| {
                Undelivered::permanent(format!("the webhook secret cannot key HMAC-SHA256: {e}"))
            })?;
            mac.update(body.as_bytes());
            let signature = format!("sha256={}", lowercase_hex(&mac.finalize().into_bytes()));
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request.body(body).send().map_err(|e| {
            Undelivered::retry(format!("POST {shown}: {}", causes(&e.without_url())))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut said = String::new();
        // The answer is the receiver's; only its start goes into the reason.
        let _ = response.take(MAX_REASON_BYTES).read_to_string(&mut said);
        let said: String = said
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Err(Undelivered::retry(format!(
            "POST {shown}: {status} {}",
            said.trim()
        )))
    }

    fn syslog(&self, incident: &Value) -> Result<(), String> {
        let severity = match incident.get("severity").and_then(Value::as_str) {
            Some("high") => fasyslog::Severity::ERROR,
            Some("medium") => fasyslog::Severity::WARNING,
            _ => fasyslog::Severity::NOTICE,
        };
        let line = summary(incident);
        let formatted = match self.syslog_format {
            SyslogFormat::Rfc5424 => self
                .syslog_context
                .format_rfc5424(severity, Some("dlp-incident"), Vec::new(), Some(&line))
                .to_string(),
            SyslogFormat::Rfc3164 => self
                .syslog_context
                .format_rfc3164(severity, Some(&line))
                .to_string(),
        };
        let (mut sender, target) = match &self.syslog_target {
            SyslogTarget::Unix(path) => (fasyslog::sender::unix(path), path.display().to_string()),
            SyslogTarget::Udp(address) => (
                fasyslog::sender::udp("0.0.0.0:0", address.as_str())
                    .map(fasyslog::sender::SyslogSender::Udp),
                format!("udp:{address}"),
            ),
            SyslogTarget::Tcp(address) => (
                fasyslog::sender::tcp(address.as_str()).map(fasyslog::sender::SyslogSender::Tcp),
                format!("tcp:{address}"),
            ),
        };
        let sender = sender
            .as_mut()
            .map_err(|e| format!("syslog {target}: cannot connect: {e}"))?;
        sender
            .send_formatted(formatted.as_bytes())
            .and_then(|()| sender.flush())
            .map_err(|e| format!("syslog {target}: {e}"))
    }

    fn email(&self, key: &str, to: &[String], incident: &Value) -> Result<(), Undelivered> {
        let Some((transport, from)) = &self.smtp else {
            return Err(Undelivered::permanent(
                "an e-mail alert, but [plugins.dlp.alerts.smtp] names no relay",
            ));
        };
        let line = summary(incident);
        // One Message-ID per outbox entry: a retried alert that did arrive the first time is
        // recognisably the same message.
        let id = lowercase_hex(&Sha256::digest(key.as_bytes()));
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(format!("[bonnie DLP] {line}"))
            .message_id(Some(format!("<{id}@dlp.bonnie>")));
        for address in to {
            let mailbox: Mailbox = address.parse().map_err(|e| {
                Undelivered::permanent(format!("e-mail alert recipient {address:?}: {e}"))
            })?;
            builder = builder.to(mailbox);
        }
        let json = serde_json::to_string_pretty(incident).unwrap_or_else(|_| incident.to_string());
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(format!("{line}\n\nThe incident:\n\n{json}\n"))
            .map_err(|e| {
                Undelivered::permanent(format!("the e-mail alert cannot be built: {e}"))
            })?;
        transport.send(&message).map(drop).map_err(|e| {
            let reason = format!("SMTP relay: {e}");
            if e.is_permanent() {
                Undelivered::permanent(reason)
            } else {
                Undelivered::retry(reason)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_webhook_url_is_shown_without_its_path_query_or_credentials() {
        assert_eq!(
            shown_url("https://user:pw@hooks.example.org:8443/services/T0/B0/s3cr3t?token=x"),
            "https://hooks.example.org:8443/..."
        );
        assert_eq!(shown_url("http://127.0.0.1/a"), "http://127.0.0.1/...");
        assert!(!shown_url("not a url s3cr3t").contains("s3cr3t"));
    }

    #[test]
    fn a_webhook_secret_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_secret(&path).unwrap_err();
        assert_eq!(error.key, "webhook.secret_file");
        assert!(error.message.contains("0600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(&path).unwrap(), b"s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret(&path).is_err());
    }
}
