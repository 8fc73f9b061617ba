//! `bonnie reconcile`: proves the archive complete against Cyrus, folder by folder, and fills
//! what it lacks. The walk is back-fill's (cli/src/backfill.rs): a folder whose uniqueid the
//! archive's folder views do not hold is unknown, a UID below STATUS's UIDNEXT that no archived
//! record placed is missing; both are back-filled. A folder the views hold as not deleted that
//! Cyrus no longer lists vanished without a delete event: a MailboxDelete-like record says so.
//! A folder whose HIGHESTMODSEQ is past the highest modseq the archive saw of it is asked, with
//! CONDSTORE, which messages changed since: those the archive holds had flag changes it never
//! heard of, recorded with their flags now.
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
use bonnie_imap::Pool;
use bonnie_model::{folder_view, folders, message_places, record::BACKFILL_MARKER};
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use serde_json::{Value, json};

use crate::backfill::{self, Folder, Gaps, Selection, Submitter, Walk, job_id};

/// A gap the walk found.
struct Gap {
    kind: &'static str,
    folder: Folder,
    uid: Option<u32>,
    found_by: String,
    /// For a flag change: the flags now and the message's modseq.
    flags: Option<(Vec<String>, Option<u64>)>,
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
        changed.push(Gap {
            kind: "flags_changed",
            folder: folder.clone(),
            uid: Some(uid),
            found_by: format!(
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {seen}): the archive saw modseq {seen}, Cyrus is at {highest}"
            ),
            flags: Some((message.flags, message.modseq)),
        });
    }
    Ok(changed)
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
            if let Some((flags, modseq)) = &gap.flags {
                n["flagNames"] = json!(flags.join(" "));
                n["gap"]["flags"] = json!(flags);
                n["gap"]["modseq"] = json!(modseq);
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
