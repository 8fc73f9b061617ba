//! The durable handover of batches, on one thread that owns the broker connection and the
//! spool: a batch is handed over once the broker acknowledged it or it is synced to the
//! spool, and only then may its source move on (a followed file's position is advanced
//! after that). Batches waiting together go out together; while the spool holds batches,
//! or the broker rests after not answering, new ones are spooled, and the spool is forwarded
//! in order once the broker answers again. The connection, spool and forwarding are the
//! dealer's own (`bonnie_dealer`), so a logd is to the broker one more dealer of its host.

use std::{
    collections::HashSet,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{config::DealerConfig, time::now_ms};
use bonnie_dealer::{
    backoff::{Backoff, Rest},
    forward::{self, Forwarded},
    spool::Spool,
    submit::Broker,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tracing::{error, info, warn};

use crate::{batch::Batch, metrics::LogdMetrics};

/// How often the spool is looked at when no batch comes.
const FORWARD_EVERY: Duration = Duration::from_millis(100);

/// How long one forwarding run may keep new batches waiting.
const FORWARD_BUDGET: Duration = Duration::from_millis(500);

/// Most batches sent before waiting for their ACKs.
const WINDOW: usize = 64;

/// How long the spool's lock is waited for (another logd with the same spool folder).
const SPOOL_WAIT: Duration = Duration::from_secs(5);

/// The broker's rests after it did not answer: a second at most, as the dealer daemon's.
const REST_FIRST_MS: i64 = 250;
const REST_CAP_MS: i64 = 1_000;

/// Why a batch was not handed over: its source keeps it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The spool could not be written (a full disk).
    #[error("the batch could not be spooled: {0}")]
    Spool(String),
    /// The handover thread has stopped.
    #[error("the handover has stopped")]
    Stopped,
}

struct Request {
    batch: Batch,
    done: Sender<Result<(), HandoverError>>,
}

/// Hands batches over; clones share the one handover thread.
#[derive(Clone)]
pub struct Handover {
    requests: Sender<Request>,
    metrics: Arc<LogdMetrics>,
}

impl Handover {
    /// Opens the spool in `spool_dir`, connects to the broker as `[dealer]` says and starts
    /// the handover thread; it ends once every clone of the handle is dropped and what
    /// waited is handed over. What is handed over is counted in `metrics`.
    pub fn start(
        dealer: &DealerConfig,
        spool_dir: &Path,
        metrics: Arc<LogdMetrics>,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let spool = match Spool::open_within(spool_dir, Some(SPOOL_WAIT)) {
            Ok(spool) => spool,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => anyhow::bail!(
                "the spool {} stays locked: another bonnie-logd uses it",
                spool_dir.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot open the spool {}", spool_dir.display()));
            }
        };
        let broker = Broker::connect(dealer).context("cannot set up the broker connection")?;
        let (requests, receiver) = crossbeam_channel::bounded(WINDOW);
        let mut worker = Worker {
            spooling: !spool.is_empty().context("cannot read the spool")?,
            spool,
            broker,
            config: dealer.clone(),
            rest: Rest::default(),
            backoff: Backoff::new(REST_FIRST_MS, REST_CAP_MS),
        };
        let thread = std::thread::Builder::new()
            .name("handover".into())
            .spawn(move || worker.run(&receiver))
            .context("cannot start the handover thread")?;
        Ok((Self { requests, metrics }, thread))
    }

    /// Hands `batch` over, waiting until it is durable.
    pub fn hand(&self, batch: Batch) -> Result<(), HandoverError> {
        let (done, result) = crossbeam_channel::bounded(1);
        self.requests
            .send(Request { batch, done })
            .map_err(|_| HandoverError::Stopped)?;
        result.recv().unwrap_or(Err(HandoverError::Stopped))
    }
}

/// Hands `batch` from a source of kind `source` over, trying again a second later each time
/// the spool cannot take it, until it is durable or `shutdown` is set; true if it was handed
/// over.
pub fn hand_until_done(
    handover: &Handover,
    source: &str,
    batch: Batch,
    shutdown: &Arc<AtomicBool>,
) -> bool {
    loop {
        match handover.hand(batch.clone()) {
            Ok(()) => {
                handover.metrics.handed(source, batch.lines);
                return true;
            }
            Err(HandoverError::Stopped) => return false,
            Err(e) => {
                error!(batch = %batch.id, error = %e, "A batch of log lines was not handed over; trying again.");
                if shutdown.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

struct Worker {
    spool: Spool,
    broker: Broker,
    config: DealerConfig,
    /// The spool holds batches: new ones go after them.
    spooling: bool,
    rest: Rest,
    backoff: Backoff,
}

impl Worker {
    fn run(&mut self, requests: &Receiver<Request>) {
        let mut open = true;
        while open || self.spooling {
            let mut waiting = Vec::new();
            match requests.recv_timeout(FORWARD_EVERY) {
                Ok(request) => waiting.push(request),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            while waiting.len() < WINDOW {
                match requests.try_recv() {
                    Ok(request) => waiting.push(request),
                    Err(_) => break,
                }
            }
            if !waiting.is_empty() {
                self.take(waiting);
            }
            if self.spooling && !self.rest.resting(now_ms()) {
                self.forward();
            }
            if !open && self.spooling {
                // Shutting down with batches spooled: they stay for the next start.
                info!(spool = %self.spool.dir().display(), "Batches stay spooled for the next start.");
                break;
            }
        }
    }

    /// Hands `waiting` over: to the broker if it may be tried, the rest to the spool.
    fn take(&mut self, waiting: Vec<Request>) {
        let mut acked = HashSet::new();
        if !self.spooling && !self.rest.resting(now_ms()) {
            let ids: HashSet<String> = waiting.iter().map(|r| r.batch.id.clone()).collect();
            for request in &waiting {
                if self
                    .broker
                    .send(&request.batch.id, &request.batch.json)
                    .is_err()
                {
                    break;
                }
            }
            let deadline = Instant::now() + Duration::from_millis(self.config.ack_timeout_ms);
            acked = self.broker.acks(&ids, deadline);
            if acked.is_empty() {
                self.broker_failed();
            } else {
                self.rest = Rest::default();
            }
        }
        let (sent, unsent): (Vec<Request>, Vec<Request>) = waiting
            .into_iter()
            .partition(|r| acked.contains(&r.batch.id));
        for request in sent {
            let _ = request.done.send(Ok(()));
        }
        if unsent.is_empty() {
            return;
        }
        let entries: Vec<(&str, &[u8])> = unsent
            .iter()
            .map(|r| (r.batch.id.as_str(), r.batch.json.as_slice()))
            .collect();
        let result = self.spool.append(&entries).map_err(|e| {
            error!(spool = %self.spool.dir().display(), error = %e, "Cannot spool batches of log lines.");
            HandoverError::Spool(e.to_string())
        });
        if result.is_ok() {
            self.spooling = true;
        }
        for request in unsent {
            let _ = request.done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(HandoverError::Spool(e.to_string())),
            });
        }
    }

    fn forward(&mut self) {
        match forward::forward(
            &mut self.spool,
            &self.broker,
            &self.config,
            Some(FORWARD_BUDGET),
        ) {
            Ok(outcome) => {
                if outcome.forwarded > 0 {
                    self.rest = Rest::default();
                }
                match outcome.result {
                    Forwarded::Emptied => self.spooling = false,
                    Forwarded::BrokerDown => self.broker_failed(),
                    Forwarded::OutOfTime => {}
                }
            }
            Err(e) => {
                error!(spool = %self.spool.dir().display(), error = %e, "Cannot read the spool to forward it.");
                self.rest = self.backoff.failed(self.rest, now_ms());
            }
        }
    }

    fn broker_failed(&mut self) {
        let next = self.backoff.failed(self.rest, now_ms());
        if next != self.rest && self.rest == Rest::default() {
            warn!(broker = %self.config.broker_address,
                "The broker did not answer; batches of log lines are spooled until it does.");
        }
        self.rest = next;
    }
}
