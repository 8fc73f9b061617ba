//! The stitched state in memory: every queue file's merged facts, the `NOQUEUE` verdicts,
//! the counts of lines read, and the indexes that find a message by Message-ID, queue ID or
//! address. A store keeps the same [`QueueFacts`] per [`QueueKey`] and merges them the same
//! way; the indexes and traces are derived and can be rebuilt from the facts.

use crate::ParsedLine;
use crate::event::Event;
use crate::facts::{LineFacts, QueueFacts, QueueKey, Unqueued};
use crate::queue_id::QueueId;
use crate::trace::{self, Trace};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

/// How many lines went in, and how many of them were not understood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines ingested.
    pub lines: u64,
    /// Lines from Postfix programs.
    pub postfix: u64,
    /// Postfix lines of a form not modelled (`Event::Unknown`).
    pub unknown: u64,
    /// Lines from other programs, or without a syslog frame.
    pub not_postfix: u64,
}

/// Stitches lines into traces; lines may come in any order, from any number of hosts, and
/// two stitchers that saw parts of the same logs merge into one that saw all of them.
#[derive(Debug, Clone, Default)]
pub struct Stitcher {
    queues: BTreeMap<QueueKey, QueueFacts>,
    unqueued: BTreeSet<Unqueued>,
    counts: LineCounts,
    by_queue_id: BTreeMap<QueueId, BTreeSet<QueueKey>>,
    by_message_id: BTreeMap<String, BTreeSet<QueueKey>>,
    by_address: BTreeMap<String, BTreeSet<QueueKey>>,
    /// Queue files whose deliveries say `queued as` the key's queue ID: the way back from a
    /// relay hop to the hop before it.
    queued_as_from: BTreeMap<QueueId, BTreeSet<QueueKey>>,
    /// The messages a notification's queue file is about.
    notified_from: BTreeMap<QueueKey, BTreeSet<QueueKey>>,
}

impl Stitcher {
    /// An empty state.
    pub fn new() -> Stitcher {
        Stitcher::default()
    }

    /// Takes in one parsed line.
    pub fn ingest(&mut self, line: &ParsedLine) {
        self.counts.lines += 1;
        let Some(program) = &line.program else {
            self.counts.not_postfix += 1;
            return;
        };
        self.counts.postfix += 1;
        if matches!(line.event, Event::Unknown { .. }) {
            self.counts.unknown += 1;
        }
        match LineFacts::of(&line.frame, program, &line.event) {
            Some(LineFacts::Queue(key, facts)) => self.merge_queue(key, *facts),
            Some(LineFacts::Unqueued(unqueued)) => {
                self.unqueued.insert(unqueued);
            }
            None => {}
        }
    }

    /// Adds facts about one queue file, as a store would when two workers' facts meet.
    pub fn merge_queue(&mut self, key: QueueKey, facts: QueueFacts) {
        let known = self.queues.contains_key(&key);
        self.index(&key, &facts, known);
        match self.queues.get_mut(&key) {
            Some(existing) => existing.merge(facts),
            None => {
                self.queues.insert(key, facts);
            }
        }
    }

    /// Adds everything `other` saw.
    pub fn merge(&mut self, other: &Stitcher) {
        for (key, facts) in &other.queues {
            self.merge_queue(key.clone(), facts.clone());
        }
        self.unqueued.extend(other.unqueued.iter().cloned());
        self.counts.lines += other.counts.lines;
        self.counts.postfix += other.counts.postfix;
        self.counts.unknown += other.counts.unknown;
        self.counts.not_postfix += other.counts.not_postfix;
    }

    /// The counts of lines read.
    pub fn counts(&self) -> LineCounts {
        self.counts
    }

    /// Every queue file's facts.
    pub fn queues(&self) -> &BTreeMap<QueueKey, QueueFacts> {
        &self.queues
    }

    /// One queue file's facts.
    pub fn queue(&self, key: &QueueKey) -> Option<&QueueFacts> {
        self.queues.get(key)
    }

    /// The traces of the messages with this Message-ID (with or without its angle brackets).
    pub fn traces_by_message_id(&self, message_id: &str) -> Vec<Trace> {
        let bare = message_id.trim_start_matches('<').trim_end_matches('>');
        let keys = [bare.to_owned(), format!("<{bare}>")]
            .iter()
            .filter_map(|id| self.by_message_id.get(id))
            .flatten()
            .cloned()
            .collect();
        self.traces_of(keys)
    }

