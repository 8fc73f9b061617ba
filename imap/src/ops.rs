//! The commands bonnie uses, typed: what the collector needs (EXAMINE, UID FETCH, GETACL,
//! GETMETADATA) and what restore, back-fill and reconciliation will (APPEND with flags and
//! INTERNALDATE returning APPENDUID, LIST, STATUS with HIGHESTMODSEQ, FETCH CHANGEDSINCE,
//! STORE, MOVE) and DLP actions (a keyword, a move to quarantine with or without the MOVE
//! extension, SEARCH by Message-ID). Mailbox names are UTF-8 here and modified UTF-7 on the wire.

use std::collections::BTreeMap;

use imap_proto::{
    AttributeValue, MailboxDatum, MessageSection, Response, ResponseCode, SectionPath,
    StatusAttribute, UidSetMember,
};

use crate::{
    Connection, ImapError,
    command::{Command, check_flag, check_set},
    utf7,
};

/// What SELECT or EXAMINE tells of a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// Messages in it.
    pub exists: Option<u32>,
    /// `UIDVALIDITY`.
    pub uidvalidity: Option<u32>,
    /// `UIDNEXT`.
    pub uidnext: Option<u32>,
    /// `HIGHESTMODSEQ` (servers with CONDSTORE).
    pub highestmodseq: Option<u64>,
    /// True for EXAMINE, or a mailbox the user may not change.
    pub read_only: bool,
}

/// A mailbox as LIST names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The name, decoded from modified UTF-7.
    pub name: String,
    /// The name as the server sent it.
    pub wire_name: String,
    /// The hierarchy separator, if any.
    pub delimiter: Option<String>,
    /// Attributes (`\HasNoChildren`, `\Noselect`, ...), as the server wrote them.
    pub attributes: Vec<String>,
}

/// What STATUS tells of a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// `MESSAGES`.
    pub messages: Option<u32>,
    /// `UNSEEN`.
    pub unseen: Option<u32>,
    /// `UIDNEXT`.
    pub uidnext: Option<u32>,
    /// `UIDVALIDITY`.
    pub uidvalidity: Option<u32>,
    /// `HIGHESTMODSEQ` (asked for when the server has CONDSTORE).
    pub highestmodseq: Option<u64>,
}

/// How APPEND files a message.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Flags to set (`\Seen`, `$Label1`).
    pub flags: Vec<String>,
    /// The message's INTERNALDATE (restore keeps the original one).
    pub internal_date: Option<jiff::Zoned>,
}

impl AppendOptions {
    /// Options with these flags and no date.
    pub fn flags(flags: &[&str]) -> Self {
        Self {
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date: None,
        }
    }
}

/// Where APPEND put the message (UIDPLUS, RFC 4315).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendUid {
    /// The mailbox's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The new message's UID.
    pub uid: u32,
}

/// One message of a FETCH (or of a STORE's answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Its sequence number.
    pub seq: u32,
    /// `UID`.
    pub uid: Option<u32>,
    /// `FLAGS`.
    pub flags: Vec<String>,
    /// `MODSEQ` (CONDSTORE).
    pub modseq: Option<u64>,
    /// `INTERNALDATE`, as the server wrote it.
    pub internal_date: Option<String>,
    /// `RFC822.SIZE`.
    pub size: Option<u32>,
    /// Body sections by name: `""` for `BODY[]`, `HEADER`, `TEXT`, `1.2`, `1.MIME`.
    pub sections: BTreeMap<String, Vec<u8>>,
}

impl Fetched {
    /// `INTERNALDATE` in ms since the epoch, when the server sent one that reads.
    pub fn internal_date_ms(&self) -> Option<i64> {
        internal_date_ms(self.internal_date.as_deref()?)
    }
}

/// IMAP's date-time (`01-Jan-2026 10:00:00 +0100`, as FETCH INTERNALDATE writes it) in ms
/// since the epoch.
pub fn internal_date_ms(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse("%d-%b-%Y %H:%M:%S %z", text.trim())
        .ok()?
        .to_timestamp()
        .ok()
        .map(|t| t.as_millisecond())
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

fn section_name(section: &Option<SectionPath>) -> String {
    let part = |m: &MessageSection| match m {
        MessageSection::Header => "HEADER",
        MessageSection::Mime => "MIME",
        MessageSection::Text => "TEXT",
    };
    match section {
        None => String::new(),
        Some(SectionPath::Full(m)) => part(m).to_string(),
        Some(SectionPath::Part(numbers, m)) => {
            let mut name = numbers
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".");
            if let Some(m) = m {
                name.push('.');
                name.push_str(part(m));
            }
            name
        }
    }
}

