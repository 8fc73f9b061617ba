//! Interrupted exports: a child process (this test binary, running the ignored child test)
//! is killed with SIGKILL while it is in the middle of writing a message, and a rerun with
//! the same items completes the export with every item exactly once; a rerun with another
//! list or other options is refused; items that cannot be exported land in the exceptions
//! list and leave nothing behind.

mod common;

use std::{
    io::{BufRead as _, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use bonnie_export::{Exception, ExportError, Format, ItemList, Options, export, verify};
use common::{Corpus, manifest, natives, options, python_json_lines};

/// Tells the child test where the archive key is and which format to export.
const CHILD_DIR: &str = "BONNIE_EXPORT_TEST_CHILD_DIR";
const CHILD_FORMAT: &str = "BONNIE_EXPORT_TEST_CHILD_FORMAT";
const CHILD_COMMIT: &str = "BONNIE_EXPORT_TEST_CHILD_COMMIT";
/// The item (0-based) whose native blocks halfway in the child.
const BLOCKING: usize = 20;

/// The fixtures and 20 made messages of 40 KB, the 21st (the blocking one) of 300 KB: more
/// than the export's 64 KB chunks, so half of it is on disk when the child is killed.
fn corpus(dir: &Path) -> Corpus {
    let mut natives = natives();
    for i in 0..20 {
        let lines = if natives.len() == BLOCKING {
            7_500
        } else {
            1_000
        };
        let mut message = format!(
            "From: bulk@example.org\r\nTo: john@example.org\r\nSubject: bulk {i}\r\nMessage-ID: <bulk-{i}@example.org>\r\n\r\n"
        );
        for line in 0..lines {
            message.push_str(&format!(
                "From line {line} of message {i}, quoted in mbox.\r\n"
            ));
        }
        natives.push(message.into_bytes());
    }
    Corpus::new(&dir.join("archive.key"), natives)
}

fn format_named(name: &str) -> Format {
    match name {
        "mbox" => Format::Mbox,
        "dat" => Format::Dat,
        _ => Format::Eml,
    }
}

/// A native that gives its first half and then blocks forever, after saying so on stdout.
struct BlocksHalfway {
    bytes: Vec<u8>,
    at: usize,
}

impl Read for BlocksHalfway {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let half = self.bytes.len() / 2;
        if self.at >= half {
            println!("blocked");
            loop {
                std::thread::park();
            }
        }
        let n = buf.len().min(half - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
#[ignore = "the child process of an_export_killed_midway_and_rerun_has_every_item_once"]
fn child_exports_until_an_item_blocks() {
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR).expect("run by the parent test"));
    let format = format_named(&std::env::var(CHILD_FORMAT).unwrap());
    let commit_items = std::env::var(CHILD_COMMIT).unwrap().parse().unwrap();
    let corpus = corpus(&dir);
    let items = corpus.messages.iter().enumerate().map(|(i, message)| {
        let mut item = message.item();
        if i == BLOCKING {
            item.native = Box::new(BlocksHalfway {
                bytes: message.native.clone(),
                at: 0,
            });
        }
        Ok(item)
    });
    let out = dir.join(format!("export-{}", format.name()));
    let options = Options {
        commit_items,
        ..options(format)
    };
    let _ = export(&out, &corpus.header, &options, items, &mut |_| {});
    unreachable!("the export blocks at item {BLOCKING}");
}

/// Runs the child until its native blocks, then kills it (SIGKILL).
fn run_child_and_kill(dir: &Path, format: Format, commit_items: u32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_exports_until_an_item_blocks",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_FORMAT, format.name())
        .env(CHILD_COMMIT, commit_items.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let blocked = stdout.lines().any(|line| line.unwrap().contains("blocked"));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if !blocked {
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("the child ended ({status}) without blocking: {stderr}");
    }
}

/// Killed after committing every item, and after committing every 8th (the 4 items after
/// the last commit are on disk but not committed: the rerun takes them back, and the one it
/// now cannot export leaves nothing).
#[test]
fn an_export_killed_midway_and_rerun_has_every_item_once() {
    for (format, commit_items) in [
        (Format::Mbox, 1),
        (Format::Dat, 1),
        (Format::Mbox, 8),
        (Format::Dat, 8),
    ] {
        let case = format!("{format:?}, a commit every {commit_items}");
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus(dir.path());
        let out = dir.path().join(format!("export-{}", format.name()));
        run_child_and_kill(dir.path(), format, commit_items);

        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(".bonnie-export/state.json")).unwrap())
                .unwrap();
        let committed = BLOCKING - BLOCKING % commit_items as usize;
        assert_eq!(state["done"], committed as u64, "{case}");
        let half_written = match format {
            Format::Mbox => {
                let recorded = state["lengths"]["mbox/0001.mbox"].as_u64().unwrap();
                std::fs::metadata(out.join("mbox/0001.mbox")).unwrap().len() > recorded
            }
            _ => out.join("natives/0001/BON00000021.eml").exists(),
        };
        assert!(half_written, "{case}: half of item {BLOCKING} is on disk");

        // The first uncommitted item cannot be read this time.
        let unreadable = (committed < BLOCKING).then_some(committed);
        let items = corpus.messages.iter().enumerate().map(|(i, message)| {
            if Some(i) == unreadable {
                return Err(Exception {
                    digest: message.meta.digest.clone(),
                    docid: None,
                    reason: "its payload store is down".into(),
                });
            }
            Ok(message.item())
        });
        let options = Options {
            commit_items,
            ..options(format)
        };
        let summary = export(&out, &corpus.header, &options, items, &mut |_| {}).unwrap();
        assert_eq!(summary.resumed_after, committed as u64, "{case}");
        let exported: Vec<usize> = (0..corpus.messages.len())
            .filter(|i| Some(*i) != unreadable)
            .collect();
        assert_eq!(summary.exported, exported.len() as u64, "{case}");

        let manifest = manifest(&out);
        let docids: Vec<String> = manifest.items.iter().map(|i| i.docid.clone()).collect();
        let expected: Vec<String> = exported
            .iter()
            .map(|i| format!("BON{:08}", i + 1))
            .collect();
        assert_eq!(docids, expected, "{case}: every item once, in order");
        let csv = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
        assert_eq!(csv.lines().count(), exported.len() + 1, "{case}");
        let digests: Vec<&str> = exported
            .iter()
            .map(|i| corpus.messages[*i].meta.digest.as_str())
            .collect();
        match format {
            Format::Mbox => {
                let read =
                    python_json_lines(common::MBOXRD_READER, &out, ["mbox/0001.mbox"].into_iter());
                let read: Vec<&str> = read.iter().map(|r| r["sha256"].as_str().unwrap()).collect();
                assert_eq!(read, digests, "{case}: the mbox holds each message once");
            }
            _ => {
                let records = common::parse_dat(&std::fs::read(out.join("loadfile.dat")).unwrap());
                let parents: Vec<&str> = records[1..]
                    .iter()
                    .filter(|r| r[1].is_empty())
                    .map(|r| r[20].as_str())
                    .collect();
                assert_eq!(parents, digests, "{case}: one load file row per message");
            }
        }
        let report = verify(&out, Some(&corpus.header.public_key)).unwrap();
        assert!(report.is_clean(), "{case}: {:?}", report.findings);
    }
}

#[test]
fn a_rerun_with_another_list_or_options_is_refused_and_with_the_same_completes() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(&dir.path().join("archive.key"), natives());
    let out = dir.path().join("export");
    let options = options(Format::Eml);
    let stopped = export(
        &out,
        &corpus.header,
        &options,
        corpus.items().take(5),
        &mut |_| {},
    );
    assert!(
        matches!(stopped, Err(ExportError::ListMismatch(_))),
        "{stopped:?}"
    );

    let mut other = corpus.header.clone();
    other.items = ItemList::of(corpus.messages[1..].iter().map(|m| m.meta.digest.as_str()));
    let refused = export(&out, &other, &options, corpus.items().skip(1), &mut |_| {});
    assert!(
        matches!(refused, Err(ExportError::Refused { .. })),
        "{refused:?}"
    );
    let mut other_options = options.clone();
    other_options.part_bytes = 1_000;
    let refused = export(
        &out,
        &corpus.header,
        &other_options,
        corpus.items(),
        &mut |_| {},
    );
    assert!(
        matches!(refused, Err(ExportError::Refused { .. })),
        "{refused:?}"
    );

    let mut later = corpus.header.clone();
    later.created_ms += 3_600_000;
    let summary = export(&out, &later, &options, corpus.items(), &mut |_| {}).unwrap();
    assert_eq!(summary.resumed_after, 5);
    assert_eq!(summary.exported, corpus.messages.len() as u64);
    assert_eq!(manifest(&out).items.len(), corpus.messages.len());
    assert!(verify(&out, None).unwrap().is_clean());

    let again = export(&out, &corpus.header, &options, corpus.items(), &mut |_| {});
    assert!(
        matches!(&again, Err(ExportError::Refused { message, .. }) if message.contains("finished")),
        "{again:?}"
    );
}

