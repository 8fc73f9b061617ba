//! The broker's event loop: one thread polls the five routers, stores what dealers submit
//! (one transaction and one sync for everything that arrived in a turn, then the ACKs),
//! applies what workers and collectors report, keeps heartbeats, and hands out jobs.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context as _;
use bonnie_core::{
    config::BrokerConfig,
    protocol::{
        self, AdminReply, AdminRequest, CollectorMsg, ControlMsg, DataReply, DealerMsg, Frames,
        ProtocolError, ToCollector, ToWorker,
    },
    time::now_ms,
    transport::{self, Socket},
};
use tracing::{debug, error, info, warn};

use crate::{
    counters::{Counters, Router},
    jobs::{Identity, Jobs, Outcome, RetryPolicy},
    status,
    store::{Store, Submission, Update},
};

/// Messages taken from one router in one turn, so no router starves the others.
const DRAIN: usize = 4096;

/// State changes that are committed without waiting for more.
const UPDATE_BATCH: usize = 2048;

/// Longest a state change waits for company before it is committed, in milliseconds.
const UPDATE_DELAY_MS: i64 = 20;

/// The routers, in poll order.
struct Routers {
    dealer: Socket,
    controller: Socket,
    worker: Socket,
    collector: Socket,
    admin: Socket,
}

/// The broker.
pub struct Server {
    config: BrokerConfig,
    store: Store,
    jobs: Jobs,
    routers: Routers,
    counters: Counters,
    policy: RetryPolicy,
    /// Submissions stored with the next commit, then acknowledged.
    submissions: Vec<(Identity, Submission)>,
    /// State changes stored with the next commit.
    updates: Vec<Update>,
    started_ms: i64,
    last_commit_ms: i64,
    next_heartbeat_ms: i64,
    next_maintenance_ms: i64,
    next_purge_ms: i64,
    _context: transport::Context,
}

impl Server {
    /// Opens the job store, loads unfinished jobs and binds the routers.
    pub fn start(config: BrokerConfig) -> anyhow::Result<Self> {
        let store = Store::open(&config.database)
            .with_context(|| format!("cannot open the job store {}", config.database.display()))?;
        let unfinished = store.unfinished().context("cannot read the job store")?;
        info!(jobs = unfinished.len(), database = %config.database.display(), "Job store opened.");
        let mut jobs = Jobs::default();
        jobs.load(unfinished);

        let context = transport::context();
        let bind = |address: &str, what: &str| {
            transport::router(&context, address, config.max_message_bytes)
                .with_context(|| format!("cannot listen for {what} on {address}"))
        };
        let routers = Routers {
            dealer: bind(&config.dealer_address, "dealers")?,
            controller: bind(&config.controller_address, "worker control")?,
            worker: bind(&config.worker_address, "workers")?,
            collector: bind(&config.collector_address, "collectors")?,
            admin: bind(&config.admin_address, "the admin command line")?,
        };
        info!(
            dealer = %config.dealer_address,
            controller = %config.controller_address,
            worker = %config.worker_address,
            collector = %config.collector_address,
            admin = %config.admin_address,
            "Broker listening."
        );
        let policy = RetryPolicy {
            delay_ms: config.postpone_delay_s as i64 * 1000,
            max_delay_ms: config.postpone_max_delay_s as i64 * 1000,
            max_postpones: config.max_postpones,
        };
        let now = now_ms();
        Ok(Self {
            config,
            store,
            jobs,
            routers,
            counters: Counters::default(),
            policy,
            submissions: Vec::new(),
            updates: Vec::new(),
            started_ms: now,
            last_commit_ms: now,
            next_heartbeat_ms: now,
            next_maintenance_ms: now,
            next_purge_ms: now,
            _context: context,
        })
    }

    /// Serves until `shutdown` is set.
    pub fn run(&mut self, shutdown: &AtomicBool) -> anyhow::Result<()> {
        while !shutdown.load(Ordering::Relaxed) {
            let wait =
                (self.next_heartbeat_ms.min(self.next_maintenance_ms) - now_ms()).clamp(0, 100);
            let r = &self.routers;
            let readable = match transport::poll(
                &[&r.dealer, &r.controller, &r.worker, &r.collector, &r.admin],
                Duration::from_millis(wait as u64),
            ) {
                Ok(readable) => readable,
                Err(transport::Error::EINTR) => continue,
                Err(e) => return Err(e).context("polling the routers"),
            };
            let routers = [
                Router::Dealer,
                Router::Controller,
                Router::Worker,
                Router::Collector,
                Router::Admin,
            ];
            for (router, ready) in routers.into_iter().zip(readable) {
                if ready {
                    self.drain(router);
                }
            }
            self.flush(false);
            self.maintain();
            self.dispatch();
        }
        self.flush(true);
        info!("Broker stopped.");
        Ok(())
    }

