//! Roundcube's `userlogins` log: the line `rcmail::log_login` writes for each webmail login,
//! read in every frame Roundcube gives it (its own log file, syslog, standard output). The
//! browser's address and the Roundcube session it names are what tie an IMAP Login from the
//! webmail host to the person behind it.
//!
//! What Roundcube writes (`program/include/rcmail.php` and `rcube::write_log`, 1.4 to 1.6):
//! `Successful login for USER (ID: N) from IP in session SESSION` and
//! `Failed login for USER from IP in session SESSION (error: CODE)`. The session is the whole
//! PHP session id in older releases, its first 16 characters (or `no-session`) in newer
//! ones; a failed login's user is cut at 256 bytes and gets `...`. `write_log` puts
//! `<SESSIONPREFIX> ` (`log_session_id`, 8 characters by default) before the message once a
//! session exists; the `file` driver then writes `[DATE]: LINE` with `log_date_format`
//! (default `d-M-Y H:i:s O`, such as `01-Dec-2026 12:00:00 +0100`), `syslog` hands LINE to
//! syslog under `syslog_id` (default `roundcube`), `stdout` writes `userlogins: LINE`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::syslog::SyslogParser;

/// The collection the `webmail` handler keeps each login in, one record per login.
pub const LOGINS: &str = "webmail-logins";

/// The index term of a login's user (lower-cased).
pub const BY_USER: &str = "user";

/// `[plugins.webmail]`: read by the handler (the zone) and by whoever associates IMAP Logins
/// with webmail logins (`bonnie logins`, bonnie-api).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebmailSettings {
    /// The time zone (IANA name) of syslog stamps without one. Default: this system's.
    #[serde(default)]
    pub zone: Option<String>,
    /// The addresses the webmail connects to IMAP from: an IMAP Login from one of them is a
    /// webmail session. Default: none.
    #[serde(default)]
    pub webmail_hosts: Vec<String>,
    /// How long before an IMAP Login the webmail login behind it may be, in seconds.
    /// Default: 60.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
}

fn default_window_seconds() -> u64 {
    60
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LoginOutcome {
    /// Logged in: Roundcube's user ID.
    Success {
        /// The user's row in Roundcube's `users` table.
        user_id: u64,
    },
    /// Refused: Roundcube's error code (such as 1, a wrong password or user).
    Failure {
        /// `rcmail_action_login`'s error code.
        error: i64,
    },
}

/// One webmail login attempt, as Roundcube logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebmailLogin {
    /// The login name, lower-cased (Cyrus and Roundcube compare it so).
    pub user: String,
    /// The browser's address, as Roundcube saw it (behind a proxy it trusts, the forwarded one).
    pub browser_ip: String,
    /// The Roundcube session id (or the part of it Roundcube logs); `None` for `no-session`.
    pub session: Option<String>,
    /// When it was logged; `None` when the frame's stamp is not one read here.
    pub time: Option<Timestamp>,
    /// The host that logged it: the syslog frame's, `None` for a plain log file's line.
    pub host: Option<String>,
    /// Success or failure.
    #[serde(flatten)]
    pub outcome: LoginOutcome,
}

/// Reads one line of Roundcube's `userlogins` log in any of its frames; `None` for any other
/// line. `received` is when the line arrived, for syslog stamps without a year.
pub fn parse_userlogins(
    parser: &SyslogParser,
    line: &str,
    received: Timestamp,
) -> Option<WebmailLogin> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix('[') {
        let (date, message) = rest.split_once("]: ")?;
        return parse_message(message, parse_file_date(date), None);
    }
    if let Some(message) = line.strip_prefix("userlogins: ") {
        return parse_message(message, None, None);
    }
    let frame = parser.parse(line, received);
    frame.program.as_ref()?;
    parse_message(&frame.message, frame.time, frame.host)
}

/// `log_date_format`'s default, `d-M-Y H:i:s O`, with a fraction as `u` gives it.
fn parse_file_date(date: &str) -> Option<Timestamp> {
    ["%d-%b-%Y %H:%M:%S %z", "%d-%b-%Y %H:%M:%S%.f %z"]
        .iter()
        .find_map(|format| {
            jiff::fmt::strtime::parse(format, date)
                .ok()?
                .to_timestamp()
                .ok()
        })
}

