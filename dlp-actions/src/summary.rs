//! The one-line summary of an incident that syslog lines and e-mail subjects carry: rule,
//! severity, user, folder, item and counts, never the matches themselves. The incident comes
//! from mail (a user's folder name, a subject): control characters become spaces, so that no
//! value can start a new syslog line or mail header, and the line is cut at a bound.

use serde_json::Value;

/// The longest summary, in bytes.
const MAX_SUMMARY_BYTES: usize = 480;

/// `DLP rule payment-cards (high): user john.doe, folder INBOX, item 42: 3 matches`, from an
/// incident's `rule`, `severity`, `user`, `folder`, `item` (else `uid`) and `count` (else the
/// number of `matches`); what it lacks is left out.
pub fn summary(incident: &Value) -> String {
    let text = |key: &str| -> Option<String> {
        match incident.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut line = format!("DLP rule {}", text("rule").unwrap_or_else(|| "?".into()));
    if let Some(severity) = text("severity") {
        line.push_str(&format!(" ({severity})"));
    }
    let mut parts = Vec::new();
    if let Some(user) = text("user") {
        parts.push(format!("user {user}"));
    }
    if let Some(folder) = text("folder") {
        parts.push(format!("folder {folder}"));
    }
    if let Some(item) = text("item").or_else(|| text("uid")) {
        parts.push(format!("item {item}"));
    }
    if !parts.is_empty() {
        line.push_str(": ");
        line.push_str(&parts.join(", "));
    }
    let count = incident.get("count").and_then(Value::as_u64).or_else(|| {
        incident
            .get("matches")
            .and_then(Value::as_array)
            .map(|m| m.len() as u64)
    });
    if let Some(count) = count {
        line.push_str(&format!(
            "; {count} match{}",
            if count == 1 { "" } else { "es" }
        ));
    }
    let mut clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_SUMMARY_BYTES {
        clean.truncate(clean.floor_char_boundary(MAX_SUMMARY_BYTES - 3));
        clean.push_str("...");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_summary_names_the_rule_and_where_and_nothing_of_the_matches() {
        let incident = json!({
            "rule": "payment-cards", "severity": "high", "user": "john.doe",
            "folder": "INBOX", "uid": 42, "count": 3,
            "matches": [{"excerpt": "4539 **** **** 6467"}],
        });
        assert_eq!(
            summary(&incident),
            "DLP rule payment-cards (high): user john.doe, folder INBOX, item 42; 3 matches"
        );
    }

    #[test]
    fn hostile_values_cannot_break_the_line_or_make_it_long() {
        let incident =
            json!({"rule": "r", "folder": "a\r\nSubject: forged", "user": "ü".repeat(400)});
        let line = summary(&incident);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.len() <= MAX_SUMMARY_BYTES, "{}", line.len());
        assert!(line.ends_with("..."));
    }
}
