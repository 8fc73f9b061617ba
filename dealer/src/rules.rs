//! Drop rules: events the administrator does not want archived, by name or by event and
//! user (such as the admin's own logins). A notification that is not JSON is never dropped.

use std::collections::HashSet;

use bonnie_core::config::DealerConfig;
use serde::Deserialize;

/// The configured drop rules.
pub struct DropRules {
    events: HashSet<String>,
    pairs: HashSet<(String, String)>,
}

#[derive(Deserialize)]
struct EventAndUser {
    event: String,
    #[serde(default)]
    user: String,
}

impl DropRules {
    /// The rules of `[dealer]`.
    pub fn new(config: &DealerConfig) -> Self {
        let pairs = config
            .drop_event_users
            .iter()
            .filter_map(|pair| {
                let mut parts = pair.split_whitespace();
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
            .collect();
        Self {
            events: config.drop_events.iter().cloned().collect(),
            pairs,
        }
    }

    /// Why this notification is dropped, if it is.
    pub fn drops(&self, notification: &[u8]) -> Option<String> {
        if self.events.is_empty() && self.pairs.is_empty() {
            return None;
        }
        // Read as the worker will read it, so a notification that is not UTF-8 is dropped
        // by the same rules.
        let text = bonnie_core::notification::decode_lossy(notification);
        let parsed: EventAndUser = serde_json::from_str(&text).ok()?;
        if self.events.contains(&parsed.event) {
            return Some(format!("event {} is in drop_events", parsed.event));
        }
        let pair = (parsed.event, parsed.user);
        self.pairs
            .contains(&pair)
            .then(|| format!("\"{} {}\" is in drop_event_users", pair.0, pair.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_event_user_pairs_are_dropped() {
        let config = DealerConfig {
            drop_events: vec!["MailboxModseq".into()],
            drop_event_users: vec!["Login cyrus".into()],
            ..DealerConfig::default()
        };
        let rules = DropRules::new(&config);
        assert!(
            rules
                .drops(br#"{"event":"MailboxModseq","user":""}"#)
                .is_some()
        );
        assert!(
            rules
                .drops(br#"{"event":"Login","user":"cyrus"}"#)
                .is_some()
        );
        assert!(
            rules
                .drops(br#"{"event":"Login","user":"john.doe@example.org"}"#)
                .is_none()
        );
        assert!(
            rules
                .drops(br#"{"event":"Logout","user":"cyrus"}"#)
                .is_none()
        );
        assert!(
            rules.drops(b"\xff not json").is_none(),
            "unreadable input is kept"
        );
        assert!(
            rules
                .drops(b"{\"event\":\"Login\",\"user\":\"cyrus\",\"x\":\"\xe9\"}")
                .is_some(),
            "a notification that is not UTF-8 follows the same rules"
        );
    }
}
