//! Folder names as a user sees them, and who may read a folder: its current ACL grants
//! lookup and read (`l` and `r`) to the user directly or to `anyone` (negative rights taken
//! away), or the user owns it.
//!
//! Roundcube names folders as IMAP does, in modified UTF-7 (`user/john.doe/B&APw-ro@example.org`),
//! and a shared folder as `kolab_storage_folder_api::get_mailbox_id()` makes it: the path
//! without the shared prefix, with the user's domain (`team@example.org`). The archive keeps
//! paths as Cyrus's notification URIs give them, in UTF-8.

use bonnie_core::imap::uri::Mailbox;
use bonnie_model::folders;
use bonnie_plugin_api::{
    PluginError,
    storage::{RecordQuery, StorageClient},
};
use serde_json::Value;

const OTHER_USERS: &str = "Other Users/";
const SHARED_FOLDERS: &str = "Shared Folders/";
/// The ACL subject every user is part of.
const ANYONE: &str = "anyone";

fn domain_of(login: &str) -> Option<&str> {
    login.rsplit_once('@').map(|(_, d)| d)
}

/// The admin-namespace path of the folder `user` calls `mailbox` (`Calendar`,
/// `Other Users/john.doe/Calendar`, `Shared Folders/team`), or `mailbox` itself when it is
/// already a path (`user/john.doe/Calendar@example.org`) or there is no user.
pub fn folder_path(user: Option<&str>, mailbox: &str) -> String {
    let decoded = utf8_name(mailbox);
    let mailbox = decoded.as_str();
    if let Some(rest) = mailbox.strip_prefix("user/") {
        // get_mailbox_id() of a personal INBOX: `user/john.doe/INBOX@example.org`.
        if let Some((local, domain)) = rest.rsplit_once('@')
            && let Some(local) = local.strip_suffix("/INBOX")
            && !local.contains('/')
        {
            return format!("user/{local}@{domain}");
        }
        return mailbox.to_string();
    }
    let Some(user) = user else {
        return mailbox.to_string();
    };
    // get_mailbox_id() of a shared folder (`team@example.org`): already a path. A folder of
    // the user's own is never named with a domain.
    if mailbox.contains('@')
        && !mailbox.starts_with(OTHER_USERS)
        && !mailbox.starts_with(SHARED_FOLDERS)
    {
        return mailbox.to_string();
    }
    let with_domain = |path: String| match domain_of(user) {
        Some(d) => format!("{path}@{d}"),
        None => path,
    };
    if let Some(rest) = mailbox.strip_prefix(OTHER_USERS) {
        let (local, folder) = rest.split_once('/').unwrap_or((rest, ""));
        let owner = match domain_of(user) {
            Some(d) if !local.contains('@') => format!("{local}@{d}"),
            _ => local.to_string(),
        };
        return Mailbox::of_user(&owner, folder).path;
    }
    if let Some(rest) = mailbox.strip_prefix(SHARED_FOLDERS) {
        return with_domain(rest.to_string());
    }
    Mailbox::of_user(user, mailbox).path
}

/// A mailbox name in UTF-8: Roundcube's modified UTF-7 decoded; a name that is not modified
/// UTF-7 (already UTF-8, or not valid) is kept as it is.
pub fn utf8_name(name: &str) -> String {
    if !name.contains('&') || !name.is_ascii() {
        return name.to_string();
    }
    bonnie_imap::utf7::decode(name).unwrap_or_else(|_| name.to_string())
}

/// Whether the archived folder path `stored` is the folder at `path` (UTF-8): the archive
/// may hold a path in modified UTF-7 where a notification gave it so.
pub fn same_folder(stored: &str, path: &str) -> bool {
    stored == path || utf8_name(stored) == path
}

/// The name `user` sees for the folder at `path` (the reverse of [`folder_path`]).
pub fn folder_name(user: Option<&str>, path: &str) -> String {
    let Some(user) = user else {
        return path.to_string();
    };
    let mailbox = Mailbox::from_path(path);
    match &mailbox.owner {
        Some(owner) if owner == user => mailbox.name,
        Some(owner) => {
            let local = match (owner.rsplit_once('@'), domain_of(user)) {
                (Some((local, domain)), Some(own)) if domain == own => local.to_string(),
                _ => owner.clone(),
            };
            if mailbox.name == "INBOX" {
                format!("{OTHER_USERS}{local}")
            } else {
                format!("{OTHER_USERS}{local}/{}", mailbox.name)
            }
        }
        None => format!("{SHARED_FOLDERS}{}", mailbox.name),
    }
}

