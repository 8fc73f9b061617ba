//! Rule files: TOML with `[detectors.<name>]` tables and `[[rules]]`, every key checked
//! (unknown ones refused), every error naming the file, the line and the key. A rule set is
//! read from one file or from every `*.toml` of a folder, in name order; detectors are the
//! file's own plus the built-in `payment_card`, `iban`, `us_ssn`, `de_tax_id`, `nl_bsn`, `es_dni`
//! and `fr_nir`, which a file may redefine. bonnie ships [`DEFAULT_RULES`], used when the configuration names none.
//!
//! ```toml
//! # A detector of this file: kind is payment_card, iban, us_ssn, de_tax_id, nl_bsn, es_dni,
//! # fr_nir, regex or keywords.
//! [detectors.project_code]
//! kind = "regex"
//! pattern = "PRJ-[0-9]{6}"        # regex only; size_limit = bytes of automaton (1 MiB)
//! keywords = ["project", "projekt"] # supporting keywords [built-in lists for validated kinds]
//! proximity = 300                   # characters [300]
//! confidence = 40                   # alone [65 validated and keywords, 40 regex]
//! confidence_with_keywords = 65     # with keywords nearby [85, 65]
//! mask = true                       # regex and keywords: mask the excerpt [true, false]
//!
//! [detectors.confidential]
//! kind = "keywords"
//! words = ["streng vertraulich", "strictly confidential"]
//!
//! [[rules]]
//! name = "outbound-card-lists"      # unique in the rule set
//! description = "More than two card numbers leaving the company"
//! severity = "high"                 # low, medium, high
//! detectors = ["payment_card"]      # or acl = "anyone" / "group" for an ACL rule
//! min_confidence = "medium"         # low, medium, high or 1 to 100 [medium]
//! min_count = 3                     # distinct values [1]
//! scan = ["subject", "body", "attachments", "fields"] # [all]
//! actions = [                       # [incident]
//!     { type = "incident" },
//!     { type = "syslog" },
//!     { type = "webhook", url = "https://soc.example.org/hooks/dlp" },
//!     { type = "email", to = ["security@example.org"] },
//!     { type = "keyword", name = "$DLP" },
//!     { type = "quarantine", folder = "shared/quarantine" },
//! ]
//! [rules.scope]                     # every key left out is "any"
//! events = ["append", "delivery", "copy", "move"] # [these; acl for ACL rules]
//! users = ["*@example.org"]
//! exclude_users = ["billing@example.org"]
//! folders = ["user/%/Sent", "shared/*"]
//! exclude_folders = ["user/%/Trash"]
//! shared = false                    # true: shared folders only; false: personal only
//! anyone = false                    # true: folders readable by anyone only
//! direction = ["outbound"]          # inbound, outbound, internal ([plugins.dlp] local_domains)
//! ```

use std::{
    collections::BTreeMap,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{
    DlpError,
    confidence::MinConfidence,
    config::Settings,
    detector::{Detector, DetectorKind, DetectorSpec},
    evaluate::PartKind,
    scope::{Scope, ScopeSpec},
};

/// The rule set bonnie ships (`dlp/default-rules.toml`): payment cards, IBANs, US SSNs and
/// German tax IDs at medium confidence, and the two ACL rules (a folder made readable by
/// `anyone`, or by a group beyond its owner's).
pub const DEFAULT_RULES: &str = include_str!("../default-rules.toml");

/// How serious a rule's hits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Worth acting on.
    Medium,
    /// Act now.
    High,
}

/// What to do when a rule fires. The library only reads and checks actions; carrying them out
/// is its caller's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Action {
    /// Record an incident (every hit is one; this says nothing else is done). Written with
    /// braces, as `Syslog {}`, so that a stray key (`{ type = "incident", url = ... }`) is
    /// refused rather than ignored.
    Incident {},
    /// Send an alert to syslog.
    Syslog {},
    /// POST the hit as JSON to an HTTP(S) URL.
    Webhook {
        /// `http://` or `https://`.
        url: String,
    },
    /// Mail an alert through the configured SMTP relay.
    Email {
        /// The recipients.
        to: Vec<String>,
    },
    /// Set an IMAP keyword on the message.
    Keyword {
        /// The keyword [default: `$DLP`].
        #[serde(default = "default_keyword")]
        name: String,
    },
    /// Move the message to a quarantine folder.
    Quarantine {
        /// The folder (`shared/quarantine`).
        folder: String,
    },
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        })
    }
}

fn default_keyword() -> String {
    "$DLP".to_string()
}

/// The ACL changes a built-in ACL rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclRule {
    /// A folder made readable by `anyone` (or `anonymous`).
    Anyone,
    /// A folder made readable by a group (`group:<name>`) that is not one of its owner's.
    Group,
}

fn one() -> usize {
    1
}

fn every_part() -> Vec<PartKind> {
    vec![
        PartKind::Subject,
        PartKind::Body,
        PartKind::Attachment,
        PartKind::Field,
    ]
}

