//! A query split between the storage and the searching side: the [`ItemQuery`] the storage
//! answers, which holds every item the whole query matches (and perhaps more), and the
//! residual the searching side decides on each item the storage returns.
//!
//! The storage decides exactly the text, exact-value, range and attachment terms and
//! `direction:inbound` (no From domain local: `NOT from_domain IN local`). It cannot decide
//! what the log knows (`folder:`, `user:`, `flag:`, `deleted:`), nor the other directions,
//! which need "a recipient domain is not local" or "every one is": for those it is given a
//! bound in the direction that keeps its answer a superset, by the term's polarity (an upper
//! bound where the term is asserted, a lower one under a negation). The upper bound of a log
//! term is [`ItemQuery::All`], its lower bound [`ItemQuery::Nothing`]; `outbound` and
//! `internal` are bounded above by "a From domain local" (and, for `internal`, "a recipient
//! domain local") and below by nothing.
//!
//! The query's top-level conjuncts the storage decides exactly go to it as they are, and the
//! residual is only the rest (`None` when nothing is left: the storage's answer is the
//! answer). The searching side still checks that each item existed at the search's `as_of`
//! time (see [`crate::evaluate::matches`]), which no storage knows.
//!
//! The storage's query is simplified: `All` and `Nothing` absorbed (`x AND All` is `x`,
//! `x OR All` is `All`), an `And` or `Or` of one is that one, nested ones of the same kind
//! are flattened, a double negation cancels.

#[cfg(test)]
mod tests;

use bonnie_plugin_api::items::{ExactField, ItemQuery};

use crate::{
    evaluate::{local_domains, needs_text},
    query::{Context, Direction, Query, Term},
};

/// A query split between the storage and the searching side.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What the storage answers: a superset of the items the query matches.
    pub storage: ItemQuery,
    /// What the searching side decides on the storage's answer; `None` when the storage's
    /// answer is the answer.
    pub residual: Option<Query>,
    /// True if the residual has a body or bare-word term: deciding it needs the item's text
    /// (read again from its payload).
    pub needs_text: bool,
}

/// The plan of `query` (see the module documentation).
pub fn plan(query: &Query, ctx: &Context) -> Plan {
    let mut conjuncts = Vec::new();
    collect_conjuncts(query, &mut conjuncts);
    let bounds = Bounds {
        local_domains: local_domains(ctx),
    };
    let storage = all_of(conjuncts.iter().map(|q| bounds.upper(q)).collect());
    let rest: Vec<&Query> = conjuncts
        .into_iter()
        .filter(|q| !storage_decides(q))
        .collect();
    let residual = match rest.as_slice() {
        [] => None,
        [only] => Some((*only).clone()),
        _ => Some(Query::And(rest.iter().map(|q| (*q).clone()).collect())),
    };
    let needs_text = residual.as_ref().is_some_and(has_text_term);
    Plan {
        storage,
        residual,
        needs_text,
    }
}

/// The conjuncts of `query`: its parts if it is an AND (nested ones flattened), else itself.
fn collect_conjuncts<'a>(query: &'a Query, into: &mut Vec<&'a Query>) {
    match query {
        Query::And(parts) => parts.iter().for_each(|p| collect_conjuncts(p, into)),
        other => into.push(other),
    }
}

/// True if the storage decides `query` exactly.
fn storage_decides(query: &Query) -> bool {
    match query {
        Query::All => true,
        Query::And(parts) | Query::Or(parts) => parts.iter().all(storage_decides),
        Query::Not(inner) => storage_decides(inner),
        Query::Term(term) => matches!(
            term,
            Term::Text { .. }
                | Term::Exact { .. }
                | Term::Range { .. }
                | Term::HasAttachment
                | Term::Direction(Direction::Inbound)
        ),
    }
}

/// True if `query` has a term that needs the item's text.
fn has_text_term(query: &Query) -> bool {
    match query {
        Query::All => false,
        Query::And(parts) | Query::Or(parts) => parts.iter().any(has_text_term),
        Query::Not(inner) => has_text_term(inner),
        Query::Term(Term::Text { field, .. }) => needs_text(*field),
        Query::Term(_) => false,
    }
}

