//! Memory stays flat whatever the size: a 50 MiB message, generated in chunks by its reader
//! (never whole in memory, not even in the test), is exported as EML and as MBOX and
//! verified, and the process's peak resident size (VmHWM, /proc/self/status; nextest runs each
//! test in a process of its own) grows by less than a fifth of the message.

mod common;

use std::io::Read;

use bonnie_export::{ExportItem, Format, export, verify};
use common::{bare_meta, options, prove};
use sha2::{Digest as _, Sha256};

const SIZE: u64 = 50 << 20;

/// A message of `SIZE` bytes made as it is read: a header, then numbered lines, some of
/// them `From ` lines that mbox quotes.
struct Generated {
    at: u64,
    line: Vec<u8>,
    line_at: usize,
    number: u64,
}

impl Generated {
    fn new() -> Self {
        Generated {
            at: 0,
            line: b"From: jane@example.org\r\nSubject: large\r\nMessage-ID: <large@example.org>\r\n\r\n".to_vec(),
            line_at: 0,
            number: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.at < SIZE {
            if self.line_at == self.line.len() {
                self.number += 1;
                self.line = format!("From line {:012} of a large message body.\r\n", self.number)
                    .into_bytes();
                self.line_at = 0;
            }
            let take = (buf.len() - n)
                .min(self.line.len() - self.line_at)
                .min((SIZE - self.at) as usize);
            buf[n..n + take].copy_from_slice(&self.line[self.line_at..self.line_at + take]);
            n += take;
            self.line_at += take;
            self.at += take as u64;
        }
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn exports_flat(format: Format) {
    let dir = tempfile::tempdir().unwrap();
    let mut hasher = Sha256::new();
    std::io::copy(&mut Generated::new(), &mut hasher).unwrap();
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut meta = bare_meta(digest, SIZE);
    let (header, _, _) = prove(&dir.path().join("archive.key"), &mut [&mut meta]);
    let out = dir.path().join("export");
    let before = peak_rss_kib();
    let item = ExportItem {
        meta,
        native: Box::new(Generated::new()),
        text: String::new(),
        attachments: Vec::new(),
    };
    let summary = export(&out, &header, &options(format), [Ok(item)], &mut |_| {}).unwrap();
    assert_eq!(summary.exported, 1);
    assert_eq!(summary.bytes, SIZE);
    let report = verify(&out, Some(&header.public_key)).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    let grown = peak_rss_kib().saturating_sub(before);
    eprintln!("{format:?}: peak RSS grew by {grown} KiB");
    assert!(
        grown < SIZE / 1024 / 5,
        "{format:?}: peak RSS grew by {grown} KiB exporting and verifying {} KiB",
        SIZE / 1024
    );
}

#[test]
fn a_50_mib_message_exports_as_eml_in_flat_memory() {
    exports_flat(Format::Eml);
}

#[test]
fn a_50_mib_message_exports_as_mbox_in_flat_memory() {
    exports_flat(Format::Mbox);
}
