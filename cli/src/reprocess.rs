//! `bonnie reprocess --handler changelog|freebusy|items`: runs archived records through a
//! handler enabled after they were archived, as the worker would have, from what the archive
//! kept (no collector here):
//! - changelog: each message event's trail entries (`message-history`) and its Kolab objects'
//!   facts (`object-facts`), keyed by job and message place;
//! - freebusy: each appended or delivered Kolab event object's parsed events
//!   (`freebusy-events`), keyed by the message's digest;
//! - items: the e-discovery item document of every payload the log names that has none (an
//!   archive made before bonnie kept them), keyed by the payload's digest; with `--rewrite`,
//!   every item document again from its payload (an upgrade changed how items are indexed);
//!   either way then, the custodian records of every log entry (`item-custodians`, which
//!   narrow a search of a custodian's mail), and the archive's are marked complete.
//!
//! So a record reprocessed twice, or one the handler already took, is written once.

use anyhow::bail;
use bonnie_calendar::{self as calendar, Remembered};
use bonnie_core::{Config, time::now_ms};
use bonnie_model::{collect, custodians, items, log_pages, mail_history, objects, record};
use bonnie_plugin_api::{PluginError, storage::StorageClient};
use serde_json::{Value, json};

/// The handlers whose output can be made again from the archive.
const HANDLERS: [&str; 3] = ["changelog", "freebusy", "items"];

/// The events whose messages the freebusy handler reads.
const FREEBUSY_EVENTS: [&str; 2] = ["MessageAppend", "MessageNew"];

/// Log entries read per page.
const PAGE: u32 = 1000;

/// What a reprocessing wrote, by kind, for the report.
#[derive(Default)]
struct Written {
    /// changelog: trail entries.
    trail_entries: u64,
    /// changelog: object facts.
    object_facts: u64,
    /// freebusy: event objects read now.
    event_objects: u64,
    /// freebusy: event objects that were read before.
    event_objects_known: u64,
    /// freebusy: event objects whose calendar data cannot be read (kept as such).
    event_objects_unreadable: u64,
    /// items: item documents written.
    item_documents: u64,
    /// items, `--rewrite`: documents left as they were, their payload purged.
    item_payloads_gone: Option<u64>,
    /// items: custodian records written (those already there are written once).
    custodian_records: u64,
}

impl Written {
    fn json(&self, handler: &str) -> Value {
        match handler {
            "items" => match self.item_payloads_gone {
                None => json!({
                    "item_documents": self.item_documents,
                    "custodian_records": self.custodian_records,
                }),
                Some(gone) => json!({
                    "item_documents": self.item_documents,
                    "item_documents_payload_gone": gone,
                    "custodian_records": self.custodian_records,
                }),
            },
            "freebusy" => json!({
                "event_objects": self.event_objects,
                "event_objects_known": self.event_objects_known,
                "event_objects_unreadable": self.event_objects_unreadable,
            }),
            _ => json!({ "trail_entries": self.trail_entries, "object_facts": self.object_facts }),
        }
    }

    fn text(&self, handler: &str) -> String {
        match handler {
            "items" => {
                let documents = match self.item_payloads_gone {
                    None => format!(
                        "{} item documents written (payloads that had one are left alone)",
                        self.item_documents
                    ),
                    Some(gone) => format!(
                        "{} item documents written again ({gone} left as they were: their \
                         payload was purged)",
                        self.item_documents
                    ),
                };
                format!("{documents}, {} custodian records", self.custodian_records)
            }
            "freebusy" => format!(
                "{} event objects read ({} of them unreadable, kept as such), {} read before",
                self.event_objects, self.event_objects_unreadable, self.event_objects_known
            ),
            _ => format!(
                "{} trail entries, {} object facts (already there are written once)",
                self.trail_entries, self.object_facts
            ),
        }
    }
}

/// The changelog's output for one record.
fn changelog(
    storage: &StorageClient,
    record: &record::Object,
    job: &str,
    written: &mut Written,
) -> Result<(), PluginError> {
    written.trail_entries += mail_history::record(storage, record, job)? as u64;
    if let objects::Recorded::Facts(n) = objects::record(storage, record, job, |_| false)? {
        written.object_facts += n as u64;
    }
    Ok(())
}

