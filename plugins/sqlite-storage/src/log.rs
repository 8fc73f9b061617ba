//! The event log: appends processed jobs in one transaction per batch, once per job id, each
//! entry hashed over its content and the previous entry's hash. Each entry is also indexed for
//! full-text search (`log_text`): its subject, addresses, folder names, flags and Message-IDs,
//! and the body text, attachment names and attachment text of the messages it stored, each
//! part up to a limit, all folded by [`bonnie_mail::fold_for_search`] (queries are folded the
//! same way by [`search`]).

use bonnie_core::{notification, payload, time};
use bonnie_plugin_api::{ItemStatus, OutputItem, Record, RecordQuery};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The collection name under which [`search`] answers storage queries: the event log.
pub const COLLECTION: &str = "log";

/// How the full-text index reads the messages an entry stored.
#[derive(Debug, Clone)]
pub struct TextIndex {
    /// At most this many bytes of text per part (body, attachment) are indexed.
    pub max_part_bytes: usize,
    /// Where payloads are beyond the database.
    pub payloads: crate::Payloads,
}

impl Default for TextIndex {
    fn default() -> Self {
        Self {
            max_part_bytes: bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES,
            payloads: crate::Payloads::default(),
        }
    }
}

/// A payload's bytes, from the database or beyond it; `None` when neither has it
/// (or it cannot be read: the index then lacks its text, the entry is still stored).
fn payload_bytes(conn: &Connection, index: &TextIndex, digest: &str) -> Option<Vec<u8>> {
    let stored: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT size, data FROM payloads WHERE digest = ?1")
        .and_then(|mut s| {
            s.query_row([digest], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ok()
        .flatten();
    match stored {
        Some((size, data)) => index.payloads.open_row(digest, size, &data).ok(),
        None => index.payloads.beyond_database(digest).ok().flatten(),
    }
}

/// The text of the messages a record stored, and whether a part was cut at the limit.
fn message_text(conn: &Connection, index: &TextIndex, record: &Value) -> (String, bool) {
    let (mut text, mut truncated) = (String::new(), false);
    for digest in payload::digests_of_record(record) {
        if let Some(bytes) = payload_bytes(conn, index, &digest) {
            let found = bonnie_mail::parse(&bytes).search_text(index.max_part_bytes);
            text.push('\n');
            text.push_str(&found.text);
            truncated |= found.truncated;
        }
    }
    (text, truncated)
}

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of one log entry: SHA-256 over the previous hash, the sequence number, the job
/// id and the record, each length-prefixed so that no two entries can collide by shifting
/// bytes between fields.
pub fn entry_hash(prev: &[u8], seq: i64, job_id: &str, record: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(seq.to_be_bytes());
    hasher.update((job_id.len() as u64).to_be_bytes());
    hasher.update(job_id.as_bytes());
    hasher.update((record.len() as u64).to_be_bytes());
    hasher.update(record.as_bytes());
    hasher.finalize().into()
}

/// The columns the log indexes, read from a record.
pub struct Columns {
    event: String,
    time_ms: Option<i64>,
    user: Option<String>,
    user_id: Option<String>,
    folder_uniqueid: Option<String>,
    folder_id: Option<String>,
    message_ids: Vec<String>,
    /// The payloads the record names.
    payload_digests: Vec<String>,
    /// What full-text search finds the entry by, folded.
    text: String,
    /// True when a part of a message was longer than the limit and is indexed in part.
    text_truncated: bool,
}

fn columns(conn: &Connection, index: &TextIndex, record: &str) -> Result<Columns, String> {
    let value: serde_json::Value =
        serde_json::from_str(record).map_err(|e| format!("the record is not JSON: {e}"))?;
    let event = notification::event_name(record)
        .map_err(|e| e.to_string())?
        .into_owned();
    let text = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let list = |key: &str| -> Vec<String> {
        match value.get(key) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    };
    let time_ms = text("@timestamp")
        .or_else(|| text("timestamp"))
        .and_then(|t| time::parse_rfc3339_ms(&t));
    let mut message_ids = list("message_ids");
    message_ids.extend(list("message_id"));
    message_ids.sort();
    message_ids.dedup();
    let mut searchable: Vec<String> = vec![event.clone()];
    for key in [
        "subject",
        "folder_name",
        "folder",
        "old_folder",
        "user",
        "acl_subject",
        "object_uid",
        "body_text",
    ] {
        searchable.extend(text(key));
    }
    for key in ["from", "to", "cc", "bcc", "flags"] {
        searchable.extend(list(key));
    }
    searchable.extend(message_ids.iter().cloned());
    let (body, text_truncated) = message_text(conn, index, &value);
    searchable.push(body);
    Ok(Columns {
        event,
        time_ms,
        user: text("user").filter(|u| !u.is_empty()),
        user_id: text("user_id"),
        folder_uniqueid: text("folder_uniqueid").or_else(|| text("mailboxID")),
        folder_id: text("folder_id"),
        message_ids,
        payload_digests: payload::digests_of_record(&value),
        text: bonnie_mail::fold_for_search(&searchable.join(" ")),
        text_truncated,
    })
}

/// What each item's log entry holds beside its record (its columns and search text), or why
/// it cannot be logged. Computed before the write lock is taken ([`append`]): parsing a
/// record, folding its text and reading its messages need no lock, and the storage's other
/// writers (handlers updating views) would otherwise wait for all of it.
pub fn prepare(
    conn: &Connection,
    items: &[OutputItem],
    index: &TextIndex,
) -> Vec<Result<Columns, String>> {
    items
        .iter()
        .map(|item| columns(conn, index, item.record.as_str()))
        .collect()
}

/// Appends the items not already in the log, with the columns [`prepare`] computed for each
/// (in the same order), after `before` wrote what must be stored with them (the records a
/// sole worker held, see `held`) in the same transaction; one status per item.
pub fn append(
    conn: &mut Connection,
    items: &[OutputItem],
    prepared: Vec<Result<Columns, String>>,
    before: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<Vec<ItemStatus>> {
    // IMMEDIATE takes the write lock before reading the chain's head, so another writer
    // (a second worker on the same file) waits instead of failing the batch.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    before(&tx)?;
    let mut statuses = Vec::with_capacity(items.len());
    {
        let (mut seq, mut prev): (i64, Vec<u8>) = tx
            .query_row(
                "SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, GENESIS.to_vec()));
        // AUTOINCREMENT never reuses a number, even one whose entry a retention run removed.
        let floor: i64 = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'log'",
                [],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        seq = seq.max(floor);
        let mut exists = tx.prepare_cached("SELECT 1 FROM log WHERE job_id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO log (seq, job_id, event, time_ms, user, folder_uniqueid, stored_ms, record, prev_hash, hash,
                              user_id, folder_id, text_truncated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut insert_text =
            tx.prepare_cached("INSERT INTO log_text (rowid, text) VALUES (?1, ?2)")?;
        let mut insert_message_id = tx.prepare_cached(
            "INSERT OR IGNORE INTO log_message_ids (message_id, seq) VALUES (?1, ?2)",
        )?;
        let mut insert_payload =
            tx.prepare_cached("INSERT OR IGNORE INTO log_payloads (digest, seq) VALUES (?1, ?2)")?;
        let now = time::now_ms();
        for (item, cols) in items.iter().zip(prepared) {
            let job_id = item.job_id.as_str();
            if exists.exists(params![job_id])? {
                statuses.push(ItemStatus::Stored);
                continue;
            }
            let record = item.record.as_str();
            let cols = match cols {
                Ok(cols) => cols,
                Err(reason) => {
                    statuses.push(ItemStatus::Rejected {
                        reason: reason.into(),
                    });
                    continue;
                }
            };
            seq += 1;
            let hash = entry_hash(&prev, seq, job_id, record);
            insert.execute(params![
                seq,
                job_id,
                cols.event,
                cols.time_ms,
                cols.user,
                cols.folder_uniqueid,
                now,
                record,
                prev,
                hash.as_slice(),
                cols.user_id,
                cols.folder_id,
                cols.text_truncated
            ])?;
            insert_text.execute(params![seq, cols.text])?;
            for message_id in &cols.message_ids {
                insert_message_id.execute(params![message_id, seq])?;
            }
            for digest in &cols.payload_digests {
                insert_payload.execute(params![digest, seq])?;
            }
            prev = hash.to_vec();
            statuses.push(ItemStatus::Stored);
        }
    }
    tx.commit()?;
    Ok(statuses)
}

/// The FTS5 query of a search: every word of the folded text, quoted (so no word is read as
/// an operator), all required. `None` when the text has no word.
fn match_expression(text: &str) -> Option<String> {
    let folded = bonnie_mail::fold_for_search(text);
    let words: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The log entries a query asks for, as records of collection [`COLLECTION`] keyed by job id,
/// within its time range, at most its limit (every one with `all`):
/// - with `text`, those whose indexed text holds every word of it (folded the way the index
///   is; a text without a word finds nothing), in log order (or newest first);
/// - without, every entry in time order then job id (or the reverse): what retention walks.
///
/// An entry whose messages were indexed in part has `{"text_truncated": true}` in `extra`.
pub fn search(conn: &Connection, query: &RecordQuery) -> rusqlite::Result<Vec<Record>> {
    let direction = if query.descending { "DESC" } else { "ASC" };
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut sql = match query.text.as_deref() {
        Some(text) => {
            let Some(expression) = match_expression(text) else {
                return Ok(Vec::new());
            };
            args.push(expression.into());
            String::from(
                "SELECT l.job_id, l.time_ms, l.record, l.text_truncated FROM log_text t \
                 CROSS JOIN log l ON l.seq = t.rowid WHERE log_text MATCH ?1",
            )
        }
        None => String::from(
            "SELECT l.job_id, l.time_ms, l.record, l.text_truncated FROM log l WHERE 1",
        ),
    };
    match &query.index {
        None => {}
        Some((field, digest)) if field == PAYLOAD_TERM => {
            args.push(digest.clone().into());
            sql.push_str(&format!(
                " AND l.seq IN (SELECT seq FROM log_payloads WHERE digest = ?{})",
                args.len()
            ));
        }
        // Never every entry for a term the log does not know: a caller counting on the term
        // (a purge asking which entries keep a payload) must not be answered wrongly.
        Some((field, _)) => {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "the log is not indexed by {field:?} (only by {PAYLOAD_TERM:?})"
            )));
        }
    }
    if let Some(from) = query.from_ms {
        args.push(from.into());
        sql.push_str(&format!(" AND l.time_ms >= ?{}", args.len()));
    }
    if let Some(to) = query.to_ms {
        args.push(to.into());
        sql.push_str(&format!(" AND l.time_ms < ?{}", args.len()));
    }
    if query.text.is_some() {
        sql.push_str(&format!(" ORDER BY l.seq {direction}"));
    } else {
        sql.push_str(&format!(
            " ORDER BY l.time_ms {direction}, l.job_id {direction}"
        ));
    }
    if let Some(limit) = query.max_records() {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |row| {
        let (job_id, time_ms, record, truncated): (String, Option<i64>, String, bool) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        let mut found = Record {
            collection: COLLECTION.into(),
            key: job_id.into(),
            time_ms: time_ms.into(),
            body: record.into(),
            index: Default::default(),
            extra: Default::default(),
        };
        if truncated {
            found.extra = json!({ "text_truncated": true }).to_string().into();
        }
        Ok(found)
    })?;
    rows.collect()
}

/// The index term of the log that finds the entries naming a payload: (`payload`, digest).
pub const PAYLOAD_TERM: &str = "payload";

/// How a purged entry's record begins.
const TOMBSTONE_PREFIX: &str = r#"{"purged":true"#;

/// True if a log record is a purged entry's tombstone.
pub fn is_tombstone(record: &str) -> bool {
    record.starts_with(TOMBSTONE_PREFIX)
}

/// Purges job `job_id`'s log entry in place, in one transaction: its record becomes a
/// tombstone that keeps only the event, its time and when it was purged; its user and folder
/// columns, search text, Message-IDs and payload names go. Its place in the chain stays (the
/// verifiable log keeps what the record's digest was). True if the entry exists (purged now or
/// before).
pub fn purge(conn: &mut Connection, job_id: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some((seq, record)): Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, record FROM log WHERE job_id = ?1",
            [job_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?
    else {
        return Ok(false);
    };
    if is_tombstone(&record) {
        return Ok(true);
    }
    let value: Value = serde_json::from_str(&record).unwrap_or_default();
    let kept = |key: &str| serde_json::to_string(&value.get(key).cloned().unwrap_or(Value::Null));
    // Written by hand so that it begins with the tombstone's prefix whatever order a JSON
    // map keeps its keys in.
    let tombstone = format!(
        r#"{TOMBSTONE_PREFIX},"purged_ms":{},"event":{},"@timestamp":{}}}"#,
        time::now_ms(),
        kept("event").unwrap_or_else(|_| "null".into()),
        kept("@timestamp").unwrap_or_else(|_| "null".into()),
    );
    tx.execute(
        "UPDATE log SET record = ?2, user = NULL, user_id = NULL, folder_uniqueid = NULL,
         folder_id = NULL, text_truncated = 0 WHERE seq = ?1",
        params![seq, tombstone],
    )?;
    tx.execute("DELETE FROM log_text WHERE rowid = ?1", [seq])?;
    tx.execute("DELETE FROM log_message_ids WHERE seq = ?1", [seq])?;
    tx.execute("DELETE FROM log_payloads WHERE seq = ?1", [seq])?;
    tx.commit()?;
    Ok(true)
}

/// The log entry of job `job_id` as stored (its record exactly as it was appended), keyed by
/// the job id: what a worker reads back to take the ledger's digest, and a verifier to check
/// it.
pub fn entry(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached("SELECT time_ms, record FROM log WHERE job_id = ?1")?
        .query_row([job_id], |row| {
            let (time_ms, record): (Option<i64>, String) = (row.get(0)?, row.get(1)?);
            Ok(Record {
                collection: COLLECTION.into(),
                key: job_id.into(),
                time_ms: time_ms.into(),
                body: record.into(),
                index: Default::default(),
                extra: Default::default(),
            })
        })
        .optional()
}

/// Walks the chain from the first entry; the first `seq` whose hash does not match, if any.
pub fn verify(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let mut stmt =
        conn.prepare("SELECT seq, job_id, record, prev_hash, hash FROM log ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut expected_prev: Option<Vec<u8>> = None;
    while let Some(row) = rows.next()? {
        let (seq, job_id, record): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (prev, hash): (Vec<u8>, Vec<u8>) = (row.get(3)?, row.get(4)?);
        let chained = expected_prev.as_ref().is_none_or(|p| *p == prev);
        // A purged entry's record is gone: its stored hash still links the chain.
        let recomputed = is_tombstone(&record)
            || entry_hash(&prev, seq, &job_id, &record).as_slice() == hash.as_slice();
        if !chained || !recomputed {
            return Ok(Some(seq));
        }
        expected_prev = Some(hash);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, record: &str) -> OutputItem {
        OutputItem::new(id, record)
    }

    fn append(
        conn: &mut Connection,
        items: &[OutputItem],
        index: &TextIndex,
    ) -> rusqlite::Result<Vec<ItemStatus>> {
        let prepared = prepare(conn, items, index);
        super::append(conn, items, prepared, |_| Ok(()))
    }

    fn open() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn a_job_is_logged_once_however_often_it_is_delivered() {
        let mut conn = open();
        let login = r#"{"event":"Login","timestamp":"2026-11-28T17:13:17.506Z","user":"john.doe@example.org"}"#;
        append(&mut conn, &[item("1", login)], &TextIndex::default()).unwrap();
        let again = append(
            &mut conn,
            &[item("1", login), item("2", login)],
            &TextIndex::default(),
        )
        .unwrap();
        assert_eq!(again, vec![ItemStatus::Stored, ItemStatus::Stored]);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
        let (user, time_ms): (String, i64) = conn
            .query_row(
                "SELECT user, time_ms FROM log WHERE job_id = '1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(user, "john.doe@example.org");
        assert_eq!(
            time_ms,
            time::parse_rfc3339_ms("2026-11-28T17:13:17.506Z").unwrap()
        );
    }

    #[test]
    fn the_chain_verifies_and_a_changed_record_breaks_it() {
        let mut conn = open();
        for n in 0..5 {
            append(
                &mut conn,
                &[item(
                    &n.to_string(),
                    &format!(r#"{{"event":"Login","n":{n}}}"#),
                )],
                &TextIndex::default(),
            )
            .unwrap();
        }
        assert_eq!(verify(&conn).unwrap(), None);
        conn.execute_batch("DROP TRIGGER log_is_append_only; UPDATE log SET record = '{\"event\":\"Login\",\"n\":9}' WHERE seq = 3;").unwrap();
        assert_eq!(verify(&conn).unwrap(), Some(3));
    }

    #[test]
    fn without_text_the_log_is_listed_by_time_then_job_id_every_entry_with_all() {
        let mut conn = open();
        // Appended out of time order, two at the same millisecond.
        let at =
            |ms: u32| format!(r#"{{"event":"Login","timestamp":"2026-11-28T17:13:17.{ms:03}Z"}}"#);
        let items: Vec<OutputItem> = [("c", 5), ("b", 2), ("a", 5), ("d", 1)]
            .iter()
            .map(|(id, ms)| item(id, &at(*ms)))
            .collect();
        append(&mut conn, &items, &TextIndex::default()).unwrap();
        let keys = |conn: &Connection, query: RecordQuery| -> Vec<String> {
            search(conn, &query)
                .unwrap()
                .iter()
                .map(|r| r.key.to_string())
                .collect()
        };
        let log = |rest: RecordQuery| RecordQuery {
            collection: COLLECTION.into(),
            ..rest
        };
        assert_eq!(
            keys(&conn, log(RecordQuery::default())),
            ["d", "b", "a", "c"]
        );
        let five = time::parse_rfc3339_ms("2026-11-28T17:13:17.005Z").unwrap();
        assert_eq!(
            keys(
                &conn,
                log(RecordQuery {
                    to_ms: Some(five),
                    descending: true,
                    ..RecordQuery::default()
                })
            ),
            ["b", "d"]
        );
        assert_eq!(
            keys(
                &conn,
                log(RecordQuery {
                    from_ms: Some(five),
                    limit: 1,
                    ..RecordQuery::default()
                })
            ),
            ["a"]
        );
        let many: Vec<OutputItem> = (0..1500)
            .map(|n| item(&format!("n{n:04}"), &at(9)))
            .collect();
        append(&mut conn, &many, &TextIndex::default()).unwrap();
        assert_eq!(
            keys(&conn, log(RecordQuery::default())).len(),
            1000,
            "the default limit"
        );
        let all = keys(
            &conn,
            log(RecordQuery {
                all: true,
                ..RecordQuery::default()
            }),
        );
        assert_eq!(all.len(), 1504, "every entry, whatever the limit");
    }

    #[test]
    fn a_purged_entry_keeps_its_place_in_the_chain_and_loses_its_content_once() {
        let mut conn = open();
        let digest = payload::digest(b"the message");
        let kept = format!(
            r#"{{"event":"MessageNew","timestamp":"2026-11-28T17:13:17.506Z","user":"anna@example.org","subject":"Quartalszahlen","payload_digest":"{digest}"}}"#
        );
        let other =
            r#"{"event":"Login","timestamp":"2026-11-28T17:13:18.000Z","user":"anna@example.org"}"#;
        append(
            &mut conn,
            &[item("1", &kept), item("2", other)],
            &TextIndex::default(),
        )
        .unwrap();
        let by_payload = |conn: &Connection| {
            search(
                conn,
                &RecordQuery {
                    collection: COLLECTION.into(),
                    index: Some((PAYLOAD_TERM.into(), digest.clone())),
                    ..RecordQuery::default()
                },
            )
            .unwrap()
            .len()
        };
        assert_eq!(by_payload(&conn), 1);
        assert_eq!(search_words(&conn, "quartalszahlen").len(), 1);

        assert!(purge(&mut conn, "1").unwrap());
        let (record, user): (String, Option<String>) = conn
            .query_row("SELECT record, user FROM log WHERE job_id = '1'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(is_tombstone(&record), "{record}");
        assert!(
            !record.contains("Quartalszahlen") && !record.contains("anna"),
            "{record}"
        );
        let tombstone: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(tombstone["event"], "MessageNew");
        assert_eq!(
            tombstone["@timestamp"],
            Value::Null,
            "the test record had none"
        );
        assert_eq!(user, None);
        assert_eq!(by_payload(&conn), 0, "it names no payload now");
        assert!(
            search_words(&conn, "quartalszahlen").is_empty(),
            "nor is it found"
        );
        assert_eq!(verify(&conn).unwrap(), None, "the chain still holds");
        assert!(purge(&mut conn, "1").unwrap(), "purged before: still there");
        assert!(!purge(&mut conn, "3").unwrap(), "no such entry");
        let err = conn
            .execute(
                "UPDATE log SET record = '{\"purged\":true}' WHERE job_id = '1'",
                [],
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "a tombstone once: {err}"
        );
        let err = conn
            .execute(
                "UPDATE log SET record = '{\"purged\":true}', hash = x'00' WHERE job_id = '2'",
                [],
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "its place kept: {err}"
        );
        let unknown = search(
            &conn,
            &RecordQuery {
                collection: COLLECTION.into(),
                index: Some(("user".into(), "anna@example.org".into())),
                ..RecordQuery::default()
            },
        );
        assert!(unknown.is_err(), "a term the log does not know is an error");
    }

    #[test]
    fn updates_of_the_log_are_refused() {
        let mut conn = open();
        append(
            &mut conn,
            &[item("1", r#"{"event":"Login"}"#)],
            &TextIndex::default(),
        )
        .unwrap();
        let err = conn
            .execute("UPDATE log SET record = '{}'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    #[test]
    fn the_log_is_searchable_by_text_and_message_id() {
        let mut conn = open();
        let record = r#"{"event":"MessageAppend","subject":"Grüße aus Köln","from":["Jane Doe <jane.doe@example.org>"],"message_ids":["<a@example.org>"],"folder_name":"INBOX"}"#;
        append(
            &mut conn,
            &[
                item("1", record),
                item("2", r#"{"event":"Login","user":"john"}"#),
            ],
            &TextIndex::default(),
        )
        .unwrap();
        let found = |query: &str| -> Vec<i64> {
            let mut stmt = conn
                .prepare("SELECT rowid FROM log_text WHERE log_text MATCH ?1 ORDER BY rowid")
                .unwrap();
            stmt.query_map([query], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(found("koln"), vec![1], "diacritics are folded");
        assert_eq!(found("jane"), vec![1]);
        assert_eq!(found("john"), vec![2]);
        let seq: i64 = conn
            .query_row(
                "SELECT seq FROM log_message_ids WHERE message_id = '<a@example.org>'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seq, 1);
    }

    fn put_payload(conn: &Connection, bytes: &[u8]) -> String {
        let digest = payload::digest(bytes);
        conn.execute(
            "INSERT INTO payloads (digest, size, stored_ms, data) VALUES (?1, ?2, 0, ?3)",
            params![
                digest,
                bytes.len() as i64,
                payload::compress(bytes).unwrap()
            ],
        )
        .unwrap();
        digest
    }

    fn search_words(conn: &Connection, text: &str) -> Vec<(String, String)> {
        let query = RecordQuery {
            collection: COLLECTION.to_string(),
            text: Some(text.to_string()),
            ..RecordQuery::default()
        };
        search(conn, &query)
            .unwrap()
            .into_iter()
            .map(|r| (r.key.to_string(), r.extra.to_string()))
            .collect()
    }

    #[test]
    fn bodies_and_attachments_are_found_by_any_spelling_of_their_words() {
        let mut conn = open();
        let message = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nViele Gr=FC=DFe vom Stra=DFenfest\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename*=utf-8''Protokoll%20M%C3%A4rz.txt\r\n\r\n\
Anhangwort Zwiebelkuchen\r\n--b--\r\n";
        let digest = put_payload(&conn, message.as_bytes());
        let record = json!({"event": "MessageAppend", "payload_digest": digest, "payloads": [{"uid": 1, "digest": digest}]});
        append(
            &mut conn,
            &[
                item("1", &record.to_string()),
                item("2", r#"{"event":"Login","user":"grusse"}"#),
            ],
            &TextIndex::default(),
        )
        .unwrap();
        for query in [
            "grusse",
            "Grüße",
            "GRÜSSE",
            "strassenfest",
            "STRAẞENFEST",
            "zwiebelkuchen",
            "protokoll marz",
        ] {
            let found: Vec<String> = search_words(&conn, query)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert!(found.contains(&"1".to_string()), "{query}: {found:?}");
        }
        assert_eq!(
            search_words(&conn, "zwiebelkuchen strassenfest").len(),
            1,
            "all words"
        );
        assert!(search_words(&conn, "zwiebelkuchen fehlt").is_empty());
        assert!(
            search_words(&conn, "\" OR NOT ( *").is_empty(),
            "no FTS syntax gets through"
        );
        assert_eq!(
            search_words(&conn, "zwiebelkuchen")[0].1,
            "",
            "not truncated"
        );

        // A limit of 12 bytes per part: the body is cut, the attachment's word is beyond it.
        let small = TextIndex {
            max_part_bytes: 12,
            payloads: crate::Payloads::default(),
        };
        append(&mut conn, &[item("3", &record.to_string())], &small).unwrap();
        let found = search_words(&conn, "viele");
        assert!(
            found.contains(&("3".to_string(), r#"{"text_truncated":true}"#.to_string())),
            "{found:?}"
        );
        assert!(
            !search_words(&conn, "zwiebelkuchen")
                .iter()
                .any(|(k, _)| k == "3")
        );
    }

    #[test]
    fn a_record_that_is_not_json_is_rejected_alone() {
        let mut conn = open();
        let statuses = append(
            &mut conn,
            &[item("1", "garbage"), item("2", r#"{"event":"Logout"}"#)],
            &TextIndex::default(),
        )
        .unwrap();
        assert!(matches!(statuses[0], ItemStatus::Rejected { .. }));
        assert_eq!(statuses[1], ItemStatus::Stored);
    }

    proptest::proptest! {
        /// Whatever a client searches for, FTS5 never sees it as syntax: the search answers,
        /// and a word of an entry finds it.
        #[test]
        fn any_search_text_is_answered(text in "\\PC{0,40}", word in "[a-zA-ZäöüßÄÖÜẞ]{1,12}") {
            let mut conn = open();
            let record = json!({ "event": "MessageAppend", "subject": format!("x {word} y") });
            append(&mut conn, &[item("1", &record.to_string())], &TextIndex::default()).unwrap();
            let query = |text: &str| RecordQuery {
                collection: COLLECTION.to_string(),
                text: Some(text.to_string()),
                ..RecordQuery::default()
            };
            search(&conn, &query(&text)).unwrap();
            proptest::prop_assert_eq!(search(&conn, &query(&word)).unwrap().len(), 1);
        }
    }
}
