//! DLP figures (`--only-dlp`): how fast the shipped rule set scans, and what the DLP handler
//! costs the pipeline. In-process, on the body-text corpus (`mailtext::corpus`: charset
//! fixtures, 20 KB newsletters, every 25th message with 2 MB and every 100th with 8 MB of text
//! and binary attachments) with one message in ten carrying card numbers and an IBAN: the
//! message read by bonnie-mail and scanned (what the handler does per message), the read alone,
//! and the scan alone on the texts already read (MB of scanned text). Then the payload ingest
//! on a real Cyrus spool (`payload::ingest`) twice, without and with the DLP handler, so the
//! difference is the handler's.

use std::time::Instant;

use anyhow::Context as _;
use bonnie_dlp::{EventKind, RuleSet, ScanInput, Settings};
use serde_json::{Value, json};

use crate::{payload, round};

/// Sensitive lines put in one message in ten.
const SENSITIVE: &str = "\r\nKarte 4539 1488 0343 6467, IBAN DE89 3704 0044 0532 0130 00.\r\n";

/// What `--only-dlp` measures.
pub struct DlpSettings {
    /// Messages of the in-process corpus.
    pub messages: usize,
    /// Messages of each payload ingest (without and with the handler).
    pub pipeline_messages: usize,
    /// Workers of each payload ingest.
    pub workers: usize,
}

/// The corpus, one message in ten with [`SENSITIVE`] appended to its last part.
fn corpus(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut corpus = crate::mailtext::corpus(count)?;
    for message in corpus.iter_mut().step_by(10) {
        message.extend_from_slice(SENSITIVE.as_bytes());
    }
    Ok(corpus)
}

/// The in-process figures.
fn scanning(count: usize) -> anyhow::Result<Value> {
    let rules = RuleSet::default_rules(&Settings::default()).context("the shipped rules")?;
    let corpus = corpus(count)?;
    let bytes: usize = corpus.iter().map(Vec::len).sum();

    let started = Instant::now();
    let messages: Vec<bonnie_mail::Message> =
        corpus.iter().map(|m| bonnie_mail::parse(m)).collect();
    let parse_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (mut hits, mut text_bytes) = (0usize, 0usize);
    for message in &messages {
        let input = ScanInput {
            parts: bonnie_dlp::message_parts(message),
            ..ScanInput::new(EventKind::Append)
        };
        text_bytes += input
            .parts
            .iter()
            .map(|p| p.text.len().min(bonnie_dlp::DEFAULT_MAX_PART_BYTES))
            .sum::<usize>();
        hits += rules.evaluate(&input).len();
    }
    let scan_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(hits > 0, "the shipped rules found nothing in the corpus");

    let started = Instant::now();
    for message in &corpus {
        let parsed = bonnie_mail::parse(message);
        let input = ScanInput {
            parts: bonnie_dlp::message_parts(&parsed),
            ..ScanInput::new(EventKind::Append)
        };
        std::hint::black_box(rules.evaluate(&input));
    }
    let both_s = started.elapsed().as_secs_f64();

    let (mb, text_mb) = (bytes as f64 / 1e6, text_bytes as f64 / 1e6);
    eprintln!(
        "dlp: read and scanned {:.0} messages/s ({:.1} MB/s of mail); the scan alone {:.1} MB/s of text",
        corpus.len() as f64 / both_s,
        mb / both_s,
        text_mb / scan_s
    );
    Ok(json!({
        "messages": corpus.len(),
        "mb": round(mb, 1),
        "text_mb": round(text_mb, 1),
        "hits": hits,
        "read_and_scan_messages_per_s": round(corpus.len() as f64 / both_s, 0),
        "read_and_scan_mb_per_s": round(mb / both_s, 1),
        "read_messages_per_s": round(corpus.len() as f64 / parse_s, 0),
        "scan_text_mb_per_s": round(text_mb / scan_s, 1),
        "scan_ms_per_message": round(scan_s * 1e3 / corpus.len() as f64, 3),
    }))
}

/// `dlp`: the scanning figures and the payload ingest without and with the handler.
pub fn figures(settings: &DlpSettings) -> anyhow::Result<Value> {
    let scanning = scanning(settings.messages)?;
    let ingest = |dlp: bool| {
        payload::ingest_into(&payload::Settings {
            messages: settings.pipeline_messages,
            workers: settings.workers,
            ledger: false,
            dlp,
        })
    };
    let (without, _) = ingest(false)?;
    let (with, lab) = ingest(true)?;
    // Every new message's record says the handler scanned it.
    let archive = rusqlite::Connection::open(lab.path().join("var/bonnie.db"))?;
    let (scanned, new_messages): (i64, i64) = archive.query_row(
        "SELECT count(json_extract(record, '$.dlp.incidents')), count(*) FROM log \
         WHERE json_extract(record, '$.event') IN ('MessageAppend', 'MessageNew')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    anyhow::ensure!(
        scanned == new_messages && scanned > 0,
        "the DLP handler scanned {scanned} of {new_messages} new messages; see {}",
        lab.path().display()
    );
    let rate = |v: &Value| v["payload_messages_per_s"].as_f64().unwrap_or(0.0);
    eprintln!(
        "dlp: payload ingest {:.0} messages/s without the DLP handler, {:.0} with it",
        rate(&without),
        rate(&with)
    );
    Ok(json!({
        "scanning": scanning,
        "pipeline_messages_per_s_without_dlp": rate(&without),
        "pipeline_messages_per_s_with_dlp": rate(&with),
        "pipeline_messages_scanned": scanned,
        "pipeline_without_dlp": without,
        "pipeline_with_dlp": with,
    }))
}
