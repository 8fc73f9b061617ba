//! The collector commands, run on one job's notification: FETCH (message payloads, from the
//! Cyrus spool or else by IMAP as the folder's owner), HEADER, GETMETADATA, GETACL,
//! GETUSERDATA (LDAP) and DLPACTION (a DLP rule's keyword and quarantine, in dlp_actions.rs). A command that fails for good (the message was expunged before the
//! fetch, the folder is gone) leaves its reason in `collector_errors` and the others still
//! run; a transient failure (Cyrus or LDAP unreachable) stops the job, to be retried whole.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use bonnie_core::{
    config::{CollectorConfig, ImapSecurity},
    imap::{uidset, uri},
    payload,
};
use bonnie_imap::{Connection, Credentials, Identity, ImapError, Pool, Security};
use bonnie_mail as mail;
use serde_json::{Map, Value, json};

use crate::{
    dlp_actions,
    failure::Failure,
    ldap,
    metrics::{CollectorMetrics, Ended},
};

/// The folder and messages a notification is about.
pub(crate) struct Target {
    /// The admin-namespace path (`user/john.doe/Calendar@example.org`).
    pub path: String,
    /// The owner's login, `None` for a shared folder.
    pub owner: Option<String>,
    /// The name the owner sees (`Calendar`).
    pub name: String,
    /// Cyrus's mailboxID.
    pub uniqueid: Option<String>,
    /// The messages.
    pub uids: Vec<u64>,
    /// The folder's UIDVALIDITY as the notification names it.
    pub uidvalidity: Option<u64>,
    /// The folder's domain, if any.
    pub domain: Option<String>,
}

pub(crate) fn target(n: &Map<String, Value>) -> Result<Target, String> {
    let text = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_string);
    let parsed = text("uri")
        .and_then(|u| uri::parse(&u))
        .ok_or("the notification names no IMAP URL")?;
    let mailbox = parsed.mailbox.ok_or("the notification names no folder")?;
    let uids = match (n.get("uids"), text("uidset")) {
        (Some(Value::Array(list)), _) => list.iter().filter_map(Value::as_u64).collect(),
        (_, Some(set)) => uidset::expand(&set).map_err(|e| e.to_string())?,
        _ => parsed.uid.into_iter().collect(),
    };
    Ok(Target {
        path: mailbox.path,
        owner: mailbox.owner,
        name: mailbox.name,
        uniqueid: text("folder_uniqueid").or_else(|| text("mailboxID")),
        uids,
        uidvalidity: parsed.uidvalidity,
        domain: mailbox.domain,
    })
}

/// Runs `commands` on a notification; the updated notification. A transient failure of any
/// command is the job's (retry it later); a permanent one is the job's only when the
/// notification cannot be read at all. Each command's outcome and time go to `metrics`.
pub fn collect(
    config: &CollectorConfig,
    metrics: &CollectorMetrics,
    notification: &[u8],
    commands: &[String],
) -> Result<Vec<u8>, Failure> {
    let mut n: Map<String, Value> = match serde_json::from_slice(notification) {
        Ok(Value::Object(n)) => n,
        _ => return Err(Failure::permanent("the notification is not a JSON object")),
    };
    let mut errors = match n.remove("collector_errors") {
        Some(Value::Object(errors)) => errors,
        _ => Map::new(),
    };
    for command in commands {
        let started = Instant::now();
        let result = match command.as_str() {
            "FETCH" => fetch(config, &mut n, false),
            "HEADER" => fetch(config, &mut n, true),
            "GETMETADATA" => metadata(config, &mut n),
            "GETACL" => acl(config, &mut n),
            "GETUSERDATA" => user_data(config, &mut n),
            "DLPACTION" => dlp_actions::run(config, &mut n),
            other => Err(Failure::permanent(format!(
                "{other} is not a collector command"
            ))),
        };
        let ended = match &result {
            Ok(()) => Ended::Ok,
            Err(Failure::Permanent(_)) => Ended::Permanent,
            Err(Failure::Transient(_)) => Ended::Transient,
        };
        metrics.command(command, ended, started.elapsed());
        match result {
            Ok(()) => {
                errors.remove(command);
            }
            Err(Failure::Permanent(reason)) => {
                tracing::warn!(command = %command, reason = %reason,
                    "A collector command failed for good; the record is stored without its data.");
                errors.insert(command.clone(), json!(reason));
            }
            Err(transient) => return Err(transient),
        }
    }
    if !errors.is_empty() {
        n.insert("collector_errors".to_string(), Value::Object(errors));
    }
    serde_json::to_vec(&Value::Object(n)).map_err(|e| Failure::permanent(e.to_string()))
}

