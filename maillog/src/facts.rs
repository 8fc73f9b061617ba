//! What the logs told about one queue file on one host, as a value that merges: each line is
//! a one-fact [`QueueFacts`], and any number of them merged in any order, by any number of
//! workers, give the same value.

use crate::event::{ClientInfo, Delivery, Event, NotificationKind, Program, Verdict};
use crate::queue_id::QueueId;
use crate::syslog::SyslogLine;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One queue file: queue IDs are unique only within one instance's queue on one host.
/// Ordered by queue ID first: IDs differ where hosts and instances repeat, so look-ups in
/// maps of keys decide on the first field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueKey {
    /// The queue ID.
    pub queue_id: QueueId,
    /// The logging host as its lines name it (empty if they name none).
    pub host: String,
    /// The Postfix instance (the first part of its `syslog_name`).
    pub instance: String,
}

/// A fact with the time of the line that told it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timed<T> {
    /// When the line was logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// What it said.
    #[serde(flatten)]
    pub fact: T,
}

/// pickup's record of a locally submitted message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pickup {
    /// The submitting user's uid.
    pub uid: u32,
    /// The envelope sender.
    pub sender: String,
}

/// qmgr's view of the message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Envelope {
    /// The envelope sender (empty for a notification).
    pub sender: String,
    /// Size in bytes.
    pub size: u64,
    /// Number of recipients.
    pub nrcpt: u32,
}

/// qmgr's giving up on the message after `maximal_queue_lifetime`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Expiry {
    /// The envelope sender the message is returned to.
    pub sender: String,
}

/// A notification the bounce daemon queued about this message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Notification {
    /// Which one.
    pub kind: NotificationKind,
    /// Its queue ID, in the same instance.
    pub notification_id: QueueId,
}

/// Everything the logs told about one queue file. The merge is a union of sets and, for each
/// single-valued field, the least value seen (Postfix logs each of them once per queue file,
/// or again with the same value when the message re-enters the active queue), so it is
/// commutative, associative and idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFacts {
    /// The earliest line about the queue file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// The latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// smtpd's `client=`: who handed the message in, and their SASL login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Timed<ClientInfo>>,
    /// pickup's `uid= from=`, for mail submitted with `sendmail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<Timed<Pickup>>,
    /// cleanup's `message-id=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// qmgr's `from= size= nrcpt=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
    /// Each delivery attempt's outcome, in time order.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub deliveries: BTreeSet<Timed<Delivery>>,
    /// Notifications (bounces, delay warnings, success DSNs) about this message.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub notifications: BTreeSet<Timed<Notification>>,
    /// Rejects, holds, discards and warnings of milters and content checks.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub verdicts: BTreeSet<Timed<Verdict>>,
    /// When qmgr gave up on the message (`status=expired, returned to sender`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<Timed<Expiry>>,
    /// When the queue file was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Timestamp>,
}

/// A `NOQUEUE` verdict: a rejected recipient or client, with no queue file to belong to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unqueued {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The logging host.
    pub host: String,
    /// The Postfix instance.
    pub instance: String,
    /// The decision.
    pub verdict: Verdict,
}

/// What one line contributes to the stitched state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFacts {
    /// A fact about a queue file (boxed: a queue file's facts are large beside a verdict).
    Queue(QueueKey, Box<QueueFacts>),
    /// A verdict that no queue file has.
    Unqueued(Unqueued),
}

