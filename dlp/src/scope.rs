//! Which events a rule looks at: their kind, the user, the folder (by pattern, shared or
//! personal, readable by `anyone` or not) and a message's direction, which the local domains
//! decide.

use serde::{Deserialize, Serialize};

use crate::{
    evaluate::{EventKind, ScanInput},
    pattern::Patterns,
};

/// Where a message goes, as the local domains say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From outside to a local recipient.
    Inbound,
    /// From a local sender to at least one recipient outside.
    Outbound,
    /// From a local sender to local recipients only.
    Internal,
}

/// The domain of an address, lower case (`Alice <a@Example.org>` gives `example.org`).
fn domain(address: &str) -> Option<String> {
    let address = address.trim().trim_end_matches('>');
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_lowercase())
}

impl Direction {
    /// The direction of a message from `sender` to `recipients`; `None` when no local domain
    /// is configured, the sender is unknown or there is no recipient (a draft).
    pub fn of(sender: &str, recipients: &[&str], local_domains: &[String]) -> Option<Direction> {
        if local_domains.is_empty() || recipients.is_empty() {
            return None;
        }
        let local = |address: &str| {
            domain(address)
                .is_some_and(|d| local_domains.iter().any(|l| l.eq_ignore_ascii_case(&d)))
        };
        Some(if !local(sender) {
            Direction::Inbound
        } else if recipients.iter().all(|r| local(r)) {
            Direction::Internal
        } else {
            Direction::Outbound
        })
    }
}

/// A rule's scope as a rule file writes it (`[rules.scope]`); every key left out is "any".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeSpec {
    /// The event kinds [default: append, delivery, copy, move; acl for ACL rules].
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
    /// Users matching one of these patterns (`*` any run, no case): the event's user, else
    /// (a delivery) the folder's owner.
    #[serde(default)]
    pub users: Vec<String>,
    /// ...and none of these.
    #[serde(default)]
    pub exclude_users: Vec<String>,
    /// Folders matching one of these IMAP patterns (`*`, `%`).
    #[serde(default)]
    pub folders: Vec<String>,
    /// ...and none of these.
    #[serde(default)]
    pub exclude_folders: Vec<String>,
    /// true: shared folders only; false: personal folders only.
    #[serde(default)]
    pub shared: Option<bool>,
    /// true: folders readable by `anyone` only; false: the others only.
    #[serde(default)]
    pub anyone: Option<bool>,
    /// Messages going in one of these directions only (inbound, outbound, internal).
    #[serde(default)]
    pub direction: Vec<Direction>,
}

/// A compiled scope.
#[derive(Debug)]
pub(crate) struct Scope {
    events: Vec<EventKind>,
    users: Patterns,
    exclude_users: Patterns,
    folders: Patterns,
    exclude_folders: Patterns,
    shared: Option<bool>,
    anyone: Option<bool>,
    direction: Vec<Direction>,
}

impl Scope {
    /// Compiles `spec`; `acl` says the rule is an ACL rule, whose events are ACL changes.
    pub(crate) fn compile(spec: &ScopeSpec, acl: bool) -> Result<Self, String> {
        let events = match &spec.events {
            Some(events) if events.is_empty() => return Err("`scope.events` is empty".into()),
            Some(events) if acl && events.iter().any(|e| *e != EventKind::Acl) => {
                return Err("an ACL rule's `scope.events` can only be [\"acl\"]".into());
            }
            Some(events) if !acl && events.contains(&EventKind::Acl) => {
                return Err(
                    "`scope.events` names acl, which has no text: ACL changes are for rules with `acl`"
                        .into(),
                );
            }
            Some(events) => events.clone(),
            None if acl => vec![EventKind::Acl],
            None => vec![
                EventKind::Append,
                EventKind::Delivery,
                EventKind::Copy,
                EventKind::Move,
            ],
        };
        let compile = |key: &str, list: &[String], folders: bool| {
            if folders {
                Patterns::folders(list)
            } else {
                Patterns::users(list)
            }
            .map_err(|e| format!("`scope.{key}`: {e}"))
        };
        Ok(Scope {
            events,
            users: compile("users", &spec.users, false)?,
            exclude_users: compile("exclude_users", &spec.exclude_users, false)?,
            folders: compile("folders", &spec.folders, true)?,
            exclude_folders: compile("exclude_folders", &spec.exclude_folders, true)?,
            shared: spec.shared,
            anyone: spec.anyone,
            direction: spec.direction.clone(),
        })
    }

    /// True if the rule looks at this event. A scope that names users, folders or directions
    /// does not take an event that has none.
    pub(crate) fn covers(&self, input: &ScanInput, local_domains: &[String]) -> bool {
        if !self.events.contains(&input.event) {
            return false;
        }
        // A delivery has no actor: the folder's owner is whom it is about.
        let user = input
            .user
            .or_else(|| input.folder.as_ref().and_then(|f| f.owner))
            .unwrap_or_default();
        if !self.users.is_empty() && !self.users.matches(user) {
            return false;
        }
        if self.exclude_users.matches(user) {
            return false;
        }
        let folder = input.folder.as_ref();
        let name = folder.map(|f| f.name).unwrap_or_default();
        if !self.folders.is_empty() && (folder.is_none() || !self.folders.matches(name)) {
            return false;
        }
        if folder.is_some() && self.exclude_folders.matches(name) {
            return false;
        }
        if let Some(shared) = self.shared
            && folder.is_none_or(|f| f.shared != shared)
        {
            return false;
        }
        if let Some(anyone) = self.anyone
            && folder.is_none_or(|f| f.readable_by_anyone != anyone)
        {
            return false;
        }
        if !self.direction.is_empty() {
            let direction = input
                .sender
                .and_then(|s| Direction::of(s, &input.recipients, local_domains));
            if !direction.is_some_and(|d| self.direction.contains(&d)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_by_local_domains() {
        let local = vec!["example.org".to_string()];
        let of = |s, r: &[&str]| Direction::of(s, r, &local);
        assert_eq!(
            of("a@partner.com", &["b@example.org"]),
            Some(Direction::Inbound)
        );
        assert_eq!(
            of("A <a@EXAMPLE.org>", &["b@example.org"]),
            Some(Direction::Internal)
        );
        assert_eq!(
            of("a@example.org", &["b@example.org", "c@gmail.com"]),
            Some(Direction::Outbound)
        );
        assert_eq!(of("a@example.org", &[]), None);
        assert_eq!(Direction::of("a@example.org", &["b@x.com"], &[]), None);
    }
}
