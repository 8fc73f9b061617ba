//! The calendar part of a Kolab object's MIME message: the first part (depth first, through
//! nested multiparts) whose Content-Type is `application/calendar+xml` (Kolab v3, xCal) or
//! `text/calendar` (iCalendar), decoded from base64 or quoted-printable, as text in its charset
//! (UTF-8 unless it says ISO-8859-1 or Windows-1252). A bare xCal or iCalendar document is
//! taken as it is.

use bonnie_core::{imap::rfc2047, mail};

use crate::error::CalendarError;

/// Multiparts nest at most this deep.
const MAX_DEPTH: usize = 8;

/// The format of a calendar part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// xCal (`application/calendar+xml`).
    XCal,
    /// iCalendar (`text/calendar`).
    ICalendar,
}

/// A calendar part, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its format.
    pub format: Format,
    /// Its text.
    pub text: String,
}

/// The calendar part of a message, or the message itself when it is a bare document.
pub fn calendar_part(message: &[u8]) -> Result<Part, CalendarError> {
    let start = message
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(message);
    let head = String::from_utf8_lossy(&start[..start.len().min(64)]);
    let head = head.trim_start();
    if head.starts_with("<?xml") || head.starts_with("<icalendar") {
        return Ok(Part {
            format: Format::XCal,
            text: text(start, "utf-8")?,
        });
    }
    if head
        .get(..15)
        .is_some_and(|h| h.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Ok(Part {
            format: Format::ICalendar,
            text: text(start, "utf-8")?,
        });
    }
    find(message, 0)?.ok_or(CalendarError::NoCalendarPart)
}

/// The calendar part in a MIME entity (headers, blank line, body).
fn find(entity: &[u8], depth: usize) -> Result<Option<Part>, CalendarError> {
    let format = |mime_type: &str| match mime_type {
        "application/calendar+xml" => Some(Format::XCal),
        "text/calendar" | "application/ics" => Some(Format::ICalendar),
        _ => None,
    };
    let Some(found) = find_part(entity, depth, &|mime_type| format(mime_type).is_some())? else {
        return Ok(None);
    };
    let charset = param(&found.params, "charset").unwrap_or("utf-8");
    Ok(Some(Part {
        format: format(&found.mime_type).ok_or(CalendarError::NoCalendarPart)?,
        text: text(&found.bytes, charset)?,
    }))
}

/// A part found in a message, decoded from its transfer encoding.
struct Found {
    mime_type: String,
    params: Vec<(String, String)>,
    bytes: Vec<u8>,
}

/// The first part (depth first) whose media type is `wanted`, decoded.
fn find_part(
    entity: &[u8],
    depth: usize,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Option<Found>, CalendarError> {
    if depth > MAX_DEPTH {
        return Err(CalendarError::Mime("multiparts nest too deep".to_string()));
    }
    let headers = mail::header_block(entity);
    let body = body(entity, headers.len());
    let header = |name: &str| raw_header(headers, name);
    let content_type = header("content-type").unwrap_or_else(|| "text/plain".to_string());
    let (mime_type, params) = parse_type(&content_type);
    if wanted(&mime_type) {
        let encoding = header("content-transfer-encoding")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => rfc2047::base64(&String::from_utf8_lossy(body)).ok_or_else(|| {
                CalendarError::Mime(format!("the {mime_type} part is not valid base64"))
            })?,
            "quoted-printable" => quoted_printable(body),
            _ => body.to_vec(),
        };
        return Ok(Some(Found {
            mime_type,
            params,
            bytes,
        }));
    }
    if !mime_type.starts_with("multipart/") {
        return Ok(None);
    }
    let boundary = param(&params, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| CalendarError::Mime(format!("{mime_type} without a boundary")))?;
    for part in parts(body, boundary.as_bytes()) {
        if let Some(found) = find_part(part, depth + 1, wanted)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The XML of any Kolab object (event, task, note, contact, file...) in its message: the
/// first part of type `application/calendar+xml`, `application/vcard+xml`,
/// `application/xml` or `application/x-vnd.kolab.*`, decoded from its transfer encoding,
/// byte for byte.
pub fn object_xml(message: &[u8]) -> Result<Vec<u8>, CalendarError> {
    let wanted = |mime_type: &str| {
        matches!(
            mime_type,
            "application/calendar+xml" | "application/vcard+xml" | "application/xml"
        ) || mime_type.starts_with("application/x-vnd.kolab.")
    };
    find_part(message, 0, &wanted)?
        .map(|found| found.bytes)
        .ok_or_else(|| CalendarError::Mime("the message holds no Kolab XML part".to_string()))
}

/// The body: what follows the header block and its blank line.
fn body(entity: &[u8], header_len: usize) -> &[u8] {
    let rest = &entity[header_len.min(entity.len())..];
    rest.strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
        .unwrap_or(rest)
}

/// A header's unfolded raw value (parameters kept), the last if given twice.
fn raw_header(block: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let mut found = None;
    let mut current: Option<String> = None;
    let mut finish = |line: Option<String>| {
        if let Some((key, value)) = line.as_deref().and_then(|l| l.split_once(':'))
            && key.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_string());
        }
    };
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
        } else {
            finish(current.take());
            current = Some(line.to_string());
        }
    }
    finish(current);
    found
}

