//! `bonnie export` and `bonnie export verify` over an archive built from a real Cyrus IMAP 3.6
//! through the whole chain (exec dealer, broker with a ledger signing key, two workers, the
//! collector fetching payloads): john and jane, German (ISO-8859-1), Russian and Japanese
//! messages, attachments, a `From ` line in a body, a message moved to another folder and one
//! expunged. A query's items are exported in each format into a fresh folder and read back by
//! independent readers: Python 3's `email` for EML, an mboxrd reader and a DAT parser written
//! here; the natives equal what was appended byte for byte; the manifest names each item's
//! custodian, folders, MD5, SHA-256 and log sequence; `bonnie export verify` passes, and fails
//! naming the file once a byte of a native is changed. An item whose payload is gone (its row
//! deleted from the payload store: a purge the test cannot wait for) is an exception. A case's
//! export takes the list frozen for it, and exporting that frozen list again after new mail
//! arrived gives the same items. An export killed with SIGKILL while it runs is completed by
//! a rerun, each item once.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Stdio,
};

use bonnie_core::payload;
use bonnie_imap::AppendOptions;
use bonnie_tests::{
    attached::create_user,
    cluster::Cluster,
    cyrus::{Cyrus, Notify},
    ldap::Slapd,
    paths,
    process::{self, ChildGuard},
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
/// Every item but the harness's probes.
const QUERY: &str = "-subject:probe";

/// Cyrus and a bonnie with a ledger signing key, attached to it.
struct Lab {
    _processes: Vec<ChildGuard>,
    cluster: Cluster,
    cyrus: Cyrus,
    _ldap: Slapd,
}

impl Lab {
    fn start() -> Lab {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        // The changelog keeps the message trails the items' moves and expunges are read from.
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, &["bonnie-changelog"]);
        let mut config = std::fs::read_to_string(cluster.config()).unwrap();
        config.push_str(
            "\n[ledger]\nsigning_key = \"var/archive.key\"\n\n\
             [discovery]\ntime_zone = \"Europe/Berlin\"\n",
        );
        std::fs::write(cluster.config(), config).unwrap();
        let init = cluster.bonnie(&["ledger", "init", "--name", "archive.test/bonnie"]);
        assert!(init.status.success(), "{}", process::describe(&init));
        let mut processes = vec![cluster.start_broker()];
        processes.extend(cluster.start_workers(&["worker-1", "worker-2"]));
        let (dealer, config) = (paths::bin("bonnie-dealer"), cluster.config());
        cyrus.start(Notify::Exec {
            dealer: &dealer,
            config: &config,
        });
        processes.push(cluster.start_collector("collector"));
        for user in [JOHN, JANE] {
            create_user(&cyrus, user);
        }
        Lab {
            _processes: processes,
            cluster,
            cyrus,
            _ldap: ldap,
        }
    }

    fn public_key(&self) -> PathBuf {
        self.cluster.path().join("var/archive.key.pub")
    }

    /// `bonnie export --json` with `args`: its summary.
    fn export(&self, args: &[&str]) -> Value {
        let output = self.cluster.bonnie(&[&["export", "--json"], args].concat());
        assert!(output.status.success(), "{}", process::describe(&output));
        serde_json::from_slice(&output.stdout).expect("export --json prints JSON")
    }

    /// `bonnie export verify` with the archive's key: whether it passed, and what it printed.
    fn verify(&self, dir: &Path) -> (bool, String) {
        let key = self.public_key();
        let output = self.cluster.bonnie(&[
            "export",
            "verify",
            &dir.to_string_lossy(),
            "--key",
            &key.to_string_lossy(),
        ]);
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }
}

/// A message archived, as appended.
struct Sent {
    owner: &'static str,
    /// The folders it lives or lived in, as its owner sees them.
    folders: Vec<&'static str>,
    bytes: Vec<u8>,
    subject: &'static str,
    /// A word of its text, as the load file's text should hold it.
    word: &'static str,
    /// The decoded bytes of its attachments, by name.
    attachments: Vec<(&'static str, Vec<u8>)>,
}

fn headers(from: &str, to: &str, subject: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
         Message-ID: <{id}@example.org>\r\nMIME-Version: 1.0\r\n"
    )
}

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PDF_BASE64: &str = "JVBERi0xLjQKJeLjz9MKMSAwIG9iaiA8PCAvVHlwZSAvQ2F0YWxvZyA+PiBlbmRvYmoKdHJhaWxlciA8PCAvUm9vdCAxIDAgUiA+PgolJUVPRgo=";

