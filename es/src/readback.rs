//! The event log read back by job id: a job's entry as it was appended, without the fields
//! es-storage adds for search, which the ledger's digest is taken of. A document this process
//! has just written is read with a realtime multi-get from the index it went to, together
//! with the others written since that were not read yet (one round trip per bulk write, not
//! one per job); any other is searched for by id across the daily indices, and once more after
//! a refresh when not found, since a search sees only what was refreshed.

use std::collections::{HashMap, VecDeque};

use bonnie_core::time;
use bonnie_plugin_api::{PluginError, Record};
use elasticsearch::{
    MgetParts, SearchParts, http::response::Response, indices::IndicesRefreshParts,
};
use serde_json::{Value, json};

use crate::{Es, client::request_error};

/// The fields es-storage adds to a log document beside the record.
pub(crate) const ADDED_FIELDS: [&str; 3] =
    ["search_text", "text_truncated", crate::log::JOB_ID_FIELD];

/// Written documents remembered at most: a worker whose jobs are never read back (an input
/// without the ledger) forgets the oldest beyond this, and a read of one of those searches.
const REMEMBERED_WRITES: usize = 20_000;

/// Log documents this process wrote (created, or found created before) and has not read back,
/// by job id: the index each is in, and its source once fetched (`Some(None)`: not found).
#[derive(Default)]
pub(crate) struct RecentWrites {
    /// Job ids in the order written, each with the number of its write, so that an entry
    /// written again is not forgotten by its older place in the line.
    order: VecDeque<(u64, String)>,
    entries: HashMap<String, Written>,
    writes: u64,
}

struct Written {
    write: u64,
    index: String,
    fetched: Option<Option<Value>>,
}

impl RecentWrites {
    /// Remembers that job `id`'s document is in `index`.
    pub(crate) fn written(&mut self, id: &str, index: &str) {
        self.writes += 1;
        self.order.push_back((self.writes, id.to_string()));
        self.entries.insert(
            id.to_string(),
            Written {
                write: self.writes,
                index: index.to_string(),
                fetched: None,
            },
        );
        while self.entries.len() > REMEMBERED_WRITES {
            let Some((write, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).is_some_and(|w| w.write == write) {
                self.entries.remove(&oldest);
            }
        }
        if self.order.len() > 2 * REMEMBERED_WRITES {
            let entries = &self.entries;
            self.order
                .retain(|(write, id)| entries.get(id).is_some_and(|w| w.write == *write));
        }
    }

    /// The most recently written entries not fetched yet, `id`'s first, at most `limit`.
    fn unfetched(&self, id: &str, limit: usize) -> Vec<(String, String)> {
        let mut batch = Vec::new();
        if let Some(written) = self.entries.get(id) {
            batch.push((id.to_string(), written.index.clone()));
        }
        for (write, other) in self.order.iter().rev() {
            if batch.len() >= limit {
                break;
            }
            match self.entries.get(other) {
                Some(w) if w.write == *write && w.fetched.is_none() && other != id => {
                    batch.push((other.clone(), w.index.clone()))
                }
                _ => {}
            }
        }
        batch
    }
}

impl Es {
    /// The log entry of job `job_id` with its record as it was appended, keyed by the job id;
    /// none if the log has no document of the job.
    pub fn get_log_entry(&self, job_id: &str) -> Result<Option<Record>, PluginError> {
        let source = match self.read_back_written(job_id)? {
            Some(found) => found,
            None => self.find_logged(job_id)?,
        };
        Ok(source.map(|source| log_entry(job_id, source)))
    }

    /// From now on, remembers where each log document goes, for the read back that follows
    /// (es-storage's; es-output, which never reads the log, keeps nothing).
    pub fn reading_back_log(mut self) -> Self {
        self.reads_back_log = true;
        self
    }

    /// Notes where a log document went, for the read back that follows.
    pub(crate) fn remember_written(&self, id: &str, index: &str) {
        if !self.reads_back_log {
            return;
        }
        self.recent_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .written(id, index);
    }

    /// The source of job `job_id`'s document if this process wrote it and has not read it
    /// back (`Some(None)`: no longer in its index); `None` if it is not one of those.
    fn read_back_written(&self, job_id: &str) -> Result<Option<Option<Value>>, PluginError> {
        // Held across the fetch: a read of another job of the same batch waits for it and
        // then finds its document fetched.
        let mut recent = self.recent_writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(written) = recent.entries.get(job_id) else {
            return Ok(None);
        };
        if written.fetched.is_none() {
            let batch = recent.unfetched(job_id, self.settings.bulk_docs);
            let fetched = self.runtime.block_on(self.multi_get(&batch))?;
            for (id, found) in fetched {
                if let Some(entry) = recent.entries.get_mut(&id) {
                    entry.fetched = Some(found);
                }
            }
        }
        match recent.entries.remove(job_id).and_then(|w| w.fetched) {
            Some(found) => Ok(Some(found)),
            None => Err(PluginError::transient(format!(
                "the server gave no answer for job {job_id}'s log document"
            ))),
        }
    }

