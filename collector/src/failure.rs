//! Why a collector command did not get its data, sorted into the two cases that decide what
//! becomes of the job: transient (Cyrus or LDAP unreachable or busy: the job is postponed and
//! retried) and permanent (the message was expunged before the fetch, the folder is gone: the
//! record is stored with the reason). What cannot be told apart counts as transient, so that
//! a doubtful case ends FAILED and visible rather than archived without its data.

use bonnie_imap::ImapError;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later; the job is postponed with back-off, FAILED after the broker's
    /// `max_postpones`.
    Transient(String),
    /// Retrying will not help; the record is stored with this reason.
    Permanent(String),
}

impl Failure {
    /// A transient failure.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient(reason.into())
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent(reason.into())
    }

    /// An IMAP exchange's failure, `doing` saying what was tried (`EXAMINE Calendar`).
    ///
    /// Connection errors (refused, reset, timed out, closed after `BYE`) and answers that
    /// cannot be understood are transient; so are `NO [UNAVAILABLE]`, `[INUSE]`, `[LIMIT]` and
    /// any refusal without a code that says the folder is gone. `NO [NONEXISTENT]`,
    /// `[TRYCREATE]` or Cyrus's "Mailbox does not exist" are permanent, and so are a literal
    /// over `imap_max_literal_bytes` and an argument that cannot be sent.
    pub fn imap(doing: &str, error: &ImapError) -> Self {
        match error {
            ImapError::Io(e) => Self::transient(format!("{doing}: Cyrus is unreachable: {e}")),
            ImapError::Bye(text) => {
                Self::transient(format!("{doing}: Cyrus closed the connection: {text}"))
            }
            ImapError::Tls(e) => Self::transient(format!("{doing}: TLS with Cyrus failed: {e}")),
            ImapError::Protocol(text) => Self::transient(format!(
                "{doing}: Cyrus's answer was not understood: {text}"
            )),
            // The message is larger than the collector takes; asking again will not shrink it.
            ImapError::TooLarge { announced, max } => Self::permanent(format!(
                "{doing}: Cyrus announced {announced} bytes, over imap_max_literal_bytes ({max})"
            )),
            // What the collector would send is not IMAP (a flag or set it built): a bug or a
            // forged notification, the same on every try.
            ImapError::Argument(text) => Self::permanent(format!("{doing}: {text}")),
            ImapError::Refused {
                status,
                text,
                command,
            } => {
                let said = format!("{doing}: Cyrus said {status} to {command}: {text}");
                if folder_gone(status, text) {
                    Self::permanent(format!("the folder no longer exists ({said})"))
                } else {
                    Self::transient(said)
                }
            }
        }
    }
}

/// True when a refusal says the folder does not exist (RFC 5530 codes, or Cyrus's own text).
fn folder_gone(status: &str, text: &str) -> bool {
    if !status.eq_ignore_ascii_case("NO") {
        return false;
    }
    let upper = text.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix('[')
        .and_then(|rest| rest.split([']', ' ']).next())
    {
        return matches!(code, "NONEXISTENT" | "TRYCREATE");
    }
    upper.contains("MAILBOX DOES NOT EXIST")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: &str, text: &str) -> Failure {
        Failure::imap(
            "EXAMINE INBOX",
            &ImapError::Refused {
                command: "EXAMINE".into(),
                status: status.into(),
                text: text.into(),
            },
        )
    }

    #[test]
    fn connection_failures_are_transient() {
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::WouldBlock,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let e = ImapError::Io(std::io::Error::new(kind, "x"));
            assert!(matches!(
                Failure::imap("connect", &e),
                Failure::Transient(_)
            ));
        }
        for e in [
            ImapError::Protocol("* 1 FETCH (".into()),
            ImapError::Bye("Service shutting down".into()),
            ImapError::Tls("invalid peer certificate: UnknownIssuer".into()),
        ] {
            assert!(matches!(
                Failure::imap("connect", &e),
                Failure::Transient(_)
            ));
        }
    }

    #[test]
    fn a_message_over_the_bound_is_permanent() {
        let e = ImapError::TooLarge {
            announced: 99_999_999_999,
            max: 1024,
        };
        match Failure::imap("UID FETCH 1", &e) {
            Failure::Permanent(reason) => assert!(reason.contains("imap_max_literal_bytes")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_a_gone_folder_is_permanent() {
        assert!(matches!(
            refused("NO", "[UNAVAILABLE] Resource temporarily unavailable"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            refused("NO", "[INUSE] Mailbox is locked"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            refused("NO", "[AUTHENTICATIONFAILED] Invalid credentials"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            refused("BAD", "Invalid command"),
            Failure::Transient(_)
        ));
        for text in [
            "[NONEXISTENT] No such mailbox",
            "[TRYCREATE] Mailbox does not exist",
            "Mailbox does not exist",
        ] {
            match refused("NO", text) {
                Failure::Permanent(reason) => assert!(reason.contains("no longer exists")),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            refused("BAD", "Mailbox does not exist"),
            Failure::Transient(_)
        ));
    }
}
