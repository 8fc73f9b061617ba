//! ACLs as Cyrus writes them in `vnd.cmu.mailboxACL`: `subject<TAB>rights<TAB>` repeated.

/// The entries of an ACL string, in order, as `(subject, rights)`.
pub fn parse(acl: &str) -> Vec<(String, String)> {
    let mut fields = acl.split('\t');
    let mut entries = Vec::new();
    while let (Some(subject), Some(rights)) = (fields.next(), fields.next()) {
        if !subject.is_empty() {
            entries.push((subject.to_string(), rights.to_string()));
        }
    }
    entries
}

/// True if `rights` include every right of `wanted` (such as `lr`).
pub fn grants(rights: &str, wanted: &str) -> bool {
    wanted.chars().all(|c| rights.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrus_acl_strings_parse() {
        let acl = "john.doe@example.org\tlrswipkxtecdan\tanyone\tp\t";
        assert_eq!(
            parse(acl),
            vec![
                (
                    "john.doe@example.org".to_string(),
                    "lrswipkxtecdan".to_string()
                ),
                ("anyone".to_string(), "p".to_string())
            ]
        );
        assert!(parse("").is_empty());
        assert!(grants("lrs", "lr"));
        assert!(!grants("lrs", "lrw"));
    }
}
