//! Handler plugin `webmail`: batches of log lines (`vnd.bonnie.LogLines`, from bonnie-logd)
//! read for Roundcube's `userlogins` lines. Each login attempt is kept in `webmail-logins`,
//! keyed by a digest of what it says (host, time, session, user, address, outcome), so a batch
//! handled again writes the same records; indexed by user, for the IMAP Logins from the
//! webmail host to find the browser behind them. Other lines are counted and left to the
//! handlers after this one.

use bonnie_maillog::roundcube::{self, WebmailLogin, WebmailSettings};
use bonnie_maillog::{SyslogParser, batch::LogBatch};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::{Record, StorageClient};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The event this handler takes: a batch of log lines.
const EVENT: &str = "vnd.bonnie.LogLines";

/// The handler.
pub struct Webmail {
    storage: StorageClient,
    parser: SyslogParser,
}

impl Webmail {
    /// Reads `[plugins.webmail]` and takes the host's storage.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: WebmailSettings = host.config()?;
        let parser = SyslogParser::in_zone(settings.zone.as_deref())
            .map_err(|e| PluginError::config(format!("[plugins.webmail] zone: {e}")))?;
        Ok(Self {
            storage: host.storage()?,
            parser,
        })
    }
}

/// The record of `login`, keyed by its content: the same line read twice is one record.
fn login_record(login: &WebmailLogin) -> Result<Record, PluginError> {
    let body = serde_json::to_value(login)
        .map_err(|e| PluginError::rejected(format!("unserializable webmail login: {e}")))?;
    let digest = Sha256::digest(body.to_string().as_bytes());
    let key: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut record =
        Record::new(roundcube::LOGINS, &key, &body).indexed(roundcube::BY_USER, &login.user);
    if let Some(time) = login.time {
        record = record.at(time.as_millisecond());
    }
    Ok(record)
}

impl Handler for Webmail {
    fn events(&self) -> Vec<String> {
        vec![EVENT.to_string()]
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let batch = match LogBatch::parse(job.notification.as_str(), job.received_ms()) {
            Ok(batch) => batch,
            Err(why) => return Ok(HandlerOutcome::rejected(why)),
        };
        // A replayed batch carries the same `received`, so a line without a stamp of its own
        // gets the same time, and the same key, again.
        let received = batch.received;
        // A plain log file's lines name no host: they are the host's that read the file.
        let batch_host = batch.host().map(str::to_string);
        let (mut logins, mut other) = (0u64, 0u64);
        for line in batch.lines() {
            let Some(mut login) = line
                .as_str()
                .and_then(|text| roundcube::parse_userlogins(&self.parser, text, received))
            else {
                other += 1;
                continue;
            };
            login.host = login.host.or_else(|| batch_host.clone());
            login.time = login.time.or(Some(received));
            self.storage.put(login_record(&login)?)?;
            logins += 1;
        }
        let summary = json!({"logins": logins, "other_lines": other});
        Ok(HandlerOutcome::done(batch.into_record("webmail", summary)))
    }
}

bonnie_plugin_api::export_handler! {
    name: "webmail",
    description: "Roundcube's userlogins lines kept as webmail logins, found by user, for the IMAP Logins from the webmail host.",
    new: Webmail::new,
}

#[cfg(test)]
mod tests {
    use bonnie_maillog::roundcube::{self, LoginOutcome, WebmailLogin};
    use bonnie_plugin_api::{prelude::*, storage::RecordQuery, testing::TestHost};
    use serde_json::{Value, json};

    fn batch(lines: &[&str]) -> String {
        json!({"event": "vnd.bonnie.LogLines", "host": "web1", "received": "2026-12-01T12:00:00Z", "lines": lines})
            .to_string()
    }

    fn stored(host: &TestHost, user: &str) -> Vec<WebmailLogin> {
        let query = RecordQuery::all_with(roundcube::LOGINS, roundcube::BY_USER, user);
        host.storage_client()
            .unwrap()
            .query(&query)
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r.body.as_str()).unwrap())
            .collect()
    }

    #[test]
    fn logins_are_kept_by_user_once_however_often_the_batch_comes() {
        let host = TestHost::new("webmail");
        let handler = host.handler(crate::Webmail::new).unwrap();
        let lines = [
            "[01-Dec-2026 11:59:00 +0000]: <s1s1s1s1> Successful login for John@Example.org (ID: 4) from 192.0.2.10 in session s1s1s1s1abcdefgh",
            "Dec  1 11:58:00 web2 roundcube: Failed login for john@example.org from 198.51.100.7 in session no-session (error: 1)",
            "Dec  1 11:58:00 mx postfix/smtpd[1]: connect from x[1.2.3.4]",
            "not a frame at all",
        ];
        let job = batch(&lines);
        for _ in 0..2 {
            let HandlerOutcome::Done { notification } = handler.handle(&job).unwrap() else {
                panic!("the batch is not done");
            };
            let out: Value = serde_json::from_str(&notification).unwrap();
            assert_eq!(out["webmail"], json!({"logins": 2, "other_lines": 2}));
            assert_eq!(
                out["lines"].as_array().unwrap().len(),
                4,
                "the batch goes on whole"
            );
        }
        let logins = stored(&host, "john@example.org");
        assert_eq!(logins.len(), 2, "{logins:?}");
        let success = logins
            .iter()
            .find(|l| l.outcome == LoginOutcome::Success { user_id: 4 })
            .unwrap();
        assert_eq!(
            success.host.as_deref(),
            Some("web1"),
            "a file line is the batch host's"
        );
        assert_eq!(success.browser_ip, "192.0.2.10");
        assert_eq!(success.session.as_deref(), Some("s1s1s1s1abcdefgh"));
        let failure = logins.iter().find(|l| l.session.is_none()).unwrap();
        assert_eq!(failure.host.as_deref(), Some("web2"));
        assert_eq!(failure.outcome, LoginOutcome::Failure { error: 1 });
    }

    #[test]
    fn a_batch_that_is_not_one_is_rejected() {
        let host = TestHost::new("webmail");
        let handler = host.handler(crate::Webmail::new).unwrap();
        for job in ["[]", r#"{"lines": 3}"#] {
            assert!(matches!(
                handler.handle(job).unwrap(),
                HandlerOutcome::Rejected { .. }
            ));
        }
    }
}
