//! Exec mode: Cyrus's notifyd runs the dealer once per event with the notification on stdin
//! and waits for it to exit. The notification reaches the broker (ACK) or the dealer's own
//! spool (synced) within the ACK timeout; what that spool holds from before goes first, to
//! keep the order. The spool is one no other dealer holds, so the dealer never waits on one.

use std::{
    io::Read,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{config::DealerConfig, time::now_ms};
use tracing::{debug, info, warn};

use crate::{
    backoff::{self, Backoff, Rest},
    folder,
    forward::{self, Forwarded, Outcome},
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
    let started = Instant::now();
    let id = submit::new_id();
    let timeout = Duration::from_millis(config.ack_timeout_ms);
    let folder = &config.spool_dir;
    let mut spool = folder::claim_exec(folder)
        .with_context(|| format!("cannot open a spool in {}", folder.display()))?;
    let backoff = Backoff::exec(config);
    let rest = backoff::load(folder);
    let tried = !rest.resting(now_ms());
    let broker = if !tried {
        None
    } else {
        Broker::connect(config)
            .inspect_err(|e| warn!(error = %e, "Cannot set up the connection to the broker."))
            .ok()
    };

    if spool.is_empty()? {
        if let Some(broker) = &broker
            && broker.submit(&id, notification, timeout)
        {
            if rest != Rest::default() {
                note(folder, &backoff, ANSWERED);
            }
            // What other dealers left behind goes now that the broker answers.
            let left = timeout.saturating_sub(started.elapsed());
            match forward::forward_others(folder, Some(spool.dir()), broker, config, Some(left)) {
                Ok(outcome) => note(folder, &backoff, outcome),
                Err(e) => warn!(error = %e, "Cannot forward the other spools."),
            }
            return Ok(());
        }
        spool
            .append(&[(&id, notification)])
            .context("cannot write to the spool")?;
        if tried {
            warn!(id = %id, broker = %config.broker_address, spool = %spool.dir().display(),
                "The broker did not acknowledge in time; notification spooled.");
            note(folder, &backoff, NOT_ANSWERED);
        } else {
            debug!(id = %id, spool = %spool.dir().display(), "The broker rests; notification spooled.");
        }
        return Ok(());
    }

    spool
        .append(&[(&id, notification)])
        .context("cannot write to the spool")?;
    debug!(id = %id, spool = %spool.dir().display(), "Notification spooled behind earlier ones.");
    if let Some(broker) = &broker {
        let outcome = forward::forward(&mut spool, broker, config, Some(timeout))?;
        if outcome.result == Forwarded::Emptied {
            info!(spool = %spool.dir().display(), "The broker is back; the spool is empty again.");
        }
        note(folder, &backoff, outcome);
    }
    Ok(())
}

/// A submission the broker acknowledged, as [`note`] sees it.
const ANSWERED: Outcome = Outcome {
    forwarded: 1,
    result: Forwarded::Emptied,
};

/// A submission the broker did not acknowledge in time.
const NOT_ANSWERED: Outcome = Outcome {
    forwarded: 0,
    result: Forwarded::BrokerDown,
};

/// Records in the folder what a try of the broker showed: it answered (the rest ends), it
/// did not (a rest begins, unless one runs).
fn note(folder: &Path, backoff: &Backoff, outcome: Outcome) {
    if outcome.forwarded > 0
        && let Err(e) = backoff::note_answer(folder)
    {
        warn!(error = %e, "Cannot note in the spool folder that the broker answers.");
    }
    if outcome.result == Forwarded::BrokerDown {
        match backoff::note_failure(folder, backoff) {
            Ok(Some(rest)) => warn!(
                rest_ms = rest.backoff_ms,
                broker_rests = true,
                "The broker did not answer; dealers spool without trying it for a while."
            ),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "Cannot note in the spool folder that the broker is down."),
        }
    }
}

/// `--flush`: forwards every spool of the folder now, however long it takes; an error if the
/// broker stops answering before they are empty. The running daemon's own spool is left to
/// it. Says how many notifications went, and how many damaged bytes are in quarantine.
pub fn flush(config: &DealerConfig) -> anyhow::Result<()> {
    let broker = Broker::connect(config)
        .with_context(|| format!("cannot connect to the broker at {}", config.broker_address))?;
    let folder = &config.spool_dir;
    let backoff = Backoff::exec(config);
    let mut flushed = 0usize;
    let mut left_to_daemon = None;
    for dir in folder::spools(folder)
        .with_context(|| format!("cannot read the spool folder {}", folder.display()))?
    {
        let daemon = dir == folder.join(folder::DAEMON);
        // A window at a time, letting go of the lock in between, so that the dealers Cyrus
        // starts meanwhile find their spools free.
        loop {
            let wait = if daemon {
                Duration::ZERO
            } else {
                Duration::from_secs(10)
            };
            let mut spool = match Spool::open_within(&dir, Some(wait)) {
                Ok(spool) => spool,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && daemon => {
                    left_to_daemon = Some(dir.clone());
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    anyhow::bail!("the spool {} stays locked by another dealer", dir.display())
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot open the spool {}", dir.display()));
                }
            };
            let outcome =
                forward::forward(&mut spool, &broker, config, Some(Duration::from_secs(1)))?;
            flushed += outcome.forwarded;
            note(folder, &backoff, outcome);
            match outcome.result {
                Forwarded::Emptied => break,
                Forwarded::OutOfTime => {}
                Forwarded::BrokerDown => anyhow::bail!(
                    "the broker at {} stopped answering; {} notifications are still spooled in {}",
                    config.broker_address,
                    spool.len()?,
                    dir.display()
                ),
            }
        }
    }
    info!(notifications = flushed, "Spool flushed.");
    // Quiet when there was nothing to do, for cron.
    if flushed > 0 {
        println!("{flushed} notifications forwarded to the broker.");
    }
    if let Some(dir) = left_to_daemon {
        info!(spool = %dir.display(), "Spool held by the running dealer daemon, which forwards it itself.");
    }
    let (files, bytes) = folder::quarantined(folder)
        .with_context(|| format!("cannot read the spool folder {}", folder.display()))?;
    if bytes > 0 {
        println!(
            "{bytes} damaged bytes in quarantine ({files} files) under {}: inspect them, then delete them.",
            folder.display()
        );
        warn!(files, bytes, folder = %folder.display(),
            "The spool folder holds damaged bytes in quarantine files.");
    }
    Ok(())
}
