//! `bonnie dlp check`: the DLP rules evaluated on one message or text file, each hit explained
//! (the rule, the masked match, its confidence, the keywords near it), for writing rules. A
//! message is read by bonnie-mail into its subject, bodies and attachment texts; any other
//! file is one body part. The rules are `--rules`, else the configuration's `[dlp] rules`,
//! else the shipped ones. The exit status says whether a rule fired, so scripts can use it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use bonnie_core::Config;
use bonnie_dlp::{
    DlpConfig, EventKind, PartKind, RuleHit, RuleSet, ScanInput, ScanPart, message_parts,
};

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
        /// A rule file, or a folder whose *.toml files are read in name order [default: [dlp]
        /// rules of the configuration, else the shipped rules]
        #[arg(long, value_name = "FILE-OR-FOLDER")]
        rules: Option<PathBuf>,
        /// Print the hits as one JSON array
        #[arg(long)]
        json: bool,
        /// The message (an .eml file, or any file that starts with a header) or text file
        file: PathBuf,
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
    }
}

/// The `[dlp]` table of the configuration: the named one (`--config`, `$BONNIE_CONFIG`) must
/// be read; the default path only when it exists.
fn dlp_config(explicit: Option<&Path>) -> anyhow::Result<(DlpConfig, PathBuf)> {
    let named =
        explicit.is_some() || std::env::var_os("BONNIE_CONFIG").is_some_and(|v| !v.is_empty());
    let path = Config::locate(explicit);
    if !named && !path.exists() {
        return Ok((DlpConfig::default(), PathBuf::from(".")));
    }
    let config = Config::load(&path)?;
    let dlp =
        DlpConfig::from_table(&config.dlp).with_context(|| format!("in {}", path.display()))?;
    let dir = config
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok((dlp, dir))
}

/// The hits of the rules on `file`, and where the rules came from.
fn check(
    explicit_config: Option<&Path>,
    rules: Option<&Path>,
    file: &Path,
) -> anyhow::Result<(Vec<RuleHit>, String)> {
    let (dlp, config_dir) = dlp_config(explicit_config)?;
    let (set, origin) = match rules
        .map(Path::to_path_buf)
        .or_else(|| dlp.rules_path(&config_dir))
    {
        Some(path) => (
            RuleSet::load(&path, &dlp.settings())?,
            path.display().to_string(),
        ),
        None => (dlp.rule_set(&config_dir)?, "the shipped rules".to_string()),
    };
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
