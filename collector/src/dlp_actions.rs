//! DLPACTION: the IMAP actions a DLP rule asks for on the job's message (the notification's
//! `dlp_imap_actions`): a keyword (`{"type": "keyword", "name": "$DLP"}`), set as the owner,
//! and a move to a quarantine folder (`{"type": "quarantine", "folder": "shared/quarantine"}`),
//! created by the admin when missing, readable by the admin alone. Each outcome goes into
//! `dlp_imap_results`, in the order of the actions: `{"type", "ok": true, ...}` or
//! `{"type", "error"}` for what retrying cannot change (a folder whose UIDVALIDITY changed, a
//! message gone, a name a rule file got wrong). What may pass (Cyrus unreachable or busy) fails
//! the job as transient, and the broker retries it whole: so every action holds when done
//! twice: a keyword set again changes nothing, and a message no longer in its folder but found
//! in the quarantine by its Message-ID was moved the first time.

use bonnie_imap::{Connection, Identity, ImapError, StoreMode};
use serde_json::{Map, Value, json};

use bonnie_core::{config::CollectorConfig, imap::envelope};

use crate::{
    commands::{Target, identity_for, target, with_imap},
    failure::Failure,
};

/// The longest quarantine folder name, in bytes.
const MAX_FOLDER_BYTES: usize = 200;
/// The longest keyword, in bytes.
const MAX_KEYWORD_BYTES: usize = 64;
/// The most actions one job may ask for (a rule set names a few per hit); more is refused
/// whole rather than run as that many IMAP exchanges.
const MAX_ACTIONS: usize = 32;

/// The rights the quarantine's owner (the admin) has on it.
const ADMIN_RIGHTS: &str = "lrswipkxtecda";
/// The rights a user whose message is quarantined keeps on the quarantine: enough to move a
/// message in with its flags (insert, seen, write), not to see or read anything there.
const OWNER_RIGHTS: &str = "isw";
/// The rights of the user during the move: lookup too, so that the user's session can find
/// the quarantine's name in its own namespace (Cyrus's `altnamespace` puts shared folders
/// under a prefix, `Shared Folders/`, that IMAP has no parsed answer for here).
const MOVING_RIGHTS: &str = "lisw";

/// One action of `dlp_imap_actions`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ImapAction {
    /// Set this keyword.
    Keyword(String),
    /// Move to this folder (admin namespace, without the domain).
    Quarantine(String),
}

impl ImapAction {
    fn kind(&self) -> &'static str {
        match self {
            ImapAction::Keyword(_) => "keyword",
            ImapAction::Quarantine(_) => "quarantine",
        }
    }
}

/// A keyword as a rule may set it: an IMAP atom (RFC 3501 `flag-keyword`), not a system flag
/// (`\Deleted` would expunge), at most [`MAX_KEYWORD_BYTES`].
fn check_keyword(name: &str) -> Result<(), String> {
    let atom_char = |b: u8| {
        b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
    };
    if name.is_empty() || name.len() > MAX_KEYWORD_BYTES || !name.bytes().all(atom_char) {
        return Err(format!(
            "{name:?} is not an IMAP keyword (an atom of at most {MAX_KEYWORD_BYTES} bytes, no system flag)"
        ));
    }
    Ok(())
}

/// A quarantine folder as a rule may name it: a shared folder's path, `/`-separated, without
/// wildcards, empty or dot segments, control characters or a domain, at most
/// [`MAX_FOLDER_BYTES`]; non-ASCII is fine (it goes in modified UTF-7).
fn check_folder(folder: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("quarantine folder {folder:?}: {why}"));
    if folder.is_empty() || folder.len() > MAX_FOLDER_BYTES {
        return bad(&format!("must be 1 to {MAX_FOLDER_BYTES} bytes"));
    }
    if folder
        .chars()
        .any(|c| c.is_control() || matches!(c, '*' | '%' | '@' | '\\' | '"'))
    {
        return bad("holds a wildcard, a domain, a quote or a control character");
    }
    if folder.split('/').any(|segment| {
        segment.is_empty() || segment == "." || segment == ".." || segment.trim() != segment
    }) {
        return bad("has an empty, `.` or `..` segment, or one with spaces around it");
    }
    let first = folder.split('/').next().unwrap_or_default();
    if first.eq_ignore_ascii_case("user") || first.eq_ignore_ascii_case("INBOX") {
        return bad("must be a shared folder, not in a user's hierarchy");
    }
    Ok(())
}

