//! `discovery.search` and `discovery.show`: e-discovery's review through the API, the
//! query language, searches and item states of bonnie-discovery that `bonnie search` and
//! `bonnie show` use, answered as JSON of the API's own (times in `[discovery] time_zone`
//! with their offset). Only clients added with `--role ediscovery` may call them: any other
//! client, whatever user its request names, gets -32001 before a parameter is read, so a
//! refusal tells nothing of what the archive holds. Exports write files on the server and are
//! `bonnie export`'s, not the API's.
//!
//! # Pages
//!
//! A search answers newest first (date, then digest, both descending), at most `limit` items,
//! and a `cursor` when more follow: the date and digest of the page's last item. The next page
//! is the same query's items strictly after that position: first those of the same date with a
//! smaller digest (asked of the search in growing pages until enough of them, or all, are in),
//! then those of older dates (the query with a date range ending there). The position is in
//! the items' own order, so a page never repeats an item of an earlier page and, while the
//! archive does not change, misses none; items archived between two pages appear in later
//! pages only if they sort after the cursor.

use bonnie_discovery::{
    item::Item,
    json::time,
    query::{self, Context, Query, Term},
    search::{self, SearchOptions},
    state,
};
use bonnie_plugin_api::{
    items::{ITEMS, ItemDoc, RangeField},
    storage::{RecordQuery, StorageClient},
};
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::{
    methods::Caller,
    rpc::{Params, RpcError},
};

/// The items a page holds when the call names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

/// The most items one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// The longest item name (`discovery.show`'s `item`) looked up, in bytes: a digest is 64, and
/// RFC 5322 lines (a Message-ID's) are at most 998.
pub const MAX_ITEM_NAME: usize = 1000;

/// The refusal of a caller that is not an e-discovery client, if it is not.
fn refused(caller: &Caller<'_>, method: &str) -> Option<RpcError> {
    (!caller.ediscovery).then(|| {
        RpcError::forbidden(format!(
            "Forbidden: {method} is for e-discovery clients (bonnie api-client add --role ediscovery)"
        ))
    })
}

/// `as_of`, a date or time as queries write them (in the zone without an offset).
fn as_of(params: &Params, zone: &TimeZone) -> Result<Option<i64>, RpcError> {
    params
        .optional_text("as_of")?
        .map(|text| {
            query::instant(text, zone).ok_or_else(|| {
                RpcError::invalid_params(
                    "Invalid params: as_of must be a date (2026-11-28) or a time \
                     (2026-11-28T10:00, 2026-11-28T10:00:00+01:00)",
                )
            })
        })
        .transpose()
}

/// `limit`: a whole number from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn limit(params: &Params) -> Result<usize, RpcError> {
    let Some(given) = params.0.get("limit").filter(|v| !v.is_null()) else {
        return Ok(DEFAULT_LIMIT);
    };
    given
        .as_u64()
        .filter(|n| (1..=MAX_LIMIT as u64).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "Invalid params: limit must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })
}

/// Where a page ended: the date and digest of its last item, as `<date_ms>:<digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    date_ms: i64,
    digest: String,
}

impl Cursor {
    fn after(item: &Item) -> Self {
        Self {
            date_ms: item.doc.date_ms,
            digest: item.doc.digest.clone(),
        }
    }

    fn text(&self) -> String {
        format!("{}:{}", self.date_ms, self.digest)
    }

    /// A cursor a page gave; anything else is refused.
    fn parse(text: &str) -> Result<Self, RpcError> {
        text.split_once(':')
            .and_then(|(date, digest)| {
                let date_ms = date.parse().ok()?;
                let hex = digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                hex.then(|| Self {
                    date_ms,
                    digest: digest.to_string(),
                })
            })
            .ok_or_else(|| {
                RpcError::invalid_params(
                    "Invalid params: cursor must be one a discovery.search answer gave",
                )
            })
    }
}

/// One search of the archive, newest first.
struct Searching<'a> {
    storage: &'a StorageClient,
    query: &'a Query,
    ctx: &'a Context,
    as_of: Option<i64>,
}