fn messages() -> Vec<Sent> {
    let german = [
        headers(
            &format!("Jane Doe <{JANE}>"),
            &format!("John Doe <{JOHN}>"),
            "=?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=",
            "german",
        )
        .into_bytes(),
        b"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
          Die Stra\xdfe in M\xfcnchen ist gesperrt.\r\n"
            .to_vec(),
    ]
    .concat();
    let russian = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Совещание перенесено на пятницу.\r\n",
        headers(
            &format!("Jane Doe <{JANE}>"),
            &format!("John Doe <{JOHN}>"),
            "=?UTF-8?B?0J/RgNC+0LXQutGCINCS0L7RgdGC0L7Qug==?=",
            "russian",
        )
    )
    .into_bytes();
    let japanese = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         会議は金曜日に延期されました。\r\n",
        headers(
            &format!("John Doe <{JOHN}>"),
            &format!("Jane Doe <{JANE}>"),
            "=?UTF-8?B?5Lya6K2w44Gu5LqI5a6a?=",
            "japanese",
        )
    )
    .into_bytes();
    let attached = format!(
        "{}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe quarterly report is attached.\r\n--b1\r\n\
         Content-Type: application/pdf; name=\"bericht.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"bericht.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{PDF_BASE64}\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n\
         Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n\
         Budget figures inside.\r\n--b1--\r\n",
        headers(
            &format!("John Doe <{JOHN}>"),
            &format!("Jane Doe <{JANE}>"),
            "Quarterly report",
            "attached",
        )
    )
    .into_bytes();
    let from_lines = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\nFrom here on, quoting matters.\r\n\
         >From the archive, too.\r\nFrom the end.\r\n",
        headers(
            &format!("Jane Doe <{JANE}>"),
            JANE,
            "From lines",
            "fromlines"
        )
    )
    .into_bytes();
    let plain = |subject: &'static str, id: &str, word: &str| {
        format!(
            "{}Content-Type: text/plain; charset=utf-8\r\n\r\nThis message is {word}.\r\n",
            headers(&format!("John Doe <{JOHN}>"), JANE, subject, id)
        )
        .into_bytes()
    };
    vec![
        Sent {
            owner: JOHN,
            folders: vec!["INBOX"],
            bytes: german,
            subject: "Grüße aus München",
            word: "München",
            attachments: vec![],
        },
        Sent {
            owner: JOHN,
            folders: vec!["Работа"],
            bytes: russian,
            subject: "Проект Восток",
            word: "пятницу",
            attachments: vec![],
        },
        Sent {
            owner: JANE,
            folders: vec!["INBOX"],
            bytes: japanese,
            subject: "会議の予定",
            word: "金曜日",
            attachments: vec![],
        },
        Sent {
            owner: JANE,
            folders: vec!["INBOX"],
            bytes: attached,
            subject: "Quarterly report",
            word: "quarterly",
            attachments: vec![
                ("bericht.pdf", PDF.to_vec()),
                ("notes.txt", b"Budget figures inside.".to_vec()),
            ],
        },
        Sent {
            owner: JANE,
            folders: vec!["INBOX"],
            bytes: from_lines,
            subject: "From lines",
            word: "quoting",
            attachments: vec![],
        },
        Sent {
            owner: JOHN,
            folders: vec!["INBOX", "Archive"],
            bytes: plain("Moved away", "moved", "moved"),
            subject: "Moved away",
            word: "moved",
            attachments: vec![],
        },
        Sent {
            owner: JOHN,
            folders: vec!["INBOX"],
            bytes: plain("Expunged later", "expunged", "expunged"),
            subject: "Expunged later",
            word: "expunged",
            attachments: vec![],
        },
    ]
}

