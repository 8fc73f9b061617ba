//! `bonnie search` and `bonnie show`: e-discovery's review from the command line. A search is
//! the query language of bonnie-discovery over the archive's items (every message and
//! groupware object revision ever archived, deleted ones included), as the mailboxes stand now
//! or stood `--as-of` a moment; `show` prints one item: headers, text, attachments, every place
//! it lived and its flag history. Both are audited before anything is shown.

use anyhow::{Context as _, bail};
use bonnie_core::Config;
use bonnie_discovery::{
    config::DiscoveryConfig,
    item::Item,
    json::time,
    query::{self, Context, Query},
    search::{self, SearchOptions},
    state,
};
use bonnie_plugin_api::{
    items::{ITEMS, ItemDoc},
    storage::{RecordQuery, StorageClient},
};
use jiff::{Timestamp, tz::TimeZone};
use serde_json::{Value, json};

/// How many hex digits of an item's digest the listings show (and `show` accepts at least).
pub const SHORT_ID: usize = 12;

/// The archive and the context queries are read in.
pub struct Archive {
    /// The storage, as the workers wrote it.
    pub storage: StorageClient,
    /// `[discovery]`'s zone and local domains.
    pub context: Context,
}

impl Archive {
    /// Opens the storage of `config` and reads its `[discovery]` table.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let context = DiscoveryConfig::from_table(&config.discovery)
            .and_then(|c| c.context())
            .with_context(|| format!("in {}", config.path.display()))?;
        Ok(Self {
            storage: crate::backfill::open_storage(config)?,
            context,
        })
    }

    /// A query as the user wrote it, parsed; the error says where it is wrong.
    pub fn parse(&self, text: &str) -> anyhow::Result<Query> {
        query::parse(text, &self.context).map_err(|e| anyhow::anyhow!("the query {text:?}: {e}"))
    }

    /// An `--as-of` moment: a date or time as queries write them (in `[discovery]
    /// time_zone` without an offset), or now.
    pub fn moment(&self, text: Option<&str>) -> anyhow::Result<Option<i64>> {
        text.map(|t| {
            query::instant(t, &self.context.zone).with_context(|| {
                format!(
                    "--as-of {t:?}: write a date (2026-11-28) or a time (2026-11-28T10:00, \
                     2026-11-28T10:00:00+01:00)"
                )
            })
        })
        .transpose()
    }

    /// The items `query` matches.
    pub fn search(&self, query: &Query, options: &SearchOptions) -> anyhow::Result<Vec<Item>> {
        search::search(&self.storage, query, &self.context, options)
            .map_err(|e| anyhow::anyhow!("the search failed: {e}"))
    }

    /// The item a user names: its digest, a unique beginning of it (at least [`SHORT_ID`]
    /// digits), or its Message-ID (with or without angle brackets; the oldest such item when
    /// several carry it).
    pub fn item(&self, name: &str) -> anyhow::Result<Item> {
        let name = name.trim();
        let doc = if name.len() >= SHORT_ID && name.chars().all(|c| c.is_ascii_hexdigit()) {
            self.by_digest(&name.to_ascii_lowercase())?
        } else {
            let id = if name.starts_with('<') {
                name.to_string()
            } else {
                format!("<{name}>")
            };
            self.by_message_id(&id)?
        };
        let state = state::state(&self.storage, &doc.digest)
            .map_err(|e| anyhow::anyhow!("the history of item {}: {e}", doc.digest))?;
        Ok(Item { doc, state })
    }

    fn by_digest(&self, prefix: &str) -> anyhow::Result<ItemDoc> {
        let query = RecordQuery {
            collection: ITEMS.to_string(),
            key_prefix: Some(prefix.to_string()),
            limit: 2,
            ..RecordQuery::default()
        };
        let found = self
            .storage
            .query(&query)
            .map_err(|e| anyhow::anyhow!("looking up item {prefix}: {e}"))?;
        match found.as_slice() {
            [] => bail!("the archive holds no item {prefix}"),
            [one] => doc_of(one),
            _ => bail!("{prefix} begins several items' digests: give more of it"),
        }
    }

    fn by_message_id(&self, id: &str) -> anyhow::Result<ItemDoc> {
        let query = RecordQuery {
            collection: ITEMS.to_string(),
            index: Some(("message_id".to_string(), id.to_string())),
            limit: 1,
            ..RecordQuery::default()
        };
        let found = self
            .storage
            .query(&query)
            .map_err(|e| anyhow::anyhow!("looking up Message-ID {id}: {e}"))?;
        match found.first() {
            Some(record) => doc_of(record),
            None => bail!("the archive holds no item with Message-ID {id}"),
        }
    }
}

fn doc_of(record: &bonnie_plugin_api::Record) -> anyhow::Result<ItemDoc> {
    serde_json::from_str(record.body.as_str())
        .with_context(|| format!("the item document {} cannot be read", record.key))
}

/// A time in `zone`, to the minute, with the zone's abbreviation.
pub fn local_time(ms: i64, zone: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string())
}

