//! The payload store's keys in a storage plugin's table (`[plugins.sqlite-storage]`,
//! `[plugins.es-storage]`): `payload_store`, the `s3_` keys and `payload_key_file`, taken out
//! of the table before the plugin reads the rest as its own.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{S3Config, Sealer};

/// Which store keeps the payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The storage's own (sqlite-storage: its database and payload folder; es-storage:
    /// documents in the server). The default.
    #[default]
    Local,
    /// An S3-compatible bucket (`s3_` keys).
    S3,
}

/// The payload store's keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `"local"` (default) or `"s3"`.
    #[serde(default)]
    pub payload_store: Kind,
    /// The S3 endpoint, `https://host[:port]` (`http://` only with `s3_allow_http`).
    pub s3_endpoint: Option<String>,
    /// The bucket (made beforehand: bonnie does not create it).
    pub s3_bucket: Option<String>,
    /// The region requests are signed for. Default: `us-east-1`.
    pub s3_region: Option<String>,
    /// The access key's id.
    pub s3_access_key_id: Option<String>,
    /// The file whose first line is the secret access key, readable by bonnie only (0600 or
    /// 0640), resolved against the configuration file's folder.
    pub s3_secret_access_key_file: Option<String>,
    /// Allow an `http://` endpoint (a test server; the key and the mail cross the network in
    /// the clear). Default: false.
    pub s3_allow_http: Option<bool>,
    /// Timeout of one request, in milliseconds; a request is tried 3 times at most.
    /// Default: 30000.
    pub s3_timeout_ms: Option<u64>,
    /// The file of the keys that seal payloads at rest (`<id> <64 hex digits>` per line, the
    /// last one sealing: [`Sealer`]), readable by bonnie only (0600 or 0640), resolved
    /// against the configuration file's folder. Unset: payloads are kept unsealed.
    pub payload_key_file: Option<String>,
}

/// The secret access key's file must not be readable by others nor writable by the group,
/// as every secret file of bonnie's configuration.
const OPEN_SECRET_MODE: u32 = 0o027;

impl Settings {
    /// Takes `payload_store` and every `s3_` key out of the table of `plugin`, leaving the
    /// plugin its own keys; a misspelt `s3_` key is refused here, naming the plugin.
    pub fn take_from(plugin: &str, table: &mut Map<String, Value>) -> Result<Self, String> {
        let ours: Map<String, Value> = table
            .keys()
            .filter(|k| *k == "payload_store" || *k == "payload_key_file" || k.starts_with("s3_"))
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|k| table.remove_entry(&k))
            .collect();
        let settings: Self = serde_json::from_value(Value::Object(ours))
            .map_err(|e| format!("invalid configuration for plugin {plugin}: {e}"))?;
        if settings.payload_store == Kind::Local && settings.has_s3_keys() {
            return Err(format!(
                "[plugins.{plugin}] s3_ keys are set but payload_store is \"local\": set payload_store = \"s3\" or remove them"
            ));
        }
        Ok(settings)
    }

    /// The sealer of the payloads: with the keys of `payload_key_file` (`resolve` makes the
    /// path absolute), checked now, so that a missing, open or malformed key file stops the
    /// storage at start; without the key, a sealer that keeps payloads plain.
    pub fn sealer(
        &self,
        plugin: &str,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<Sealer, String> {
        match &self.payload_key_file {
            None => Ok(Sealer::default()),
            Some(file) => Sealer::from_file(plugin, &resolve(file)),
        }
    }

    fn has_s3_keys(&self) -> bool {
        self.s3_endpoint.is_some()
            || self.s3_bucket.is_some()
            || self.s3_region.is_some()
            || self.s3_access_key_id.is_some()
            || self.s3_secret_access_key_file.is_some()
            || self.s3_allow_http.is_some()
            || self.s3_timeout_ms.is_some()
    }

    /// The bucket's settings for `payload_store = "s3"` (`None` for a local store), checked:
    /// every key needed is there, the endpoint is a URL this store may use, and the secret's
    /// file (`resolve` makes a configured path absolute) is bonnie's alone.
    pub fn s3_config(
        &self,
        plugin: &str,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<Option<S3Config>, String> {
        if self.payload_store == Kind::Local {
            return Ok(None);
        }
        let required = |value: &Option<String>, key: &str| {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("[plugins.{plugin}] payload_store = \"s3\" needs {key}"))
        };
        let endpoint = required(&self.s3_endpoint, "s3_endpoint")?;
        let bucket = required(&self.s3_bucket, "s3_bucket")?;
        let access_key_id = required(&self.s3_access_key_id, "s3_access_key_id")?;
        let secret_file = resolve(&required(
            &self.s3_secret_access_key_file,
            "s3_secret_access_key_file",
        )?);
        let allow_http = self.s3_allow_http.unwrap_or(false);
        if endpoint.starts_with("http://") {
            if !allow_http {
                return Err(format!(
                    "[plugins.{plugin}] s3_endpoint {endpoint:?} is http, which sends the mail in the clear: use https, or set s3_allow_http = true for a test server"
                ));
            }
        } else if !endpoint.starts_with("https://") {
            return Err(format!(
                "[plugins.{plugin}] s3_endpoint must start with https:// (or http://), not {endpoint:?}"
            ));
        }
        let timeout_ms = self.s3_timeout_ms.unwrap_or(30_000);
        if timeout_ms == 0 {
            return Err(format!(
                "[plugins.{plugin}] s3_timeout_ms must be at least 1"
            ));
        }
        Ok(Some(S3Config {
            endpoint,
            bucket,
            region: self
                .s3_region
                .clone()
                .unwrap_or_else(|| "us-east-1".to_string()),
            access_key_id,
            secret_access_key: read_secret(plugin, &secret_file)?,
            allow_http,
            timeout: Duration::from_millis(timeout_ms),
        }))
    }
}

