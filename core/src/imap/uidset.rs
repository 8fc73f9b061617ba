//! IMAP sequence sets as Cyrus writes them in `uidset` (`1`, `1:300`, `1:4,7`).

/// The most UIDs one set may expand to; a larger set is an error rather than a memory blow-up.
pub const MAX_UIDS: usize = 1_000_000;

/// Why a UID set could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidSetError {
    /// Not a sequence set of numbers.
    #[error("not a UID set: {0:?}")]
    Invalid(String),
    /// More than [`MAX_UIDS`] UIDs.
    #[error("the UID set {0:?} names more than {MAX_UIDS} UIDs")]
    TooLarge(String),
}

/// Expands a sequence set into its UIDs, in the order written (ranges ascending).
pub fn expand(set: &str) -> Result<Vec<u64>, UidSetError> {
    let invalid = || UidSetError::Invalid(set.chars().take(80).collect());
    let mut uids = Vec::new();
    for part in set.trim().split(',') {
        let (low, high) = match part.split_once(':') {
            Some((a, b)) => (
                a.trim().parse::<u64>().map_err(|_| invalid())?,
                b.trim().parse::<u64>().map_err(|_| invalid())?,
            ),
            None => {
                let uid = part.trim().parse::<u64>().map_err(|_| invalid())?;
                (uid, uid)
            }
        };
        let (low, high) = (low.min(high), low.max(high));
        if low == 0 {
            return Err(invalid());
        }
        if (high - low) as usize >= MAX_UIDS || uids.len() + (high - low + 1) as usize > MAX_UIDS {
            return Err(UidSetError::TooLarge(set.chars().take(80).collect()));
        }
        uids.extend(low..=high);
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_expand() {
        assert_eq!(expand("1").unwrap(), vec![1]);
        assert_eq!(expand("1:4,7").unwrap(), vec![1, 2, 3, 4, 7]);
        assert_eq!(expand("3:1").unwrap(), vec![1, 2, 3]);
        assert_eq!(expand("1:300").unwrap().len(), 300);
    }

    #[test]
    fn bad_sets_are_errors() {
        assert!(matches!(expand("1:*"), Err(UidSetError::Invalid(_))));
        assert!(matches!(expand(""), Err(UidSetError::Invalid(_))));
        assert!(matches!(expand("0"), Err(UidSetError::Invalid(_))));
        assert!(matches!(
            expand("1:4294967295"),
            Err(UidSetError::TooLarge(_))
        ));
    }
}
