//! Handler plugin `postfix`: batches of log lines (`vnd.bonnie.LogLines`, from bonnie-logd)
//! read with bonnie-maillog. Each line's facts about a queue file are merged into that queue
//! file's record in `postfix-queues` with compare-and-swap (the merge is commutative and
//! idempotent, so any number of threads and workers, any order of batches and a batch seen
//! twice give the facts of one reader of every line); `NOQUEUE` verdicts go to
//! `postfix-noqueue`. The batch goes on to the log with its raw lines and the counts of what
//! was read, unknown lines included.

use std::collections::{BTreeMap, BTreeSet};

use bonnie_maillog::{
    Event, LineFacts, QueueFacts, QueueKey, SyslogParser, Unqueued,
    batch::LogBatch,
    parse_line,
    store::{self, QueueRecord},
};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::{Record, StorageClient};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The event this handler takes: a batch of log lines.
const EVENT: &str = "vnd.bonnie.LogLines";

/// `[plugins.postfix]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The time zone (IANA name, such as `Europe/Berlin`) of the hosts whose stamps carry
    /// none (syslog's `Dec  1 10:00:00`, `maillog_file`'s `Dec 01`). Default: this system's.
    #[serde(default)]
    zone: Option<String>,
}

/// The handler.
pub struct Postfix {
    storage: StorageClient,
    parser: SyslogParser,
}

impl Postfix {
    /// Reads `[plugins.postfix]` and takes the host's storage.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        let parser = SyslogParser::in_zone(settings.zone.as_deref())
            .map_err(|e| PluginError::config(format!("[plugins.postfix] zone: {e}")))?;
        Ok(Self {
            storage: host.storage()?,
            parser,
        })
    }

    /// Merges `facts` into the stored record of queue file `key`.
    fn merge(&self, key: &QueueKey, facts: &QueueFacts) -> Result<(), PluginError> {
        let record_key = store::record_key(key);
        self.storage.update(store::QUEUES, &record_key, |stored| {
            let mut merged =
                match stored {
                    Some(record) => serde_json::from_str::<QueueRecord>(record.body.as_str())
                        .map_err(|e| {
                            PluginError::transient(format!(
                                "stored record {}/{record_key} is not a queue file's facts: {e}",
                                store::QUEUES
                            ))
                        })?
                        .facts,
                    None => QueueFacts::default(),
                };
            let before = merged.clone();
            merged.merge(facts.clone());
            if stored.is_some() && merged == before {
                return Ok(None);
            }
            Ok(Some(queue_record(key, merged)))
        })?;
        Ok(())
    }

    /// Keeps a `NOQUEUE` verdict, keyed by its content: the same line twice is one record.
    fn keep_unqueued(&self, unqueued: &Unqueued) -> Result<(), PluginError> {
        let body = serde_json::to_value(unqueued)
            .map_err(|e| PluginError::rejected(format!("unserializable verdict: {e}")))?;
        let digest = Sha256::digest(body.to_string().as_bytes());
        let key: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let mut record = Record::new(store::UNQUEUED, &key, &body);
        if let Some(at) = unqueued.at {
            record = record.at(at.as_millisecond());
        }
        for (field, value) in store::unqueued_terms(unqueued) {
            record = record.indexed(field, &value);
        }
        self.storage.put(record)
    }
}

/// The record of queue file `key` with `facts`, its time the first line about it.
fn queue_record(key: &QueueKey, facts: QueueFacts) -> Record {
    let terms = store::index_terms(key, &facts);
    let time = facts.first_seen.map(|t| t.as_millisecond());
    let body = json!(QueueRecord {
        key: key.clone(),
        facts
    });
    let mut record = Record::new(store::QUEUES, &store::record_key(key), &body);
    if let Some(time) = time {
        record = record.at(time);
    }
    for (field, value) in terms {
        record = record.indexed(field, &value);
    }
    record
}

/// What a batch's lines were.
#[derive(Debug, Default)]
struct Counts {
    lines: u64,
    postfix: u64,
    unknown: u64,
    not_postfix: u64,
    /// Which lines (by their place in the batch) were Postfix lines of a form not modelled.
    unknown_lines: Vec<usize>,
}

impl Handler for Postfix {
    fn events(&self) -> Vec<String> {
        vec![EVENT.to_string()]
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let batch = match LogBatch::parse(job.notification.as_str(), job.received_ms()) {
            Ok(batch) => batch,
            Err(why) => return Ok(HandlerOutcome::rejected(why)),
        };
        let received = batch.received;
        let mut queues: BTreeMap<QueueKey, QueueFacts> = BTreeMap::new();
        let mut unqueued = BTreeSet::new();
        let mut counts = Counts::default();
        for (n, line) in batch.lines().iter().enumerate() {
            counts.lines += 1;
            let Some(text) = line.as_str() else {
                counts.not_postfix += 1;
                continue;
            };
            let parsed = parse_line(&self.parser, text, received);
            let Some(program) = &parsed.program else {
                counts.not_postfix += 1;
                continue;
            };
            counts.postfix += 1;
            if matches!(parsed.event, Event::Unknown { .. }) {
                counts.unknown += 1;
                counts.unknown_lines.push(n);
            }
            match LineFacts::of(&parsed.frame, program, &parsed.event) {
                Some(LineFacts::Queue(key, facts)) => {
                    queues.entry(key).or_default().merge(*facts);
                }
                Some(LineFacts::Unqueued(verdict)) => {
                    unqueued.insert(verdict);
                }
                None => {}
            }
        }
        for (key, facts) in &queues {
            self.merge(key, facts)?;
        }
        for verdict in &unqueued {
            self.keep_unqueued(verdict)?;
        }
        let summary = json!({
            "lines": counts.lines,
            "postfix": counts.postfix,
            "unknown": counts.unknown,
            "unknown_lines": counts.unknown_lines,
            "not_postfix": counts.not_postfix,
            "queue_files": queues.len(),
            "noqueue": unqueued.len(),
        });
        Ok(HandlerOutcome::done(batch.into_record("postfix", summary)))
    }
}

bonnie_plugin_api::export_handler! {
    name: "postfix",
    description: "Postfix log lines stitched into each queue file's facts, found by Message-ID, queue ID and address.",
    new: Postfix::new,
}

#[cfg(test)]
mod tests;