thread_local! {
    /// Each pool thread's one IMAP connection, kept from job to job (bonnie-imap's Pool).
    static IMAP: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// The IMAP layer's configuration from the collector's.
fn imap_config(config: &CollectorConfig) -> Result<bonnie_imap::Config, ImapError> {
    let security = match config.imap_security {
        ImapSecurity::Plain => Security::Plain,
        ImapSecurity::Starttls => Security::StartTls,
        ImapSecurity::Tls => Security::Tls,
    };
    bonnie_imap::Config::secured(
        &config.imap_address,
        security,
        config.imap_tls_server_name.clone(),
        config.imap_tls_ca_file.as_deref(),
        Duration::from_millis(config.imap_timeout_ms),
        config.imap_max_literal_bytes,
    )
}

/// Runs `operation` on this thread's IMAP connection, authenticated as `identity` (opened,
/// or re-opened after a failure, by the pool). `doing` says what was tried, for the failure.
pub(crate) fn with_imap<T>(
    config: &CollectorConfig,
    identity: &Identity,
    doing: &str,
    operation: impl FnMut(&mut Connection) -> Result<T, ImapError>,
) -> Result<T, Failure> {
    IMAP.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_some_and(|pool| pool.config().address != config.imap_address)
        {
            *slot = None;
        }
        let pool = match slot.as_mut() {
            Some(pool) => pool,
            None => {
                let imap = imap_config(config).map_err(|e| Failure::imap(doing, &e))?;
                let credentials = Credentials {
                    admin: config.imap_admin.clone(),
                    password: config.imap_password.clone(),
                };
                slot.insert(Pool::new(imap, credentials))
            }
        };
        pool.run(identity, operation)
            .map_err(|e| Failure::imap(doing, &e))
    })
}

/// Who sees the folder: its owner (the admin acting for them) or, for a shared folder, the
/// admin; and the mailbox name to use then.
pub(crate) fn identity_for(target: &Target) -> (Identity, String) {
    match &target.owner {
        Some(owner) => (Identity::User(owner.clone()), target.name.clone()),
        None => (Identity::Admin, target.path.clone()),
    }
}

/// The most UIDs whose headers one UID FETCH asks for.
const HEADER_BATCH: usize = 100;

/// A message as the collector read it: its bytes and, when known, its INTERNALDATE (ms).
struct Read {
    bytes: Vec<u8>,
    internaldate_ms: Option<i64>,
}

/// The message file in the Cyrus spool, if readable here, with its INTERNALDATE: Cyrus sets
/// the file's mtime to the message's INTERNALDATE (whole seconds, as it keeps it) when it
/// files the message (`mailbox_append_index_record`). Cyrus's mailbox ids are letters,
/// digits, `-` and `_`; anything else (a `/` or `..` in a forged notification) is not looked
/// for, so that no file outside the spool is read.
fn spool_file(config: &CollectorConfig, uniqueid: &str, uid: u64) -> Option<Read> {
    if !uniqueid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let mut chars = uniqueid.chars();
    let (a, b) = (chars.next()?, chars.next()?);
    config.partitions.iter().find_map(|partition| {
        let path: PathBuf = partition
            .join("uuid")
            .join(a.to_string())
            .join(b.to_string())
            .join(uniqueid)
            .join(format!("{uid}."));
        let mut file = std::fs::File::open(path).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        let internaldate_ms = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .map(|s| s * 1000);
        Some(Read {
            bytes,
            internaldate_ms,
        })
    })
}