/// The actions, each parsed or with the reason it cannot be.
fn actions(list: &[Value]) -> Vec<Result<ImapAction, (String, String)>> {
    list.iter()
        .map(|action| {
            let kind = action["type"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "keyword" => {
                    let name = action["name"].as_str().unwrap_or("$DLP").to_string();
                    check_keyword(&name)
                        .map(|()| ImapAction::Keyword(name))
                        .map_err(|e| (kind, e))
                }
                "quarantine" => {
                    let folder = action["folder"].as_str().unwrap_or_default().to_string();
                    check_folder(&folder)
                        .map(|()| ImapAction::Quarantine(folder))
                        .map_err(|e| (kind, e))
                }
                _ => Err((kind, format!("{action} is not a DLP IMAP action"))),
            }
        })
        .collect()
}

/// DLPACTION on a notification: `dlp_imap_results` written, one per action.
pub fn run(config: &CollectorConfig, n: &mut Map<String, Value>) -> Result<(), Failure> {
    let list = match n.get("dlp_imap_actions") {
        Some(Value::Array(list)) if list.len() <= MAX_ACTIONS => list.clone(),
        Some(Value::Array(list)) => {
            return Err(Failure::permanent(format!(
                "dlp_imap_actions asks for {} actions, more than {MAX_ACTIONS}",
                list.len()
            )));
        }
        _ => {
            return Err(Failure::permanent(
                "the notification names no dlp_imap_actions",
            ));
        }
    };
    let target = target(n).map_err(Failure::Permanent)?;
    if target.uids.is_empty() {
        return Err(Failure::permanent("the notification names no message"));
    }
    let Some(uidvalidity) = target.uidvalidity else {
        return Err(Failure::permanent(
            "the notification's IMAP URL names no UIDVALIDITY",
        ));
    };
    let alone = target.uids.len() == 1;
    let message_ids: Vec<Option<String>> = target
        .uids
        .iter()
        .map(|uid| message_id(n, *uid, alone))
        .collect();
    let parsed = actions(&list);
    let quarantine = parsed.iter().find_map(|a| match a {
        Ok(ImapAction::Quarantine(folder)) => Some(folder.clone()),
        _ => None,
    });
    let job = Job {
        config,
        target: &target,
        uidvalidity,
        message_ids: &message_ids,
        quarantine: quarantine.as_deref(),
    };
    let mut results = vec![Value::Null; parsed.len()];
    // Keywords first: a message moved to quarantine keeps the keyword it had.
    for pass in ["keyword", "quarantine"] {
        for (i, action) in parsed.iter().enumerate() {
            let outcome = match action {
                Err((kind, error)) if pass == "keyword" => {
                    json!({ "type": kind, "error": error })
                }
                Ok(action) if action.kind() == pass => {
                    let done = match action {
                        ImapAction::Keyword(name) => job.keyword(name),
                        ImapAction::Quarantine(folder) => job.quarantine(folder),
                    };
                    match done {
                        Ok(mut ok) => {
                            ok["type"] = json!(action.kind());
                            ok["ok"] = json!(true);
                            ok
                        }
                        Err(Failure::Permanent(error)) => {
                            tracing::warn!(action = action.kind(), folder = %target.path, error = %error,
                                "A DLP IMAP action cannot be carried out; the job says why.");
                            json!({ "type": action.kind(), "error": error })
                        }
                        Err(transient) => return Err(transient),
                    }
                }
                _ => continue,
            };
            results[i] = outcome;
        }
    }
    n.insert("dlp_imap_results".to_string(), Value::Array(results));
    Ok(())
}

/// The Message-ID of message `uid`: as an earlier FETCH or HEADER put it in the
/// notification, else from Cyrus's `vnd.cmu.envelope` when the notification is about that
/// message alone.
fn message_id(n: &Map<String, Value>, uid: u64, alone: bool) -> Option<String> {
    let from_headers = || {
        let headers = n.get("messageHeaders")?.get(uid.to_string())?.as_object()?;
        let value = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("message-id"))?
            .1;
        match value {
            Value::Array(list) => list.first()?.as_str().map(str::to_string),
            other => other.as_str().map(str::to_string),
        }
    };
    let from_envelope = || {
        let text = n.get("vnd.cmu.envelope")?.as_str()?;
        envelope::parse(text)?.message_id
    };
    let id = from_headers().or_else(|| alone.then(from_envelope).flatten())?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The name the logged-in owner knows quarantine `folder` by: the folder's path itself or,
