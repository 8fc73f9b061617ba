//! One log line's syslog frame: RFC 5424, RFC 3164 (with or without a priority, with either
//! stamp), and the plain lines of a mail.log or of Postfix's `maillog_file`. A line that fits
//! none of them is kept whole as the message; nothing here fails.

use crate::stamp::{BsdStamp, parse_rfc3339};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A line's frame: who logged what when. Fields the line does not have are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogLine {
    /// The `<PRI>` of a line received from the network (facility * 8 + severity).
    pub priority: Option<u8>,
    /// When the line was logged, its year inferred for stamps that have none.
    pub time: Option<Timestamp>,
    /// The host name (Postfix's `maillog_file` writes only its first label).
    pub host: Option<String>,
    /// The program: `postfix/smtpd`, `postfix-relay/smtp`, `postfix/submission/smtpd`.
    pub program: Option<String>,
    /// The process ID, if the line carries a numeric one.
    pub pid: Option<u32>,
    /// What the program said.
    pub message: String,
}

/// Reads frames; stamps without a zone (RFC 3164, `maillog_file`) are taken in `zone`,
/// the zone of the hosts that wrote them.
#[derive(Debug, Clone)]
pub struct SyslogParser {
    zone: TimeZone,
}

impl SyslogParser {
    /// A parser that reads zone-less stamps in `zone`.
    pub fn new(zone: TimeZone) -> SyslogParser {
        SyslogParser { zone }
    }

    /// A parser for the zone a configuration names (an IANA name such as `Europe/Berlin`),
    /// else this system's; the error says why the name is not a zone.
    pub fn in_zone(name: Option<&str>) -> Result<SyslogParser, String> {
        let zone = match name {
            Some(name) => TimeZone::get(name).map_err(|e| format!("{name:?}: {e}"))?,
            None => TimeZone::system(),
        };
        Ok(SyslogParser::new(zone))
    }

    /// The frame of `line` (without its line end), which was received at `received`: the
    /// instant from which a stamp's missing year is inferred.
    pub fn parse(&self, line: &str, received: Timestamp) -> SyslogLine {
        let line = line.trim_end_matches(['\r', '\n']);
        self.parse_framed(line, received)
            .unwrap_or_else(|| SyslogLine {
                priority: None,
                time: None,
                host: None,
                program: None,
                pid: None,
                message: line.to_owned(),
            })
    }

    fn parse_framed(&self, line: &str, received: Timestamp) -> Option<SyslogLine> {
        let (priority, rest) = match parse_priority(line) {
            Some((priority, rest)) => (Some(priority), rest),
            None => (None, line),
        };
        if priority.is_some()
            && let Some(frame) = parse_rfc5424(rest)
        {
            return Some(SyslogLine { priority, ..frame });
        }
        let rest = rest.trim_start_matches(' ');
        let (time, rest) = match BsdStamp::parse(rest) {
            Some((stamp, rest)) => (stamp.resolve(&self.zone, received), rest),
            None => {
                let (instant, rest) = parse_rfc3339(rest)?;
                (Some(instant), rest)
            }
        };
        let rest = rest.strip_prefix(' ')?;
        let (host, program, pid, message) = parse_header(rest);
        Some(SyslogLine {
            priority,
            time,
            host,
            program,
            pid,
            message: message.to_owned(),
        })
    }
}

/// `<PRI>` with a value of at most 191 (facility 23, severity 7).
fn parse_priority(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let priority: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
    Some((priority, &rest[end + 1..]))
}

