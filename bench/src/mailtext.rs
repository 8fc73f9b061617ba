//! Body text for search on a mixed corpus: the charset fixtures of `tests/fixtures/mail`
//! (ISO-8859-*, windows-125x, KOI8-R, ISO-2022-JP, Shift_JIS, GB2312, Big5, UTF-8, nested and
//! broken MIME), HTML newsletters of about 20 KB, and some messages of 1 to 8 MB with text and
//! binary attachments. Measured twice: bonnie-mail alone (parse, text of every part, folding),
//! and the SQLite storage as the worker calls it through the plugin boundary (payload stored
//! compressed, the log entry appended with the message's text indexed, each batch synced).

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use anyhow::Context as _;
use bonnie_plugin_api::{OutputItem, abi_stable::std_types::RVec};
use serde_json::json;

/// Messages per storage batch, as the worker's default batch.
const BATCH: usize = 50;

/// The figures of one run.
pub struct Figures {
    /// Messages in the corpus.
    pub messages: usize,
    /// Their size in all, in bytes.
    pub bytes: usize,
    /// bonnie-mail alone: messages per second and MB per second.
    pub extract: (f64, f64),
    /// Through the SQLite storage: messages per second and MB per second.
    pub index: (f64, f64),
}

/// German prose of about `bytes` bytes.
fn prose(bytes: usize, n: usize) -> String {
    let sentence = format!(
        "Sehr geehrte Frau Müller, anbei die Übersicht für das Büro Nummer {n}; Grüße aus Köln. "
    );
    sentence.repeat(bytes / sentence.len() + 1)
}

/// Base64 in lines of 76 characters, as RFC 2045 has it.
pub(crate) fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    lines.join("\r\n")
}

fn newsletter(n: usize) -> Vec<u8> {
    let text = prose(9_000, n);
    let html = format!(
        "<html><body><h1>Rundbrief {n}</h1><p>{}</p></body></html>",
        prose(9_000, n)
    );
    format!(
        "From: Büro <buero@example.org>\r\nTo: alle@example.org\r\nSubject: Rundbrief {n}\r\n\
         Message-ID: <news-{n}@example.org>\r\nDate: Sat, 28 Nov 2026 17:13:36 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n--alt\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--alt--\r\n"
    )
    .into_bytes()
}

fn with_attachments(n: usize, text_bytes: usize, binary_bytes: usize) -> Vec<u8> {
    let binary: Vec<u8> = (0..binary_bytes).map(|i| (i * 7919 + n) as u8).collect();
    format!(
        "From: Jürgen <juergen@example.org>\r\nTo: zoe@example.org\r\nSubject: Bericht {n}\r\n\
         Message-ID: <report-{n}@example.org>\r\nDate: Sat, 28 Nov 2026 17:13:36 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nAnbei der Bericht.\r\n--mix\r\n\
         Content-Type: text/plain; charset=utf-8; name=\"bericht-{n}.txt\"\r\nContent-Disposition: attachment; filename=\"bericht-{n}.txt\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix\r\n\
         Content-Type: application/octet-stream; name=\"daten-{n}.bin\"\r\nContent-Disposition: attachment; filename=\"daten-{n}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix--\r\n",
        base64_lines(prose(text_bytes, n).as_bytes()),
        base64_lines(&binary),
    )
    .into_bytes()
}

/// `count` messages: mostly fixtures and newsletters, every 25th with megabytes of attachments
/// (1 MB of text and 1 MB binary), every 100th with 4 MB of each.
pub(crate) fn corpus(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let folder = bonnie_tests::paths::repo_root().join("tests/fixtures/mail");
    let mut fixtures = Vec::new();
    for entry in
        std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            fixtures.push(std::fs::read(&path)?);
        }
    }
    fixtures.sort();
    Ok((0..count)
        .map(|n| {
            let body = if n % 100 == 99 {
                with_attachments(n, 4 << 20, 4 << 20)
            } else if n % 25 == 24 {
                with_attachments(n, 1 << 20, 1 << 20)
            } else if n % 2 == 0 && !fixtures.is_empty() {
                fixtures[n / 2 % fixtures.len()].clone()
            } else {
                newsletter(n)
            };
            // Every message distinct, so that the store keeps each one.
            let mut message = format!("X-Bench-Message: {n}\r\n").into_bytes();
            message.extend_from_slice(&body);
            message
        })
        .collect())
}

/// Runs both measurements over `count` messages, the store in a folder under `root`.
pub fn throughput(bin: &Path, root: &Path, count: usize) -> anyhow::Result<Figures> {
    let corpus = corpus(count)?;
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let mb = bytes as f64 / 1e6;

    let started = Instant::now();
    let mut folded = 0usize;
    for message in &corpus {
        let text =
            bonnie_mail::parse(message).search_text(bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES);
        folded += bonnie_mail::fold_for_search(&text.text).len();
    }
    let extract_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(folded > 0, "no text was extracted from the corpus");

    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-mailtext-")
        .tempdir_in(root)?;
    std::fs::create_dir_all(dir.path().join("plugins"))?;
    std::fs::copy(
        bin.join("libbonnie_sqlite_storage.so"),
        dir.path().join("plugins/libbonnie_sqlite_storage.so"),
    )?;
    std::fs::write(
        dir.path().join("bonnie.toml"),
        "[worker]\nplugin_dir = \"plugins\"\n\n[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
    )?;
    let config = bonnie_core::Config::load(&dir.path().join("bonnie.toml"))?;
    let (_, storage) = bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)))?;
    let started = Instant::now();
    for (b, batch) in corpus.chunks(BATCH).enumerate() {
        let mut items = RVec::new();
        for (i, message) in batch.iter().enumerate() {
            let digest = storage
                .put_payload(message.as_slice().into())
                .into_result()
                .map_err(|e| anyhow::anyhow!("storing a payload: {e}"))?;
            let n = b * BATCH + i;
            let record = json!({
                "event": "MessageAppend",
                "@timestamp": bonnie_core::time::format_rfc3339_ms(1_795_000_000_000 + n as i64),
                "user": "zoe@example.org",
                "payload_digest": digest.as_str(),
            });
            items.push(OutputItem::new(format!("mailtext-{n}"), record.to_string()));
        }
        storage
            .append_log(items)
            .into_result()
            .map_err(|e| anyhow::anyhow!("appending to the log: {e}"))?;
    }
    let index_s = started.elapsed().as_secs_f64();
    Ok(Figures {
        messages: corpus.len(),
        bytes,
        extract: (corpus.len() as f64 / extract_s, mb / extract_s),
        index: (corpus.len() as f64 / index_s, mb / index_s),
    })
}