fn fetched(seq: u32, attributes: Vec<AttributeValue<'static>>) -> Fetched {
    let mut out = Fetched {
        seq,
        ..Fetched::default()
    };
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(uid) => out.uid = Some(uid),
            AttributeValue::Flags(flags) => {
                out.flags = flags.into_iter().map(|f| f.into_owned()).collect()
            }
            AttributeValue::ModSeq(modseq) => out.modseq = Some(modseq),
            AttributeValue::InternalDate(date) => out.internal_date = Some(date.into_owned()),
            AttributeValue::Rfc822Size(size) => out.size = Some(size),
            AttributeValue::BodySection {
                section,
                data: Some(data),
                ..
            } => {
                out.sections
                    .insert(section_name(&section), data.into_owned());
            }
            AttributeValue::Rfc822(Some(data)) => {
                out.sections.insert(String::new(), data.into_owned());
            }
            AttributeValue::Rfc822Header(Some(data)) => {
                out.sections.insert("HEADER".into(), data.into_owned());
            }
            AttributeValue::Rfc822Text(Some(data)) => {
                out.sections.insert("TEXT".into(), data.into_owned());
            }
            _ => {}
        }
    }
    out
}

/// The FETCH responses among `untagged`, merged per message (a server may split one
/// message's items over several responses).
fn fetches(untagged: Vec<Response<'static>>) -> Vec<Fetched> {
    let mut out: Vec<Fetched> = Vec::new();
    for response in untagged {
        if let Response::Fetch(seq, attributes) = response {
            let new = fetched(seq, attributes);
            match out.iter_mut().find(|f| f.seq == seq) {
                Some(existing) => {
                    existing.uid = existing.uid.or(new.uid);
                    existing.modseq = new.modseq.or(existing.modseq);
                    existing.size = existing.size.or(new.size);
                    existing.internal_date = existing.internal_date.take().or(new.internal_date);
                    if !new.flags.is_empty() {
                        existing.flags = new.flags;
                    }
                    existing.sections.extend(new.sections);
                }
                None => out.push(new),
            }
        }
    }
    out
}

/// IMAP's date-time: `"01-Jan-2026 10:00:00 +0100"`.
fn imap_date_time(date: &jiff::Zoned) -> String {
    date.strftime("\"%d-%b-%Y %H:%M:%S %z\"").to_string()
}

