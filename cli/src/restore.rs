//! `bonnie restore`: puts a user's folder (with its subfolders or not) or one message back into
//! live Cyrus as it stood at a moment, read from the archive (bonnie-restore's snapshot,
//! restored by bonnie-restore's run, as bonnie-api's `restore.start` restores).
//!
//! - Where: by default a new folder `Restored/<moment>/<name then>` of the user, so nothing
//!   live is touched; `--into original` the names the folders had then; `--into <folder>`
//!   that folder for the one selected, its subfolders below.
//! - How: over IMAP as the user (the `[collector]` admin with proxy authorization, as the
//!   collector reads): missing folders are created (with their Kolab folder type and
//!   comments as the archive knew them then), each message APPENDed with its archived bytes
//!   unchanged, its flags then and its INTERNALDATE; the folder is then read back
//!   (`BODY.PEEK[]`) to check each is byte for byte the archived one (Cyrus's GUID is the
//!   SHA-1 of those bytes, so it is the archived message's).
//! - Idempotent: each target folder's messages are matched first by size, then by the
//!   SHA-256 of their bytes FETCHed (in batches; by size alone for a message larger than the
//!   IMAP layer reads, `[collector] imap_max_literal_bytes`), against the messages to
//!   restore: a message there as many times as the snapshot has it is appended no more, so a
//!   rerun, or a run after one killed midway, appends only what is missing. Runs of the same
//!   arguments take a lock, and an unfinished run's state file (0600, kept at most once a
//!   second) keeps its moment and the UIDs given so far, so that a rerun of a restore "as of
//!   now" continues the same one.
//! - Reported, not dropped: a message Cyrus refuses (too large, bare newlines), one whose
//!   payload the archive lacks, the keywords past Cyrus's 128 per folder.
//! - Audited: the restore is a change (`auditor.change`: who, what, as of when, into where);
//!   each folder restored is a step whose record keeps the archive's UID, the new UID
//!   (APPENDUID) and the digest of every message appended, and its end a step with the
//!   counts, in the broker's verifiable log.
//! - `--dry-run` reads the archive and examines the targets (EXAMINE, FETCH) and says what
//!   would be created and appended; it changes nothing.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use bonnie_core::{
    Config,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_restore::{
    plan::Destination,
    run::{self as restoring, Journal, MAX_USER_FLAGS, Options, RunState},
    snapshot::{Selector, Snapshot, snapshot},
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `bonnie restore`'s arguments.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The user whose mailbox is restored (as Cyrus names them: john.doe@example.org)
    #[arg(long)]
    user: String,
    /// The folder, by the name the user saw it under at the moment (INBOX, Archive/2024)
    #[arg(long, required_unless_present = "message", conflicts_with = "message")]
    folder: Option<String>,
    /// With every folder below it
    #[arg(long, requires = "folder")]
    recursive: bool,
    /// One message: its item (payload digest) or Message-ID
    #[arg(long, value_name = "ITEM|MESSAGE-ID")]
    message: Option<String>,
    /// The moment: a date or time (2026-11-28T10:00, in [discovery] time_zone without an
    /// offset); by default now, or just before the folder or message was deleted
    #[arg(long, value_name = "WHEN")]
    as_of: Option<String>,
    /// Where to: `original` (the names then), a folder, or by default a new folder
    /// Restored/<moment>/...
    #[arg(long, value_name = "original|FOLDER")]
    into: Option<String>,
    /// Say what would be created and appended; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome as one JSON object
    #[arg(long)]
    json: bool,
    /// At most this many messages appended a second
    #[arg(long, value_name = "MSGS", default_value_t = 100.0)]
    rate: f64,
}

/// The key of a restore's arguments: its lock's and state file's name.
fn run_key(args: &RestoreArgs) -> String {
    let text = json!({
        "user": args.user, "folder": args.folder, "recursive": args.recursive,
        "message": args.message, "as_of": args.as_of, "into": args.into,
    })
    .to_string();
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("restore-{hex}")
}