/// `type/subtype; key=value; key="quoted"` as the lower-case type and its parameters.
fn parse_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => pieces.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    pieces.push(current);
    let mime_type = pieces
        .first()
        .map_or(String::new(), |t| t.trim().to_ascii_lowercase());
    let params = pieces
        .iter()
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    (mime_type, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The parts of a multipart body: between `--boundary` lines, up to `--boundary--`.
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    // Positions of delimiter lines: at the start of the body or of a line.
    let mut marks = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        let at_line_start = i == 0 || body[i - 1] == b'\n';
        if at_line_start && body[i..].starts_with(&delimiter) {
            let after = &body[i + delimiter.len()..];
            let closing = after.starts_with(b"--");
            let line_end = after
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len(), |p| i + delimiter.len() + p + 1);
            marks.push((i, line_end, closing));
            if closing {
                break;
            }
            i = line_end;
        } else {
            i += 1;
        }
    }
    marks
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0].1, w[1].0);
            // The line break before a delimiter belongs to the delimiter.
            let part = &body[start..end.max(start)];
            let part = part.strip_suffix(b"\n").unwrap_or(part);
            part.strip_suffix(b"\r").unwrap_or(part)
        })
        .collect()
}

/// Quoted-printable (RFC 2045): `=XX` escapes, `=` at a line end joins lines.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < body.len() {
        if body[i] == b'=' {
            match (body.get(i + 1), body.get(i + 2)) {
                (Some(b'\r'), Some(b'\n')) => i += 3,
                (Some(b'\n'), _) => i += 2,
                (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                    out.push(hex(a).unwrap_or(0) << 4 | hex(b).unwrap_or(0));
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            }
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// Bytes as text in `charset`.
fn text(bytes: &[u8], charset: &str) -> Result<String, CalendarError> {
    let charset = charset.trim().trim_matches('"').to_ascii_lowercase();
    match charset.as_str() {
        "iso-8859-1" | "latin1" | "iso-8859-15" | "windows-1252" | "cp1252" => {
            Ok(bytes.iter().map(|&b| b as char).collect())
        }
        _ => std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|source| CalendarError::Charset {
                charset: if charset.is_empty() {
                    "utf-8".to_string()
                } else {
                    charset
                },
                source,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_kolab_xml_part_comes_out_byte_for_byte_whatever_its_encoding() {
        let xml = "<?xml version=\"1.0\"?>\r\n<icalendar>\u{e9}t\u{e9}</icalendar>\r\n";
        let plain = format!(
            "Content-Type: multipart/mixed;\r\n boundary=\"=_b\"\r\n\r\n--=_b\r\nContent-Type: text/plain\r\n\r\nKolab\r\n--=_b\r\n\
             Content-Type: application/calendar+xml; charset=UTF-8\r\n\r\n{xml}\r\n--=_b--\r\n"
        );
        assert_eq!(object_xml(plain.as_bytes()).unwrap(), xml.as_bytes());
        let encoded = bonnie_core::imap::client::base64(xml.as_bytes());
        let base64 = format!(
            "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: application/vcard+xml\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n{}\r\n--XX--\r\n",
            &encoded[..20],
            &encoded[20..]
        );
        assert_eq!(object_xml(base64.as_bytes()).unwrap(), xml.as_bytes());
        let qp = "Content-Type: application/x-vnd.kolab.note\nContent-Transfer-Encoding: quoted-printable\n\n<a>=C3=A9t=\n=C3=A9</a>";
        assert_eq!(
            object_xml(qp.as_bytes()).unwrap(),
            "<a>\u{e9}t\u{e9}</a>".as_bytes()
        );
        assert!(object_xml(b"Subject: x\r\n\r\nplain mail").is_err());
    }

    fn message(part_headers: &str, body: &str) -> Vec<u8> {
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"=_b1\"\r\n\
X-Kolab-Type: application/x-vnd.kolab.event\r\nSubject: UID-1\r\n\r\n\
This is a multi-part message.\r\n--=_b1\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n\
This is a Kolab Groupware object.\r\n--=_b1\r\n{part_headers}\r\n\r\n{body}\r\n--=_b1--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_calendar_part_is_found_and_decoded() {
        let xml = "<?xml version=\"1.0\"?>\r\n<icalendar>caf\u{e9}</icalendar>";
        let plain = message(
            "Content-Type: application/calendar+xml; charset=UTF-8; name=kolab.xml\r\nContent-Disposition: attachment",
            xml,
        );
        assert_eq!(
            calendar_part(&plain).unwrap(),
            Part {
                format: Format::XCal,
                text: xml.to_string()
            }
        );
        let encoded = bonnie_core::imap::client::base64(xml.as_bytes());
        let folded: Vec<&str> = encoded
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let base64 = message(
            "Content-Type: application/calendar+xml; charset=UTF-8\r\nContent-Transfer-Encoding: base64",
            &folded.join("\r\n"),
        );
        assert_eq!(calendar_part(&base64).unwrap().text, xml);
        let qp = message(
            "Content-Type: text/calendar; charset=\"utf-8\"; method=REQUEST\r\nContent-Transfer-Encoding: quoted-printable",
            "BEGIN:VCALENDAR\r\nSUMMARY:Caf=C3=A9 with a very long line that is brok=\r\nen=3D\r\nEND:VCALENDAR",
        );
        let part = calendar_part(&qp).unwrap();
        assert_eq!(part.format, Format::ICalendar);
        assert_eq!(
            part.text,
            "BEGIN:VCALENDAR\r\nSUMMARY:Caf\u{e9} with a very long line that is broken=\r\nEND:VCALENDAR"
        );
    }

    #[test]
    fn nested_multiparts_and_bare_documents() {
        let inner = "Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\
Content-Type: text/html\r\n\r\n<p>hi</p>\r\n--inner\r\nContent-Type: text/calendar\r\n\r\n\
BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n--inner--\r\n";
        let outer = format!(
            "Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n{inner}\r\n--outer--\r\n"
        );
        let part = calendar_part(outer.as_bytes()).unwrap();
        assert_eq!(part.text, "BEGIN:VCALENDAR\r\nEND:VCALENDAR");
        assert_eq!(
            calendar_part(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
                .unwrap()
                .format,
            Format::ICalendar
        );
        assert_eq!(
            calendar_part(b"  <icalendar/>").unwrap().format,
            Format::XCal
        );
    }

    #[test]
    fn messages_without_a_readable_calendar_part_are_refused() {
        assert!(matches!(
            calendar_part(b"Subject: hello\r\n\r\nJust mail.\r\n"),
            Err(CalendarError::NoCalendarPart)
        ));
        assert!(matches!(
            calendar_part(b"Content-Type: multipart/mixed\r\n\r\nno boundary"),
            Err(CalendarError::Mime(_))
        ));
        let mut invalid = message(
            "Content-Type: application/calendar+xml",
            "<icalendar>caf\u{e9}</icalendar>",
        );
        let at = invalid
            .windows(2)
            .position(|w| w == "é".as_bytes())
            .unwrap();
        invalid[at] = 0xff;
        assert!(matches!(
            calendar_part(&invalid),
            Err(CalendarError::Charset { .. })
        ));
        assert!(calendar_part(b"").is_err());
    }
}
