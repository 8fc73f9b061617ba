//! One part of a message by its media type, as bytes with only the transfer encoding undone
//! (the calendar reads Kolab objects' XML and iCalendar parts this way, byte for byte).

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// Standard base64, padded or not.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A part found by [`find_part`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPart {
    /// Its media type, lower case.
    pub media_type: String,
    /// The charset it declares, if any.
    pub charset: Option<String>,
    /// Its bytes, the transfer encoding (base64, quoted-printable) undone.
    pub bytes: Vec<u8>,
}

/// Why a part could not be looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    /// A multipart without the boundary that separates its parts.
    #[error("{0} without a boundary")]
    NoBoundary(String),
    /// The part found says base64, and is not.
    #[error("the {0} part is not valid base64")]
    NotBase64(String),
}

/// The first part (depth first through multiparts, not into attached messages) whose media
/// type `wanted` accepts; `None` when there is none.
pub fn find_part(
    bytes: &[u8],
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Option<RawPart>, PartError> {
    let Some(message) = MessageParser::new().parse(bytes) else {
        return Ok(None);
    };
    for part in &message.parts {
        let media = crate::message::media_type(part);
        if media.starts_with("multipart/")
            && part
                .content_type()
                .and_then(|ct| ct.attribute("boundary"))
                .is_none_or(str::is_empty)
        {
            return Err(PartError::NoBoundary(media));
        }
        if matches!(part.body, PartType::Multipart(_)) || !wanted(&media) {
            continue;
        }
        // mail-parser skips what is not base64; a Kolab object must be whole or refused.
        let says_base64 = part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
        if says_base64 {
            let raw: Vec<u8> = message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default()
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if part.is_encoding_problem || base64::Engine::decode(&LENIENT, raw).is_err() {
                return Err(PartError::NotBase64(media));
            }
        }
        let bytes = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            _ => crate::message::transfer_decoded(&message, part),
        };
        return Ok(Some(RawPart {
            media_type: media,
            charset: part
                .content_type()
                .and_then(|ct| ct.attribute("charset"))
                .map(str::to_string),
            bytes,
        }));
    }
    Ok(None)
}

/// `bytes` in `charset` as text, by mail-parser's decoders (every charset it knows);
/// `None` for a charset it does not know.
pub fn decode_charset(bytes: &[u8], charset: &str) -> Option<String> {
    mail_parser::decoders::charsets::map::charset_decoder(
        charset.trim().trim_matches('"').as_bytes(),
    )
    .map(|decode| decode(bytes))
}
