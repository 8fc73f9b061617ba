//! A search over a storage: the storage answers the content part of the query (relaxed to a
//! superset, [`relax::plan`]), each candidate gets its state from the log
//! ([`crate::state::state`]), and the whole query decides ([`evaluate::matches`]), at the
//! search's `as_of` time.
//!
//! # Paging
//!
//! A search with a limit asks the storage page by page, in the items' order (date, then
//! digest; newest first with `descending`), until the limit is filled or the storage has no
//! more: the residual (folders, users, flags, deletion) and the `as_of` time drop candidates
//! the storage cannot judge, so one page of `limit` candidates may give fewer items. The next
//! page starts at the last date seen (a date range added to the storage's query, the part of
//! the contract every storage answers), passing over the digests already seen at that date; a
//! page all at one date is asked again twice as large. Pages start at the limit and double up
//! to [`MAX_PAGE`], so a selective residual costs few round trips and a plain search reads
//! about what it returns. A search without a limit asks for every candidate at once (`all`).

use std::collections::HashSet;

use bonnie_model::{custodians, items::document};
use bonnie_plugin_api::{
    PluginError,
    items::{ExactField, ITEMS, ItemDoc, ItemQuery, RangeField},
    storage::{Record, RecordQuery, StorageClient},
};

use crate::{
    evaluate,
    item::{Item, ItemText},
    query::{Context, Query, Term},
    relax::{self, Plan},
    state,
};

/// The largest page of candidates asked of the storage at once.
pub const MAX_PAGE: usize = 1000;

/// How a search answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// Answer as the mailboxes stood at this time (ms since the epoch); their whole history
    /// when `None`.
    pub as_of: Option<i64>,
    /// At most this many items; every one when `None`.
    pub limit: Option<usize>,
    /// Newest first instead of oldest first (by date, then digest).
    pub descending: bool,
}

/// The items `query` matches, in date order (then digest), with their documents and states.
pub fn search(
    storage: &StorageClient,
    query: &Query,
    ctx: &Context,
    options: &SearchOptions,
) -> Result<Vec<Item>, DiscoveryError> {
    let mut plan = relax::plan(query, ctx);
    plan.storage = narrowed(storage, query, plan.storage)?;
    let search = Search {
        storage,
        plan: &plan,
        ctx,
        options,
    };
    match options.limit {
        None => search.everything(),
        Some(0) => Ok(Vec::new()),
        Some(limit) => search.paged(limit),
    }
}