/// The folder's current ACL (`subject → rights`), from the folders' current view.
fn current_acl(
    storage: &StorageClient,
    path: &str,
) -> Result<Option<serde_json::Map<String, Value>>, PluginError> {
    let name = Mailbox::from_path(path).name;
    let query = RecordQuery {
        collection: folders::CURRENT.to_string(),
        index: Some(("name".to_string(), name)),
        // Every folder of that name (one per user for `Calendar`), however many.
        all: true,
        ..RecordQuery::default()
    };
    for found in storage.query(&query)? {
        let view = found.json()?;
        let same_path = view
            .get("path")
            .and_then(Value::as_str)
            .is_some_and(|stored| same_folder(stored, path));
        let deleted = view.get("deleted").and_then(Value::as_bool) == Some(true);
        if same_path && !deleted {
            return Ok(view.get("acl").and_then(Value::as_object).cloned());
        }
    }
    Ok(None)
}

/// Whether `user` may read the folder at `path` now.
pub fn can_read(storage: &StorageClient, user: &str, path: &str) -> Result<bool, PluginError> {
    if Mailbox::from_path(path).owner.as_deref() == Some(user) {
        return Ok(true);
    }
    let Some(entries) = current_acl(storage, path)? else {
        return Ok(false);
    };
    let rights_of = |subject: &str| {
        entries
            .get(subject)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let granted = format!("{}{}", rights_of(user), rights_of(ANYONE));
    let denied = format!(
        "{}{}",
        rights_of(&format!("-{user}")),
        rights_of(&format!("-{ANYONE}"))
    );
    Ok(['l', 'r']
        .iter()
        .all(|r| granted.contains(*r) && !denied.contains(*r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_paths_and_back() {
        let jane = Some("jane.doe@example.org");
        for (name, path) in [
            ("Calendar", "user/jane.doe/Calendar@example.org"),
            ("INBOX", "user/jane.doe@example.org"),
            (
                "Other Users/john.doe/Calendar",
                "user/john.doe/Calendar@example.org",
            ),
            ("Other Users/john.doe", "user/john.doe@example.org"),
            ("Shared Folders/team/Calendar", "team/Calendar@example.org"),
        ] {
            assert_eq!(folder_path(jane, name), path);
            assert_eq!(folder_name(jane, path), name);
        }
        assert_eq!(
            folder_path(jane, "user/john.doe/Notes@example.org"),
            "user/john.doe/Notes@example.org"
        );
        assert_eq!(folder_path(None, "Calendar"), "Calendar");
    }

    #[test]
    fn roundcube_names_are_decoded_and_its_mailbox_ids_understood() {
        let john = Some("john.doe@example.org");
        for (sent, path) in [
            (
                "user/john.doe/B&APw-ro@example.org",
                "user/john.doe/Büro@example.org",
            ),
            (
                "B&APw-ro/Kalender",
                "user/john.doe/Büro/Kalender@example.org",
            ),
            ("team@example.org", "team@example.org"),
            ("team/Calendar@example.org", "team/Calendar@example.org"),
            ("Shared Folders/team", "team@example.org"),
            (
                "Other Users/jane.doe/B&APw-ro",
                "user/jane.doe/Büro@example.org",
            ),
            (
                "user/john.doe/INBOX@example.org",
                "user/john.doe@example.org",
            ),
            ("Tom &- Jerry", "user/john.doe/Tom & Jerry@example.org"),
            ("Büro", "user/john.doe/Büro@example.org"),
        ] {
            assert_eq!(folder_path(john, sent), path, "{sent}");
        }
        let russian = bonnie_imap::utf7::encode("Входящие");
        assert_eq!(
            folder_path(john, &russian),
            "user/john.doe/Входящие@example.org"
        );
        assert!(same_folder(
            "user/john.doe/B&APw-ro@example.org",
            "user/john.doe/Büro@example.org"
        ));
        assert!(!same_folder(
            "user/john.doe/Buro@example.org",
            "user/john.doe/Büro@example.org"
        ));
    }
}
