//! One authenticated connection, kept and reused: a collector pool thread holds one
//! [`Pool`], whose connection serves job after job. A connection that fails (reset, timed
//! out, closed by the server while idle) is given up and a new one opened, and the
//! operation is tried once more on it; a refusal (NO, BAD) keeps the connection.

use crate::{Config, Connection, ImapError};

/// Whom the connection is authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The admin itself.
    Admin,
    /// A user, the admin acting for them (SASL PLAIN with an authorization identity).
    User(String),
}

/// The admin's credentials.
#[derive(Clone)]
pub struct Credentials {
    /// The admin's login.
    pub admin: String,
    /// The admin's password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// One connection, authenticated as the last operation needed, reused while it works.
pub struct Pool {
    config: Config,
    credentials: Credentials,
    current: Option<(Identity, Connection)>,
    opened: u64,
}

impl Pool {
    /// A pool that connects with `config` and authenticates with `credentials`; nothing is
    /// opened before the first operation.
    pub fn new(config: Config, credentials: Credentials) -> Self {
        Self {
            config,
            credentials,
            current: None,
            opened: 0,
        }
    }

    /// The configuration it connects with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many connections it has opened so far.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    fn open(&mut self, identity: &Identity) -> Result<Connection, ImapError> {
        let mut connection = Connection::connect(&self.config)?;
        self.opened += 1;
        let Credentials { admin, password } = &self.credentials;
        match identity {
            Identity::User(user) => {
                connection.authenticate_plain(Some(user), admin, password, None)?
            }
            Identity::Admin if connection.has("AUTH=PLAIN") => {
                connection.authenticate_plain(None, admin, password, None)?
            }
            Identity::Admin => connection.login(admin, password)?,
        }
        tracing::debug!(address = %self.config.address, identity = ?identity,
            tls = connection.is_tls(), "IMAP connection opened.");
        Ok(connection)
    }

    /// Runs `operation` on the connection authenticated as `identity`: the kept one when it
    /// is authenticated so, else a new one (the kept one logged out). When a kept connection
    /// fails, `operation` runs once more on a new one, so it must be safe to repeat (reads
    /// are; an APPEND may then file its message twice).
    pub fn run<T>(
        &mut self,
        identity: &Identity,
        mut operation: impl FnMut(&mut Connection) -> Result<T, ImapError>,
    ) -> Result<T, ImapError> {
        let reused = match self.current.take() {
            Some((kept, connection)) if &kept == identity => Some(connection),
            Some((_, mut other)) => {
                let _ = other.logout();
                None
            }
            None => None,
        };
        if let Some(mut connection) = reused {
            match operation(&mut connection) {
                Err(e) if e.breaks_connection() && !matches!(e, ImapError::TooLarge { .. }) => {
                    tracing::info!(address = %self.config.address, error = %e,
                        "The kept IMAP connection failed; opening a new one.");
                }
                result => {
                    self.keep(identity, connection, &result);
                    return result;
                }
            }
        }
        let mut connection = self.open(identity)?;
        let result = operation(&mut connection);
        self.keep(identity, connection, &result);
        result
    }

    fn keep<T>(
        &mut self,
        identity: &Identity,
        connection: Connection,
        result: &Result<T, ImapError>,
    ) {
        match result {
            Err(e) if e.breaks_connection() => self.current = None,
            _ => self.current = Some((identity.clone(), connection)),
        }
    }

    /// Logs out the kept connection, if any.
    pub fn close(&mut self) {
        if let Some((_, mut connection)) = self.current.take() {
            let _ = connection.logout();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}
