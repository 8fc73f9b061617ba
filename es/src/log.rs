//! The event log in Elasticsearch: each record is created (never overwritten) with its job id
//! as `_id` in the daily index of its own date, through `_bulk` requests run a few at a time.
//! A document answered 429 or 503 is tried again with a doubling pause; one the server refuses
//! for another reason goes to the dead-letter store with the server's reason. A document
//! counts as stored only on its own answer (its request's, matched by `_id`): a request that
//! failed sends exactly its own documents again.

use std::{sync::Arc, time::Duration};

use bonnie_core::time;
use bonnie_plugin_api::{ItemStatus, OutputItem, PluginError, Record, RecordQuery};
use elasticsearch::{BulkParts, Elasticsearch, SearchParts};
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::Es;

/// The field every log document carries its job id in (the document's `_id` too, which
/// Elasticsearch 8 cannot sort by): the tiebreaker of the log's time order.
pub(crate) const JOB_ID_FIELD: &str = "bonnie_job_id";

/// The index term of the log that finds the entries naming a payload: (`payload`, digest).
pub const PAYLOAD_TERM: &str = "payload";

/// The record of a log search hit.
fn log_hit(hit: &Value) -> Option<Record> {
    let key = hit.get("_id").and_then(Value::as_str)?;
    let source = hit.get("_source")?;
    let mut found = Record::new("log", key, source);
    if let Some(ms) = source
        .get("@timestamp")
        .and_then(Value::as_str)
        .and_then(time::parse_rfc3339_ms)
    {
        found = found.at(ms);
    }
    if source.get("text_truncated") == Some(&Value::Bool(true)) {
        found.extra = json!({ "text_truncated": true }).to_string().into();
    }
    Some(found)
}

/// How a `_bulk` request writes its documents.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Action {
    /// `create`: never overwrites (the log: a redelivered job keeps its first record).
    Create,
    /// `index`: inserts or replaces (keyed records).
    Index,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Index => "index",
        }
    }
}

/// One document to write.
#[derive(Clone)]
pub(crate) struct Doc {
    pub(crate) position: usize,
    pub(crate) index: String,
    pub(crate) id: String,
    pub(crate) source: String,
}

/// What the server made of one document.
pub(crate) enum Answer {
    /// Created, or already there (a redelivered job).
    Stored,
    /// Try again later (429, 503, or no usable answer for the document).
    Again(String),
    /// Try again later: the request got no answer from the server at all. The server may
    /// have been replaced by a fresh one meanwhile, so the templates are installed again
    /// before the next write.
    Unanswered(String),
    /// Refused for good.
    Refused { status: u64, error: Value },
}

