//! The Kolab object inside a Kolab message: the MIME part holding the XML (`kolab.xml`,
//! `application/calendar+xml`, `application/vcard+xml`, `application/x-vnd.kolab.*`), decoded
//! from its transfer encoding, byte for byte.

use bonnie_core::imap::rfc2047;

/// A message split into its header block and body.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    for (i, window) in message.windows(4).enumerate() {
        if window == b"\r\n\r\n" {
            return (&message[..i + 2], &message[i + 4..]);
        }
    }
    for (i, window) in message.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&message[..i + 1], &message[i + 2..]);
        }
    }
    (message, &[])
}

/// A header's unfolded value (first occurrence, case-insensitive name).
fn header(block: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(current) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                current.push(' ');
                current.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case(name) {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// A parameter of a structured header value (`boundary`, `charset`).
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn media_type(block: &[u8]) -> String {
    header(block, "Content-Type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "text/plain".to_string())
}

fn is_object_part(media: &str) -> bool {
    media == "application/calendar+xml"
        || media == "application/vcard+xml"
        || media == "application/xml"
        || media.starts_with("application/x-vnd.kolab.")
}

fn decode(block: &[u8], body: &[u8]) -> Vec<u8> {
    let encoding = header(block, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "base64" => {
            let text: String = String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            rfc2047::base64(&text).unwrap_or_else(|| body.to_vec())
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    }
}

fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < body.len() {
        if body[i] == b'=' {
            if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if body.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                body.get(i + 1).copied().and_then(hex),
                body.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// The parts of a multipart body.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        let at_line_start = i == 0 || body[i - 1] == b'\n';
        if at_line_start && body[i..].starts_with(delimiter) {
            starts.push(i);
            i += delimiter.len();
        } else {
            i += 1;
        }
    }
    let mut parts = Vec::new();
    for pair in starts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let mut part = &body[start + delimiter.len()..end];
        // The line break after the delimiter, and the one before the next belongs to it.
        part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        parts.push(part);
    }
    parts
}

/// The object's XML: the first part (depth first) of an object media type, decoded.
pub fn object_xml(message: &[u8]) -> Option<Vec<u8>> {
    let (block, body) = split(message);
    let media = media_type(block);
    if is_object_part(&media) {
        return Some(decode(block, body));
    }
    if media.starts_with("multipart/") {
        let boundary = parameter(&header(block, "Content-Type")?, "boundary")?;
        return parts(body, &boundary).into_iter().find_map(object_xml);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_part_comes_out_byte_for_byte_whatever_its_encoding() {
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
        let qp = "Content-Type: application/xml\nContent-Transfer-Encoding: quoted-printable\n\n<a>=C3=A9t=\n=C3=A9</a>";
        assert_eq!(
            object_xml(qp.as_bytes()).unwrap(),
            "<a>\u{e9}t\u{e9}</a>".as_bytes()
        );
        assert_eq!(object_xml(b"Subject: x\r\n\r\nplain mail"), None);
    }
}