/// Appends every message where it first lives, then moves the moved one and expunges the
/// expunged one; waits until all is archived.
fn fill(lab: &Lab) -> Vec<Sent> {
    let sent = messages();
    for user in [JOHN, JANE] {
        let mut client = lab.cyrus.login(user);
        let mut created = BTreeSet::new();
        for message in sent.iter().filter(|m| m.owner == user) {
            for folder in &message.folders {
                if *folder != "INBOX" && created.insert(*folder) {
                    client.create(folder).unwrap();
                }
            }
            client
                .append(
                    message.folders[0],
                    &AppendOptions::default(),
                    &message.bytes,
                )
                .unwrap();
        }
        client.logout().unwrap();
    }
    let mut john = lab.cyrus.login(JOHN);
    john.select("INBOX").unwrap();
    for command in [
        "UID MOVE 2 Archive",
        "UID STORE 3 +FLAGS (\\Deleted)",
        "UID EXPUNGE 3",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.logout().unwrap();
    lab.cyrus.wait_until_archived(&lab.cluster);
    sent
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    payload::digest(bytes)
}

/// The manifest's items by SHA-256.
fn by_digest(manifest: &Value) -> BTreeMap<String, Value> {
    manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| (item["sha256"].as_str().unwrap().to_string(), item.clone()))
        .collect()
}

