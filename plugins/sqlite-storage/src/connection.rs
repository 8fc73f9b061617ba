//! How every connection of the storage is set up beyond the defaults: how long it waits for a
//! lock another worker holds, and query plans that do not depend on bound values (so cached
//! statements are never compiled again).

use std::time::Duration;

use rusqlite::{Connection, config::DbConfig};

/// Sets up `conn`: a lock held by another connection is waited for up to `busy_timeout`
/// (then the statement fails as busy, and the job is retried), and plans are fixed when a
/// statement is prepared.
///
/// SQLite's busy handler sleeps 1, 2, 5, 10 ms and more between tries. A handler that yields,
/// then sleeps 50 µs doubling to 500 µs halved the time two workers slept waiting for each
/// other (4.5 s to 2.2 s per worker in 50,000 notifications), but the workers' CPU per
/// notification grew 2-5 % and the throughput did not change on a 2-core machine that other
/// work kept busy: a sleeping thread left its core to the other worker. So SQLite's own is
/// kept.
pub fn configure(conn: &mut Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    // SQLite marks a statement for compiling again whenever a bound value might change its
    // plan, which for `collection = ?1 AND key = ?2 ORDER BY ...` it always might (an `=` term
    // no index serves is thought likelier true for 0 and 1); rusqlite clears a cached
    // statement's bindings when it returns to the cache, and clearing them expires such a
    // statement, so each run compiled it again. The query planner stability guarantee plans
    // without the values, which none of the storage's statements needs.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_statement_runs_again_without_being_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("bonnie.db")).unwrap();
        configure(&mut conn, Duration::from_secs(5)).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        // The storage's own read of a record's index terms, run for several keys.
        let sql = "SELECT field, value FROM record_index WHERE collection = ?1 AND key = ?2 ORDER BY field, value";
        for key in ["a", "b", "c", "d"] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            stmt.query_map(["folders", key], |_| Ok(()))
                .unwrap()
                .for_each(drop);
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