    /// The traces of the messages that had this queue ID on any host.
    pub fn traces_by_queue_id(&self, queue_id: &str) -> Vec<Trace> {
        let keys = QueueId::parse(queue_id)
            .and_then(|id| self.by_queue_id.get(&id))
            .cloned()
            .unwrap_or_default();
        self.traces_of(keys)
    }

    /// The traces of the messages this address sent or received (case-insensitive).
    pub fn traces_by_address(&self, address: &str) -> Vec<Trace> {
        let keys = self
            .by_address
            .get(&address.to_lowercase())
            .cloned()
            .unwrap_or_default();
        self.traces_of(keys)
    }

    /// The `NOQUEUE` verdicts (rejected before a queue file existed) that name this address
    /// as sender or recipient.
    pub fn unqueued_by_address(&self, address: &str) -> Vec<&Unqueued> {
        let address = address.to_lowercase();
        self.unqueued
            .iter()
            .filter(|u| {
                [&u.verdict.sender, &u.verdict.recipient]
                    .into_iter()
                    .flatten()
                    .any(|a| a.to_lowercase() == address)
            })
            .collect()
    }

    /// The trace of the message that had the queue file `key`, if it is known.
    pub fn trace(&self, key: &QueueKey) -> Option<Trace> {
        self.queues
            .contains_key(key)
            .then(|| trace::build(self, key))
    }

    /// The queue files with this ID, on every host and instance.
    pub(crate) fn keys_with_queue_id(&self, queue_id: &QueueId) -> impl Iterator<Item = &QueueKey> {
        self.by_queue_id.get(queue_id).into_iter().flatten()
    }

    /// The queue files whose deliveries name `queue_id` as `queued as`.
    pub(crate) fn keys_queued_as(&self, queue_id: &QueueId) -> impl Iterator<Item = &QueueKey> {
        self.queued_as_from.get(queue_id).into_iter().flatten()
    }

    /// The queue files that queued the notification `key`.
    pub(crate) fn keys_notifying(&self, key: &QueueKey) -> impl Iterator<Item = &QueueKey> {
        self.notified_from.get(key).into_iter().flatten()
    }

    fn traces_of(&self, keys: BTreeSet<QueueKey>) -> Vec<Trace> {
        let mut seen = BTreeSet::new();
        let mut traces = Vec::new();
        for key in keys {
            if seen.contains(&key) {
                continue;
            }
            let trace = trace::build(self, &key);
            seen.extend(trace.hops.iter().map(|hop| hop.key.clone()));
            traces.push(trace);
        }
        traces
    }

    /// Indexes what `facts` add about `key`; a `known` key is already under its queue ID.
    fn index(&mut self, key: &QueueKey, facts: &QueueFacts, known: bool) {
        if !known {
            add_to(&mut self.by_queue_id, &key.queue_id, key);
        }
        if let Some(message_id) = &facts.message_id {
            add_to(&mut self.by_message_id, message_id.as_str(), key);
        }
        let senders = facts.sender().into_iter();
        let recipients = facts.deliveries.iter().flat_map(|d| {
            std::iter::once(d.fact.recipient.as_str()).chain(d.fact.orig_recipient.as_deref())
        });
        for address in senders.chain(recipients) {
            if address.bytes().any(|b| b.is_ascii_uppercase()) || !address.is_ascii() {
                add_to(&mut self.by_address, address.to_lowercase().as_str(), key);
            } else if !address.is_empty() {
                add_to(&mut self.by_address, address, key);
            }
        }
        for notification in &facts.notifications {
            let notification_key = QueueKey {
                queue_id: notification.fact.notification_id.clone(),
                ..key.clone()
            };
            self.notified_from
                .entry(notification_key)
                .or_default()
                .insert(key.clone());
        }
        for delivery in &facts.deliveries {
            if let Some(next) = &delivery.fact.queued_as {
                add_to(&mut self.queued_as_from, next, key);
            }
        }
    }
}

/// Adds `key` under `name`, allocating only for what is new: most lines repeat both.
fn add_to<Name, Borrowed>(
    index: &mut BTreeMap<Name, BTreeSet<QueueKey>>,
    name: &Borrowed,
    key: &QueueKey,
) where
    Name: Ord + Borrow<Borrowed>,
    Borrowed: Ord + ToOwned<Owned = Name> + ?Sized,
{
    match index.get_mut(name) {
        Some(keys) => {
            if !keys.contains(key) {
                keys.insert(key.clone());
            }
        }
        None => {
            index.insert(name.to_owned(), BTreeSet::from([key.clone()]));
        }
    }
}
