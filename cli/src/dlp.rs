//! `bonnie dlp check`: the DLP rules evaluated on one message or text file, each hit explained
//! (the rule, the masked match, its confidence, the keywords near it), for writing rules. A
//! message is read by bonnie-mail into its subject, bodies and attachment texts; any other
//! file is one body part. The rules are `--rules`, else the configuration's `[plugins.dlp]
//! rules`, else the shipped ones. The exit status says whether a rule fired, so scripts can
//! use it.
//!
//! `bonnie dlp incidents`: the incidents the DLP handler recorded, read from the storage
//! (`dlp-incidents`). `bonnie dlp scan`: the rules run over what is archived already (the log
//! entries of a time range, their messages read from the payload store exactly as the handler
//! reads them), to find what was there before a rule existed; it reports, and records nothing.
//! Both are admin reads, audited.

use std::{
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::Context as _;
use bonnie_core::Config;
use bonnie_dlp::{EventKind, PartKind, RuleHit, RuleSet, ScanInput, ScanPart, message_parts};
use bonnie_dlp_archive::{config::PluginConfig, incidents, scan};
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use serde_json::{Value, json};

use crate::trace::parse_since;

/// The exit status when no rule fires.
const NO_HIT: u8 = 0;
/// The exit status when a rule fires.
const HIT: u8 = 1;
/// The exit status on an error (an unreadable file, a bad rule file or configuration).
const ERROR: u8 = 2;

/// `bonnie dlp ...`
#[derive(Debug, clap::Subcommand)]
pub enum DlpCommand {
    /// Evaluates the DLP rules on a message (.eml) or a text file and explains which rule fired
    /// and why: the match (masked), its confidence and the supporting keywords near it
    #[command(
        after_help = "Exit status: 0 when no rule fires, 1 when a rule fires, 2 on an error."
    )]
    Check {
        /// A rule file, or a folder whose *.toml files are read in name order [default:
        /// [plugins.dlp] rules of the configuration, else the shipped rules]
        #[arg(long, value_name = "FILE-OR-FOLDER")]
        rules: Option<PathBuf>,
        /// Print the hits as one JSON array
        #[arg(long)]
        json: bool,
        /// The message (an .eml file, or any file that starts with a header) or text file
        file: PathBuf,
    },
    /// The incidents the DLP handler recorded, oldest first: time, rule, severity, user,
    /// folder, item and the masked matches
    Incidents {
        /// Only incidents at or after this: an RFC 3339 instant, a date, or a span before now
        /// such as 24h or 7d
        #[arg(long)]
        since: Option<String>,
        /// Only incidents before this (the same forms)
        #[arg(long)]
        until: Option<String>,
        /// Only this rule's
        #[arg(long)]
        rule: Option<String>,
        /// Only this user's (the IMAP login)
        #[arg(long)]
        user: Option<String>,
        /// Print them as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// Runs DLP rules over what is archived: the messages and ACL changes of the log entries in
    /// a time range, read as the DLP handler reads them; reports the hits, records nothing
    Scan {
        /// A rule file, or a folder whose *.toml files are read in name order [default:
        /// [plugins.dlp] rules of the configuration, else the shipped rules]
        #[arg(long, value_name = "FILE-OR-FOLDER")]
        rules: Option<PathBuf>,
        /// Only entries at or after this: an RFC 3339 instant, a date, or a span before now
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this (the same forms)
        #[arg(long)]
        until: Option<String>,
        /// Only this user's entries (the IMAP login)
        #[arg(long)]
        user: Option<String>,
        /// Print the hits as one JSON array
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `bonnie dlp` command; `config` is `--config`.
pub fn run(config: Option<&Path>, command: &DlpCommand) -> ExitCode {
    match command {
        DlpCommand::Check { rules, json, file } => match check(config, rules.as_deref(), file) {
            Ok((hits, _)) if *json => {
                println!("{}", serde_json::to_string(&hits).unwrap_or_default());
                ExitCode::from(if hits.is_empty() { NO_HIT } else { HIT })
            }
            Ok((hits, origin)) => {
                print!("{}", render(file, &origin, &hits));
                ExitCode::from(if hits.is_empty() { NO_HIT } else { HIT })
            }
            Err(e) => {
                eprintln!("bonnie: {e:#}");
                ExitCode::from(ERROR)
            }
        },
        DlpCommand::Incidents { .. } | DlpCommand::Scan { .. } => {
            unreachable!("admin reads run with the configuration and the broker, by `admin`")
        }
    }
}

/// The `[plugins.dlp]` table of the configuration: the named one (`--config`,
/// `$BONNIE_CONFIG`) must be read; the default path only when it exists.
fn dlp_config(explicit: Option<&Path>) -> anyhow::Result<(PluginConfig, PathBuf)> {
    let named =
        explicit.is_some() || std::env::var_os("BONNIE_CONFIG").is_some_and(|v| !v.is_empty());
    let path = Config::locate(explicit);
    if !named && !path.exists() {
        let defaults = PluginConfig::from_table(&toml::Table::new())?;
        return Ok((defaults, PathBuf::from(".")));
    }
    let config = Config::load(&path)?;
    plugin_config(&config)
}

/// `[plugins.dlp]` of a loaded configuration, and the folder its paths start from.
fn plugin_config(config: &Config) -> anyhow::Result<(PluginConfig, PathBuf)> {
    let table = config.plugins.get("dlp").cloned().unwrap_or_default();
    let dlp = PluginConfig::from_table(&table)
        .with_context(|| format!("in {}", config.path.display()))?;
    let dir = config
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok((dlp, dir))
}

/// The rule set `--rules` names, else the configuration's, and where it came from.
fn rule_set(
    dlp: &PluginConfig,
    config_dir: &Path,
    rules: Option<&Path>,
) -> anyhow::Result<(RuleSet, String)> {
    Ok(
        match rules
            .map(Path::to_path_buf)
            .or_else(|| dlp.rules.rules_path(config_dir))
        {
            Some(path) => (
                RuleSet::load(&path, &dlp.rules.settings())?,
                path.display().to_string(),
            ),
            None => (dlp.rule_set(config_dir)?, "the shipped rules".to_string()),
        },
    )
}

/// The hits of the rules on `file`, and where the rules came from.
fn check(
    explicit_config: Option<&Path>,
    rules: Option<&Path>,
    file: &Path,
) -> anyhow::Result<(Vec<RuleHit>, String)> {
    let (dlp, config_dir) = dlp_config(explicit_config)?;
    let (set, origin) = rule_set(&dlp, &config_dir, rules)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let hits = if is_message(file, &bytes) {
        let message = bonnie_mail::parse(&bytes);
        let mut input = ScanInput::new(EventKind::Append);
        input.parts = message_parts(&message);
        set.evaluate(&input)
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let mut input = ScanInput::new(EventKind::Append);
        input.parts = vec![ScanPart::new(PartKind::Body, "text", &text)];
        set.evaluate(&input)
    };
    Ok((hits, origin))
}

/// True for an `.eml` file, or one whose first line is a header field (`Name: value`).
fn is_message(file: &Path, bytes: &[u8]) -> bool {
    if file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("eml"))
    {
        return true;
    }
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

/// The hits as text: one paragraph a rule.
fn render(file: &Path, origin: &str, hits: &[RuleHit]) -> String {
    let mut out = String::new();
    if hits.is_empty() {
        out.push_str(&format!("{}: no rule fired ({origin}).\n", file.display()));
        return out;
    }
    out.push_str(&format!(
        "{}: {} rule(s) fired ({origin}).\n",
        file.display(),
        hits.len()
    ));
    for hit in hits {
        out.push_str(&format!(
            "\nRule {:?} (severity {}): {} value(s), best confidence {} ({})\n",
            hit.rule,
            hit.severity,
            hit.count,
            hit.confidence.0,
            hit.confidence.level()
        ));
        for m in &hit.matches {
            let label = m
                .label
                .as_ref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{label} in {}: {}  confidence {} ({}), {} time(s)\n",
                m.detector, m.part, m.excerpt, m.confidence.0, m.level, m.count
            ));
            for k in &m.keywords {
                out.push_str(&format!(
                    "    keyword {:?} {} character(s) away\n",
                    k.keyword, k.distance
                ));
            }
        }
        if hit.count > hit.matches.len() {
            out.push_str(&format!(
                "  ...and {} more\n",
                hit.count - hit.matches.len()
            ));
        }
        if !hit.truncated_parts.is_empty() {
            out.push_str(&format!(
                "  scanned in part only (longer than the scan limit): {}\n",
                hit.truncated_parts.join(", ")
            ));
        }
        let actions: Vec<String> = hit
            .actions
            .iter()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect();
        out.push_str(&format!("  actions: {}\n", actions.join(", ")));
    }
    out
}