fn incident_only() -> Vec<Action> {
    vec![Action::Incident {}]
}

/// A rule as a rule file writes it (`[[rules]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    severity: Severity,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    detectors: Vec<String>,
    #[serde(default)]
    acl: Option<AclRule>,
    #[serde(default)]
    min_confidence: MinConfidence,
    #[serde(default = "one")]
    min_count: usize,
    #[serde(default)]
    scope: ScopeSpec,
    #[serde(default = "every_part")]
    scan: Vec<PartKind>,
    #[serde(default = "incident_only")]
    actions: Vec<Action>,
}

/// A rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    detectors: BTreeMap<String, Spanned<DetectorSpec>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleSpec>>,
}

/// A rule as it was read: what [`RuleSet::rules`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its name, unique in the rule set.
    pub name: String,
    /// How serious its hits are.
    pub severity: Severity,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The detectors it uses (none for an ACL rule).
    pub detectors: Vec<String>,
    /// For an ACL rule, the changes it looks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<AclRule>,
    /// The lowest confidence a match needs to count.
    pub min_confidence: MinConfidence,
    /// How many distinct values must count for the rule to fire.
    pub min_count: usize,
    /// The kinds of text it scans.
    pub scan: Vec<PartKind>,
    /// What to do when it fires.
    pub actions: Vec<Action>,
    /// The file it is from.
    pub file: PathBuf,
}

/// A rule compiled: its detectors as indices into the set's.
pub(crate) struct CompiledRule {
    pub rule: Rule,
    pub detectors: Vec<usize>,
    pub scope: Scope,
}

/// A compiled rule set: built once, evaluated on every event ([`RuleSet::evaluate`]).
pub struct RuleSet {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) detectors: Vec<Detector>,
    pub(crate) settings: Settings,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.rule.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

fn check_action(action: &Action) -> Result<(), String> {
    match action {
        Action::Webhook { url } if !(url.starts_with("http://") || url.starts_with("https://")) => {
            Err(format!("webhook url {url:?} is not http:// or https://"))
        }
        Action::Email { to } if to.is_empty() => Err("email `to` is empty".to_string()),
        Action::Email { to } => match to.iter().find(|a| !a.contains('@')) {
            Some(bad) => Err(format!("email recipient {bad:?} is not an address")),
            None => Ok(()),
        },
        // RFC 3501's flag-keyword: an atom, no wildcard, quote, brace, bracket or backslash.
        Action::Keyword { name }
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| b <= b' ' || b >= 0x7f || br#"(){%*"\]"#.contains(&b)) =>
        {
            Err(format!("keyword {name:?} is not an IMAP keyword"))
        }
        Action::Quarantine { folder } if folder.trim().is_empty() => {
            Err("quarantine `folder` is empty".to_string())
        }
        _ => Ok(()),
    }
}

impl RuleSet {
    /// The shipped rule set ([`DEFAULT_RULES`]).
    pub fn default_rules(settings: &Settings) -> Result<Self, DlpError> {
        Self::parse(
            DEFAULT_RULES,
            Path::new("(built-in default rules)"),
            settings,
        )
    }

