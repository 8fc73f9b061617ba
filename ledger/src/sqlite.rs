//! The node store in SQLite, on a connection (or an open transaction) that its owner lends:
//! the broker appends leaves in the same transaction that marks their job DONE. Tables:
//! `ledger_leaves` (seq, hash, bytes), `ledger_nodes` (complete subtrees by level and index) and
//! `ledger_checkpoints` (the signed notes and their time-stamp tokens).

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::{Hash, LedgerError, merkle::NodeReader, store::NodeStore};

/// The tables, created if missing (idempotent: run it at every start).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_leaves (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    timestamp_response BLOB
);
";

/// How many leaves [`SqliteStore::leaves`] reads per query.
const LEAF_BATCH: usize = 10_000;

/// The node store on a borrowed SQLite connection or transaction (a `rusqlite::Transaction`
/// dereferences to its connection).
pub struct SqliteStore<'c> {
    connection: &'c Connection,
}

/// A stored checkpoint: its signed note and, when one was obtained, the TSA's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it signs.
    pub size: u64,
    /// The signed note, as published.
    pub note: String,
    /// The RFC 3161 TimeStampResp (DER) over the note's bytes.
    pub timestamp_response: Option<Vec<u8>>,
}

impl<'c> SqliteStore<'c> {
    /// Creates the tables if they are missing.
    pub fn create_tables(connection: &Connection) -> Result<(), LedgerError> {
        connection
            .execute_batch(SCHEMA)
            .map_err(sql("create the ledger tables"))
    }

    /// The store on `connection`, whose tables exist.
    pub fn new(connection: &'c Connection) -> Self {
        Self { connection }
    }

    /// Stores a checkpoint (replacing none: a size is signed once).
    pub fn save_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.connection
            .prepare_cached(
                "INSERT INTO ledger_checkpoints (size, note, timestamp_response) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    to_sql(checkpoint.size)?,
                    checkpoint.note,
                    checkpoint.timestamp_response
                ])
            })
            .map_err(sql("store a checkpoint"))?;
        Ok(())
    }

    /// Every stored checkpoint, smallest size first.
    pub fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT size, note, timestamp_response FROM ledger_checkpoints ORDER BY size",
            )
            .map_err(sql("read checkpoints"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(StoredCheckpoint {
                    size: row.get::<_, i64>(0)? as u64,
                    note: row.get(1)?,
                    timestamp_response: row.get(2)?,
                })
            })
            .map_err(sql("read checkpoints"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("read checkpoints"))
    }

    /// Every leaf as `(seq, bytes)` in order, read in batches, for a verifier to stream.
    pub fn leaves(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), LedgerError>> + '_ {
        let mut next: i64 = 0;
        let mut batch = Vec::<(u64, Vec<u8>)>::new().into_iter();
        let mut done = false;
        std::iter::from_fn(move || {
            loop {
                if let Some(leaf) = batch.next() {
                    return Some(Ok(leaf));
                }
                if done {
                    return None;
                }
                match self.leaf_batch(next) {
                    Ok(leaves) => {
                        done = leaves.len() < LEAF_BATCH;
                        if let Some((seq, _)) = leaves.last() {
                            next = *seq as i64 + 1;
                        }
                        batch = leaves.into_iter();
                    }
                    Err(error) => {
                        done = true;
                        return Some(Err(error));
                    }
                }
            }
        })
    }

    fn leaf_batch(&self, from: i64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, data FROM ledger_leaves WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql("read leaves"))?;
        let rows = statement
            .query_map(params![from, LEAF_BATCH as i64], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
            })
            .map_err(sql("read leaves"))?;
        rows.collect::<Result<_, _>>().map_err(sql("read leaves"))
    }
}

impl NodeReader for SqliteStore<'_> {
    fn size(&self) -> Result<u64, LedgerError> {
        let last: Option<i64> = self
            .connection
            .prepare_cached("SELECT MAX(seq) FROM ledger_leaves")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(sql("read the tree size"))?;
        Ok(last.map_or(0, |last| last as u64 + 1))
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let index_sql = to_sql(index).map_err(sql("read a node"))?;
        let found: Option<Vec<u8>> = if level == 0 {
            self.connection
                .prepare_cached("SELECT hash FROM ledger_leaves WHERE seq = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([index_sql], |row| row.get(0))
                        .optional()
                })
        } else {
            self.connection
                .prepare_cached("SELECT hash FROM ledger_nodes WHERE level = ?1 AND idx = ?2")
                .and_then(|mut statement| {
                    statement
                        .query_row(params![level, index_sql], |row| row.get(0))
                        .optional()
                })
        }
        .map_err(sql("read a node"))?;
        found
            .and_then(|hash| Hash::try_from(hash).ok())
            .ok_or(LedgerError::MissingNode { level, index })
    }
}

