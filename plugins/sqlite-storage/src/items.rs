//! The e-discovery item documents (collection [`ITEMS`]): each kept as a record like any other
//! (body, time = `date_ms`, index terms message_id, type, from_domain, recipient_domain,
//! object_uid), and beside it a row of `items` (the numbers a query compares) and a row of the
//! contentless full-text table `items_text` (one column per [`TextColumn`]), which holds the
//! message's words and nothing readable. An [`ItemQuery`] becomes one SQL statement.
//!
//! Words are those of [`bonnie_mail::index_words`] (folded, split into runs of alphanumeric
//! characters), written space-separated into `items_text`, whose tokenizer is FTS5's `ascii`:
//! it splits at ASCII spaces and punctuation and folds ASCII case only, so on text already
//! split and folded its tokens are exactly those words (unicode61 would fold and split some
//! characters again, its own way).

use std::collections::HashSet;

use bonnie_plugin_api::{
    PluginError, Record, RecordQuery,
    items::{
        ExactField, ITEMS, ItemDoc, ItemQuery, RangeField, TextColumn, TextField, TextMatch,
        exact_lists,
    },
};
use rusqlite::{OptionalExtension, Transaction, params, types::Value};

/// What a query compares of an item, read from its record before the write.
pub struct Indexed {
    date_ms: i64,
    size: i64,
    has_attachment: bool,
    /// The words of each [`TextColumn`], space-separated, in [`TextColumn::ALL`]'s order.
    words: Vec<String>,
}

/// The indexed form of an item record; refused when its body is not the [`ItemDoc`] of its
/// key or its `extra` not [`IndexText`].
pub fn indexed(record: &Record) -> Result<Indexed, PluginError> {
    let (doc, text) = ItemDoc::from_record(record)?;
    Ok(Indexed {
        date_ms: doc.date_ms,
        size: i64::try_from(doc.size).unwrap_or(i64::MAX),
        has_attachment: doc.has_attachment,
        words: TextColumn::ALL
            .iter()
            .map(|column| bonnie_mail::index_words(&column.text(&doc, &text)).join(" "))
            .collect(),
    })
}

/// Writes (replaces) the indexed form of item `digest`, within the transaction writing its
/// record.
pub fn write(tx: &Transaction<'_>, digest: &str, item: &Indexed) -> rusqlite::Result<()> {
    delete(tx, digest)?;
    let id = item_id(tx, item.date_ms)?;
    tx.prepare_cached(
        "INSERT INTO items (id, digest, date_ms, size, has_attachment) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        digest,
        item.date_ms,
        item.size,
        item.has_attachment
    ])?;
    let columns: Vec<&str> = TextColumn::ALL.iter().map(|c| c.name()).collect();
    let sql = format!(
        "INSERT INTO items_text (rowid, {}) VALUES (?1, {})",
        columns.join(", "),
        (2..=columns.len() + 1)
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut args: Vec<Value> = vec![Value::Integer(id)];
    args.extend(item.words.iter().map(|w| Value::Text(w.clone())));
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// An item's id (and its rowid in `items_text`) is its date's second since the epoch
/// ([`second_of`]) shifted left by this many bits, plus a slot: the first free one in that
/// second. Ids in order are thus items in date order, but for the order within one second.
const SLOT_BITS: u32 = 30;

/// The last second an id can hold (in the year 2242): later dates share it, as dates before
/// the epoch's second second share the first.
const LAST_SECOND: i64 = (1 << (63 - SLOT_BITS)) - 1;

/// The second of `date_ms` as item ids hold it: a function that never decreases as the date
/// grows, so that rowid order never contradicts date order.
fn second_of(date_ms: i64) -> i64 {
    date_ms.div_euclid(1000).clamp(1, LAST_SECOND)
}

/// The ids of the items dated within `second`.
fn ids_of(second: i64) -> std::ops::RangeInclusive<i64> {
    let first = second << SLOT_BITS;
    first..=first | ((1 << SLOT_BITS) - 1)
}

/// The id of a new item dated `date_ms`: the one after the largest taken in its second.
fn item_id(tx: &Transaction<'_>, date_ms: i64) -> rusqlite::Result<i64> {
    let ids = ids_of(second_of(date_ms));
    let taken: Option<i64> = tx
        .prepare_cached("SELECT max(id) FROM items WHERE id BETWEEN ?1 AND ?2")?
        .query_row([ids.start(), ids.end()], |row| row.get(0))?;
    match taken {
        None => Ok(*ids.start()),
        Some(id) if id < *ids.end() => Ok(id + 1),
        Some(_) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some(format!(
                "more than {} items dated within the second of {date_ms} ms: the item \
                 index has no id left for that second",
                1u64 << SLOT_BITS
            )),
        )),
    }
}

/// True if every item's id follows its date ([`item_id`]): none was written before schema
/// version 7 and left since.
fn ids_follow_dates(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT NOT EXISTS (SELECT 1 FROM items \
         WHERE id <= (SELECT max(max_id) FROM items_unordered))",
    )?
    .query_row([], |row| row.get(0))
}

