//! The durable job store: one SQLite file in WAL mode. Submissions are committed (and synced)
//! before the dealer gets its ACK; state changes are written in batches, one transaction per
//! turn of the event loop. A job allocated to a worker stays PENDING here: allocation lives
//! in memory and is undone by a restart anyway. What a collector wrote (messages of up to
//! many megabytes) is kept in a table of its own while the job runs, so that the job's later
//! state changes rewrite a small row, and it is deleted once the job is DONE.

use std::{collections::BTreeMap, path::Path};

use rusqlite::{Connection, OptionalExtension, params};

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Waiting for a worker or collector.
    Pending,
    /// Given to a worker or collector (in memory only).
    Alloc,
    /// Processed and stored.
    Done,
    /// To be retried later.
    Postponed,
    /// Failed for good; kept until an admin retries it.
    Failed,
}

impl State {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Alloc => "ALLOC",
            State::Done => "DONE",
            State::Postponed => "POSTPONED",
            State::Failed => "FAILED",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "DONE" => State::Done,
            "POSTPONED" => State::Postponed,
            "FAILED" => State::Failed,
            _ => State::Pending,
        }
    }
}

/// Who a pending job waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A worker runs the handlers.
    Worker,
    /// A collector on the job's host adds data first.
    Collector,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Worker => "worker",
            Kind::Collector => "collector",
        }
    }
}

/// An unfinished job, as loaded at start-up.
#[derive(Debug, Clone)]
pub struct Unfinished {
    /// Arrival order.
    pub seq: i64,
    /// The job id.
    pub id: String,
    /// The IMAP host that produced it.
    pub host: String,
    /// PENDING or POSTPONED.
    pub state: State,
    /// Who it waits for.
    pub kind: Kind,
    /// Collector commands, for collector jobs.
    pub commands: Vec<String>,
    /// Postponements so far.
    pub attempts: u32,
    /// When a postponed job is due (ms since the epoch).
    pub due_ms: i64,
    /// True once a collector wrote its notification (see [`Update::collected`]).
    pub collected: bool,
}

/// A change of one job, written with the next batch.
#[derive(Debug, Clone)]
pub struct Update {
    /// The job.
    pub id: String,
    /// Its new state (ALLOC is never written).
    pub state: State,
    /// Who it waits for now.
    pub kind: Kind,
    /// Collector commands (empty for worker jobs).
    pub commands: Vec<String>,
    /// A new notification, when a worker or collector changed it.
    pub notification: Option<Rewrite>,
    /// Postponements so far.
    pub attempts: u32,
    /// Why it was postponed or failed.
    pub reason: Option<String>,
    /// When it is due again (postponed jobs).
    pub due_ms: i64,
    /// True once a collector wrote the notification: only then may it hold the fields
    /// collectors add (ACL, metadata, message content), which a notification from anywhere
    /// else must not bring.
    pub collected: bool,
}

/// A notification a report brought, by who wrote it.
#[derive(Debug, Clone)]
pub enum Rewrite {
    /// A worker's (a job sent to the collector): the job's notification from now on.
    Worker(Vec<u8>),
    /// A collector's: kept in `collected` beside the job until the job is DONE.
    Collector(Vec<u8>),
}

/// A submission to insert.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The dealer's submission id, the job id.
    pub id: String,
    /// The IMAP host.
    pub host: String,
    /// The notification.
    pub notification: Vec<u8>,
}

/// A FAILED job, for `bonnie jobs failed`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedJob {
    /// The job id.
    pub id: String,
    /// The IMAP host.
    pub host: String,
    /// The event name, when the notification has one.
    pub event: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Postponements before it failed.
    pub attempts: u32,
    /// When it failed (ms since the epoch).
    pub updated_ms: i64,
}

/// The job store.
pub struct Store {
    conn: Connection,
    /// Whether commits are synced (`synchronous = FULL`) right now.
    syncing: bool,
    /// Jobs DONE since the last commit, whose leaves the next commit appends to the ledger.
    done: Vec<crate::ledger::DoneJob>,
}