/// Runs `bonnie dlp incidents` or `bonnie dlp scan` (an admin read, audited).
pub fn admin(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    command: &DlpCommand,
) -> anyhow::Result<()> {
    let time = |text: &Option<String>| -> anyhow::Result<Option<i64>> {
        Ok(text
            .as_deref()
            .map(parse_since)
            .transpose()?
            .map(|t| t.as_millisecond()))
    };
    let open = || -> anyhow::Result<StorageClient> {
        let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
        Ok(StorageClient::new(storage))
    };
    match command {
        DlpCommand::Check { .. } => unreachable!("run by main, before the configuration is loaded"),
        DlpCommand::Incidents {
            since,
            until,
            rule,
            user,
            json,
        } => {
            let filter = incidents::Filter {
                since_ms: time(since)?,
                until_ms: time(until)?,
                rule: rule.clone(),
                user: user.clone(),
            };
            let found =
                incidents::query(&open()?, &filter).context("cannot read the DLP incidents")?;
            let params = json!({ "since": since, "until": until, "rule": rule, "user": user });
            auditor.read("dlp incidents", params, found.len() as u64)?;
            print_incidents(&found, *json, "No DLP incident found.");
            Ok(())
        }
        DlpCommand::Scan {
            rules,
            since,
            until,
            user,
            json,
        } => {
            let (dlp, config_dir) = plugin_config(config)?;
            let (set, _) = rule_set(&dlp, &config_dir, rules.as_deref())?;
            let range = (time(since)?, time(until)?);
            let hits = scan_archive(&open()?, &set, range, user.as_deref())?;
            let params = json!({ "rules": rules, "since": since, "until": until, "user": user });
            auditor.read("dlp scan", params, hits.len() as u64)?;
            print_incidents(&hits, *json, "No rule fired on the archived entries.");
            Ok(())
        }
    }
}

