//! Holds placed from an e-discovery case: what the case's saved queries match among its
//! custodians' items, evaluated again at every plan and purge, so an item archived after the
//! hold was placed is held as soon as it matches.
//!
//! Such a hold covers every log entry of each item it matches: the entries that placed it (in
//! any folder, a non-custodian's too, so its history stays as the case found it), each of its
//! flag changes, and the entries that ended a place (an expunge, an expiry, a move out). Its
//! payload is kept with them, as a purge removes no payload a kept entry names.
//!
//! The hold keeps the queries in their canonical form, with the time zone and local domains
//! they were read in: what it holds does not change when `[discovery]` does.

use std::collections::HashSet;

use bonnie_discovery::{
    item::Item,
    query::{self, Context, Query, Term},
    search::{self, SearchOptions},
};
use bonnie_plugin_api::storage::StorageClient;
use serde::{Deserialize, Serialize};

use crate::RetentionError;

/// The criteria of a hold placed from a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryCriteria {
    /// The case's saved queries, each in canonical form (`bonnie_discovery::query`'s
    /// `Display`): an item matching any of them is held.
    pub queries: Vec<String>,
    /// The custodians (logins, lower case): only items that lived in a folder of theirs.
    pub custodians: Vec<String>,
    /// The IANA time zone the queries are read in.
    pub time_zone: String,
    /// The local domains `direction:` is read against.
    #[serde(default)]
    pub local_domains: Vec<String>,
}

impl DiscoveryCriteria {
    /// The context the queries are read in.
    pub fn context(&self) -> Result<Context, String> {
        let zone = jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| format!("its time zone {:?} is not known: {e}", self.time_zone))?;
        Ok(Context {
            zone,
            local_domains: self.local_domains.clone(),
        })
    }

    /// The one query the hold evaluates: any of its queries, of any of its custodians.
    pub fn query(&self, ctx: &Context) -> Result<Query, String> {
        if self.queries.is_empty() || self.custodians.is_empty() {
            return Err("it names no query or no custodian".to_string());
        }
        let queries = self
            .queries
            .iter()
            .map(|text| query::parse(text, ctx).map_err(|e| format!("its query {text:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(of_custodians(queries, &self.custodians))
    }

    /// The job ids of every log entry of every item the criteria match now.
    fn jobs(&self, storage: &StorageClient) -> Result<HashSet<String>, String> {
        let ctx = self.context()?;
        let query = self.query(&ctx)?;
        let items = search::search(storage, &query, &ctx, &SearchOptions::default())
            .map_err(|e| format!("its search failed: {e}"))?;
        Ok(items
            .iter()
            .flat_map(|item| item_jobs(item).map(str::to_string))
            .collect())
    }
}

/// Any of `queries`, restricted to the items that lived in a folder of one of `custodians`:
/// what a case takes (its items, its holds, its exports).
pub fn of_custodians(queries: Vec<Query>, custodians: &[String]) -> Query {
    let users = custodians
        .iter()
        .map(|login| Query::Term(Term::User(login.clone())))
        .collect();
    Query::And(vec![Query::Or(queries), Query::Or(users)])
}

/// The job ids of an item's log entries: each place's arrival and end, each flag change.
pub fn item_jobs(item: &Item) -> impl Iterator<Item = &str> {
    let state = &item.state;
    state
        .places
        .iter()
        .flat_map(|p| std::iter::once(p.job.as_str()).chain(p.ended_job.as_deref()))
        .chain(state.flag_changes.iter().map(|c| c.job.as_str()))
}

/// The entries a standing hold from a case keeps, read from the storage; an error naming the
/// case when its criteria cannot be evaluated (no purge runs on a guess).
pub(crate) fn held_jobs(
    case: &str,
    criteria: &DiscoveryCriteria,
    storage: &StorageClient,
) -> Result<HashSet<String>, RetentionError> {
    criteria.jobs(storage).map_err(|why| {
        RetentionError::Hold(format!(
            "the hold of case {case:?} cannot be evaluated, so nothing is planned or purged: {why}"
        ))
    })
}
