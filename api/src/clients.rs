//! API clients (Roundcube installations, consoles): a name, a password kept as an argon2 hash,
//! the secret their requests are signed with (HMAC needs it in clear: the file is written
//! readable by its owner only) and their [`Role`]. `bonnie api-client add|list|remove` manages
//! the file; `bonnie-api` reads it at start.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::{PasswordHasher, SaltString},
};
use serde::{Deserialize, Serialize};

/// What a client is for, and so which methods beyond every client's it may call. The role is
/// the client's, given when it is added: no request, and no user a request names, changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A groupware client (Roundcube's `kolab_bonnie_api`): the object, mail, free/busy and
    /// key methods, for the user each request names.
    #[default]
    Groupware,
    /// An e-discovery client (a review tool): also `discovery.search` and `discovery.show`,
    /// over every custodian's items. A separate role, so that the credentials every webmail
    /// host holds can never search the whole archive.
    Ediscovery,
}

impl Role {
    /// Whether this is the default role, left out of the file (files written before roles
    /// existed read as groupware clients).
    fn is_default(&self) -> bool {
        *self == Role::default()
    }
}

/// One client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    /// The argon2 hash of its password (PHC string).
    pub password_hash: String,
    /// The secret its requests are signed with (hex).
    pub secret: String,
    /// When it was added (`YYYY-MM-DDTHH:MM:SSZ`).
    pub created: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Role::is_default")]
    pub role: Role,
}

/// The clients file: clients by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Clients {
    /// Clients by name.
    pub clients: BTreeMap<String, Client>,
    #[serde(skip)]
    path: PathBuf,
}

/// What `add` hands out, once.
pub struct Credentials {
    /// The client's name (its Basic auth user).
    pub name: String,
    /// Its password (Basic auth).
    pub password: String,
    /// Its signing secret.
    pub secret: String,
}

/// `n` random bytes from the kernel, as lowercase hex.
pub fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Clients {
    /// Reads the clients file; none yet when it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut clients: Clients = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a bonnie clients file", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Clients::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        clients.path = path.to_path_buf();
        Ok(clients)
    }

    /// Writes the file anew (owner-only permissions, in a folder created 0750), atomically.
    fn save(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let temporary = self.path.with_extension("json.new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        let text = serde_json::to_string_pretty(self)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }

    /// Adds a client in `role` with a new password and secret, and returns them (they are not
    /// shown again).
    pub fn add(&mut self, name: &str, role: Role) -> anyhow::Result<Credentials> {
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
            bail!("a client name is one word without ':' (got {name:?})");
        }
        if self.clients.contains_key(name) {
            bail!("a client named {name:?} exists; remove it first to make new credentials");
        }
        let password = random_hex(16)?;
        // Hex digits are valid characters of argon2's unpadded base64 salt.
        let secret = random_hex(32)?;
        let salt = SaltString::from_b64(&random_hex(16)?)
            .map_err(|e| anyhow::anyhow!("making a salt: {e}"))?;
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
            .to_string();
        self.clients.insert(
            name.to_string(),
            Client {
                password_hash,
                secret: secret.clone(),
                created: bonnie_core::time::format_rfc3339_s(bonnie_core::time::now_ms()),
                role,
            },
        );
        self.save()?;
        Ok(Credentials {
            name: name.to_string(),
            password,
            secret,
        })
    }

    /// Removes a client; false if there was none of that name.
    pub fn remove(&mut self, name: &str) -> anyhow::Result<bool> {
        let removed = self.clients.remove(name).is_some();
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    /// The client with this name and password, if both match.
    pub fn authenticate(&self, name: &str, password: &str) -> Option<&Client> {
        let client = self.clients.get(name)?;
        let hash = PasswordHash::new(&client.password_hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_clients_authenticate_with_their_password_only_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.json");
        let mut clients = Clients::load(&path).unwrap();
        let made = clients.add("roundcube", Role::Groupware).unwrap();
        assert!(
            clients.add("roundcube", Role::Ediscovery).is_err(),
            "names are unique"
        );
        let again = Clients::load(&path).unwrap();
        let client = again
            .authenticate("roundcube", &made.password)
            .expect("the right password");
        assert_eq!(client.secret, made.secret);
        assert!(!client.password_hash.contains(&made.password));
        assert!(again.authenticate("roundcube", "wrong").is_none());
        assert!(again.authenticate("other", &made.password).is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secret is readable by its owner only");
        let nested = dir.path().join("new/folder/clients.json");
        Clients::load(&nested)
            .unwrap()
            .add("other", Role::Groupware)
            .unwrap();
        let folder = std::fs::metadata(nested.parent().unwrap()).unwrap();
        assert_eq!(
            folder.permissions().mode() & 0o027,
            0,
            "its folder is bonnie's"
        );
        let mut again = again;
        assert!(again.remove("roundcube").unwrap());
        assert!(!again.remove("roundcube").unwrap());
        assert!(Clients::load(&path).unwrap().clients.is_empty());
    }

    #[test]
    fn roles_are_kept_a_file_without_them_holds_groupware_clients_and_an_unknown_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.json");
        let mut clients = Clients::load(&path).unwrap();
        clients.add("roundcube", Role::Groupware).unwrap();
        clients.add("review", Role::Ediscovery).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("\"role\"").count(), 1, "{text}");
        let again = Clients::load(&path).unwrap();
        assert_eq!(again.clients["roundcube"].role, Role::Groupware);
        assert_eq!(again.clients["review"].role, Role::Ediscovery);
        let forged = text.replace("\"ediscovery\"", "\"superuser\"");
        std::fs::write(&path, forged).unwrap();
        let error = format!("{:#}", Clients::load(&path).unwrap_err());
        assert!(error.contains("superuser"), "{error}");
    }
}
