//! National identification numbers with their own validity rules: the US Social Security
//! number (SSA's area, group and serial rules) and the German tax ID (Steuerliche
//! Identifikationsnummer, § 139b AO: eleven digits, the digit-count rule and an ISO 7064
//! MOD 11,10 check digit).

use crate::digits::{Window, prefix};

/// How an accepted number was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// In its printed groups (`078-05-1121`, `86 095 742 719`): as sure as the checks go.
    Printed,
    /// As bare digits: any nine-digit number may look like an SSN, so it is less sure.
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
}