/// Log entries read per query.
const PAGE: u32 = 500;

/// The hits of `rules` on the log entries of `range` (ms, either end open) of `user` (any
/// when `None`), as incidents with their event's fields; a progress line on a terminal.
fn scan_archive(
    storage: &StorageClient,
    rules: &RuleSet,
    (since_ms, until_ms): (Option<i64>, Option<i64>),
    user: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let progress = std::io::stderr().is_terminal();
    let started = since_ms.unwrap_or(0);
    let ends = until_ms.unwrap_or_else(bonnie_core::time::now_ms);
    let mut hits = Vec::new();
    let (mut from_ms, mut seen_at_from): (Option<i64>, Vec<String>) = (since_ms, Vec::new());
    let (mut read, mut limit) = (0u64, PAGE);
    loop {
        let query = RecordQuery {
            collection: "log".to_string(),
            from_ms,
            to_ms: until_ms,
            limit,
            ..RecordQuery::default()
        };
        let page = storage.query(&query).context("cannot read the log")?;
        let full = page.len() as u32 == limit;
        let last_ms = page.last().and_then(|r| r.time_ms.into_option());
        // A page of one instant only: a larger page, or the next would be the same.
        if full && last_ms.is_some() && last_ms == from_ms {
            limit *= 2;
            continue;
        }
        for entry in &page {
            if from_ms.is_some()
                && entry.time_ms.into_option() == from_ms
                && seen_at_from.contains(&entry.key.to_string())
            {
                continue;
            }
            read += 1;
            let Ok(Value::Object(record)) = entry.json() else {
                continue;
            };
            if user.is_some_and(|u| record.get("user").and_then(Value::as_str) != Some(u)) {
                continue;
            }
            hits.extend(scan_entry(storage, rules, entry.key.as_str(), &record)?);
        }
        if progress {
            let at = last_ms.unwrap_or(ends);
            let share = (at - started) as f64 / (ends - started).max(1) as f64;
            eprint!(
                "\rbonnie dlp scan: {:>3.0}% of the range, {read} entries read, {} hits",
                (share * 100.0).clamp(0.0, 100.0),
                hits.len()
            );
            let _ = std::io::stderr().flush();
        }
        if !full {
            break;
        }
        if last_ms.is_none() {
            let key = page.last().map(|r| r.key.to_string()).unwrap_or_default();
            anyhow::bail!("log entry {key} has no time, so the log cannot be read page by page");
        }
        seen_at_from = page
            .iter()
            .filter(|r| r.time_ms.into_option() == last_ms)
            .map(|r| r.key.to_string())
            .collect();
        from_ms = last_ms;
        limit = PAGE;
    }
    if progress {
        eprintln!();
    }
    Ok(hits)
}

