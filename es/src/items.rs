//! The e-discovery item documents (collection [`ITEMS`]) in index `<records_prefix>items`: the
//! record as every record index keeps it (key, time = `date_ms`, `terms`, `body`), plus
//! `date_ms`, `size` and `has_attachment` typed for ranges and one `text_<column>` field per
//! [`TextColumn`], left out of `_source` so the message's words are indexed and stored nowhere
//! readable. An [`ItemQuery`] becomes a bool query of term, match_phrase, prefix and range
//! queries.
//!
//! The text fields hold the words of [`bonnie_mail::index_words`] (folded, split into runs of
//! alphanumeric characters), space-separated, and their analyzer is the `whitespace` tokenizer
//! with no filter: its tokens are exactly those words, as sqlite-storage's `ascii` tokenizer's
//! are, so both storages find the same items. A query's words are split the same way in Rust
//! and looked up as terms; nothing the user wrote is read by a query parser.

use bonnie_plugin_api::{
    PluginError, Record, RecordQuery,
    items::{
        ExactField, ITEMS, ItemDoc, ItemQuery, RangeField, TextColumn, TextField, TextMatch,
        exact_lists,
    },
};
use serde_json::{Value, json};

use crate::Es;

/// The analyzer of the text fields: split at the spaces between the words written.
const WORDS_ANALYZER: &str = "bonnie_words";

/// The template of the items index: higher priority than the records template, whose
/// pattern it falls under too.
pub fn items_template(records_prefix: &str) -> Value {
    let mut properties = serde_json::Map::new();
    for (field, mapping) in [
        ("collection", json!({ "type": "keyword" })),
        ("key", json!({ "type": "keyword" })),
        ("time_ms", json!({ "type": "long" })),
        ("terms", json!({ "type": "keyword" })),
        ("body", json!({ "type": "object", "enabled": false })),
        ("extra", json!({ "type": "object", "enabled": false })),
        ("date_ms", json!({ "type": "long" })),
        ("size", json!({ "type": "long" })),
        ("has_attachment", json!({ "type": "boolean" })),
    ] {
        properties.insert(field.into(), mapping);
    }
    for column in TextColumn::ALL {
        properties.insert(
            text_field(column),
            json!({ "type": "text", "analyzer": WORDS_ANALYZER, "norms": false }),
        );
    }
    json!({
        "index_patterns": [format!("{records_prefix}{ITEMS}")],
        "priority": 300,
        "_meta": { "bonnie_schema": crate::templates::SCHEMA },
        "template": {
            "settings": {
                "analysis": {
                    "analyzer": {
                        WORDS_ANALYZER: { "type": "custom", "tokenizer": "whitespace" }
                    }
                }
            },
            "mappings": {
                "dynamic": false,
                "_source": { "excludes": ["text_*"] },
                "properties": properties,
            }
        }
    })
}

fn text_field(column: TextColumn) -> String {
    format!("text_{}", column.name())
}

/// Adds to `document`, the record document of item `record`, the fields its queries compare:
/// refused when its body is not the [`ItemDoc`] of its key or its `extra` not
/// [`bonnie_plugin_api::items::IndexText`].
pub fn indexed_fields(record: &Record, document: &mut Value) -> Result<(), PluginError> {
    let (doc, text) = ItemDoc::from_record(record)?;
    document["date_ms"] = json!(doc.date_ms);
    document["size"] = json!(doc.size);
    document["has_attachment"] = json!(doc.has_attachment);
    for column in TextColumn::ALL {
        document[text_field(column)] =
            json!(bonnie_mail::index_words(&column.text(&doc, &text)).join(" "));
    }
    Ok(())
}