/// `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]`.
fn parse_rfc5424(rest: &str) -> Option<SyslogLine> {
    let (version, rest) = rest.split_once(' ')?;
    if version.is_empty() || version.len() > 2 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (time, rest) = match rest.strip_prefix("- ") {
        Some(rest) => (None, rest),
        None => {
            let (instant, rest) = parse_rfc3339(rest)?;
            (Some(instant), rest.strip_prefix(' ')?)
        }
    };
    let mut fields = rest.splitn(4, ' ');
    let host = nil_or(fields.next()?);
    let program = nil_or(fields.next()?);
    let procid = nil_or(fields.next()?);
    let rest = fields.next()?;
    // MSGID, then the structured data.
    let (_msgid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix(' ').unwrap_or(message);
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(SyslogLine {
        priority: None,
        time,
        host,
        pid: procid.as_deref().and_then(|p| p.parse().ok()),
        program,
        message: message.to_owned(),
    })
}

fn nil_or(field: &str) -> Option<String> {
    (field != "-" && !field.is_empty()).then(|| field.to_owned())
}

/// What follows RFC 5424's STRUCTURED-DATA: `-` or `[id param="va\"lue"]...`.
fn skip_structured_data(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('-') {
        return Some(rest);
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    while bytes.get(at) == Some(&b'[') {
        let mut in_value = false;
        loop {
            at += 1;
            match bytes.get(at)? {
                b'\\' if in_value => at += 1,
                b'"' => in_value = !in_value,
                b']' if !in_value => break,
                _ => {}
            }
        }
        at += 1;
    }
    // `at` stands after an ASCII `]` (or at 0): a character boundary.
    (at > 0).then(|| &text[at..])
}

/// `HOST TAG: MSG` or, from the local socket, `TAG: MSG`, where TAG is `program[pid]` or
/// `program`. A rest without a tag is all message.
fn parse_header(rest: &str) -> (Option<String>, Option<String>, Option<u32>, &str) {
    if let Some((program, pid, message)) = parse_tag(rest) {
        return (None, Some(program.to_owned()), pid, message);
    }
    let Some((host, after_host)) = rest.split_once(' ') else {
        return (None, None, None, rest);
    };
    match parse_tag(after_host) {
        Some((program, pid, message)) => (
            Some(host.to_owned()),
            Some(program.to_owned()),
            pid,
            message,
        ),
        None => (Some(host.to_owned()), None, None, after_host),
    }
}

/// `program[pid]: message` or `program: message` at the start of `text`.
fn parse_tag(text: &str) -> Option<(&str, Option<u32>, &str)> {
    let end = text.find([' ', ':', '['])?;
    let program = &text[..end];
    if program.is_empty() {
        return None;
    }
    let rest = &text[end..];
    let (pid, rest) = match rest.strip_prefix('[') {
        Some(inner) => {
            let close = inner.find(']')?;
            (inner[..close].parse().ok(), &inner[close + 1..])
        }
        None => (None, rest),
    };
    let message = rest.strip_prefix(':')?;
    Some((program, pid, message.strip_prefix(' ').unwrap_or(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> SyslogLine {
        let received = "2026-12-01T10:00:05Z".parse().expect("an instant");
        SyslogParser::new(TimeZone::UTC).parse(line, received)
    }

    #[test]
    fn rfc5424_lines_give_app_name_procid_and_message() {
        let line = parse(
            "<22>1 2026-12-01T10:00:00.123Z mx1.example.org postfix/qmgr 99 - \
             [meta sequenceId=\"1\\\"]\"] 3F1A2B4C5D: removed",
        );
        assert_eq!(line.priority, Some(22));
        assert_eq!(
            line.time.map(|t| t.to_string()).as_deref(),
            Some("2026-12-01T10:00:00.123Z")
        );
        assert_eq!(line.host.as_deref(), Some("mx1.example.org"));
        assert_eq!(line.program.as_deref(), Some("postfix/qmgr"));
        assert_eq!(line.pid, Some(99));
        assert_eq!(line.message, "3F1A2B4C5D: removed");
    }

    #[test]
    fn rfc3164_lines_with_and_without_host() {
        let line =
            parse("<22>Dec  1 10:00:00 mx1 postfix-relay/smtp[123]: connect from a[1.2.3.4]");
        assert_eq!(line.host.as_deref(), Some("mx1"));
        assert_eq!(line.program.as_deref(), Some("postfix-relay/smtp"));
        assert_eq!(line.pid, Some(123));
        assert_eq!(line.message, "connect from a[1.2.3.4]");
        let local = parse("<22>Dec  1 10:00:00 postfix/smtpd[7]: disconnect from a[1.2.3.4]");
        assert_eq!(local.host, None);
        assert_eq!(local.program.as_deref(), Some("postfix/smtpd"));
    }

    #[test]
    fn file_lines_in_all_three_stamp_styles() {
        for (line, time) in [
            (
                "Dec  1 10:00:00 mx1 postfix/smtpd[5]: hi",
                "2026-12-01T10:00:00Z",
            ),
            (
                "Dec 01 10:00:00 mx1 postfix/smtpd[5]: hi",
                "2026-12-01T10:00:00Z",
            ),
            (
                "Dec 01 10:00:00.250 mx1 postfix/smtpd[5]: hi",
                "2026-12-01T10:00:00.25Z",
            ),
            (
                "2026-12-01T11:00:00.25+01:00 mx1 postfix/smtpd[5]: hi",
                "2026-12-01T10:00:00.25Z",
            ),
        ] {
            let parsed = parse(line);
            assert_eq!(
                parsed.time.map(|t| t.to_string()).as_deref(),
                Some(time),
                "{line}"
            );
            assert_eq!(parsed.host.as_deref(), Some("mx1"), "{line}");
            assert_eq!(parsed.pid, Some(5), "{line}");
            assert_eq!(parsed.message, "hi", "{line}");
        }
    }

    #[test]
    fn an_unframed_line_is_all_message() {
        let line = parse("something else entirely");
        assert_eq!(line.time, None);
        assert_eq!(line.message, "something else entirely");
    }
}
