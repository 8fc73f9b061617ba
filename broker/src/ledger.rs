//! The verifiable log in the job store: a leaf for every job DONE, appended in the same
//! transaction that marks it DONE (so the leaves' order is the DONE order, whatever storage and
//! however many workers), once per job id; and the signed checkpoints of the tree, on the
//! configured interval and when `bonnie checkpoint` asks.
//!
//! A worker that reports no leaf (one from before the ledger, or a storage that cannot give its
//! log back) gets an unattested leaf: the record digest [`UNATTESTED`], no payloads. The job is
//! in the log, so nothing is silently left out, and `bonnie verify` names the leaf, since no
//! record hashes to it.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use bonnie_core::{config::LedgerConfig, ledger::LeafReport};
use bonnie_ledger::{
    ArchiveKey, Checkpoint, Entry, LeafKind, NodeReader as _, SqliteStore, StoredCheckpoint,
    checkpoint::publish, timestamp::request_timestamp,
};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use tracing::{info, warn};

/// The record digest of an unattested leaf: no record hashes to it.
pub const UNATTESTED: [u8; 32] = [0; 32];

/// How long a time-stamping authority may take to answer.
const TSA_TIMEOUT: Duration = Duration::from_secs(30);

/// The ledger's tables beside the jobs: the ledger crate's tree and checkpoints, and which job
/// has which leaf (kept after the job is purged, so that a job DONE again logs nothing).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
";

/// SQLite's code for `synchronous = FULL`.
const SYNCHRONOUS_FULL: i64 = 2;

/// Runs `write` with `synchronous = FULL`, so that its commit reaches the disk and takes every
/// earlier commit of the job store's write-ahead log with it, whatever mode the store's last
/// batch of state changes left (decision 3); that mode is restored after.
pub fn synced<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    write: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let mode: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
    if mode != SYNCHRONOUS_FULL {
        conn.pragma_update(None, "synchronous", SYNCHRONOUS_FULL)?;
    }
    let written = write();
    if mode != SYNCHRONOUS_FULL {
        conn.pragma_update(None, "synchronous", mode)?;
    }
    written
}

/// Creates the ledger's tables (and the audit records its audit leaves stand for) if they are
/// missing.
pub fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    bonnie_ledger::SqliteStore::create_tables(conn).map_err(into_sqlite)?;
    conn.execute_batch(SCHEMA)?;
    crate::audit::create_tables(conn)
}

/// A job DONE since the last commit, with the leaves its worker reported.
#[derive(Debug, Clone)]
pub struct DoneJob {
    /// The job.
    pub id: String,
    /// What its worker stored; `None` from a worker that does not say.
    pub leaves: Option<Vec<LeafReport>>,
}

/// Appends the leaves of `done`, in order, inside the caller's transaction; a job that already
/// has leaves appends nothing. How many leaves were appended.
pub fn append_done(tx: &Connection, done: &[DoneJob]) -> rusqlite::Result<u64> {
    let mut appended = 0;
    let mut known = tx.prepare_cached("SELECT 1 FROM ledger_jobs WHERE id = ?1")?;
    let mut remember = tx.prepare_cached("INSERT INTO ledger_jobs (id, seq) VALUES (?1, ?2)")?;
    for job in done {
        if known.exists(params![job.id])? {
            continue;
        }
        let entries = entries(job);
        let range =
            bonnie_ledger::append(&mut SqliteStore::new(tx), entries).map_err(into_sqlite)?;
        remember.execute(params![job.id, range.start as i64])?;
        appended += range.end - range.start;
    }
    Ok(appended)
}

/// The entries of a DONE job: its worker's reports, or one unattested leaf when it sent none
/// (or sent ones that are not about this job, or not digests).
fn entries(job: &DoneJob) -> Vec<Entry> {
    let record = |record_digest, payload_digests| Entry {
        kind: LeafKind::Record,
        id: job.id.clone(),
        record_digest,
        payload_digests,
        refers_to: None,
    };
    let reported: Result<Vec<Entry>, String> = match &job.leaves {
        Some(leaves) if !leaves.is_empty() => leaves
            .iter()
            .map(|leaf| {
                if leaf.id != job.id {
                    return Err(format!("a leaf for job {} instead", leaf.id));
                }
                leaf.digests()
                    .map(|(digest, payloads)| record(digest, payloads))
            })
            .collect(),
        _ => Err("no leaves".to_string()),
    };
    reported.unwrap_or_else(|why| {
        warn!(job = %job.id, why = %why, "The worker reported no usable leaf; the job is logged unattested.");
        vec![record(UNATTESTED, Vec::new())]
    })
}

/// The ledger's LedgerError as the job store's error, so that one failed append rolls the
/// whole batch back like any failed statement.
pub(crate) fn into_sqlite(error: bonnie_ledger::LedgerError) -> rusqlite::Error {
    match error {
        bonnie_ledger::LedgerError::Sqlite { source, .. } => source,
        other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
    }
}

/// What a checkpoint made, for the log and `bonnie checkpoint`.
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    /// The tree size it signs.
    pub size: u64,
    /// The previous checkpoint's size, if any.
    pub previous: Option<u64>,
    /// The signed note.
    pub note: String,
    /// Whether a time-stamping authority stamped it.
    pub timestamped: bool,
    /// Where it was published, if anywhere.
    pub published: Option<PathBuf>,
    /// False when the tree had not grown since the last checkpoint (that one is shown).
    pub new: bool,
}

/// The broker's checkpoint maker: the key and what `[ledger]` says.
pub struct Checkpoints {
    key: Option<ArchiveKey>,
    config: LedgerConfig,
    next_ms: i64,
}

