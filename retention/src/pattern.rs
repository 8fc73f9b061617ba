//! Patterns of rules and holds. Folder patterns are IMAP LIST's (RFC 3501 6.3.8): `*` matches
//! any run of characters, `%` any run without the hierarchy separator `/`. Address patterns
//! know only `*`, and compare without case. Written here rather than taken from a glob crate:
//! glob crates have no `%`, and treat `[`, `{` and `?`, which folder names may hold, as syntax.

/// True if folder name `name` matches `pattern` (`*` and `%` as IMAP LIST has them).
pub fn matches_folder(pattern: &str, name: &str) -> bool {
    matches(pattern.as_bytes(), name.as_bytes(), true)
}

/// True if address `address` matches `pattern` (`*` any run), case folded.
pub fn matches_address(pattern: &str, address: &str) -> bool {
    matches(
        pattern.to_lowercase().as_bytes(),
        address.to_lowercase().as_bytes(),
        false,
    )
}

/// Wildcard matching by dynamic programming over (pattern, text) positions: O(pattern × text)
/// time and O(text) memory whatever the pattern, so a hostile one such as `*a*a*a*b` cannot
/// make it backtrack exponentially.
fn matches(pattern: &[u8], text: &[u8], percent: bool) -> bool {
    // row[t]: the pattern so far matches text[..t].
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for &c in pattern {
        let mut next = vec![false; text.len() + 1];
        match c {
            b'*' => {
                // Any run: reachable from any earlier matched position.
                let mut reached = false;
                for t in 0..=text.len() {
                    reached |= row[t];
                    next[t] = reached;
                }
            }
            b'%' if percent => {
                // Any run without `/`: a `/` breaks the run.
                let mut reached = false;
                for t in 0..=text.len() {
                    if t > 0 && text[t - 1] == b'/' {
                        reached = false;
                    }
                    reached |= row[t];
                    next[t] = reached;
                }
            }
            _ => {
                for t in 1..=text.len() {
                    next[t] = row[t - 1] && text[t - 1] == c;
                }
            }
        }
        row = next;
        if !row.contains(&true) {
            return false;
        }
    }
    row[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_patterns_are_imap_list_patterns() {
        assert!(matches_folder("*", "INBOX/Sent/2020"));
        assert!(matches_folder("INBOX/*", "INBOX/Sent/2020"));
        assert!(matches_folder("INBOX/%", "INBOX/Sent"));
        assert!(!matches_folder("INBOX/%", "INBOX/Sent/2020"));
        assert!(matches_folder("%/Sent", "INBOX/Sent"));
        assert!(!matches_folder("INBOX", "INBOX/Sent"));
        assert!(matches_folder("Büro/*", "Büro/Рабочее"));
        assert!(
            matches_folder("Projekt [alt]", "Projekt [alt]"),
            "brackets are plain"
        );
        assert!(
            !matches_folder("Sent", "sent"),
            "folder names keep their case"
        );
    }

    #[test]
    fn address_patterns_ignore_case() {
        assert!(matches_address("*@Example.ORG", "anna@example.org"));
        assert!(matches_address("anna@*", "Anna@legal.example.org"));
        assert!(!matches_address("*@example.org", "anna@example.org.evil"));
        assert!(!matches_address("anna@example.org", "hanna@example.org"));
    }

    #[test]
    fn an_earlier_star_takes_what_a_later_percent_cannot() {
        assert!(matches_folder("*/%", "a/b/c"));
        assert!(!matches_folder("%/%", "a/b/c"));
        assert!(matches_folder("%/*", "a/b/c"));
    }

    #[test]
    fn hostile_patterns_are_answered_without_backtracking() {
        let text = "a".repeat(5000);
        assert!(!matches_address(&format!("{}b", "*a".repeat(100)), &text));
        assert!(matches_address(&format!("{}a", "*a".repeat(100)), &text));
    }
}