/// The query of a text term; `match_none` when its text has no word.
fn text_query(field: TextField, text: &TextMatch) -> Value {
    let (words, last_is_prefix) = match text {
        TextMatch::Words(words) | TextMatch::Phrase(words) => (words, false),
        TextMatch::Prefix(prefix) => (prefix, true),
    };
    let words = bonnie_mail::index_words(words);
    let Some(last) = words.len().checked_sub(1) else {
        return json!({ "match_none": {} });
    };
    // In any of the field's columns.
    let anywhere = |query: &dyn Fn(String) -> Value| {
        let should: Vec<Value> = field
            .columns()
            .iter()
            .map(|c| query(text_field(*c)))
            .collect();
        json!({ "bool": { "should": should, "minimum_should_match": 1 } })
    };
    match text {
        TextMatch::Phrase(_) => {
            let phrase = words.join(" ");
            anywhere(
                &|f| json!({ "match_phrase": { f: { "query": phrase, "analyzer": WORDS_ANALYZER } } }),
            )
        }
        _ => {
            let must: Vec<Value> = words
                .iter()
                .enumerate()
                .map(|(n, word)| match n == last && last_is_prefix {
                    true => anywhere(&|f| json!({ "prefix": { f: { "value": word } } })),
                    false => anywhere(&|f| json!({ "term": { f: { "value": word } } })),
                })
                .collect();
            json!({ "bool": { "must": must } })
        }
    }
}

/// Items whose `field` has one of `values`: one `terms` query (the digest is the key, the
/// other fields index terms `field=value`).
fn exact(field: ExactField, values: &[&str]) -> Value {
    match field {
        ExactField::Digest => json!({ "terms": { "key": values } }),
        field => {
            let terms: Vec<String> = values
                .iter()
                .map(|v| format!("{}={v}", field.index_field()))
                .collect();
            json!({ "terms": { "terms": terms } })
        }
    }
}

/// The query DSL of an item query.
fn dsl(query: &ItemQuery) -> Value {
    match query {
        ItemQuery::All => json!({ "match_all": {} }),
        ItemQuery::Nothing => json!({ "match_none": {} }),
        ItemQuery::And(all) => {
            json!({ "bool": { "filter": all.iter().map(dsl).collect::<Vec<_>>() } })
        }
        ItemQuery::Or(any) if any.is_empty() => json!({ "match_none": {} }),
        ItemQuery::Or(any) => {
            let (lists, others) = exact_lists(any);
            let mut should: Vec<Value> = lists
                .iter()
                .map(|(field, values)| exact(*field, values))
                .collect();
            should.extend(others.into_iter().map(dsl));
            json!({ "bool": { "should": should, "minimum_should_match": 1 } })
        }
        ItemQuery::Not(inner) => json!({ "bool": { "must_not": [dsl(inner)] } }),
        ItemQuery::Text { field, text } => text_query(*field, text),
        ItemQuery::Exact { field, value } => exact(*field, &[value]),
        ItemQuery::Range { field, from, to } => {
            let field = match field {
                RangeField::Date => "date_ms",
                RangeField::Size => "size",
            };
            let mut range = serde_json::Map::new();
            if let Some(from) = from {
                range.insert("gte".into(), json!(from));
            }
            if let Some(to) = to {
                range.insert("lt".into(), json!(to));
            }
            match range.is_empty() {
                true => json!({ "match_all": {} }),
                false => json!({ "range": { field: range } }),
            }
        }
        ItemQuery::HasAttachment => json!({ "term": { "has_attachment": true } }),
    }
}

impl Es {
    /// The item records an item query matches (`items`, of `query`, which
    /// [`RecordQuery::item_query`] checked), in `date_ms` order then digest (or the reverse),
    /// at most the query's limit, every one with `all` (paged with `search_after`).
    pub(crate) fn query_items(
        &self,
        query: &RecordQuery,
        items: &ItemQuery,
    ) -> Result<Vec<Record>, PluginError> {
        let index = self.records_index(ITEMS)?;
        let order = if query.descending { "desc" } else { "asc" };
        let sort = json!([
            { "date_ms": { "order": order } },
            { "key": { "order": order } },
        ]);
        let wanted = query.max_records().map(|n| n as usize);
        self.runtime.block_on(self.search_records(
            &index,
            ITEMS,
            json!({ "bool": { "filter": [dsl(items)] } }),
            sort,
            wanted,
            !query.keys_only,
        ))
    }
}