/// Every item is listed once, with the custodian, folders, digests and log sequence of what
/// was appended.
fn check_manifest(manifest: &Value, sent: &[Sent]) {
    let items = by_digest(manifest);
    assert_eq!(items.len(), sent.len(), "{manifest:#}");
    assert_eq!(manifest["items"].as_array().unwrap().len(), sent.len());
    assert_eq!(manifest["export"]["exceptions"], Value::Array(vec![]));
    assert_eq!(manifest["export"]["zone"], "Europe/Berlin");
    assert_eq!(manifest["export"]["query"], QUERY);
    for message in sent {
        let item = &items[&sha256(&message.bytes)];
        assert_eq!(item["custodian"], message.owner, "{item:#}");
        let folders: Vec<&str> = item["folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(folders, message.folders, "{item:#}");
        assert_eq!(item["size"], message.bytes.len() as u64);
        let hex: String = message.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let md5 = python(
            "import hashlib, sys; print(hashlib.md5(bytes.fromhex(sys.argv[1])).hexdigest())",
            &[&hex],
        );
        assert_eq!(item["md5"], md5.trim(), "{item:#}");
        assert!(item["log_seq"].is_u64(), "{item:#}");
        assert!(!item["proof"].as_array().unwrap().is_empty(), "{item:#}");
        assert_eq!(item["subject"], message.subject, "{item:#}");
        let expunged = message.subject == "Expunged later";
        assert_eq!(item["deleted"], expunged, "{item:#}");
        assert_eq!(item["deleted_at"].is_string(), expunged, "{item:#}");
        let sent_at = item["sent"].as_str().unwrap();
        assert_eq!(sent_at, "2026-12-01T10:00:00+01:00", "{item:#}");
    }
    let counts = &manifest["export"]["per_custodian"];
    assert_eq!(counts[JOHN], 4, "{counts}");
    assert_eq!(counts[JANE], 3, "{counts}");
}

fn python(script: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", process::describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// The messages of an mboxrd file: split at `From ` lines, the newline before each removed,
/// one `>` taken from each `>+From ` line.
fn read_mboxrd(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
            continue;
        }
        let current = messages.last_mut().expect("an mbox opens with a From line");
        let quoted = line.iter().take_while(|b| **b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            current.extend_from_slice(&line[1..]);
        } else {
            current.extend_from_slice(line);
        }
    }
    for message in &mut messages {
        assert_eq!(message.pop(), Some(b'\n'), "a newline ends each message");
    }
    messages
}

/// A Concordance load file: the byte-order mark, records ended by CRLF, values quoted with þ
/// (doubled inside) and separated by U+0014.
fn parse_dat(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let mut records = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let mut values = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            assert_eq!(chars.next(), Some('þ'), "{line:?}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('þ') if chars.peek() == Some(&'þ') => {
                        chars.next();
                        value.push('þ');
                    }
                    Some('þ') => break,
                    Some(c) => value.push(c),
                    None => panic!("an unclosed value in {line:?}"),
                }
            }
            values.push(value);
            match chars.next() {
                Some('\u{14}') => continue,
                None => break,
                Some(c) => panic!("{c:?} after a value in {line:?}"),
            }
        }
        records.push(values);
    }
    records
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn exports_in_each_format_read_back_byte_for_byte_and_verify() {
    let lab = Lab::start();
    let sent = fill(&lab);
    let exports = tempfile::tempdir().unwrap();
    let by_sha: BTreeMap<String, &Sent> = sent.iter().map(|m| (sha256(&m.bytes), m)).collect();

    // EML: one file per message, its bytes; Python's email reads each.
    let eml = exports.path().join("eml");
    let summary = lab.export(&[QUERY, "--format", "eml", "--out", &eml.to_string_lossy()]);
    assert_eq!(summary["exported"], sent.len() as u64, "{summary}");
    assert_eq!(summary["exceptions"], 0, "{summary}");
    let manifest_eml = manifest(&eml);
    check_manifest(&manifest_eml, &sent);
    assert_eq!(mode(&eml.join("manifest.json")), 0o600);
    assert_eq!(mode(&eml.join("natives")), 0o700);
    for item in manifest_eml["items"].as_array().unwrap() {
        let path = eml.join(item["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let message = by_sha[item["sha256"].as_str().unwrap()];
        assert_eq!(bytes, message.bytes, "{}", path.display());
        let subject = python(
            "import email, email.policy, sys\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
             sys.stdout.buffer.write(str(m['subject']).encode())",
            &[&path.to_string_lossy()],
        );
        assert_eq!(subject, message.subject);
    }
    let (passed, said) = lab.verify(&eml);
    assert!(passed, "{said}");
    // A reviewer checks it where there is no bonnie configuration: the same check, unaudited.
    let elsewhere = std::process::Command::new(paths::bin("bonnie"))
        .args(["--config", "/nonexistent/bonnie.toml", "export", "verify"])
        .arg(&eml)
        .arg("--key")
        .arg(lab.public_key())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        elsewhere.status.success() && said.contains("not audited"),
        "{}",
        process::describe(&elsewhere)
    );

    // MBOX in parts of 1 KiB: an mboxrd reader gets every message back byte for byte.
    let mbox = exports.path().join("mbox");
    lab.export(&[
        QUERY,
        "--format",
        "mbox",
        "--out",
        &mbox.to_string_lossy(),
        "--part-size",
        "1K",
    ]);
    let manifest_mbox = manifest(&mbox);
    check_manifest(&manifest_mbox, &sent);
    assert!(
        manifest_mbox["export"]["parts"].as_u64().unwrap() > 1,
        "{:#}",
        manifest_mbox["export"]
    );
    let mut read: Vec<Vec<u8>> = Vec::new();
    let parts: BTreeSet<&str> = manifest_mbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    for part in parts {
        read.extend(read_mboxrd(&std::fs::read(mbox.join(part)).unwrap()));
    }
    let read: BTreeSet<Vec<u8>> = read.into_iter().collect();
    let appended: BTreeSet<Vec<u8>> = sent.iter().map(|m| m.bytes.clone()).collect();
    assert_eq!(read, appended);
    let (passed, said) = lab.verify(&mbox);
    assert!(passed, "{said}");

    // DAT: the load file's rows, natives, texts and attachments as family members.
    let dat = exports.path().join("dat");
    lab.export(&[QUERY, "--format", "dat", "--out", &dat.to_string_lossy()]);
    let manifest_dat = manifest(&dat);
    check_manifest(&manifest_dat, &sent);
    let records = parse_dat(&std::fs::read(dat.join("loadfile.dat")).unwrap());
    let header = &records[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (docid, parent, attachment_ids) =
        (column("DOCID"), column("PARENTID"), column("ATTACHMENTIDS"));
    let (native, text, sha, custodian) = (
        column("NATIVEPATH"),
        column("TEXTPATH"),
        column("SHA256"),
        column("CUSTODIAN"),
    );
    // Paths in a load file have Windows separators.
    let file = |relative: &str| dat.join(relative.replace('\\', "/"));
    let rows = &records[1..];
    let parents: Vec<&Vec<String>> = rows.iter().filter(|r| r[parent].is_empty()).collect();
    assert_eq!(parents.len(), sent.len());
    for row in &parents {
        let message = by_sha[&row[sha]];
        let bytes = std::fs::read(file(&row[native])).unwrap();
        assert_eq!(bytes, message.bytes, "{row:?}");
        assert_eq!(row[custodian], message.owner);
        let extracted = std::fs::read_to_string(file(&row[text])).unwrap();
        assert!(extracted.contains(message.word), "{extracted:?}");
        let members: Vec<&Vec<String>> = rows.iter().filter(|r| r[parent] == row[docid]).collect();
        assert_eq!(members.len(), message.attachments.len(), "{row:?}");
        let ids: Vec<&str> = if row[attachment_ids].is_empty() {
            Vec::new()
        } else {
            row[attachment_ids].split(';').collect()
        };
        assert_eq!(ids.len(), members.len(), "{row:?}");
        for (member, (name, content)) in members.iter().zip(&message.attachments) {
            assert!(ids.contains(&member[docid].as_str()), "{row:?}");
            assert_eq!(member[column("FILENAME")], *name);
            assert_eq!(&std::fs::read(file(&member[native])).unwrap(), content);
        }
    }
    let (passed, said) = lab.verify(&dat);
    assert!(passed, "{said}");

    // One byte of a native changed: verify fails naming the file.
    let first = manifest_eml["items"][0]["path"].as_str().unwrap();
    let changed = eml.join(first);
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&changed, bytes).unwrap();
    let (passed, said) = lab.verify(&eml);
    assert!(!passed, "{said}");
    assert!(said.contains(first), "{said}");

    // A payload gone from the store: its item is an exception, the rest exported.
    let gone = &sent[0];
    lab.cluster
        .archive()
        .execute(
            "DELETE FROM payloads WHERE digest = ?1",
            [sha256(&gone.bytes)],
        )
        .unwrap();
    let purged = exports.path().join("purged");
    let summary = lab.export(&[QUERY, "--format", "eml", "--out", &purged.to_string_lossy()]);
    assert_eq!(summary["exported"], sent.len() as u64 - 1, "{summary}");
    assert_eq!(summary["exceptions"], 1, "{summary}");
    let exceptions = &manifest(&purged)["export"]["exceptions"];
    assert_eq!(exceptions[0]["digest"], sha256(&gone.bytes), "{exceptions}");
    assert!(
        exceptions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("payload"),
        "{exceptions}"
    );
    let (passed, said) = lab.verify(&purged);
    assert!(passed, "{said}");
}

#[test]
fn an_export_killed_midway_is_completed_by_a_rerun_each_item_once() {
    let lab = Lab::start();
    // Enough messages that the export is still writing when it is killed.
    const COUNT: usize = 1000;
    let mut john = lab.cyrus.login(JOHN);
    let padding = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(300);
    let mut digests = BTreeSet::new();
    for n in 0..COUNT {
        let message = format!(
            "{}Content-Type: text/plain; charset=utf-8\r\n\r\nNumber {n}.\r\n{padding}",
            headers(JANE, JOHN, &format!("Bulk {n}"), &format!("bulk-{n}"))
        );
        john.append("INBOX", &AppendOptions::default(), message.as_bytes())
            .unwrap();
        digests.insert(sha256(message.as_bytes()));
    }
    john.logout().unwrap();
    lab.cyrus.wait_until_archived(&lab.cluster);

    let out = tempfile::tempdir().unwrap().path().join("bulk");
    let args = [
        QUERY,
        "--format",
        "eml",
        "--out",
        &out.to_string_lossy(),
        "--json",
    ];
    let mut child = lab
        .cluster
        .command("bonnie", &[&["export"], &args[..]].concat());
    let mut child = child.stdout(Stdio::null()).spawn().unwrap();
    let natives = out.join("natives/0001");
    process::wait_until("the export to have written some natives", || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the export ended ({status}) before it was killed");
        }
        // Past the first commit (every 100 items), so the rerun continues after it.
        std::fs::read_dir(&natives).is_ok_and(|d| d.count() >= 150)
    });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the export was killed before it finished"
    );
    assert!(
        !out.join("manifest.json").exists(),
        "the export was killed before it finished"
    );

    // Another query is not continued into the unfinished export.
    let other = lab.cluster.bonnie(&[
        "export",
        "subject:Bulk",
        "--format",
        "eml",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(!other.status.success(), "{}", process::describe(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("holds an unfinished export"),
        "{}",
        process::describe(&other)
    );

    let summary = lab.export(&args[..args.len() - 1]);
    assert_eq!(summary["exceptions"], 0, "{summary}");
    assert!(
        summary["resumed_after"].as_u64().unwrap() >= 100,
        "the rerun continued after the committed items: {summary}"
    );
    assert_eq!(summary["exported"], COUNT as u64, "{summary}");
    let manifest = manifest(&out);
    let listed: Vec<&str> = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), COUNT, "each item once");
    assert_eq!(
        listed
            .iter()
            .map(|d| d.to_string())
            .collect::<BTreeSet<_>>(),
        digests
    );
    let files = std::fs::read_dir(&natives).unwrap().count();
    assert_eq!(files, COUNT, "one native per item, none left twice");
    let (passed, said) = lab.verify(&out);
    assert!(passed, "{said}");
}