/// FETCH (whole messages) or HEADER (headers only), from the spool or by IMAP. A UID that
/// the folder no longer holds (Cyrus answers its UID FETCH with nothing) was expunged before
/// the fetch: permanent.
fn fetch(
    config: &CollectorConfig,
    n: &mut Map<String, Value>,
    headers_only: bool,
) -> Result<(), Failure> {
    let target = target(n).map_err(Failure::Permanent)?;
    if target.uids.is_empty() {
        return Err(Failure::permanent("the notification names no message"));
    }
    let mut contents = Map::new();
    let mut headers = match n.remove("messageHeaders") {
        Some(Value::Object(h)) => h,
        _ => Map::new(),
    };
    let mut missing = Vec::new();
    // Headers of many messages (a copy or move of a thousand) in one FETCH per batch; whole
    // messages one at a time, so that memory holds one message, whatever its size.
    let batch = if headers_only { HEADER_BATCH } else { 1 };
    for uids in target.uids.chunks(batch) {
        let mut read: HashMap<u64, Read> = HashMap::new();
        let mut by_imap = Vec::new();
        for uid in uids {
            let from_spool = target
                .uniqueid
                .as_deref()
                .and_then(|id| spool_file(config, id, *uid));
            match from_spool {
                Some(file) => {
                    read.insert(*uid, file);
                }
                None => by_imap.push(*uid),
            }
        }
        if !by_imap.is_empty() {
            read.extend(fetch_by_imap(config, &target, &by_imap, headers_only)?);
        }
        for uid in uids {
            let read = read.get(uid);
            let Some(read) = read else {
                missing.push(uid.to_string());
                continue;
            };
            headers.insert(uid.to_string(), Value::Object(mail::headers(&read.bytes)));
            if !headers_only {
                let mut kept = content(config, &read.bytes)?;
                if let Some(ms) = read.internaldate_ms {
                    kept["internaldate_ms"] = json!(ms);
                }
                contents.insert(uid.to_string(), kept);
            }
        }
    }
    n.insert("messageHeaders".to_string(), Value::Object(headers));
    if !headers_only {
        n.insert("messageContent".to_string(), Value::Object(contents));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::permanent(format!(
            "expunged before the fetch: the folder no longer holds UID {}",
            missing.join(", ")
        )))
    }
}

/// The messages (`headers_only`: their headers) of `uids` in the target folder by one IMAP
/// UID FETCH, with their INTERNALDATEs; a UID the folder no longer holds is not among them.
fn fetch_by_imap(
    config: &CollectorConfig,
    target: &Target,
    uids: &[u64],
    headers_only: bool,
) -> Result<Vec<(u64, Read)>, Failure> {
    let (identity, name) = identity_for(target);
    let section = if headers_only { "HEADER" } else { "" };
    let items = format!("(UID INTERNALDATE BODY.PEEK[{section}])");
    let set: Vec<String> = uids.iter().map(u64::to_string).collect();
    let set = set.join(",");
    with_imap(
        config,
        &identity,
        &format!("UID FETCH {set} in {name}"),
        |imap| {
            imap.examine(&name)?;
            let found = imap.uid_fetch(&set, &items, None)?;
            Ok(found
                .into_iter()
                .filter_map(|mut f| {
                    let uid = u64::from(f.uid?);
                    // Only the UIDs asked for: an answer the server sends unasked is no
                    // message of this notification.
                    if !uids.contains(&uid) {
                        return None;
                    }
                    let bytes = f.sections.remove(section)?;
                    let internaldate_ms = f.internal_date_ms();
                    Some((
                        uid,
                        Read {
                            bytes,
                            internaldate_ms,
                        },
                    ))
                })
                .collect())
        },
    )
}