    /// One realtime `_mget` of `(id, index)` documents: each one's source, or none if absent.
    /// A document the server answers with an error for is left out (read again later).
    async fn multi_get(
        &self,
        docs: &[(String, String)],
    ) -> Result<Vec<(String, Option<Value>)>, PluginError> {
        let wanted: Vec<Value> = docs
            .iter()
            .map(|(id, index)| json!({ "_index": index, "_id": id }))
            .collect();
        let sent = self
            .client
            .mget(MgetParts::None)
            .realtime(true)
            .body(json!({ "docs": wanted }))
            .send()
            .await;
        let what = format!("reading {} log documents back", docs.len());
        let mut answer = json_answer(sent, &what).await?;
        let Some(Value::Array(found)) = answer.get_mut("docs").map(Value::take) else {
            return Err(PluginError::transient(format!(
                "the server's answer to reading log documents back has no docs: {answer}"
            )));
        };
        Ok(found
            .into_iter()
            .filter_map(|mut doc| {
                let id = doc.get("_id")?.as_str()?.to_string();
                match doc.get("found").and_then(Value::as_bool)? {
                    true => Some((id, Some(doc.get_mut("_source")?.take()))),
                    false => Some((id, None)),
                }
            })
            .collect())
    }

    /// The source of job `job_id`'s document, searched for by id in every daily index; if not
    /// found, searched again after refreshing them (a document written moments ago by another
    /// process is not searchable before).
    fn find_logged(&self, job_id: &str) -> Result<Option<Value>, PluginError> {
        let pattern = format!("{}-*", self.settings.log_prefix);
        self.runtime.block_on(async {
            if let Some(found) = self.search_by_id(&pattern, job_id).await? {
                return Ok(Some(found));
            }
            let sent = self
                .client
                .indices()
                .refresh(IndicesRefreshParts::Index(&[&pattern]))
                .ignore_unavailable(true)
                .allow_no_indices(true)
                .send()
                .await;
            json_answer(sent, &format!("refreshing {pattern}")).await?;
            self.search_by_id(&pattern, job_id).await
        })
    }

    async fn search_by_id(
        &self,
        pattern: &str,
        job_id: &str,
    ) -> Result<Option<Value>, PluginError> {
        let sent = self
            .client
            .search(SearchParts::Index(&[pattern]))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .body(json!({ "query": { "ids": { "values": [job_id] } }, "size": 1 }))
            .send()
            .await;
        let what = format!("searching {pattern} for job {job_id}");
        let mut answer = json_answer(sent, &what).await?;
        Ok(answer.pointer_mut("/hits/hits/0/_source").map(Value::take))
    }
}

/// The JSON answer to the request `what` names; an error, a passing fault, unless the server
/// answered with success.
async fn json_answer(
    sent: Result<Response, elasticsearch::Error>,
    what: &str,
) -> Result<Value, PluginError> {
    let response = sent.map_err(|e| request_error(&format!("{what} failed"), e))?;
    let status = response.status_code();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| request_error(&format!("{what} got no JSON answer ({status})"), e))?;
    if !status.is_success() {
        return Err(PluginError::transient(format!(
            "{what} failed ({status}): {answer}"
        )));
    }
    Ok(answer)
}

/// The log entry of a document's source: the record without the fields es-storage added.
fn log_entry(job_id: &str, mut source: Value) -> Record {
    if let Value::Object(fields) = &mut source {
        for added in ADDED_FIELDS {
            fields.remove(added);
        }
    }
    let entry = Record::new("log", job_id, &source);
    match source
        .get("@timestamp")
        .and_then(Value::as_str)
        .and_then(time::parse_rfc3339_ms)
    {
        Some(ms) => entry.at(ms),
        None => entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_to_read_back_is_the_asked_job_then_the_latest_unread_ones() {
        let mut recent = RecentWrites::default();
        for n in 0..5 {
            recent.written(&format!("job-{n}"), "logstash-2026.11.28");
        }
        recent.entries.get_mut("job-3").unwrap().fetched = Some(None);
        let ids: Vec<String> = recent
            .unfetched("job-1", 3)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["job-1", "job-4", "job-2"]);
    }

    #[test]
    fn the_oldest_writes_are_forgotten_beyond_the_bound_and_a_rewrite_is_kept() {
        let mut recent = RecentWrites::default();
        recent.written("first", "logstash-2026.11.28");
        for n in 0..REMEMBERED_WRITES {
            recent.written(&format!("job-{n}"), "logstash-2026.11.28");
            if n == 10 {
                recent.written("first", "logstash-2026.11.29");
            }
        }
        assert_eq!(recent.entries.len(), REMEMBERED_WRITES);
        assert_eq!(recent.entries["first"].index, "logstash-2026.11.29");
        assert!(!recent.entries.contains_key("job-0"));
        assert!(recent.order.len() <= 2 * REMEMBERED_WRITES);
    }

    #[test]
    fn a_log_entry_is_the_record_without_what_the_storage_added() {
        let source = json!({
            "event": "MessageNew",
            "@timestamp": "2026-11-28T10:00:00.000Z",
            "vnd.cmu.sessionId": "s1",
            "search_text": "hello",
            "text_truncated": true,
        });
        let entry = log_entry("job-1", source);
        let body: Value = serde_json::from_str(entry.body.as_str()).unwrap();
        assert_eq!(
            body,
            json!({ "event": "MessageNew", "@timestamp": "2026-11-28T10:00:00.000Z", "vnd.cmu.sessionId": "s1" })
        );
        assert_eq!(entry.key.as_str(), "job-1");
        assert_eq!(entry.collection.as_str(), "log");
        assert!(entry.time_ms.into_option().is_some());
    }
}
