//! National identification numbers with their own validity rules: the US Social Security
//! number (SSA's area, group and serial rules), the German tax ID (Steuerliche
//! Identifikationsnummer, § 139b AO: eleven digits, the digit-count rule and an ISO 7064
//! MOD 11,10 check digit), the Dutch citizen service number (BSN: nine digits and the 11-proof),
//! the Spanish DNI and NIE (eight digits, or X, Y or Z and seven, and the mod-23 check letter)
//! and the French social security number (NIR: sex, birth year and month, department with
//! Corsica's 2A and 2B, commune, order and the mod-97 key).
//!
//! The Spanish and French numbers hold letters, so they are found by a pattern instead of the
//! digit scanner, with the same bounds: a candidate touching a letter, a digit, a `+` or an
//! identifier's `-`, `/` or `_` is refused.

use regex::Regex;

use crate::digits::{Found, Window, clean_end, clean_start, prefix};

/// How an accepted number was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// In its printed groups (`078-05-1121`, `86 095 742 719`): as sure as the checks go.
    Printed,
    /// As bare digits (or, for a DNI, any way: eight digits and a letter are a common shape of
    /// reference codes, and the letter only refuses 22 of 23 of them): less sure.
    Bare,
}

/// SSNs that are published or famous and never anyone's: the Woolworth wallet card's, the
/// one in the SSA's own leaflets, and the ones used as examples everywhere.
const INVALID_SSNS: &[&str] = &["078051120", "219099999", "123456789", "457555462"];

/// A window that is a US Social Security number: `AAA-GG-SSSS` or `AAA GG SSSS`, or nine bare
/// digits; area not 000, 666 or 900 to 999, group not 00, serial not 0000.
pub(crate) fn us_ssn(window: &Window) -> Option<Layout> {
    let layout = match window.groups {
        [3, 2, 4] => Layout::Printed,
        [9] => Layout::Bare,
        _ => return None,
    };
    let d = window.digits;
    let (area, group, serial) = (prefix(d, 3), prefix(&d[3..], 2), prefix(&d[5..], 4));
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return None;
    }
    let text = std::str::from_utf8(d).ok()?;
    (!INVALID_SSNS.contains(&text)).then_some(layout)
}

