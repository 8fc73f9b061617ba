//! The folding search applies to every text it indexes and to every query, so that a word is
//! found however it is written: "Grüße", "GRÜSSE", "grusse" and "Gruesse"'s first three are
//! one word. Rules, in order: Unicode compatibility composition (NFKC: full-width Latin to
//! ASCII, ligatures such as "ﬁ" to "fi"); lower case (full Unicode case mapping); for Latin
//! letters, the diacritics go (canonical decomposition without its combining marks: "é" to
//! "e", "ő" to "o") and the letters without a decomposition are spelled out ("ß" and "ẞ" to
//! "ss", "æ" to "ae", "œ" to "oe", "ø" to "o", "đ"/"ð" to "d", "ł" to "l", "þ" to "th", "ı" to
//! "i", "ħ" to "h", "ŧ" to "t"). Greek loses its marks as Latin does (the tonos, dialytika and
//! the polytonic breathings are accents: "Καλημέρα" is found by "καλημερα") and final sigma is
//! sigma ("ς" to "σ": case mapping one letter at a time cannot tell where a word ends, so
//! "ΟΔΟΣ" and "οδός" must meet in "οδοσ"). In Cyrillic a mark mostly makes another letter ("й"
//! is not "и", Ukrainian "ї" not "і"), so only the stress accents written over vowels go (acute
//! and grave) and "ё" becomes "е", as Russian is usually written and searched. Other scripts
//! keep their marks: "が" stays "が".

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

fn is_latin(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF)
}

fn is_greek(c: char) -> bool {
    matches!(c as u32, 0x0370..=0x03FF | 0x1F00..=0x1FFF)
}

fn is_cyrillic(c: char) -> bool {
    matches!(c as u32, 0x0400..=0x052F)
}

/// The stress accents of Cyrillic text (combining grave and acute).
fn is_stress_accent(c: char) -> bool {
    matches!(c, '\u{300}' | '\u{301}')
}

/// What follows a letter decides which marks after it go.
#[derive(Clone, Copy, PartialEq)]
enum Before {
    /// A Latin or Greek letter: every mark after it goes.
    Unmarked,
    /// A Cyrillic letter: stress accents after it go.
    Cyrillic,
    /// Anything else: marks stay.
    Other,
}

fn spelled_out(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŧ' => "t",
        'ŀ' => "l",
        _ => return None,
    })
}

/// `text` folded for search (see the rules above). Indexing and querying must both use it.
pub fn fold_for_search(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut before = Before::Other;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if let Some(spelled) = spelled_out(c) {
            out.push_str(spelled);
            before = Before::Unmarked;
        } else if is_latin(c) || is_greek(c) {
            out.extend(
                std::iter::once(c)
                    .nfd()
                    .filter(|d| !is_combining_mark(*d))
                    .map(|d| if d == 'ς' { 'σ' } else { d }),
            );
            before = Before::Unmarked;
        } else if is_cyrillic(c) {
            // "ё" is "е" with a diaeresis; every other precomposed letter is a letter of its own.
            out.push(if c == 'ё' { 'е' } else { c });
            before = Before::Cyrillic;
        } else if is_combining_mark(c) {
            // A mark NFKC could not compose with the letter before it.
            let goes = match before {
                Before::Unmarked => true,
                Before::Cyrillic => is_stress_accent(c),
                Before::Other => false,
            };
            if !goes {
                out.push(c);
            }
        } else {
            out.push(c);
            before = if c.is_ascii_alphabetic() {
                Before::Unmarked
            } else {
                Before::Other
            };
        }
    }
    out
}

/// Words longer than this many bytes are indexed by [`index_words`] as a digest (see there).
pub const MAX_INDEXED_WORD_BYTES: usize = 255;

/// The words of `text` as the e-discovery index keeps them (sqlite-storage's and
/// Elasticsearch's alike), and as a query's text is looked up: `text` folded by
/// [`fold_for_search`], split into maximal runs of alphanumeric characters
/// (`char::is_alphanumeric`). A word longer than [`MAX_INDEXED_WORD_BYTES`] becomes its first
/// 128 bytes (whole characters), `…` and 32 hex digits of the SHA-256 of the whole word:
/// every index keeps it whole (FTS5 cuts words at 32 KiB, Elasticsearch's tokenizers at 255
/// characters), equal words stay equal, and since `…` is not alphanumeric it never equals a
/// word of any text.
pub fn index_words(text: &str) -> Vec<String> {
    use sha2::{Digest, Sha256};
    fold_for_search(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|word| {
            if word.len() <= MAX_INDEXED_WORD_BYTES {
                return word.to_string();
            }
            let mut head = 128;
            while !word.is_char_boundary(head) {
                head -= 1;
            }
            let digest = Sha256::digest(word.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}\u{2026}{hex}", &word[..head])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_words_are_folded_runs_of_letters_and_digits_and_long_ones_a_digest() {
        assert_eq!(
            index_words("Grüße, Jörg! <j.ß@Bücher.de> 東京タワー x²"),
            [
                "grusse",
                "jorg",
                "j",
                "ss",
                "bucher",
                "de",
                "東京タワー",
                "x2"
            ]
        );
        let long = "ä".repeat(50_000);
        let words = index_words(&format!("{long} und {long}b"));
        assert_eq!(words.len(), 3);
        assert!(
            words.iter().all(|w| w.len() <= MAX_INDEXED_WORD_BYTES),
            "{words:?}"
        );
        assert!(words[0].starts_with(&"a".repeat(128)) && words[0].contains('\u{2026}'));
        assert_ne!(words[0], words[2]);
        assert_eq!(index_words(&long), words[..1]);
    }

    #[test]
    fn german_words_fold_to_one() {
        for word in ["Grüße", "GRÜSSE", "grusse", "Grüsse", "GRÜẞE"] {
            assert_eq!(fold_for_search(word), "grusse", "{word}");
        }
    }

    #[test]
    fn latin_and_greek_marks_go_cyrillic_stress_goes_other_scripts_keep_their_marks() {
        assert_eq!(
            fold_for_search("Ærøskøbing Łódź Œuvre Þór"),
            "aeroskobing lodz oeuvre thor"
        );
        assert_eq!(
            fold_for_search("Crème brûlée Čeština Őrség"),
            "creme brulee cestina orseg"
        );
        assert_eq!(
            fold_for_search("e\u{301}te\u{301}"),
            "ete",
            "decomposed marks too"
        );
        assert_eq!(fold_for_search("Привет, ЙОД"), "привет, йод");
        assert_eq!(fold_for_search("Отчёт ОТЧЁТ отчет"), "отчет отчет отчет");
        assert_eq!(
            fold_for_search("приве\u{301}т Ї ї і й"),
            "привет ї ї і й",
            "a stress accent goes; letters made with a mark stay"
        );
        assert_eq!(fold_for_search("がぎ"), "がぎ");
        assert_eq!(
            fold_for_search("ＡＢＣ ﬁx"),
            "abc fix",
            "compatibility forms"
        );
        assert_eq!(fold_for_search("Σίσυφος"), "σισυφοσ");
        for word in ["Καλημέρα", "ΚΑΛΗΜΈΡΑ", "καλημερα", "καλημε\u{301}ρα"]
        {
            assert_eq!(fold_for_search(word), "καλημερα", "{word}");
        }
        assert_eq!(fold_for_search("ΟΔΟΣ οδός"), "οδοσ οδοσ");
        assert_eq!(
            fold_for_search("Ἀθῆναι ΐ"),
            "αθηναι ι",
            "polytonic and dialytika"
        );
    }
}