impl Connection {
    fn select_like(&mut self, verb: &str, mailbox: &str) -> Result<Selected, ImapError> {
        let done = self.send(Command::new(verb).mailbox(mailbox))?;
        let mut selected = Selected {
            read_only: matches!(done.code, Some(ResponseCode::ReadOnly)),
            ..Selected::default()
        };
        for response in done.untagged {
            match response {
                Response::MailboxData(MailboxDatum::Exists(n)) => selected.exists = Some(n),
                Response::Data {
                    code: Some(code), ..
                } => match code {
                    ResponseCode::UidValidity(v) => selected.uidvalidity = Some(v),
                    ResponseCode::UidNext(v) => selected.uidnext = Some(v),
                    ResponseCode::HighestModSeq(v) => selected.highestmodseq = Some(v),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(selected)
    }

    /// `SELECT`.
    pub fn select(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        self.select_like("SELECT", mailbox)
    }

    /// `EXAMINE` (SELECT without changes, not even `\Seen`).
    pub fn examine(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        self.select_like("EXAMINE", mailbox)
    }

    /// `CREATE`.
    pub fn create(&mut self, mailbox: &str) -> Result<(), ImapError> {
        self.send(Command::new("CREATE").mailbox(mailbox)).map(drop)
    }

    /// `DELETE`.
    pub fn delete(&mut self, mailbox: &str) -> Result<(), ImapError> {
        self.send(Command::new("DELETE").mailbox(mailbox)).map(drop)
    }

    /// `LIST <reference> <pattern>` (both UTF-8; `*` and `%` are wildcards).
    pub fn list(&mut self, reference: &str, pattern: &str) -> Result<Vec<ListEntry>, ImapError> {
        let done = self.send(
            Command::new("LIST")
                .string(utf7::encode(reference).as_bytes())
                .string(utf7::encode(pattern).as_bytes()),
        )?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|response| match response {
                Response::MailboxData(MailboxDatum::List {
                    name_attributes,
                    delimiter,
                    name,
                }) => Some(ListEntry {
                    name: utf7::decode_lossy(&name),
                    wire_name: name.into_owned(),
                    delimiter: delimiter.map(|d| d.into_owned()),
                    attributes: name_attributes.iter().map(|a| format!("{a:?}")).collect(),
                }),
                _ => None,
            })
            .collect())
    }

    /// `STATUS` with MESSAGES, UNSEEN, UIDNEXT, UIDVALIDITY and, when the server has
    /// CONDSTORE, HIGHESTMODSEQ.
    pub fn status(&mut self, mailbox: &str) -> Result<MailboxStatus, ImapError> {
        let items = if self.has("CONDSTORE") {
            "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
        } else {
            "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"
        };
        let done = self.send(Command::new("STATUS").mailbox(mailbox).raw(items)?)?;
        let mut status = MailboxStatus::default();
        for response in done.untagged {
            if let Response::MailboxData(MailboxDatum::Status {
                status: attributes, ..
            }) = response
            {
                for attribute in attributes {
                    match attribute {
                        StatusAttribute::Messages(n) => status.messages = Some(n),
                        StatusAttribute::Unseen(n) => status.unseen = Some(n),
                        StatusAttribute::UidNext(n) => status.uidnext = Some(n),
                        StatusAttribute::UidValidity(n) => status.uidvalidity = Some(n),
                        StatusAttribute::HighestModSeq(n) => status.highestmodseq = Some(n),
                        _ => {}
                    }
                }
            }
        }
        Ok(status)
    }

    /// `APPEND` with flags and INTERNALDATE; where the message went, when the server has
    /// UIDPLUS.
    pub fn append(
        &mut self,
        mailbox: &str,
        options: &AppendOptions,
        message: &[u8],
    ) -> Result<Option<AppendUid>, ImapError> {
        let mut command = Command::new("APPEND").mailbox(mailbox);
        if !options.flags.is_empty() {
            for flag in &options.flags {
                check_flag(flag)?;
            }
            command = command.raw(&format!("({})", options.flags.join(" ")))?;
        }
        if let Some(date) = &options.internal_date {
            command = command.raw(&imap_date_time(date))?;
        }
        let done = self.send(command.literal(message))?;
        Ok(match done.code {
            Some(ResponseCode::AppendUid(uidvalidity, uids)) => match uids.first() {
                Some(UidSetMember::Uid(uid)) => Some(AppendUid {
                    uidvalidity,
                    uid: *uid,
                }),
                Some(UidSetMember::UidRange(range)) => Some(AppendUid {
                    uidvalidity,
                    uid: *range.start(),
                }),
                None => None,
            },
            _ => None,
        })
    }

    /// `UID FETCH <set> <items>` (`items` as IMAP writes them: `(UID FLAGS BODY.PEEK[])`),
    /// with `(CHANGEDSINCE <modseq>)` when given (CONDSTORE: only messages changed since).
    pub fn uid_fetch(
        &mut self,
        set: &str,
        items: &str,
        changed_since: Option<u64>,
    ) -> Result<Vec<Fetched>, ImapError> {
        check_set(set)?;
        let mut command = Command::new("UID FETCH").raw(set)?.raw(items)?;
        if let Some(modseq) = changed_since {
            command = command.raw(&format!("(CHANGEDSINCE {modseq})"))?;
        }
        Ok(fetches(self.send(command)?.untagged))
    }

    /// The bytes of `BODY.PEEK[<section>]` of message `uid` of the selected mailbox (`""` for
    /// the whole message, `HEADER`); `None` when the mailbox holds no such UID.
    pub fn uid_fetch_section(
        &mut self,
        uid: u64,
        section: &str,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let items = format!("(UID BODY.PEEK[{section}])");
        let mut found = self.uid_fetch(&uid.to_string(), &items, None)?;
        Ok(found
            .iter_mut()
            .find(|f| f.uid.map(u64::from) == Some(uid))
            .and_then(|f| f.sections.remove(&section.to_ascii_uppercase())))
    }

    /// `UID STORE <set> [(UNCHANGEDSINCE m)] ±FLAGS (<flags>)`: the messages' new state.
    pub fn uid_store(
        &mut self,
        set: &str,
        mode: StoreMode,
        flags: &[&str],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<Fetched>, ImapError> {
        check_set(set)?;
        for flag in flags {
            check_flag(flag)?;
        }
        let mut command = Command::new("UID STORE").raw(set)?;
        if let Some(modseq) = unchanged_since {
            command = command.raw(&format!("(UNCHANGEDSINCE {modseq})"))?;
        }
        let verb = match mode {
            StoreMode::Add => "+FLAGS",
            StoreMode::Remove => "-FLAGS",
            StoreMode::Replace => "FLAGS",
        };
        let command = command.raw(&format!("{verb} ({})", flags.join(" ")))?;
        Ok(fetches(self.send(command)?.untagged))
    }

    /// `UID MOVE <set> <mailbox>` (RFC 6851).
    pub fn uid_move(&mut self, set: &str, mailbox: &str) -> Result<(), ImapError> {
        check_set(set)?;
        self.send(Command::new("UID MOVE").raw(set)?.mailbox(mailbox))
            .map(drop)
    }

    /// `UID COPY <set> <mailbox>`.
    pub fn uid_copy(&mut self, set: &str, mailbox: &str) -> Result<(), ImapError> {
        check_set(set)?;
        self.send(Command::new("UID COPY").raw(set)?.mailbox(mailbox))
            .map(drop)
    }

    /// `UID EXPUNGE <set>` (UIDPLUS, RFC 4315): only these messages, whatever else is
    /// marked `\Deleted`.
    pub fn uid_expunge(&mut self, set: &str) -> Result<(), ImapError> {
        check_set(set)?;
        self.send(Command::new("UID EXPUNGE").raw(set)?).map(drop)
    }

    /// Moves message `uid` of the selected mailbox to `mailbox`: `UID MOVE` when the server
    /// offers MOVE, else `UID COPY`, `\Deleted` and `UID EXPUNGE` of that UID alone (which
    /// needs UIDPLUS: a plain EXPUNGE would also remove what the user had marked). Where the
    /// message went, when the server says (COPYUID).
    pub fn move_message(
        &mut self,
        uid: u32,
        mailbox: &str,
    ) -> Result<Option<AppendUid>, ImapError> {
        let set = uid.to_string();
        let done = if self.has("MOVE") {
            self.send(Command::new("UID MOVE").raw(&set)?.mailbox(mailbox))?
        } else if self.has("UIDPLUS") {
            let done = self.send(Command::new("UID COPY").raw(&set)?.mailbox(mailbox))?;
            self.uid_store(&set, StoreMode::Add, &["\\Deleted"], None)?;
            self.uid_expunge(&set)?;
            done
        } else {
            return Err(ImapError::Argument(
                "the server offers neither MOVE nor UIDPLUS: a message cannot be moved alone"
                    .to_string(),
            ));
        };
        let told = done
            .untagged
            .iter()
            .filter_map(|response| match response {
                Response::Data {
                    code: Some(code), ..
                } => Some(code),
                _ => None,
            })
            .chain(done.code.as_ref());
        for code in told {
            if let ResponseCode::CopyUid(uidvalidity, _, destination) = code {
                let uid = match destination.first() {
                    Some(UidSetMember::Uid(uid)) => *uid,
                    Some(UidSetMember::UidRange(range)) => *range.start(),
                    None => continue,
                };
                return Ok(Some(AppendUid {
                    uidvalidity: *uidvalidity,
                    uid,
                }));
            }
        }
        Ok(None)
    }

    /// `UID SEARCH HEADER <field> <value>`: the UIDs of the selected mailbox's messages whose
    /// header `field` contains `value`.
    pub fn uid_search_header(&mut self, field: &str, value: &str) -> Result<Vec<u32>, ImapError> {
        if field.is_empty()
            || !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ImapError::Argument(format!(
                "{field:?} is not a header field name"
            )));
        }
        let mut command = Command::new("UID SEARCH");
        if !value.is_ascii() {
            command = command.raw("CHARSET UTF-8")?;
        }
        let command = command.raw("HEADER")?.raw(field)?.string(value.as_bytes());
        let mut uids = Vec::new();
        for response in self.send(command)?.untagged {
            if let Response::MailboxData(MailboxDatum::Search(found)) = response {
                uids.extend(found);
            }
        }
        Ok(uids)
    }

