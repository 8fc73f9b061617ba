//! `bonnie reconcile`: proves the archive complete against Cyrus, folder by folder, and fills
//! what it lacks. The walk is back-fill's (cli/src/backfill.rs): a folder whose uniqueid the
//! archive's folder views do not hold is unknown, a UID below STATUS's UIDNEXT that no archived
//! record placed is missing; both are back-filled. A folder the views hold as not deleted that
//! Cyrus no longer lists vanished without a delete event: a MailboxDelete-like record says so.
//! A folder whose HIGHESTMODSEQ is past the highest modseq the archive saw of it is asked, with
//! CONDSTORE, which messages changed since: of those the archive holds, the flags Cyrus has now
//! are compared with the flags the message's trail gives (its arrival's, then every change the
//! archive heard of), and the difference is filled as FlagsSet and FlagsClear records of the
//! message, so its trail (and a restore as of any later moment) has the flags Cyrus has.
//! Each gap is also a record of its own (`vnd.bonnie.ReconcileGap`: what was missing and how it
//! was found), and `--json` counts them per kind.

use std::time::Instant;

use anyhow::Context as _;
use bonnie_core::{
    Config,
    imap::uri::Mailbox,
    notification::RECONCILE_GAP_EVENT,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_discovery::state;
use bonnie_imap::Pool;
use bonnie_model::{folder_view, folders, mail_history, message_places, record::BACKFILL_MARKER};
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use serde_json::{Value, json};

use crate::backfill::{self, Folder, Gaps, Selection, Submitter, Walk, job_id};

/// A gap the walk found.
struct Gap {
    kind: &'static str,
    folder: Folder,
    uid: Option<u32>,
    found_by: String,
    /// For a flag change: what changed.
    flags: Option<FlagDifference>,
}

/// The flags of a message the archive never heard change.
struct FlagDifference {
    /// The flags Cyrus has now.
    now: Vec<String>,
    /// Those the archive's trail lacks.
    set: Vec<String>,
    /// Those the archive's trail has and Cyrus no longer.
    cleared: Vec<String>,
    /// The message's modseq.
    modseq: Option<u64>,
}

/// A flag as compared: system flags (`\Seen`) are case-insensitive, keywords are not.
fn flag_identity(flag: &str) -> String {
    if flag.starts_with('\\') {
        flag.to_ascii_lowercase()
    } else {
        flag.to_string()
    }
}

/// The flags the archive holds for the message now at `folder`/`uid`: those its trail's
/// arrival gave, then each change it recorded.
fn archived_flags(storage: &StorageClient, folder: &str, uid: u64) -> anyhow::Result<Vec<String>> {
    let trail = mail_history::trail(storage, folder, uid)
        .map_err(|e| anyhow::anyhow!("the trail of UID {uid} in {folder}: {e}"))?;
    let mut flags: Vec<String> = Vec::new();
    for entry in trail {
        // An arrival names the message's flags then; a copy or move that names none keeps
        // those it had.
        if message_places::PLACING_EVENTS.contains(&entry.event.as_str()) {
            if !entry.flags.is_empty() {
                flags = entry.flags;
            }
            continue;
        }
        // The spelling the trail holds is kept: a difference reports, and a back-fill clears,
        // the flags as archived.
        let Some((add, names)) = state::flag_change(&entry) else {
            continue;
        };
        for name in names {
            let id = flag_identity(&name);
            flags.retain(|f| flag_identity(f) != id);
            if add {
                flags.push(name);
            }
        }
    }
    Ok(flags)
}

/// What differs between the flags Cyrus has (`now`) and those the archive holds; `None` when
/// nothing does. `\Recent` is Cyrus's session state, never archived, and left out.
fn flag_difference(
    now: &[String],
    archived: &[String],
    modseq: Option<u64>,
) -> Option<FlagDifference> {
    let kept = |flags: &[String]| -> Vec<String> {
        flags
            .iter()
            .filter(|f| flag_identity(f) != "\\recent")
            .cloned()
            .collect()
    };
    let (now, archived) = (kept(now), kept(archived));
    let lacks = |within: &[String], flag: &String| {
        !within
            .iter()
            .any(|f| flag_identity(f) == flag_identity(flag))
    };
    let set: Vec<String> = now
        .iter()
        .filter(|f| lacks(&archived, f))
        .cloned()
        .collect();
    let cleared: Vec<String> = archived
        .iter()
        .filter(|f| lacks(&now, f))
        .cloned()
        .collect();
    (!set.is_empty() || !cleared.is_empty()).then_some(FlagDifference {
        now,
        set,
        cleared,
        modseq,
    })
}

/// Collects the gaps the walk finds; each back-filled record says it filled one.
#[derive(Default)]
struct Found {
    gaps: Vec<Gap>,
}

impl Gaps for Found {
    fn unknown_folder(&mut self, folder: &Folder) -> Value {
        self.gaps.push(Gap {
            kind: "unknown_folder",
            folder: folder.clone(),
            uid: None,
            found_by: "LIST: the archive holds no folder with this uniqueid".to_string(),
            flags: None,
        });
        json!({ "gap": "unknown_folder" })
    }

    fn walked(
        &mut self,
        folder: &Folder,
        pool: &mut Pool,
        storage: &StorageClient,
    ) -> anyhow::Result<()> {
        // Before any gap record raises the archive's modseq of the folder: those go after the
        // walk.
        let changed = flag_changes(folder, pool, storage, &self.gaps)?;
        self.gaps.extend(changed);
        Ok(())
    }

    fn missing_message(&mut self, folder: &Folder, uid: u32) -> Value {
        self.gaps.push(Gap {
            kind: "missing_message",
            folder: folder.clone(),
            uid: Some(uid),
            found_by: format!(
                "UID FETCH 1:{} (UIDNEXT {}): no archived record placed this UID",
                folder.uidnext.saturating_sub(1),
                folder.uidnext
            ),
            flags: None,
        });
        json!({ "gap": "missing_message" })
    }
}

/// The folders the archive holds as there (not deleted) for the selection, by uniqueid, with
/// their path.
fn archived_folders(
    config: &Config,
    selection: &Selection,
) -> anyhow::Result<Vec<(String, String)>> {
    let storage = backfill::open_storage(config)?;
    let queries: Vec<RecordQuery> = if selection.all {
        vec![RecordQuery {
            collection: folders::CURRENT.to_string(),
            all: true,
            ..RecordQuery::default()
        }]
    } else {
        selection
            .users
            .iter()
            .map(|u| RecordQuery::all_with(folders::CURRENT, "owner", u))
            .collect()
    };
    let mut out = Vec::new();
    for query in queries {
        for record in storage
            .query(&query)
            .map_err(|e| anyhow::anyhow!("the archive's folders: {e}"))?
        {
            let view = record
                .json()
                .map_err(|e| anyhow::anyhow!("the archive's folder {}: {e}", record.key))?;
            let path = view["path"].as_str().unwrap_or_default();
            if view["deleted"] == true || path.is_empty() || record.key.starts_with("path:") {
                continue;
            }
            if selection.wants_path(path) {
                out.push((record.key.to_string(), path.to_string()));
            }
        }
    }
    Ok(out)
}

/// The messages of `folder` whose flags changed since the highest modseq the archive saw of it
/// (CONDSTORE: `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m)`), of those it holds; the messages
/// found missing are not among them (their appends raised the modseq).
fn flag_changes(
    folder: &Folder,
    pool: &mut Pool,
    storage: &StorageClient,
    missing: &[Gap],
) -> anyhow::Result<Vec<Gap>> {
    let (Some(uniqueid), Some(highest)) = (&folder.uniqueid, folder.highestmodseq) else {
        return Ok(Vec::new());
    };
    let Some(view) = storage
        .get(folders::CURRENT, uniqueid)
        .map_err(|e| anyhow::anyhow!("the archive's folder {uniqueid}: {e}"))?
    else {
        return Ok(Vec::new());
    };
    let view = view
        .json()
        .map_err(|e| anyhow::anyhow!("the archive's folder {uniqueid}: {e}"))?;
    let Some(seen) = view
        .as_object()
        .and_then(|v| folder_view::Facts::of_view(v).modseq_max)
        .filter(|seen| *seen < highest)
    else {
        return Ok(Vec::new());
    };
    let (identity, name) = folder.reader();
    let messages = pool
        .run(&identity, |c| {
            c.examine(&name)?;
            c.uid_fetch("1:*", "(UID FLAGS)", Some(seen))
        })
        .with_context(|| format!("UID FETCH CHANGEDSINCE {seen} in {}", folder.mailbox.path))?;
    let mut changed = Vec::new();
    for message in messages {
        let Some(uid) = message.uid else { continue };
        let was_missing = missing
            .iter()
            .any(|g| g.uid == Some(uid) && g.folder.key() == folder.key());
        let held = message_places::archived(
            storage,
            uniqueid,
            u64::from(folder.uidvalidity),
            u64::from(uid),
        )
        .map_err(|e| anyhow::anyhow!("the archive's message places: {e}"))?;
        if was_missing || !held {
            continue;
        }
        let archived = archived_flags(storage, &folder.mailbox.path, u64::from(uid))?;
        let Some(difference) = flag_difference(&message.flags, &archived, message.modseq) else {
            continue;
        };
        changed.push(Gap {
            kind: "flags_changed",
            folder: folder.clone(),
            uid: Some(uid),
            found_by: format!(
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {seen}): the archive saw modseq {seen}, Cyrus is at {highest}"
            ),
            flags: Some(difference),
        });
    }
    Ok(changed)
}