/// The storage's query `items` narrowed to the payloads of the custodians the query's
/// top level asks for (`user:x`, or an OR of `user:` terms), where their custodian records
/// can say (`bonnie_model::custodians`): the search then reads those payloads' states, not
/// those of every item the rest matches. The residual still decides each item.
fn narrowed(
    storage: &StorageClient,
    query: &Query,
    items: ItemQuery,
) -> Result<ItemQuery, DiscoveryError> {
    let conjuncts = match query {
        Query::And(parts) => parts.iter().collect(),
        other => vec![other],
    };
    let mut all = match items {
        ItemQuery::And(parts) => parts,
        other => vec![other],
    };
    for conjunct in conjuncts {
        let users: Option<Vec<&str>> = match conjunct {
            Query::Term(Term::User(user)) => Some(vec![user.as_str()]),
            Query::Or(any) => any
                .iter()
                .map(|q| match q {
                    Query::Term(Term::User(user)) => Some(user.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let Some(users) = users else { continue };
        let mut digests = Vec::new();
        let mut known = true;
        for user in users {
            let held = custodians::digests(storage, user).map_err(DiscoveryError::storage(
                format!("reading the payloads of custodian {user}"),
            ))?;
            match held {
                Some(held) if known && digests.len() + held.len() <= custodians::MOST => {
                    digests.extend(held)
                }
                _ => known = false,
            }
        }
        if known {
            all.push(ItemQuery::Or(
                digests
                    .into_iter()
                    .map(|digest| ItemQuery::Exact {
                        field: ExactField::Digest,
                        value: digest,
                    })
                    .collect(),
            ));
        }
    }
    if all.len() > 1 {
        all.retain(|q| *q != ItemQuery::All);
    }
    Ok(match all.len() {
        1 => all.remove(0),
        _ => ItemQuery::And(all),
    })
}

/// One search under way.
struct Search<'a> {
    storage: &'a StorageClient,
    plan: &'a Plan,
    ctx: &'a Context,
    options: &'a SearchOptions,
}

/// A candidate the storage answered: its payload digest (the record's key) and document.
struct Candidate {
    digest: String,
    doc: ItemDoc,
}

impl Search<'_> {
    /// The candidates of the storage's query `items` (at most `page`, or every one).
    fn candidates(
        &self,
        items: ItemQuery,
        page: Option<usize>,
    ) -> Result<Vec<Candidate>, DiscoveryError> {
        let query = RecordQuery {
            collection: ITEMS.to_string(),
            items: Some(items),
            descending: self.options.descending,
            limit: page.map_or(0, |p| p as u32),
            all: page.is_none(),
            ..RecordQuery::default()
        };
        self.storage
            .query(&query)
            .map_err(DiscoveryError::storage(
                "searching the item documents".to_string(),
            ))?
            .iter()
            .map(candidate)
            .collect()
    }

    /// Every item the query matches.
    fn everything(&self) -> Result<Vec<Item>, DiscoveryError> {
        let mut found = Vec::new();
        for candidate in self.candidates(self.plan.storage.clone(), None)? {
            found.extend(self.decide(candidate)?);
        }
        Ok(found)
    }

    /// The first `limit` items the query matches, asked of the storage page by page.
    fn paged(&self, limit: usize) -> Result<Vec<Item>, DiscoveryError> {
        let mut found = Vec::new();
        let mut size = limit.min(MAX_PAGE);
        let mut page = size;
        // The date the next page starts at, and the digests already seen at that date.
        let mut boundary: Option<(i64, HashSet<String>)> = None;
        loop {
            let items = match &boundary {
                None => self.plan.storage.clone(),
                Some((date_ms, _)) => {
                    ItemQuery::And(vec![self.plan.storage.clone(), self.onward(*date_ms)])
                }
            };
            let candidates = self.candidates(items, Some(page))?;
            let full = candidates.len() >= page;
            let (Some(first), Some(last)) = (candidates.first(), candidates.last()) else {
                return Ok(found);
            };
            let last_ms = last.doc.date_ms;
            if full && first.doc.date_ms == last_ms {
                // A whole page at one date: the next could not start past it.
                page = page.saturating_mul(2);
                continue;
            }
            let at_last: Vec<String> = candidates
                .iter()
                .filter(|c| c.doc.date_ms == last_ms)
                .map(|c| c.digest.clone())
                .collect();
            for candidate in candidates {
                let seen = boundary.as_ref().is_some_and(|(date_ms, seen)| {
                    candidate.doc.date_ms == *date_ms && seen.contains(&candidate.digest)
                });
                if seen {
                    continue;
                }
                found.extend(self.decide(candidate)?);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
            if !full {
                return Ok(found);
            }
            let mut seen = match boundary.take() {
                Some((date_ms, seen)) if date_ms == last_ms => seen,
                _ => HashSet::new(),
            };
            seen.extend(at_last);
            boundary = Some((last_ms, seen));
            size = size.saturating_mul(2).min(MAX_PAGE);
            page = size;
        }
    }

    /// The items from `date_ms` on, in the search's direction (that date included).
    fn onward(&self, date_ms: i64) -> ItemQuery {
        let (from, to) = if self.options.descending {
            (None, Some(date_ms.saturating_add(1)))
        } else {
            (Some(date_ms), None)
        };
        ItemQuery::Range {
            field: RangeField::Date,
            from,
            to,
        }
    }

    /// The item, if the whole query matches the candidate at the search's time.
    fn decide(&self, candidate: Candidate) -> Result<Option<Item>, DiscoveryError> {
        let item = Item {
            state: state::state(self.storage, &candidate.digest)?,
            doc: candidate.doc,
        };
        let as_of = self.options.as_of;
        let Some(residual) = &self.plan.residual else {
            return Ok(item.state.existed_at(as_of).then_some(item));
        };
        let mut failed = None;
        let mut text = || match self.text(&item) {
            Ok(text) => text,
            Err(e) => {
                failed = Some(e);
                ItemText::default()
            }
        };
        let matched = evaluate::matches(residual, &item, &mut text, self.ctx, as_of);
        match failed {
            Some(e) => Err(e),
            None => Ok(matched.then_some(item)),
        }
    }

    /// The item's text, read again from its payload; none when the payload is no longer kept
    /// (retention purged it).
    fn text(&self, item: &Item) -> Result<ItemText, DiscoveryError> {
        let digest = &item.doc.digest;
        let bytes = self
            .storage
            .get_payload(digest)
            .map_err(DiscoveryError::storage(format!("reading payload {digest}")))?;
        Ok(bytes.map_or_else(ItemText::default, |bytes| {
            document(digest, &bytes, item.doc.date_ms).1
        }))
    }
}

/// The candidate a storage's item record holds.
fn candidate(record: &Record) -> Result<Candidate, DiscoveryError> {
    let doc: ItemDoc =
        serde_json::from_str(record.body.as_str()).map_err(|e| DiscoveryError::Unreadable {
            what: format!("the item document of payload {}", record.key),
            reason: e.to_string(),
        })?;
    Ok(Candidate {
        digest: record.key.to_string(),
        doc,
    })
}

/// Why a search, or the state of an item, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The storage failed a read.
    #[error("{what}: {source}")]
    Storage {
        /// What was being read (`reading the log entries of payload 3f…`).
        what: String,
        /// The storage's error.
        source: PluginError,
    },
    /// A stored record could not be read as what it should be.
    #[error("{what} is not readable: {reason}")]
    Unreadable {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
}

impl DiscoveryError {
    /// A storage failure while doing `what`, for `map_err`.
    pub(crate) fn storage(what: String) -> impl FnOnce(PluginError) -> DiscoveryError {
        move |source| DiscoveryError::Storage { what, source }
    }
}