/// The state file of the restore `key`, beside back-fill's.
fn state_path(config: &Config, key: &str) -> PathBuf {
    crate::backfill::state_dir(config).join(format!("{key}.json"))
}

/// Runs `bonnie restore`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &RestoreArgs,
) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!(
            "--rate {}: give the messages a second, more than 0",
            args.rate
        );
    }
    let archive = crate::discovery::Archive::open(config)?;
    let selector = match (&args.folder, &args.message) {
        (Some(name), _) => Selector::Folder {
            name: name.trim_matches('/').to_string(),
            recursive: args.recursive,
        },
        (None, Some(id)) => Selector::Message(id.clone()),
        (None, None) => anyhow::bail!("name a --folder or a --message"),
    };
    let key = run_key(args);
    let dir = crate::backfill::state_dir(config);
    let _lock = if args.dry_run {
        None
    } else {
        Some(restoring::lock_mailbox(config, &args.user)?)
    };
    let path = state_path(config, &key);
    let resumed = match crate::backfill::load::<RunState>(&path)? {
        Some(state) if state.finished_ms.is_none() && !args.dry_run => Some(state),
        _ => None,
    };
    // An unfinished run of the same arguments continues at its moment.
    let as_of = match &resumed {
        Some(state) => Some(state.as_of_ms),
        None => archive.moment(args.as_of.as_deref())?,
    };
    // An archive logged before message places were kept has them recorded first, once.
    crate::backfill::place_logged(&archive.storage, &dir)?;
    let snapshot = snapshot(&archive.storage, &args.user, &selector, as_of)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let destination = Destination::parse(args.into.as_deref());
    let state = resumed.unwrap_or_else(|| RunState {
        run: format!("restore-{}", &bonnie_dealer::submit::new_id()[..20]),
        user: args.user.clone(),
        as_of_ms: snapshot.as_of_ms,
        started_ms: now_ms(),
        ..RunState::default()
    });
    let mut state = restoring::start(&snapshot, &destination, state);
    let params = json!({
        "user": args.user, "folder": args.folder, "recursive": args.recursive,
        "message": args.message, "as_of": format_rfc3339_ms(snapshot.as_of_ms),
        "into": args.into, "dry_run": args.dry_run, "run": state.run,
    });
    let total = snapshot.message_count() as u64;
    let started = Instant::now();
    let options = Options {
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let mut work = || -> anyhow::Result<RunState> {
        let mut journal = CliJournal {
            auditor,
            state_path: path.clone(),
            bar: progress_bar(total, args.json),
        };
        let pool = restoring::imap_pool(config)?;
        restoring::execute(
            &archive.storage,
            pool,
            &snapshot,
            &mut state,
            options,
            &mut journal,
        )?;
        journal.bar.finish_and_clear();
        if !args.dry_run {
            state.finished_ms = Some(now_ms());
            journal.keep(&state)?;
        }
        Ok(state.clone())
    };
    let state = if args.dry_run {
        let state = work()?;
        auditor.read("restore", params, state.appended())?;
        state
    } else {
        let state = auditor.change("restore", params, Some(total), work)?;
        auditor.step(
            "restore",
            json!({
                "run": state.run, "user": state.user, "as_of": format_rfc3339_ms(state.as_of_ms),
                "appended": state.appended(), "present": state.present(),
                "refused": state.refused.len(), "bytes": state.bytes,
            }),
            state.appended(),
        )?;
        state
    };
    print_report(
        &snapshot,
        &state,
        started.elapsed(),
        args.dry_run,
        args.json,
    );
    Ok(())
}

/// What `bonnie restore` keeps of a run: its state file, its audit steps, its progress bar.
struct CliJournal<'a, 'b> {
    auditor: &'a crate::audit::Auditor<'b>,
    state_path: PathBuf,
    bar: indicatif::ProgressBar,
}