    fn socket(&self, router: Router) -> &Socket {
        let r = &self.routers;
        match router {
            Router::Dealer => &r.dealer,
            Router::Controller => &r.controller,
            Router::Worker => &r.worker,
            Router::Collector => &r.collector,
            Router::Admin => &r.admin,
        }
    }

    fn drain(&mut self, router: Router) {
        for _ in 0..DRAIN {
            let frames = match transport::try_recv(self.socket(router)) {
                Ok(Some(frames)) => frames,
                Ok(None) => return,
                Err(e) => {
                    warn!(router = %router, error = %e, "Receiving failed.");
                    return;
                }
            };
            self.counters.get(router).messages += 1;
            let Some((identity, message)) = frames.split_first() else {
                continue;
            };
            let result = match router {
                Router::Dealer => self.on_dealer(identity, message),
                Router::Controller => self.on_controller(identity, message),
                Router::Worker => self.on_worker(identity, message),
                Router::Collector => self.on_collector(identity, message),
                Router::Admin => self.on_admin(identity, message),
            };
            if let Err(e) = result {
                let count = self.counters.get(router);
                if e.is_unknown_command() {
                    count.unknown_commands += 1;
                } else {
                    count.malformed += 1;
                }
                if self.counters.may_log(router) {
                    warn!(router = %router, peer = %printable(identity), error = %e,
                        "Ignored a message the broker does not understand.");
                }
            }
        }
    }

    fn unknown_peer(&mut self, router: Router, identity: &[u8], what: &str) {
        self.counters.get(router).unknown_peers += 1;
        if self.counters.may_log(router) {
            warn!(router = %router, peer = %printable(identity), message = what,
                "Ignored a message from a peer that has not announced itself.");
        }
    }

    fn send(&mut self, router: Router, identity: &[u8], frames: &Frames) -> bool {
        match transport::send_to(self.socket(router), identity, frames) {
            Ok(()) => true,
            Err(e) => {
                self.counters.get(router).unroutable += 1;
                debug!(router = %router, peer = %printable(identity), error = %e, "Could not send to a peer.");
                false
            }
        }
    }

    fn on_dealer(&mut self, identity: &[u8], message: &[Vec<u8>]) -> Result<(), ProtocolError> {
        let DealerMsg::Notify { id, notification } = DealerMsg::parse(message)?;
        let host = protocol::host_of_dealer(identity).unwrap_or_else(|| {
            self.counters.get(Router::Dealer).unknown_peers += 1;
            "unknown".to_string()
        });
        self.submissions.push((
            identity.to_vec(),
            Submission {
                id,
                host,
                notification,
            },
        ));
        Ok(())
    }

    fn on_controller(&mut self, identity: &[u8], message: &[Vec<u8>]) -> Result<(), ProtocolError> {
        let message = ControlMsg::parse(message)?;
        let now = now_ms();
        if let ControlMsg::Ready { credit } = message {
            if !self.jobs.workers.contains_key(identity) {
                info!(worker = %printable(identity), credit, "Worker connected.");
            }
            self.jobs.worker_ready(identity, credit, now);
            return Ok(());
        }
        if !Jobs::seen(&mut self.jobs.workers, identity, now) {
            self.unknown_peer(Router::Controller, identity, "worker report");
            return Ok(());
        }
        let (id, outcome) = match message {
            ControlMsg::Heartbeat | ControlMsg::Ready { .. } => return Ok(()),
            ControlMsg::Done { id } => (id, Outcome::Done),
            ControlMsg::Postpone { id, reason } => (id, Outcome::Postpone(reason)),
            ControlMsg::Collect {
                id,
                commands,
                notification,
            } => (id, Outcome::Collect(commands, notification)),
            ControlMsg::Fail { id, reason } => (id, Outcome::Fail(reason)),
        };
        if self.jobs.owner(&id).is_some_and(|owner| owner == identity)
            && let Some(worker) = self.jobs.workers.get_mut(identity)
        {
            worker.credit += 1;
        }
        self.apply(&id, outcome, now);
        Ok(())
    }

