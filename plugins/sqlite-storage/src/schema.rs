//! The database schema, created or upgraded at open, versioned by `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// Each entry upgrades the schema by one version; never edit one that has shipped.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: keyed records with index terms; the append-only event log.
    "CREATE TABLE records (
        collection TEXT NOT NULL,
        key TEXT NOT NULL,
        time_ms INTEGER,
        body TEXT NOT NULL,
        PRIMARY KEY (collection, key)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_time ON records (collection, time_ms);
    CREATE TABLE record_index (
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (collection, field, value, key)
    ) WITHOUT ROWID;
    CREATE INDEX record_index_by_key ON record_index (collection, key);
    -- The event log is never updated in place. seq is monotonic; hash chains each entry to
    -- the one before (see log.rs), so an export can prove nothing was altered or removed.
    CREATE TABLE log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL,
        time_ms INTEGER,
        user TEXT,
        folder_uniqueid TEXT,
        stored_ms INTEGER NOT NULL,
        record TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE INDEX log_by_time ON log (time_ms);
    CREATE INDEX log_by_user ON log (user, time_ms);
    CREATE INDEX log_by_folder ON log (folder_uniqueid, time_ms);
    CREATE INDEX log_by_event ON log (event, time_ms);
    CREATE TRIGGER log_is_append_only BEFORE UPDATE ON log
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;",
    // 2: who and which folder state, Message-IDs, and full-text search over the log.
    "ALTER TABLE log ADD COLUMN user_id TEXT;
    ALTER TABLE log ADD COLUMN folder_id TEXT;
    CREATE INDEX log_by_user_id ON log (user_id, time_ms);
    CREATE INDEX log_by_folder_id ON log (folder_id);
    CREATE TABLE log_message_ids (
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (message_id, seq)
    ) WITHOUT ROWID;
    -- Subjects, addresses, folder names, flags, Message-IDs; rowid = log seq.
    CREATE VIRTUAL TABLE log_text USING fts5 (
        text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
    );",
    // 3: message payloads, content-addressed and compressed: one row per distinct message.
    "CREATE TABLE payloads (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL,
        data BLOB NOT NULL
    );",
    // 4: full-text search over message bodies and attachments (the text is folded by
    // bonnie_mail::fold_for_search before FTS5 sees it); entries whose message text was cut at
    // the per-part limit are marked. Entries written before keep their unfolded index.
    "ALTER TABLE log ADD COLUMN text_truncated INTEGER NOT NULL DEFAULT 0;",
    // 5: retention. Which entries name which payload (so a purge keeps a payload another
    // entry names), filled from the entries already logged; and the log's guard lets an
    // entry be purged once, in place: its record replaced by a tombstone (`{"purged":true`)
    // and its user and folder columns cleared, its place in the chain (seq, job id, hashes),
    // event and time kept.
    r#"CREATE TABLE log_payloads (
        digest TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (digest, seq)
    ) WITHOUT ROWID;
    CREATE INDEX log_payloads_by_seq ON log_payloads (seq);
    INSERT OR IGNORE INTO log_payloads (digest, seq)
        SELECT json_extract(p.value, '$.digest'), l.seq
        FROM log l, json_each(l.record, '$.payloads') p
        WHERE json_valid(l.record) AND json_extract(p.value, '$.digest') IS NOT NULL;
    INSERT OR IGNORE INTO log_payloads (digest, seq)
        SELECT json_extract(record, '$.payload_digest'), seq FROM log
        WHERE json_valid(record) AND json_extract(record, '$.payload_digest') IS NOT NULL;
    DROP TRIGGER log_is_append_only;
    CREATE TRIGGER log_is_append_only BEFORE UPDATE ON log
    WHEN NOT (
        OLD.record NOT LIKE '{"purged":true%' AND NEW.record LIKE '{"purged":true%'
        AND NEW.seq = OLD.seq AND NEW.job_id = OLD.job_id AND NEW.event = OLD.event
        AND NEW.time_ms IS OLD.time_ms AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
    )
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;"#,
    // 6: e-discovery item documents (collection `items`, records as any other): what their
    // queries compare, one row per item, and their words in a contentless full-text table
    // (rowid = items.id), one column per text field, already folded and split by
    // bonnie_mail::index_words, so the `ascii` tokenizer only splits them at the spaces.
    "CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        date_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        has_attachment INTEGER NOT NULL
    );
    CREATE INDEX items_by_date ON items (date_ms, digest);
    CREATE INDEX items_by_size ON items (size);
    CREATE VIRTUAL TABLE items_text USING fts5 (
        subject, body, attachments, from_addr, to_addr, cc_addr, bcc_addr, filenames,
        content = '', contentless_delete = 1, tokenize = 'ascii'
    );",
    // 7: item ids follow the items' dates (items.rs, `item_id`), so that the full-text
    // table's rowid order is date order. The ids written before are not renumbered (the
    // contentless table cannot be rewritten without the text): the largest is kept here, and
    // queries use the plans that rely on the order once no item has an id up to it (`bonnie
    // reprocess --handler items` writes every item again).
    "CREATE TABLE items_unordered (max_id INTEGER NOT NULL);
    INSERT INTO items_unordered SELECT coalesce(max(id), 0) FROM items;",
];

/// The newest schema version this code knows.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema to the newest version. Several workers may open the same file at once:
/// the version is read and raised inside one IMMEDIATE transaction, so only one migrates. An
/// archive written by a newer bonnie is refused, never read or written with a schema this
/// code does not know.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the archive has schema version {version}, written by a newer bonnie; this \
                 storage knows versions up to {VERSION}: upgrade bonnie, or restore the \
                 archive's backup"
            )),
        ));
    }
    if (version as usize) < MIGRATIONS.len() {
        for sql in MIGRATIONS.iter().skip(version as usize) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_opening_one_file_at_once_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bonnie.db");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let mut conn = Connection::open(&path).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(5))
                        .unwrap();
                    migrate(&mut conn).unwrap();
                });
            }
        });
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    #[test]
    fn version_5_names_the_payloads_of_entries_logged_before_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        {
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..4] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 4).unwrap();
            tx.commit().unwrap();
        }
        conn.execute(
            "INSERT INTO log (seq, job_id, event, stored_ms, record, prev_hash, hash)
             VALUES (1, 'j', 'MessageNew', 0, ?1, x'00', x'00')",
            [r#"{"event":"MessageNew","payloads":[{"uid":1,"digest":"aa"},{"uid":2,"digest":"bb"}],"payload_digest":"cc"}"#],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut named: Vec<String> = conn
            .prepare("SELECT digest FROM log_payloads WHERE seq = 1 ORDER BY digest")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        named.sort();
        assert_eq!(named, ["aa", "bb", "cc"]);
    }

    #[test]
    fn an_archive_written_by_a_newer_bonnie_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("bonnie.db")).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let error = migrate(&mut conn).unwrap_err().to_string();
        assert!(
            error.contains(&format!("schema version {}", VERSION + 1))
                && error.contains(&format!("up to {VERSION}")),
            "{error}"
        );
    }
}