/// Removes the indexed form of item `digest`, if any (`contentless_delete`: the full-text
/// row goes with it).
pub fn delete(tx: &Transaction<'_>, digest: &str) -> rusqlite::Result<()> {
    let id: Option<i64> = tx
        .prepare_cached("SELECT id FROM items WHERE digest = ?1")?
        .query_row([digest], |row| row.get(0))
        .optional()?;
    if let Some(id) = id {
        tx.prepare_cached("DELETE FROM items_text WHERE rowid = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM items WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(())
}

/// The SQL of an item query: a condition on `d` (a row of `items`) and its parameters, every
/// value the query holds passed as a parameter (a list of values as one JSON array).
#[derive(Default)]
struct Condition {
    args: Vec<Value>,
    /// Text terms as a probe of the full-text index for the row at hand (`EXISTS … rowid =
    /// d.id`) instead of the list of every match (`d.id IN …`): see [`walk`].
    probe: bool,
    /// The list of a text term's matches only checked on the row at hand (`+d.id IN …`),
    /// never used to look rows up: the rows come from elsewhere ([`DigestLed`]), and SQLite
    /// would otherwise look up every match for each of them.
    checked_only: bool,
}

impl Condition {
    fn arg(&mut self, value: Value) -> String {
        self.args.push(value);
        format!("?{}", self.args.len())
    }

    fn of(&mut self, query: &ItemQuery) -> String {
        match query {
            ItemQuery::All => "1".into(),
            ItemQuery::Nothing => "0".into(),
            ItemQuery::And(all) => {
                let parts: Vec<String> = all.iter().map(|q| self.of(q)).collect();
                balanced(&parts, "AND", "1")
            }
            ItemQuery::Or(any) => {
                let (lists, others) = exact_lists(any);
                let mut parts: Vec<String> = lists
                    .iter()
                    .map(|(field, values)| self.exact(*field, values))
                    .collect();
                parts.extend(others.into_iter().map(|q| self.of(q)));
                balanced(&parts, "OR", "0")
            }
            ItemQuery::Not(inner) => format!("NOT ({})", self.of(inner)),
            ItemQuery::Text { field, text } => match match_expression(*field, text) {
                None => "0".into(),
                Some(expression) => {
                    let expression = self.arg(Value::Text(expression));
                    match self.probe {
                        true => format!(
                            "EXISTS (SELECT 1 FROM items_text \
                             WHERE items_text MATCH {expression} AND rowid = d.id)"
                        ),
                        false => format!(
                            "{}d.id IN (SELECT rowid FROM items_text WHERE items_text MATCH {expression})",
                            if self.checked_only { "+" } else { "" }
                        ),
                    }
                }
            },
            ItemQuery::Exact { field, value } => self.exact(*field, &[value]),
            ItemQuery::Range { field, from, to } => {
                let column = match field {
                    RangeField::Date => "d.date_ms",
                    RangeField::Size => "d.size",
                };
                let mut bounds = Vec::new();
                if let Some(from) = from {
                    bounds.push(format!("{column} >= {}", self.arg(Value::Integer(*from))));
                }
                if let Some(to) = to {
                    bounds.push(format!("{column} < {}", self.arg(Value::Integer(*to))));
                }
                balanced(&bounds, "AND", "1")
            }
            ItemQuery::HasAttachment => "d.has_attachment".into(),
        }
    }

    /// Items whose `field` has one of `values`: the values as one JSON array parameter. The
    /// collection and the index field are this code's constants, never a query's.
    fn exact(&mut self, field: ExactField, values: &[&str]) -> String {
        let values = self.arg(Value::Text(
            serde_json::Value::from(values.to_vec()).to_string(),
        ));
        let listed = format!("(SELECT value FROM json_each({values}))");
        match field {
            ExactField::Digest => format!("d.digest IN {listed}"),
            field => format!(
                "d.digest IN (SELECT key FROM record_index WHERE collection = '{ITEMS}' \
                 AND field = '{}' AND value IN {listed})",
                field.index_field()
            ),
        }
    }
}

/// `parts` joined by `operator` as a balanced tree of parentheses (SQLite bounds an
/// expression's depth at 1000, which a flat list of a thousand terms would reach); `empty`
/// when there are none.
fn balanced(parts: &[String], operator: &str, empty: &str) -> String {
    match parts {
        [] => empty.to_string(),
        [one] => format!("({one})"),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            format!(
                "({} {operator} {})",
                balanced(left, operator, empty),
                balanced(right, operator, empty)
            )
        }
    }
}

/// The FTS5 expression of a text term, `None` when its text has no word (it finds nothing).
/// Every word is quoted, so no text is read as FTS5 syntax: a word is a run of letters and
/// digits (with, for a long word, `…` and hex digits: [`bonnie_mail::index_words`]), which
/// holds no quote.
fn match_expression(field: TextField, text: &TextMatch) -> Option<String> {
    let (words, last_is_prefix) = match text {
        TextMatch::Words(words) | TextMatch::Phrase(words) => (words, false),
        TextMatch::Prefix(prefix) => (prefix, true),
    };
    let words = bonnie_mail::index_words(words);
    let last = words.len().checked_sub(1)?;
    let columns: Vec<&str> = field.columns().iter().map(|c| c.name()).collect();
    let terms = match text {
        TextMatch::Phrase(_) => format!("\"{}\"", words.join(" ")),
        _ => words
            .iter()
            .enumerate()
            .map(|(n, w)| match n == last && last_is_prefix {
                true => format!("\"{w}\"*"),
                false => format!("\"{w}\""),
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    };
    Some(format!("{{{}}} : ({terms})", columns.join(" ")))
}

/// The item records an item query matches, in `date_ms` order then digest (or the reverse),
/// at most the query's limit.
///
/// Five plans. A query whose top level holds a list of digests reads them ([`DigestLed`]).
/// A query with a limit whose top level holds text FTS5 can list (a text term, or
/// an AND or OR of them: [`TextLed`]) is walked by the full-text index itself, in rowid
/// order, which is date order ([`item_id`]): its cost grows with the matches read before the
/// limit is filled, whatever the words' frequency (docs/decisions.md 90). Archives with items
/// indexed before ids followed dates, and queries it gives up on, go on to the other three.
///
/// The match-list plan builds the list of every item the query matches and sorts
/// it: its cost grows with the number of matches (a word in most items of a million costs
/// hundreds of milliseconds), little with the archive. A walk ([`walk`]) reads the items in
/// the query's order and judges each, stopping at the limit: its cost grows with the items it
/// reads, so it suits words common enough to fill the limit soon. The probing walk asks the
/// full-text index about each item (about 40 µs an item, nothing before the first); the
/// listed walk first lists every match of the text terms (about 0.1 µs a match) and then
/// reads items at under a microsecond each. A query with a limit and one to
/// [`WALK_TEXT_TERMS`] text terms is walked by probing first; when its first items hold a hit
/// but too few to fill the limit soon, by the listed walk; when neither fills the limit within
/// the items it may read ([`Walk::most`]), or the first items hold no hit, the match list
/// answers (docs/decisions.md 88 has the figures).
pub fn query(
    conn: &rusqlite::Connection,
    query: &RecordQuery,
    items: &ItemQuery,
) -> rusqlite::Result<Vec<Record>> {
    let limit = query.max_records();
    if let Some(led) = DigestLed::of(items) {
        return led.query(conn, query.descending, limit);
    }
    if let Some(limit) = limit
        && let Some(led) = TextLed::of(items)
        && ids_follow_dates(conn)?
        && let Walked::Found(digests) = led.walk(conn, query.descending, limit, None)?
    {
        return records_of(conn, &digests);
    }
    if let Some(limit) = limit
        && (1..=WALK_TEXT_TERMS).contains(&text_terms(items))
    {
        let mut walked = walk(conn, Walk::Probing, query.descending, items, limit)?;
        if let Walked::GaveUp { hits } = walked
            && hits > 0
        {
            walked = walk(conn, Walk::Listed, query.descending, items, limit)?;
        }
        if let Walked::Found(digests) = walked {
            return records_of(conn, &digests);
        }
    }
    match_list(conn, query.descending, items, limit)
}

/// The longest list of digests [`DigestLed`] reads item by item.
const DIGEST_LED_MOST: usize = 100_000;

/// A query whose top level holds a list of digests (a custodian's payloads, which
/// e-discovery adds to a search of `user:`: docs/decisions.md 91): the items are read by
/// their digests and the other parts judged on each, text terms by the list of their matches
/// (built once), so that the cost grows with the digests and the matches, not with the
/// archive.
struct DigestLed {
    /// The digests listed, as one JSON array (a statement's parameter).
    digests: String,
    /// The other parts.
    rest: ItemQuery,
}

impl DigestLed {
    /// The digest-led form of `items`, `None` when no part of its top level is a list of
    /// digests, or the list is longer than [`DIGEST_LED_MOST`].
    fn of(items: &ItemQuery) -> Option<DigestLed> {
        let parts = match items {
            ItemQuery::And(parts) => parts.as_slice(),
            one => std::slice::from_ref(one),
        };
        let listed = |part: &ItemQuery| -> Option<Vec<String>> {
            let digest = |q: &ItemQuery| match q {
                ItemQuery::Exact {
                    field: ExactField::Digest,
                    value,
                } => Some(value.clone()),
                _ => None,
            };
            match part {
                ItemQuery::Or(any) => any.iter().map(digest).collect(),
                one => digest(one).map(|d| vec![d]),
            }
        };
        let (at, digests) = parts
            .iter()
            .enumerate()
            .find_map(|(n, part)| listed(part).map(|digests| (n, digests)))?;
        let rest = parts
            .iter()
            .enumerate()
            .filter(|(n, _)| *n != at)
            .map(|(_, part)| part.clone())
            .collect();
        (digests.len() <= DIGEST_LED_MOST).then(|| DigestLed {
            digests: serde_json::Value::from(digests).to_string(),
            rest: ItemQuery::And(rest),
        })
    }

    /// The items listed that the other parts match, in the query's order, the first `limit`.
    /// With a limit and text terms FTS5 can list, their matches are walked in rowid order
    /// and those listed judged ([`TextLed::walk`] within the list), which costs about as
    /// much as the matches read before the limit fills; when that walk gives up (a short
    /// list: probing each item costs less), the listed items are walked in order and each
    /// probed ([`DigestLed::walk`]), which fills the limit soon for a word common among
    /// them; when that walk gives up too, the list of the text terms' matches (made once)
    /// decides every one.
    fn query(
        &self,
        conn: &rusqlite::Connection,
        descending: bool,
        limit: Option<u32>,
    ) -> rusqlite::Result<Vec<Record>> {
        let text_led = TextLed::of(&self.rest);
        let probed = (1..=WALK_TEXT_TERMS).contains(&text_terms(&self.rest));
        // The listed items are read only for a walk: without text terms neither applies.
        if let Some(limit) = limit
            && (text_led.is_some() || probed)
        {
            let listed = self.listed(conn, descending)?;
            if let Some(led) = text_led
                && ids_follow_dates(conn)?
            {
                let ids = listed.iter().map(|(id, _)| *id).collect();
                if let Walked::Found(digests) = led.walk(conn, descending, limit, Some(&ids))? {
                    return records_of(conn, &digests);
                }
            }
            if probed && let Walked::Found(digests) = self.walk(conn, listed, limit)? {
                return records_of(conn, &digests);
            }
        }
        let mut condition = Condition {
            checked_only: true,
            ..Condition::default()
        };
        let list = condition.arg(Value::Text(self.digests.clone()));
        let judged = condition.of(&self.rest);
        // CROSS JOIN keeps the list the outer loop: each digest looked up once.
        let items = format!(
            "(SELECT DISTINCT value FROM json_each({list})) j \
             CROSS JOIN items d ON d.digest = j.value WHERE {judged}"
        );
        first_records(conn, &items, condition.args, descending, limit)
    }

    /// The listed items archived, as (id, digest), in the query's order.
    fn listed(
        &self,
        conn: &rusqlite::Connection,
        descending: bool,
    ) -> rusqlite::Result<Vec<(i64, String)>> {
        let order = order(descending);
        let mut listed = conn.prepare(&format!(
            "SELECT d.id, d.digest FROM (SELECT DISTINCT value FROM json_each(?1)) j \
             CROSS JOIN items d ON d.digest = j.value ORDER BY {order}"
        ))?;
        listed
            .query_map([&self.digests], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    }

    /// The first `limit` matches, found by reading the `listed` items ([`DigestLed::listed`],
    /// in the query's order) and probing each against the other parts; it gives up as
    /// [`walk`]'s probing walk does.
    fn walk(
        &self,
        conn: &rusqlite::Connection,
        listed: Vec<(i64, String)>,
        limit: u32,
    ) -> rusqlite::Result<Walked> {
        let mut condition = Condition {
            probe: true,
            ..Condition::default()
        };
        let judged = condition.of(&self.rest);
        let id = condition.arg(Value::Null);
        let mut judge =
            conn.prepare(&format!("SELECT ({judged}) FROM items d WHERE d.id = {id}"))?;
        let mut args = condition.args;
        let mut patience = Patience::new(limit, Walk::Probing.most(limit));
        let mut hits = Vec::new();
        for (read, (id, digest)) in (1..).zip(listed) {
            *args.last_mut().expect("the id is an argument") = Value::Integer(id);
            if judge.query_row(rusqlite::params_from_iter(&args), |row| {
                row.get::<_, bool>(0)
            })? {
                hits.push(digest);
                if hits.len() == limit as usize {
                    break;
                }
            }
            if patience.exhausted(read, hits.len()) {
                return Ok(Walked::GaveUp { hits: hits.len() });
            }
        }
        Ok(Walked::Found(hits))
    }
}

/// A query whose top level (the query, or each part of its top-level AND) holds text terms
/// FTS5 can list in full: walked in the full-text index's rowid order, which is date order
/// ([`item_id`]), by FTS5 itself, so that the first matches cost about as much as they are
/// many, whatever the words' frequency.
struct TextLed {
    /// The FTS5 expression of the leading parts.
    expression: String,
    /// The other parts, judged on each item the expression lists.
    rest: ItemQuery,
    /// The query's top-level date range.
    dates: (Option<i64>, Option<i64>),
}

impl TextLed {
    /// The text-led form of `items`, `None` when no part of its top level is text FTS5 lists.
    fn of(items: &ItemQuery) -> Option<TextLed> {
        let parts = match items {
            ItemQuery::And(parts) => parts.as_slice(),
            one => std::slice::from_ref(one),
        };
        let (mut leading, mut rest) = (Vec::new(), Vec::new());
        for part in parts {
            match fts_expression(part) {
                Some(expression) => leading.push(format!("({expression})")),
                None => rest.push(part.clone()),
            }
        }
        (!leading.is_empty()).then(|| TextLed {
            expression: leading.join(" AND "),
            rest: ItemQuery::And(rest),
            dates: date_bounds(items),
        })
    }

    /// The first `limit` matches. FTS5 lists the items its expression finds by rowid, within
    /// the ids of the date range's seconds; each is judged by the other parts. Once `limit`
    /// hits are found the walk reads on to the end of the last hit's second, then sorts the
    /// hits by date and digest: rowid order is date order between seconds, not within one.
    /// It gives up as [`walk`] does, after [`Walk::Listed`]'s most items.
    ///
    /// `within`, the ids of a list of items ([`DigestLed`]): only those are judged, the
    /// others skipped as read, and the walk may read [`MATCHES_PER_PROBE`] matches for each
    /// listed item before it gives up: by then probing each listed item costs less.
    fn walk(
        &self,
        conn: &rusqlite::Connection,
        descending: bool,
        limit: u32,
        within: Option<&HashSet<i64>>,
    ) -> rusqlite::Result<Walked> {
        let mut first = self
            .dates
            .0
            .map_or(0, |from| *ids_of(second_of(from)).start());
        let mut last = self.dates.1.map_or(i64::MAX, |to| {
            *ids_of(second_of(to.saturating_sub(1))).end()
        });
        let mut most = Walk::Listed.most(limit);
        if let Some(ids) = within {
            let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
                return Ok(Walked::Found(Vec::new()));
            };
            (first, last) = (first.max(*low), last.min(*high));
            most = u32::try_from(ids.len().saturating_mul(MATCHES_PER_PROBE)).unwrap_or(u32::MAX);
        }
        let direction = if descending { "DESC" } else { "ASC" };
        let mut listed = conn.prepare(&format!(
            "SELECT rowid FROM items_text WHERE items_text MATCH ?1 \
             AND rowid >= ?2 AND rowid <= ?3 ORDER BY rowid {direction}"
        ))?;
        let mut condition = Condition {
            probe: true,
            ..Condition::default()
        };
        let judged = condition.of(&self.rest);
        let id = condition.arg(Value::Null);
        let mut judge = conn.prepare(&format!(
            "SELECT d.digest, d.date_ms, ({judged}) FROM items d WHERE d.id = {id}"
        ))?;
        let mut args = condition.args;
        let mut rows = listed.query(params![self.expression, first, last])?;
        let (mut read, mut patience) = (0u32, Patience::new(limit, most));
        let mut hits: Vec<(i64, String)> = Vec::new();
        let mut last_second = None;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if last_second.is_some_and(|second| rowid >> SLOT_BITS != second) {
                break;
            }
            read += 1;
            if within.is_none_or(|ids| ids.contains(&rowid)) {
                *args.last_mut().expect("the id is an argument") = Value::Integer(rowid);
                let judged = judge
                    .query_row(rusqlite::params_from_iter(&args), |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get::<_, bool>(2)?))
                    })
                    .optional()?;
                if let Some((digest, date_ms, true)) = judged {
                    hits.push((date_ms, digest));
                    if hits.len() == limit as usize {
                        last_second = Some(rowid >> SLOT_BITS);
                    }
                }
            }
            if last_second.is_none() && patience.exhausted(read, hits.len()) {
                return Ok(Walked::GaveUp { hits: hits.len() });
            }
        }
        hits.sort_unstable();
        if descending {
            hits.reverse();
        }
        hits.truncate(limit as usize);
        Ok(Walked::Found(
            hits.into_iter().map(|(_, digest)| digest).collect(),
        ))
    }
}