/// A window that is a German tax ID: eleven digits, bare or as `NN NNN NNN NNN`, the first not
/// 0; among the first ten, exactly one digit occurs twice or three times (never three in a
/// row) and every other at most once; the eleventh is the ISO 7064 MOD 11,10 check digit.
pub(crate) fn de_tax_id(window: &Window) -> Option<Layout> {
    let layout = match window.groups {
        [2, 3, 3, 3] => Layout::Printed,
        [11] => Layout::Bare,
        _ => return None,
    };
    let d: Vec<u32> = window.digits.iter().map(|c| u32::from(c - b'0')).collect();
    if d[0] == 0 {
        return None;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated: Vec<usize> = (0..10).filter(|&x| counts[x] > 1).collect();
    let [digit] = repeated[..] else {
        return None;
    };
    if counts[digit] > 3 {
        return None;
    }
    if counts[digit] == 3
        && d[..10]
            .windows(3)
            .any(|w| w.iter().all(|&x| x as usize == digit))
    {
        return None;
    }
    (mod_11_10(&d[..10]) == d[10]).then_some(layout)
}

/// The ISO 7064 MOD 11,10 check digit of `digits`.
fn mod_11_10(digits: &[u32]) -> u32 {
    let mut product = 10;
    for &x in digits {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    match 11 - product {
        10 => 0,
        check => check,
    }
}

/// A window that is a Dutch citizen service number (burgerservicenummer, BSN): nine digits,
/// bare or as `NNNN NN NNN`, not all zero, passing the 11-proof (elfproef): the first eight
/// weighted 9 down to 2, minus the ninth, sum to a multiple of 11.
pub(crate) fn nl_bsn(window: &Window) -> Option<Layout> {
    let layout = match window.groups {
        [4, 2, 3] => Layout::Printed,
        [9] => Layout::Bare,
        _ => return None,
    };
    let d: Vec<i32> = window.digits.iter().map(|c| i32::from(c - b'0')).collect();
    if d.iter().all(|&x| x == 0) {
        return None;
    }
    let weighted: i32 = d[..8].iter().zip((2..=9).rev()).map(|(x, w)| x * w).sum();
    ((weighted - d[8]) % 11 == 0).then_some(layout)
}

/// The DNI check letter of a number is this table's letter at the number mod 23.
const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish DNI and NIE candidates: eight digits, or X, Y or Z, an optional dash and seven
/// digits; then the check letter, attached, after a dash, or after a space in upper case (a
/// lower-case word after a number, as Spanish `y`, is not its letter).
pub(crate) const ES_DNI_CANDIDATES: &str = r"(?:[XYZxyz]-?[0-9]{7}|[0-9]{8})(?:-?[A-Za-z]| [A-Z])";

/// A candidate of [`ES_DNI_CANDIDATES`] that is a Spanish DNI or NIE: its letters and digits in
/// upper case, if the letter is the number's (a NIE's X, Y or Z standing for 0, 1 or 2 before
/// its seven digits) and the number is not 0. A DNI is [`Layout::Bare`]; a NIE, whose
/// leading letter is a shape of its own, [`Layout::Printed`].
pub(crate) fn es_dni(candidate: &str) -> Option<(String, Layout)> {
    let chars: Vec<u8> = candidate
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let (&letter, number) = chars.split_last()?;
    let (value, layout) = match number.first()? {
        b'X' => (prefix(&number[1..], 7), Layout::Printed),
        b'Y' => (10_000_000 + prefix(&number[1..], 7), Layout::Printed),
        b'Z' => (20_000_000 + prefix(&number[1..], 7), Layout::Printed),
        _ => (prefix(number, 8), Layout::Bare),
    };
    if value == 0 || DNI_LETTERS[(value % 23) as usize] != letter {
        return None;
    }
    Some((String::from_utf8(chars).ok()?, layout))
}

/// French NIR candidates: fifteen characters, printed as `S YY MM DD CCC OOO KK` or compact
/// (the key may stand apart); the sex 1 or 2 (3, 4, 7 or 8 for numbers given to people being
/// registered), the department two digits or Corsica's 2A or 2B.
pub(crate) const FR_NIR_CANDIDATES: &str = r"[1-478](?: [0-9]{2} [0-9]{2} (?:[0-9]{2}|2[ABab]) [0-9]{3} [0-9]{3} |[0-9]{4}(?:[0-9]{2}|2[ABab])[0-9]{6} ?)[0-9]{2}";

/// A candidate of [`FR_NIR_CANDIDATES`] that is a French NIR: its fifteen characters in upper
/// case, if the month is 01 to 12 or one INSEE gives for unknown months (20, 30 to 42, 50 to
/// 99), the department, commune and order are not zeros, and the key is 97 minus the first
/// thirteen mod 97, 2A counting as 19 and 2B as 18. Printed in its seven groups it is
/// [`Layout::Printed`], else [`Layout::Bare`].
pub(crate) fn fr_nir(candidate: &str) -> Option<(String, Layout)> {
    let layout = if candidate.matches(' ').count() == 6 {
        Layout::Printed
    } else {
        Layout::Bare
    };
    let chars: Vec<u8> = candidate
        .bytes()
        .filter(|&c| c != b' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let month = prefix(&chars[3..], 2);
    if !matches!(month, 1..=12 | 20 | 30..=42 | 50..=99) {
        return None;
    }
    let department: &[u8] = match &chars[5..7] {
        b"2A" => b"19",
        b"2B" => b"18",
        b"00" => return None,
        digits => digits,
    };
    if prefix(&chars[7..], 3) == 0 || prefix(&chars[10..], 3) == 0 {
        return None;
    }
    let number = chars[..5]
        .iter()
        .chain(department)
        .chain(&chars[7..13])
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let key = u64::from(prefix(&chars[13..], 2));
    if key != 97 - number % 97 {
        return None;
    }
    Some((String::from_utf8(chars).ok()?, layout))
}

/// Every candidate of `candidates` in `text` that is bounded as a number must be and that
/// `validate` accepts, left to right. A refused candidate's first character is skipped, so a
/// number overlapping it is still found.
pub(crate) fn find(
    text: &str,
    candidates: &Regex,
    validate: fn(&str) -> Option<(String, Layout)>,
) -> Vec<Found<Layout>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(m) = candidates.find_at(text, at) {
        let accepted = (clean_start(b, m.start()) && clean_end(b, m.end()))
            .then(|| validate(m.as_str()))
            .flatten();
        match accepted {
            Some((digits, verdict)) => {
                found.push(Found {
                    range: m.range(),
                    digits,
                    verdict,
                });
                at = m.end();
            }
            // Candidates start with an ASCII character: one byte on is a character boundary.
            None => at = m.start() + 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digits::scan;

    fn ssns(text: &str) -> Vec<(Layout, String)> {
        scan(text, 3, 9, us_ssn)
            .into_iter()
            .map(|f| (f.verdict, f.digits))
            .collect()
    }

    fn bsns(text: &str) -> Vec<(Layout, String)> {
        scan(text, 3, 9, nl_bsn)
            .into_iter()
            .map(|f| (f.verdict, f.digits))
            .collect()
    }

    fn found(
        text: &str,
        pattern: &str,
        validate: fn(&str) -> Option<(String, Layout)>,
    ) -> Vec<(Layout, String, String)> {
        find(text, &Regex::new(pattern).unwrap(), validate)
            .into_iter()
            .map(|f| (f.verdict, f.digits, text[f.range].to_string()))
            .collect()
    }

    fn dnis(text: &str) -> Vec<(Layout, String, String)> {
        found(text, ES_DNI_CANDIDATES, es_dni)
    }

    fn nirs(text: &str) -> Vec<(Layout, String, String)> {
        found(text, FR_NIR_CANDIDATES, fr_nir)
    }

    fn tax_ids(text: &str) -> Vec<(Layout, String)> {
        scan(text, 4, 11, de_tax_id)
            .into_iter()
            .map(|f| (f.verdict, f.digits))
            .collect()
    }

    #[test]
    fn valid_ssns_printed_and_bare() {
        assert_eq!(
            ssns("SSN 536-22-1234"),
            [(Layout::Printed, "536221234".into())]
        );
        assert_eq!(
            ssns("SSN 536 22 1234"),
            [(Layout::Printed, "536221234".into())]
        );
        assert_eq!(ssns("SSN 536221234"), [(Layout::Bare, "536221234".into())]);
        assert_eq!(ssns("899-99-9999"), [(Layout::Printed, "899999999".into())]);
    }

    #[test]
    fn ssn_areas_groups_serials_and_published_numbers_are_refused() {
        for text in [
            "000-12-3456", // area 000
            "666-12-3456", // area 666
            "900-12-3456", // areas 900 to 999
            "999-12-3456",
            "536-00-1234", // group 00
            "536-22-0000", // serial 0000
            "078-05-1120", // the Woolworth card
            "123-45-6789",
            "536-22 1234",  // mixed separators
            "536-22-12345", // a longer serial
            "1536-22-1234", // a longer area
            "Ticket 536-22-1234-7",
        ] {
            assert!(ssns(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn valid_german_tax_ids() {
        for id in [
            "86095742719",
            "47036892816",
            "65929970489",
            "57549285017",
            "25768131411",
        ] {
            assert_eq!(
                tax_ids(&format!("Steuer-ID: {id}")),
                [(Layout::Bare, id.to_string())]
            );
        }
        assert_eq!(
            tax_ids("IdNr. 86 095 742 719"),
            [(Layout::Printed, "86095742719".to_string())]
        );
    }

    #[test]
    fn german_tax_ids_with_a_bad_check_digit_a_leading_zero_or_broken_digit_counts_are_refused() {
        for text in [
            "86095742718",  // check digit
            "06095742719",  // leading zero
            "12345678903",  // every digit once (check digit right)
            "11123456786",  // three in a row (check digit right)
            "11112345678",  // four times (check digit right)
            "11223456785",  // two digits repeated (check digit right)
            "860957427190", // twelve digits
        ] {
            assert!(tax_ids(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn bsns_pass_the_11_proof_printed_or_bare() {
        assert_eq!(bsns("BSN 123456782"), [(Layout::Bare, "123456782".into())]);
        assert_eq!(
            bsns("BSN 1112 22 333"),
            [(Layout::Printed, "111222333".into())]
        );
        for text in [
            "123456783",   // 11-proof
            "000000000",   // passes the 11-proof, nobody's
            "12345678",    // eight digits
            "1234567820",  // ten digits
            "123 456 782", // not its groups
        ] {
            assert!(bsns(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn dnis_and_nies_have_their_check_letter() {
        assert_eq!(
            dnis("DNI 12345678Z."),
            [(Layout::Bare, "12345678Z".into(), "12345678Z".into())]
        );
        assert_eq!(
            dnis("dni 12345678-z"),
            [(Layout::Bare, "12345678Z".into(), "12345678-z".into())]
        );
        assert_eq!(
            dnis("NIE X1234567L, Y1234567X"),
            [
                (Layout::Printed, "X1234567L".into(), "X1234567L".into()),
                (Layout::Printed, "Y1234567X".into(), "Y1234567X".into()),
            ]
        );
        for text in [
            "12345678A",    // letter
            "00000000T",    // number 0
            "1234567Z",     // seven digits
            "123456789Z",   // nine
            "12345678ZA",   // a longer word
            "REF12345678Z", // an identifier's tail
            "12345670 y",   // Spanish "and", not a letter
            "W1234567L",    // not a NIE prefix
        ] {
            assert!(dnis(text).is_empty(), "{text}");
        }
        // A refused candidate does not hide the one after it.
        assert_eq!(dnis("A12345678Z 12345678Z").len(), 1);
    }

    #[test]
    fn nirs_have_their_month_department_and_key() {
        assert_eq!(
            nirs("NIR 2 55 08 14 168 025 38"),
            [(
                Layout::Printed,
                "255081416802538".into(),
                "2 55 08 14 168 025 38".into()
            )]
        );
        assert_eq!(
            nirs("NIR 1841276451089 46"),
            [(
                Layout::Bare,
                "184127645108946".into(),
                "1841276451089 46".into()
            )]
        );
        // Corsica: 2A counts as 19 and 2B as 18 in the key.
        let key = |number: u64| 97 - number % 97;
        let corse_du_sud = format!("1 85 05 2A 004 012 {:02}", key(1_850_519_004_012));
        let haute_corse = format!("2 90 11 2b 033 101 {:02}", key(2_901_118_033_101));
        assert_eq!(nirs(&corse_du_sud)[0].1, corse_du_sud.replace(' ', ""));
        assert_eq!(
            nirs(&haute_corse)[0].1,
            haute_corse.replace(' ', "").to_uppercase()
        );
        for text in [
            "2 55 08 14 168 025 39", // key
            "2 55 13 14 168 025 73", // month 13
            "2 55 08 00 168 025 38", // department 00
            "2 55 08 14 000 025 38", // commune 000
            "5 55 08 14 168 025 38", // sex 5
            "25508141680253",        // fourteen characters
            "2550814168025380",      // sixteen
            "2 55 08 14 168 025 38-1",
        ] {
            assert!(nirs(text).is_empty(), "{text}");
        }
    }
}