/// A FlagsSet- or FlagsClear-like record of flags of message `uid` the archive never heard
/// change, as Cyrus would have sent it; the time is when it was observed.
fn flags_notification(
    server: &str,
    folder: &Folder,
    uid: u32,
    event: &str,
    flags: &[String],
    modseq: Option<u64>,
    marker: Value,
) -> Value {
    let mut n = json!({
        "event": event,
        "timestamp": format_rfc3339_ms(now_ms()),
        "service": "bonnie-backfill",
        "uri": format!("imap://{server}/{};UIDVALIDITY={}", backfill::url_path(&folder.mailbox.path), folder.uidvalidity),
        "uidset": uid.to_string(),
        "flagNames": flags.join(" "),
        BACKFILL_MARKER: marker,
    });
    if let Some(modseq) = modseq {
        n["modseq"] = json!(modseq);
    }
    if let Some(id) = &folder.uniqueid {
        n["mailboxID"] = json!(id);
    }
    if let Some(owner) = &folder.mailbox.owner {
        n["user"] = json!(owner);
    }
    n
}

/// `bonnie reconcile`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    user: Option<&str>,
    all: bool,
    rate: f64,
    json_out: bool,
) -> anyhow::Result<()> {
    let users: Vec<String> = user.map(str::to_string).into_iter().collect();
    let selection = backfill::selection(&users, all, None, None)?;
    let params = json!({ "user": user, "all": all, "rate": rate });
    let started = Instant::now();
    let (state, counts) = auditor.change("reconcile", params, None, || {
        let walk = Walk {
            config,
            selection: selection.clone(),
            rate,
            limit: None,
            kind: "reconcile",
            progress: !json_out,
            // A run is whole: the gaps of an interrupted one were never recorded.
            resume: false,
        };
        let mut found = Found::default();
        let (state, walked) = walk.run(&mut found)?;
        let listed = &walked.listed;
        let listed_ids: Vec<&str> = listed.iter().filter_map(|f| f.uniqueid.as_deref()).collect();
        let vanished: Vec<(String, String)> = archived_folders(config, &selection)?
            .into_iter()
            .filter(|(id, path)| {
                !listed_ids.contains(&id.as_str()) && !walked.unreadable.contains(path)
            })
            .collect();
        let server = config.dealer.host_name();
        let mut submitter = Submitter::connect(config, rate)?;
        let observer = backfill::Observer {
            server: server.clone(),
            run: &state.run,
        };
        let marker = |how: Value| observer.marker(how);
        for (uniqueid, path) in &vanished {
            let mailbox = Mailbox::from_path(path);
            let mut deleted = json!({
                "event": "MailboxDelete",
                "timestamp": format_rfc3339_ms(now_ms()),
                "service": "bonnie-backfill",
                "uri": format!("imap://{server}/{}", backfill::url_path(path)),
                "mailboxID": uniqueid,
                BACKFILL_MARKER: marker(json!({ "gap": "vanished_folder" })),
            });
            if let Some(owner) = &mailbox.owner {
                deleted["user"] = json!(owner);
            }
            submitter.submit(job_id("reconcile-delete", &[uniqueid, &state.run]), &deleted)?;
            let mut gap = deleted.clone();
            gap["event"] = json!(RECONCILE_GAP_EVENT);
            gap["gap"] = json!({ "kind": "vanished_folder", "found_by": "LIST: Cyrus no longer lists this folder, and the archive heard of no delete" });
            submitter.submit(job_id("reconcile-gap", &["vanished_folder", uniqueid, &state.run]), &gap)?;
        }
        for gap in &found.gaps {
            let folder = &gap.folder;
            let uid = gap.uid.map(|u| format!("/;UID={u}")).unwrap_or_default();
            let mut n = json!({
                "event": RECONCILE_GAP_EVENT,
                "timestamp": format_rfc3339_ms(now_ms()),
                "service": "bonnie-backfill",
                "uri": format!("imap://{server}/{};UIDVALIDITY={}{uid}", backfill::url_path(&folder.mailbox.path), folder.uidvalidity),
                "gap": { "kind": gap.kind, "uid": gap.uid, "found_by": gap.found_by, "uidnext": folder.uidnext, "highestmodseq": folder.highestmodseq },
                BACKFILL_MARKER: marker(json!({})),
            });
            // The folder's modseq as observed: the archive's view of it catches up, so the
            // next run asks only for what changed after this one.
            if let Some(modseq) = folder.highestmodseq {
                n["modseq"] = json!(modseq);
            }
            if let Some(difference) = &gap.flags {
                n["flagNames"] = json!(difference.now.join(" "));
                n["gap"]["flags"] = json!(difference.now);
                n["gap"]["set"] = json!(difference.set);
                n["gap"]["cleared"] = json!(difference.cleared);
                n["gap"]["modseq"] = json!(difference.modseq);
            }
            if let Some(id) = &folder.uniqueid {
                n["mailboxID"] = json!(id);
            }
            if let Some(owner) = &folder.mailbox.owner {
                n["user"] = json!(owner);
            }
            let uid = gap.uid.map(|u| u.to_string()).unwrap_or_default();
            let id = job_id("reconcile-gap", &[gap.kind, folder.key(), &folder.uidvalidity.to_string(), &uid]);
            submitter.submit(id, &n)?;
            if let (Some(difference), Some(message_uid)) = (&gap.flags, gap.uid) {
                for (event, flags) in [("FlagsSet", &difference.set), ("FlagsClear", &difference.cleared)] {
                    if flags.is_empty() {
                        continue;
                    }
                    let change = flags_notification(&server, folder, message_uid, event, flags, difference.modseq, marker(json!({ "gap": "flags_changed" })));
                    let modseq = difference.modseq.map(|m| m.to_string()).unwrap_or_default();
                    let id = job_id("reconcile-flags", &[event, folder.key(), &folder.uidvalidity.to_string(), &uid, &modseq]);
                    submitter.submit(id, &change)?;
                }
            }
        }
        submitter.flush().context("the reconciliation's gap records")?;
        let count = |kind: &str| found.gaps.iter().filter(|g| g.kind == kind).count();
        let counts = json!({
            "unknown_folders": count("unknown_folder"),
            "missing_messages": count("missing_message"),
            "vanished_folders": vanished.len(),
            "flag_changes": count("flags_changed"),
        });
        Ok((state, counts))
    })?;
    let gaps = [
        "unknown_folders",
        "missing_messages",
        "vanished_folders",
        "flag_changes",
    ]
    .iter()
    .map(|k| counts[k].as_u64().unwrap_or(0))
    .sum::<u64>();
    auditor.step(
        "reconcile",
        json!({ "run": state.run, "gaps": counts }),
        gaps,
    )?;
    if json_out {
        let mut value = counts.clone();
        value["run"] = json!(state.run);
        value["folders"] = json!(state.folders);
        value["messages"] = json!(state.messages);
        value["seconds"] = json!(started.elapsed().as_secs_f64());
        println!("{value}");
    } else {
        println!(
            "reconcile {}: {} folders, {} messages compared; gaps filled: {} unknown folders, {} missing messages, {} vanished folders, {} flag changes",
            state.run,
            state.folders,
            state.messages,
            counts["unknown_folders"],
            counts["missing_messages"],
            counts["vanished_folders"],
            counts["flag_changes"]
        );
    }
    Ok(())
}