    /// Reads a rule file, or every `*.toml` file of a folder in name order.
    pub fn load(path: &Path, settings: &Settings) -> Result<Self, DlpError> {
        let read_error = |source| DlpError::Read {
            path: path.to_path_buf(),
            source,
        };
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_error)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(DlpError::Invalid {
                    path: path.to_path_buf(),
                    line: None,
                    message: "the folder has no *.toml rule file".to_string(),
                });
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut texts = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| DlpError::Read {
                path: file.clone(),
                source,
            })?;
            texts.push((file, text));
        }
        Self::build(&texts, settings)
    }

    /// Reads rule file text as if from `origin` (named in errors).
    pub fn parse(text: &str, origin: &Path, settings: &Settings) -> Result<Self, DlpError> {
        Self::build(&[(origin.to_path_buf(), text.to_string())], settings)
    }

    fn build(files: &[(PathBuf, String)], settings: &Settings) -> Result<Self, DlpError> {
        let mut set = RuleSet {
            rules: Vec::new(),
            detectors: Vec::new(),
            settings: settings.clone(),
        };
        let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (path, text) in files {
            let invalid = |span: Option<Range<usize>>, message: String| DlpError::Invalid {
                path: path.clone(),
                line: span.map(|s| line_of(text, s.start)),
                message,
            };
            let file: RuleFile =
                toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_string()))?;
            // This file's detectors by name: the built-ins unless redefined, then its own.
            let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
            let mut add = |set: &mut RuleSet, name: &str, spec: &DetectorSpec| {
                Detector::compile(name, spec).map(|d| {
                    set.detectors.push(d);
                    by_name.insert(name.to_string(), set.detectors.len() - 1);
                })
            };
            for (name, spec) in &file.detectors {
                add(&mut set, name, spec.get_ref()).map_err(|(at, e)| {
                    invalid(at.or(Some(spec.span())), format!("detector {name:?}: {e}"))
                })?;
            }
            for (kind, name) in BUILTIN_DETECTORS {
                if !file.detectors.contains_key(name) {
                    add(&mut set, name, &DetectorSpec::builtin(kind)).map_err(|(_, e)| {
                        invalid(None, format!("built-in detector {name:?}: {e}"))
                    })?;
                }
            }
            for spanned in &file.rules {
                let span = Some(spanned.span());
                let spec = spanned.get_ref();
                let at_rule = |message: String| {
                    invalid(span.clone(), format!("rule {:?}: {message}", spec.name))
                };
                if spec.name.trim().is_empty() {
                    return Err(invalid(span.clone(), "a rule has an empty `name`".into()));
                }
                if let Some(other) = names.get(&spec.name) {
                    return Err(at_rule(format!(
                        "the name is taken by a rule of {}",
                        other.display()
                    )));
                }
                match (spec.acl.is_some(), spec.detectors.is_empty()) {
                    (true, false) => {
                        return Err(at_rule("an ACL rule (`acl`) has no `detectors`".into()));
                    }
                    (false, true) => {
                        return Err(at_rule(
                            "`detectors` is empty (and it is no `acl` rule)".into(),
                        ));
                    }
                    _ => {}
                }
                if spec.min_count == 0 {
                    return Err(at_rule("`min_count` is 0; the least is 1".into()));
                }
                if let MinConfidence::Number(n) = spec.min_confidence
                    && !(1..=100).contains(&n)
                {
                    return Err(at_rule(format!(
                        "`min_confidence` = {n} is not from 1 to 100"
                    )));
                }
                if spec.scan.is_empty() && spec.acl.is_none() {
                    return Err(at_rule("`scan` is empty".into()));
                }
                if spec.actions.is_empty() {
                    return Err(at_rule(
                        "`actions` is empty; `{ type = \"incident\" }` records the hit alone"
                            .into(),
                    ));
                }
                for action in &spec.actions {
                    check_action(action).map_err(|e| at_rule(format!("`actions`: {e}")))?;
                }
                let mut detectors = Vec::new();
                for name in &spec.detectors {
                    let index = by_name.get(name).ok_or_else(|| {
                        at_rule(format!(
                            "`detectors` names {name:?}, which is neither a [detectors.{name}] table of this file nor built in (payment_card, iban, us_ssn, de_tax_id, nl_bsn, es_dni, fr_nir)"
                        ))
                    })?;
                    detectors.push(*index);
                }
                let scope = Scope::compile(&spec.scope, spec.acl.is_some()).map_err(at_rule)?;
                names.insert(spec.name.clone(), path.clone());
                set.rules.push(CompiledRule {
                    rule: Rule {
                        name: spec.name.clone(),
                        severity: spec.severity,
                        description: spec.description.clone(),
                        detectors: spec.detectors.clone(),
                        acl: spec.acl,
                        min_confidence: spec.min_confidence,
                        min_count: spec.min_count,
                        scan: spec.scan.clone(),
                        actions: spec.actions.clone(),
                        file: path.clone(),
                    },
                    detectors,
                    scope,
                });
            }
        }
        Ok(set)
    }

    /// The rules, in the order they are evaluated.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// The settings the set evaluates with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The detectors every rule file has under these names unless it defines its own.
const BUILTIN_DETECTORS: [(DetectorKind, &str); 7] = [
    (DetectorKind::PaymentCard, "payment_card"),
    (DetectorKind::Iban, "iban"),
    (DetectorKind::UsSsn, "us_ssn"),
    (DetectorKind::DeTaxId, "de_tax_id"),
    (DetectorKind::NlBsn, "nl_bsn"),
    (DetectorKind::EsDni, "es_dni"),
    (DetectorKind::FrNir, "fr_nir"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule file example of this module's documentation.
    fn documented_example() -> String {
        include_str!("rules.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip_while(|l| *l != "```toml")
            .skip(1)
            .take_while(|l| *l != "```")
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_documented_example_and_the_shipped_rules_compile() {
        let settings = Settings::default();
        let example = RuleSet::parse(&documented_example(), Path::new("doc"), &settings).unwrap();
        let rule = example.rules().next().unwrap();
        assert_eq!(rule.name, "outbound-card-lists");
        assert_eq!(rule.actions.len(), 6);
        let shipped: Vec<String> = RuleSet::default_rules(&settings)
            .unwrap()
            .rules()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(
            shipped,
            [
                "payment-cards",
                "ibans",
                "us-ssn",
                "de-tax-id",
                "nl-bsn",
                "es-dni",
                "fr-nir",
                "folder-readable-by-anyone",
                "folder-readable-by-a-group"
            ]
        );
    }
}
