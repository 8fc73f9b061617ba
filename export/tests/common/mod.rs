//! What the export tests share: a real ledger (bonnie_ledger's MemoryStore, leaves appended
//! as the broker does, a checkpoint signed with an ArchiveKey) over real messages (the mail
//! fixtures: legacy charsets, non-ASCII, nested and broken MIME; and a few made here: `From `
//! lines in the body, attachments, þ and ® in the subject), and the items an export is given.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bonnie_export::{
    Attachment, Envelope, Exception, ExportHeader, ExportItem, Format, ItemList, ItemMeta, Options,
};
use bonnie_ledger::{
    ArchiveKey, Checkpoint, Entry, LeafKind, MemoryStore, NodeStore as _, append, merkle,
};
use sha2::{Digest as _, Sha256};

/// The archive key's name: the checkpoints' origin.
pub const ORIGIN: &str = "archive.example.org/bonnie";

/// One archived message and what an export is told of it.
#[derive(Clone)]
pub struct Message {
    pub native: Vec<u8>,
    pub meta: ItemMeta,
    pub text: String,
    pub attachments: Vec<Attachment>,
}

impl Message {
    pub fn item(&self) -> ExportItem {
        let mut item = ExportItem::from_bytes(self.meta.clone(), self.native.clone());
        item.text = self.text.clone();
        item.attachments = self.attachments.clone();
        item
    }
}

/// The archive: its messages, the header an export of all of them gets, its key.
pub struct Corpus {
    pub messages: Vec<Message>,
    pub header: ExportHeader,
    pub store: MemoryStore,
    pub checkpoint: Checkpoint,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail")
}

/// The fixtures' messages, sorted by name, then the ones made here.
pub fn natives() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    let mut natives: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    natives.push(
        b"From: Mallory <mallory@example.net>\r\nTo: john@example.org\r\nSubject: lines that look like separators\r\nMessage-ID: <from-lines@example.net>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nFrom here on, beware.\r\n>From a quoted reply\r\n>>From deeper\r\nFrom \r\n\r\n"
            .to_vec(),
    );
    natives.push(
        "From: =?utf-8?q?J=C3=B3n?= <jon@example.is>\nTo: jane@example.org, john@example.org\nCc: \"Doe; Jane\" <jane@example.org>\nSubject: =?utf-8?q?=C3=9Eetta_er_=C3=BEorn_=C2=AE_og_;_semikomma?=\nMessage-ID: <thorn@example.is>\nDate: Wed, 02 Dec 2026 08:30:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nHall\u{f3} \u{fe}\u{fa}, sj\u{e1}\u{f0}u vi\u{f0}hengin.\n--b1\nContent-Type: text/csv; name=\"t\u{f6}lur.csv\"\nContent-Disposition: attachment; filename=\"tolur.csv\"\nContent-Transfer-Encoding: base64\n\nYSxiLGMKMSwyLDMK\n--b1\nContent-Type: application/pdf; name=\"report.pdf\"\nContent-Disposition: attachment; filename=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\n--b1--\n"
            .as_bytes()
            .to_vec(),
    );
    natives
}

/// The archive key at `path`, made if missing (a child process reads the parent's).
pub fn key(path: &Path) -> ArchiveKey {
    if path.exists() {
        ArchiveKey::read(path).unwrap()
    } else {
        ArchiveKey::generate(path, ORIGIN).unwrap()
    }
}