/// The text of the secret file `file` that `key` of `[plugins.<plugin>]` names, refused when
/// others may read it or the group write it.
pub(crate) fn read_private(plugin: &str, key: &str, file: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |e: std::io::Error| {
        format!(
            "[plugins.{plugin}] {key}: cannot read {}: {e}",
            file.display()
        )
    };
    let mode = std::fs::metadata(file)
        .map_err(unreadable)?
        .permissions()
        .mode();
    if mode & OPEN_SECRET_MODE != 0 {
        return Err(format!(
            "[plugins.{plugin}] {key}: {} must be readable by bonnie only (mode 0600 or 0640), not {:04o}",
            file.display(),
            mode & 0o7777
        ));
    }
    std::fs::read_to_string(file).map_err(unreadable)
}

/// The first line of the secret access key's file, refused when others may read it or the
/// group write it.
fn read_secret(plugin: &str, file: &Path) -> Result<String, String> {
    let text = read_private(plugin, "s3_secret_access_key_file", file)?;
    let secret = text.lines().next().unwrap_or_default().trim().to_string();
    if secret.is_empty() {
        return Err(format!(
            "[plugins.{plugin}] s3_secret_access_key_file: {} holds no key on its first line",
            file.display()
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn table(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_store_keys_are_taken_out_and_the_plugins_own_are_left() {
        let mut keys =
            table(json!({"path": "var/bonnie.db", "payload_store": "s3", "s3_bucket": "mail"}));
        let settings = Settings::take_from("sqlite-storage", &mut keys).unwrap();
        assert_eq!(settings.payload_store, Kind::S3);
        assert_eq!(settings.s3_bucket.as_deref(), Some("mail"));
        assert_eq!(keys, table(json!({"path": "var/bonnie.db"})));
        let default = Settings::take_from("sqlite-storage", &mut keys).unwrap();
        assert_eq!(default.payload_store, Kind::Local);
    }

    #[test]
    fn a_misspelt_key_an_unknown_store_and_s3_keys_on_a_local_store_are_refused() {
        let refused =
            |value: Value| Settings::take_from("es-storage", &mut table(value)).unwrap_err();
        let misspelt = refused(json!({"payload_store": "s3", "s3_bukcet": "mail"}));
        assert!(
            misspelt.contains("s3_bukcet") && misspelt.contains("es-storage"),
            "{misspelt}"
        );
        let unknown = refused(json!({"payload_store": "ftp"}));
        assert!(unknown.contains("ftp"), "{unknown}");
        let local = refused(json!({"s3_bucket": "mail"}));
        assert!(local.contains("payload_store"), "{local}");
    }

    #[test]
    fn an_s3_store_needs_its_keys_https_and_a_private_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3.secret");
        std::fs::write(&secret, "the-secret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let settings = |extra: Value| {
            let mut keys = json!({
                "payload_store": "s3", "s3_endpoint": "https://s3.example.org",
                "s3_bucket": "mail", "s3_access_key_id": "bonnie",
                "s3_secret_access_key_file": "s3.secret",
            });
            for (k, v) in extra.as_object().unwrap() {
                keys[k] = v.clone();
            }
            Settings::take_from("sqlite-storage", &mut table(keys)).unwrap()
        };
        let resolve = |p: &str| dir.path().join(p);
        let config = settings(json!({}))
            .s3_config("sqlite-storage", resolve)
            .unwrap()
            .unwrap();
        assert_eq!(config.secret_access_key, "the-secret");
        assert_eq!(config.region, "us-east-1");
        let error = |extra: Value| {
            settings(extra)
                .s3_config("sqlite-storage", resolve)
                .unwrap_err()
        };
        assert!(error(json!({"s3_endpoint": "http://127.0.0.1:9000"})).contains("s3_allow_http"));
        assert!(error(json!({"s3_endpoint": "s3.example.org"})).contains("https://"));
        assert!(error(json!({"s3_bucket": ""})).contains("needs s3_bucket"));
        assert!(error(json!({"s3_timeout_ms": 0})).contains("s3_timeout_ms"));
        let missing = error(json!({"s3_secret_access_key_file": "none"}));
        assert!(missing.contains("cannot read"), "{missing}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = error(json!({}));
        assert!(
            open.contains("readable by bonnie only") && open.contains("0644"),
            "{open}"
        );
        let local = Settings::default()
            .s3_config("sqlite-storage", resolve)
            .unwrap();
        assert!(local.is_none());
    }

    #[test]
    fn a_key_file_is_taken_out_on_any_store_and_must_be_private_and_hold_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("payload.keys");
        let key = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
        std::fs::write(&file, key).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut keys = table(json!({"path": "var/bonnie.db", "payload_key_file": "payload.keys"}));
        let settings = Settings::take_from("sqlite-storage", &mut keys).unwrap();
        assert_eq!(keys, table(json!({"path": "var/bonnie.db"})));
        let resolve = |p: &str| dir.path().join(p);
        assert!(settings.sealer("sqlite-storage", resolve).unwrap().seals());
        assert!(
            !Settings::default()
                .sealer("sqlite-storage", resolve)
                .unwrap()
                .seals()
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = settings.sealer("sqlite-storage", resolve).unwrap_err();
        assert!(
            open.contains("payload_key_file")
                && open.contains(&file.display().to_string())
                && open.contains("0644"),
            "{open}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&file, "k1 0001\n").unwrap();
        let short = settings.sealer("es-storage", resolve).unwrap_err();
        assert!(
            short.contains("[plugins.es-storage] payload_key_file") && short.contains("line 1"),
            "{short}"
        );
    }
}
