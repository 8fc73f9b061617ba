//! Moving spooled notifications to the broker in their original order, and remembering for a
//! while that the broker did not answer, so that Cyrus is not slowed by waiting on it.

use std::{
    collections::HashSet,
    io,
    time::{Duration, Instant},
};

use bonnie_core::{config::DealerConfig, time::now_ms};
use tracing::{info, warn};

use crate::{spool::Spool, submit::Broker};

/// Most notifications sent before waiting for their ACKs.
const WINDOW: usize = 512;

/// Longest wait between tries of a broker that does not answer.
const MAX_BACKOFF_MS: i64 = 30_000;

/// What a forwarding run achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// The spool is empty.
    Emptied,
    /// The broker stopped answering; the rest stays spooled.
    BrokerDown,
    /// The time budget ran out.
    OutOfTime,
}

/// True if the broker failed recently and should not be tried yet.
pub fn broker_resting(spool: &Spool) -> bool {
    spool.broker_down().0 > now_ms()
}

/// Notes that the broker did not answer: rest it, for twice as long as last time.
pub fn rest_broker(spool: &Spool, config: &DealerConfig) {
    let (_, last) = spool.broker_down();
    let first = (config.retry_after_s as i64 * 1000).max(1);
    let backoff = if last > 0 {
        (last * 2).min(MAX_BACKOFF_MS)
    } else {
        first
    };
    if let Err(e) = spool.mark_broker_down(now_ms() + backoff, backoff) {
        warn!(error = %e, "Cannot note in the spool that the broker is down.");
    }
}

/// Sends spooled notifications, oldest first, until the spool is empty, the broker stops
/// answering within `ack_timeout`, or `budget` (if any) passes.
pub fn forward(
    spool: &mut Spool,
    broker: &Broker,
    config: &DealerConfig,
    budget: Option<Duration>,
) -> io::Result<Forwarded> {
    let started = Instant::now();
    let ack_timeout = Duration::from_millis(config.ack_timeout_ms);
    let mut forwarded = 0usize;
    loop {
        if budget.is_some_and(|b| started.elapsed() >= b) {
            return Ok(Forwarded::OutOfTime);
        }
        let entries = spool.peek(WINDOW)?;
        if entries.is_empty() {
            if forwarded > 0 {
                info!(notifications = forwarded, "Spool forwarded to the broker.");
            }
            spool.mark_broker_up()?;
            return Ok(Forwarded::Emptied);
        }
        let waiting: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
        for entry in &entries {
            if broker.send(&entry.id, &entry.notification).is_err() {
                break;
            }
        }
        let mut deadline = Instant::now() + ack_timeout;
        if let Some(budget) = budget {
            deadline = deadline.min(started + budget);
        }
        let acked = broker.acks(&waiting, deadline);
        // Only an acknowledged prefix may leave the spool, so order is kept; the broker
        // drops the resends of the rest by their ids.
        let done = entries.iter().take_while(|e| acked.contains(&e.id)).count();
        if done > 0 {
            spool.advance(entries[done - 1].end)?;
            forwarded += done;
        }
        if done < entries.len() {
            if budget.is_some_and(|b| started.elapsed() >= b) {
                return Ok(Forwarded::OutOfTime);
            }
            rest_broker(spool, config);
            if forwarded > 0 {
                info!(
                    notifications = forwarded,
                    "Part of the spool forwarded before the broker stopped answering."
                );
            }
            return Ok(Forwarded::BrokerDown);
        }
    }
}