impl NodeStore for SqliteStore<'_> {
    fn write_leaf(&mut self, seq: u64, data: &[u8], hash: &Hash) -> Result<(), LedgerError> {
        self.connection
            .prepare_cached("INSERT INTO ledger_leaves (seq, hash, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| statement.execute(params![to_sql(seq)?, &hash[..], data]))
            .map_err(sql("store a leaf"))?;
        Ok(())
    }

    fn write_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), LedgerError> {
        self.connection
            .prepare_cached("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| statement.execute(params![level, to_sql(index)?, &hash[..]]))
            .map_err(sql("store a node"))?;
        Ok(())
    }

    fn leaf(&self, seq: u64) -> Result<Vec<u8>, LedgerError> {
        let found: Option<Vec<u8>> = self
            .connection
            .prepare_cached("SELECT data FROM ledger_leaves WHERE seq = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([to_sql(seq)?], |row| row.get(0))
                    .optional()
            })
            .map_err(sql("read a leaf"))?;
        match found {
            Some(data) => Ok(data),
            None => Err(LedgerError::NoSuchLeaf {
                index: seq,
                size: self.size()?,
            }),
        }
    }
}

/// SQLite integers are signed: a sequence number or index past `i64::MAX` cannot be stored.
fn to_sql(value: u64) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

fn sql(what: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |source| LedgerError::Sqlite { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Entry,
        merkle::{consistency_proof, inclusion_proof, root},
        store::{MemoryStore, append},
        testing::entries,
    };

    #[test]
    fn sqlite_store_gives_the_same_roots_and_proofs_as_memory_after_batches() {
        let connection = Connection::open_in_memory().unwrap();
        SqliteStore::create_tables(&connection).unwrap();
        let mut memory = MemoryStore::new();
        // Batches of uneven sizes, each in its own transaction as the broker would commit them.
        let mut all = entries(0..100);
        for batch in [1, 2, 5, 13, 79] {
            let chunk: Vec<Entry> = all.by_ref().take(batch).collect();
            let transaction = connection.unchecked_transaction().unwrap();
            append(&mut SqliteStore::new(&transaction), chunk.clone()).unwrap();
            transaction.commit().unwrap();
            append(&mut memory, chunk).unwrap();
        }
        let store = SqliteStore::new(&connection);
        assert_eq!(store.size().unwrap(), 100);
        for size in 1..=100 {
            assert_eq!(root(&store, size).unwrap(), root(&memory, size).unwrap());
            assert_eq!(
                consistency_proof(&store, size / 3, size).unwrap(),
                consistency_proof(&memory, size / 3, size).unwrap()
            );
            assert_eq!(
                inclusion_proof(&store, size / 2, size).unwrap(),
                inclusion_proof(&memory, size / 2, size).unwrap()
            );
        }
        let leaves: Vec<_> = store.leaves().collect::<Result<_, _>>().unwrap();
        assert_eq!(leaves.len(), 100);
        assert_eq!(leaves[42], (42, memory.leaf(42).unwrap()));
    }

    #[test]
    fn a_rolled_back_transaction_leaves_no_leaf_behind() {
        let connection = Connection::open_in_memory().unwrap();
        SqliteStore::create_tables(&connection).unwrap();
        append(&mut SqliteStore::new(&connection), entries(0..3)).unwrap();
        let before = root(&SqliteStore::new(&connection), 3).unwrap();
        {
            let transaction = connection.unchecked_transaction().unwrap();
            append(&mut SqliteStore::new(&transaction), entries(3..7)).unwrap();
            // Dropped without commit: the job was not marked DONE, so its leaves never were.
        }
        let store = SqliteStore::new(&connection);
        assert_eq!(store.size().unwrap(), 3);
        assert_eq!(root(&store, 3).unwrap(), before);
        assert_eq!(
            append(&mut SqliteStore::new(&connection), entries(3..4)).unwrap(),
            3..4
        );
    }

    #[test]
    fn checkpoints_are_kept_in_size_order_and_a_size_is_signed_once() {
        let connection = Connection::open_in_memory().unwrap();
        SqliteStore::create_tables(&connection).unwrap();
        let store = SqliteStore::new(&connection);
        let checkpoint = |size| StoredCheckpoint {
            size,
            note: format!("note {size}\n"),
            timestamp_response: (size == 8).then(|| vec![0x30, 0]),
        };
        store.save_checkpoint(&checkpoint(8)).unwrap();
        store.save_checkpoint(&checkpoint(3)).unwrap();
        assert!(store.save_checkpoint(&checkpoint(3)).is_err());
        assert_eq!(
            store.checkpoints().unwrap(),
            vec![checkpoint(3), checkpoint(8)]
        );
    }
}