impl LineFacts {
    /// The facts in `event`, which `program` logged in the line `frame`; `None` for events
    /// that say nothing about a message (connects, postscreen, diagnostics, unknown lines).
    pub fn of(frame: &SyslogLine, program: &Program, event: &Event) -> Option<LineFacts> {
        let at = frame.time;
        let host = frame.host.clone().unwrap_or_default();
        let mut facts = QueueFacts {
            first_seen: at,
            last_seen: at,
            ..QueueFacts::default()
        };
        let queue_id = match event {
            Event::Client { queue_id, client } => {
                facts.client = Some(Timed {
                    at,
                    fact: client.clone(),
                });
                queue_id
            }
            Event::Pickup {
                queue_id,
                uid,
                sender,
            } => {
                facts.pickup = Some(Timed {
                    at,
                    fact: Pickup {
                        uid: *uid,
                        sender: sender.clone(),
                    },
                });
                queue_id
            }
            Event::MessageId {
                queue_id,
                message_id,
            } => {
                facts.message_id = Some(message_id.clone());
                queue_id
            }
            Event::Queued {
                queue_id,
                sender,
                size,
                nrcpt,
            } => {
                facts.envelope = Some(Envelope {
                    sender: sender.clone(),
                    size: *size,
                    nrcpt: *nrcpt,
                });
                queue_id
            }
            Event::Removed { queue_id } => {
                facts.removed = at;
                queue_id
            }
            Event::Expired { queue_id, sender } => {
                facts.expired = Some(Timed {
                    at,
                    fact: Expiry {
                        sender: sender.clone(),
                    },
                });
                queue_id
            }
            Event::Delivery { queue_id, delivery } => {
                facts.deliveries.insert(Timed {
                    at,
                    fact: delivery.clone(),
                });
                queue_id
            }
            Event::Notification {
                queue_id,
                kind,
                notification_id,
            } => {
                facts.notifications.insert(Timed {
                    at,
                    fact: Notification {
                        kind: *kind,
                        notification_id: notification_id.clone(),
                    },
                });
                queue_id
            }
            Event::Verdict {
                queue_id: Some(queue_id),
                verdict,
            } => {
                facts.verdicts.insert(Timed {
                    at,
                    fact: verdict.clone(),
                });
                queue_id
            }
            Event::Verdict {
                queue_id: None,
                verdict,
            } => {
                return Some(LineFacts::Unqueued(Unqueued {
                    at,
                    host,
                    instance: program.instance.clone(),
                    verdict: verdict.clone(),
                }));
            }
            Event::Connect { .. }
            | Event::Disconnect { .. }
            | Event::PostscreenConnect { .. }
            | Event::PostscreenPass { .. }
            | Event::PostscreenDnsbl { .. }
            | Event::Diagnostic { .. }
            | Event::Unknown { .. } => return None,
        };
        let key = QueueKey {
            host,
            instance: program.instance.clone(),
            queue_id: queue_id.clone(),
        };
        Some(LineFacts::Queue(key, Box::new(facts)))
    }
}

impl QueueFacts {
    /// Adds everything `other` knows.
    pub fn merge(&mut self, other: QueueFacts) {
        self.first_seen = least(self.first_seen, other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        merge_least(&mut self.client, other.client);
        merge_least(&mut self.pickup, other.pickup);
        merge_least(&mut self.message_id, other.message_id);
        merge_least(&mut self.envelope, other.envelope);
        self.deliveries.extend(other.deliveries);
        self.notifications.extend(other.notifications);
        self.verdicts.extend(other.verdicts);
        merge_least(&mut self.expired, other.expired);
        self.removed = least(self.removed, other.removed);
    }

    /// The envelope sender, from qmgr's `from=` lines or else from pickup.
    pub fn sender(&self) -> Option<&str> {
        let envelope = self.envelope.as_ref().map(|e| e.sender.as_str());
        let expiry = self.expired.as_ref().map(|e| e.fact.sender.as_str());
        let pickup = self.pickup.as_ref().map(|p| p.fact.sender.as_str());
        envelope.or(expiry).or(pickup)
    }
}

/// The lesser of two optional values, where a missing one is no value (not the least).
fn least<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn merge_least<T: Ord>(slot: &mut Option<T>, other: Option<T>) {
    if let Some(other) = other
        && slot.as_ref().is_none_or(|current| other < *current)
    {
        *slot = Some(other);
    }
}