/// The hits of `rules` on one log entry, as the handler would have recorded them.
fn scan_entry(
    storage: &StorageClient,
    rules: &RuleSet,
    job: &str,
    record: &bonnie_model::record::Object,
) -> anyhow::Result<Vec<Value>> {
    let Some(kind) = scan::event_kind(record) else {
        return Ok(Vec::new());
    };
    let acl = scan::own_acl(record);
    let mut hits = Vec::new();
    if kind == EventKind::Acl {
        let owner_groups = scan::owner_groups(storage, record)
            .with_context(|| format!("cannot read the folder owner's groups of log entry {job}"))?;
        hits.extend(
            scan::evaluate(rules, record, acl, &owner_groups, None)
                .into_iter()
                .map(|h| (None, h)),
        );
    } else if let Some(messages) = bonnie_dlp_archive::read_messages(storage, record)
        .with_context(|| format!("cannot read the messages of log entry {job}"))?
    {
        for message in &messages {
            hits.extend(
                scan::evaluate(rules, record, acl, &[], Some(message))
                    .into_iter()
                    .map(|h| (message.uid, h)),
            );
        }
    }
    Ok(hits
        .iter()
        .enumerate()
        .map(|(n, (uid, hit))| incidents::derived(record, job, &incidents::incident(n, *uid, hit)))
        .collect())
}

/// Incidents as one JSON array, or as a table: time, rule, severity, user, folder, item and
/// the masked matches.
fn print_incidents(found: &[Value], json: bool, none: &str) {
    if json {
        println!("{}", Value::Array(found.to_vec()));
        return;
    }
    if found.is_empty() {
        println!("{none}");
        return;
    }
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".to_string(),
    };
    let rows: Vec<[String; 7]> =
        found
            .iter()
            .map(|i| {
                let matches: Vec<String> =
                    i.get("matches")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|m| format!("{} {}", text(m, "detector"), text(m, "excerpt")))
                        .chain(i.get("acl").filter(|a| a.is_object()).map(|a| {
                            format!("acl {} {}", text(a, "identifier"), text(a, "rights"))
                        }))
                        .collect();
                let item = match i.get("uid") {
                    Some(uid) => format!("UID {uid}"),
                    None => text(i, "event"),
                };
                [
                    text(i, "@timestamp"),
                    text(i, "rule"),
                    text(i, "severity"),
                    text(i, "user"),
                    text(i, "folder"),
                    item,
                    matches.join("; "),
                ]
            })
            .collect();
    let header = [
        "TIME", "RULE", "SEVERITY", "USER", "FOLDER", "ITEM", "MATCHES",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header.map(str::to_string));
    for row in &rows {
        line(row);
    }
}
