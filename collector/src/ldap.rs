//! GETUSERDATA's directory search: bind (as configured), find the login by the configured
//! filter, read its DN, `cn` and unique attribute (`nsuniqueid` on 389-ds, `entryUUID` on
//! OpenLDAP). Any failure to reach, bind or search the directory is transient: a wrong
//! password or base is a configuration error that retrying after the fix cures, and until then
//! the job must end FAILED and visible, not stored as if the user were unknown.

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
}

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
    let _ = ldap.unbind();
    let Some(entry) = entries.into_iter().next() else {
        return Ok(None);
    };
    let entry = SearchEntry::construct(entry);
    // Servers spell attribute names their own way: look them up without regard to case.
    let first = |name: &str| {
        entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first().cloned())
    };
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
    }))
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
