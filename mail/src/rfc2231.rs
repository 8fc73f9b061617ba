//! RFC 2231 parameter continuations whose charset is named only in the first segment
//! (`filename*0*=iso-8859-1''Pr%FCf; filename*1*=Gr%F6%DFe.pdf`), as RFC 2231 section 4.1
//! has it. mail-parser 0.11 decodes the segments after the first as UTF-8 (it forgets the
//! charset after the first), so for exactly this case the value is put together here from
//! the raw field; every other parameter form is mail-parser's.

use mail_parser::decoders::charsets::map::charset_decoder;

fn percent_decode(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
}

/// The value of parameter `name` of a raw Content-Type or Content-Disposition field when it
/// is split into continuations and encoded in a charset other than UTF-8; `None` otherwise.
pub(crate) fn continued_parameter(raw_field: &str, name: &str) -> Option<String> {
    let prefix = format!("{}*", name.to_ascii_lowercase());
    let mut segments: Vec<(u32, bool, String)> = Vec::new();
    for param in raw_field.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let (number, encoded) = match rest.strip_suffix('*') {
            Some(number) => (number, true),
            None => (rest, false),
        };
        let Ok(number) = number.parse::<u32>() else {
            continue;
        };
        segments.push((number, encoded, value.trim().trim_matches('"').to_string()));
    }
    segments.sort_by_key(|s| s.0);
    let (first_number, first_encoded, first) = segments.first()?;
    if *first_number != 0 || !*first_encoded || segments.len() < 2 {
        return None;
    }
    let mut quote_parts = first.splitn(3, '\'');
    let (charset, _language, text) = (
        quote_parts.next()?,
        quote_parts.next()?,
        quote_parts.next()?,
    );
    if charset.is_empty() || charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let decoder = charset_decoder(charset.as_bytes())?;
    let mut bytes = Vec::new();
    percent_decode(text, &mut bytes);
    for (_, encoded, value) in &segments[1..] {
        if *encoded {
            percent_decode(value, &mut bytes);
        } else {
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    Some(decoder(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_segments_charset_holds_for_all() {
        let field = "attachment;\r\n filename*0*=iso-8859-1''Pr%FCfbericht%20;\r\n filename*1*=Gr%F6%DFe.pdf";
        assert_eq!(
            continued_parameter(field, "filename").as_deref(),
            Some("Prüfbericht Größe.pdf")
        );
        assert_eq!(
            continued_parameter(
                "attachment; filename*0*=koi8-r''%F3%DE; filename*1=\".txt\"",
                "filename"
            )
            .as_deref(),
            Some("Сч.txt")
        );
        assert_eq!(
            continued_parameter("attachment; filename=\"a.txt\"", "filename"),
            None
        );
        assert_eq!(
            continued_parameter("attachment; filename*=utf-8''a", "filename"),
            None
        );
    }
}