/// with Cyrus's `altnamespace`, below the shared prefix (`Shared Folders/shared/quarantine`).
/// Only a folder where the owner has exactly [`MOVING_RIGHTS`] is the quarantine: one the
/// owner may read or administer is their own, so a user cannot catch quarantined mail by
/// naming a folder of theirs after it.
fn owners_name(imap: &mut Connection, folder: &str) -> Result<String, ImapError> {
    let mut wanted: Vec<char> = MOVING_RIGHTS.chars().collect();
    wanted.sort_unstable();
    for pattern in [format!("%/{folder}"), folder.to_string()] {
        for entry in imap.list("", &pattern)? {
            let mut rights: Vec<char> = imap.myrights(&entry.name)?.chars().collect();
            rights.sort_unstable();
            if rights == wanted {
                return Ok(entry.name);
            }
        }
    }
    Err(ImapError::Refused {
        command: "LIST".to_string(),
        status: "NO".to_string(),
        text: format!("[NONEXISTENT] the owner cannot find quarantine {folder}"),
    })
}

/// What one job's actions share.
struct Job<'a> {
    config: &'a CollectorConfig,
    target: &'a Target,
    uidvalidity: u64,
    /// The Message-ID of each of the target's UIDs, where known.
    message_ids: &'a [Option<String>],
    /// The quarantine folder of the job's actions, if any.
    quarantine: Option<&'a str>,
}

/// What was found in the source folder.
enum Source {
    /// Its UIDVALIDITY is no longer the notification's.
    Changed(Option<u32>),
    /// The target's UIDs it still holds.
    Holds(Vec<u64>),
}