/// The custodians a listing names: the owners of every folder the item had lived in by
/// `as_of` (now when `None`), each once, in order of arrival. `--as-of` answers as the
/// mailboxes stood then, so a custodian the item reached later is not yet one (as bonnie-api
/// names them).
pub fn custodians(item: &Item, as_of: Option<i64>) -> Vec<&str> {
    item.state.custodians(as_of)
}

/// The folders an item is in at `as_of` (now when `None`), by the names they had then; a
/// deleted item's last ones.
pub fn folders(item: &Item, as_of: Option<i64>) -> Vec<&str> {
    let mut current: Vec<&str> = item
        .state
        .places_then(as_of)
        .into_iter()
        .map(|p| p.name_at(as_of))
        .collect();
    current.dedup();
    current
}

/// An item as a listing's JSON shows it.
pub fn summary(item: &Item, as_of: Option<i64>, zone: &TimeZone) -> Value {
    let doc = &item.doc;
    let deleted = item.state.deleted_at(as_of);
    json!({
        "item": doc.digest,
        "type": doc.item_type,
        "date": time(doc.date_ms, zone),
        "custodians": custodians(item, as_of),
        "from": doc.from,
        "to": doc.to,
        "subject": doc.subject,
        "message_id": doc.message_id,
        "folders": folders(item, as_of),
        "size": doc.size,
        "has_attachment": doc.has_attachment,
        "deleted": deleted.map(|ms| time(ms, zone)),
        "backfilled": item.state.places.iter().any(|p| p.backfilled),
    })
}