/// The SHA-256s of the items of an export's manifest.
fn digests(manifest: &Value) -> BTreeSet<String> {
    by_digest(manifest).into_keys().collect()
}

fn bonnie_ok(lab: &Lab, args: &[&str]) -> Vec<u8> {
    let output = lab.cluster.bonnie(args);
    assert!(output.status.success(), "{}", process::describe(&output));
    output.stdout
}

#[test]
fn a_case_export_takes_its_frozen_list_and_exports_it_again_unchanged() {
    let lab = Lab::start();
    let sent = fill(&lab);
    bonnie_ok(&lab, &["case", "create", "review", "--custodian", JANE]);
    bonnie_ok(
        &lab,
        &["case", "query", "add", "review", "mail", "type:mail"],
    );
    let exports = tempfile::tempdir().unwrap();
    let first = exports.path().join("first");
    let summary = lab.export(&[
        "--case",
        "review",
        "--format",
        "eml",
        "--out",
        &first.to_string_lossy(),
    ]);
    let janes: BTreeSet<String> = sent
        .iter()
        .filter(|m| m.owner == JANE)
        .map(|m| sha256(&m.bytes))
        .collect();
    assert_eq!(summary["exported"], janes.len() as u64, "{summary}");
    let manifest_first = manifest(&first);
    assert_eq!(digests(&manifest_first), janes);
    assert_eq!(manifest_first["export"]["case"], "review");
    assert_eq!(manifest_first["export"]["query"], "case review export e1");
    let (passed, said) = lab.verify(&first);
    assert!(passed, "{said}");

    // New mail for jane: the case's frozen list does not take it.
    let mut jane = lab.cyrus.login(JANE);
    let later = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\nArrived after the freeze.\r\n",
        headers(JOHN, JANE, "Later", "later")
    );
    jane.append("INBOX", &AppendOptions::default(), later.as_bytes())
        .unwrap();
    jane.logout().unwrap();
    lab.cyrus.wait_until_archived(&lab.cluster);
    let again = exports.path().join("again");
    lab.export(&[
        "--case",
        "review",
        "--frozen",
        "e1",
        "--format",
        "mbox",
        "--out",
        &again.to_string_lossy(),
    ]);
    let manifest_again = manifest(&again);
    assert_eq!(digests(&manifest_again), janes);
    let docids = |m: &Value| -> Vec<(String, String)> {
        m["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["docid"].as_str().unwrap().into(),
                    i["sha256"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(
        docids(&manifest_again),
        docids(&manifest_first),
        "the same DOCIDs"
    );
    let (passed, said) = lab.verify(&again);
    assert!(passed, "{said}");

    // The case lists its export and both times it was written.
    let shown: Value =
        serde_json::from_slice(&bonnie_ok(&lab, &["case", "show", "review", "--json"])).unwrap();
    let export = &shown["exports"][0];
    assert_eq!(export["id"], "e1", "{shown:#}");
    assert_eq!(export["items"], janes.len() as u64, "{shown:#}");
    let formats: Vec<&str> = export["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["eml", "mbox"], "{shown:#}");
}