/// `seq` is the arrival order. It is a plain rowid (max + 1), not AUTOINCREMENT: it stays
/// above every job still stored, since only old DONE jobs are purged, and AUTOINCREMENT would
/// rewrite the `sqlite_sequence` page with every commit.
///
/// The job store's schema, one step per version (`PRAGMA user_version`); a shipped step is
/// never edited. Every step is idempotent, because stores written before the schema had a
/// version (by release 0.1) are at version 0 with some of it made already.
const MIGRATIONS: &[fn(&Connection) -> rusqlite::Result<()>] = &[
    // 1: the jobs (release 0.1).
    |conn| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                host TEXT NOT NULL,
                notification BLOB NOT NULL,
                state TEXT NOT NULL,
                kind TEXT NOT NULL,
                commands TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0,
                reason TEXT,
                due_ms INTEGER NOT NULL DEFAULT 0,
                created_ms INTEGER NOT NULL,
                updated_ms INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, updated_ms);",
        )
    },
    // 2: what collectors wrote, beside the jobs (jobs already stored count as not collected).
    |conn| {
        let has_collected = conn
            .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'collected'")?
            .exists([])?;
        if !has_collected {
            conn.execute_batch("ALTER TABLE jobs ADD COLUMN collected INTEGER NOT NULL DEFAULT 0")?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS collected (
                seq INTEGER PRIMARY KEY REFERENCES jobs (seq),
                notification BLOB NOT NULL
            );",
        )
    },
    // 3: the verifiable log: its tree, checkpoints, which job has which leaf, audit records.
    crate::ledger::create_tables,
];

/// The newest schema version this broker knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store's schema to [`SCHEMA_VERSION`] in one IMMEDIATE transaction; a store
/// written by a newer bonnie is refused, never opened with a schema this code does not know.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the job store has schema version {version}, written by a newer bonnie; this \
                 broker knows versions up to {SCHEMA_VERSION}: upgrade it, or restore the \
                 store's backup"
            )),
        ));
    }
    for step in MIGRATIONS.iter().skip(version as usize) {
        step(&tx)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()
}

/// A job's notification as it stands: the collector's, else the job's own.
/// A scalar subquery, not a LEFT JOIN: SQLite compiled the join again whenever `?1` was bound
/// to another id (its statement counter `RePrepare` counted every job).
const CURRENT_NOTIFICATION: &str = "SELECT coalesce(
         (SELECT c.notification FROM collected c WHERE c.seq = j.seq), j.notification)
     FROM jobs j WHERE j.id = ?1";

