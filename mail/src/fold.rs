//! The folding search applies to every text it indexes and to every query, so that a word is
//! found however it is written: "Grüße", "GRÜSSE", "grusse" and "Gruesse"'s first three are
//! one word. Rules, in order: Unicode compatibility composition (NFKC: full-width Latin to
//! ASCII, ligatures such as "ﬁ" to "fi"); lower case (full Unicode case mapping); for Latin
//! letters only, the diacritics go (canonical decomposition without its combining marks:
//! "é" to "e", "ő" to "o") and the letters without a decomposition are spelled out ("ß" and
//! "ẞ" to "ss", "æ" to "ae", "œ" to "oe", "ø" to "o", "đ"/"ð" to "d", "ł" to "l", "þ" to "th",
//! "ı" to "i", "ħ" to "h", "ŧ" to "t"). Other scripts keep their marks: "й" stays "й" and
//! "が" stays "が", since there a mark makes another letter, not an accent.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

fn is_latin(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF)
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
    let mut after_latin = false;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if let Some(spelled) = spelled_out(c) {
            out.push_str(spelled);
            after_latin = true;
        } else if is_latin(c) {
            out.extend(std::iter::once(c).nfd().filter(|d| !is_combining_mark(*d)));
            after_latin = true;
        } else if is_combining_mark(c) {
            // A mark NFKC could not compose with the Latin letter before it.
            if !after_latin {
                out.push(c);
            }
        } else {
            out.push(c);
            after_latin = c.is_ascii_alphabetic();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_words_fold_to_one() {
        for word in ["Grüße", "GRÜSSE", "grusse", "Grüsse", "GRÜẞE"] {
            assert_eq!(fold_for_search(word), "grusse", "{word}");
        }
    }

    #[test]
    fn latin_diacritics_go_and_other_scripts_keep_their_marks() {
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
        assert_eq!(fold_for_search("がぎ"), "がぎ");
        assert_eq!(
            fold_for_search("ＡＢＣ ﬁx"),
            "abc fix",
            "compatibility forms"
        );
        assert_eq!(fold_for_search("Σίσυφος"), "σίσυφος");
    }
}