    fn apply(&mut self, id: &str, outcome: Outcome, now: i64) {
        let described = match &outcome {
            Outcome::Fail(reason) => Some(reason.clone()),
            _ => None,
        };
        match self.jobs.finish(id, outcome, self.policy, now) {
            Some(update) => {
                if let Some(reason) = described {
                    warn!(job = %id, reason = %reason, "Job failed.");
                } else if update.state == crate::store::State::Failed {
                    warn!(job = %id, reason = ?update.reason, "Job failed after its last postponement.");
                }
                self.updates.push(update);
            }
            None => debug!(job = %id, "A report for a job that is not unfinished here; ignored."),
        }
    }

    fn on_worker(&mut self, identity: &[u8], message: &[Vec<u8>]) -> Result<(), ProtocolError> {
        let id = protocol::parse_get(message)?;
        let reply = if self.jobs.owner(&id).is_some_and(|owner| owner == identity) {
            match self.notification(&id) {
                Ok(Some(notification)) => DataReply::Job { id, notification },
                Ok(None) => DataReply::NoJob { id },
                Err(e) => {
                    error!(job = %id, error = %e, "Cannot read a job's notification.");
                    DataReply::NoJob { id }
                }
            }
        } else {
            if !self.jobs.workers.contains_key(identity) {
                self.unknown_peer(Router::Worker, identity, "GET");
            }
            DataReply::NoJob { id }
        };
        self.send(Router::Worker, identity, &reply.frames());
        Ok(())
    }

    /// A waiting job's notification: from memory, else from the store.
    fn notification(&self, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        match self.jobs.payload(id) {
            Some(payload) => Ok(Some(payload.to_vec())),
            None => self.store.notification(id),
        }
    }

    fn on_collector(&mut self, identity: &[u8], message: &[Vec<u8>]) -> Result<(), ProtocolError> {
        let message = CollectorMsg::parse(message)?;
        let now = now_ms();
        if let CollectorMsg::Ready {
            host,
            commands,
            credit,
        } = message
        {
            if !self.jobs.collectors.contains_key(identity) {
                info!(collector = %printable(identity), host = %host, commands = ?commands, credit, "Collector connected.");
            }
            self.jobs
                .collector_ready(identity, host, commands, credit, now);
            return Ok(());
        }
        if !Jobs::seen(&mut self.jobs.collectors, identity, now) {
            self.unknown_peer(Router::Collector, identity, "collector report");
            return Ok(());
        }
        let (id, outcome) = match message {
            CollectorMsg::Heartbeat | CollectorMsg::Ready { .. } => return Ok(()),
            CollectorMsg::Done { id, notification } => (id, Outcome::Collected(notification)),
            CollectorMsg::Postpone { id, reason } => {
                (id, Outcome::Postpone(format!("collector: {reason}")))
            }
            CollectorMsg::Fail { id, reason } => (id, Outcome::Fail(format!("collector: {reason}"))),
        };
        if self.jobs.owner(&id).is_some_and(|owner| owner == identity) {
            if let Some(collector) = self.jobs.collectors.get_mut(identity) {
                collector.credit += 1;
            }
            self.apply(&id, outcome, now);
        } else {
            debug!(job = %id, "A collector report for a job it does not hold; ignored.");
        }
        Ok(())
    }

    fn on_admin(&mut self, identity: &[u8], message: &[Vec<u8>]) -> Result<(), ProtocolError> {
        let request = AdminRequest::parse(message)?;
        let reply = match request {
            AdminRequest::Status => {
                status::status(&self.store, &self.jobs, &self.counters, self.started_ms)
            }
            AdminRequest::Failed { limit } => status::failed(&self.store, limit),
            AdminRequest::Retry { id } => self.retry(Some(&id)),
            AdminRequest::RetryAll => self.retry(None),
        };
        let reply = reply.unwrap_or_else(|e| AdminReply::Error(format!("{e:#}")));
        self.send(Router::Admin, identity, &reply.frames());
        Ok(())
    }

    fn retry(&mut self, id: Option<&str>) -> anyhow::Result<AdminReply> {
        let retried = self
            .store
            .retry_failed(id, now_ms())
            .context("cannot update the job store")?;
        if let (Some(id), true) = (id, retried.is_empty()) {
            return Ok(AdminReply::Error(format!("no FAILED job with id {id}")));
        }
        for (seq, id, host) in &retried {
            self.jobs.add(*seq, id.clone(), host.clone(), None);
        }
        info!(
            jobs = retried.len(),
            "FAILED jobs returned to PENDING by the admin."
        );
        Ok(AdminReply::Ok(
            serde_json::json!({ "retried": retried.iter().map(|r| &r.1).collect::<Vec<_>>() })
                .to_string(),
        ))
    }

