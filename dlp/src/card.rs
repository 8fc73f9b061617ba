//! Payment card numbers: 14 to 19 digits, contiguous or in the groups cards are printed in
//! (fours, or Amex's and Diners' 4-6-5 and 4-6-4) with one kind of separator, a known brand's
//! prefix and length, and a valid Luhn check digit; the test numbers of payment providers'
//! documentation, and numbers of one repeated digit, are not cards.
//!
//! Luhn is written here rather than taken from the `luhn` crate: the digits are already
//! separated from their formatting, and the crate (with its `digits_iterator` dependency)
//! would re-walk a string for ten lines of arithmetic.

use crate::digits::{Window, prefix};

/// A card's brand, as its prefix and length say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Brand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Diners,
    Jcb,
    UnionPay,
    Maestro,
}

impl Brand {
    /// The brand's name in evidence.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Diners => "diners",
            Brand::Jcb => "jcb",
            Brand::UnionPay => "unionpay",
            Brand::Maestro => "maestro",
        }
    }
}

/// Numbers published as test cards by payment providers (Stripe, PayPal/Braintree, Adyen,
/// Worldpay): they pass every check and are never real.
const TEST_NUMBERS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4000056655665556",
    "4222222222222",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6011000400000000",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "3530111333300000",
    "3566002020360505",
    "6200000000000005",
    "6304000000000000",
    "6759649826438453",
];

/// The brand whose prefix and length the digits have.
pub(crate) fn brand(d: &[u8]) -> Option<Brand> {
    let n = d.len();
    let (p2, p3, p4, p6) = (prefix(d, 2), prefix(d, 3), prefix(d, 4), prefix(d, 6));
    if matches!(p2, 34 | 37) && n == 15 {
        Some(Brand::Amex)
    } else if d[0] == b'4' && matches!(n, 16 | 19) {
        Some(Brand::Visa)
    } else if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        Some(Brand::Mastercard)
    } else if ((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39))
        && (14..=19).contains(&n)
    {
        Some(Brand::Diners)
    } else if (3528..=3589).contains(&p4) && (16..=19).contains(&n) {
        Some(Brand::Jcb)
    } else if (p4 == 6011
        || (644..=649).contains(&p3)
        || p2 == 65
        || (622126..=622925).contains(&p6))
        && (16..=19).contains(&n)
    {
        Some(Brand::Discover)
    } else if p2 == 62 && (16..=19).contains(&n) {
        Some(Brand::UnionPay)
    } else if matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
    ) && (12..=19).contains(&n)
    {
        Some(Brand::Maestro)
    } else {
        None
    }
}

/// True if the digits pass the Luhn check (ISO/IEC 7812-1 annex B).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                if d > 4 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// True if the groups are a layout cards are printed in.
fn printed_layout(groups: &[usize]) -> bool {
    match groups {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// The brand of a window that is a card number, or `None`.
pub(crate) fn validate(window: &Window) -> Option<Brand> {
    let d = window.digits;
    if !(14..=19).contains(&d.len()) || !printed_layout(window.groups) {
        return None;
    }
    if d.iter().all(|&c| c == d[0]) || !luhn(d) {
        return None;
    }
    let brand = brand(d)?;
    let text = std::str::from_utf8(d).ok()?;
    (!TEST_NUMBERS.contains(&text)).then_some(brand)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digits::scan;

    fn cards(text: &str) -> Vec<(&'static str, String)> {
        scan(text, 5, 19, validate)
            .into_iter()
            .map(|f| (f.verdict.name(), f.digits))
            .collect()
    }

    #[test]
    fn every_brand_with_a_valid_check_digit_is_a_card() {
        for (number, brand) in [
            ("4539148803436467", "visa"),
            ("4556 7375 8689 9855", "visa"),
            ("5425233430109903", "mastercard"),
            ("2221000000000009", "mastercard"),
            ("2720-9900-0000-0007", "mastercard"),
            ("374245455400126", "amex"),
            ("3742 454554 00126", "amex"),
            ("6011 5143 3354 6202", "discover"),
            ("6445644564456445", "discover"),
            ("36006666333344", "diners"),
            ("3600 666633 3344", "diners"),
            ("3566111111111113", "jcb"),
            ("6212345678901265", "unionpay"),
            ("6759 0000 0000 0000 005", "maestro"),
        ] {
            let expected = number.replace([' ', '-'], "");
            assert_eq!(
                cards(&format!("Karte: {number}.")),
                [(brand, expected)],
                "{number}"
            );
        }
    }

    #[test]
    fn bad_check_digits_test_numbers_and_unknown_prefixes_are_not_cards() {
        for text in [
            "4539148803436468",    // Luhn fails
            "5425233430109904",    // Luhn fails
            "4111111111111111",    // test numbers
            "4242 4242 4242 4242", // ...printed
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "0000000000000000",     // one repeated digit
            "9999999999999995",     // no brand
            "1234567812345670",     // no brand, valid Luhn
            "5425233430109",        // 13 digits
            "45391488034364670000", // 20 digits
            "4539 1488 0343 64671", // a group of five is no printed layout
            "45 3914 8803 4364 67", // groups that are no card's layout
        ] {
            assert!(cards(text).is_empty(), "{text}: {:?}", cards(text));
        }
    }

    #[test]
    fn cards_inside_longer_runs_phone_numbers_tracking_numbers_and_dates_are_not_cards() {
        for text in [
            "Order 20244539148803436467",
            "Bestellung ORD-4539148803436467",
            "Ref 4539148803436467-2",
            "Tracking 1Z999AA10123456784",
            "1Z4539148803436467",
            "Tel +49 30 12345678",
            "+4539148803436467",
            "Date 2024-12-01, 01.12.2024, 12/01/2024",
            "Sum 0.4539148803436467",
            "ISBN 978-3-16-148410-0",
        ] {
            assert!(cards(text).is_empty(), "{text}: {:?}", cards(text));
        }
        // A card beside other numbers, apart by spaces, is still found.
        assert_eq!(
            cards("Qty 3 card 4539148803436467 exp 12 27"),
            [("visa", "4539148803436467".to_string())]
        );
    }
}
