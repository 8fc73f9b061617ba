//! `bonnie export`: the items of a query (every one) or of a case, written for review tools by
//! bonnie-export (EML, mboxrd or a Concordance DAT load file, with a manifest, checksums and
//! the inclusion proof of each item's log leaf against a checkpoint signed for the export), and
//! `bonnie export verify`, the offline check of such an export.
//!
//! Each item's native is read from the payload store one at a time; its leaf is the one the
//! job that first placed it left in the verifiable log (`ledger_jobs` in the broker's job
//! store, read-only, as `bonnie verify` reads it), proven against a checkpoint the broker signs
//! when the export begins. An item that cannot be exported (its payload purged, no leaf naming
//! it within the checkpoint) is an exception in the manifest, never left out.
//!
//! A rerun with the same arguments continues an interrupted export: the list of items is
//! frozen in the export's state folder on the first run and the checkpoint kept in the export,
//! so the rerun takes both from there, whatever the archive holds by then.

use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use bonnie_core::{Config, protocol::AdminRequest};
use bonnie_discovery::{
    config::DiscoveryConfig,
    item::{Item, Place},
    search::SearchOptions,
};
use bonnie_export::{
    Attachment, Envelope, Exception, ExportHeader, ExportItem, Format, ItemMeta, Options, Progress,
    Summary,
};
use bonnie_ledger::{ArchiveKey, Checkpoint, LeafData, PublicKey, SqliteStore, merkle};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use serde_json::{Value, json};

use crate::discovery::Archive;

