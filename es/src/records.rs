//! Keyed records in Elasticsearch: one index per collection (`<prefix><collection>`), the key
//! as `_id`, index terms as `field=value` keywords, the body kept but not indexed. Writes
//! refresh, so the next query sees them (records are few beside the event log); queries page
//! through any number of matches.

use std::sync::Arc;

use bonnie_payload_store::{PayloadStore, Sealer};
use bonnie_plugin_api::{IndexTerm, PluginError, Record, RecordQuery};
use elasticsearch::{DeleteParts, GetParts, IndexParts, SearchParts, params::Refresh};
use serde_json::{Value, json};

use crate::{
    Es,
    client::request_error,
    log::{Action, Answer, Doc},
};

impl Es {
    pub(crate) fn records_index(&self, collection: &str) -> Result<String, PluginError> {
        let valid = !collection.is_empty()
            && collection
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c));
        if !valid {
            return Err(PluginError::rejected(format!(
                "{collection:?} cannot name an index: use lowercase letters, digits, - and _"
            )));
        }
        Ok(format!("{}{collection}", self.settings.records_prefix))
    }

    /// The record with this key.
    pub fn get_record(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
        let index = self.records_index(collection)?;
        self.runtime.block_on(async {
            Ok(self
                .get_document(&index, key)
                .await?
                .and_then(|body| body.get("_source").map(|s| record_from(collection, key, s))))
        })
    }

    /// The server's answer to a GET of `key` in `index` (`_source`, `_seq_no`,
    /// `_primary_term`), none if there is no such document.
    async fn get_document(&self, index: &str, key: &str) -> Result<Option<Value>, PluginError> {
        let response = self
            .client
            .get(GetParts::IndexId(index, key))
            .send()
            .await
            .map_err(|e| request_error("cannot read a record", e))?;
        if response.status_code().as_u16() == 404 {
            return Ok(None);
        }
        let status = response.status_code();
        let body: Value = response
            .json()
            .await
            .map_err(|e| request_error("cannot read a record", e))?;
        if !status.is_success() {
            return Err(PluginError::transient(format!(
                "reading {index}/{key} failed ({status}): {body}"
            )));
        }
        Ok(Some(body))
    }

    /// Inserts or replaces a record.
    pub fn put_record(&self, record: &Record) -> Result<(), PluginError> {
        self.ensure_templates()?;
        let index = self.records_index(record.collection.as_str())?;
        let document = document(record)?;
        self.runtime.block_on(async {
            let response = self
                .client
                .index(IndexParts::IndexId(&index, record.key.as_str()))
                .refresh(Refresh::True)
                .body(document)
                .send()
                .await
                .map_err(|e| request_error("cannot write a record", e))?;
            let status = response.status_code();
            if status.is_success() {
                return Ok(());
            }
            let text = response.text().await.unwrap_or_default();
            let error = format!("writing {index}/{} failed ({status}): {text}", record.key);
            Err(if status.as_u16() == 400 {
                PluginError::rejected(error)
            } else {
                PluginError::transient(error)
            })
        })
    }

    /// Inserts or replaces many records at once, with `_bulk` requests of `bulk_docs`
    /// (`concurrency` in flight), retried as the log's writes are, then one refresh of the
    /// indices written: what one `put_record` per record gives, at the cost of one request per
    /// `bulk_docs` records instead of one (with its refresh) per record. Fails, naming the first
    /// record the server refused or kept failing, if any record is not written.
    pub fn put_records(&self, records: &[Record]) -> Result<(), PluginError> {
        self.ensure_templates()?;
        let mut pending = Vec::with_capacity(records.len());
        let mut indices: Vec<String> = Vec::new();
        for (position, record) in records.iter().enumerate() {
            let index = self.records_index(record.collection.as_str())?;
            if !indices.contains(&index) {
                indices.push(index.clone());
            }
            pending.push(Doc {
                position,
                index,
                id: record.key.to_string(),
                source: document(record)?.to_string(),
            });
        }
        let mut last_error = String::new();
        for attempt in 0..=self.settings.retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(
                    100 << (attempt - 1).min(6),
                ));
            }
            let client = &self.client;
            let answers = self.runtime.block_on(crate::log::bulk(
                &pending,
                self.settings.bulk_docs,
                self.settings.concurrency,
                |chunk| {
                    let client = client.clone();
                    async move { crate::log::send(&client, Action::Index, &chunk).await }
                },
            ));
            let mut again = Vec::new();
            for (doc, answer) in pending.into_iter().zip(answers) {
                match answer {
                    Answer::Stored => {}
                    Answer::Again(reason) | Answer::Unanswered(reason) => {
                        last_error = reason;
                        again.push(doc);
                    }
                    Answer::Refused { status, error } => {
                        return Err(PluginError::rejected(format!(
                            "writing {}/{} was refused ({status}): {error}",
                            doc.index, doc.id
                        )));
                    }
                }
            }
            pending = again;
        }
        if let Some(doc) = pending.first() {
            return Err(PluginError::transient(format!(
                "{} of {} records not written (the first {}/{}): {last_error}",
                pending.len(),
                records.len(),
                doc.index,
                doc.id
            )));
        }
        let names: Vec<&str> = indices.iter().map(String::as_str).collect();
        self.runtime.block_on(async {
            let response = self
                .client
                .indices()
                .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&names))
                .send()
                .await
                .map_err(|e| request_error("cannot refresh the record indices", e))?;
            match response.status_code() {
                status if status.is_success() => Ok(()),
                status => Err(PluginError::transient(format!(
                    "refreshing {} failed ({status})",
                    names.join(",")
                ))),
            }
        })
    }

    /// Deletes a record; true if it existed.
    pub fn delete_record(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
        let index = self.records_index(collection)?;
        self.runtime.block_on(async {
            let response = self
                .client
                .delete(DeleteParts::IndexId(&index, key))
                .refresh(Refresh::True)
                .send()
                .await
                .map_err(|e| request_error("cannot delete a record", e))?;
            match response.status_code().as_u16() {
                404 => Ok(false),
                code if (200..300).contains(&code) => Ok(true),
                code => Err(PluginError::transient(format!(
                    "deleting {index}/{key} failed ({code})"
                ))),
            }
        })
    }

    /// The records matching a query, ordered by time then key (a record without a time
    /// first, as SQLite orders them, or last when descending). A query for more records than
    /// one page holds pages with `search_after` on (time, key): the key is unique within the
    /// index, so every record present throughout is returned exactly once, with no point in
    /// time (Elasticsearch's `_pit` and OpenSearch's `point_in_time` differ) and no cap of
    /// `max_result_window`; a record written while the pages are read may or may not be.
    pub fn query_records(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        if let Some(items) = query.item_query()? {
            return self.query_items(query, items);
        }
        let index = self.records_index(&query.collection)?;
        let mut filter = Vec::new();
        if let Some((field, value)) = &query.index {
            filter.push(json!({ "term": { "terms": format!("{field}={value}") } }));
        }
        if let Some(prefix) = &query.key_prefix {
            filter.push(json!({ "prefix": { "key": prefix } }));
        }
        let mut range = serde_json::Map::new();
        if let Some(from) = query.from_ms {
            range.insert("gte".into(), json!(from));
        }
        if let Some(to) = query.to_ms {
            range.insert("lt".into(), json!(to));
        }
        if !range.is_empty() {
            filter.push(json!({ "range": { "time_ms": range } }));
        }
        let (order, missing) = if query.descending {
            ("desc", "_last")
        } else {
            ("asc", "_first")
        };
        let sort = json!([
            { "time_ms": { "order": order, "missing": missing } },
            { "key": { "order": order } },
        ]);
        let wanted = query.max_records().map(|n| n as usize);
        self.runtime.block_on(self.search_records(
            &index,
            &query.collection,
            json!({ "bool": { "filter": filter } }),
            sort,
            wanted,
            !query.keys_only,
        ))
    }

    /// The records of `collection` in `index` matching `query`, in `sort` order, at most
    /// `wanted`: pages of `page_size` hits read with `search_after` on the sort values (the
    /// last of which must be unique, as the key is), so every record present throughout is
    /// returned once, past any `max_result_window`. Without `source` the documents are not
    /// fetched: the records carry their keys alone ([`RecordQuery::keys_only`]).
    pub(crate) async fn search_records(
        &self,
        index: &str,
        collection: &str,
        query: Value,
        sort: Value,
        wanted: Option<usize>,
        source: bool,
    ) -> Result<Vec<Record>, PluginError> {
        let mut found = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let left = wanted.map_or(usize::MAX, |w| w - found.len());
            let size = left.min(self.settings.page_size as usize);
            let mut body = json!({
                "query": query,
                "sort": sort,
                "size": size,
                "track_total_hits": false,
                "_source": source,
            });
            if let Some(after) = after.take() {
                body["search_after"] = after;
            }
            let hits = self.search_page(index, body).await?;
            let full = hits.len() == size;
            after = hits.last().and_then(|hit| hit.get("sort")).cloned();
            found.extend(hits.iter().filter_map(|hit| {
                let key = hit.get("_id").and_then(Value::as_str)?;
                let document = hit.get("_source").unwrap_or(&Value::Null);
                Some(record_from(collection, key, document))
            }));
            if !full || after.is_none() || wanted.is_some_and(|w| found.len() >= w) {
                return Ok(found);
            }
        }
    }

    /// One page of a search of `index`: its hits, none when the index does not exist yet.
    async fn search_page(&self, index: &str, body: Value) -> Result<Vec<Value>, PluginError> {
        let response = self
            .client
            .search(SearchParts::Index(&[index]))
            .ignore_unavailable(true)
            .body(body)
            .send()
            .await
            .map_err(|e| request_error("cannot query records", e))?;
        let status = response.status_code();
        let mut answer: Value = response
            .json()
            .await
            .map_err(|e| request_error("cannot query records", e))?;
        if !status.is_success() {
            return Err(PluginError::transient(format!(
                "querying {index} failed ({status}): {answer}"
            )));
        }
        Ok(match answer.pointer_mut("/hits/hits").map(Value::take) {
            Some(Value::Array(hits)) => hits,
            _ => Vec::new(),
        })
    }
}