    /// `GETACL`: the mailbox's ACL, as `(identifier, rights)`.
    pub fn getacl(&mut self, mailbox: &str) -> Result<Vec<(String, String)>, ImapError> {
        let done = self.send(Command::new("GETACL").mailbox(mailbox))?;
        let mut acl = Vec::new();
        for response in done.untagged {
            if let Response::Acl(entries) = response {
                for entry in entries.acls {
                    let rights: String = entry.rights.iter().map(|r| char::from(*r)).collect();
                    acl.push((entry.identifier.into_owned(), rights));
                }
            }
        }
        Ok(acl)
    }

    /// `MYRIGHTS <mailbox>`: the logged-in user's rights on it (`lrswi...`).
    pub fn myrights(&mut self, mailbox: &str) -> Result<String, ImapError> {
        let done = self.send(Command::new("MYRIGHTS").mailbox(mailbox))?;
        Ok(done
            .untagged
            .into_iter()
            .find_map(|response| match response {
                Response::MyRights(mine) => {
                    Some(mine.rights.iter().map(|r| char::from(*r)).collect())
                }
                _ => None,
            })
            .unwrap_or_default())
    }

    /// `SETACL <mailbox> <identifier> <rights>`.
    pub fn setacl(
        &mut self,
        mailbox: &str,
        identifier: &str,
        rights: &str,
    ) -> Result<(), ImapError> {
        self.send(
            Command::new("SETACL")
                .mailbox(mailbox)
                .astring(identifier.as_bytes())
                .astring(rights.as_bytes()),
        )
        .map(drop)
    }

