//! Masked excerpts: what evidence shows of a match. Letters and digits other than the first
//! `keep_start` and the last `keep_end` become `*`; separators stay, so the layout shows
//! (`4539 **** **** 6467`, `DE89 **** **** **** **** 00`). At least [`MIN_HIDDEN`] stay
//! hidden: a match too short for that is masked whole.

/// The fewest letters or digits a masked excerpt hides.
const MIN_HIDDEN: usize = 5;

/// `matched` masked, keeping `keep_start` and `keep_end` letters or digits.
pub(crate) fn mask(matched: &str, keep_start: usize, keep_end: usize) -> String {
    let total = matched.chars().filter(|c| c.is_alphanumeric()).count();
    let (keep_start, keep_end) = if keep_start + keep_end + MIN_HIDDEN > total {
        (0, 0)
    } else {
        (keep_start, keep_end)
    };
    let mut seen = 0;
    matched
        .chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen <= keep_start || seen > total - keep_end {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_layout_and_only_the_ends() {
        assert_eq!(mask("4539 1488 0343 6467", 4, 4), "4539 **** **** 6467");
        assert_eq!(mask("4539148803436467", 4, 4), "4539********6467");
        assert_eq!(
            mask("DE89 3704 0044 0532 0130 00", 4, 2),
            "DE89 **** **** **** **** 00"
        );
        assert_eq!(mask("536-22-1234", 0, 4), "***-**-1234");
        assert_eq!(mask("secret", 2, 2), "******");
    }
}