/// The document that keeps a record; an item document's with its indexed fields
/// ([`crate::items::indexed_fields`]).
fn document(record: &Record) -> Result<Value, PluginError> {
    let body: Value = serde_json::from_str(record.body.as_str())
        .map_err(|e| PluginError::rejected(format!("the record's body is not JSON: {e}")))?;
    let terms: Vec<String> = record
        .index
        .iter()
        .map(|t| format!("{}={}", t.field, t.value))
        .collect();
    let mut document = json!({
        "collection": record.collection.as_str(),
        "key": record.key.as_str(),
        "time_ms": record.time_ms.into_option(),
        "terms": terms,
        "body": body,
    });
    if record.collection.as_str() == bonnie_plugin_api::items::ITEMS {
        crate::items::indexed_fields(record, &mut document)?;
    }
    Ok(document)
}

impl Es {
    /// Inserts or replaces a record only if its stored body is still `expected` (`None`: only
    /// if absent); true if written. Optimistic concurrency of the server: the write names the
    /// sequence number it read (`if_seq_no`, `if_primary_term`) or is a `create`, and a
    /// conflict (409) means another writer got in between.
    pub fn put_record_if(
        &self,
        record: &Record,
        expected: Option<&str>,
    ) -> Result<bool, PluginError> {
        self.ensure_templates()?;
        let index = self.records_index(record.collection.as_str())?;
        let key = record.key.as_str();
        let document = document(record)?;
        let expected: Option<Value> = match expected {
            Some(text) => Some(serde_json::from_str(text).map_err(|e| {
                PluginError::rejected(format!("the expected body is not JSON: {e}"))
            })?),
            None => None,
        };
        self.runtime.block_on(async {
            let stored = self.get_document(&index, key).await?;
            let version = match &stored {
                None => None,
                Some(stored) => Some(
                    stored
                        .get("_seq_no")
                        .and_then(Value::as_i64)
                        .zip(stored.get("_primary_term").and_then(Value::as_i64))
                        .ok_or_else(|| {
                            PluginError::transient(format!(
                                "reading {index}/{key} gave no sequence number: {stored}"
                            ))
                        })?,
                ),
            };
            let stored_body = stored.as_ref().and_then(|s| s.pointer("/_source/body"));
            if stored_body != expected.as_ref() {
                return Ok(false);
            }
            let request = self
                .client
                .index(IndexParts::IndexId(&index, key))
                .refresh(Refresh::True);
            let request = match version {
                Some((seq, term)) => request.if_seq_no(seq).if_primary_term(term),
                None => request.op_type(elasticsearch::params::OpType::Create),
            };
            let response = request
                .body(document)
                .send()
                .await
                .map_err(|e| request_error("cannot write a record", e))?;
            let status = response.status_code();
            match status.as_u16() {
                409 => Ok(false),
                200..=299 => Ok(true),
                _ => {
                    let text = response.text().await.unwrap_or_default();
                    let error = format!("writing {index}/{key} failed ({status}): {text}");
                    Err(if status.as_u16() == 400 {
                        PluginError::rejected(error)
                    } else {
                        PluginError::transient(error)
                    })
                }
            }
        })
    }
}

