//! Audit records in the verifiable log: what `AUDIT` brings (an admin's or an API client's
//! action) is kept as its canonical bytes in `audit_records`, and its digest appended as an
//! audit leaf, in one transaction per batch; the senders are answered only after the commit.
//!
//! The table holds nothing but the sequence number, the action id and the record's bytes:
//! whoever lists or filters records reads them from the bytes, which `bonnie verify` checks
//! against their leaves, so no column can say something the log did not commit to.

use bonnie_core::{ledger::canonical_bytes, protocol::AuditRecord};
use bonnie_ledger::{Entry, LeafKind, SqliteStore};
use rusqlite::{Connection, OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

/// The audit records beside the ledger's tables: `seq` is the record's leaf.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL
);
";

/// Creates the audit table if it is missing.
pub fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// The bytes an audit record is kept as: the canonical bytes (version 1, as for log records)
/// of its JSON, so its fields are at their names and its parameters at `params.<path>`.
pub fn record_bytes(record: &AuditRecord) -> Vec<u8> {
    // A struct of strings, numbers and a JSON value always serializes.
    canonical_bytes(&serde_json::to_value(record).unwrap_or_default())
}

/// Keeps `records` and appends their leaves, in order, in one transaction synced to disk (their
/// senders act once answered, so the records must survive a power failure, whatever the job
/// store's batches of state changes do); the sequence number of each (a record whose id is
/// kept already is not appended again: its first one).
pub fn append(conn: &Connection, records: &[AuditRecord]) -> rusqlite::Result<Vec<u64>> {
    crate::ledger::synced(conn, || append_synced(conn, records))
}

fn append_synced(conn: &Connection, records: &[AuditRecord]) -> rusqlite::Result<Vec<u64>> {
    let tx = conn.unchecked_transaction()?;
    let mut seqs = Vec::with_capacity(records.len());
    {
        let mut known = tx.prepare_cached("SELECT seq FROM audit_records WHERE id = ?1")?;
        let mut keep =
            tx.prepare_cached("INSERT INTO audit_records (seq, id, record) VALUES (?1, ?2, ?3)")?;
        for record in records {
            if let Some(seq) = known
                .query_row(params![record.id], |row| row.get::<_, i64>(0))
                .optional()?
            {
                seqs.push(seq as u64);
                continue;
            }
            let bytes = record_bytes(record);
            let entry = Entry {
                kind: LeafKind::Audit,
                id: record.id.clone(),
                record_digest: Sha256::digest(&bytes).into(),
                payload_digests: Vec::new(),
                refers_to: None,
            };
            let range = bonnie_ledger::append(&mut SqliteStore::new(&tx), [entry])
                .map_err(crate::ledger::into_sqlite)?;
            keep.execute(params![range.start as i64, record.id, bytes])?;
            seqs.push(range.start);
        }
    }
    tx.commit()?;
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AuditRecord {
        AuditRecord {
            id: id.into(),
            time: "2025-12-01T11:53:20.000Z".into(),
            source: "cli".into(),
            user: "root".into(),
            client: None,
            peer: None,
            action: "keys allow".into(),
            params: serde_json::json!({ "role": "worker", "name": "w1" }),
            count: Some(1),
            outcome: "requested".into(),
            error: None,
        }
    }

    #[test]
    fn an_audit_record_is_kept_with_its_leaf_once_per_id() {
        let conn = Connection::open_in_memory().unwrap();
        crate::ledger::create_tables(&conn).unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let seqs = append(&conn, &[record("a"), record("b"), record("a")]).unwrap();
        assert_eq!(seqs, [0, 1, 0]);
        assert_eq!(append(&conn, &[record("b"), record("c")]).unwrap(), [1, 2]);
        let mode: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 1, "the job store's own mode is left as it was");
        let store = SqliteStore::new(&conn);
        let leaves: Vec<_> = store
            .leaves()
            .map(|l| bonnie_ledger::LeafData::decode(&l.unwrap().1).unwrap())
            .collect();
        assert_eq!(leaves.len(), 3);
        let kept: Vec<u8> = conn
            .query_row("SELECT record FROM audit_records WHERE seq = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(leaves[1].entry.kind, LeafKind::Audit);
        assert_eq!(leaves[1].entry.id, "b");
        assert_eq!(
            leaves[1].entry.record_digest,
            <[u8; 32]>::from(Sha256::digest(&kept))
        );
        assert_eq!(kept, record_bytes(&record("b")));
        let flat: serde_json::Value = serde_json::from_slice(&kept).unwrap();
        assert_eq!(flat["user"], "root");
        assert_eq!(flat["params.role"], "worker");
    }
}
