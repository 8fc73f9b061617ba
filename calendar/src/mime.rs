//! The calendar part of a Kolab object's MIME message: the first part (depth first, through
//! nested multiparts) whose Content-Type is `application/calendar+xml` (Kolab v3, xCal) or
//! `text/calendar` (iCalendar), decoded from base64 or quoted-printable, as text in its charset
//! (UTF-8 unless it names another). A bare xCal or iCalendar document is taken as it is. The
//! MIME structure is read by bonnie-mail.

use crate::error::CalendarError;

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
    find(message)?.ok_or(CalendarError::NoCalendarPart)
}

/// The calendar part in a MIME entity (headers, blank line, body).
fn find(entity: &[u8]) -> Result<Option<Part>, CalendarError> {
    let format = |mime_type: &str| match mime_type {
        "application/calendar+xml" => Some(Format::XCal),
        "text/calendar" | "application/ics" => Some(Format::ICalendar),
        _ => None,
    };
    let Some(found) = find_part(entity, &|mime_type| format(mime_type).is_some())? else {
        return Ok(None);
    };
    let charset = found.charset.as_deref().unwrap_or("utf-8");
    Ok(Some(Part {
        format: format(&found.media_type).ok_or(CalendarError::NoCalendarPart)?,
        text: text(&found.bytes, charset)?,
    }))
}

/// The first part (depth first) whose media type is `wanted`, decoded from its transfer
/// encoding.
fn find_part(
    entity: &[u8],
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Option<bonnie_mail::RawPart>, CalendarError> {
    bonnie_mail::find_part(entity, wanted).map_err(|e| CalendarError::Mime(e.to_string()))
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
    find_part(message, &wanted)?
        .map(|found| found.bytes)
        .ok_or_else(|| CalendarError::Mime("the message holds no Kolab XML part".to_string()))
}

/// Bytes as text in `charset`.
fn text(bytes: &[u8], charset: &str) -> Result<String, CalendarError> {
    let charset = charset.trim().trim_matches('"').to_ascii_lowercase();
    match charset.as_str() {
        "" | "utf-8" | "utf8" | "us-ascii" => std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|source| CalendarError::Charset {
                charset: if charset.is_empty() {
                    "utf-8".to_string()
                } else {
                    charset
                },
                source,
            }),
        _ => match bonnie_mail::decode_charset(bytes, &charset) {
            Some(text) => Ok(text),
            None => std::str::from_utf8(bytes)
                .map(str::to_string)
                .map_err(|source| CalendarError::Charset { charset, source }),
        },
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
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml.as_bytes());
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
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml.as_bytes());
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
