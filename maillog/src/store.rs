//! How the stitched facts are kept in bonnie's storage, shared by the handler that writes
//! them and the read side that traces with them: one record per queue file in collection
//! [`QUEUES`] (its [`QueueKey`] and merged [`QueueFacts`]), found by the index terms of
//! [`index_terms`], and one record per `NOQUEUE` verdict in [`UNQUEUED`]. Each record is
//! merged into with compare-and-swap, so the stored facts are those of one reader of all
//! the lines, whatever the order and the number of writers.

use crate::facts::{QueueFacts, QueueKey, Unqueued};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The collection of queue files' facts.
pub const QUEUES: &str = "postfix-queues";

/// The collection of `NOQUEUE` verdicts.
pub const UNQUEUED: &str = "postfix-noqueue";

/// Index term: the queue ID of the record's queue file.
pub const BY_QUEUE_ID: &str = "queue_id";
/// Index term: the Message-ID, without its angle brackets.
pub const BY_MESSAGE_ID: &str = "message_id";
/// Index term: a sender's or recipient's address, in lower case.
pub const BY_ADDRESS: &str = "address";
/// Index term: the queue ID a delivery's `queued as` names (the next hop's).
pub const BY_QUEUED_AS: &str = "queued_as";
/// Index term: the queue ID of a notification the bounce daemon queued about the message.
pub const BY_NOTIFICATION: &str = "notification";
/// Index term: a `SESSIONID` of Cyrus's LMTP reply.
pub const BY_LMTP_SESSION: &str = "lmtp_session";

/// One queue file's stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// The queue file.
    pub key: QueueKey,
    /// What the lines told about it so far.
    pub facts: QueueFacts,
}

/// The record key of a queue file: host, instance and queue ID.
pub fn record_key(key: &QueueKey) -> String {
    format!("{}/{}/{}", key.host, key.instance, key.queue_id)
}

/// The index terms a queue file's record is found by.
pub fn index_terms(key: &QueueKey, facts: &QueueFacts) -> BTreeSet<(&'static str, String)> {
    let mut terms = BTreeSet::from([(BY_QUEUE_ID, key.queue_id.to_string())]);
    if let Some(message_id) = &facts.message_id {
        terms.insert((BY_MESSAGE_ID, bare_message_id(message_id).to_owned()));
    }
    let recipients = facts.deliveries.iter().flat_map(|d| {
        std::iter::once(d.fact.recipient.as_str()).chain(d.fact.orig_recipient.as_deref())
    });
    for address in facts.sender().into_iter().chain(recipients) {
        if !address.is_empty() {
            terms.insert((BY_ADDRESS, address.to_lowercase()));
        }
    }
    for delivery in &facts.deliveries {
        if let Some(next) = &delivery.fact.queued_as {
            terms.insert((BY_QUEUED_AS, next.to_string()));
        }
        if let Some(session) = &delivery.fact.lmtp_session_id {
            terms.insert((BY_LMTP_SESSION, session.clone()));
        }
    }
    for notification in &facts.notifications {
        terms.insert((
            BY_NOTIFICATION,
            notification.fact.notification_id.to_string(),
        ));
    }
    terms
}

/// The index terms of a `NOQUEUE` verdict: its sender and recipient addresses.
pub fn unqueued_terms(unqueued: &Unqueued) -> BTreeSet<(&'static str, String)> {
    [&unqueued.verdict.sender, &unqueued.verdict.recipient]
        .into_iter()
        .flatten()
        .filter(|a| !a.is_empty())
        .map(|a| (BY_ADDRESS, a.to_lowercase()))
        .collect()
}

/// A Message-ID without its angle brackets, as it is indexed and looked up.
pub fn bare_message_id(message_id: &str) -> &str {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
}