    /// `DELETEACL <mailbox> <identifier>`: the identifier's rights removed.
    pub fn deleteacl(&mut self, mailbox: &str, identifier: &str) -> Result<(), ImapError> {
        self.send(
            Command::new("DELETEACL")
                .mailbox(mailbox)
                .astring(identifier.as_bytes()),
        )
        .map(drop)
    }

    /// `GETMETADATA (DEPTH infinity) <mailbox> (<entries>)`: every entry with a value.
    pub fn getmetadata(
        &mut self,
        mailbox: &str,
        entries: &[&str],
    ) -> Result<BTreeMap<String, String>, ImapError> {
        let mut list = String::from("(");
        for (i, entry) in entries.iter().enumerate() {
            if entry.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'"') {
                return Err(ImapError::Argument(format!(
                    "{entry:?} is not a metadata entry"
                )));
            }
            if i > 0 {
                list.push(' ');
            }
            list.push_str(entry);
        }
        list.push(')');
        let done = self.send(
            Command::new("GETMETADATA")
                .raw("(DEPTH infinity)")?
                .mailbox(mailbox)
                .raw(&list)?,
        )?;
        let mut metadata = BTreeMap::new();
        for response in done.untagged {
            if let Response::MailboxData(MailboxDatum::MetadataSolicited { values, .. }) = response
            {
                for value in values {
                    if let Some(v) = value.value {
                        metadata.insert(value.entry, v);
                    }
                }
            }
        }
        Ok(metadata)
    }

    /// `SETMETADATA <mailbox> (<entry> <value>)`; `None` removes the entry.
    pub fn setmetadata(
        &mut self,
        mailbox: &str,
        entry: &str,
        value: Option<&[u8]>,
    ) -> Result<(), ImapError> {
        let mut command = Command::new("SETMETADATA")
            .mailbox(mailbox)
            .raw("(")?
            .string(entry.as_bytes());
        command = match value {
            Some(v) => command.string(v),
            None => command.raw("NIL")?,
        };
        self.send(command.close()).map(drop)
    }
}
