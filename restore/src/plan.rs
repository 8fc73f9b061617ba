//! Where each folder of a snapshot goes in live Cyrus.

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// The folder a restore writes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// A new folder `Restored/<moment>/<name then>`, so that nothing live is touched.
    Restored,
    /// Each folder under the name it had then (created when missing, added to when there).
    Original,
    /// This folder for the one selected (the message's folder for a message), its subfolders
    /// below it.
    Folder(String),
}

impl Destination {
    /// The target `--into` names: `original`, a folder name, or the default.
    pub fn parse(text: Option<&str>) -> Destination {
        match text {
            None => Destination::Restored,
            Some("original") => Destination::Original,
            Some(folder) => Destination::Folder(folder.trim_matches('/').to_string()),
        }
    }
}

/// The top folder of a restore into [`Destination::Restored`]: `Restored/<moment in UTC>`
/// (`Restored/2026-12-01T194312Z`), one per moment, so that restores of other moments never
/// mix and a rerun of the same one finds its folder.
pub fn restored_root(as_of_ms: i64) -> String {
    let stamp = jiff::Timestamp::from_millisecond(as_of_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| as_of_ms.to_string());
    format!("Restored/{stamp}")
}

/// The folder `name` (a folder of `snapshot`) goes to.
pub fn target(snapshot: &Snapshot, into: &Destination, name: &str) -> String {
    match into {
        Destination::Original => name.to_string(),
        Destination::Restored => format!("{}/{name}", restored_root(snapshot.as_of_ms)),
        Destination::Folder(folder) => match name.strip_prefix(snapshot.root.as_str()) {
            Some("") => folder.clone(),
            Some(rest) if rest.starts_with('/') => format!("{folder}{rest}"),
            // Another folder a message was in at the moment: beside the root's target.
            _ => format!("{folder}/{name}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(root: &str) -> Snapshot {
        Snapshot {
            user: "john.doe@example.org".into(),
            as_of_ms: 1_767_258_000_000,
            root: root.into(),
            folders: Vec::new(),
        }
    }

    #[test]
    fn folders_go_under_a_new_folder_of_the_moment_by_default() {
        let s = snapshot("Работа");
        assert_eq!(
            target(&s, &Destination::Restored, "Работа/Проекты"),
            "Restored/2026-01-01T090000Z/Работа/Проекты"
        );
        assert_eq!(target(&s, &Destination::Original, "Работа"), "Работа");
    }

    #[test]
    fn a_named_folder_takes_the_selected_one_and_its_subfolders_below() {
        let s = snapshot("Archive");
        let into = Destination::parse(Some("Back/"));
        assert_eq!(into, Destination::Folder("Back".into()));
        assert_eq!(target(&s, &into, "Archive"), "Back");
        assert_eq!(target(&s, &into, "Archive/2024"), "Back/2024");
        // A sibling named alike is not below it.
        assert_eq!(target(&s, &into, "Archived"), "Back/Archived");
    }
}
