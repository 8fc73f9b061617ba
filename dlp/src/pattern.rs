//! The user and folder patterns of rule scopes. Folder patterns are IMAP LIST's (RFC 3501
//! 6.3.8): `*` any run of characters, `%` any run without the hierarchy separator `/`; user
//! patterns know `*` only and ignore case. A list of patterns compiles into one anchored
//! regular expression, so matching is linear whatever the patterns.

use regex::{Regex, RegexBuilder};

/// A compiled list of patterns; an empty list matches nothing.
#[derive(Debug)]
pub(crate) struct Patterns {
    any: Option<Regex>,
}

impl Patterns {
    /// Folder patterns (`*`, `%`), case-sensitive as folder names are.
    pub(crate) fn folders(patterns: &[String]) -> Result<Self, String> {
        Self::compile(patterns, true)
    }

    /// User patterns (`*`), without case.
    pub(crate) fn users(patterns: &[String]) -> Result<Self, String> {
        Self::compile(patterns, false)
    }

    fn compile(patterns: &[String], folders: bool) -> Result<Self, String> {
        if patterns.is_empty() {
            return Ok(Patterns { any: None });
        }
        let alternatives: Vec<String> = patterns
            .iter()
            .map(|pattern| {
                let mut out = String::new();
                let mut literal = String::new();
                for c in pattern.chars() {
                    let wildcard = match c {
                        '*' => Some(".*"),
                        '%' if folders => Some("[^/]*"),
                        _ => None,
                    };
                    match wildcard {
                        Some(w) => {
                            out.push_str(&regex::escape(&literal));
                            literal.clear();
                            out.push_str(w);
                        }
                        None => literal.push(c),
                    }
                }
                out.push_str(&regex::escape(&literal));
                out
            })
            .collect();
        let any = RegexBuilder::new(&format!("^(?:{})$", alternatives.join("|")))
            .case_insensitive(!folders)
            .dot_matches_new_line(true)
            .build()
            .map_err(|e| format!("the patterns do not compile: {e}"))?;
        Ok(Patterns { any: Some(any) })
    }

    /// True if the list has no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.any.is_none()
    }

    /// True if one of the patterns matches `name`.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.any.as_ref().is_some_and(|r| r.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folder_and_user_patterns() {
        let folders = Patterns::folders(&list(&["user/%/Sent", "shared/*"])).unwrap();
        assert!(folders.matches("user/alice/Sent"));
        assert!(!folders.matches("user/alice/Archive/Sent"));
        assert!(folders.matches("shared/finance/2026"));
        assert!(!folders.matches("Shared/finance"));
        let literal = Patterns::folders(&list(&["user/a.b/[x]"])).unwrap();
        assert!(literal.matches("user/a.b/[x]") && !literal.matches("user/aXb/[x]"));
        let users = Patterns::users(&list(&["*@Example.org"])).unwrap();
        assert!(users.matches("alice@example.ORG") && !users.matches("alice@example.com"));
        assert!(!Patterns::users(&[]).unwrap().matches("x"));
    }
}