/// The storage's bounds of a query, against the local domains in lower case.
struct Bounds {
    local_domains: Vec<String>,
}

impl Bounds {
    /// An item query matching every item `query` matches.
    fn upper(&self, query: &Query) -> ItemQuery {
        self.bound(query, true)
    }

    /// An item query matching only items `query` matches (`upper` false), or every one it
    /// matches (`upper` true).
    fn bound(&self, query: &Query, upper: bool) -> ItemQuery {
        match query {
            Query::All => ItemQuery::All,
            Query::And(parts) => all_of(parts.iter().map(|p| self.bound(p, upper)).collect()),
            Query::Or(parts) => any_of(parts.iter().map(|p| self.bound(p, upper)).collect()),
            Query::Not(inner) => negation(self.bound(inner, !upper)),
            Query::Term(term) => self.term(term, upper),
        }
    }

    fn term(&self, term: &Term, upper: bool) -> ItemQuery {
        let undecided = if upper {
            ItemQuery::All
        } else {
            ItemQuery::Nothing
        };
        match term {
            Term::Text { field, text } => ItemQuery::Text {
                field: *field,
                text: text.clone(),
            },
            Term::Exact { field, value } => ItemQuery::Exact {
                field: *field,
                value: value.clone(),
            },
            Term::Range { field, from, to } => ItemQuery::Range {
                field: *field,
                from: *from,
                to: *to,
            },
            Term::HasAttachment => ItemQuery::HasAttachment,
            Term::Direction(Direction::Inbound) => {
                negation(self.domain_local(ExactField::FromDomain))
            }
            Term::Direction(_) if !upper => undecided,
            Term::Direction(Direction::Outbound) => self.domain_local(ExactField::FromDomain),
            Term::Direction(Direction::Internal) => all_of(vec![
                self.domain_local(ExactField::FromDomain),
                self.domain_local(ExactField::RecipientDomain),
            ]),
            Term::Folder(_) | Term::User(_) | Term::Flag(_) | Term::Deleted(_) => undecided,
        }
    }

    /// Items with a local domain in `field`.
    fn domain_local(&self, field: ExactField) -> ItemQuery {
        any_of(
            self.local_domains
                .iter()
                .map(|domain| ItemQuery::Exact {
                    field,
                    value: domain.clone(),
                })
                .collect(),
        )
    }
}

/// Items matching all of `parts`, simplified.
fn all_of(parts: Vec<ItemQuery>) -> ItemQuery {
    combined(parts, true)
}

/// Items matching any of `parts`, simplified.
fn any_of(parts: Vec<ItemQuery>) -> ItemQuery {
    combined(parts, false)
}

/// The AND (`conjunction`) or OR of `parts`: without its neutral parts (`All` in an AND), the
/// absorbing one (`Nothing` in an AND) if it is there, nested ones of the same kind flattened,
/// one part as itself.
fn combined(parts: Vec<ItemQuery>, conjunction: bool) -> ItemQuery {
    let (neutral, absorbing) = match conjunction {
        true => (ItemQuery::All, ItemQuery::Nothing),
        false => (ItemQuery::Nothing, ItemQuery::All),
    };
    let mut kept = Vec::new();
    for part in parts {
        match part {
            _ if part == neutral => {}
            _ if part == absorbing => return absorbing,
            ItemQuery::And(inner) if conjunction => kept.extend(inner),
            ItemQuery::Or(inner) if !conjunction => kept.extend(inner),
            other => kept.push(other),
        }
    }
    match (kept.len(), conjunction) {
        (0, _) => neutral,
        (1, _) => kept.remove(0),
        (_, true) => ItemQuery::And(kept),
        (_, false) => ItemQuery::Or(kept),
    }
}

/// Items not matching `inner`, simplified.
fn negation(inner: ItemQuery) -> ItemQuery {
    match inner {
        ItemQuery::All => ItemQuery::Nothing,
        ItemQuery::Nothing => ItemQuery::All,
        ItemQuery::Not(inner) => *inner,
        other => ItemQuery::Not(Box::new(other)),
    }
}