/// The texts of a record that search finds it by, besides its keyword fields.
const SEARCHED_FIELDS: [&str; 6] = ["subject", "from", "to", "cc", "bcc", "folder_name"];

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
    /// Adds `search_text` (subject, addresses, folder name, and the body text, attachment
    /// names and attachment text of the messages the record stored, read from the payloads
    /// this server keeps; folded by bonnie_mail::fold_for_search) and, when a part was cut at
    /// `max_indexed_text_bytes`, `text_truncated`. A payload this server does not keep (an
    /// es-output beside another storage) adds no text.
    fn add_search_text(&self, record: &mut Value) {
        let mut texts: Vec<String> = Vec::new();
        for field in SEARCHED_FIELDS {
            match record.get(field) {
                Some(Value::String(s)) => texts.push(s.clone()),
                Some(Value::Array(list)) => {
                    texts.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
                }
                _ => {}
            }
        }
        let mut truncated = false;
        for digest in bonnie_core::payload::digests_of_record(record) {
            if let Ok(Some(bytes)) = self.get_payload(&digest) {
                let found =
                    bonnie_mail::parse(&bytes).search_text(self.settings.max_indexed_text_bytes);
                texts.push(found.text);
                truncated |= found.truncated;
            }
        }
        if let Value::Object(fields) = record {
            fields.insert(
                "search_text".to_string(),
                json!(bonnie_mail::fold_for_search(&texts.join("\n"))),
            );
            if truncated {
                fields.insert("text_truncated".to_string(), json!(true));
            }
        }
    }

    /// The log documents a query asks for, as records of collection `log` keyed by job id,
    /// within its time range, at most its limit (every one with `all`), in time order then job
    /// id (or the reverse): with `text`, those whose `search_text` holds every word of it
    /// (folded by bonnie_mail::fold_for_search), without, every entry (what retention walks).
    /// `extra` holds `{"text_truncated": true}` for a message indexed in part. As
    /// sqlite-storage's search. More than a page is read in pages with `search_after` on
    /// (`@timestamp`, `bonnie_job_id`), which every document written since carries (documents
    /// of older archives lack the second: among those, entries of one millisecond that a page
    /// boundary splits may be read twice or not at all).
    pub fn search_log(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        let mut must = Vec::new();
        if let Some(text) = &query.text {
            let text = bonnie_mail::fold_for_search(text);
            if !text
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| !w.is_empty())
            {
                return Ok(Vec::new());
            }
            must.push(json!({ "match": { "search_text": { "query": text, "operator": "and" } } }));
        }
        match &query.index {
            None => {}
            Some((field, digest)) if field == PAYLOAD_TERM => must.push(json!({ "bool": {
                "should": [
                    { "term": { "payload_digest": digest } },
                    { "term": { "payloads.digest": digest } },
                ],
                "minimum_should_match": 1,
            } })),
            // Never every entry for a term the log does not know: a caller counting on the
            // term (a purge asking which entries keep a payload) must not be answered wrongly.
            Some((field, _)) => {
                return Err(PluginError::rejected(format!(
                    "the log is not indexed by {field:?} (only by {PAYLOAD_TERM:?})"
                )));
            }
        }
        let mut range = serde_json::Map::new();
        if let Some(from) = query.from_ms {
            range.insert("gte".into(), json!(from));
        }
        if let Some(to) = query.to_ms {
            range.insert("lt".into(), json!(to));
        }
        if !range.is_empty() {
            must.push(json!({ "range": { "@timestamp": range } }));
        }
        let order = if query.descending { "desc" } else { "asc" };
        let sort = json!([
            { "@timestamp": { "order": order } },
            { JOB_ID_FIELD: { "order": order, "missing": "_last", "unmapped_type": "keyword" } },
        ]);
        let wanted = query.max_records().map(|n| n as usize);
        let pattern = format!("{}-*", self.settings.log_prefix);
        let mut found = Vec::new();
        let mut after: Option<Value> = None;
        self.runtime.block_on(async {
            loop {
                let left = wanted.map_or(usize::MAX, |w| w - found.len());
                let size = left.min(self.settings.page_size as usize);
                let mut body = json!({
                    "query": { "bool": { "must": must } },
                    "sort": sort,
                    "size": size,
                    "track_total_hits": false,
                });
                if let Some(after) = after.take() {
                    body["search_after"] = after;
                }
                let hits = self.search_log_page(&pattern, body).await?;
                let full = hits.len() == size;
                after = hits.last().and_then(|hit| hit.get("sort")).cloned();
                found.extend(hits.iter().filter_map(log_hit));
                if !full || after.is_none() || wanted.is_some_and(|w| found.len() >= w) {
                    return Ok(found);
                }
            }
        })
    }

    /// One page of a search of the log indices: its hits.
    async fn search_log_page(&self, pattern: &str, body: Value) -> Result<Vec<Value>, PluginError> {
        let failed = |e| crate::client::request_error("cannot search the log", e);
        let response = self
            .client
            .search(SearchParts::Index(&[pattern]))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status_code();
        let mut answer: Value = response.json().await.map_err(failed)?;
        if !status.is_success() {
            return Err(PluginError::transient(format!(
                "searching {pattern} failed ({status}): {answer}"
            )));
        }
        Ok(match answer.pointer_mut("/hits/hits").map(Value::take) {
            Some(Value::Array(hits)) => hits,
            _ => Vec::new(),
        })
    }

    /// Purges job `job_id`'s log document in place: it becomes a tombstone in the same index
    /// under the same id, keeping only the event, its time, the job id and when it was
    /// purged (so nothing of its content is found again, and a read back shows it purged).
    /// True if the document exists (purged now or before).
    pub fn purge_log_entry(&self, job_id: &str) -> Result<bool, PluginError> {
        let pattern = format!("{}-*", self.settings.log_prefix);
        let by_id = json!({ "query": { "ids": { "values": [job_id] } }, "size": 1 });
        self.runtime.block_on(async {
            let failed = |e| crate::client::request_error("cannot purge a log entry", e);
            // Expired entries are long searchable: the indices are refreshed only when one is
            // not found yet (written since the last refresh), as the read back does.
            let mut hits = self.search_log_page(&pattern, by_id.clone()).await?;
            if hits.is_empty() {
                self.client
                    .indices()
                    .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&[
                        &pattern,
                    ]))
                    .ignore_unavailable(true)
                    .allow_no_indices(true)
                    .send()
                    .await
                    .map_err(failed)?;
                hits = self.search_log_page(&pattern, by_id).await?;
            }
            let Some(hit) = hits.first() else {
                return Ok(false);
            };
            let (Some(index), Some(source)) = (
                hit.get("_index").and_then(Value::as_str),
                hit.get("_source"),
            ) else {
                return Ok(false);
            };
            if source.get("purged") == Some(&Value::Bool(true)) {
                return Ok(true);
            }
            let tombstone = json!({
                "purged": true,
                "purged_ms": time::now_ms(),
                "event": source.get("event"),
                "@timestamp": source.get("@timestamp"),
                JOB_ID_FIELD: job_id,
            });
            let response = self
                .client
                .index(elasticsearch::IndexParts::IndexId(index, job_id))
                .refresh(elasticsearch::params::Refresh::True)
                .body(tombstone)
                .send()
                .await
                .map_err(failed)?;
            let status = response.status_code();
            if !status.is_success() {
                return Err(PluginError::transient(format!(
                    "purging {index}/{job_id} failed ({status})"
                )));
            }
            Ok(true)
        })
    }

    /// Writes job records to the event log; one status per item, in order.
    pub fn write_log(&self, items: &[OutputItem]) -> Result<Vec<ItemStatus>, PluginError> {
        self.ensure_templates()?;
        let mut statuses: Vec<Option<ItemStatus>> = vec![None; items.len()];
        let mut pending = Vec::with_capacity(items.len());
        let mut dead = Vec::new();
        for (position, item) in items.iter().enumerate() {
            match serde_json::from_str::<Value>(item.record.as_str()) {
                Ok(mut record @ Value::Object(_)) => {
                    self.add_search_text(&mut record);
                    record[JOB_ID_FIELD] = json!(item.job_id.as_str());
                    // One line per document, as NDJSON needs.
                    let source = record.to_string();
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
                if let Err(e) = self.ensure_templates() {
                    last_error = e.message.to_string();
                    continue;
                }
            }
            let client = &self.client;
            let answers = self.runtime.block_on(bulk(
                &pending,
                self.settings.bulk_docs,
                self.settings.concurrency,
                |chunk| {
                    let client = client.clone();
                    async move { send(&client, Action::Create, &chunk).await }
                },
            ));
            let mut again = Vec::new();
            for (doc, answer) in pending.into_iter().zip(answers) {
                match answer {
                    Answer::Stored => {
                        self.remember_written(&doc.id, &doc.index);
                        statuses[doc.position] = Some(ItemStatus::Stored);
                    }
                    Answer::Again(reason) => {
                        last_error = reason;
                        again.push(doc);
                    }
                    Answer::Unanswered(reason) => {
                        self.templates_lost();
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

/// Sends the documents in `_bulk` requests of `per_request` through `send`, at most
/// `concurrency` at once; one answer per document, in order. Each request's answers are
/// its own documents' only: a request that fails as a whole, or whose answers do not match
/// its documents one for one, sends exactly its documents again, whatever the others got.
pub(crate) async fn bulk<S, F>(
    docs: &[Doc],
    per_request: usize,
    concurrency: usize,
    send: S,
) -> Vec<Answer>
where
    S: Fn(Vec<Doc>) -> F,
    F: Future<Output = Vec<Answer>> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(concurrency));
    let chunks: Vec<&[Doc]> = docs.chunks(per_request).collect();
    let mut requests = JoinSet::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let (limit, request) = (limit.clone(), send(chunk.to_vec()));
        requests.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (n, request.await)
        });
    }
    let mut answered: Vec<Option<Vec<Answer>>> = chunks.iter().map(|_| None).collect();
    let mut lost = "no answer for the document".to_string();
    while let Some(done) = requests.join_next().await {
        match done {
            Ok((n, answers)) => answered[n] = Some(answers),
            // The task's chunk is the one left without answers.
            Err(e) => lost = format!("a bulk request task failed: {e}"),
        }
    }
    chunks
        .iter()
        .zip(answered)
        .flat_map(|(chunk, answers)| match answers {
            Some(answers) if answers.len() == chunk.len() => answers,
            _ => chunk.iter().map(|_| Answer::Again(lost.clone())).collect(),
        })
        .collect()
}

/// One `_bulk` request writing `docs` with `action`.
pub(crate) async fn send(client: &Elasticsearch, action: Action, docs: &[Doc]) -> Vec<Answer> {
    // One entry per NDJSON line; the client ends each with a newline.
    let mut body: Vec<String> = Vec::with_capacity(docs.len() * 2);
    for doc in docs {
        body.push(json!({ action.name(): { "_index": doc.index, "_id": doc.id } }).to_string());
        body.push(doc.source.clone());
    }
    let all_again = |reason: String| docs.iter().map(|_| Answer::Again(reason.clone())).collect();
    let unanswered = |reason: String| {
        docs.iter()
            .map(|_| Answer::Unanswered(reason.clone()))
            .collect()
    };
    let response = match client.bulk(BulkParts::None).body(body).send().await {
        Ok(response) => response,
        Err(e) => return unanswered(format!("the bulk request failed: {e}")),
    };
    let status = response.status_code();
    // An answer cut short (the server died while sending it) counts as none.
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(e) => return unanswered(format!("the bulk answer ({status}) is not JSON: {e}")),
    };
    if !status.is_success() {
        return all_again(format!("the bulk request was refused ({status}): {body}"));
    }
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let results: Vec<Option<&Value>> = items.iter().map(|item| item.get(action.name())).collect();
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let Some(result) = result_for(&results, i, doc) else {
                return Answer::Again("the bulk answer has no result for the document".to_string());
            };
            answer_of(result)
        })
        .collect()
}

