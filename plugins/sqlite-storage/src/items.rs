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

use bonnie_plugin_api::{
    PluginError, Record, RecordQuery,
    items::{
        ExactField, ITEMS, ItemDoc, ItemQuery, RangeField, TextColumn, TextField, TextMatch,
        exact_lists,
    },
};
use rusqlite::{Transaction, params, types::Value};

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
    tx.prepare_cached(
        "INSERT INTO items (digest, date_ms, size, has_attachment) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        digest,
        item.date_ms,
        item.size,
        item.has_attachment
    ])?;
    let id = tx.last_insert_rowid();
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

/// Removes the indexed form of item `digest`, if any (`contentless_delete`: the full-text
/// row goes with it).
pub fn delete(tx: &Transaction<'_>, digest: &str) -> rusqlite::Result<()> {
    let id: Option<i64> = rusqlite::OptionalExtension::optional(
        tx.prepare_cached("SELECT id FROM items WHERE digest = ?1")?
            .query_row([digest], |row| row.get(0)),
    )?;
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
                    format!(
                        "d.id IN (SELECT rowid FROM items_text WHERE items_text MATCH {expression})"
                    )
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
pub fn query(
    conn: &rusqlite::Connection,
    query: &RecordQuery,
    items: &ItemQuery,
) -> rusqlite::Result<Vec<Record>> {
    let mut condition = Condition::default();
    let matched = condition.of(items);
    let direction = if query.descending { "DESC" } else { "ASC" };
    let limit = query
        .max_records()
        .map_or(String::new(), |limit| format!(" LIMIT {limit}"));
    // The items first, then their records: only those within the limit are read.
    let order = format!("date_ms {direction}, digest {direction}");
    let sql = format!(
        "SELECT r.collection, r.key, r.time_ms, r.body FROM \
         (SELECT d.digest, d.date_ms FROM items d WHERE {matched} ORDER BY {order}{limit}) m \
         CROSS JOIN records r ON r.collection = '{ITEMS}' AND r.key = m.digest \
         ORDER BY {order}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(condition.args), |row| {
        crate::records::record_from_row(conn, row)
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::items::{ItemType, TextColumn};
    use rusqlite::Connection;

    use super::*;

    fn item(digest: &str, subject: &str) -> Record {
        let doc = ItemDoc {
            digest: digest.into(),
            item_type: ItemType::Mail,
            message_id: None,
            subject: subject.into(),
            from: vec![],
            to: vec![],
            cc: vec![],
            bcc: vec![],
            from_domains: vec![],
            recipient_domains: vec![],
            date_ms: 1,
            size: 10,
            filenames: vec![],
            has_attachment: false,
            object_uid: None,
            text_truncated: false,
        };
        Record::new(ITEMS, digest, &serde_json::to_value(doc).unwrap()).at(1)
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