/// The freebusy handler's output for one record: each of its messages the archive kept that is
/// an event object.
fn freebusy(
    storage: &StorageClient,
    record: &record::Object,
    written: &mut Written,
) -> Result<(), PluginError> {
    let event = record.get("event").and_then(Value::as_str);
    if !event.is_some_and(|e| FREEBUSY_EVENTS.contains(&e)) {
        return Ok(());
    }
    for uid in record::uid_list(record, "uids") {
        let Some(digest) = collect::kept_digest(record, uid) else {
            continue;
        };
        let Some(message) = storage.get_payload(&digest)? else {
            return Err(PluginError::transient(format!(
                "the archive names payload {digest} (UID {uid}) but does not hold it"
            )));
        };
        match calendar::remember_event_object(storage, &digest, &message, None)? {
            Remembered::NotAnEvent => {}
            Remembered::Known(_) => written.event_objects_known += 1,
            Remembered::Read(_, parsed) => {
                written.event_objects += 1;
                written.event_objects_unreadable += u64::from(parsed.is_err());
            }
        }
    }
    Ok(())
}

/// `bonnie reprocess`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    handler: &str,
    since: Option<&str>,
    rewrite: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    if !HANDLERS.contains(&handler) {
        bail!("--handler {handler:?}: only {HANDLERS:?} can reprocess archived records");
    }
    if rewrite && handler != "items" {
        bail!("--rewrite: only `--handler items` writes its documents again");
    }
    if handler == "items" && since.is_some() {
        bail!(
            "--since: `--handler items` reads the whole log (a payload's first entry decides its \
             document's first-seen time) and writes only the documents missing"
        );
    }
    let from_ms = since
        .map(crate::trace::parse_since)
        .transpose()?
        .map(|t| t.as_millisecond());
    let params = json!({ "handler": handler, "since": since, "rewrite": rewrite });
    let (records, written) = auditor.change("reprocess", params, None, || {
        let storage = crate::backfill::open_storage(config)?;
        let mut written = Written::default();
        if rewrite {
            // Drawn on stderr when it is a terminal (indicatif hides it otherwise).
            let bar = match json_out {
                false => indicatif::ProgressBar::new_spinner(),
                true => indicatif::ProgressBar::hidden(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos} item documents, {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let done = items::reindex_all(&storage, |n| bar.set_position(n))
                .map_err(|e| anyhow::anyhow!("indexing the archive's items again: {e}"))?;
            bar.finish_and_clear();
            written.item_documents = done.rewritten;
            written.item_payloads_gone = Some(done.payload_gone);
            written.custodian_records = custodians::fill_logged(&storage, |_| {})
                .map_err(|e| anyhow::anyhow!("recording the items' custodians: {e}"))?;
            return Ok((done.rewritten + done.payload_gone, written));
        }
        if handler == "items" {
            let mut read = 0;
            written.item_documents = items::index_logged(&storage, |n| read = n)
                .map_err(|e| anyhow::anyhow!("indexing the archive's items: {e}"))?;
            written.custodian_records = custodians::fill_logged(&storage, |_| {})
                .map_err(|e| anyhow::anyhow!("recording the items' custodians: {e}"))?;
            return Ok((read, written));
        }
        let records = log_pages::walk(
            &storage,
            (from_ms, None),
            PAGE,
            |logged| {
                let Ok(Value::Object(mut record)) = serde_json::from_str(logged.body.as_str())
                else {
                    return Ok(());
                };
                // Normalizing is idempotent; a record archived by an older bonnie gains the
                // fields the handlers read now.
                record::normalize(
                    &mut record,
                    logged.time_ms.into_option().unwrap_or_else(now_ms),
                );
                match handler {
                    "freebusy" => freebusy(&storage, &record, &mut written),
                    _ => changelog(&storage, &record, logged.key.as_str(), &mut written),
                }
            },
            |_, _| {},
        )
        .map_err(|e| anyhow::anyhow!("reprocessing the archive's log: {e}"))?;
        Ok((records, written))
    })?;
    auditor.step(
        "reprocess",
        json!({ "handler": handler, "records": records }),
        records,
    )?;
    if json_out {
        let mut report = written.json(handler);
        report["handler"] = json!(handler);
        report["records"] = json!(records);
        println!("{report}");
    } else {
        println!(
            "{handler}: {records} archived records reprocessed: {}",
            written.text(handler)
        );
    }
    Ok(())
}
