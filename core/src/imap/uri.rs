//! IMAP URLs in every form bonnie meets them, and the mailbox they name:
//! - Cyrus 3.6, admin namespace: `imap://host/user/john.doe/Calendar%40example.org;UIDVALIDITY=7/;UID=6`
//!   (the domain follows the whole folder path); the INBOX is `user/john.doe%40example.org`;
//!   a shared folder is any path outside `user/`;
//! - the older Kolab form, relative to the user in the authority:
//!   `imap://john.doe@example.org@host/INBOX;UIDVALIDITY=7`;
//! - a bare server, `imap://host`, for Login and Logout.

/// A parsed IMAP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUri {
    /// The server's host name.
    pub server: String,
    /// The mailbox, when the URL names one.
    pub mailbox: Option<Mailbox>,
    /// `UIDVALIDITY`, when given.
    pub uidvalidity: Option<u64>,
    /// `UID`, when given (a single message).
    pub uid: Option<u64>,
}

/// A mailbox (folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The path in Cyrus's admin namespace: `user/john.doe/Calendar@example.org`.
    pub path: String,
    /// The owner's login (`john.doe@example.org`), or `None` for a shared folder.
    pub owner: Option<String>,
    /// The name the owner sees (`INBOX`, `Calendar`, `Archive/2026`), or the path without
    /// the domain for a shared folder.
    pub name: String,
    /// The domain, if any.
    pub domain: Option<String>,
}

impl Mailbox {
    /// The mailbox named by an admin-namespace path, with `/` or `.` as hierarchy separator.
    pub fn from_path(path: &str) -> Self {
        let (without_domain, domain) = match path.rsplit_once('@') {
            Some((p, d)) if !d.is_empty() && !d.contains('/') => (p, Some(d.to_string())),
            _ => (path, None),
        };
        let separator = if without_domain.starts_with("user.") && !without_domain.contains('/') {
            '.'
        } else {
            '/'
        };
        let user_prefix = format!("user{separator}");
        match without_domain.strip_prefix(&user_prefix) {
            Some(rest) => {
                let (local, folder) = match rest.split_once(separator) {
                    Some((local, folder)) => (local, folder.replace(separator, "/")),
                    None => (rest, "INBOX".to_string()),
                };
                let owner = match &domain {
                    Some(d) => format!("{local}@{d}"),
                    None => local.to_string(),
                };
                Self {
                    path: path.to_string(),
                    owner: Some(owner),
                    name: folder,
                    domain,
                }
            }
            None => Self {
                path: path.to_string(),
                owner: None,
                name: without_domain.replace(separator, "/"),
                domain,
            },
        }
    }

