//! The event log in Elasticsearch: each record is created (never overwritten) with its job id
//! as `_id` in the daily index of its own date, through `_bulk` requests run a few at a time.
//! A document answered 429 or 503 is tried again with a doubling pause; one the server refuses
//! for another reason goes to the dead-letter store with the server's reason.

use std::{sync::Arc, time::Duration};

use bonnie_core::time;
use bonnie_plugin_api::{ItemStatus, OutputItem, PluginError};
use elasticsearch::{BulkParts, Elasticsearch};
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::Es;

/// One document to write.
#[derive(Clone)]
struct Doc {
    position: usize,
    index: String,
    id: String,
    source: String,
}

/// What the server made of one document.
enum Answer {
    /// Created, or already there (a redelivered job).
    Stored,
    /// Try again later (429, 503, or the request failed as a whole).
    Again(String),
    /// Refused for good.
    Refused { status: u64, error: Value },
}

/// The index of a record: `<prefix>-YYYY.MM.DD` of its event time (UTC).
fn index_for(prefix: &str, record: &Value) -> String {
    let ms = ["@timestamp", "timestamp"]
        .iter()
        .find_map(|key| {
            record
                .get(*key)
                .and_then(Value::as_str)
                .and_then(time::parse_rfc3339_ms)
        })
        .unwrap_or_else(time::now_ms);
    let (year, month, day) = time::utc_date(ms);
    format!("{prefix}-{year:04}.{month:02}.{day:02}")
}

impl Es {
    /// Writes job records to the event log; one status per item, in order.
    pub fn write_log(&self, items: &[OutputItem]) -> Result<Vec<ItemStatus>, PluginError> {
        self.ensure_templates()?;
        let mut statuses: Vec<Option<ItemStatus>> = vec![None; items.len()];
        let mut pending = Vec::with_capacity(items.len());
        let mut dead = Vec::new();
        for (position, item) in items.iter().enumerate() {
            match serde_json::from_str::<Value>(item.record.as_str()) {
                Ok(record @ Value::Object(_)) => {
                    // NDJSON needs one line per document.
                    let source = if item.record.contains('\n') {
                        record.to_string()
                    } else {
                        item.record.to_string()
                    };
                    let index = index_for(&self.settings.log_prefix, &record);
                    pending.push(Doc {
                        position,
                        index,
                        id: item.job_id.to_string(),
                        source,
                    });
                }
                _ => {
                    let reason = "the record is not a JSON object".to_string();
                    dead.push(json!({ "job_id": item.job_id.as_str(), "reason": reason, "record": item.record.as_str(), "at": time::format_rfc3339_ms(time::now_ms()) }));
                    statuses[position] = Some(ItemStatus::Rejected {
                        reason: reason.into(),
                    });
                }
            }
        }
        let mut last_error = String::new();
        for attempt in 0..=self.settings.retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << (attempt - 1).min(6)));
            }
            let answers = self.runtime.block_on(bulk(
                &self.client,
                &pending,
                self.settings.bulk_docs,
                self.settings.concurrency,
            ));
            let mut again = Vec::new();
            for (doc, answer) in pending.into_iter().zip(answers) {
                match answer {
                    Answer::Stored => statuses[doc.position] = Some(ItemStatus::Stored),
                    Answer::Again(reason) => {
                        last_error = reason;
                        again.push(doc);
                    }
                    Answer::Refused { status, error } => {
                        let reason = format!(
                            "{} refused by the server ({status} {}): {}",
                            doc.index,
                            error.get("type").and_then(Value::as_str).unwrap_or("error"),
                            error
                                .get("reason")
                                .and_then(Value::as_str)
                                .unwrap_or("no reason given")
                        );
                        let record: Value =
                            serde_json::from_str(&doc.source).unwrap_or(Value::Null);
                        dead.push(json!({
                            "job_id": doc.id, "index": doc.index, "status": status, "error": error,
                            "reason": reason, "record": record, "at": time::format_rfc3339_ms(time::now_ms()),
                        }));
                        statuses[doc.position] = Some(ItemStatus::Rejected {
                            reason: reason.into(),
                        });
                    }
                }
            }
            pending = again;
        }
        self.dead_letter(&dead)?;
        for doc in pending {
            statuses[doc.position] = Some(ItemStatus::Retry {
                reason: last_error.clone().into(),
            });
        }
        Ok(statuses
            .into_iter()
            .map(|s| {
                s.unwrap_or(ItemStatus::Retry {
                    reason: "not written".into(),
                })
            })
            .collect())
    }
}