/// The FTS5 expression listing exactly the items `items` matches, if FTS5 can: a text term
/// with words, or an AND or OR of such.
fn fts_expression(items: &ItemQuery) -> Option<String> {
    let joined = |parts: &[ItemQuery], operator: &str| {
        let expressions: Option<Vec<String>> = parts
            .iter()
            .map(|part| fts_expression(part).map(|e| format!("({e})")))
            .collect();
        expressions
            .filter(|e| !e.is_empty())
            .map(|e| e.join(operator))
    };
    match items {
        ItemQuery::Text { field, text } => match_expression(*field, text),
        ItemQuery::And(parts) => joined(parts, " AND "),
        ItemQuery::Or(parts) => joined(parts, " OR "),
        _ => None,
    }
}

/// About how many full-text matches a walk reads ([`TextLed::walk`]) in the time one probe
/// of the full-text index for one item takes ([`Walk::Probing`]).
const MATCHES_PER_PROBE: usize = 100;

/// Queries of more text terms than this are not walked: each is a probe of every item read.
const WALK_TEXT_TERMS: usize = 4;

/// How a walk judges the text terms of each item it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Walk {
    /// By a probe of the full-text index for that item (`EXISTS … rowid = d.id`).
    Probing,
    /// Against the list of every match, made once (`d.id IN …`).
    Listed,
}

