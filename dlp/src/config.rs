//! The rule settings of bonnie's `[plugins.dlp]` table (the DLP plugin reads its other keys): where
//! the rules are, the local domains that tell a message's direction, and how much of each text part
//! is scanned.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{DlpError, RuleSet};

/// The default scan limit per text part: 1 MiB (bonnie-mail's search-text limit).
pub const DEFAULT_MAX_PART_BYTES: usize = bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES;

/// What a rule set evaluates with, beside its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The domains whose addresses are local (`example.org`), without case.
    pub local_domains: Vec<String>,
    /// The bytes of each text part that are scanned; the rest is not, and hits say so.
    pub max_part_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            local_domains: Vec::new(),
            max_part_bytes: DEFAULT_MAX_PART_BYTES,
        }
    }
}

/// The rule settings of `[plugins.dlp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpConfig {
    /// A rule file, or a folder whose `*.toml` files are read in name order; relative to the
    /// configuration file's folder [default: the shipped rules, [`crate::DEFAULT_RULES`]].
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// The local mail domains, which tell inbound, outbound and internal messages apart
    /// [default: none, so no rule with a `direction` scope fires].
    #[serde(default)]
    pub local_domains: Vec<String>,
    /// Bytes of each text part scanned [default: 1048576].
    #[serde(default)]
    pub max_part_bytes: Option<usize>,
}

impl DlpConfig {
    /// Reads the rule settings (unknown keys refused).
    pub fn from_table(table: &toml::Table) -> Result<Self, DlpError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| DlpError::Config(e.message().to_string()))
    }

    /// The settings it gives.
    pub fn settings(&self) -> Settings {
        Settings {
            local_domains: self.local_domains.clone(),
            max_part_bytes: self.max_part_bytes.unwrap_or(DEFAULT_MAX_PART_BYTES),
        }
    }

    /// The rule file or folder, resolved against `config_dir`, if one is configured.
    pub fn rules_path(&self, config_dir: &Path) -> Option<PathBuf> {
        self.rules.as_ref().map(|p| config_dir.join(p))
    }

    /// The rule set it names, or the shipped one.
    pub fn rule_set(&self, config_dir: &Path) -> Result<RuleSet, DlpError> {
        if self.max_part_bytes == Some(0) {
            return Err(DlpError::Config("`max_part_bytes` is 0".to_string()));
        }
        match self.rules_path(config_dir) {
            Some(path) => RuleSet::load(&path, &self.settings()),
            None => RuleSet::default_rules(&self.settings()),
        }
    }
}