impl Job<'_> {
    /// The UIDs as an IMAP set.
    fn set(uids: &[u64]) -> String {
        uids.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn changed(&self, now: Option<u32>) -> Failure {
        Failure::permanent(format!(
            "{}: UIDVALIDITY is {} now, not {}: the message is gone",
            self.target.path,
            now.map_or("unknown".to_string(), |v| v.to_string()),
            self.uidvalidity
        ))
    }

    /// SELECTs the source as its owner and tells what of the target it holds; `then` runs on
    /// those UIDs in the same session.
    fn in_source<T>(
        &self,
        doing: &str,
        mut then: impl FnMut(&mut Connection, &[u64]) -> Result<T, ImapError>,
    ) -> Result<(Source, Option<T>), Failure> {
        let (identity, name) = identity_for(self.target);
        with_imap(
            self.config,
            &identity,
            &format!("{doing} in {name}"),
            |imap| {
                let selected = imap.select(&name)?;
                if selected.uidvalidity.map(u64::from) != Some(self.uidvalidity) {
                    return Ok((Source::Changed(selected.uidvalidity), None));
                }
                let held: Vec<u64> = imap
                    .uid_fetch(&Self::set(&self.target.uids), "(UID)", None)?
                    .iter()
                    .filter_map(|f| f.uid.map(u64::from))
                    .filter(|uid| self.target.uids.contains(uid))
                    .collect();
                let done = if held.is_empty() {
                    None
                } else {
                    Some(then(imap, &held)?)
                };
                Ok((Source::Holds(held), done))
            },
        )
    }

    /// The quarantine's admin-namespace path (in the source's domain).
    fn admin_path(&self, folder: &str) -> String {
        match &self.target.domain {
            Some(domain) => format!("{folder}@{domain}"),
            None => folder.to_string(),
        }
    }

    /// The UIDs in quarantine `folder` of the target's messages that `missing` lists (by
    /// Message-ID), as the admin; a keyword, when given, set on them there.
    fn find_in_quarantine(
        &self,
        folder: &str,
        missing: &[u64],
        keyword: Option<&str>,
    ) -> Result<Vec<(u64, Option<u32>)>, Failure> {
        let path = self.admin_path(folder);
        let ids: Vec<(u64, Option<&String>)> = missing
            .iter()
            .map(|uid| {
                let at = self.target.uids.iter().position(|u| u == uid);
                (*uid, at.and_then(|i| self.message_ids[i].as_ref()))
            })
            .collect();
        if ids.iter().all(|(_, id)| id.is_none()) {
            return Ok(ids.iter().map(|(uid, _)| (*uid, None)).collect());
        }
        with_imap(
            self.config,
            &Identity::Admin,
            &format!("SEARCH by Message-ID in {path}"),
            |imap| {
                if imap.list("", &path)?.is_empty() {
                    return Ok(ids.iter().map(|(uid, _)| (*uid, None)).collect());
                }
                imap.select(&path)?;
                let mut found = Vec::new();
                for (uid, id) in &ids {
                    let there = match id {
                        Some(id) => imap.uid_search_header("Message-ID", id)?.last().copied(),
                        None => None,
                    };
                    if let (Some(there), Some(keyword)) = (there, keyword) {
                        imap.uid_store(&there.to_string(), StoreMode::Add, &[keyword], None)?;
                    }
                    found.push((*uid, there));
                }
                Ok(found)
            },
        )
    }

    /// What to say of the target's UIDs that the source no longer holds (all but `held`):
    /// moved to the quarantine before (a redelivered job), else gone.
    fn account_for_missing(
        &self,
        held: &[u64],
        keyword: Option<&str>,
    ) -> Result<Vec<Value>, Failure> {
        let missing: Vec<u64> = self
            .target
            .uids
            .iter()
            .copied()
            .filter(|uid| !held.contains(uid))
            .collect();
        let missing = missing.as_slice();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let found = match self.quarantine {
            Some(folder) => self.find_in_quarantine(folder, missing, keyword)?,
            None => missing.iter().map(|uid| (*uid, None)).collect(),
        };
        let gone: Vec<String> = found
            .iter()
            .filter(|(_, there)| there.is_none())
            .map(|(uid, _)| uid.to_string())
            .collect();
        if !gone.is_empty() {
            return Err(Failure::permanent(format!(
                "{} no longer holds UID {}",
                self.target.path,
                gone.join(", ")
            )));
        }
        Ok(found
            .iter()
            .map(|(uid, there)| json!({ "uid": uid, "quarantine_uid": there, "already": true }))
            .collect())
    }

    /// Sets `keyword` on the target's messages, as their owner.
    fn keyword(&self, keyword: &str) -> Result<Value, Failure> {
        let (source, _) = self
            .in_source(&format!("UID STORE +FLAGS ({keyword})"), |imap, held| {
                imap.uid_store(&Self::set(held), StoreMode::Add, &[keyword], None)
            })?;
        let held = match source {
            Source::Changed(now) => return Err(self.changed(now)),
            Source::Holds(held) => held,
        };
        let quarantined = self.account_for_missing(&held, Some(keyword))?;
        let mut result = json!({ "name": keyword, "uids": held });
        if !quarantined.is_empty() {
            result["in_quarantine"] = json!(quarantined);
        }
        Ok(result)
    }

    /// Makes sure quarantine `folder` exists, readable by the admin alone, and gives the
    /// source's owner `rights` on it.
    fn prepare_quarantine(&self, folder: &str, rights: &str) -> Result<(), Failure> {
        let path = self.admin_path(folder);
        let admin = self.config.imap_admin.clone();
        let owner = self.target.owner.clone();
        with_imap(
            self.config,
            &Identity::Admin,
            &format!("preparing quarantine {path}"),
            |imap| {
                if imap.list("", &path)?.is_empty() {
                    match imap.create(&path) {
                        Ok(()) => {
                            imap.setacl(&path, &admin, ADMIN_RIGHTS)?;
                            // Cyrus gives new folders `defaultacl` (anyone lrs).
                            imap.deleteacl(&path, "anyone")?;
                        }
                        // Another collector created it meanwhile.
                        Err(e) if !imap.list("", &path)?.is_empty() => drop(e),
                        Err(e) => return Err(e),
                    }
                }
                if let Some(owner) = &owner {
                    imap.setacl(&path, owner, rights)?;
                }
                Ok(())
            },
        )
    }

    /// Moves the target's messages to quarantine `folder`.
    fn quarantine(&self, folder: &str) -> Result<Value, Failure> {
        if self.admin_path(folder) == self.target.path {
            // A rule that quarantines what arrives in the quarantine: nothing to move.
            return Ok(json!({ "folder": folder, "moved": [], "in_quarantine_already": true }));
        }
        let (source, _) = self.in_source("UID FETCH", |_, _| Ok(()))?;
        let mut moved = Vec::new();
        let held = match source {
            Source::Changed(now) => return Err(self.changed(now)),
            Source::Holds(held) if held.is_empty() => held,
            Source::Holds(_) => {
                self.prepare_quarantine(folder, MOVING_RIGHTS)?;
                let (source, done) =
                    self.in_source(&format!("UID MOVE to {folder}"), |imap, held| {
                        let destination = match self.target.owner {
                            Some(_) => owners_name(imap, folder)?,
                            None => self.admin_path(folder),
                        };
                        held.iter()
                            .map(|uid| {
                                let uid32 = u32::try_from(*uid).map_err(|_| {
                                    ImapError::Argument(format!("{uid} is not a UID"))
                                })?;
                                let to = imap.move_message(uid32, &destination)?;
                                Ok(json!({ "uid": uid, "quarantine_uid": to.map(|t| t.uid) }))
                            })
                            .collect::<Result<Vec<_>, ImapError>>()
                    })?;
                moved = done.unwrap_or_default();
                if self.target.owner.is_some() {
                    self.prepare_quarantine(folder, OWNER_RIGHTS)?;
                }
                // Cyrus tells a user without read rights on the quarantine no COPYUID: the
                // admin finds the message there by its Message-ID.
                let untold: Vec<u64> = moved
                    .iter()
                    .filter(|m| m["quarantine_uid"].is_null())
                    .filter_map(|m| m["uid"].as_u64())
                    .collect();
                if !untold.is_empty() {
                    for (uid, there) in self.find_in_quarantine(folder, &untold, None)? {
                        if let Some(entry) = moved.iter_mut().find(|m| m["uid"] == uid) {
                            entry["quarantine_uid"] = json!(there);
                        }
                    }
                }
                match source {
                    Source::Changed(now) => return Err(self.changed(now)),
                    Source::Holds(held) => held,
                }
            }
        };
        let already = self.account_for_missing(&held, None)?;
        let mut result = json!({ "folder": folder, "moved": moved });
        if !already.is_empty() {
            result["in_quarantine"] = json!(already);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_atoms_and_never_system_flags() {
        for good in ["$DLP", "NonJunk", "dlp-hit_2"] {
            assert_eq!(check_keyword(good), Ok(()), "{good}");
        }
        let long = "k".repeat(MAX_KEYWORD_BYTES + 1);
        for bad in ["", "\\Deleted", "a b", "x]", "(x", "é", long.as_str()] {
            assert!(check_keyword(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quarantine_folders_are_shared_paths_without_wildcards_dots_or_domains() {
        for good in ["shared/quarantine", "shared/Quarantäne", "DLP/hold"] {
            assert_eq!(check_folder(good), Ok(()), "{good}");
        }
        let long = format!("shared/{}", "q".repeat(MAX_FOLDER_BYTES));
        for bad in [
            "",
            "shared/*",
            "shared/%",
            "shared/../user/jane",
            "shared/./x",
            "/shared",
            "shared/",
            "shared//x",
            "shared/x@example.org",
            "user/jane/Inbox",
            "INBOX/x",
            "shared/a\nb",
            " shared",
            long.as_str(),
        ] {
            assert!(check_folder(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_message_id_comes_from_the_collected_headers_else_from_cyrus_envelope() {
        let n: Map<String, Value> = serde_json::from_value(json!({
            "messageHeaders": {"7": {"message-id": " <a@example.org> "}},
            "vnd.cmu.envelope": "(NIL NIL NIL NIL NIL NIL NIL NIL NIL \"<b@example.org>\")",
        }))
        .unwrap();
        assert_eq!(message_id(&n, 7, true).as_deref(), Some("<a@example.org>"));
        assert_eq!(message_id(&n, 8, true).as_deref(), Some("<b@example.org>"));
        // The envelope is of one message: not of each of several.
        assert_eq!(message_id(&n, 8, false), None);
    }
}
