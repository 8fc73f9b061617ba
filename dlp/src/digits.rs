//! Numbers in text as the card and national-ID validators see them: runs of ASCII digits
//! joined by single spaces or dashes, bounded so that a number inside a longer identifier never
//! counts. A run is refused whole when it touches a letter or digit, follows a `+` (a phone
//! number), sits in a decimal (`0.4539…`, `4539….5`) or continues an identifier through `-`,
//! `/` or `_` (`ORDER-4539…`, `…-01`). Inside a space-joined run, any run of its groups may be
//! the number (`Amount 100 4539148803436467`); dash-joined groups are one identifier and count
//! only whole. Scanning is one pass over the bytes.

use std::ops::Range;

/// A candidate number: some consecutive groups of one run.
pub(crate) struct Window<'a> {
    /// Its digits, without separators.
    pub digits: &'a [u8],
    /// The length of each group (its separators are all alike).
    pub groups: &'a [usize],
}

/// A number a validator accepted.
pub(crate) struct Found<T> {
    /// Where it is, in bytes of the text.
    pub range: Range<usize>,
    /// Its digits, without separators.
    pub digits: String,
    /// What the validator said about it.
    pub verdict: T,
}

fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'-'
}

/// True if a run starting at `start` is not the tail of something else.
pub(crate) fn clean_start(b: &[u8], start: usize) -> bool {
    let Some(&before) = start.checked_sub(1).and_then(|i| b.get(i)) else {
        return true;
    };
    let before2 = start.checked_sub(2).and_then(|i| b.get(i)).copied();
    match before {
        c if c.is_ascii_alphanumeric() || c == b'+' => false,
        b'.' | b',' => !before2.is_some_and(|c| c.is_ascii_digit()),
        b'-' | b'/' | b'_' => !before2.is_some_and(|c| c.is_ascii_alphanumeric()),
        _ => true,
    }
}

/// True if a run ending at `end` is not the head of something else.
pub(crate) fn clean_end(b: &[u8], end: usize) -> bool {
    let Some(&after) = b.get(end) else {
        return true;
    };
    let after2 = b.get(end + 1).copied();
    match after {
        c if c.is_ascii_alphanumeric() => false,
        b'.' | b',' => !after2.is_some_and(|c| c.is_ascii_digit()),
        b'-' | b'/' | b'_' => !after2.is_some_and(|c| c.is_ascii_alphanumeric()),
        _ => true,
    }
}

/// Every number of `text` that `validate` accepts, left to right. Each run's windows of at most
/// `max_groups` groups and `max_digits` digits are offered longest first from each group on;
/// an accepted window's groups are not offered again.
pub(crate) fn scan<T>(
    text: &str,
    max_groups: usize,
    max_digits: usize,
    mut validate: impl FnMut(&Window) -> Option<T>,
) -> Vec<Found<T>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    // The current run's groups (byte ranges) and the separators between them, reused.
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut separators: Vec<u8> = Vec::new();
    let mut digits: Vec<u8> = Vec::with_capacity(max_digits);
    let mut lengths: Vec<usize> = Vec::with_capacity(max_groups);
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        groups.clear();
        separators.clear();
        loop {
            let group_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(group_start..i);
            if i + 1 < b.len() && is_separator(b[i]) && b[i + 1].is_ascii_digit() {
                separators.push(b[i]);
                i += 1;
            } else {
                break;
            }
        }
        if !clean_start(b, start) || !clean_end(b, i) {
            continue;
        }
        let mut first = 0;
        'groups: while first < groups.len() {
            // A window starting inside the run must follow a space.
            if first > 0 && separators[first - 1] != b' ' {
                first += 1;
                continue;
            }
            let last_max = (first + max_groups).min(groups.len()) - 1;
            for last in (first..=last_max).rev() {
                if last + 1 < groups.len() && separators[last] != b' ' {
                    continue;
                }
                let inner = &separators[first..last];
                if inner.iter().any(|&s| s != inner[0]) {
                    continue;
                }
                let total: usize = groups[first..=last].iter().map(|g| g.len()).sum();
                if total > max_digits {
                    continue;
                }
                digits.clear();
                lengths.clear();
                for g in &groups[first..=last] {
                    digits.extend_from_slice(&b[g.clone()]);
                    lengths.push(g.len());
                }
                let window = Window {
                    digits: &digits,
                    groups: &lengths,
                };
                if let Some(verdict) = validate(&window) {
                    found.push(Found {
                        range: groups[first].start..groups[last].end,
                        digits: String::from_utf8_lossy(&digits).into_owned(),
                        verdict,
                    });
                    first = last + 1;
                    continue 'groups;
                }
            }
            first += 1;
        }
    }
    found
}

/// The number the digits spell, for prefixes of up to 9 digits.
pub(crate) fn prefix(digits: &[u8], count: usize) -> u32 {
    digits
        .iter()
        .take(count)
        .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 16-digit numbers of `text`.
    fn numbers(text: &str) -> Vec<String> {
        scan(text, 5, 19, |w| (w.digits.len() == 16).then_some(()))
            .into_iter()
            .map(|f| text[f.range].to_string())
            .collect()
    }

    #[test]
    fn runs_touching_identifiers_phones_and_decimals_are_refused() {
        assert_eq!(
            numbers("card 4539 1488 0343 6467."),
            ["4539 1488 0343 6467"]
        );
        assert!(numbers("ORDER-4539148803436467").is_empty());
        assert!(numbers("4539148803436467-01").is_empty());
        assert!(numbers("INV4539148803436467").is_empty());
        assert!(numbers("+49 30 12345678").is_empty());
        assert!(numbers("0.4539148803436467").is_empty());
        assert!(numbers("4539148803436467,5").is_empty());
        assert_eq!(numbers("(4539148803436467)"), ["4539148803436467"]);
        assert_eq!(numbers("番号4539148803436467です"), ["4539148803436467"]);
    }

    #[test]
    fn space_joined_groups_offer_their_windows_dash_joined_only_whole() {
        assert_eq!(numbers("Amount 100 4539148803436467"), ["4539148803436467"]);
        assert_eq!(
            numbers("Nr 12 4539 1488 0343 6467 7"),
            ["4539 1488 0343 6467"]
        );
        assert!(numbers("100-4539148803436467").is_empty());
        assert_eq!(numbers("4539-1488-0343-6467"), ["4539-1488-0343-6467"]);
        assert!(numbers("12-4539-1488-0343-6467").is_empty());
        // Mixed separators are never one number.
        assert!(numbers("4539 1488-0343 6467").is_empty());
        let longest = scan("1234 5678 9012", 3, 19, |w| Some(w.digits.len()));
        assert_eq!(longest.len(), 1);
        assert_eq!(longest[0].verdict, 12);
    }
}