impl Journal for CliJournal<'_, '_> {
    fn keep(&mut self, state: &RunState) -> anyhow::Result<()> {
        crate::backfill::write_private(&self.state_path, &serde_json::to_vec_pretty(state)?)
    }

    fn step(&mut self, action: &str, params: Value, count: u64) -> anyhow::Result<()> {
        self.auditor.step(action, params, count)
    }

    fn advanced(&mut self) {
        self.bar.inc(1);
    }
}

/// The progress bar of `total` messages, hidden for `--json`.
fn progress_bar(total: u64, json: bool) -> indicatif::ProgressBar {
    // Drawn on stderr when it is a terminal (indicatif hides it otherwise).
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "restore [{bar:30}] {pos}/{len} messages, {eta} left  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// What was (or would be) done, as text or JSON.
fn print_report(snapshot: &Snapshot, state: &RunState, took: Duration, dry_run: bool, json: bool) {
    let seconds = took.as_secs_f64().max(0.001);
    if json {
        let mut value = serde_json::to_value(state).unwrap_or(Value::Null);
        value["dry_run"] = json!(dry_run);
        value["as_of"] = json!(format_rfc3339_ms(snapshot.as_of_ms));
        value["messages"] = json!(snapshot.message_count());
        value["appended_count"] = json!(state.appended());
        value["present_count"] = json!(state.present());
        value["seconds"] = json!(seconds);
        println!("{value}");
        return;
    }
    let verb = if dry_run { "would append" } else { "appended" };
    println!(
        "restore of {} as of {}{}: {} folders, {} messages: {} {verb} ({:.1} MB), {} there already, {} not restored; {:.1} messages/s",
        state.user,
        format_rfc3339_ms(snapshot.as_of_ms),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
        state.folders.len(),
        snapshot.message_count(),
        state.appended(),
        state.bytes as f64 / 1e6,
        state.present(),
        state.refused.len(),
        state.appended() as f64 / seconds,
    );
    for folder in &state.folders {
        let create = match (folder.created, dry_run) {
            (true, true) => " (would be created)",
            (true, false) => " (created)",
            _ => "",
        };
        println!(
            "  {} -> {}{create}: {} messages, {} {verb}, {} there already",
            folder.source,
            folder.target,
            folder.messages,
            folder.appended.len(),
            folder.present
        );
        let source = snapshot.folders.iter().find(|f| f.name == folder.source);
        for appended in &folder.appended {
            let Some(message) = source.and_then(|f| {
                f.messages
                    .iter()
                    .find(|m| m.digest == appended.digest && m.uid == appended.old_uid)
            }) else {
                continue;
            };
            let new_uid = appended
                .new_uid
                .map(|uid| format!(" as UID {uid}"))
                .unwrap_or_default();
            println!(
                "    UID {} ({}){new_uid}: flags ({}), INTERNALDATE {}{}",
                message.uid,
                message.digest,
                message.flags.join(" "),
                format_rfc3339_ms(message.internaldate_ms),
                if message.internaldate_kept {
                    ""
                } else {
                    " (not archived: its arrival)"
                },
            );
        }
        if folder.superseded > 0 {
            println!(
                "    {} older revisions of groupware objects left out (one revision per object)",
                folder.superseded
            );
        }
        for kept in &folder.flags_left_off {
            println!(
                "    UID {}: keywords past Cyrus's {MAX_USER_FLAGS} per folder left off",
                kept.old_uid
            );
        }
    }
    for refused in &state.refused {
        println!(
            "  not restored: {} UID {} ({}): {}",
            refused.folder, refused.old_uid, refused.digest, refused.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_arguments_name_the_same_run() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: RestoreArgs,
        }
        let parse = |extra: &[&str]| {
            let base = ["bonnie", "--user", "john", "--folder", "INBOX"];
            Cli::parse_from(base.iter().chain(extra)).args
        };
        assert_eq!(run_key(&parse(&[])), run_key(&parse(&["--json"])));
        assert_ne!(
            run_key(&parse(&[])),
            run_key(&parse(&["--into", "original"]))
        );
    }
}