impl Checkpoints {
    /// Reads the signing key, if one is configured (refused when others may read it).
    pub fn new(config: &LedgerConfig, now_ms: i64) -> anyhow::Result<Self> {
        let key = match &config.signing_key {
            Some(path) => Some(ArchiveKey::read(path).with_context(|| {
                format!(
                    "[ledger] signing_key: cannot read the archive's signing key {}",
                    path.display()
                )
            })?),
            None => None,
        };
        if let Some(key) = &key {
            info!(key = %key.public(), interval_s = config.checkpoint_interval_s, "Checkpoints are signed.");
        }
        Ok(Self {
            key,
            config: config.clone(),
            next_ms: now_ms + config.checkpoint_interval_s as i64 * 1000,
        })
    }

    /// A checkpoint when the interval is over and the tree grew.
    pub fn tick(&mut self, conn: &Connection, now_ms: i64) {
        if self.key.is_none() || now_ms < self.next_ms {
            return;
        }
        self.next_ms = now_ms + self.config.checkpoint_interval_s as i64 * 1000;
        match self.make(conn) {
            Ok(made) if made.new => info!(size = made.size, "Checkpoint signed."),
            Ok(_) => {}
            Err(e) => {
                warn!(error = %format!("{e:#}"), "Cannot make a checkpoint; trying again at the next interval.")
            }
        }
    }

    /// Signs a checkpoint of the tree as it stands (with the consistency proof from the last
    /// one), stamps it if a TSA is configured, stores and publishes it. A tree that has not
    /// grown gets no second checkpoint of the same size: the last one is returned.
    pub fn make(&mut self, conn: &Connection) -> anyhow::Result<Made> {
        let key = self
            .key
            .as_ref()
            .context("no [ledger] signing_key is configured: the broker signs no checkpoints")?;
        let store = SqliteStore::new(conn);
        let last = last_checkpoint(conn)?;
        let size = store.size()?;
        if let Some(last) = last.as_ref().filter(|last| last.size == size) {
            let previous = Checkpoint::parse(&last.note)?.previous;
            return Ok(Made {
                size,
                previous,
                note: last.note.clone(),
                timestamped: last.timestamp_response.is_some(),
                published: None,
                new: false,
            });
        }
        let previous = last.as_ref().map(|c| c.size).filter(|&s| s > 0);
        let checkpoint = Checkpoint::of_tree(&store, key.name(), previous, jiff::Timestamp::now())?;
        let note = key.sign(&checkpoint)?;
        let timestamp_response = match &self.config.tsa_url {
            Some(url) => Some(
                request_timestamp(url, note.as_bytes(), TSA_TIMEOUT)
                    .with_context(|| format!("cannot time-stamp checkpoint {size} at {url}"))?
                    .0,
            ),
            None => None,
        };
        let stored = StoredCheckpoint {
            size,
            note: note.clone(),
            timestamp_response,
        };
        // Synced, and with it every leaf before it: a published checkpoint must never name a
        // tree that a power failure could take back (its jobs would be DONE again in another
        // order, and the signed root would match no tree).
        synced(conn, || {
            store.save_checkpoint(&stored).map_err(anyhow::Error::from)
        })?;
        let published = match &self.config.publish_dir {
            Some(dir) => Some(publish(
                dir,
                size,
                &note,
                stored.timestamp_response.as_deref(),
            )?),
            None => None,
        };
        Ok(Made {
            size,
            previous,
            note,
            timestamped: stored.timestamp_response.is_some(),
            published,
            new: true,
        })
    }
}

/// The newest stored checkpoint.
fn last_checkpoint(conn: &Connection) -> anyhow::Result<Option<StoredCheckpoint>> {
    Ok(conn
        .query_row(
            "SELECT size, note, timestamp_response FROM ledger_checkpoints ORDER BY size DESC LIMIT 1",
            [],
            |row| {
                Ok(StoredCheckpoint {
                    size: row.get::<_, i64>(0)? as u64,
                    note: row.get(1)?,
                    timestamp_response: row.get(2)?,
                })
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synced_write_commits_with_full_sync_and_leaves_the_stores_mode_as_it_was() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let mode = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        let inside = synced(&conn, || Ok::<_, rusqlite::Error>(mode(&conn))).unwrap();
        assert_eq!(inside, SYNCHRONOUS_FULL);
        assert_eq!(mode(&conn), 1, "NORMAL again");
    }

    fn leaf(id: &str, byte: u8) -> LeafReport {
        LeafReport {
            id: id.into(),
            record_digest: format!("{byte:02x}").repeat(32),
            payload_digests: vec![],
        }
    }

    #[test]
    fn a_job_done_twice_appends_once_and_a_job_without_leaves_is_unattested() {
        let conn = Connection::open_in_memory().unwrap();
        create_tables(&conn).unwrap();
        let done = |id: &str, leaves| DoneJob {
            id: id.into(),
            leaves,
        };
        let batch = [
            done("a", Some(vec![leaf("a", 1)])),
            done("b", None),
            done("a", Some(vec![leaf("a", 2)])),
            done("c", Some(vec![leaf("someone-else", 3)])),
        ];
        assert_eq!(append_done(&conn, &batch).unwrap(), 3);
        assert_eq!(append_done(&conn, &batch[..1]).unwrap(), 0);
        let store = SqliteStore::new(&conn);
        let leaves: Vec<_> = store
            .leaves()
            .map(|l| bonnie_ledger::LeafData::decode(&l.unwrap().1).unwrap())
            .collect();
        let ids: Vec<&str> = leaves.iter().map(|l| l.entry.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(leaves[0].entry.record_digest, [1; 32]);
        assert_eq!(leaves[1].entry.record_digest, UNATTESTED);
        assert_eq!(leaves[2].entry.record_digest, UNATTESTED);
    }
}