impl Searching<'_> {
    /// The first `limit` items of `query` (the search's query, narrowed).
    fn run(&self, query: &Query, limit: usize) -> Result<Vec<Item>, RpcError> {
        let options = SearchOptions {
            as_of: self.as_of,
            limit: Some(limit),
            descending: true,
        };
        search::search(self.storage, query, self.ctx, &options)
            .map_err(|e| RpcError::internal(format!("the search failed: {e}")))
    }

    /// The query, its items dated in `[from, to)` only.
    fn dated(&self, from: Option<i64>, to: Option<i64>) -> Query {
        Query::And(vec![
            self.query.clone(),
            Query::Term(Term::Range {
                field: RangeField::Date,
                from,
                to,
            }),
        ])
    }

    /// The first `wanted` items after `cursor` (see the module's documentation).
    fn after(&self, cursor: &Cursor, wanted: usize) -> Result<Vec<Item>, RpcError> {
        let same_date = self.dated(Some(cursor.date_ms), Some(cursor.date_ms.saturating_add(1)));
        let mut asked = wanted;
        let mut found = loop {
            let at_date = self.run(&same_date, asked)?;
            let complete = at_date.len() < asked;
            let later: Vec<Item> = at_date
                .into_iter()
                .filter(|item| item.doc.digest < cursor.digest)
                .collect();
            if complete || later.len() >= wanted {
                break later;
            }
            asked = asked.saturating_mul(2);
        };
        found.truncate(wanted);
        if found.len() < wanted {
            let older = self.dated(None, Some(cursor.date_ms));
            found.extend(self.run(&older, wanted - found.len())?);
        }
        Ok(found)
    }

    /// A page of at most `limit` items from `cursor` on, and the cursor after it when more
    /// follow.
    fn page(
        &self,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Item>, Option<Cursor>), RpcError> {
        // One more than the page: whether another page follows, without a call to find out.
        let wanted = limit + 1;
        let mut items = match cursor {
            None => self.run(self.query, wanted)?,
            Some(cursor) => self.after(cursor, wanted)?,
        };
        let more = items.len() > limit;
        items.truncate(limit);
        let next = items.last().filter(|_| more).map(Cursor::after);
        Ok((items, next))
    }
}

/// `discovery.search {query, as_of?, limit?, cursor?}`: `{query, time_zone, items, cursor}`,
/// the query's canonical text, the zone times are shown in, a page of items newest first and
/// the cursor of the next page (null after the last).
pub fn search(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    if let Some(refusal) = refused(caller, "discovery.search") {
        return Err(refusal);
    }
    params.only(&["query", "as_of", "limit", "cursor"])?;
    let ctx = caller.discovery;
    let text = params.text("query")?;
    let query = query::parse(text, ctx)
        .map_err(|e| RpcError::invalid_params(format!("Invalid params: query: {e}")))?;
    let as_of = as_of(params, &ctx.zone)?;
    let limit = limit(params)?;
    let cursor = params
        .optional_text("cursor")?
        .map(Cursor::parse)
        .transpose()?;
    let searching = Searching {
        storage: caller.storage,
        query: &query,
        ctx,
        as_of,
    };
    let (items, next) = searching.page(limit, cursor.as_ref())?;
    let zone = &ctx.zone;
    Ok(json!({
        "query": query.to_string(),
        "time_zone": zone.iana_name(),
        "as_of": as_of.map(|ms| time(ms, zone)),
        "items": items.iter().map(|i| summary(i, as_of, zone)).collect::<Vec<_>>(),
        "cursor": next.map(|c| c.text()),
    }))
}

/// `discovery.show {item, as_of?}`: the item (by digest or Message-ID) as a search lists it,
/// with its headers, text bodies, attachments, places and flag history as they stood at
/// `as_of` (now when absent); `false` when the archive holds no such item (or held none yet
/// at `as_of`).
pub fn show(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    if let Some(refusal) = refused(caller, "discovery.show") {
        return Err(refusal);
    }
    params.only(&["item", "as_of"])?;
    let name = params.text("item")?.trim();
    if name.is_empty() || name.len() > MAX_ITEM_NAME {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: item must be a digest or a Message-ID of at most {MAX_ITEM_NAME} bytes"
        )));
    }
    let zone = &caller.discovery.zone;
    let as_of = as_of(params, zone)?;
    let Some(doc) = item_doc(caller.storage, name)? else {
        return Ok(Value::Bool(false));
    };
    let state = state::state(caller.storage, &doc.digest).map_err(|e| {
        RpcError::internal(format!(
            "the history of item {} is unreadable: {e}",
            doc.digest
        ))
    })?;
    let item = Item { doc, state };
    if !item.state.existed_at(as_of) {
        return Ok(Value::Bool(false));
    }
    let mut shown = summary(&item, as_of, zone);
    shown["time_zone"] = json!(zone.iana_name());
    let (places, history) = history(&item, as_of, zone);
    shown["places"] = places;
    shown["flag_history"] = history;
    let payload = caller.storage.get_payload(&item.doc.digest)?;
    shown["payload_kept"] = json!(payload.is_some());
    if let Some(bytes) = payload {
        let message = bonnie_mail::parse(&bytes);
        shown["headers"] = message
            .headers
            .iter()
            .map(|h| json!({ "name": h.name, "value": h.value }))
            .collect();
        shown["bodies"] = message
            .bodies
            .iter()
            .map(|b| {
                json!({ "part": b.part, "media_type": b.media_type, "charset": b.charset, "text": b.text })
            })
            .collect();
        shown["attachments"] = message
            .attachments
            .iter()
            .map(|a| {
                json!({ "part": a.part, "name": a.name, "media_type": a.media_type, "size": a.size, "sha256": a.sha256 })
            })
            .collect();
        shown["warnings"] = json!(message.warnings);
    }
    Ok(shown)
}