/// The message after the frame: an optional `<SESSIONPREFIX> `, then `log_login`'s text.
fn parse_message(
    message: &str,
    time: Option<Timestamp>,
    host: Option<String>,
) -> Option<WebmailLogin> {
    let message = match message.strip_prefix('<') {
        Some(rest) => match rest.split_once("> ") {
            Some((prefix, rest)) if !prefix.contains(' ') => rest,
            _ => message,
        },
        None => message,
    };
    let (user, browser_ip, session, outcome) =
        if let Some(rest) = message.strip_prefix("Successful login for ") {
            let (who, session) = rest.rsplit_once(" in session ")?;
            let (who, ip) = who.rsplit_once(" from ")?;
            let (user, id) = who.strip_suffix(')')?.rsplit_once(" (ID: ")?;
            let user_id = id.parse().ok()?;
            (user, ip, session, LoginOutcome::Success { user_id })
        } else {
            let rest = message.strip_prefix("Failed login for ")?;
            let (rest, code) = rest.strip_suffix(')')?.rsplit_once(" (error: ")?;
            let error = code.parse().ok()?;
            let (who, session) = rest.rsplit_once(" in session ")?;
            let (user, ip) = who.rsplit_once(" from ")?;
            (user, ip, session, LoginOutcome::Failure { error })
        };
    let word = |text: &str| !text.is_empty() && !text.contains(char::is_whitespace);
    if !word(browser_ip) || !word(session) {
        return None;
    }
    Some(WebmailLogin {
        user: user.to_lowercase(),
        browser_ip: browser_ip.to_string(),
        session: (session != "no-session").then(|| session.to_string()),
        time,
        host,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn received() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn parse(line: &str) -> Option<WebmailLogin> {
        parse_userlogins(&SyslogParser::new(TimeZone::UTC), line, received())
    }

    #[test]
    fn a_successful_login_in_roundcubes_own_log_file() {
        let login = parse(
            "[01-Dec-2026 12:00:00 +0100]: <4ktmj2qd> Successful login for John.Doe@Example.org (ID: 17) from 192.0.2.10 in session 4ktmj2qd8vf1p0ab",
        )
        .unwrap();
        assert_eq!(
            login,
            WebmailLogin {
                user: "john.doe@example.org".to_string(),
                browser_ip: "192.0.2.10".to_string(),
                session: Some("4ktmj2qd8vf1p0ab".to_string()),
                time: Some("2026-12-01T11:00:00Z".parse().unwrap()),
                host: None,
                outcome: LoginOutcome::Success { user_id: 17 },
            }
        );
    }

    #[test]
    fn a_failed_login_through_syslog_names_its_host_and_error() {
        let login = parse(
            "<14>Dec  1 11:59:58 web1 roundcube[811]: Failed login for jane from 2001:db8::7 in session no-session (error: 1)",
        )
        .unwrap();
        assert_eq!(login.user, "jane");
        assert_eq!(login.browser_ip, "2001:db8::7");
        assert_eq!(login.session, None);
        assert_eq!(login.host.as_deref(), Some("web1"));
        assert_eq!(login.time, Some("2026-12-01T11:59:58Z".parse().unwrap()));
        assert_eq!(login.outcome, LoginOutcome::Failure { error: 1 });
    }

    #[test]
    fn rfc5424_stdout_and_fractional_stamps_are_read() {
        let rfc5424 = parse("<14>1 2026-12-01T11:00:00.250Z web2 roundcube 90 - - <abcdefgh> Successful login for bob (ID: 3) from 10.1.2.3 in session abcdefgh12345678").unwrap();
        assert_eq!(rfc5424.host.as_deref(), Some("web2"));
        assert_eq!(rfc5424.session.as_deref(), Some("abcdefgh12345678"));
        let stdout =
            parse("userlogins: Successful login for bob (ID: 3) from 10.1.2.3 in session s1")
                .unwrap();
        assert_eq!((stdout.time, stdout.host), (None, None));
        let fraction = parse("[01-Dec-2026 12:00:00.123456 +0000]: Failed login for x from 10.0.0.1 in session s (error: 3)").unwrap();
        assert_eq!(
            fraction.time,
            Some("2026-12-01T12:00:00.123456Z".parse().unwrap())
        );
    }

    #[test]
    fn a_user_name_that_imitates_the_line_does_not_move_its_fields() {
        // A failed login's user is whatever was typed, so the fields are taken from the end.
        let login = parse("[01-Dec-2026 12:00:00 +0000]: Failed login for eve from 6.6.6.6 in session x (error: 9) from 192.0.2.1 in session real (error: 1)").unwrap();
        assert_eq!(login.browser_ip, "192.0.2.1");
        assert_eq!(login.session.as_deref(), Some("real"));
        assert_eq!(login.outcome, LoginOutcome::Failure { error: 1 });
        assert_eq!(login.user, "eve from 6.6.6.6 in session x (error: 9)");
    }

    #[test]
    fn other_lines_are_not_logins() {
        for line in [
            "",
            "[",
            "[]: ",
            "[01-Dec-2026 12:00:00 +0000]: IMAP Error: Login failed for x",
            "Dec  1 10:00:00 mx postfix/smtpd[1]: connect from x[1.2.3.4]",
            "Successful login for bob (ID: x) from 1.2.3.4 in session s",
            "Successful login for bob (ID: 3) from  in session s",
            "Failed login for bob from 1.2.3.4 in session s (error: )",
            "Failed login for bob from 1.2.3.4 in session two words (error: 1)",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    proptest! {
        #[test]
        fn no_line_makes_the_parser_fail(line in any::<String>()) {
            let _ = parse(&line);
        }

        #[test]
        fn any_user_name_comes_back_lower_cased(user in "[^\r\n]{0,300}") {
            let line = format!("[01-Dec-2026 12:00:00 +0000]: Failed login for {user} from 192.0.2.1 in session s (error: 1)");
            let login = parse(&line).unwrap();
            prop_assert_eq!(login.user, user.to_lowercase());
        }
    }
}
