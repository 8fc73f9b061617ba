//! `bonnie reprocess --handler changelog`: runs archived records through a handler enabled
//! after they were archived, as the worker would have: for the changelog, each message event's
//! trail entries (`message-history`) and its Kolab objects' facts (`object-facts`, with the
//! payloads the archive keeps). Both are keyed by job and message place, so a record
//! reprocessed twice, or one the handler already took, is written once.

use anyhow::bail;
use bonnie_core::{Config, time::now_ms};
use bonnie_model::{log_pages, mail_history, objects, record};
use serde_json::{Value, json};

/// The handlers whose output can be made again from the archive.
const HANDLERS: [&str; 1] = ["changelog"];

/// Log entries read per page.
const PAGE: u32 = 1000;

/// `bonnie reprocess`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    handler: &str,
    since: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    if !HANDLERS.contains(&handler) {
        bail!("--handler {handler:?}: only {HANDLERS:?} can reprocess archived records");
    }
    let from_ms = since
        .map(crate::trace::parse_since)
        .transpose()?
        .map(|t| t.as_millisecond());
    let params = json!({ "handler": handler, "since": since });
    let (records, entries, facts) = auditor.change("reprocess", params, None, || {
        let storage = crate::backfill::open_storage(config)?;
        let (mut entries, mut facts) = (0u64, 0u64);
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
                let job = logged.key.as_str();
                entries += mail_history::record(&storage, &record, job)? as u64;
                // No collector here: what the archive kept (payloads, headers) is all there is.
                if let objects::Recorded::Facts(n) =
                    objects::record(&storage, &record, job, |_| false)?
                {
                    facts += n as u64;
                }
                Ok::<_, bonnie_plugin_api::PluginError>(())
            },
            |_, _| {},
        )
        .map_err(|e| anyhow::anyhow!("reprocessing the archive's log: {e}"))?;
        Ok((records, entries, facts))
    })?;
    auditor.step(
        "reprocess",
        json!({ "handler": handler, "records": records }),
        records,
    )?;
    if json_out {
        println!(
            "{}",
            json!({ "handler": handler, "records": records, "trail_entries": entries, "object_facts": facts })
        );
    } else {
        println!(
            "{handler}: {records} archived records reprocessed: {entries} trail entries, {facts} object facts (already there are written once)"
        );
    }
    Ok(())
}
