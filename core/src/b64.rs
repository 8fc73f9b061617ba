//! Base64 as bonnie's outside inputs write it, on the `base64` crate: padding there or not,
//! lines folded (HTTP Basic credentials, payloads in Elasticsearch documents, the raw bytes of
//! notifications that were not UTF-8). Encoded words are bonnie-mail's
//! ([`bonnie_mail::decode_words`]).

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

/// Standard base64 whose padding may be there or not.
pub const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 (padding optional, line breaks and spaces ignored); `None` when it is not
/// base64.
pub fn base64(encoded: &str) -> Option<Vec<u8>> {
    let compact: String = encoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | ' ' | '\t'))
        .collect();
    LENIENT.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_unpadded_and_wrapped_base64_decode() {
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64("aGVs\r\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64("not base64!"), None);
        assert_eq!(encode_base64(b"user\0admin\0pw"), "dXNlcgBhZG1pbgBwdw==");
        assert_eq!(encode_base64(b"ab"), "YWI=");
    }
}