/// Sends the documents in `_bulk` requests of `per_request`, at most `concurrency` at once;
/// one answer per document, in order.
async fn bulk(
    client: &Elasticsearch,
    docs: &[Doc],
    per_request: usize,
    concurrency: usize,
) -> Vec<Answer> {
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut requests = JoinSet::new();
    for (n, chunk) in docs.chunks(per_request).enumerate() {
        let (client, limit, chunk) = (client.clone(), limit.clone(), chunk.to_vec());
        requests.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (n, send(&client, &chunk).await)
        });
    }
    let mut answers: Vec<(usize, Vec<Answer>)> = Vec::new();
    while let Some(done) = requests.join_next().await {
        match done {
            Ok(answer) => answers.push(answer),
            Err(e) => answers.push((
                usize::MAX,
                vec![Answer::Again(format!("a bulk request task failed: {e}"))],
            )),
        }
    }
    answers.sort_by_key(|(n, _)| *n);
    let mut flat: Vec<Answer> = answers.into_iter().flat_map(|(_, a)| a).collect();
    // A task that failed as a whole leaves fewer answers than documents: the rest go again.
    while flat.len() < docs.len() {
        flat.push(Answer::Again("no answer for the document".to_string()));
    }
    flat.truncate(docs.len());
    flat
}

/// One `_bulk` request of `create` actions.
async fn send(client: &Elasticsearch, docs: &[Doc]) -> Vec<Answer> {
    // One entry per NDJSON line; the client ends each with a newline.
    let mut body: Vec<String> = Vec::with_capacity(docs.len() * 2);
    for doc in docs {
        body.push(json!({ "create": { "_index": doc.index, "_id": doc.id } }).to_string());
        body.push(doc.source.clone());
    }
    let all_again = |reason: String| docs.iter().map(|_| Answer::Again(reason.clone())).collect();
    let response = match client.bulk(BulkParts::None).body(body).send().await {
        Ok(response) => response,
        Err(e) => return all_again(format!("the bulk request failed: {e}")),
    };
    let status = response.status_code();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(e) => return all_again(format!("the bulk answer ({status}) is not JSON: {e}")),
    };
    if !status.is_success() {
        return all_again(format!("the bulk request was refused ({status}): {body}"));
    }
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    docs.iter()
        .enumerate()
        .map(|(i, _)| {
            let Some(result) = items.get(i).and_then(|item| item.get("create")) else {
                return Answer::Again("the bulk answer has no result for the document".to_string());
            };
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            match status {
                200 | 201 => Answer::Stored,
                // Created before: a redelivered job. The first record stays, as evidence.
                409 => Answer::Stored,
                429 | 502 | 503 | 504 => {
                    Answer::Again(format!("the server answered {status} for the document"))
                }
                _ => Answer::Refused {
                    status,
                    error: result.get("error").cloned().unwrap_or(Value::Null),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_the_index_of_their_own_date() {
        let record = json!({ "@timestamp": "2026-11-28T23:59:59.999Z" });
        assert_eq!(index_for("logstash", &record), "logstash-2026.11.28");
        let raw = json!({ "timestamp": "2026-11-29T00:00:00.000+01:00" });
        assert_eq!(index_for("archive", &raw), "archive-2026.11.28");
    }
}