impl Store {
    /// Opens (creating) the store.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // An ACK promises the notification survives a power loss: sync every commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&conn)?;
        Ok(Self {
            conn,
            syncing: true,
            done: Vec::new(),
        })
    }

    /// The unfinished jobs to hold in memory at start-up, in arrival order: every POSTPONED
    /// job and every job waiting for a collector, and the first `window` PENDING jobs waiting
    /// for a worker; with the arrival number of the first worker job left in the store, if any.
    pub fn unfinished(&self, window: usize) -> rusqlite::Result<(Vec<Unfinished>, Option<i64>)> {
        let mut jobs = self.select_unfinished(
            "state = 'POSTPONED' OR (state = 'PENDING' AND kind = 'collector')",
            params![],
        )?;
        let mut for_workers = self.pending_for_workers(i64::MIN, window + 1)?;
        let backlog_from = (for_workers.len() > window)
            .then(|| for_workers.pop().map(|u| u.seq))
            .flatten();
        jobs.append(&mut for_workers);
        jobs.sort_by_key(|u| u.seq);
        Ok((jobs, backlog_from))
    }

    /// At most `limit` PENDING jobs waiting for a worker, from arrival number `from` on, in
    /// arrival order.
    pub fn pending_for_workers(
        &self,
        from: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<Unfinished>> {
        self.select_unfinished(
            "state = 'PENDING' AND kind = 'worker' AND seq >= ?1 ORDER BY seq LIMIT ?2",
            params![from, limit as i64],
        )
    }

    fn select_unfinished(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<Unfinished>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT seq, id, host, state, kind, commands, attempts, due_ms, collected FROM jobs
             WHERE {condition}"
        ))?;
        let rows = stmt.query_map(params, |row| {
            let commands: String = row.get(5)?;
            Ok(Unfinished {
                seq: row.get(0)?,
                id: row.get(1)?,
                host: row.get(2)?,
                state: State::parse(&row.get::<_, String>(3)?),
                kind: if row.get::<_, String>(4)? == "collector" {
                    Kind::Collector
                } else {
                    Kind::Worker
                },
                commands: commands.split_whitespace().map(str::to_string).collect(),
                attempts: row.get(6)?,
                due_ms: row.get(7)?,
                collected: row.get(8)?,
            })
        })?;
        rows.collect()
    }

    /// Writes one batch in one transaction: submissions first (a known id is a resend and is
    /// kept as it is), then updates. Returns, per submission, its arrival number if it is new.
    pub fn commit<'a>(
        &mut self,
        submissions: impl ExactSizeIterator<Item = &'a Submission>,
        updates: &[Update],
        now_ms: i64,
    ) -> rusqlite::Result<Vec<Option<i64>>> {
        // Submissions are acknowledged after this commit, so it must reach the disk. A batch
        // of state changes alone may be lost in a power failure: its jobs simply run again
        // (every write downstream is idempotent), so it is not worth a sync of its own.
        let durable = submissions.len() > 0;
        if durable != self.syncing {
            self.conn.pragma_update(
                None,
                "synchronous",
                if durable { "FULL" } else { "NORMAL" },
            )?;
            self.syncing = durable;
        }
        let tx = self.conn.transaction()?;
        let mut inserted = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO jobs (id, host, notification, state, kind, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, 'PENDING', 'worker', ?4, ?4) ON CONFLICT (id) DO NOTHING",
            )?;
            for s in submissions {
                let changed = insert.execute(params![s.id, s.host, s.notification, now_ms])?;
                inserted.push((changed == 1).then(|| tx.last_insert_rowid()));
            }
            // A state change rewrites the job's row, never the collector's notification: a
            // message of 10 MB written once, not again with DONE.
            let mut update = tx.prepare_cached(
                "UPDATE jobs SET state = ?2, kind = ?3, commands = ?4, attempts = ?5, reason = ?6,
                 due_ms = ?7, updated_ms = ?8, notification = COALESCE(?9, notification),
                 collected = ?10 WHERE id = ?1",
            )?;
            let mut keep_collected = tx.prepare_cached(
                "INSERT OR REPLACE INTO collected (seq, notification)
                 SELECT seq, ?2 FROM jobs WHERE id = ?1",
            )?;
            let mut drop_collected = tx.prepare_cached(
                "DELETE FROM collected WHERE seq = (SELECT seq FROM jobs WHERE id = ?1)",
            )?;
            for u in updates {
                let (own, collected) = match &u.notification {
                    Some(Rewrite::Worker(n)) => (Some(n), None),
                    Some(Rewrite::Collector(n)) => (None, Some(n)),
                    None => (None, None),
                };
                update.execute(params![
                    u.id,
                    u.state.as_str(),
                    u.kind.as_str(),
                    u.commands.join(" "),
                    u.attempts,
                    u.reason,
                    u.due_ms,
                    now_ms,
                    own,
                    u.collected
                ])?;
                match collected {
                    Some(n) => {
                        keep_collected.execute(params![u.id, n])?;
                    }
                    // A worker's notification supersedes what a collector wrote before it, and
                    // a DONE job needs neither the message nor its place in the store. Only a
                    // job a collector wrote can have a row there: others cost no statement.
                    None if u.collected && (own.is_some() || u.state == State::Done) => {
                        drop_collected.execute(params![u.id])?;
                    }
                    None => {}
                }
            }
        }
        // In the transaction that marks the jobs DONE: the ledger's order is the DONE order.
        crate::ledger::append_done(&tx, &self.done)?;
        tx.commit()?;
        self.done.clear();
        Ok(inserted)
    }

    /// Records that a job is DONE with these leaves (its update comes in the same batch): the
    /// next [`Store::commit`] appends them to the ledger.
    pub fn done(&mut self, job: crate::ledger::DoneJob) {
        self.done.push(job);
    }

    /// The connection, for the ledger's checkpoints.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// A job's notification as it stands (what its collector wrote, if it did).
    pub fn notification(&self, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached(CURRENT_NOTIFICATION)?
            .query_row(params![id], |row| row.get(0))
            .optional()
    }

    /// When a job was first stored (milliseconds since the epoch).
    pub fn created_ms(&self, id: &str) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT created_ms FROM jobs WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()
    }

    /// Jobs per stored state.
    pub fn counts(&self) -> rusqlite::Result<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })?;
        rows.collect()
    }

    /// When the oldest unfinished job arrived (ms since the epoch).
    pub fn oldest_unfinished_ms(&self) -> rusqlite::Result<Option<i64>> {
        self.conn.query_row(
            "SELECT min(created_ms) FROM jobs WHERE state IN ('PENDING', 'POSTPONED')",
            [],
            |row| row.get(0),
        )
    }

    /// The newest FAILED jobs.
    pub fn failed(&self, limit: u32) -> rusqlite::Result<Vec<FailedJob>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, host, notification, reason, attempts, updated_ms FROM jobs
             WHERE state = 'FAILED' ORDER BY updated_ms DESC, seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], |row| {
            let notification: Vec<u8> = row.get(2)?;
            Ok(FailedJob {
                id: row.get(0)?,
                host: row.get(1)?,
                event: std::str::from_utf8(&notification).ok().and_then(|n| {
                    bonnie_core::notification::event_name(n)
                        .ok()
                        .map(|e| e.into_owned())
                }),
                reason: row.get(3)?,
                attempts: row.get(4)?,
                updated_ms: row.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// Returns FAILED jobs (one, or all with `None`) to PENDING for workers; their ids.
    pub fn retry_failed(
        &mut self,
        id: Option<&str>,
        now_ms: i64,
    ) -> rusqlite::Result<Vec<(i64, String, String)>> {
        let tx = self.conn.transaction()?;
        let rows: Vec<(i64, String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT seq, id, host FROM jobs WHERE state = 'FAILED' AND (?1 IS NULL OR id = ?1) ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE jobs SET state = 'PENDING', kind = 'worker', commands = '', attempts = 0, reason = NULL,
             due_ms = 0, updated_ms = ?2 WHERE state = 'FAILED' AND (?1 IS NULL OR id = ?1)",
            params![id, now_ms],
        )?;
        tx.commit()?;
        Ok(rows)
    }

    /// Deletes DONE jobs last changed before `before_ms`; how many.
    pub fn purge_done(&self, before_ms: i64) -> rusqlite::Result<usize> {
        self.conn.execute(
            "DELETE FROM jobs WHERE state = 'DONE' AND updated_ms < ?1",
            params![before_ms],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(id: &str) -> Submission {
        Submission {
            id: id.to_string(),
            host: "imap1".to_string(),
            notification: br#"{"event":"Login"}"#.to_vec(),
        }
    }

    #[test]
    fn a_store_of_release_0_1_without_a_version_is_upgraded_and_keeps_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        {
            // The job table as release 0.1 made it: no `collected`, no ledger, version 0.
            let conn = Connection::open(&path).unwrap();
            MIGRATIONS[0](&conn).unwrap();
            conn.execute(
                "INSERT INTO jobs (seq, id, host, notification, state, kind, created_ms, updated_ms)
                 VALUES (1, 'old', 'imap1', ?1, 'PENDING', 'worker', 1, 1)",
                [br#"{"event":"Login"}"#.to_vec()],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .connection()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (unfinished, _) = store.unfinished(10).unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].id, "old");
        assert_eq!(
            store.notification("old").unwrap().unwrap(),
            br#"{"event":"Login"}"#
        );
        assert!(
            bonnie_ledger::SqliteStore::new(store.connection())
                .checkpoints()
                .unwrap()
                .is_empty(),
            "the ledger's tables were made"
        );
        drop(store);
        // Opening it again changes nothing.
        Store::open(&path).unwrap();
    }

    #[test]
    fn a_store_written_by_a_newer_bonnie_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = Store::open(&path).err().expect("refused").to_string();
        assert!(
            error.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && error.contains(&format!("up to {SCHEMA_VERSION}")),
            "{error}"
        );
    }

    /// SQLite compiled the LEFT JOIN form of this statement again for every job it was bound
    /// to (15 % of the broker's CPU under load, decision 98); the scalar subquery is compiled
    /// once.
    #[test]
    fn a_jobs_notification_is_read_without_compiling_the_statement_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("broker.db")).unwrap();
        let jobs = [submission("a"), submission("b")];
        store.commit(jobs.iter(), &[], 1).unwrap();
        for id in ["a", "b", "missing", "a"] {
            assert_eq!(store.notification(id).unwrap().is_some(), id != "missing");
        }
        let statement = store.conn.prepare_cached(CURRENT_NOTIFICATION).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
    }

    #[test]
    fn a_resent_submission_is_one_job_and_identical_notifications_are_two() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("broker.db")).unwrap();
        let first = store
            .commit([submission("a"), submission("b")].iter(), &[], 1)
            .unwrap();
        assert!(first.iter().all(Option::is_some));
        let again = store.commit([submission("a")].iter(), &[], 2).unwrap();
        assert_eq!(again, vec![None]);
        assert_eq!(store.unfinished(10).unwrap().0.len(), 2);
    }

    fn change(id: &str, state: State, notification: Option<Rewrite>) -> Update {
        Update {
            id: id.into(),
            state,
            kind: Kind::Worker,
            commands: vec![],
            notification,
            attempts: 0,
            reason: None,
            due_ms: 0,
            collected: true,
        }
    }

    fn collected_rows(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT count(*) FROM collected", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_collected_message_is_the_jobs_notification_until_done_and_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let mut store = Store::open(&path).unwrap();
        store.commit([submission("a")].iter(), &[], 1).unwrap();
        let message = br#"{"event":"Login","messageContent":{"1":"10 MB of mail"}}"#.to_vec();
        let collected = change(
            "a",
            State::Pending,
            Some(Rewrite::Collector(message.clone())),
        );
        store.commit([].iter(), &[collected], 2).unwrap();
        // A postponement keeps it, and so does a restart.
        store
            .commit([].iter(), &[change("a", State::Postponed, None)], 3)
            .unwrap();
        drop(store);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.notification("a").unwrap(), Some(message));
        store
            .commit([].iter(), &[change("a", State::Done, None)], 4)
            .unwrap();
        assert_eq!(collected_rows(&store), 0, "the message left the job store");
        assert_eq!(
            store.notification("a").unwrap(),
            Some(submission("a").notification),
            "a DONE job keeps the notification it came with"
        );
    }

    #[test]
    fn a_workers_notification_replaces_what_a_collector_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("broker.db")).unwrap();
        store.commit([submission("a")].iter(), &[], 1).unwrap();
        let collected = change(
            "a",
            State::Pending,
            Some(Rewrite::Collector(b"{}".to_vec())),
        );
        store.commit([].iter(), &[collected], 2).unwrap();
        let again = br#"{"event":"Login","again":true}"#.to_vec();
        let to_collector = change("a", State::Pending, Some(Rewrite::Worker(again.clone())));
        store.commit([].iter(), &[to_collector], 3).unwrap();
        assert_eq!(store.notification("a").unwrap(), Some(again));
        assert_eq!(collected_rows(&store), 0);
    }

    #[test]
    fn failed_jobs_are_kept_and_can_be_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("broker.db")).unwrap();
        store.commit([submission("a")].iter(), &[], 1).unwrap();
        let fail = Update {
            id: "a".into(),
            state: State::Failed,
            kind: Kind::Worker,
            commands: vec![],
            notification: None,
            attempts: 3,
            reason: Some("handler x: bad".into()),
            due_ms: 0,
            collected: false,
        };
        store.commit([].iter(), &[fail], 2).unwrap();
        let failed = store.failed(10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].event.as_deref(), Some("Login"));
        assert_eq!(failed[0].reason.as_deref(), Some("handler x: bad"));
        assert_eq!(
            store.purge_done(i64::MAX).unwrap(),
            0,
            "FAILED jobs are never purged"
        );
        let retried = store.retry_failed(None, 3).unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(store.unfinished(10).unwrap().0[0].state, State::Pending);
    }
}