/// A payload as it travels in the job: inline (UTF-8 text or base64), or, when larger than
/// `max_inline_bytes` and the payload store is reachable, written there and named by digest.
fn content(config: &CollectorConfig, bytes: &[u8]) -> Result<Value, Failure> {
    if bytes.len() > config.max_inline_bytes
        && let Some(dir) = &config.payload_dir
    {
        let digest = payload::write_file(dir, bytes)
            .map_err(|e| Failure::transient(format!("cannot write to the payload store: {e}")))?;
        return Ok(json!({ "digest": digest, "size": bytes.len(), "in_store": true }));
    }
    let digest = payload::digest(bytes);
    Ok(match std::str::from_utf8(bytes) {
        Ok(text) => {
            json!({ "encoding": "utf-8", "data": text, "size": bytes.len(), "digest": digest })
        }
        Err(_) => {
            json!({ "encoding": "base64", "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes), "size": bytes.len(), "digest": digest })
        }
    })
}

/// GETMETADATA, as the admin: every entry with a value (the shared ones, and the admin's
/// private ones). The admin's own logins can be kept out of the archive with the dealer's
/// drop rules; acting as the owner would put logins in the owner's name into the audit trail.
fn metadata(config: &CollectorConfig, n: &mut Map<String, Value>) -> Result<(), Failure> {
    let target = target(n).map_err(Failure::Permanent)?;
    let entries = with_imap(
        config,
        &Identity::Admin,
        &format!("GETMETADATA {}", target.path),
        |imap| imap.getmetadata(&target.path, &["/shared", "/private"]),
    )?;
    let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, json!(v))).collect();
    n.insert("metadata".to_string(), Value::Object(map));
    Ok(())
}

/// GETACL, as the admin.
fn acl(config: &CollectorConfig, n: &mut Map<String, Value>) -> Result<(), Failure> {
    let target = target(n).map_err(Failure::Permanent)?;
    let entries = with_imap(
        config,
        &Identity::Admin,
        &format!("GETACL {}", target.path),
        |imap| imap.getacl(&target.path),
    )?;
    let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, json!(v))).collect();
    n.insert("acl".to_string(), Value::Object(map));
    Ok(())
}

/// GETUSERDATA: the acting user's directory entry and the `cn`s of its static groups (`null`
/// when the directory has none).
fn user_data(config: &CollectorConfig, n: &mut Map<String, Value>) -> Result<(), Failure> {
    let login = n
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Failure::permanent("the notification names no user"))?;
    let found = ldap::find_user(&config.ldap, login)?;
    n.insert(
        "user_data".to_string(),
        found.map_or(
            Value::Null,
            |u| json!({ "dn": u.dn, "cn": u.cn, "id": u.id, "groups": u.groups }),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_id_that_leaves_the_spool_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let message = spool.join("uuid/a/b/ab12-x_y");
        std::fs::create_dir_all(&message).unwrap();
        std::fs::write(message.join("7."), b"Subject: kept\r\n\r\n").unwrap();
        // A file outside the spool that a forged id would reach.
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        std::fs::write(dir.path().join("secret/7."), b"not mail").unwrap();
        let config = CollectorConfig {
            partitions: vec![spool.clone()],
            ..CollectorConfig::default()
        };
        assert!(spool_file(&config, "ab12-x_y", 7).is_some());
        // `uuid/./.` then `../../secret`: the file above would be read.
        assert!(spool.join("uuid/./.").join("../../secret/7.").exists());
        assert!(spool_file(&config, "../../secret", 7).is_none());
    }

    #[test]
    fn a_spool_file_gives_its_internaldate_as_cyrus_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("uuid/c/d/cd34");
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("3.");
        std::fs::write(&path, b"Subject: dated\r\n\r\n").unwrap();
        // Cyrus sets the file's mtime to the INTERNALDATE it files the message with.
        let internaldate = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_258_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(internaldate)
            .unwrap();
        let config = CollectorConfig {
            partitions: vec![dir.path().to_path_buf()],
            ..CollectorConfig::default()
        };
        let read = spool_file(&config, "cd34", 3).unwrap();
        assert_eq!(read.bytes, b"Subject: dated\r\n\r\n");
        assert_eq!(read.internaldate_ms, Some(1_767_258_000_000));
    }
}
