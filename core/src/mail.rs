//! Message headers as bonnie records them: unfolded, RFC 2047 decoded, address headers as
//! lists of `Name <address>`, `Date` in UTC, `Content-Type` reduced to the bare type; for a
//! header given twice, the last value.

use serde_json::{Map, Value, json};

use crate::{imap::rfc2047, time};

/// Headers whose value is a list of addresses.
const ADDRESS_HEADERS: [&str; 6] = ["from", "to", "cc", "bcc", "reply-to", "sender"];

/// The header block of a message: everything before the first empty line.
pub fn header_block(message: &[u8]) -> &[u8] {
    let crlf = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2);
    let lf = message.windows(2).position(|w| w == b"\n\n").map(|i| i + 1);
    match (crlf, lf) {
        (Some(a), Some(b)) => &message[..a.min(b)],
        (Some(a), None) | (None, Some(a)) => &message[..a],
        (None, None) => message,
    }
}

/// The headers of a message, as a JSON object keyed by the header names as written.
pub fn headers(message: &[u8]) -> Map<String, Value> {
    let block = String::from_utf8_lossy(header_block(message)).into_owned();
    let mut unfolded: Vec<String> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            unfolded.push(line.to_string());
        }
    }
    let mut out = Map::new();
    for line in unfolded {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let normalized = if ADDRESS_HEADERS.contains(&lower.as_str()) {
            json!(addresses(value))
        } else if lower == "date" {
            match time::parse_rfc2822_ms(value) {
                Some(ms) => json!(time::format_rfc3339_s(ms)),
                None => json!(value),
            }
        } else if lower == "content-type" {
            json!(
                value
                    .split(';')
                    .next()
                    .unwrap_or(value)
                    .trim()
                    .to_ascii_lowercase()
            )
        } else {
            json!(rfc2047::decode(value))
        };
        out.insert(name.to_string(), normalized);
    }
    out
}

/// The addresses of an address header, `Name <local@domain>` or `local@domain`.
pub fn addresses(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut current, mut quoted, mut angle) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .filter_map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            Some(match (part.find('<'), part.rfind('>')) {
                (Some(open), Some(close)) if open < close => {
                    let name = rfc2047::decode(part[..open].trim().trim_matches('"').trim());
                    let address = part[open + 1..close].trim();
                    if name.is_empty() {
                        address.to_string()
                    } else {
                        format!("{name} <{address}>")
                    }
                }
                _ => part.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded_decoded_and_normalized() {
        let message = b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: John Doe <john.doe@example.org>, \"Doe, Jane\" <jane.doe@example.org>\r\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n and more\r\nDate: Sat, 28 Nov 2026 18:13:36 +0100\r\nContent-Type: multipart/mixed;\r\n boundary=\"x\"\r\n\
X-Kolab-Type: application/x-vnd.kolab.event\r\nSubject: last wins\r\n\r\nbody: not a header\r\n";
        let h = headers(message);
        assert_eq!(h["From"], json!(["Jörg <j@example.org>"]));
        assert_eq!(
            h["To"],
            json!([
                "John Doe <john.doe@example.org>",
                "Doe, Jane <jane.doe@example.org>"
            ])
        );
        assert_eq!(h["Subject"], "last wins");
        assert_eq!(h["Date"], "2026-11-28T17:13:36Z");
        assert_eq!(h["Content-Type"], "multipart/mixed");
        assert_eq!(h["X-Kolab-Type"], "application/x-vnd.kolab.event");
        assert!(h.get("body").is_none());
    }

    #[test]
    fn the_header_block_ends_at_the_first_empty_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_block(b"A: 1\n\nbody"), b"A: 1\n");
        assert_eq!(header_block(b"A: 1"), b"A: 1");
    }
}