/// Cuts `text` to `width` characters, with an ellipsis when cut.
fn cell(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text:<width$}")
    } else {
        let kept: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// `bonnie search`.
pub fn search(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    text: &str,
    case: Option<&str>,
    as_of: Option<&str>,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let archive = Archive::open(config)?;
    let mut query = archive.parse(text)?;
    if let Some(name) = case {
        let case = crate::cases::read(&archive.storage, name)?;
        if case.custodians.is_empty() {
            bail!("case {name:?} has no custodian (bonnie case custodian add), so no items");
        }
        // Among the case's custodians' items, as the case's own queries are.
        query = bonnie_retention::discovery::of_custodians(vec![query], &case.custodians);
    }
    let as_of_ms = archive.moment(as_of)?;
    let options = SearchOptions {
        as_of: as_of_ms,
        limit: Some(limit),
        descending: true,
    };
    let items = archive.search(&query, &options)?;
    auditor.read(
        "search",
        json!({ "query": query.to_string(), "case": case, "as_of": as_of, "limit": limit }),
        items.len() as u64,
    )?;
    let zone = &archive.context.zone;
    if json_out {
        let listed: Vec<Value> = items.iter().map(|i| summary(i, as_of_ms, zone)).collect();
        println!("{}", Value::Array(listed));
        return Ok(());
    }
    if items.is_empty() {
        println!("No item matches {query}.");
        return Ok(());
    }
    println!(
        "{:<12}  {:<20}  {:<24}  {:<24}  {:<32}  {:<18}  {:>9}  DELETED",
        "ITEM", "DATE", "CUSTODIAN", "FROM", "SUBJECT", "FOLDER", "SIZE"
    );
    for item in &items {
        let doc = &item.doc;
        let deleted = item
            .state
            .deleted_at(as_of_ms)
            .map(|ms| local_time(ms, zone))
            .unwrap_or_default();
        println!(
            "{}  {}  {}  {}  {}  {}  {:>9}  {deleted}",
            &doc.digest[..SHORT_ID.min(doc.digest.len())],
            cell(&local_time(doc.date_ms, zone), 20),
            cell(&custodians(item, as_of_ms).join(", "), 24),
            cell(doc.from.first().map(String::as_str).unwrap_or(""), 24),
            cell(&doc.subject, 32),
            cell(&folders(item, as_of_ms).join(", "), 18),
            doc.size,
        );
    }
    if items.len() == limit {
        println!("(the first {limit}; --limit shows more)");
    }
    Ok(())
}

/// `bonnie show`.
pub fn show(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    name: &str,
    as_of: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let archive = Archive::open(config)?;
    let as_of_ms = archive.moment(as_of)?;
    let item = archive.item(name)?;
    let bytes = archive
        .storage
        .get_payload(&item.doc.digest)
        .map_err(|e| anyhow::anyhow!("reading item {}: {e}", item.doc.digest))?
        .with_context(|| {
            format!(
                "the archive lists item {} but holds no payload for it (purged?)",
                item.doc.digest
            )
        })?;
    auditor.read(
        "show",
        json!({ "item": item.doc.digest, "as_of": as_of }),
        1,
    )?;
    let message = bonnie_mail::parse(&bytes);
    let zone = &archive.context.zone;
    if json_out {
        let mut shown = summary(&item, as_of_ms, zone);
        shown["headers"] = json!(message.headers);
        shown["bodies"] = json!(message.bodies);
        shown["attachments"] = json!(message.attachments);
        let known = |ms: i64| as_of_ms.is_none_or(|t| ms <= t);
        let places: Vec<Value> = item
            .state
            .places
            .iter()
            .filter(|p| known(p.from_ms))
            .map(|p| json!(p.known_at(as_of_ms)))
            .collect();
        shown["places"] = json!(places);
        shown["flag_changes"] = json!(
            item.state
                .flag_changes
                .iter()
                .filter(|c| known(c.time_ms))
                .collect::<Vec<_>>()
        );
        shown["warnings"] = json!(message.warnings);
        println!("{shown}");
        return Ok(());
    }
    println!(
        "Item {} ({:?}, {} bytes)",
        item.doc.digest, item.doc.item_type, item.doc.size
    );
    for header in &message.headers {
        println!("{}: {}", header.name, header.value);
    }
    println!();
    for body in &message.bodies {
        println!("{}", body.text.trim_end());
        println!();
    }
    if !message.attachments.is_empty() {
        println!("Attachments:");
        for a in &message.attachments {
            println!(
                "  {} ({}, {} bytes, sha256 {})",
                a.name.as_deref().unwrap_or("(no name)"),
                a.media_type,
                a.size,
                a.sha256
            );
        }
        println!();
    }
    // As of a moment, what was known then: later arrivals, endings and flag changes left out.
    let known = |ms: i64| as_of_ms.is_none_or(|t| ms <= t);
    println!("Where it lived:");
    for (i, place) in item.state.places.iter().enumerate() {
        if !known(place.from_ms) {
            continue;
        }
        let until = match (place.until_ms.filter(|ms| known(*ms)), &place.ended_by) {
            (Some(ms), Some(how)) => format!("until {} ({how})", local_time(ms, zone)),
            (Some(ms), None) => format!("until {}", local_time(ms, zone)),
            (None, _) => "still there".to_string(),
        };
        let renamed = if place.renamed_to.is_empty() {
            String::new()
        } else {
            format!(" (renamed {})", place.renamed_to.join(" → "))
        };
        println!(
            "  {}: {} {}{renamed}, UID {}, from {} {until}{}{}",
            i + 1,
            place.user,
            place.name,
            place.uid,
            local_time(place.from_ms, zone),
            if place.backfilled {
                " [back-filled]"
            } else {
                ""
            },
            place
                .restored_by
                .as_ref()
                .map_or(String::new(), |by| format!(
                    " [restored by {} as of {}, from {} UID {}]",
                    by.run, by.as_of, by.from.folder, by.from.uid
                ))
        );
        let flags: Vec<String> = item.state.flags_at(i, as_of_ms).into_iter().collect();
        if !flags.is_empty() {
            println!("     flags: {}", flags.join(" "));
        }
    }
    let changes: Vec<_> = item
        .state
        .flag_changes
        .iter()
        .filter(|c| known(c.time_ms))
        .collect();
    if !changes.is_empty() {
        println!("Flag history:");
        for change in changes {
            println!(
                "  {} place {}: {} {}{}",
                local_time(change.time_ms, zone),
                change.place + 1,
                if change.set { "set" } else { "cleared" },
                change.flags.join(" "),
                change
                    .login
                    .as_deref()
                    .map(|l| format!(" by {l}"))
                    .unwrap_or_default()
            );
        }
    }
    match item.state.deleted_at(as_of_ms) {
        Some(ms) => println!("Deleted: {}", local_time(ms, zone)),
        None => println!("Deleted: no"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bonnie_discovery::item::ItemState;

    use super::*;

    /// A message delivered to Jane, copied a day later into a folder of John's: listed as of
    /// the first day it is Jane's alone, as of now both custodians'.
    #[test]
    fn a_listing_as_of_a_moment_names_the_custodians_of_then() {
        const DAY: i64 = 86_400_000;
        let place = |user: &str, folder: &str, from_ms: i64| {
            serde_json::from_value(json!({
                "user": user,
                "folder": folder,
                "name": "INBOX",
                "uid": 1,
                "from_ms": from_ms,
                "job": format!("job-{from_ms}"),
            }))
            .unwrap()
        };
        let item = Item {
            doc: ItemDoc {
                digest: "d1".into(),
                subject: "Übergabe".into(),
                date_ms: DAY,
                size: 10,
                ..ItemDoc::default()
            },
            state: ItemState {
                places: vec![
                    place("jane@example.org", "user/jane@example.org", DAY),
                    place("john@example.org", "user/john@example.org", 2 * DAY),
                ],
                flag_changes: vec![],
            },
        };
        let zone = TimeZone::UTC;
        let listed = |as_of| summary(&item, as_of, &zone)["custodians"].clone();
        assert_eq!(listed(Some(DAY + 1)), json!(["jane@example.org"]));
        assert_eq!(
            listed(None),
            json!(["jane@example.org", "john@example.org"])
        );
    }
}
