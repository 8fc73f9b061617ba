//! RFC 2047 encoded words (`=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=`) in header values, decoded for
//! UTF-8, US-ASCII and ISO-8859-1 (and its Windows-1252 superset, read as ISO-8859-1); a word
//! in another charset, or broken, is kept as written.

/// Decodes every encoded word of a header value; whitespace between two encoded words goes.
pub fn decode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match decode_word(candidate) {
            Some((text, used)) => {
                if !(last_was_word && before.chars().all(char::is_whitespace)) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &candidate[used..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the encoded word at the start of `text`: its text and its length.
fn decode_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let encoded = &inner[..end];
    if encoded.contains(' ') {
        return None;
    }
    let used = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    let bytes = match encoding {
        "Q" | "q" => q_decode(encoded)?,
        "B" | "b" => base64(encoded)?,
        _ => return None,
    };
    let charset = charset
        .split('*')
        .next()
        .unwrap_or(charset)
        .to_ascii_lowercase();
    let text = match charset.as_str() {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8(bytes).ok()?,
        "iso-8859-1" | "latin1" | "iso-8859-15" | "windows-1252" | "cp1252" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => return None,
    };
    Some((text, used))
}

fn q_decode(encoded: &str) -> Option<Vec<u8>> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    Some(out)
}

/// Standard base64 (padding optional).
pub fn base64(encoded: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in encoded.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_and_b_words_decode() {
        assert_eq!(
            decode("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="),
            "Grüße aus Köln"
        );
        assert_eq!(
            decode("=?ISO-8859-1?Q?J=F6rg?= <j@example.org>"),
            "Jörg <j@example.org>"
        );
        assert_eq!(decode("=?utf-8?B?w6TDtsO8?="), "äöü");
        assert_eq!(
            decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?="),
            "ab",
            "space between words goes"
        );
        assert_eq!(decode("Re: =?UTF-8?Q?x?= end"), "Re: x end");
    }

    #[test]
    fn broken_or_unknown_words_stay() {
        assert_eq!(decode("=?KOI8-R?Q?abc?="), "=?KOI8-R?Q?abc?=");
        assert_eq!(decode("=?UTF-8?Q?unterminated"), "=?UTF-8?Q?unterminated");
        assert_eq!(decode("plain"), "plain");
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
    }
}
