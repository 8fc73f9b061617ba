//! `[discovery]`: what e-discovery reads queries and shows results against.

use serde::Deserialize;

use crate::query::Context;

/// `[discovery]` of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// The time zone (IANA name) of dates written without an offset in queries (`after:`,
    /// `before:`, `--as-of`) and of the times results show. Default: `UTC`.
    pub time_zone: String,
    /// The domains whose addresses are the organisation's, for `direction:` (inbound, outbound,
    /// internal). Default: none (`direction:` is then refused).
    pub local_domains: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            time_zone: "UTC".to_string(),
            local_domains: Vec::new(),
        }
    }
}

/// A `[discovery]` table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown or of the wrong type.
    #[error("[discovery]: {0}")]
    Table(String),
    /// `time_zone` is not a zone the time zone database knows.
    #[error("[discovery] time_zone: {zone:?} is not an IANA time zone: {reason}")]
    Zone {
        /// The name given.
        zone: String,
        /// Why it was refused.
        reason: String,
    },
    /// A local domain is empty or not a domain.
    #[error("[discovery] local_domains: {0:?} is not a domain name")]
    Domain(String),
}

impl DiscoveryConfig {
    /// Reads `[discovery]` from its table in the configuration file.
    pub fn from_table(table: &toml::Table) -> Result<Self, ConfigError> {
        let config: Self = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Table(e.message().to_string()))?;
        config.context()?;
        Ok(config)
    }

    /// The context queries are read and decided in.
    pub fn context(&self) -> Result<Context, ConfigError> {
        let zone = jiff::tz::TimeZone::get(&self.time_zone).map_err(|e| ConfigError::Zone {
            zone: self.time_zone.clone(),
            reason: e.to_string(),
        })?;
        let mut local_domains = Vec::new();
        for domain in &self.local_domains {
            let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            if domain.is_empty() || domain.contains(['@', ' ', '/']) || !domain.contains('.') {
                return Err(ConfigError::Domain(domain));
            }
            local_domains.push(domain);
        }
        Ok(Context {
            zone,
            local_domains,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_are_utc_and_no_local_domains() {
        let config = DiscoveryConfig::from_table(&toml::Table::new()).unwrap();
        let context = config.context().unwrap();
        assert_eq!(context.zone.iana_name(), Some("UTC"));
        assert!(context.local_domains.is_empty());
    }

    #[test]
    fn a_zone_and_domains_are_read_and_domains_folded() {
        let config = DiscoveryConfig::from_table(&table(
            "time_zone = \"Europe/Berlin\"\nlocal_domains = [\"Example.ORG\", \"@beispiel.de\"]",
        ))
        .unwrap();
        let context = config.context().unwrap();
        assert_eq!(context.zone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(context.local_domains, ["example.org", "beispiel.de"]);
    }

    #[test]
    fn bad_tables_are_refused_naming_the_key() {
        for (text, says) in [
            ("time_zone = \"Mars/Olympus\"", "time_zone"),
            ("local_domains = [\"not a domain\"]", "local_domains"),
            ("zone = \"UTC\"", "unknown field"),
        ] {
            let error = DiscoveryConfig::from_table(&table(text))
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