    /// The mailbox `name` of user `login` (`john.doe@example.org`), as a relative name from the
    /// user's view (`INBOX`, `Calendar`).
    pub fn of_user(login: &str, name: &str) -> Self {
        let (local, domain) = match login.rsplit_once('@') {
            Some((l, d)) => (l, Some(d.to_string())),
            None => (login, None),
        };
        let relative = name.trim_matches('/');
        let inbox = relative.is_empty() || relative.eq_ignore_ascii_case("INBOX");
        let mut path = if inbox {
            format!("user/{local}")
        } else {
            format!("user/{local}/{relative}")
        };
        if let Some(d) = &domain {
            path.push('@');
            path.push_str(d);
        }
        let name = if inbox {
            "INBOX".to_string()
        } else {
            relative.to_string()
        };
        Self {
            path,
            owner: Some(login.to_string()),
            name,
            domain,
        }
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses an IMAP URL; `None` if it is not one.
pub fn parse(uri: &str) -> Option<ImapUri> {
    let rest = uri
        .strip_prefix("imap://")
        .or_else(|| uri.strip_prefix("IMAP://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    // `user@domain@host`, `user@host` or `host` (with an optional port).
    let (user, server) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(percent_decode(user)), host),
        None => (None, authority),
    };
    let server = server.split(':').next().unwrap_or(server).to_string();
    let mut uidvalidity = None;
    let mut uid = None;
    let mut mailbox_part = String::new();
    for (index, segment) in path.split(';').enumerate() {
        if index == 0 {
            mailbox_part = segment.trim_end_matches('/').to_string();
            continue;
        }
        let segment = segment.trim_end_matches('/');
        if let Some((key, value)) = segment.split_once('=') {
            let value = value.split('/').next().unwrap_or(value);
            match key.to_ascii_uppercase().as_str() {
                "UIDVALIDITY" => uidvalidity = value.parse().ok(),
                "UID" => uid = value.parse().ok(),
                _ => {}
            }
        }
    }
    // A trailing "/;UID=n" leaves the UID segment in the path part of the split above.
    let mailbox_path = percent_decode(&mailbox_part);
    let mailbox = if mailbox_path.is_empty() {
        None
    } else {
        Some(match &user {
            Some(login) => Mailbox::of_user(login, &mailbox_path),
            None => Mailbox::from_path(&mailbox_path),
        })
    };
    Some(ImapUri {
        server,
        mailbox,
        uidvalidity,
        uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrus_3_6_folder_and_message_urls() {
        let uri = parse("imap://cyrus-lab.example.org/user/john.doe/Calendar%40example.org;UIDVALIDITY=1795886003/;UID=1").unwrap();
        assert_eq!(uri.server, "cyrus-lab.example.org");
        assert_eq!(uri.uidvalidity, Some(1_795_886_003));
        assert_eq!(uri.uid, Some(1));
        let mailbox = uri.mailbox.unwrap();
        assert_eq!(mailbox.path, "user/john.doe/Calendar@example.org");
        assert_eq!(mailbox.owner.as_deref(), Some("john.doe@example.org"));
        assert_eq!(mailbox.name, "Calendar");
        assert_eq!(mailbox.domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn the_inbox_and_nested_folders() {
        let inbox = parse(
            "imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=1795885999",
        )
        .unwrap();
        let mailbox = inbox.mailbox.unwrap();
        assert_eq!(
            (mailbox.name.as_str(), mailbox.owner.as_deref()),
            ("INBOX", Some("john.doe@example.org"))
        );
        assert_eq!(inbox.uid, None);
        let nested = parse("imap://h/user/john.doe/Archive/2026%40example.org")
            .unwrap()
            .mailbox
            .unwrap();
        assert_eq!(nested.name, "Archive/2026");
    }

    #[test]
    fn shared_folders_have_no_owner() {
        let shared = parse("imap://h/shared/Team%20Calendar%40example.org;UIDVALIDITY=5")
            .unwrap()
            .mailbox
            .unwrap();
        assert_eq!(shared.owner, None);
        assert_eq!(shared.name, "shared/Team Calendar");
        assert_eq!(shared.path, "shared/Team Calendar@example.org");
    }

    #[test]
    fn the_older_kolab_form_is_relative_to_its_user() {
        let uri =
            parse("imap://john.doe@example.org@kolab.example.org/INBOX;UIDVALIDITY=1411487701")
                .unwrap();
        assert_eq!(uri.server, "kolab.example.org");
        assert_eq!(uri.uidvalidity, Some(1_411_487_701));
        let mailbox = uri.mailbox.unwrap();
        assert_eq!(mailbox.path, "user/john.doe@example.org");
        assert_eq!(mailbox.name, "INBOX");
        let calendar = parse("imap://john.doe@example.org@kolab.example.org/Calendar")
            .unwrap()
            .mailbox
            .unwrap();
        assert_eq!(calendar.path, "user/john.doe/Calendar@example.org");
    }

    #[test]
    fn a_bare_server_and_garbage() {
        let login = parse("imap://cyrus-lab.example.org").unwrap();
        assert_eq!(
            (login.server.as_str(), login.mailbox),
            ("cyrus-lab.example.org", None)
        );
        assert_eq!(parse("http://x/"), None);
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%40%zz"), "@%zz");
    }

    #[test]
    fn dot_separated_paths() {
        let mailbox = Mailbox::from_path("user.john.Sent@example.org");
        assert_eq!(
            (mailbox.owner.as_deref(), mailbox.name.as_str()),
            (Some("john@example.org"), "Sent")
        );
    }
}