impl Walk {
    /// The most items a walk reads before it gives up, for a limit of `limit`.
    fn most(self, limit: u32) -> u32 {
        match self {
            Walk::Probing => limit.saturating_mul(10),
            Walk::Listed => limit.saturating_mul(200),
        }
    }
}

/// What a walk found.
#[derive(Debug, PartialEq)]
enum Walked {
    /// The first matches, in order: the answer.
    Found(Vec<String>),
    /// It gave up, having found this many hits.
    GaveUp { hits: usize },
}

/// The first `limit` items matching `items`, found by reading the items in order (within the
/// query's top-level date range) and judging each; it gives up when it has read
/// [`Walk::most`] items without filling the limit, or when its hit rate after `limit`,
/// 2 × `limit`, 4 × `limit`… items says it would. Every item read before the limit was
/// filled was judged, in order, so the hits are exactly the first matches.
fn walk(
    conn: &rusqlite::Connection,
    how: Walk,
    descending: bool,
    items: &ItemQuery,
    limit: u32,
) -> rusqlite::Result<Walked> {
    let mut condition = Condition {
        probe: how == Walk::Probing,
        ..Condition::default()
    };
    let matched = condition.of(items);
    let (from, to) = date_bounds(items);
    let window = condition.of(&ItemQuery::Range {
        field: RangeField::Date,
        from,
        to,
    });
    let most = how.most(limit);
    // The condition is a result column: SQLite judges each row as it is stepped to, in the
    // index's order, so the rows after the limit is filled are never judged.
    let sql = format!(
        "SELECT d.digest, ({matched}) FROM items d INDEXED BY items_by_date WHERE {window} \
         ORDER BY {} LIMIT {most}",
        order(descending)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(condition.args))?;
    let (mut read, mut hits) = (0u32, Vec::new());
    let mut patience = Patience::new(limit, most);
    while let Some(row) = rows.next()? {
        read += 1;
        if row.get::<_, bool>(1)? {
            hits.push(row.get::<_, String>(0)?);
            if hits.len() >= limit as usize {
                return Ok(Walked::Found(hits));
            }
        }
        if patience.exhausted(read, hits.len()) {
            return Ok(Walked::GaveUp { hits: hits.len() });
        }
    }
    Ok(match read < most {
        true => Walked::Found(hits),
        false => Walked::GaveUp { hits: hits.len() },
    })
}