/// The document of the item `name` names: a digest (64 hex digits, any case), else a
/// Message-ID (angle brackets added when left out; the oldest item when several carry it).
fn item_doc(storage: &StorageClient, name: &str) -> Result<Option<ItemDoc>, RpcError> {
    let record = if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        storage.get(ITEMS, &name.to_ascii_lowercase())?
    } else {
        let id = if name.starts_with('<') {
            name.to_string()
        } else {
            format!("<{name}>")
        };
        let query = RecordQuery {
            collection: ITEMS.to_string(),
            index: Some(("message_id".to_string(), id)),
            limit: 1,
            ..RecordQuery::default()
        };
        storage.query(&query)?.into_iter().next()
    };
    record
        .map(|r| {
            serde_json::from_str(r.body.as_str()).map_err(|e| {
                RpcError::internal(format!("the item document {} is unreadable: {e}", r.key))
            })
        })
        .transpose()
}

/// An item as a search lists it, as the mailboxes stood at `as_of` (now when `None`):
/// custodians are the owners of the folders it had been in by then, `folders` where it was
/// then (each by its owner and the name it had then), or, for an item
/// deleted by then, where it was last.
fn summary(item: &Item, as_of: Option<i64>, zone: &TimeZone) -> Value {
    let doc = &item.doc;
    let deleted = item.state.deleted_at(as_of);
    let folders: Vec<Value> = item
        .state
        .places_then(as_of)
        .iter()
        .map(|p| json!({ "user": p.user, "folder": p.name_at(as_of) }))
        .collect();
    json!({
        "digest": doc.digest,
        "type": doc.item_type,
        "date": time(doc.date_ms, zone),
        "message_id": doc.message_id,
        "subject": doc.subject,
        "from": doc.from,
        "to": doc.to,
        "cc": doc.cc,
        "bcc": doc.bcc,
        "custodians": item.state.custodians(as_of),
        "folders": folders,
        "size": doc.size,
        "has_attachment": doc.has_attachment,
        "filenames": doc.filenames,
        "deleted": deleted.is_some(),
        "deleted_at": deleted.map(|ms| time(ms, zone)),
        "backfilled": item.state.places.iter().any(|p| p.backfilled),
    })
}

/// The item's places and flag changes as they stood at `as_of` (now when `None`): the places
/// it had arrived in by then, ended only when they had ended by then, with the flags it had
/// there then; the flag changes made by then. A flag change names its place by its index in
/// the places shown.
fn history(item: &Item, as_of: Option<i64>, zone: &TimeZone) -> (Value, Value) {
    let by_then = |ms: i64| as_of.is_none_or(|t| ms <= t);
    let shown: Vec<usize> = (0..item.state.places.len())
        .filter(|&i| by_then(item.state.places[i].from_ms))
        .collect();
    let places = shown
        .iter()
        .map(|&i| {
            // As known then: no later rename, no later end.
            let p = &item.state.places[i].known_at(as_of);
            let ended = p.until_ms;
            json!({
                "user": p.user,
                "folder": p.folder,
                "name": p.name,
                "renamed_to": p.renamed_to,
                "uniqueid": p.uniqueid,
                "uidvalidity": p.uidvalidity,
                "uid": p.uid,
                "from": time(p.from_ms, zone),
                "until": ended.map(|ms| time(ms, zone)),
                "ended_by": ended.and(p.ended_by.as_deref()),
                "flags_on_arrival": p.flags_on_arrival,
                "flags": item.state.flags_at(i, as_of),
                "backfilled": p.backfilled,
                "restored_by": p.restored_by,
                "job": p.job,
            })
        })
        .collect();
    let history = item
        .state
        .flag_changes
        .iter()
        .filter(|c| by_then(c.time_ms))
        .filter_map(|c| {
            let place = shown.iter().position(|&i| i == c.place)?;
            Some(json!({
                "time": time(c.time_ms, zone),
                "place": place,
                "op": if c.set { "set" } else { "clear" },
                "flags": c.flags,
                "login": c.login,
                "job": c.job,
            }))
        })
        .collect();
    (places, history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_anything_else_is_refused() {
        let digest = "ab".repeat(32);
        let cursor = Cursor {
            date_ms: -5,
            digest: digest.clone(),
        };
        assert_eq!(Cursor::parse(&cursor.text()).unwrap(), cursor);
        for bad in [
            String::new(),
            digest.clone(),
            format!("x:{digest}"),
            format!("1:{}", digest.to_uppercase()),
            format!("1:{}", &digest[1..]),
            format!("1:{digest}0"),
            format!("99999999999999999999:{digest}"),
            format!("1:{}", "é".repeat(32)),
        ] {
            assert_eq!(Cursor::parse(&bad).unwrap_err().code, -32602, "{bad:?}");
        }
    }

    #[test]
    fn limits_are_whole_numbers_within_bounds() {
        let params = |v: Value| Params(json!({ "limit": v }).as_object().unwrap().clone());
        assert_eq!(limit(&Params::default()).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&params(Value::Null)).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&params(json!(1))).unwrap(), 1);
        assert_eq!(limit(&params(json!(MAX_LIMIT))).unwrap(), MAX_LIMIT);
        for bad in [
            json!(0),
            json!(-1),
            json!(MAX_LIMIT + 1),
            json!(1.5),
            json!("10"),
            json!(u64::MAX),
        ] {
            assert_eq!(
                limit(&params(bad.clone())).unwrap_err().code,
                -32602,
                "{bad}"
            );
        }
    }
}
