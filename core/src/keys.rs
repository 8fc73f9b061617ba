//! The CURVE key files of `[curve] keys_dir`: each host's own key pairs (`<role>.key`, 0600),
//! the broker's public key (`broker.pub`), and the public keys the broker lets in per role
//! (`<role>s/<name>.pub`), whose file name is who the key belongs to.

use std::{
    collections::HashMap,
    fmt, fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use crate::{
    config::CurveConfig,
    transport::{self, ClientKeys, KeyPair},
};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no valid key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A key name that cannot be a file name.
    #[error("{0:?} is not a key name: letters, digits, '.', '-' and '_', not starting with '.'")]
    Name(String),
    /// A role bonnie does not know.
    #[error("{0:?} is not a role: dealer, collector, worker or admin")]
    Role(String),
    /// The same public key is allowed in two roles.
    #[error("the key {key} is allowed as {first} and as {second}: a key has one role")]
    TwoRoles {
        /// The key.
        key: String,
        /// One role's file.
        first: String,
        /// The other's.
        second: String,
    },
}

/// Who may connect to which of the broker's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Submits notifications (the dealer socket).
    Dealer,
    /// Serves collector jobs of its host (the collector socket).
    Collector,
    /// Takes jobs (the controller and worker sockets).
    Worker,
    /// The admin command line (the admin socket).
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Dealer, Role::Collector, Role::Worker, Role::Admin];

    /// The role's name, also its key file's name (`<name>.key`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::Collector => "collector",
            Role::Worker => "worker",
            Role::Admin => "admin",
        }
    }

    /// The folder of the public keys allowed in this role.
    pub fn folder(self) -> &'static str {
        match self {
            Role::Dealer => "dealers",
            Role::Collector => "collectors",
            Role::Worker => "workers",
            Role::Admin => "admins",
        }
    }

    /// The role named `name` (singular or plural).
    pub fn parse(name: &str) -> Result<Role, KeyError> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == name || r.folder() == name)
            .ok_or_else(|| KeyError::Role(name.to_string()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks a key's name (a host name or a worker's name).
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyError::Name(name.to_string()))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// `key = "value"` lines, `#` comments.
fn fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        .collect()
}

/// The keys folder.
#[derive(Debug, Clone)]
pub struct KeyDir {
    path: PathBuf,
}

/// A public key allowed in a role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allowed {
    /// The role.
    pub role: &'static str,
    /// Whom it belongs to (the file's name without `.pub`).
    pub name: String,
    /// The key (Z85).
    pub public_key: String,
    /// The file.
    pub file: PathBuf,
}

impl KeyDir {
    /// The keys folder of this configuration.
    pub fn new(config: &CurveConfig) -> Self {
        Self {
            path: config.keys_dir.clone(),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This host's key pair file for `who` (`broker`, or a role's name).
    pub fn pair_file(&self, who: &str) -> PathBuf {
        self.path.join(format!("{who}.key"))
    }

    /// The broker's public key file.
    pub fn broker_public_file(&self) -> PathBuf {
        self.path.join("broker.pub")
    }

    /// The file that allows `name`'s key in `role`.
    pub fn allowed_file(&self, role: Role, name: &str) -> PathBuf {
        self.path.join(role.folder()).join(format!("{name}.pub"))
    }

    /// Reads a key pair file. Refused when others may read it.
    pub fn read_pair(path: &Path) -> Result<KeyPair, KeyError> {
        let meta = fs::metadata(path).map_err(io(path))?;
        if meta.permissions().mode() & 0o007 != 0 {
            return Err(invalid(
                path,
                format!(
                    "a secret key readable by others (mode {:o}): chmod 600 (or 640 for a group that needs it)",
                    meta.permissions().mode() & 0o777
                ),
            ));
        }
        let text = fs::read_to_string(path).map_err(io(path))?;
        let f = fields(&text);
        match (f.get("public"), f.get("secret")) {
            (Some(public), Some(secret))
                if transport::is_z85_key(public) && transport::is_z85_key(secret) =>
            {
                Ok(KeyPair {
                    public: public.to_string(),
                    secret: secret.to_string(),
                })
            }
            _ => Err(invalid(
                path,
                "not a key pair (lines public = \"...\" and secret = \"...\", Z85)",
            )),
        }
    }

    /// Reads a public key file: one Z85 key (40 characters), `#` comments.
    pub fn read_public(path: &Path) -> Result<String, KeyError> {
        let text = fs::read_to_string(path).map_err(io(path))?;
        let key = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| fields(l).get("public").map_or(l, |k| k).to_string())
            .unwrap_or_default();
        if transport::is_z85_key(&key) {
            Ok(key)
        } else {
            Err(invalid(
                path,
                "not a CURVE public key (40 characters of Z85)",
            ))
        }
    }

