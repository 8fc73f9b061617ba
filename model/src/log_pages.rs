//! Reading the whole event log in time order, a page at a time, through the storage's query
//! interface (both storages list the log by time, then job id): what retention and the
//! back-fill's recording of message places walk.

use std::collections::HashSet;

use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};

/// Calls `visit` with every log entry whose time is in `[from_ms, to_ms)` (unbounded when
/// `None`), oldest first, each once; after each full page, `page_done` with the time reached
/// (a walk started there again misses nothing) and the entries visited so far. Stops at the first error; how many entries
/// were visited.
pub fn walk<E: From<PluginError>>(
    storage: &StorageClient,
    range: (Option<i64>, Option<i64>),
    page_size: u32,
    visit: impl FnMut(&Record) -> Result<(), E>,
    page_done: impl FnMut(i64, u64),
) -> Result<u64, E> {
    walk_collection(storage, "log", range, page_size, visit, page_done)
}

/// [`walk`] over the records of any collection, in their time order then key (as both
/// storages list every collection). A visit may rewrite the record it is given, if it keeps
/// its time.
pub fn walk_collection<E: From<PluginError>>(
    storage: &StorageClient,
    collection: &str,
    (from_ms, to_ms): (Option<i64>, Option<i64>),
    page_size: u32,
    mut visit: impl FnMut(&Record) -> Result<(), E>,
    mut page_done: impl FnMut(i64, u64),
) -> Result<u64, E> {
    let mut visited = 0;
    // Pages by time: the next starts at the last time seen, skipping the keys seen at it.
    let mut from_ms = from_ms;
    let mut seen_at_from: HashSet<String> = HashSet::new();
    let mut limit = page_size;
    loop {
        let query = RecordQuery {
            collection: collection.into(),
            from_ms,
            to_ms,
            limit,
            ..RecordQuery::default()
        };
        let page = storage.query(&query)?;
        let full = page.len() as u32 >= limit;
        let time = |r: &Record| r.time_ms.into_option();
        let last_ms = page.last().and_then(time);
        if full && page.first().and_then(time) == last_ms {
            // A whole page at one millisecond: read more of it at once.
            limit = limit.saturating_mul(2);
            continue;
        }
        for record in &page {
            if time(record) == from_ms && seen_at_from.contains(record.key.as_str()) {
                continue;
            }
            visited += 1;
            visit(record)?;
        }
        let (true, Some(last_ms)) = (full, last_ms) else {
            // A page that is not full is the last.
            return Ok(visited);
        };
        if Some(last_ms) != from_ms {
            seen_at_from.clear();
        }
        seen_at_from.extend(
            page.iter()
                .filter(|r| time(r) == Some(last_ms))
                .map(|r| r.key.to_string()),
        );
        from_ms = Some(last_ms);
        limit = page_size;
        page_done(last_ms, visited);
    }
}