    /// Commits what arrived this turn, then acknowledges the submissions. On a store error
    /// everything is kept for the next turn and nothing is acknowledged.
    fn flush(&mut self, force: bool) {
        // Submissions wait for their ACK, so they are committed at once. State changes alone
        // wait for more company (each commit rewrites the same pages), up to a short delay.
        let now = now_ms();
        let updates_wait = !force
            && self.updates.len() < UPDATE_BATCH
            && now < self.last_commit_ms + UPDATE_DELAY_MS;
        if self.submissions.is_empty() && (self.updates.is_empty() || updates_wait) {
            return;
        }
        self.last_commit_ms = now;
        let submissions = self.submissions.iter().map(|(_, s)| s);
        match self.store.commit(submissions, &self.updates, now_ms()) {
            Ok(inserted) => {
                self.updates.clear();
                let acked = std::mem::take(&mut self.submissions);
                for ((identity, submission), seq) in acked.into_iter().zip(inserted) {
                    let id = submission.id;
                    if let Some(seq) = seq {
                        self.jobs.add(
                            seq,
                            id.clone(),
                            submission.host,
                            Some(submission.notification),
                        );
                    }
                    self.send(Router::Dealer, &identity, &protocol::ack_frames(&id));
                }
            }
            Err(e) => {
                error!(error = %e, submissions = self.submissions.len(), updates = self.updates.len(),
                    "Writing to the job store failed; nothing was acknowledged, retrying.");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Heartbeats, silent peers, late allocations, due postponements, purging.
    fn maintain(&mut self) {
        let now = now_ms();
        if now >= self.next_heartbeat_ms {
            self.next_heartbeat_ms = now + self.config.heartbeat_ms as i64;
            let workers: Vec<Identity> = self.jobs.workers.keys().cloned().collect();
            for identity in workers {
                if !self.send(Router::Controller, &identity, &ToWorker::Heartbeat.frames()) {
                    warn!(worker = %printable(&identity), "Worker unreachable; its jobs return to PENDING.");
                    self.jobs.drop_peer(&identity);
                }
            }
            let collectors: Vec<Identity> = self.jobs.collectors.keys().cloned().collect();
            for identity in collectors {
                if !self.send(
                    Router::Collector,
                    &identity,
                    &ToCollector::Heartbeat.frames(),
                ) {
                    warn!(collector = %printable(&identity), "Collector unreachable; its jobs return to PENDING.");
                    self.jobs.drop_peer(&identity);
                }
            }
        }
        if now < self.next_maintenance_ms {
            return;
        }
        self.next_maintenance_ms = now + 250;
        let silence = self.config.heartbeat_ms as i64 * i64::from(self.config.heartbeat_liveness);
        for identity in self.jobs.expire_peers(now - silence) {
            warn!(peer = %printable(&identity), silent_ms = silence, "Peer silent too long; dropped, its jobs return to PENDING.");
        }
        let late = self
            .jobs
            .expire_allocations(now - self.config.job_timeout_s as i64 * 1000);
        if late > 0 {
            warn!(
                jobs = late,
                timeout_s = self.config.job_timeout_s,
                "Jobs unfinished past the job timeout return to PENDING."
            );
        }
        let due = self.jobs.release_due(now);
        self.updates.extend(due);
        if now >= self.next_purge_ms {
            self.next_purge_ms = now + 60_000;
            match self
                .store
                .purge_done(now - self.config.done_retention_s as i64 * 1000)
            {
                Ok(0) => {}
                Ok(purged) => info!(jobs = purged, "DONE jobs purged after their retention."),
                Err(e) => warn!(error = %e, "Purging DONE jobs failed."),
            }
        }
    }

    /// Hands pending jobs to workers and collectors with credit.
    fn dispatch(&mut self) {
        for (identity, id) in self.jobs.assign_workers(now_ms()) {
            if !self.send(
                Router::Controller,
                &identity,
                &ToWorker::Take { id }.frames(),
            ) {
                self.jobs.drop_peer(&identity);
            }
        }
        for (identity, id, commands) in self.jobs.assign_collectors(now_ms()) {
            let notification = match self.notification(&id) {
                Ok(Some(notification)) => notification,
                Ok(None) | Err(_) => {
                    error!(job = %id, "Cannot read a job's notification for its collector.");
                    continue;
                }
            };
            let frames = ToCollector::Collect {
                id,
                commands,
                notification,
            }
            .frames();
            if !self.send(Router::Collector, &identity, &frames) {
                self.jobs.drop_peer(&identity);
            }
        }
    }
}

/// An identity for the log: text if it is text, hex otherwise.
pub fn printable(identity: &[u8]) -> String {
    match std::str::from_utf8(identity) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => text.to_string(),
        _ => identity.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
