//! Keyword and phrase lists: case-insensitive in every script (Unicode simple case folding),
//! whitespace inside a phrase matching any run of whitespace, and bounded by words: a keyword
//! does not match inside a longer word (`card` is not in `cardigan`). Scripts written without
//! spaces between words (Chinese, Japanese, Thai) have no such boundaries, so a keyword's end in
//! one of them needs none.

use std::ops::Range;

use regex::{Regex, RegexBuilder};

/// The compiled size limit of one keyword list, in bytes of automaton.
const KEYWORDS_SIZE_LIMIT: usize = 16 << 20;

/// A compiled keyword list.
#[derive(Debug)]
pub(crate) struct Keywords {
    matcher: Regex,
}

/// True for characters of scripts that do not put spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F // Thai
        | 0x0E80..=0x0EFF // Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9F // half-width Katakana
        | 0x20000..=0x3FFFF)
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Keywords {
    /// Compiles `phrases` (none may be empty or only whitespace).
    pub(crate) fn new(phrases: &[String]) -> Result<Self, String> {
        let mut sorted: Vec<&str> = phrases.iter().map(|p| p.trim()).collect();
        if let Some(empty) = phrases.iter().find(|p| p.trim().is_empty()) {
            return Err(format!("keyword {empty:?} is empty"));
        }
        // Longest first, so that `card number` wins over `card` where both match. A keyword
        // ending in a word character must be followed by one that is not (consumed, outside
        // group 1): a shorter keyword is then still found where a longer one runs into a word
        // (`card` in `card numbers`). The boundary before is checked on each match.
        sorted.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
        let (mut bounded, mut open) = (Vec::new(), Vec::new());
        for phrase in sorted {
            let alternative = phrase
                .split_whitespace()
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+");
            match phrase.chars().next_back() {
                Some(c) if word_char(c) && !unspaced(c) => bounded.push(alternative),
                _ => open.push(alternative),
            }
        }
        let mut branches = Vec::new();
        if !bounded.is_empty() {
            branches.push(format!(r"(?P<bounded>{})(?:\W|$)", bounded.join("|")));
        }
        if !open.is_empty() {
            branches.push(format!("(?P<open>{})", open.join("|")));
        }
        let matcher = RegexBuilder::new(&branches.join("|"))
            .case_insensitive(true)
            .size_limit(KEYWORDS_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("the keyword list does not compile: {e}"))?;
        Ok(Keywords { matcher })
    }

    /// Every keyword of the list in `text`: its range, left to right.
    pub(crate) fn find(&self, text: &str) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        let mut at = 0;
        while at < text.len()
            && let Some(captures) = self.matcher.captures_at(text, at)
        {
            let Some(m) = captures.name("bounded").or_else(|| captures.name("open")) else {
                break;
            };
            let first = text[m.range()].chars().next();
            let before = text[..m.start()].chars().next_back();
            if first.is_some_and(unspaced) || !before.is_some_and(word_char) {
                found.push(m.range());
                at = m.end();
            } else {
                // It starts inside a word, where no keyword starting with a letter of a spaced
                // script can: on to the word's end, or to a character of an unspaced script.
                // So each character is passed once, whatever the text.
                at = text[m.start()..]
                    .char_indices()
                    .skip(1)
                    .find(|&(_, c)| !word_char(c) || unspaced(c))
                    .map_or(text.len(), |(i, _)| m.start() + i);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'t>(list: &[&str], text: &'t str) -> Vec<&'t str> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let keywords = Keywords::new(&list).unwrap();
        keywords.find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn keywords_match_without_case_in_any_script_and_only_as_words() {
        assert_eq!(
            find(&["card"], "My CARD, your cardigan, Card."),
            ["CARD", "Card"]
        );
        assert_eq!(
            find(&["kreditkarte"], "Die KREDITKARTE ist gültig"),
            ["KREDITKARTE"]
        );
        assert_eq!(
            find(&["номер карты"], "Вот НОМЕР  КАРТЫ: 4539"),
            ["НОМЕР  КАРТЫ"]
        );
        assert_eq!(find(&["карты"], "картычка"), Vec::<&str>::new());
        assert_eq!(
            find(&["カード番号"], "クレジットカード番号は4539"),
            ["カード番号"]
        );
        assert_eq!(
            find(&["card", "card number"], "card numbers and card number"),
            ["card", "card number"]
        );
        assert_eq!(find(&["straße"], "STRASSE Straße"), ["Straße"]);
    }

    #[test]
    fn a_word_that_only_starts_like_a_keyword_is_passed_once() {
        let text = format!("{} card", "xcard".repeat(10_000));
        assert_eq!(find(&["card"], &text), ["card"]);
        assert_eq!(find(&["カード"], "abcカード"), ["カード"]);
    }

    #[test]
    fn an_empty_keyword_is_refused() {
        assert!(Keywords::new(&["ok".to_string(), "  ".to_string()]).is_err());
    }
}