/// `bonnie export`'s arguments.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    command: Option<ExportCommand>,
    /// The query whose items are exported, every one (`bonnie export -- verify` for a query
    /// of the bare word verify)
    #[arg(
        required_unless_present = "case",
        conflicts_with = "case",
        allow_hyphen_values = true
    )]
    query: Option<String>,
    /// Export the case's items instead: frozen now as a new export of the case (`bonnie case
    /// show` lists them), or the list of `--frozen`
    #[arg(long, value_name = "CASE")]
    case: Option<String>,
    /// With --case: export again the items frozen for this export of the case (e1, e2...),
    /// whatever the archive holds now
    #[arg(long, value_name = "EXPORT", requires = "case")]
    frozen: Option<String>,
    /// eml: one file per message, its archived bytes; mbox: mboxrd; dat: a Concordance /
    /// Relativity load file with natives, text and attachments as family members
    #[arg(long, value_enum, required = true)]
    format: Option<FormatArg>,
    /// The folder to export into: missing or empty, or an unfinished export of the same
    /// arguments, which is continued
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// The items and their folders as the mailboxes stood then: a date or a time
    /// ([discovery] time_zone unless it has an offset)
    #[arg(long, value_name = "WHEN")]
    as_of: Option<String>,
    /// Where a part's natives (or mbox file) stop growing: bytes, or with K, M, G or T
    /// (powers of 1024)
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = part_size)]
    part_size: u64,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum ExportCommand {
    /// Check an export offline: every file's checksum, every native against its log leaf,
    /// every inclusion proof, the checkpoint's signature; exit 1 naming each finding
    Verify {
        /// The export's folder
        dir: PathBuf,
        /// The archive's public key file (`<name>+<id>+<key>`, as `bonnie ledger init` wrote
        /// it), from the archive's operator; without it the export's own key is used, which
        /// shows the export is whole but not who made it
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `--format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Eml,
    Mbox,
    Dat,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Eml => Format::Eml,
            FormatArg::Mbox => Format::Mbox,
            FormatArg::Dat => Format::Dat,
        }
    }
}

/// `--part-size`: bytes, or a number with K, M, G or T (binary multiples).
fn part_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let shift = match unit.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: the unit is K, M, G or T")),
            };
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (4G, 500M, 1048576)"))?;
    match number.checked_mul(1 << shift) {
        Some(0) => Err("a part size of 0 bytes".to_string()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

/// Runs `bonnie export` or `bonnie export verify`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &ExportArgs,
) -> anyhow::Result<()> {
    if let Some(ExportCommand::Verify { dir, key, json }) = &args.command {
        return verify(Some(auditor), dir, key.as_deref(), *json);
    }
    let (Some(format), Some(out)) = (args.format, args.out.as_deref()) else {
        bail!("bonnie export needs --format and --out");
    };
    let archive = Archive::open(config)?;
    let zone_name = DiscoveryConfig::from_table(&config.discovery)
        .with_context(|| format!("in {}", config.path.display()))?
        .time_zone;
    let as_of = archive.moment(args.as_of.as_deref())?;
    let asked = match (&args.query, &args.case) {
        (Some(text), None) => json!({ "query": archive.parse(text)?.to_string(), "as_of": as_of }),
        (None, Some(case)) => json!({ "case": case, "as_of": as_of, "export": args.frozen }),
        _ => bail!("give a query or --case, not both"),
    };
    let options = Options {
        part_bytes: args.part_size,
        ..Options::new(format.into())
    };
    let frozen = bonnie_export::frozen_list(out)?;
    if let Some(frozen) = &frozen
        && !same_export(&frozen.of, &asked)
    {
        bail!(
            "{} holds an unfinished export of {}, not of {asked}: rerun it with its own \
             arguments, or export into another folder",
            out.display(),
            frozen.of
        );
    }
    // The first run's items, from the search or the case's freeze; a rerun's, from the list
    // it froze in the export.
    let was_frozen = frozen.is_some();
    let (digests, mut found, done, of) = match frozen {
        Some(frozen) => (frozen.digests, Vec::new(), frozen.done, frozen.of),
        None => {
            let (digests, items, of) = first_items(&archive, auditor, args, as_of, asked)?;
            (digests, items, 0, of)
        }
    };
    let of_value: Value = serde_json::from_str(&of).unwrap_or(Value::Null);
    let case_export = of_value["case"]
        .as_str()
        .zip(of_value["export"].as_str())
        .map(|(case, id)| (case.to_string(), id.to_string()));
    let query_text = match (&args.query, &case_export) {
        (Some(text), _) => text.clone(),
        (None, Some((case, id))) => format!("case {case} export {id}"),
        (None, None) => bail!("the export in {} names no case export", out.display()),
    };
    let params = json!({
        "query": args.query,
        "case": args.case,
        "case_export": case_export.as_ref().map(|(_, id)| id),
        "as_of": args.as_of,
        "format": Format::from(format).name(),
        "out": out,
        "resumed": done > 0,
    });
    let count = digests.len() as u64;
    auditor.change("export", params, Some(count), || {
        let log = Log::open(config)?;
        let key = archive_public_key(config)?;
        let note = checkpoint_note(out, auditor.broker())?;
        let checkpoint = Checkpoint::open(&note, &key)
            .with_context(|| format!("the checkpoint of {}", out.display()))?;
        let items = if was_frozen {
            bonnie_export::ItemList::of(digests.iter().map(String::as_str))
        } else {
            bonnie_export::freeze_list(out, &of, &digests)?
        };
        let header = ExportHeader {
            query: query_text.clone(),
            case: args.case.clone(),
            zone: zone_name.clone(),
            created_ms: bonnie_core::time::now_ms(),
            checkpoint_note: note.clone(),
            public_key: key.to_string(),
            items,
        };
        // Taken from the end, one at a time, each dropped once exported.
        found.reverse();
        let exporter = Exporter {
            archive: &archive,
            log: &log,
            checkpoint: &checkpoint,
            as_of,
            format: Format::from(format),
        };
        let prepared = digests.iter().enumerate().map(|(index, digest)| {
            if (index as u64) < done {
                return Err(Exception {
                    digest: digest.clone(),
                    docid: None,
                    reason: "done by an earlier run".to_string(),
                });
            }
            let item = match found.pop() {
                Some(item) => Ok(item),
                None => archive.item(digest),
            };
            exporter.item(digest, item)
        });
        let bar = progress_bar(count, done, args.json);
        let summary = bonnie_export::export(out, &header, &options, prepared, &mut |p| {
            show_progress(&bar, p)
        })?;
        bar.finish_and_clear();
        if let Some((case, id)) = &case_export {
            crate::cases::exported(
                &archive.storage,
                case,
                id,
                options.format.name(),
                &out.to_string_lossy(),
            )?;
        }
        print_summary(out, &options, &checkpoint, &summary, args.json);
        Ok(())
    })
}

/// Whether an unfinished export begun for `stored` (its frozen list's `of`) is the one now
/// `asked` for: the same query or case and moment, and the same case export when one is
/// named (a case's first run names none: its freeze chose the id).
fn same_export(stored: &str, asked: &Value) -> bool {
    let Ok(mut stored) = serde_json::from_str::<Value>(stored) else {
        return false;
    };
    let mut asked = asked.clone();
    let (stored_id, asked_id) = match (stored.as_object_mut(), asked.as_object_mut()) {
        (Some(stored), Some(asked)) => (stored.remove("export"), asked.remove("export")),
        _ => return false,
    };
    let id_agrees = match asked_id {
        Some(Value::String(id)) => stored_id == Some(Value::String(id)),
        _ => true,
    };
    stored == asked && id_agrees
}

/// The digests of a first run's items in export order, those of them found already (the
/// first ones), and what the export is of (its frozen list's `of`): the query's items, every
/// one; a case's, frozen now as a new export of the case; or a case export's frozen list
/// again, in date order as its first export took it (any the archive no longer has an item
/// document for last: they are looked up again in turn and excepted).
fn first_items(
    archive: &Archive,
    auditor: &crate::audit::Auditor<'_>,
    args: &ExportArgs,
    as_of: Option<i64>,
    mut asked: Value,
) -> anyhow::Result<(Vec<String>, Vec<Item>, String)> {
    let items = match (&args.query, &args.case, &args.frozen) {
        (Some(text), _, _) => {
            let options = SearchOptions {
                as_of,
                limit: None,
                descending: false,
            };
            archive.search(&archive.parse(text)?, &options)?
        }
        (None, Some(case), None) => {
            let params = json!({ "case": case, "as_of": args.as_of, "for": "export" });
            let (items, list) =
                crate::cases::audited_freeze(archive, auditor, case, as_of, params)?;
            asked["export"] = Value::String(list.id);
            items
        }
        (None, Some(case), Some(id)) => {
            let list = crate::cases::frozen(&archive.storage, case, id)?;
            let (mut items, mut unresolved) = (Vec::new(), Vec::new());
            for digest in list.digests {
                match archive.item(&digest) {
                    Ok(item) => items.push(item),
                    Err(_) => unresolved.push(digest),
                }
            }
            items.sort_by(|a, b| {
                (a.doc.date_ms, &a.doc.digest).cmp(&(b.doc.date_ms, &b.doc.digest))
            });
            // Last, each looked up again when its turn comes, and excepted with why.
            let mut digests: Vec<String> = items.iter().map(|i| i.doc.digest.clone()).collect();
            digests.extend(unresolved);
            return Ok((digests, items, asked.to_string()));
        }
        (None, None, _) => bail!("give a query or --case"),
    };
    let digests = items.iter().map(|i| i.doc.digest.clone()).collect();
    Ok((digests, items, asked.to_string()))
}

/// The checkpoint an export's proofs lead to: the one it was begun with when it is a rerun,
/// else one the broker signs now (every item found so far has its leaf in it).
fn checkpoint_note(out: &Path, broker: &bonnie_api::admin::Admin) -> anyhow::Result<String> {
    let kept = out.join("checkpoint.txt");
    match std::fs::read_to_string(&kept) {
        Ok(note) => return Ok(note),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", kept.display())),
    }
    let made = broker
        .ask(&AdminRequest::Checkpoint)
        .context("the broker signs no checkpoint for the export")?;
    made["note"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the broker's checkpoint has no note: {made}"))
}

/// The archive's public key: `<signing key>.pub`, else the signing key's own.
fn archive_public_key(config: &Config) -> anyhow::Result<PublicKey> {
    let Some(path) = &config.ledger.signing_key else {
        bail!(
            "an export proves its items against a signed checkpoint: set [ledger] signing_key \
             (bonnie ledger init) in {}",
            config.path.display()
        );
    };
    let public = crate::verify::public_key_path(path);
    if let Ok(text) = std::fs::read_to_string(&public) {
        return PublicKey::parse(&text)
            .with_context(|| format!("the public key {}", public.display()));
    }
    Ok(ArchiveKey::read(path)
        .with_context(|| format!("cannot read the archive's key {}", path.display()))?
        .public())
}

/// The verifiable log in the broker's job store, read-only.
struct Log {
    conn: Connection,
    path: PathBuf,
}

impl Log {
    fn open(config: &Config) -> anyhow::Result<Log> {
        let path = config.broker.database.clone();
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| {
                format!(
                    "cannot open the job store {} to read the log",
                    path.display()
                )
            })?;
        Ok(Log { conn, path })
    }

    /// The leaf of job `job` that names payload `digest`, and its sequence number; why not,
    /// when it has none within the first `size` leaves.
    fn leaf_naming(
        &self,
        job: &str,
        digest: &str,
        size: u64,
    ) -> anyhow::Result<Result<(u64, Vec<u8>), String>> {
        let context = || format!("reading the log in {}", self.path.display());
        let first: Option<i64> = self
            .conn
            .query_row("SELECT seq FROM ledger_jobs WHERE id = ?1", [job], |row| {
                row.get(0)
            })
            .optional()
            .with_context(context)?;
        let Some(first) = first else {
            return Ok(Err(format!("job {job}, which placed it, has no log leaf")));
        };
        let wanted = bonnie_core::ledger::from_hex(digest);
        let mut seq = first as u64;
        loop {
            if seq >= size {
                return Ok(Err(format!(
                    "the log leaf of job {job} (from {first}) is not within checkpoint {size}"
                )));
            }
            let bytes: Option<Vec<u8>> = self
                .conn
                .query_row(
                    "SELECT data FROM ledger_leaves WHERE seq = ?1",
                    [seq as i64],
                    |row| row.get(0),
                )
                .optional()
                .with_context(context)?;
            let Some(bytes) = bytes else {
                return Ok(Err(format!("log leaf {seq} of job {job} is missing")));
            };
            let leaf = LeafData::decode(&bytes)
                .map_err(|e| anyhow::anyhow!("log leaf {seq}: {e}"))
                .with_context(context)?;
            if leaf.entry.id != job {
                return Ok(Err(format!("no log leaf of job {job} names its payload")));
            }
            if wanted.is_some_and(|w| leaf.entry.payload_digests.contains(&w)) {
                return Ok(Ok((seq, bytes)));
            }
            seq += 1;
        }
    }

    fn proof(&self, seq: u64, size: u64) -> anyhow::Result<Vec<bonnie_ledger::Hash>> {
        merkle::inclusion_proof(&SqliteStore::new(&self.conn), seq, size).with_context(|| {
            format!(
                "the inclusion proof of leaf {seq} in checkpoint {size} ({})",
                self.path.display()
            )
        })
    }
}

/// What every item is read with.
struct Exporter<'a> {
    archive: &'a Archive,
    log: &'a Log,
    checkpoint: &'a Checkpoint,
    as_of: Option<i64>,
    format: Format,
}

impl Exporter<'_> {
    /// Item `digest` as the export takes it, or why it cannot be exported.
    fn item(&self, digest: &str, item: anyhow::Result<Item>) -> Result<ExportItem, Exception> {
        let except = |reason: String| Exception {
            digest: digest.to_string(),
            docid: None,
            reason,
        };
        let item = item.map_err(|e| except(format!("{e:#}")))?;
        let (log_seq, leaf) = self.leaf(&item).map_err(except)?;
        let proof = self
            .log
            .proof(log_seq, self.checkpoint.size)
            .map_err(|e| except(format!("{e:#}")))?;
        let bytes = self
            .archive
            .storage
            .get_payload(digest)
            .map_err(|e| except(format!("reading its payload: {e}")))?
            .ok_or_else(|| {
                except("its payload is gone from the payload store (purged?)".to_string())
            })?;
        let meta = self.meta(&item, log_seq, leaf, proof);
        let (text, attachments) = match self.format {
            Format::Dat => family(&bytes),
            Format::Eml | Format::Mbox => (String::new(), Vec::new()),
        };
        Ok(ExportItem {
            text,
            attachments,
            ..ExportItem::from_bytes(meta, bytes)
        })
    }

    /// The leaf of the job that first placed the item (the next place's when that one names
    /// no such payload), within the checkpoint.
    fn leaf(&self, item: &Item) -> Result<(u64, Vec<u8>), String> {
        let mut places: Vec<_> = item.state.places.iter().collect();
        places.sort_by_key(|p| p.from_ms);
        let mut first_reason = None;
        for place in places {
            match self
                .log
                .leaf_naming(&place.job, &item.doc.digest, self.checkpoint.size)
            {
                Ok(Ok(found)) => return Ok(found),
                Ok(Err(reason)) => {
                    first_reason.get_or_insert(reason);
                }
                Err(e) => return Err(format!("{e:#}")),
            }
        }
        Err(first_reason.unwrap_or_else(|| "no log record places it in a folder".to_string()))
    }

    fn meta(
        &self,
        item: &Item,
        log_seq: u64,
        leaf: Vec<u8>,
        proof: Vec<bonnie_ledger::Hash>,
    ) -> ItemMeta {
        let doc = &item.doc;
        let state = &item.state;
        // The places it had come to by the moment exported (all of them when now).
        let places: Vec<&Place> = state
            .places
            .iter()
            .filter(|p| self.as_of.is_none_or(|t| p.from_ms <= t))
            .collect();
        let first = places.iter().min_by_key(|p| p.from_ms);
        let custodian = first.map(|p| p.user.clone()).unwrap_or_default();
        let mut folders: Vec<String> = Vec::new();
        for place in &places {
            for name in place.folder_names() {
                let shown = if place.user == custodian {
                    name.to_string()
                } else {
                    format!("{}: {name}", place.user)
                };
                if !folders.contains(&shown) {
                    folders.push(shown);
                }
            }
        }
        let deleted_ms = state.deleted_at(self.as_of);
        ItemMeta {
            digest: doc.digest.clone(),
            custodian,
            folders,
            sent_ms: Some(doc.date_ms),
            received_ms: state.first_seen_ms(),
            envelope: Envelope {
                from: doc.from.clone(),
                to: doc.to.clone(),
                cc: doc.cc.clone(),
                bcc: doc.bcc.clone(),
                subject: doc.subject.clone(),
                message_id: doc
                    .message_id
                    .as_deref()
                    .map(|id| id.trim_start_matches('<').trim_end_matches('>').to_string()),
            },
            size: doc.size,
            kind: serde_json::to_value(doc.item_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            deleted: deleted_ms.is_some(),
            deleted_ms,
            backfilled: first.is_some_and(|p| p.backfilled),
            log_seq,
            leaf,
            proof,
        }
    }
}

/// A message's extracted text (its bodies, then its attachments' text) and its attachments,
/// as bonnie-mail reads them: the load file's family.
fn family(bytes: &[u8]) -> (String, Vec<Attachment>) {
    let (message, contents) = bonnie_mail::parse_with_attachments(bytes);
    let mut text: Vec<&str> = message.bodies.iter().map(|b| b.text.as_str()).collect();
    text.extend(message.attachments.iter().filter_map(|a| a.text.as_deref()));
    let attachments = message
        .attachments
        .iter()
        .zip(contents)
        .map(|(found, bytes)| Attachment {
            name: found
                .name
                .clone()
                .unwrap_or_else(|| format!("part-{}", found.part)),
            bytes,
            text: found.text.clone().unwrap_or_default(),
        })
        .collect();
    (text.join("\n\n"), attachments)
}

/// The progress bar on standard error, when it is a terminal and no JSON is asked for.
fn progress_bar(total: u64, done: u64, json: bool) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() && !json {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "export [{bar:30}] {pos}/{len} items, {per_sec}, {eta} left  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_position(done);
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, progress: &Progress) {
    bar.set_position(progress.done);
    let mut message = format!("{} written", indicatif::HumanBytes(progress.bytes));
    if progress.exceptions > 0 {
        message.push_str(&format!(", {} exceptions", progress.exceptions));
    }
    bar.set_message(message);
}

fn print_summary(
    out: &Path,
    options: &Options,
    checkpoint: &Checkpoint,
    summary: &Summary,
    json_out: bool,
) {
    if json_out {
        println!(
            "{}",
            json!({
                "out": out,
                "format": options.format.name(),
                "exported": summary.exported,
                "exceptions": summary.exceptions,
                "resumed_after": summary.resumed_after,
                "parts": summary.parts,
                "bytes": summary.bytes,
                "checkpoint": { "origin": checkpoint.origin, "size": checkpoint.size },
            })
        );
        return;
    }
    let resumed = if summary.resumed_after > 0 {
        format!(
            " (continued after the {} items of an earlier run)",
            summary.resumed_after
        )
    } else {
        String::new()
    };
    println!(
        "Exported {} items ({} bytes in {} part(s)) as {} to {}{resumed}, proven against \
         checkpoint {}/{}.",
        summary.exported,
        summary.bytes,
        summary.parts,
        options.format.name(),
        out.display(),
        checkpoint.origin,
        checkpoint.size
    );
    if summary.exceptions > 0 {
        println!(
            "{} item(s) could not be exported: see the exceptions in {}.",
            summary.exceptions,
            out.join("manifest.json").display()
        );
    }
}

/// `bonnie export verify`.
/// `bonnie export verify` where there is no configuration to find the broker by (a reviewer's
/// machine): the same check, said to be unaudited. `None` when `args` is not a verify.
pub fn verify_without_config(args: &ExportArgs, why: &anyhow::Error) -> Option<anyhow::Result<()>> {
    let Some(ExportCommand::Verify { dir, key, json }) = &args.command else {
        return None;
    };
    eprintln!("bonnie: this `bonnie export verify` is not audited: {why:#}.");
    Some(verify(None, dir, key.as_deref(), *json))
}

fn verify(
    auditor: Option<&crate::audit::Auditor<'_>>,
    dir: &Path,
    key: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<()> {
    let key_text = key
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the public key {}", path.display()))
        })
        .transpose()?;
    let report = bonnie_export::verify(dir, key_text.as_deref())?;
    let outcome = (!report.is_clean()).then(|| {
        format!(
            "{} finding(s), the first: {}",
            report.findings.len(),
            report.findings[0].message
        )
    });
    if let Some(auditor) = auditor {
        auditor.read_offline(
            "export verify",
            json!({ "dir": dir, "key": key }),
            report.items,
            outcome,
        );
    }
    if json_out {
        println!("{}", serde_json::to_value(&report).unwrap_or(Value::Null));
    } else {
        for finding in &report.findings {
            let at: Vec<&str> = [finding.path.as_deref(), finding.docid.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            println!("{}: {}", at.join(" "), finding.message);
        }
        let key_said = match report.key {
            bonnie_export::KeyTrust::Given => "the key given".to_string(),
            bonnie_export::KeyTrust::SelfAsserted => {
                "the export's own key (it shows the export is whole, not who made it: give \
                 --key the archive's public key from its operator)"
                    .to_string()
            }
        };
        if report.is_clean() {
            println!(
                "{}: {} files and {} items verify against checkpoint {} signed with {key_said}.",
                dir.display(),
                report.files,
                report.items,
                report
                    .checkpoint_size
                    .map_or("?".to_string(), |s| s.to_string()),
            );
        }
    }
    if !report.is_clean() {
        bail!(
            "the export in {} does not verify: {} finding{}",
            dir.display(),
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_are_bytes_or_binary_multiples() {
        assert_eq!(part_size("4G"), Ok(4 << 30));
        assert_eq!(part_size("500m"), Ok(500 << 20));
        assert_eq!(part_size("1048576"), Ok(1 << 20));
        assert!(part_size("0").is_err());
        assert!(part_size("4X").is_err());
        assert!(part_size("G").is_err());
        assert!(part_size("99999999999T").is_err());
    }

    #[test]
    fn a_rerun_continues_only_the_export_it_names() {
        let query = json!({ "query": "from:jane", "as_of": null });
        assert!(same_export(&query.to_string(), &query));
        let other = json!({ "query": "from:john", "as_of": null });
        assert!(!same_export(&query.to_string(), &other));
        let frozen = json!({ "case": "review", "as_of": null, "export": "e1" }).to_string();
        assert!(same_export(
            &frozen,
            &json!({ "case": "review", "as_of": null, "export": null })
        ));
        assert!(same_export(
            &frozen,
            &json!({ "case": "review", "as_of": null, "export": "e1" })
        ));
        assert!(!same_export(
            &frozen,
            &json!({ "case": "review", "as_of": null, "export": "e2" })
        ));
        assert!(!same_export(
            &frozen,
            &json!({ "case": "review", "as_of": 5, "export": null })
        ));
        assert!(!same_export("not json", &query));
    }
}