/// What bonnie reads of a message, as an export's caller passes it.
fn describe(native: &[u8]) -> (ItemMeta, String, Vec<Attachment>) {
    let message = bonnie_mail::parse(native);
    let addresses = |list: &[bonnie_mail::Address]| -> Vec<String> {
        list.iter().map(bonnie_mail::format_address).collect()
    };
    let sent_ms = message
        .date
        .as_deref()
        .and_then(|d| d.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond());
    let text = message
        .bodies
        .iter()
        .map(|b| b.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let attachments = message
        .attachments
        .iter()
        .filter_map(|a| {
            let part = bonnie_mail::find_part(native, &|media| media == a.media_type)
                .ok()
                .flatten()?;
            (sha256_hex(&part.bytes) == a.sha256).then(|| Attachment {
                name: a.name.clone().unwrap_or_else(|| "attachment".into()),
                bytes: part.bytes,
                text: a.text.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut meta = bare_meta(sha256_hex(native), native.len() as u64);
    meta.sent_ms = sent_ms;
    meta.received_ms = sent_ms.map(|ms| ms + 5_000);
    meta.envelope = Envelope {
        from: addresses(&message.from),
        to: addresses(&message.to),
        cc: addresses(&message.cc),
        bcc: addresses(&message.bcc),
        subject: message.subject.clone().unwrap_or_default(),
        message_id: message
            .message_id
            .as_deref()
            .map(|m| m.trim_matches(['<', '>']).to_string()),
    };
    (meta, text, attachments)
}

/// The log over items: an audit leaf first, then per item a record leaf naming its payload
/// (and one other), a checkpoint of the whole signed at a fixed time, and a leaf after it (the
/// tree goes on growing; proofs are against the checkpoint). Sets each item's `log_seq`,
/// `leaf` and `proof`; the header of an export of them all.
pub fn prove(
    key_path: &Path,
    metas: &mut [&mut ItemMeta],
) -> (ExportHeader, MemoryStore, Checkpoint) {
    let key = key(key_path);
    let mut store = MemoryStore::new();
    let audit = |id: &str| Entry {
        kind: LeafKind::Audit,
        id: id.into(),
        record_digest: [7; 32],
        payload_digests: Vec::new(),
        refers_to: None,
    };
    append(&mut store, [audit("audit-0")]).unwrap();
    for (i, meta) in metas.iter_mut().enumerate() {
        let digest: [u8; 32] = (0..32)
            .map(|b| u8::from_str_radix(&meta.digest[2 * b..2 * b + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .try_into()
            .unwrap();
        let seqs = append(
            &mut store,
            [Entry {
                kind: LeafKind::Record,
                id: format!("job-{i}"),
                record_digest: [i as u8; 32],
                payload_digests: vec![digest, [0xee; 32]],
                refers_to: None,
            }],
        )
        .unwrap();
        meta.log_seq = seqs.start;
    }
    let time = jiff::Timestamp::from_second(1_796_100_000).unwrap();
    let checkpoint = Checkpoint::of_tree(&store, ORIGIN, None, time).unwrap();
    let note = key.sign(&checkpoint).unwrap();
    for meta in metas.iter_mut() {
        meta.leaf = store.leaf(meta.log_seq).unwrap();
        meta.proof = merkle::inclusion_proof(&store, meta.log_seq, checkpoint.size).unwrap();
    }
    append(&mut store, [audit("audit-after")]).unwrap();
    let header = ExportHeader {
        query: "from:example.org after:2020-01-01".into(),
        case: Some("case-7".into()),
        zone: "Europe/Berlin".into(),
        created_ms: 1_796_200_000_000,
        checkpoint_note: note,
        public_key: key.public().to_string(),
        items: ItemList::of(metas.iter().map(|m| m.digest.as_str())),
    };
    (header, store, checkpoint)
}

impl Corpus {
    /// The archive of `natives`, custodians, folders, deletions and back-fill spread over them.
    pub fn new(key_path: &Path, natives: Vec<Vec<u8>>) -> Corpus {
        let mut messages: Vec<Message> = natives
            .into_iter()
            .enumerate()
            .map(|(i, native)| {
                let (mut meta, text, attachments) = describe(&native);
                meta.custodian = ["john", "jane", "jörg"][i % 3].into();
                if i % 4 == 1 {
                    meta.folders.push("Archiv/2026".into());
                }
                meta.deleted = i % 5 == 2;
                meta.deleted_ms = meta.deleted.then_some(1_796_000_000_000);
                meta.backfilled = i % 6 == 3;
                Message {
                    native,
                    meta,
                    text,
                    attachments,
                }
            })
            .collect();
        let mut metas: Vec<&mut ItemMeta> = messages.iter_mut().map(|m| &mut m.meta).collect();
        let (header, store, checkpoint) = prove(key_path, &mut metas);
        Corpus {
            messages,
            header,
            store,
            checkpoint,
        }
    }

    pub fn items(&self) -> impl Iterator<Item = Result<ExportItem, Exception>> + '_ {
        self.messages.iter().map(|m| Ok(m.item()))
    }

    /// Exports every message into `out` with the default options of `format`.
    pub fn export(&self, out: &Path, format: Format) -> bonnie_export::Summary {
        bonnie_export::export(
            out,
            &self.header,
            &options(format),
            self.items(),
            &mut |_| {},
        )
        .unwrap()
    }
}

/// The metadata of an item known only by its native's digest and size.
pub fn bare_meta(digest: String, size: u64) -> ItemMeta {
    ItemMeta {
        digest,
        custodian: "john".into(),
        folders: vec!["INBOX".into()],
        sent_ms: Some(1_796_000_000_000),
        received_ms: Some(1_796_000_005_000),
        envelope: Envelope {
            from: vec!["Jane <jane@example.org>".into()],
            ..Envelope::default()
        },
        size,
        kind: "mail".into(),
        deleted: false,
        deleted_ms: None,
        backfilled: false,
        log_seq: 0,
        leaf: Vec::new(),
        proof: Vec::new(),
    }
}

/// DOCIDs `BON00000001`..., parts of 1 GiB, every item committed.
pub fn options(format: Format) -> Options {
    Options {
        part_bytes: 1 << 30,
        docid_prefix: "BON".into(),
        commit_items: 1,
        ..Options::new(format)
    }
}

/// Runs `python3 -c script args...`, its stdout; fails the test on a non-zero exit.
pub fn python(script: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `script` on the files `relative` (to `dir`), one JSON value per line of its output.
pub fn python_json_lines<'a>(
    script: &str,
    dir: &Path,
    relative: impl Iterator<Item = &'a str>,
) -> Vec<serde_json::Value> {
    let paths: Vec<String> = relative
        .map(|p| dir.join(p).to_string_lossy().into_owned())
        .collect();
    python(
        script,
        &paths.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

/// An mboxrd reader: a message begins at each line starting `From `; one `>` comes off each
/// line matching `^>+From `; the newline before the next `From ` line is the separator.
pub const MBOXRD_READER: &str = r#"
import email, email.policy, hashlib, json, re, sys
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    lines = data.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
        ends_with_newline = True
    messages, current = [], None
    for line in lines:
        if line.startswith(b'From '):
            if current is not None:
                messages.append(current)
            current = []
            continue
        if re.match(rb'^>+From ', line):
            line = line[1:]
        current.append(line)
    if current is not None:
        messages.append(current)
    for body in messages:
        raw = b'\n'.join(body)
        m = email.message_from_bytes(raw, policy=email.policy.default)
        print(json.dumps({"sha256": hashlib.sha256(raw).hexdigest(), "message_id": (m['Message-ID'] or '').strip('<>')}))
"#;

/// The manifest of a finished export.
pub fn manifest(dir: &Path) -> bonnie_export::manifest::Manifest {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A DAT parser written from the format's description (not the exporter's code): a BOM, then
/// records of þ-quoted values separated by U+0014, ended by CRLF outside quotes; þþ inside a
/// value is one þ, ® a line break.
pub fn parse_dat(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).expect("the load file is UTF-8");
    let text = text
        .strip_prefix('\u{feff}')
        .expect("the load file opens with a BOM");
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut value = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == 'þ' {
                if chars.peek() == Some(&'þ') {
                    chars.next();
                    value.push('þ');
                } else {
                    quoted = false;
                }
            } else if c == '®' {
                value.push('\n');
            } else {
                value.push(c);
            }
            continue;
        }
        match c {
            'þ' => quoted = true,
            '\u{14}' => record.push(std::mem::take(&mut value)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF outside a value");
                record.push(std::mem::take(&mut value));
                records.push(std::mem::take(&mut record));
            }
            other => panic!("{other:?} outside a quoted value"),
        }
    }
    assert!(
        record.is_empty() && value.is_empty(),
        "the last record has no CRLF"
    );
    records
}