    /// Writes a key pair file (0600) and returns it; refuses to replace one unless `replace`.
    pub fn write_pair(
        path: &Path,
        pair: &KeyPair,
        about: &str,
        replace: bool,
    ) -> Result<(), KeyError> {
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).mode(0o600);
        if replace {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(path).map_err(io(path))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io(path))?;
        write!(
            file,
            "# bonnie CURVE key pair: {about}. The secret stays on this host, mode 0600.\npublic = \"{}\"\nsecret = \"{}\"\n",
            pair.public, pair.secret
        )
        .and_then(|()| file.sync_all())
        .map_err(io(path))
    }

    /// Writes a public key file (0644).
    pub fn write_public(path: &Path, key: &str, about: &str) -> Result<(), KeyError> {
        if !transport::is_z85_key(key) {
            return Err(invalid(
                path,
                format!("{key:?} is not a CURVE public key (40 characters of Z85)"),
            ));
        }
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        let tmp = path.with_extension("pub.tmp");
        fs::write(&tmp, format!("# bonnie CURVE public key: {about}\n{key}\n"))
            .map_err(io(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))
    }

    /// The keys allowed in `role`, by name. A file that holds no key is an error.
    pub fn allowed(&self, role: Role) -> Result<Vec<Allowed>, KeyError> {
        let folder = self.path.join(role.folder());
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&folder)(e)),
        };
        let mut list = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&folder))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pub"))
            else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            list.push(Allowed {
                role: role.name(),
                name: name.to_string(),
                public_key: Self::read_public(&path)?,
                file: path.clone(),
            });
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }
}

fn create_dir(path: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
        .map_err(io(path))
}

/// The broker's allow-list: per role, which public key belongs to whom.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    by_key: HashMap<String, (Role, String)>,
}

impl AllowList {
    /// Reads every role's folder. A key listed in two roles is refused: a key has one role.
    pub fn load(dir: &KeyDir) -> Result<Self, KeyError> {
        let mut by_key: HashMap<String, (Role, String)> = HashMap::new();
        for role in Role::ALL {
            for allowed in dir.allowed(role)? {
                if let Some((other, name)) = by_key.get(&allowed.public_key)
                    && *other != role
                {
                    return Err(KeyError::TwoRoles {
                        key: allowed.public_key,
                        first: format!("{}/{name}", other.folder()),
                        second: format!("{}/{}", role.folder(), allowed.name),
                    });
                }
                by_key.insert(allowed.public_key, (role, allowed.name));
            }
        }
        Ok(Self { by_key })
    }

    /// Whom `public_key` belongs to, if it is allowed in `role`.
    pub fn name(&self, role: Role, public_key: &str) -> Option<&str> {
        match self.by_key.get(public_key) {
            Some((r, name)) if *r == role => Some(name),
            _ => None,
        }
    }

    /// True if `name` still has a key in `role`.
    pub fn has_name(&self, role: Role, name: &str) -> bool {
        self.by_key.values().any(|(r, n)| *r == role && n == name)
    }

    /// Keys allowed, per role.
    pub fn counts(&self) -> HashMap<Role, usize> {
        let mut counts = HashMap::new();
        for (role, _) in self.by_key.values() {
            *counts.entry(*role).or_insert(0) += 1;
        }
        counts
    }
}

/// The keys a peer in `role` connects to the broker with: `None` when `[curve]` is off.
pub fn client_keys(config: &CurveConfig, role: Role) -> Result<Option<ClientKeys>, KeyError> {
    if !config.enabled {
        return Ok(None);
    }
    let dir = KeyDir::new(config);
    client_keys_from(&dir.pair_file(role.name()), &dir.broker_public_file()).map(Some)
}

/// The keys in a key pair file and the broker's public key file.
pub fn client_keys_from(pair: &Path, broker_public: &Path) -> Result<ClientKeys, KeyError> {
    Ok(ClientKeys {
        pair: KeyDir::read_pair(pair)?,
        server_public: KeyDir::read_public(broker_public)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_allowed_in_its_role_only_and_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir {
            path: dir.path().to_path_buf(),
        };
        let pair = transport::generate_keypair().unwrap();
        let file = keys.pair_file("dealer");
        KeyDir::write_pair(&file, &pair, "dealer imap1", false).unwrap();
        assert_eq!(KeyDir::read_pair(&file).unwrap(), pair);
        assert!(
            KeyDir::write_pair(&file, &pair, "again", false).is_err(),
            "never replaced silently"
        );
        KeyDir::write_public(
            &keys.allowed_file(Role::Dealer, "imap1"),
            &pair.public,
            "dealer imap1",
        )
        .unwrap();
        let list = AllowList::load(&keys).unwrap();
        assert_eq!(list.name(Role::Dealer, &pair.public), Some("imap1"));
        assert_eq!(list.name(Role::Worker, &pair.public), None);
        KeyDir::write_public(&keys.allowed_file(Role::Admin, "x"), &pair.public, "x").unwrap();
        assert!(matches!(
            AllowList::load(&keys),
            Err(KeyError::TwoRoles { .. })
        ));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            KeyDir::read_pair(&file).is_err(),
            "a secret others can read is refused"
        );
        assert!(check_name("../etc").is_err() && check_name("imap-1.example.org").is_ok());
    }
}
