//! One message's way through the mail system: the queue files it had on each host, linked by
//! the `queued as` of a relay hop and by the notifications sent about it, built on demand
//! from the stitched facts.

use crate::event::{Delivery, NotificationKind};
use crate::facts::{QueueFacts, QueueKey, Timed};
use crate::queue_id::QueueId;
use crate::stitch::Stitcher;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A message's trace: its hops from the first queue file on, each after the one it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The first hop's Message-ID.
    pub message_id: Option<String>,
    /// The first hop's envelope sender.
    pub sender: Option<String>,
    /// Every queue file of the message, and of the notifications about it.
    pub hops: Vec<Hop>,
}

/// One queue file of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// Host, instance and queue ID.
    #[serde(flatten)]
    pub key: QueueKey,
    /// How the message got here.
    pub via: Via,
    /// What the logs told about this queue file.
    #[serde(flatten)]
    pub facts: QueueFacts,
}

/// How a hop's queue file came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Via {
    /// The first queue file the logs show.
    Origin,
    /// Relayed from `from`, whose delivery through `relay` said `queued as` this queue ID.
    Relay {
        /// The sending hop.
        from: QueueKey,
        /// The sending hop's `relay=`.
        relay: String,
    },
    /// A notification the bounce daemon queued about `of`.
    Notification {
        /// The message the notification is about.
        of: QueueKey,
        /// Which notification.
        kind: NotificationKind,
    },
}

impl Trace {
    /// The `SESSIONID`s of Cyrus's LMTP replies: the sessions that delivered the message
    /// into mailboxes, as the archive's MessageNew notifications name them.
    pub fn lmtp_session_ids(&self) -> Vec<&str> {
        self.hops
            .iter()
            .flat_map(|hop| &hop.facts.deliveries)
            .filter_map(|d| d.fact.lmtp_session_id.as_deref())
            .collect()
    }
}

impl Hop {
    /// Each recipient's delivery attempts, in time order.
    pub fn recipients(&self) -> BTreeMap<&str, Vec<&Timed<Delivery>>> {
        let mut recipients: BTreeMap<&str, Vec<&Timed<Delivery>>> = BTreeMap::new();
        for delivery in &self.facts.deliveries {
            recipients
                .entry(delivery.fact.recipient.as_str())
                .or_default()
                .push(delivery);
        }
        recipients
    }
}

/// The trace of the message whose queue files include `start`.
pub(crate) fn build(stitcher: &Stitcher, start: &QueueKey) -> Trace {
    let component = component(stitcher, start);
    let first_seen = |key: &QueueKey| {
        stitcher
            .queue(key)
            .and_then(|facts| facts.first_seen)
            .unwrap_or(Timestamp::MAX)
    };
    let has_parent: BTreeSet<QueueKey> = component
        .iter()
        .flat_map(|key| children(stitcher, key))
        .map(|(child, _)| child)
        .collect();
    let mut roots: Vec<&QueueKey> = component
        .iter()
        .filter(|key| !has_parent.contains(*key))
        .collect();
    if roots.is_empty() {
        // A loop of links (a mail loop between two instances): start at the earliest.
        roots = component.iter().collect();
    }
    roots.sort_by_key(|key| (first_seen(key), (*key).clone()));

    let mut placed: BTreeMap<QueueKey, Via> = BTreeMap::new();
    let mut order = Vec::new();
    for root in roots {
        if placed.contains_key(root) {
            continue;
        }
        placed.insert(root.clone(), Via::Origin);
        order.push(root.clone());
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(key) = queue.pop_front() {
            let mut next = children(stitcher, &key);
            next.sort_by_key(|(child, _)| (first_seen(child), child.clone()));
            for (child, via) in next {
                if component.contains(&child) && !placed.contains_key(&child) {
                    placed.insert(child.clone(), via);
                    order.push(child.clone());
                    queue.push_back(child);
                }
            }
        }
    }

    let hops: Vec<Hop> = order
        .into_iter()
        .map(|key| Hop {
            facts: stitcher.queue(&key).cloned().unwrap_or_default(),
            via: placed.remove(&key).unwrap_or(Via::Origin),
            key,
        })
        .collect();
    let first = hops.first().map(|hop| &hop.facts);
    Trace {
        message_id: first.and_then(|f| f.message_id.clone()),
        sender: first.and_then(|f| f.sender().map(str::to_owned)),
        hops,
    }
}

