//! GETUSERDATA's directory search: bind (as configured), find the login by the configured
//! filter, read its DN, `cn` and unique attribute (`nsuniqueid` on 389-ds, `entryUUID` on
//! OpenLDAP), and the `cn`s of the static groups under `group_base` (else `base`) it is in, nested ones
//! included.
//! Any failure to reach, bind or search the directory is transient: a wrong password or base
//! is a configuration error that retrying after the fix cures, and until then the job must end
//! FAILED and visible, not stored as if the user were unknown.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bonnie_core::config::LdapConfig;
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use crate::failure::Failure;

/// A user as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The entry's DN.
    pub dn: String,
    /// Its common name.
    pub cn: String,
    /// Its unique attribute: the user's id for good.
    pub id: String,
    /// The `cn`s of the static groups it is in, directly or through nested groups; sorted.
    pub groups: Vec<String>,
}

/// At most this many groups of a user are read: a directory whose groups are without number
/// (or a hostile one) must not hold GETUSERDATA for ever.
const MAX_GROUPS: usize = 1000;
/// Groups nested deeper than this below the user's own are not followed.
const MAX_GROUP_DEPTH: usize = 10;

/// The entry of `login`, if the directory has one.
pub fn find_user(config: &LdapConfig, login: &str) -> Result<Option<User>, Failure> {
    let settings =
        LdapConnSettings::new().set_conn_timeout(Duration::from_millis(config.timeout_ms));
    let mut ldap = LdapConn::with_settings(settings, &config.url)
        .map_err(|e| Failure::transient(format!("cannot reach LDAP at {}: {e}", config.url)))?;
    ldap.with_timeout(Duration::from_millis(config.timeout_ms));
    if !config.bind_dn.is_empty() {
        ldap.simple_bind(&config.bind_dn, &config.bind_password)
            .and_then(|r| r.success())
            .map_err(|e| {
                Failure::transient(format!("LDAP bind as {} failed: {e}", config.bind_dn))
            })?;
    }
    let filter = config.filter.replace("%s", &ldap_escape(login));
    let attributes = vec![config.unique_attribute.as_str(), "cn"];
    let (entries, _) = ldap
        .search(&config.base, Scope::Subtree, &filter, attributes)
        .and_then(|r| r.success())
        .map_err(|e| Failure::transient(format!("LDAP search {filter} failed: {e}")))?;
    let Some(entry) = entries.into_iter().next() else {
        let _ = ldap.unbind();
        return Ok(None);
    };
    let entry = SearchEntry::construct(entry);
    let groups = groups_of(&mut ldap, config.group_base(), &entry.dn)?;
    let _ = ldap.unbind();
    let first = |name: &str| first_value(&entry, name);
    let id = first(&config.unique_attribute).ok_or_else(|| {
        Failure::permanent(format!(
            "the entry {} has no {}",
            entry.dn, config.unique_attribute
        ))
    })?;
    Ok(Some(User {
        cn: first("cn").unwrap_or_default(),
        dn: entry.dn,
        id,
        groups,
    }))
}

/// The `cn`s of the static groups under `base` (`[collector.ldap] group_base`) that hold `dn` as a member, and of the groups
/// holding those, each group once, at most [`MAX_GROUPS`] groups [`MAX_GROUP_DEPTH`] deep.
/// Read from the groups' `member`/`uniqueMember` rather than the user's `memberOf`, which
/// needs an overlay (OpenLDAP) or plugin (389-ds) a directory may not run.
fn groups_of(ldap: &mut LdapConn, base: &str, dn: &str) -> Result<Vec<String>, Failure> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::from([dn.to_lowercase()]);
    let mut pending = VecDeque::from([(dn.to_string(), 0)]);
    while let Some((member, depth)) = pending.pop_front() {
        if depth == MAX_GROUP_DEPTH {
            continue;
        }
        let escaped = ldap_escape(&member);
        let alternatives: String = LdapConfig::GROUP_CLASSES
            .iter()
            .map(|(class, attribute)| format!("(&(objectClass={class})({attribute}={escaped}))"))
            .collect();
        let filter = format!("(|{alternatives})");
        let (entries, _) = ldap
            .search(base, Scope::Subtree, &filter, vec!["cn"])
            .and_then(|r| r.success())
            .map_err(|e| {
                Failure::transient(format!("LDAP search of the groups of {member} failed: {e}"))
            })?;
        for group in entries.into_iter().map(SearchEntry::construct) {
            if seen.len() > MAX_GROUPS || !seen.insert(group.dn.to_lowercase()) {
                continue;
            }
            names.extend(first_value(&group, "cn"));
            pending.push_back((group.dn, depth + 1));
        }
    }
    Ok(names.into_iter().collect())
}

/// The first value of an attribute, its name without regard to case (servers spell names
/// their own way).
fn first_value(entry: &SearchEntry, name: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_does_not_answer_is_a_transient_failure() {
        // A port just freed, so that nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let config = LdapConfig {
            url: format!("ldap://127.0.0.1:{port}/"),
            timeout_ms: 2000,
            ..LdapConfig::default()
        };
        match find_user(&config, "john.doe@example.org") {
            Err(Failure::Transient(reason)) => assert!(reason.contains("cannot reach LDAP")),
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }
}
