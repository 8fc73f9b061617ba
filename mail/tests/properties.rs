//! Property tests of bonnie-mail: arbitrary bytes, header-like and MIME-like text never panic
//! the parser, encoded words round-trip, and folding is idempotent.

use base64::Engine;
use bonnie_mail::{decode_words, fold_for_search, parse};
use proptest::{collection::vec, prelude::*};

proptest! {
    #[test]
    fn no_bytes_panic_the_mail_layer(bytes in vec(any::<u8>(), 0..800)) {
        let message = parse(&bytes);
        let _ = message.header_map();
        let _ = message.search_text(64);
        let _ = decode_words(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn header_and_mime_like_messages_do_not_panic(
        lines in vec("[A-Za-z-]{0,12}:[ -~é€\t]{0,40}|[ \t][ -~é]{0,20}|--[a-z]{0,3}(--)?|Content-Type: multipart/[a-z]{0,5}; boundary=[a-z]{0,3}", 0..16),
        crlf in any::<bool>(),
    ) {
        let separator = if crlf { "\r\n" } else { "\n" };
        let message = format!("{}{separator}{separator}body", lines.join(separator));
        let parsed = parse(message.as_bytes());
        let _ = parsed.header_map();
        let _ = parsed.search_text(16);
    }

    #[test]
    fn encoded_words_round_trip(text in "[^\r\n]{0,40}") {
        let word = format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
        prop_assert_eq!(decode_words(&word), text.trim());
    }

    #[test]
    fn folding_twice_is_folding_once(text in any::<String>()) {
        let once = fold_for_search(&text);
        prop_assert_eq!(fold_for_search(&once), once);
    }
}