#[test]
fn items_that_cannot_be_exported_are_listed_as_exceptions_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(&dir.path().join("archive.key"), natives());
    for format in [Format::Eml, Format::Mbox, Format::Dat] {
        let out = dir.path().join(format.name());
        let items = corpus.messages.iter().enumerate().map(|(i, message)| {
            let mut item = message.item();
            match i {
                2 => {
                    item.native =
                        Box::new(std::io::Cursor::new(b"Subject: another\r\n\r\n".to_vec()))
                }
                5 => {
                    return Err(Exception {
                        digest: message.meta.digest.clone(),
                        docid: None,
                        reason: "its payload was purged".into(),
                    });
                }
                7 => item.meta.proof[0][0] ^= 1,
                _ => {}
            }
            Ok(item)
        });
        let summary = export(&out, &corpus.header, &options(format), items, &mut |_| {}).unwrap();
        assert_eq!(summary.exceptions, 3);
        assert_eq!(summary.exported, corpus.messages.len() as u64 - 3);
        let manifest = manifest(&out);
        let exceptions: Vec<(&str, &str)> = manifest
            .export
            .exceptions
            .iter()
            .map(|e| (e.docid.as_deref().unwrap(), e.reason.as_str()))
            .collect();
        assert_eq!(exceptions[0].0, "BON00000003");
        assert!(
            exceptions[0].1.contains("not the item's digest"),
            "{exceptions:?}"
        );
        assert_eq!(exceptions[1], ("BON00000006", "its payload was purged"));
        assert_eq!(exceptions[2].0, "BON00000008");
        assert!(
            exceptions[2].1.contains("inclusion proof"),
            "{exceptions:?}"
        );
        assert_eq!(
            manifest.export.per_custodian.values().sum::<u64>(),
            summary.exported
        );
        assert!(
            !manifest
                .items
                .iter()
                .any(|i| ["BON00000003", "BON00000006", "BON00000008"].contains(&i.docid.as_str()))
        );
        assert!(!out.join("natives/0001/BON00000003.eml").exists());
        let report = verify(&out, None).unwrap();
        assert!(report.is_clean(), "{format:?}: {:?}", report.findings);
    }
}