/// When a walk gives up: after it has read `limit`, 2 × `limit`, 4 × `limit`… items, if the
/// hit rate so far says filling the limit would take more than `most` items, or once it has
/// read `most` without filling it.
struct Patience {
    limit: u32,
    most: u32,
    next_check: u32,
}

impl Patience {
    fn new(limit: u32, most: u32) -> Patience {
        Patience {
            limit,
            most,
            next_check: limit.min(most),
        }
    }

    /// True if a walk that has read `read` items and found `hits` should give up now.
    fn exhausted(&mut self, read: u32, hits: usize) -> bool {
        if read < self.next_check {
            return false;
        }
        // The items the walk would read to fill the limit at this hit rate.
        let needed = u64::from(self.limit) * u64::from(read) / (hits as u64).max(1);
        self.next_check = self.next_check.saturating_mul(2).min(self.most);
        needed > u64::from(self.most) || read >= self.most
    }
}

/// The top-level date range of an item query: the bounds every item it matches lies within.
fn date_bounds(items: &ItemQuery) -> (Option<i64>, Option<i64>) {
    let parts = match items {
        ItemQuery::And(parts) => parts.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut bounds: (Option<i64>, Option<i64>) = (None, None);
    for part in parts {
        if let ItemQuery::Range {
            field: RangeField::Date,
            from,
            to,
        } = part
        {
            bounds.0 = bounds.0.max(*from);
            bounds.1 = match (bounds.1, *to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    bounds
}

/// The text terms of a query.
fn text_terms(items: &ItemQuery) -> usize {
    match items {
        ItemQuery::Text { .. } => 1,
        ItemQuery::And(parts) | ItemQuery::Or(parts) => parts.iter().map(text_terms).sum(),
        ItemQuery::Not(inner) => text_terms(inner),
        _ => 0,
    }
}

/// The item records of `digests`, in that order.
fn records_of(conn: &rusqlite::Connection, digests: &[String]) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT collection, key, time_ms, body FROM records WHERE collection = '{ITEMS}' AND key = ?1"
    ))?;
    let mut records = Vec::with_capacity(digests.len());
    for digest in digests {
        let mut rows = stmt.query([digest])?;
        if let Some(row) = rows.next()? {
            records.push(crate::records::record_from_row(conn, row)?);
        }
    }
    Ok(records)
}

/// The items' order, newest first or oldest first.
fn order(descending: bool) -> String {
    let direction = if descending { "DESC" } else { "ASC" };
    format!("date_ms {direction}, digest {direction}")
}

/// The match-list plan: every match, sorted, the first `limit` (or all) of them read.
fn match_list(
    conn: &rusqlite::Connection,
    descending: bool,
    items: &ItemQuery,
    limit: Option<u32>,
) -> rusqlite::Result<Vec<Record>> {
    let mut condition = Condition::default();
    let matched = condition.of(items);
    let items = format!("items d WHERE {matched}");
    first_records(conn, &items, condition.args, descending, limit)
}

/// The records of the first `limit` (or all) rows `d` of `items` (a FROM clause and its
/// WHERE, `args` its parameters) in the items' order: the items first, then their records,
/// so that only those within the limit are read.
fn first_records(
    conn: &rusqlite::Connection,
    items: &str,
    args: Vec<Value>,
    descending: bool,
    limit: Option<u32>,
) -> rusqlite::Result<Vec<Record>> {
    let limit = limit.map_or(String::new(), |limit| format!(" LIMIT {limit}"));
    let order = order(descending);
    let sql = format!(
        "SELECT r.collection, r.key, r.time_ms, r.body FROM \
         (SELECT d.digest, d.date_ms FROM {items} ORDER BY {order}{limit}) m \
         CROSS JOIN records r ON r.collection = '{ITEMS}' AND r.key = m.digest \
         ORDER BY {order}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |row| {
        crate::records::record_from_row(conn, row)
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::items::TextColumn;
    use rusqlite::Connection;

    use super::*;

    fn item(digest: &str, subject: &str) -> Record {
        item_at(digest, subject, 1)
    }

    fn item_at(digest: &str, subject: &str, date_ms: i64) -> Record {
        let doc = ItemDoc {
            digest: digest.into(),
            subject: subject.into(),
            date_ms,
            size: 10,
            ..ItemDoc::default()
        };
        Record::new(ITEMS, digest, &serde_json::to_value(doc).unwrap()).at(date_ms)
    }

    /// Both plans give the same items in the same order, whichever the word's frequency, the
    /// limit, the direction and the date range (dates with ties, not in insertion order); the
    /// walk answers a word most items hold and gives up on a rare one.
    #[test]
    fn the_walk_and_the_match_list_answer_alike() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for n in 0..800 {
            let mut words = vec!["x"];
            for (word, per_mille) in [("common", 700), ("medium", 80), ("rare", 5)] {
                if next(1000) < per_mille {
                    words.push(word);
                }
            }
            // Dates over 75 seconds, several items a second and some at the same millisecond.
            let date_ms = 1_000 + next(300) as i64 * 250;
            let record = item_at(&format!("d{n:04}"), &words.join(" "), date_ms);
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        }
        let word = |w: &str| ItemQuery::Text {
            field: TextField::Subject,
            text: TextMatch::Words(w.into()),
        };
        let dates = |from, to| ItemQuery::Range {
            field: RangeField::Date,
            from,
            to,
        };
        let mut queries = vec![
            word("common"),
            word("medium"),
            word("rare"),
            word("absent"),
            ItemQuery::Not(Box::new(word("common"))),
            ItemQuery::And(vec![word("common"), dates(Some(26_000), Some(38_500))]),
            ItemQuery::And(vec![word("common"), dates(None, Some(3_500))]),
            ItemQuery::Or(vec![word("rare"), word("medium")]),
            ItemQuery::And(vec![
                word("medium"),
                ItemQuery::Or(vec![word("rare"), word("common")]),
            ]),
            ItemQuery::And(vec![
                word("common"),
                ItemQuery::Not(Box::new(word("medium"))),
            ]),
        ];
        // A custodian's payloads (every third item, one twice, one not archived): read by
        // their digests.
        let listed = ItemQuery::Or(
            (0..800)
                .step_by(3)
                .chain([3])
                .map(|n| format!("d{n:04}"))
                .chain(["d9999".to_string()])
                .map(|value| ItemQuery::Exact {
                    field: ExactField::Digest,
                    value,
                })
                .collect(),
        );
        queries.extend([
            listed.clone(),
            ItemQuery::And(vec![word("common"), listed.clone()]),
            ItemQuery::And(vec![
                listed.clone(),
                word("medium"),
                dates(Some(20_000), None),
            ]),
            ItemQuery::And(vec![
                word("rare"),
                ItemQuery::Exact {
                    field: ExactField::Digest,
                    value: "d0042".into(),
                },
            ]),
        ]);
        for items in &queries {
            for descending in [true, false] {
                for limit in [1, 7, 50, 100, 1000] {
                    let query = RecordQuery {
                        collection: ITEMS.into(),
                        items: Some(items.clone()),
                        descending,
                        limit,
                        ..RecordQuery::default()
                    };
                    let listed =
                        keys_of(match_list(&conn, descending, items, Some(limit)).unwrap());
                    assert_eq!(
                        query_items(&conn, &query, items),
                        listed,
                        "{items:?} descending {descending} limit {limit}"
                    );
                    if let Some(led) = TextLed::of(items)
                        && let Walked::Found(walked) =
                            led.walk(&conn, descending, limit, None).unwrap()
                    {
                        assert_eq!(walked, listed, "{items:?} text-led, limit {limit}");
                    }
                    if let Some(led) = DigestLed::of(items) {
                        let digests = led.listed(&conn, descending).unwrap();
                        let ids = digests.iter().map(|(id, _)| *id).collect();
                        if let Some(text) = TextLed::of(&led.rest)
                            && let Walked::Found(walked) =
                                text.walk(&conn, descending, limit, Some(&ids)).unwrap()
                        {
                            assert_eq!(walked, listed, "{items:?} text-led within, limit {limit}");
                        }
                        if let Walked::Found(walked) = led.walk(&conn, digests, limit).unwrap() {
                            assert_eq!(walked, listed, "{items:?} digest-led walk, limit {limit}");
                        }
                        let all = keys_of(led.query(&conn, descending, Some(limit)).unwrap());
                        assert_eq!(all, listed, "{items:?} digest-led, limit {limit}");
                    }
                    for how in [Walk::Probing, Walk::Listed] {
                        if let Walked::Found(walked) =
                            walk(&conn, how, descending, items, limit).unwrap()
                        {
                            assert_eq!(walked, listed, "{items:?} {how:?}, limit {limit}");
                        }
                    }
                }
            }
        }
        let found = |w: Walked| matches!(w, Walked::Found(_));
        let custodians_common = DigestLed::of(&queries[queries.len() - 3]).unwrap();
        let digests = custodians_common.listed(&conn, true).unwrap();
        assert!(found(custodians_common.walk(&conn, digests, 7).unwrap()));
        assert!(found(
            walk(&conn, Walk::Probing, true, &word("common"), 7).unwrap()
        ));
        assert!(!found(
            walk(&conn, Walk::Probing, true, &word("rare"), 7).unwrap()
        ));
        // A word in about 8 % of the items: too rare for the probing walk to fill 50 within
        // 500 items, common enough for the listed walk.
        assert!(!found(
            walk(&conn, Walk::Probing, true, &word("medium"), 50).unwrap()
        ));
        assert!(found(
            walk(&conn, Walk::Listed, true, &word("medium"), 50).unwrap()
        ));
        // Fewer items in the date range than the walk may read: it reads them all, answers.
        let few = ItemQuery::And(vec![word("medium"), dates(Some(1_000), Some(6_000))]);
        assert_eq!(
            walk(&conn, Walk::Probing, true, &few, 100).unwrap(),
            Walked::Found(keys_of(match_list(&conn, true, &few, Some(100)).unwrap()))
        );
    }

    /// The text-led walk answers words of every frequency; a word in 8 % of the items fills
    /// a limit of 50 from FTS5's list where the walks by date give up.
    #[test]
    fn the_text_led_walk_answers_whatever_the_frequency() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for n in 0..1000i64 {
            let subject = match n % 25 {
                0 | 1 => "x medium",
                _ => "x",
            };
            let record = item_at(&format!("d{n:04}"), subject, 1_000 + n * 137);
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        }
        let medium = ItemQuery::Text {
            field: TextField::Any,
            text: TextMatch::Words("medium".into()),
        };
        let led = TextLed::of(&medium).unwrap();
        let Walked::Found(walked) = led.walk(&conn, true, 50, None).unwrap() else {
            panic!("the text-led walk gave up on a word in 8 % of the items");
        };
        assert_eq!(walked.len(), 50);
        assert_eq!(
            walked,
            keys_of(match_list(&conn, true, &medium, Some(50)).unwrap())
        );
        assert!(ids_follow_dates(&conn).unwrap());
    }

    /// A custodian's search for a word in 4 % of the custodian's items: FTS5's list of the
    /// word's matches, read within the custodian's ids, fills a limit of 50 where probing
    /// the custodian's items one by one gives up; for a list of two items far apart, the
    /// list walk gives up soon and the digest-led plan still answers rightly.
    #[test]
    fn a_custodians_word_is_walked_in_the_full_text_list() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for n in 0..3000i64 {
            let subject = if n % 25 == 0 { "x medium" } else { "x" };
            let record = item_at(&format!("d{n:04}"), subject, 1_000 + n * 137);
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        }
        let word = |w: &str| ItemQuery::Text {
            field: TextField::Any,
            text: TextMatch::Words(w.into()),
        };
        let listed = |numbers: &mut dyn Iterator<Item = i64>| {
            ItemQuery::Or(
                numbers
                    .map(|n| ItemQuery::Exact {
                        field: ExactField::Digest,
                        value: format!("d{n:04}"),
                    })
                    .collect(),
            )
        };
        let custodian = ItemQuery::And(vec![listed(&mut (0..3000).step_by(2)), word("medium")]);
        let led = DigestLed::of(&custodian).unwrap();
        let digests = led.listed(&conn, true).unwrap();
        let ids: HashSet<i64> = digests.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 1500);
        assert!(matches!(
            led.walk(&conn, digests, 50).unwrap(),
            Walked::GaveUp { .. }
        ));
        let text = TextLed::of(&led.rest).unwrap();
        let expected = keys_of(match_list(&conn, true, &custodian, Some(50)).unwrap());
        assert_eq!(expected.len(), 50);
        assert_eq!(
            text.walk(&conn, true, 50, Some(&ids)).unwrap(),
            Walked::Found(expected.clone())
        );
        assert_eq!(keys_of(led.query(&conn, true, Some(50)).unwrap()), expected);

        let two = ItemQuery::And(vec![listed(&mut [0, 2999].into_iter()), word("x")]);
        let led = DigestLed::of(&two).unwrap();
        let ids = led
            .listed(&conn, true)
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert!(matches!(
            TextLed::of(&led.rest)
                .unwrap()
                .walk(&conn, true, 50, Some(&ids))
                .unwrap(),
            Walked::GaveUp { .. }
        ));
        assert_eq!(
            keys_of(led.query(&conn, true, Some(50)).unwrap()),
            ["d2999", "d0000"]
        );
    }

    /// Items indexed before schema version 7 keep their ids, which do not follow their
    /// dates: queries answer by the walks by date until every item is written again.
    #[test]
    fn items_indexed_before_ids_followed_dates_are_found_until_rewritten() {
        let mut conn = Connection::open_in_memory().unwrap();
        {
            let tx = conn.transaction().unwrap();
            for sql in &crate::schema::MIGRATIONS[..6] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 6).unwrap();
            tx.commit().unwrap();
        }
        // As version 6 wrote them: ids in arrival order, the newest first here.
        for (id, (digest, date_ms)) in [("new", 9_000_000), ("old", 1_000)].into_iter().enumerate()
        {
            conn.execute(
                "INSERT INTO items (id, digest, date_ms, size, has_attachment) \
                 VALUES (?1, ?2, ?3, 10, 0)",
                params![id as i64 + 1, digest, date_ms],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO items_text (rowid, subject) VALUES (?1, 'x')",
                [id as i64 + 1],
            )
            .unwrap();
            let record = item_at(digest, "x", date_ms);
            conn.execute(
                "INSERT INTO records (collection, key, time_ms, body) VALUES (?1, ?2, ?3, ?4)",
                params![ITEMS, digest, date_ms, record.body.as_str()],
            )
            .unwrap();
        }
        crate::schema::migrate(&mut conn).unwrap();
        assert!(!ids_follow_dates(&conn).unwrap());
        let x = ItemQuery::Text {
            field: TextField::Subject,
            text: TextMatch::Words("x".into()),
        };
        let newest = |conn: &Connection| {
            let query = RecordQuery {
                collection: ITEMS.into(),
                items: Some(x.clone()),
                descending: true,
                limit: 1,
                ..RecordQuery::default()
            };
            query_items(conn, &query, &x)
        };
        assert_eq!(newest(&conn), ["new"]);
        for (digest, date_ms) in [("old", 1_000), ("new", 9_000_000)] {
            let record = item_at(digest, "x", date_ms);
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        }
        assert!(ids_follow_dates(&conn).unwrap());
        assert_eq!(newest(&conn), ["new"]);
    }

    /// Dates before the epoch and after the last second ids hold share the first and the
    /// last second: ids stay in date order and within i64.
    #[test]
    fn dates_beyond_what_ids_hold_share_the_first_and_last_second() {
        assert_eq!(second_of(-5_000_000), 1);
        assert_eq!(second_of(i64::MAX), LAST_SECOND);
        assert_eq!(*ids_of(LAST_SECOND).end(), i64::MAX);
        assert!(ids_of(second_of(1_999)).end() < ids_of(second_of(2_000)).start());
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for (n, date_ms) in [i64::MIN, -1, i64::MAX, i64::MAX - 1]
            .into_iter()
            .enumerate()
        {
            let record = item_at(&format!("d{n}"), "x", date_ms);
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        }
        let x = ItemQuery::Text {
            field: TextField::Subject,
            text: TextMatch::Words("x".into()),
        };
        let Walked::Found(walked) = TextLed::of(&x)
            .unwrap()
            .walk(&conn, false, 10, None)
            .unwrap()
        else {
            panic!("gave up");
        };
        assert_eq!(walked, ["d0", "d1", "d3", "d2"]);
    }

    fn find(conn: &Connection, field: TextField, text: TextMatch) -> Vec<String> {
        let items = ItemQuery::Text { field, text };
        let query = RecordQuery {
            collection: ITEMS.into(),
            items: Some(items.clone()),
            ..RecordQuery::default()
        };
        query_items(conn, &query, &items)
    }

    fn keys_of(records: Vec<Record>) -> Vec<String> {
        records.into_iter().map(|r| r.key.into_string()).collect()
    }

    fn query_items(conn: &Connection, query: &RecordQuery, items: &ItemQuery) -> Vec<String> {
        super::query(conn, query, items)
            .unwrap_or_else(|e| panic!("{items:?}: {e}"))
            .into_iter()
            .map(|r| r.key.into_string())
            .collect()
    }

    #[test]
    fn every_text_column_is_a_column_of_the_full_text_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for column in TextColumn::ALL {
            conn.prepare(&format!("SELECT {} FROM items_text", column.name()))
                .unwrap();
        }
    }

    #[test]
    fn a_query_of_thousands_of_terms_is_one_statement_within_sqlites_bounds() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let record = item("d1", "w2999");
        crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
        let words = |n: usize| ItemQuery::Text {
            field: TextField::Subject,
            text: TextMatch::Words(format!("w{n}")),
        };
        let any = ItemQuery::Or((0..3000).map(words).collect());
        let every = ItemQuery::And(
            (0..3000)
                .map(|n| ItemQuery::Not(Box::new(words(n + 3000))))
                .collect(),
        );
        for items in [any, every] {
            let query = RecordQuery {
                collection: ITEMS.into(),
                items: Some(items.clone()),
                ..RecordQuery::default()
            };
            assert_eq!(query_items(&conn, &query, &items), ["d1"]);
        }
    }

    proptest::proptest! {
        /// Whatever text a query holds, FTS5 never reads it as syntax: every kind of text
        /// term answers, and a word of the item's subject finds it.
        #[test]
        fn any_query_text_is_answered(text in "\\PC{0,40}", word in "[a-zA-ZäöüßÄÖÜẞ]{1,12}") {
            let mut conn = Connection::open_in_memory().unwrap();
            crate::schema::migrate(&mut conn).unwrap();
            let record = item("d1", &format!("x {word} y"));
            crate::records::put(&mut conn, &record, Some(&indexed(&record).unwrap())).unwrap();
            for field in [TextField::Any, TextField::Subject, TextField::Addr] {
                find(&conn, field, TextMatch::Words(text.clone()));
                find(&conn, field, TextMatch::Phrase(text.clone()));
                find(&conn, field, TextMatch::Prefix(text.clone()));
            }
            proptest::prop_assert_eq!(find(&conn, TextField::Subject, TextMatch::Words(word.clone())), ["d1"]);
            proptest::prop_assert_eq!(find(&conn, TextField::Any, TextMatch::Prefix(word)), ["d1"]);
        }
    }
}