fn record_from(collection: &str, key: &str, source: &Value) -> Record {
    let index = source
        .get("terms")
        .and_then(Value::as_array)
        .map(|terms| {
            terms
                .iter()
                .filter_map(|t| {
                    t.as_str()?.split_once('=').map(|(f, v)| IndexTerm {
                        field: f.into(),
                        value: v.into(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        collection: collection.into(),
        key: key.into(),
        time_ms: source.get("time_ms").and_then(Value::as_i64).into(),
        body: source
            .get("body")
            .cloned()
            .unwrap_or(Value::Null)
            .to_string()
            .into(),
        index,
        extra: Default::default(),
    }
}

impl Es {
    /// Keeps payloads in `store` (an S3 bucket) instead of as documents of this server;
    /// those kept as documents before are still read.
    pub fn with_payload_store(mut self, store: Arc<dyn PayloadStore>) -> Self {
        self.payload_store = Some(store);
        self
    }

    /// Seals the payloads it keeps as documents with `sealer` (a store beyond the server seals
    /// its own); documents kept plain before still read.
    pub fn with_payload_sealer(mut self, sealer: Sealer) -> Self {
        self.payload_sealer = sealer;
        self
    }

    /// Removes the payload of `digest`: its document, and its object in the payload store if
    /// there is one. True if the document was there.
    pub fn remove_payload(&self, digest: &str) -> Result<bool, PluginError> {
        if let Some(store) = &self.payload_store {
            store.remove(digest).map_err(payload_error)?;
        }
        self.delete_record("payloads", digest)
    }

    /// Where payloads are kept, for the start-up message.
    pub fn payload_location(&self) -> String {
        match &self.payload_store {
            Some(store) => store.location(),
            None if self.payload_sealer.seals() => {
                format!("the index {}payloads, sealed", self.settings.records_prefix)
            }
            None => format!("the index {}payloads", self.settings.records_prefix),
        }
    }

    /// Keeps a payload once: in the payload store if there is one, else compressed in the
    /// `<records_prefix>payloads` index under its digest (`create`: a payload already kept is
    /// left as it is), its zstd frame in `zstd_base64`, or sealed in `sealed_base64` when
    /// the sealer seals.
    pub fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        if let Some(store) = &self.payload_store {
            return store.put(bytes).map_err(payload_error);
        }
        self.ensure_templates()?;
        let digest = bonnie_core::payload::digest(bytes);
        let kept = self
            .payload_sealer
            .keep(&digest, bytes)
            .map_err(payload_error)?;
        let field = if self.payload_sealer.seals() {
            SEALED_FIELD
        } else {
            PLAIN_FIELD
        };
        let index = self.records_index("payloads")?;
        let document = json!({
            "collection": "payloads",
            "key": digest,
            "time_ms": bonnie_core::time::now_ms(),
            "body": { "size": bytes.len(), field: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &kept) },
        });
        self.runtime.block_on(async {
            let response = self
                .client
                .create(elasticsearch::CreateParts::IndexId(&index, &digest))
                .refresh(Refresh::True)
                .body(document)
                .send()
                .await
                .map_err(|e| request_error("cannot write a payload", e))?;
            match response.status_code().as_u16() {
                200..=299 | 409 => Ok(digest.clone()),
                code => Err(PluginError::transient(format!(
                    "writing payload {digest} failed ({code})"
                ))),
            }
        })
    }

    /// The payload with this digest, if kept (checked against it): from the payload store if
    /// there is one, then from this server's documents.
    pub fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        if let Some(store) = &self.payload_store
            && let Some(bytes) = store.get(digest).map_err(payload_error)?
        {
            return Ok(Some(bytes));
        }
        let Some(record) = self.get_record("payloads", digest)? else {
            return Ok(None);
        };
        let body: Value = serde_json::from_str(record.body.as_str()).unwrap_or(Value::Null);
        let broken =
            |what: &str| PluginError::transient(format!("payload {digest} is damaged: {what}"));
        let kept = body
            .get(SEALED_FIELD)
            .or_else(|| body.get(PLAIN_FIELD))
            .and_then(Value::as_str)
            .and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
            })
            .ok_or_else(|| broken("no data"))?;
        let size = body
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| broken("no size"))?;
        self.payload_sealer
            .open(digest, size, &kept)
            .map(Some)
            .map_err(payload_error)
    }
}

/// The field of a payload document holding its zstd frame, base64.
const PLAIN_FIELD: &str = "zstd_base64";

/// The field of a payload document holding its sealed frame, base64 (`payload_key_file`).
const SEALED_FIELD: &str = "sealed_base64";

/// A payload store's failure: damage and a store that does not answer alike fail the job,
/// which is tried again.
fn payload_error(e: bonnie_payload_store::Error) -> PluginError {
    PluginError::transient(e.to_string())
}
