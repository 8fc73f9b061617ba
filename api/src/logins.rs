//! A user's IMAP Logins, each from a webmail host with the webmail login behind it: the
//! sessions the `sessions` handler keeps (by user, through the storage plugin's query
//! interface) joined to the Roundcube logins the `webmail` handler keeps (`webmail-logins`).
//! The one read side of `bonnie logins`, so bonnie-api can answer the same.
//!
//! Roundcube opens a new IMAP connection for each request of a webmail session, always from
//! the webmail host, so the IMAP Login itself names only that host. The webmail login of the
//! same user closest before it, within `[plugins.webmail] window_seconds`, is its browser
//! session. Roundcube writes its log line just after the IMAP login that checked the
//! password, stamped in whole seconds, so a webmail login up to [`LOG_LAG_MS`] after the IMAP
//! Login counts as before it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use bonnie_maillog::roundcube::{self, LoginOutcome, WebmailLogin, WebmailSettings};
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use jiff::Timestamp;
use serde_json::{Value, json};

/// The collection of IMAP sessions (the `sessions` handler's, `bonnie_model::sessions`).
const SESSIONS: &str = "sessions";

/// How long after the IMAP Login that opened it a webmail login may be stamped: Roundcube
/// logs once the IMAP login succeeded, and its stamps drop the fraction of the second.
pub const LOG_LAG_MS: i64 = 1_000;

/// `[plugins.webmail]` from its JSON text (as `Config::plugin_json` gives it).
pub fn settings(table: &str) -> anyhow::Result<WebmailSettings> {
    serde_json::from_str(table).context("[plugins.webmail] is not valid")
}

/// One IMAP Login of the user, with the webmail login behind it when it came from a webmail
/// host.
#[derive(Debug, Clone)]
pub struct Login {
    /// The session as the `sessions` handler keeps it (login and logout times, client
    /// address, service, session id).
    pub session: Value,
    /// When it logged in (ms since the epoch).
    pub login_ms: i64,
    /// Whether its client address is one of `webmail_hosts`.
    pub from_webmail: bool,
    /// The Roundcube login it belongs to, if one was found.
    pub webmail: Option<WebmailLogin>,
}

impl Login {
    /// As `bonnie logins --json` prints it.
    pub fn to_json(&self) -> Value {
        let field = |key: &str| self.session.get(key).cloned().unwrap_or(Value::Null);
        json!({
            "time": field("login_time"),
            "user": field("user"),
            "client_ip": field("client_ip"),
            "service": field("service"),
            "session_id": field("session_id"),
            "logout_time": field("logout_time"),
            "from_webmail": self.from_webmail,
            "webmail": self.webmail.as_ref().map(|w| json!({
                "browser_ip": w.browser_ip,
                "session": w.session,
                "time": w.time,
                "host": w.host,
            })),
        })
    }
}

/// The IMAP Logins of `user` at or after `since`, oldest first, each from a webmail host
/// with its webmail login.
pub fn find(
    storage: &StorageClient,
    settings: &WebmailSettings,
    user: &str,
    since: Option<Timestamp>,
) -> anyhow::Result<Vec<Login>> {
    let since_ms = since.map(|s| s.as_millisecond());
    let mut sessions = BTreeMap::new();
    let lower = user.to_lowercase();
    for name in [user, lower.as_str()] {
        let mut query = RecordQuery::all_with(SESSIONS, "user", name);
        query.from_ms = since_ms;
        for record in storage
            .query(&query)
            .with_context(|| format!("cannot query {SESSIONS} by user"))?
        {
            let session: Value = serde_json::from_str(record.body.as_str())
                .with_context(|| format!("the record {SESSIONS}/{} is not JSON", record.key))?;
            if let Some(login_ms) = session.get("login_ms").and_then(Value::as_i64) {
                sessions.insert(record.key.to_string(), (login_ms, session));
            }
        }
    }
    let window_ms = i64::try_from(settings.window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let webmail = webmail_logins(
        storage,
        &lower,
        since_ms.map(|s| s.saturating_sub(window_ms)),
    )?;
    let mut logins: Vec<Login> = sessions
        .into_values()
        .map(|(login_ms, session)| {
            let from_webmail = session
                .get("client_ip")
                .and_then(Value::as_str)
                .is_some_and(|ip| settings.webmail_hosts.iter().any(|h| h == ip));
            let behind = from_webmail
                .then(|| behind(&webmail, login_ms, window_ms).cloned())
                .flatten();
            Login {
                session,
                login_ms,
                from_webmail,
                webmail: behind,
            }
        })
        .collect();
    logins.sort_by_key(|l| l.login_ms);
    Ok(logins)
}

/// Of `webmail` (successful logins with their times), the latest at most `window_ms` before
/// `login_ms` (or [`LOG_LAG_MS`] after it).
fn behind(webmail: &[(i64, WebmailLogin)], login_ms: i64, window_ms: i64) -> Option<&WebmailLogin> {
    webmail
        .iter()
        .filter(|(ms, _)| {
            *ms <= login_ms.saturating_add(LOG_LAG_MS) && *ms >= login_ms.saturating_sub(window_ms)
        })
        .max_by_key(|(ms, _)| *ms)
        .map(|(_, login)| login)
}

/// The successful webmail logins of `user` (lower-cased) since `from_ms`, with their times.
fn webmail_logins(
    storage: &StorageClient,
    user: &str,
    from_ms: Option<i64>,
) -> anyhow::Result<Vec<(i64, WebmailLogin)>> {
    let mut query = RecordQuery::all_with(roundcube::LOGINS, roundcube::BY_USER, user);
    query.from_ms = from_ms;
    storage
        .query(&query)
        .with_context(|| format!("cannot query {} by user", roundcube::LOGINS))?
        .into_iter()
        .map(|record| {
            serde_json::from_str::<WebmailLogin>(record.body.as_str()).with_context(|| {
                format!(
                    "the record {}/{} is not a webmail login",
                    roundcube::LOGINS,
                    record.key
                )
            })
        })
        .filter_map(|login| match login {
            Ok(login) => match (&login.outcome, login.time) {
                (LoginOutcome::Success { .. }, Some(time)) => {
                    Some(Ok((time.as_millisecond(), login)))
                }
                _ => None,
            },
            Err(e) => Some(Err(e)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(session: &str) -> WebmailLogin {
        WebmailLogin {
            user: "john".to_string(),
            browser_ip: "192.0.2.1".to_string(),
            session: Some(session.to_string()),
            time: None,
            host: None,
            outcome: LoginOutcome::Success { user_id: 1 },
        }
    }

    #[test]
    fn the_latest_webmail_login_within_the_window_is_the_one_behind() {
        let webmail = vec![
            (10_000, login("old")),
            (50_000, login("recent")),
            (100_500, login("just-logged")),
            (200_000, login("later")),
        ];
        let found = |at| behind(&webmail, at, 60_000).and_then(|l| l.session.clone());
        assert_eq!(found(60_000).as_deref(), Some("recent"));
        assert_eq!(
            found(100_000).as_deref(),
            Some("just-logged"),
            "logged just after its IMAP login"
        );
        assert_eq!(found(170_000), None, "more than the window after");
        assert_eq!(found(5_000), None, "before any");
    }
}
