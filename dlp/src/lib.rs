//! Data-loss prevention for bonnie: detectors that find sensitive data in text (regular
//! expressions, keyword and phrase lists, and validated payment card numbers, IBANs, US Social
//! Security numbers, German tax IDs, Dutch BSNs, Spanish DNIs and NIEs and French NIRs), rules that say which detectors, how sure and how many
//! matter for which events, folders, users and message directions, and the evaluation of a rule
//! set against one event's text ([`RuleSet::evaluate`]).
//!
//! What a hit says ([`RuleHit`]) is evidence for the archive's log: serialized with stable field
//! names, and its excerpts are masked ([`Evidence::excerpt`]): a card number is never written
//! whole. The library only decides; executing a rule's actions is up to its caller.
//!
//! ```
//! use bonnie_dlp::{EventKind, PartKind, RuleSet, ScanInput, ScanPart, Settings};
//!
//! let rules = RuleSet::default_rules(&Settings::default()).unwrap();
//! let body = "Please charge my Visa card 4539 1488 0343 6467, thanks.";
//! let input = ScanInput {
//!     parts: vec![ScanPart::new(PartKind::Body, "body", body)],
//!     ..ScanInput::new(EventKind::Append)
//! };
//! let hits = rules.evaluate(&input);
//! assert_eq!(hits[0].rule, "payment-cards");
//! assert_eq!(hits[0].matches[0].excerpt, "4539 **** **** 6467");
//! ```
#![forbid(unsafe_code)]

mod card;
mod confidence;
mod config;
mod detector;
mod digits;
mod evaluate;
mod iban;
mod keywords;
mod mask;
mod message;
mod national;
mod pattern;
mod rules;
mod scope;

pub use confidence::{Confidence, Level, MinConfidence};
pub use config::{DEFAULT_MAX_PART_BYTES, DlpConfig, Settings};
pub use detector::DetectorKind;
pub use evaluate::{
    AclChange, AclEvidence, EventKind, Evidence, Folder, MAX_EVIDENCE, NearbyKeyword, PartKind,
    RuleHit, ScanInput, ScanPart,
};
pub use message::message_parts;
pub use rules::{AclRule, Action, DEFAULT_RULES, Rule, RuleSet, Severity};
pub use scope::Direction;

use std::path::PathBuf;

/// What loading a rule set can fail with. Evaluation itself never fails.
#[derive(Debug, thiserror::Error)]
pub enum DlpError {
    /// A rule file or folder cannot be read.
    #[error("cannot read the DLP rules {}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A rule file is not what a rule file must be: the message names the line, the rule and
    /// the key at fault.
    #[error("DLP rules {}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the key at fault, when it is known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The `[plugins.dlp]` configuration table is wrong.
    #[error("[plugins.dlp]: {0}")]
    Config(String),
}
