//! `[plugins.dlp]`: the one place of the DLP settings. The rule engine's keys (`rules`,
//! `local_domains`, `max_part_bytes`, read by [`bonnie_dlp::DlpConfig`]), the collector
//! commands the handler may ask for (`collect`), and `[plugins.dlp.alerts]` (how the alerts
//! are sent). The worker's handler, `bonnie dlp check`, `bonnie dlp scan` and `bonnie config
//! check` all read the table through [`PluginConfig::from_table`], so they agree on it.

use std::path::Path;

use bonnie_dlp::{DlpConfig, RuleSet};
use bonnie_dlp_actions::AlertSettings;

/// The table's name, as error messages write it.
pub const TABLE: &str = "[plugins.dlp]";

/// The collector commands the handler may ask for.
pub const COLLECTABLE: [&str; 1] = ["FETCH"];

/// A setting of `[plugins.dlp]` that cannot be used: the key at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The table and key: `[plugins.dlp] collect`, `[plugins.dlp.alerts] smtp.from`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `[plugins.dlp]`, read.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// What the rule engine reads.
    pub rules: DlpConfig,
    /// Collector commands the handler may ask for: `FETCH` (an appended or delivered message's
    /// text when no other handler had it collected, or a copied or moved message the archive
    /// does not hold). Default: `["FETCH"]`; with none, messages whose text is not in the job
    /// are not scanned (and their records say so).
    pub collect: Vec<String>,
    /// `[plugins.dlp.alerts]` as written (the alert sender reads it), empty when absent.
    pub alerts: toml::Table,
}

impl PluginConfig {
    /// Reads the table: unknown keys refused, each error naming `[plugins.dlp]` and its key.
    pub fn from_table(table: &toml::Table) -> Result<Self, ConfigError> {
        let mut rest = table.clone();
        let collect = match rest.remove("collect") {
            None => COLLECTABLE.iter().map(|c| c.to_string()).collect(),
            Some(toml::Value::Array(list)) => list
                .iter()
                .map(|c| match c.as_str() {
                    Some(c) if COLLECTABLE.contains(&c) => Ok(c.to_string()),
                    _ => Err(ConfigError::new(
                        format!("{TABLE} collect"),
                        format!("{c:?} is not a command the DLP handler asks for (FETCH)"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{TABLE} collect"),
                    format!("a list of collector commands, not {other:?}"),
                ));
            }
        };
        let alerts = match rest.remove("alerts") {
            None => toml::Table::new(),
            Some(toml::Value::Table(alerts)) => alerts,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{TABLE} alerts"),
                    format!("a table, not {other:?}"),
                ));
            }
        };
        let rules = DlpConfig::from_table(&rest).map_err(|e| ConfigError::new(TABLE, cause(&e)))?;
        Ok(Self {
            rules,
            collect,
            alerts,
        })
    }

    /// Reads the table as the worker hands it to the plugin (JSON).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = serde_json::from_str(json)
            .map_err(|e| ConfigError::new(TABLE, format!("not readable as a table: {e}")))?;
        Self::from_table(&table)
    }

    /// The rules it names (relative to `config_dir`, the configuration file's folder), or the
    /// shipped ones, compiled.
    pub fn rule_set(&self, config_dir: &Path) -> Result<RuleSet, ConfigError> {
        self.rules
            .rule_set(config_dir)
            .map_err(|e| ConfigError::new(format!("{TABLE} rules"), cause(&e)))
    }

    /// `[plugins.dlp.alerts]`, read and checked (each error naming its key).
    pub fn alert_settings(&self) -> Result<AlertSettings, ConfigError> {
        let settings: AlertSettings = toml::Value::Table(self.alerts.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::new("[plugins.dlp.alerts]", e.message()))?;
        settings
            .check()
            .map_err(|e| ConfigError::new(format!("[plugins.dlp.alerts] {}", e.key), e.message))?;
        Ok(settings)
    }
}

/// The rule engine's own words for an error, without its `[dlp] configuration` prefix (the
/// table is `[plugins.dlp]`).
fn cause(e: &bonnie_dlp::DlpError) -> String {
    match e {
        bonnie_dlp::DlpError::Config(message) => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<PluginConfig, String> {
        PluginConfig::from_table(&text.parse::<toml::Table>().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_rules_keys_collect_and_alerts_are_read_from_one_table() {
        let config = read(
            "rules = \"dlp-rules.toml\"\nlocal_domains = [\"example.org\"]\ncollect = []\n[alerts]\npoll_interval_ms = 10\n",
        )
        .unwrap();
        assert_eq!(config.rules.local_domains, ["example.org"]);
        assert!(config.collect.is_empty());
        assert_eq!(config.alerts["poll_interval_ms"].as_integer(), Some(10));
        let defaults = read("").unwrap();
        assert_eq!(defaults.collect, ["FETCH"]);
        assert!(defaults.rules.rules.is_none());
    }

    #[test]
    fn errors_name_the_table_and_the_key() {
        let unknown = read("rule = \"x\"").unwrap_err();
        assert!(
            unknown.starts_with("[plugins.dlp]") && unknown.contains("rule"),
            "{unknown}"
        );
        let collect = read("collect = [\"GETACL\"]").unwrap_err();
        assert!(
            collect.contains("collect") && collect.contains("GETACL"),
            "{collect}"
        );
        let alerts = read("alerts = 3").unwrap_err();
        assert!(alerts.contains("alerts"), "{alerts}");
    }
}
