//! IBANs in text, electronic (`DE89370400440532013000`) or printed in groups of four
//! (`DE89 3704 0044 0532 0130 00`), validated by `iban_validate`: a known country, its length
//! and BBAN layout, and the mod-97 check. Upper case only, as IBANs are written; bounded by
//! anything that is not an ASCII letter or digit.

use std::ops::Range;

use regex::Regex;

/// Finds IBAN candidates; compiled once per rule set.
pub(crate) struct IbanFinder {
    candidates: Regex,
}

impl IbanFinder {
    pub(crate) fn new() -> Self {
        // Electronic first; else printed: groups of four, the last of one to four.
        let candidates = Regex::new(
            r"[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)",
        )
        .expect("the IBAN pattern compiles");
        IbanFinder { candidates }
    }

    /// Every valid IBAN of `text`: its range and its electronic form.
    pub(crate) fn find(&self, text: &str) -> Vec<(Range<usize>, String)> {
        let b = text.as_bytes();
        let bounded = |range: &Range<usize>| {
            let before = range.start.checked_sub(1).map(|i| b[i]);
            let after = b.get(range.end).copied();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        };
        let mut found = Vec::new();
        for m in self.candidates.find_iter(text) {
            let mut range = m.range();
            // A printed candidate may have taken a word after the IBAN as its last group:
            // shorter ones are tried, a group at a time.
            loop {
                if bounded(&range)
                    && let Ok(iban) = text[range.clone()].parse::<iban::Iban>()
                {
                    found.push((range, iban::IbanLike::electronic_str(&iban).to_string()));
                    break;
                }
                match text[range.clone()].rfind(' ') {
                    Some(space) if space > 4 => range.end = range.start + space,
                    _ => break,
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ibans(text: &str) -> Vec<String> {
        IbanFinder::new()
            .find(text)
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    #[test]
    fn valid_ibans_with_and_without_spaces() {
        for (text, iban) in [
            ("IBAN DE89370400440532013000.", "DE89370400440532013000"),
            (
                "IBAN: DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX",
                "DE89370400440532013000",
            ),
            ("GB29NWBK60161331926819", "GB29NWBK60161331926819"),
            ("GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"),
            ("FR1420041010050500013M02606", "FR1420041010050500013M02606"),
            (
                "FR14 2004 1010 0505 0001 3M02 606",
                "FR1420041010050500013M02606",
            ),
            ("счёт DE89370400440532013000 банк", "DE89370400440532013000"),
            ("口座DE89370400440532013000です", "DE89370400440532013000"),
        ] {
            assert_eq!(ibans(text), [iban], "{text}");
        }
    }

    #[test]
    fn bad_checksums_wrong_lengths_and_embedded_ibans_are_refused() {
        for text in [
            "DE89370400440532013001",      // mod-97
            "DE88 3704 0044 0532 0130 00", // mod-97
            "DE8937040044053201300",       // 21 characters, DE has 22
            "DE893704004405320130000",     // 23
            "GB29NWBK6016133192681",       // GB is 22
            "XX89370400440532013000",      // no such country
            "REFDE89370400440532013000",   // inside a word
            "DE89370400440532013000X",
            "de89370400440532013000", // lower case
        ] {
            assert!(ibans(text).is_empty(), "{text}");
        }
    }
}