/// What the server made of one document, from its item of the bulk answer.
fn answer_of(result: &Value) -> Answer {
    let Some(status) = result.get("status").and_then(Value::as_u64) else {
        return Answer::Again("the bulk answer gave the document no status".to_string());
    };
    match status {
        200 | 201 => Answer::Stored,
        // Created before: a redelivered job. The first record stays, as evidence.
        409 => Answer::Stored,
        // Too many requests, or a fault of the server's (a shard moving, a node gone):
        // never a reason to give the document up.
        429 | 500..=599 => Answer::Again(format!("the server answered {status} for the document")),
        _ => Answer::Refused {
            status,
            error: result.get("error").cloned().unwrap_or(Value::Null),
        },
    }
}

/// The answer to the document at `position` of a request: the server answers in order, so
/// the item at the same position if it names the document's id (or names none); else the
/// item that names it; else none (the document goes again).
fn result_for<'a>(results: &[Option<&'a Value>], position: usize, doc: &Doc) -> Option<&'a Value> {
    let named = |result: &&Value| id_of(result) == Some(doc.id.as_str());
    results
        .get(position)
        .copied()
        .flatten()
        .filter(|result| id_of(result).is_none() || named(result))
        .or_else(|| results.iter().copied().flatten().find(named))
}

fn id_of(result: &Value) -> Option<&str> {
    result.get("_id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(n: usize) -> Vec<Doc> {
        (0..n)
            .map(|position| Doc {
                position,
                index: "logstash-2026.11.28".to_string(),
                id: format!("job-{position}"),
                source: "{}".to_string(),
            })
            .collect()
    }

    fn stored(answers: &[Answer]) -> Vec<bool> {
        answers
            .iter()
            .map(|a| matches!(a, Answer::Stored))
            .collect()
    }

    // A request task that dies cannot be made to happen with a real server (it takes a panic
    // in the client), so the sender here panics for one chunk and answers another short.
    #[test]
    fn a_failed_bulk_request_sends_exactly_its_own_documents_again() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let docs = docs(11);
        let answers = runtime.block_on(bulk(&docs, 3, 2, |chunk: Vec<Doc>| async move {
            match chunk[0].position {
                3 => panic!("the request task dies"),
                6 => vec![Answer::Stored],
                _ => chunk.iter().map(|_| Answer::Stored).collect(),
            }
        }));
        assert_eq!(answers.len(), docs.len());
        let expected: Vec<bool> = (0..11).map(|p| !(3..9).contains(&p)).collect();
        assert_eq!(stored(&answers), expected);
    }

    #[test]
    fn bulk_items_are_matched_to_their_documents_by_id() {
        let docs = docs(3);
        let items = [
            json!({ "_id": "job-0", "status": 201 }),
            json!({ "_id": "job-2", "status": 201 }),
            json!({ "_id": "job-1", "status": 409 }),
        ];
        let results: Vec<Option<&Value>> = items.iter().map(Some).collect();
        for (position, doc) in docs.iter().enumerate() {
            assert_eq!(
                result_for(&results, position, doc).unwrap()["_id"],
                doc.id.as_str()
            );
        }
        let others = [json!({ "_id": "job-9", "status": 201 })];
        let results: Vec<Option<&Value>> = others.iter().map(Some).collect();
        assert!(result_for(&results, 0, &docs[0]).is_none());
        let unnamed = [json!({ "status": 201 })];
        let results: Vec<Option<&Value>> = unnamed.iter().map(Some).collect();
        assert!(result_for(&results, 0, &docs[0]).is_some());
    }

    #[test]
    fn only_a_refusal_of_the_document_itself_gives_it_up() {
        let again = |item: Value| matches!(answer_of(&item), Answer::Again(_));
        assert!(matches!(
            answer_of(&json!({ "status": 201 })),
            Answer::Stored
        ));
        assert!(matches!(
            answer_of(&json!({ "status": 409 })),
            Answer::Stored
        ));
        for status in [429, 500, 502, 503, 504] {
            assert!(again(json!({ "status": status })), "{status}");
        }
        assert!(again(json!({ "error": { "type": "oops" } })), "no status");
        let refused =
            answer_of(&json!({ "status": 400, "error": { "type": "mapper_parsing_exception" } }));
        assert!(matches!(refused, Answer::Refused { status: 400, .. }));
    }

    #[test]
    fn events_land_in_the_index_of_their_own_date() {
        let record = json!({ "@timestamp": "2026-11-28T23:59:59.999Z" });
        assert_eq!(index_for("logstash", &record), "logstash-2026.11.28");
        let raw = json!({ "timestamp": "2026-11-29T00:00:00.000+01:00" });
        assert_eq!(index_for("archive", &raw), "archive-2026.11.28");
    }
}
