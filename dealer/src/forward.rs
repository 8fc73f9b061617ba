//! Moving spooled notifications to the broker in their original order: one spool, or every
//! spool of the folder that no other dealer holds. What the outcome means for the broker's
//! rest is the caller's to decide (`backoff`).

use std::{
    collections::HashSet,
    io,
    path::Path,
    time::{Duration, Instant},
};

use bonnie_core::config::DealerConfig;
use tracing::{info, warn};

use crate::{
    folder,
    spool::{Entry, Spool},
    submit::Broker,
};

/// Most notifications sent before waiting for their ACKs.
const WINDOW: usize = 512;

/// How a forwarding run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// The spool is empty.
    Emptied,
    /// The broker stopped answering; the rest stays spooled.
    BrokerDown,
    /// The time budget ran out.
    OutOfTime,
}

/// What a forwarding run achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Notifications the broker acknowledged (the broker answers if this is not 0).
    pub forwarded: usize,
    /// How it ended.
    pub result: Forwarded,
}

/// The spool a forwarding run reads. The daemon's own is behind a mutex, taken for each read
/// and each advance but never while waiting for the broker, so that its serving thread can
/// spool meanwhile.
pub trait Queue {
    /// Up to `max` entries from the head ([`Spool::peek`]).
    fn peek(&mut self, max: usize) -> io::Result<Vec<Entry>>;
    /// Marks everything before `offset` as acknowledged ([`Spool::advance`]).
    fn advance(&mut self, offset: u64) -> io::Result<()>;
    /// The spool's folder, for the log.
    fn dir(&self) -> &Path;
}

impl Queue for Spool {
    fn peek(&mut self, max: usize) -> io::Result<Vec<Entry>> {
        Spool::peek(self, max)
    }

    fn advance(&mut self, offset: u64) -> io::Result<()> {
        Spool::advance(self, offset)
    }

    fn dir(&self) -> &Path {
        Spool::dir(self)
    }
}

/// Sends spooled notifications, oldest first, until the spool is empty, the broker stops
/// answering within the ACK timeout, or `budget` (if any) passes. The first window is one
/// notification with a whole ACK timeout to answer, whatever the budget: a broker that does
/// not answer it is down (and is sent one copy, not a window of copies, to take later).
pub fn forward(
    spool: &mut impl Queue,
    broker: &Broker,
    config: &DealerConfig,
    budget: Option<Duration>,
) -> io::Result<Outcome> {
    let started = Instant::now();
    let ack_timeout = Duration::from_millis(config.ack_timeout_ms);
    let mut forwarded = 0usize;
    let mut first = true;
    let result = loop {
        if !first && budget.is_some_and(|b| started.elapsed() >= b) {
            break Forwarded::OutOfTime;
        }
        let entries = spool.peek(if first { 1 } else { WINDOW })?;
        if entries.is_empty() {
            break Forwarded::Emptied;
        }
        let waiting: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
        for entry in &entries {
            if broker.send(&entry.id, &entry.notification).is_err() {
                break;
            }
        }
        let whole = Instant::now() + ack_timeout;
        let deadline = match budget {
            Some(budget) if !first => whole.min(started + budget),
            _ => whole,
        };
        let acked = broker.acks(&waiting, deadline);
        // Only an acknowledged prefix may leave the spool, so order is kept; the broker
        // drops the resends of the rest by their ids.
        let done = entries.iter().take_while(|e| acked.contains(&e.id)).count();
        if done > 0 {
            spool.advance(entries[done - 1].end)?;
            forwarded += done;
        }
        if done < entries.len() {
            // No ACK at all within a whole ACK timeout: the broker is down. A wait the
            // budget cut short tells nothing.
            let silent = done == 0 && deadline == whole;
            if !silent && budget.is_some_and(|b| started.elapsed() >= b) {
                break Forwarded::OutOfTime;
            }
            break Forwarded::BrokerDown;
        }
        first = false;
    };
    if forwarded > 0 {
        info!(spool = %spool.dir().display(), notifications = forwarded, result = ?result,
            "Spooled notifications forwarded to the broker.");
    }
    Ok(Outcome { forwarded, result })
}

/// Forwards every spool of `folder` but `skip` that may hold notifications and whose lock
/// is free (a spool another dealer holds is that dealer's to forward), until the broker
/// stops answering or `budget` passes.
pub fn forward_others(
    folder: &Path,
    skip: Option<&Path>,
    broker: &Broker,
    config: &DealerConfig,
    budget: Option<Duration>,
) -> io::Result<Outcome> {
    let started = Instant::now();
    let mut forwarded = 0;
    for dir in folder::spools(folder)? {
        if skip == Some(dir.as_path()) || !folder::may_hold_notifications(folder, &dir) {
            continue;
        }
        let left = budget.map(|b| b.saturating_sub(started.elapsed()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(Outcome {
                forwarded,
                result: Forwarded::OutOfTime,
            });
        }
        let mut spool = match Spool::open_within(&dir, Some(Duration::ZERO)) {
            Ok(spool) => spool,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                warn!(spool = %dir.display(), error = %e, "Cannot open a spool to forward it.");
                continue;
            }
        };
        let outcome = forward(&mut spool, broker, config, left)?;
        forwarded += outcome.forwarded;
        if outcome.result != Forwarded::Emptied {
            return Ok(Outcome {
                forwarded,
                result: outcome.result,
            });
        }
    }
    Ok(Outcome {
        forwarded,
        result: Forwarded::Emptied,
    })
}
