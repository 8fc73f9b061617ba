//! Modified UTF-7 (RFC 3501 section 5.1.3), the encoding of mailbox names on the wire:
//! printable ASCII stands for itself (`&` as `&-`), every other run of characters is UTF-16BE
//! in base64 with `,` for `/`, between `&` and `-`. `Büro` is `B&APw-ro`.
//!
//! Written here rather than taken from `utf7-imap` (the one crate for it): that crate panics
//! on a malformed name from the server, leaves DEL unencoded and brings base64 0.13 and regex.
//! The property tests below check the round trip and that decoding never panics.

use base64::{
    Engine,
    alphabet::IMAP_MUTF7,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

/// base64 with `,` for `/` and no padding, as modified UTF-7 uses it.
const MUTF7: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Why a name is not modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a modified UTF-7 mailbox name: {0}")]
pub struct Utf7Error(pub String);

/// The wire form of a mailbox name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| {
        if !run.is_empty() {
            out.push('&');
            out.push_str(&MUTF7.encode(&run));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                run.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The name a wire form stands for; an error when it is not modified UTF-7 (a raw 8-bit
/// byte, an unterminated or badly padded shift, UTF-16 that does not decode).
pub fn decode(wire: &str) -> Result<String, Utf7Error> {
    let fail = || Utf7Error(wire.to_string());
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(c) = rest.chars().next() {
        if c == '&' {
            let end = rest.find('-').ok_or_else(fail)?;
            let shifted = &rest[1..end];
            if shifted.is_empty() {
                out.push('&');
            } else {
                let bytes = MUTF7.decode(shifted).map_err(|_| fail())?;
                if bytes.len() % 2 != 0 {
                    return Err(fail());
                }
                let units = bytes
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
                for decoded in char::decode_utf16(units) {
                    let decoded = decoded.map_err(|_| fail())?;
                    // A shift must not hide printable ASCII (RFC 3501: it "MUST" be direct).
                    if (' '..='~').contains(&decoded) {
                        return Err(fail());
                    }
                    out.push(decoded);
                }
            }
            rest = &rest[end + 1..];
        } else if (' '..='~').contains(&c) {
            out.push(c);
            rest = &rest[1..];
        } else {
            return Err(fail());
        }
    }
    Ok(out)
}

/// The name for display: decoded when it is modified UTF-7, else as the server sent it
/// (a server with `UTF8=ACCEPT` names, or a broken one).
pub fn decode_lossy(wire: &str) -> String {
    decode(wire).unwrap_or_else(|_| wire.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_names_encode_as_cyrus_and_roundcube_send_them() {
        for (name, wire) in [
            ("Büro", "B&APw-ro"),
            ("Входящие", "&BBIERQQ+BDQETwRJBDgENQ-"),
            ("日本語", "&ZeVnLIqe-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("théâtre", "th&AOkA4g-tre"),
            ("INBOX", "INBOX"),
            ("😀", "&2D3eAA-"),
            ("a\u{7f}b", "a&AH8-b"),
        ] {
            assert_eq!(encode(name), wire, "{name}");
            assert_eq!(decode(wire).as_deref(), Ok(name), "{wire}");
        }
    }

    #[test]
    fn malformed_wire_names_are_errors() {
        for wire in ["&", "&APw", "B\u{fc}ro", "&AP-", "&AGE-", "&2D0-", "&A,-x"] {
            assert!(decode(wire).is_err(), "{wire:?}");
        }
        assert_eq!(decode_lossy("B\u{fc}ro"), "B\u{fc}ro");
    }

    proptest! {
        #[test]
        fn every_name_round_trips_through_ascii(name in "\\PC*") {
            let wire = encode(&name);
            prop_assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
            prop_assert_eq!(decode(&wire), Ok(name));
        }

        #[test]
        fn decoding_anything_never_panics(wire in ".*") {
            let _ = decode(&wire);
        }

        #[test]
        fn decoding_shifted_garbage_never_panics(body in "[A-Za-z0-9+,]{0,12}") {
            let _ = decode(&format!("&{body}-"));
        }
    }
}