/// Every queue file linked to `start`, in either direction.
fn component(stitcher: &Stitcher, start: &QueueKey) -> BTreeSet<QueueKey> {
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(key) = queue.pop_front() {
        let forward = children(stitcher, &key).into_iter().map(|(child, _)| child);
        for next in forward.chain(parents(stitcher, &key)) {
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    seen
}

/// The queue files that `key`'s deliveries and notifications created, with how.
fn children(stitcher: &Stitcher, key: &QueueKey) -> Vec<(QueueKey, Via)> {
    let Some(facts) = stitcher.queue(key) else {
        return Vec::new();
    };
    let relays = facts.deliveries.iter().filter_map(|delivery| {
        let next = relay_target(stitcher, key, delivery)?;
        let via = Via::Relay {
            from: key.clone(),
            relay: delivery.fact.relay.clone(),
        };
        Some((next, via))
    });
    let notifications = facts.notifications.iter().filter_map(|notification| {
        let next = notification_key(key, &notification.fact.notification_id);
        stitcher.queue(&next)?;
        let via = Via::Notification {
            of: key.clone(),
            kind: notification.fact.kind,
        };
        Some((next, via))
    });
    relays.chain(notifications).collect()
}

/// The queue files whose deliveries or notifications created `key`.
fn parents(stitcher: &Stitcher, key: &QueueKey) -> Vec<QueueKey> {
    let senders = stitcher.keys_queued_as(&key.queue_id).filter(|sender| {
        stitcher.queue(sender).is_some_and(|facts| {
            facts
                .deliveries
                .iter()
                .any(|d| relay_target(stitcher, sender, d).as_ref() == Some(key))
        })
    });
    let originals = stitcher.keys_notifying(key);
    senders.chain(originals).cloned().collect()
}

/// The notification `notification_id` about `original`: queued in the same instance.
fn notification_key(original: &QueueKey, notification_id: &QueueId) -> QueueKey {
    QueueKey {
        host: original.host.clone(),
        instance: original.instance.clone(),
        queue_id: notification_id.clone(),
    }
}

/// How far from a relaying delivery the next hop's queue file may have been first seen: the
/// receiving side creates it while the message is sent, so only clock skew and a slow
/// transfer part them. A queue file with the same ID further away is another message (short
/// IDs repeat; a remote MTA's reply may look like one).
const RELAY_WINDOW: SignedDuration = SignedDuration::from_hours(1);

/// The queue file a delivery's `queued as` names. Queue IDs repeat across hosts (short IDs
/// also over time), so among the queue files with that ID first seen within [`RELAY_WINDOW`]
/// of the delivery, the one on the host `relay=` names wins, then the nearest in time.
fn relay_target(
    stitcher: &Stitcher,
    from: &QueueKey,
    delivery: &Timed<Delivery>,
) -> Option<QueueKey> {
    let next_id = delivery.fact.queued_as.as_ref()?;
    let at = delivery.at?;
    let relay_host = delivery.fact.relay.split('[').next().unwrap_or_default();
    let window = RELAY_WINDOW.as_nanos().unsigned_abs();
    stitcher
        .keys_with_queue_id(next_id)
        .filter(|candidate| *candidate != from)
        .filter_map(|candidate| {
            let first_seen = stitcher.queue(candidate)?.first_seen?;
            let distance = (at.as_nanosecond() - first_seen.as_nanosecond()).unsigned_abs();
            (distance <= window).then_some((
                !same_host(&candidate.host, relay_host),
                distance,
                candidate,
            ))
        })
        .min()
        .map(|(_, _, candidate)| candidate.clone())
}

/// Host names compared as `maillog_file` writes them, by their first label; addresses whole.
fn same_host(logged: &str, relay: &str) -> bool {
    if logged.is_empty() {
        return false;
    }
    if logged.eq_ignore_ascii_case(relay) {
        return true;
    }
    let is_address = |name: &str| name.parse::<std::net::IpAddr>().is_ok();
    let label = |name: &str| {
        name.split('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    !is_address(logged) && !is_address(relay) && label(logged) == label(relay)
}
