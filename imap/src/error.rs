//! Why an IMAP exchange failed, in the cases a caller decides on: the connection (retry on a
//! new one), a refusal by the server (read its status and text), an answer too large for the
//! configured bounds, or an argument that cannot be sent.

use std::io;

/// Why an IMAP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The connection failed (refused, reset, timed out, closed).
    #[error("IMAP connection: {0}")]
    Io(#[from] io::Error),
    /// TLS could not be set up (configuration, handshake, certificate).
    #[error("IMAP TLS: {0}")]
    Tls(String),
    /// The server said NO or BAD.
    #[error("IMAP {command}: {status} {text}")]
    Refused {
        /// The command, without arguments.
        command: String,
        /// `NO` or `BAD`.
        status: String,
        /// The server's text, its response code first in brackets when it gave one
        /// (`[NONEXISTENT] Mailbox does not exist`).
        text: String,
    },
    /// The server said BYE and closed the connection.
    #[error("IMAP server closed the connection: {0}")]
    Bye(String),
    /// The server's answer could not be understood.
    #[error("IMAP answer not understood: {0}")]
    Protocol(String),
    /// The server announced more bytes than the configured bound; nothing was allocated for
    /// them and the connection is given up.
    #[error("IMAP answer too large: {announced} bytes announced, at most {max} allowed")]
    TooLarge {
        /// What the server announced (a literal's size, or the line read so far).
        announced: u64,
        /// The bound.
        max: u64,
    },
    /// What the caller asked cannot be sent (a flag with a space, a UID set with a letter).
    #[error("IMAP command not sent: {0}")]
    Argument(String),
}

impl ImapError {
    /// True when the connection is of no further use (a new one may succeed).
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ImapError::Io(_)
                | ImapError::Tls(_)
                | ImapError::Bye(_)
                | ImapError::Protocol(_)
                | ImapError::TooLarge { .. }
        )
    }
}
