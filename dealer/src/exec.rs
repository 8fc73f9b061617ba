//! Exec mode: Cyrus's notifyd runs the dealer once per event with the notification on stdin
//! and waits for it to exit. The notification reaches the broker (ACK) or the local spool
//! (synced) within the ACK timeout; what was spooled before goes first, to keep the order.

use std::{io::Read, time::Duration};

use anyhow::Context as _;
use bonnie_core::config::DealerConfig;
use tracing::{debug, info, warn};

use crate::{
    forward::{self, Forwarded},
    rules::DropRules,
    spool::Spool,
    submit::{self, Broker},
};

/// Reads the notification from stdin (all of it, whatever the bytes) and delivers it.
pub fn deliver_stdin(config: &DealerConfig) -> anyhow::Result<()> {
    let mut notification = Vec::new();
    std::io::stdin()
        .read_to_end(&mut notification)
        .context("cannot read the notification from stdin")?;
    // notifyd ends the JSON with a newline; it is not part of the notification.
    while notification
        .last()
        .is_some_and(|b| *b == b'\n' || *b == b'\r')
    {
        notification.pop();
    }
    if notification.is_empty() {
        warn!("No notification on stdin; nothing to deliver.");
        return Ok(());
    }
    deliver(config, &notification)
}

/// Delivers one notification.
pub fn deliver(config: &DealerConfig, notification: &[u8]) -> anyhow::Result<()> {
    if let Some(reason) = DropRules::new(config).drops(notification) {
        debug!(reason = %reason, "Notification dropped by a drop rule.");
        return Ok(());
    }
    let id = submit::new_id();
    let timeout = Duration::from_millis(config.ack_timeout_ms);
    let mut spool = match Spool::open_within(&config.spool_dir, Some(timeout)) {
        Ok(spool) => spool,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            // Another dealer holds the spool: never wait on it longer than the ACK timeout.
            Spool::write_side(&config.spool_dir, &id, notification)
                .context("cannot write to the spool")?;
            debug!(id = %id, "Spool busy; notification written beside it.");
            return Ok(());
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot open the spool {}", config.spool_dir.display()));
        }
    };
    let broker = Broker::connect(&config.broker_address, &config.host_name());
    let resting = forward::broker_resting(&spool);

    if spool.is_empty()? && !resting {
        if let Ok(broker) = &broker
            && broker.submit(&id, notification, timeout)
        {
            spool.mark_broker_up()?;
            return Ok(());
        }
        spool
            .append(&[(&id, notification)])
            .context("cannot write to the spool")?;
        forward::rest_broker(&spool, config);
        warn!(id = %id, broker = %config.broker_address, "The broker did not acknowledge in time; notification spooled.");
        return Ok(());
    }

    spool
        .append(&[(&id, notification)])
        .context("cannot write to the spool")?;
    debug!(id = %id, "Notification spooled behind earlier ones.");
    if let (Ok(broker), false) = (&broker, resting) {
        match forward::forward(&mut spool, broker, config, Some(timeout))? {
            Forwarded::Emptied => info!("The broker is back; the spool is empty again."),
            Forwarded::BrokerDown | Forwarded::OutOfTime => {}
        }
    }
    Ok(())
}

/// `--flush`: forwards the whole spool now, however long it takes; an error if the broker
/// stops answering before the spool is empty.
pub fn flush(config: &DealerConfig) -> anyhow::Result<()> {
    let broker = Broker::connect(&config.broker_address, &config.host_name())
        .with_context(|| format!("cannot connect to the broker at {}", config.broker_address))?;
    let mut flushed = 0usize;
    // A window at a time, letting go of the lock in between, so that the dealers Cyrus
    // starts meanwhile are not held up.
    loop {
        let mut spool = match Spool::open_within(&config.spool_dir, Some(Duration::from_secs(10))) {
            Ok(spool) => spool,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => anyhow::bail!(
                "the spool {} stays locked by another dealer; a running dealer daemon forwards it itself",
                config.spool_dir.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot open the spool {}", config.spool_dir.display())
                });
            }
        };
        let before = spool.len()?;
        match forward::forward(&mut spool, &broker, config, Some(Duration::from_secs(1)))? {
            Forwarded::Emptied => {
                info!(notifications = flushed + before, "Spool flushed.");
                return Ok(());
            }
            Forwarded::OutOfTime => flushed += before - spool.len()?,
            Forwarded::BrokerDown => anyhow::bail!(
                "the broker at {} stopped answering; {} notifications are still spooled",
                config.broker_address,
                spool.len()?
            ),
        }
    }
}
