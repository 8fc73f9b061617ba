//! The broker's event loop: one thread polls the five routers, stores what dealers submit
//! (one transaction and one sync for everything that arrived in a turn, then the ACKs),
//! applies what workers and collectors report, keeps heartbeats, and hands out jobs. With
//! CURVE it also answers the ZAP requests of every new connection from the allow-list of the
//! router's role, and refuses any message whose key does not fit what it claims.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bonnie_core::{
    config::CurveConfig,
    keys::{AllowList, KeyDir, Role},
};

use anyhow::Context as _;
use bonnie_core::{
    config::BrokerConfig,
    protocol::{
        self, AdminReply, AdminRequest, AuditRecord, CollectorMsg, ControlMsg, DataReply,
        DealerMsg, Frames, ProtocolError, ToCollector, ToWorker,
    },
    time::now_ms,
    transport::{self, Socket},
};
use tracing::{debug, error, info, warn};

use crate::{
    counters::{Counters, Router},
    jobs::{Identity, Jobs, Outcome, RetryPolicy},
    metrics::BrokerMetrics,
    status,
    store::{State, Store, Submission, Update},
};

/// How often the job-state gauges are read from the store, in milliseconds: often enough for
/// a scrape every 15 s, rarely enough that counting a large store costs nothing noticeable.
const GAUGES_INTERVAL_MS: i64 = 10_000;

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

/// CURVE: the ZAP handler's socket and the keys it lets in.
struct Auth {
    zap: Socket,
    dir: KeyDir,
    list: AllowList,
    /// One per router, in poll order: failed handshakes.
    monitors: Vec<Socket>,
}

impl Router {
    /// The role whose keys this router lets in.
    fn role(self) -> Role {
        match self {
            Router::Dealer => Role::Dealer,
            Router::Controller | Router::Worker => Role::Worker,
            Router::Collector => Role::Collector,
            Router::Admin => Role::Admin,
        }
    }

    /// The router a ZAP domain names (the domain is the router's name).
    fn of_domain(domain: &str) -> Option<Router> {
        Router::ALL.into_iter().find(|r| r.to_string() == domain)
    }
}

/// True for an endpoint only this host can reach: `ipc://`, `inproc://`, or TCP on a
/// loopback address.
pub fn is_local(endpoint: &str) -> bool {
    if endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://") {
        return true;
    }
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((host, _)) => host,
        None => rest,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Without CURVE an `ipc://` socket is as private as its folder: refuses a folder that
/// others (neither its owner nor its group) may enter.
fn check_ipc_folder(key: &str, socket: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let folder = match socket.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => std::path::Path::new("."),
    };
    let mode = std::fs::metadata(folder)
        .with_context(|| {
            format!(
                "[broker] {key}: cannot read the folder {}",
                folder.display()
            )
        })?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        anyhow::bail!(
            "[broker] {key}: without CURVE the socket's folder {} must be closed to others \
             (mode {:o}; chmod o-rwx, and its group only bonnie's and Cyrus's), or set [curve] enabled = true",
            folder.display(),
            mode & 0o777
        );
    }
    Ok(())
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
    /// Audit records kept (and answered) at the end of this turn, in one transaction.
    audits: Vec<(Identity, AuditRecord)>,
    started_ms: i64,
    last_commit_ms: i64,
    next_heartbeat_ms: i64,
    next_maintenance_ms: i64,
    next_purge_ms: i64,
    auth: Option<Auth>,
    reload: std::sync::Arc<AtomicBool>,
    checkpoints: crate::ledger::Checkpoints,
    metrics: BrokerMetrics,
    /// When the job-state gauges are next read from the store.
    next_gauges_ms: i64,
    _context: transport::Context,
}

impl Server {
    /// Opens the job store, loads unfinished jobs and binds the routers.
    pub fn start(
        config: BrokerConfig,
        curve: &CurveConfig,
        ledger: &bonnie_core::config::LedgerConfig,
        reload: std::sync::Arc<AtomicBool>,
        metrics: BrokerMetrics,
    ) -> anyhow::Result<Self> {
        let checkpoints = crate::ledger::Checkpoints::new(ledger, now_ms())?;
        let addresses = [
            ("dealer_address", &config.dealer_address),
            ("controller_address", &config.controller_address),
            ("worker_address", &config.worker_address),
            ("collector_address", &config.collector_address),
            ("admin_address", &config.admin_address),
        ];
        if !curve.enabled {
            for (key, address) in addresses {
                if !is_local(address) {
                    anyhow::bail!(
                        "[broker] {key} = {address:?} can be reached from other hosts, and [curve] is \
                         off: anyone who reaches it could submit, take or answer jobs. Set [curve] \
                         enabled = true (keys: bonnie keys generate), or bind loopback or ipc://"
                    );
                }
                if let Some(path) = address.strip_prefix("ipc://") {
                    check_ipc_folder(key, std::path::Path::new(path))?;
                }
            }
            if addresses.iter().any(|(_, a)| a.starts_with("tcp://")) {
                warn!(
                    "CURVE is off ([curve] enabled = false): every local user may talk to the broker's TCP sockets; use ipc:// sockets in a folder only bonnie can open, or CURVE."
                );
            }
        }
        let store = Store::open(&config.database)
            .with_context(|| format!("cannot open the job store {}", config.database.display()))?;
        let (unfinished, backlog_from) = store
            .unfinished(crate::jobs::WORKER_WINDOW)
            .context("cannot read the job store")?;
        info!(jobs = unfinished.len(), more_in_store = backlog_from.is_some(), database = %config.database.display(), "Job store opened.");
        let mut jobs = Jobs::default();
        jobs.load(unfinished, backlog_from);

        let context = transport::context();
        let (auth, secret) = if curve.enabled {
            if !transport::has_curve() {
                anyhow::bail!("this build of libzmq has no CURVE; [curve] cannot be enabled");
            }
            let dir = KeyDir::new(curve);
            let pair = KeyDir::read_pair(&dir.pair_file("broker")).with_context(|| {
                format!(
                    "[curve] is on and the broker has no key pair in {}: run `bonnie keys generate broker`",
                    dir.path().display()
                )
            })?;
            let list = AllowList::load(&dir).context("cannot read the allowed keys")?;
            // Bound before any router: a CURVE router without a ZAP handler lets in every
            // client that knows the broker's public key.
            let zap = transport::zap_handler(&context).context("cannot start the ZAP handler")?;
            log_keys(&dir, &list);
            let monitors = Vec::new();
            (
                Some(Auth {
                    zap,
                    dir,
                    list,
                    monitors,
                }),
                Some(pair.secret),
            )
        } else {
            (None, None)
        };
        let bind = |address: &str, router: Router, what: &str| {
            let domain = router.to_string();
            let auth = match &secret {
                Some(secret) => transport::Auth::Curve {
                    secret,
                    domain: &domain,
                },
                None => transport::Auth::Null,
            };
            transport::router_with(&context, address, config.max_message_bytes, &auth)
                .with_context(|| format!("cannot listen for {what} on {address}"))
        };
        let routers = Routers {
            dealer: bind(&config.dealer_address, Router::Dealer, "dealers")?,
            controller: bind(
                &config.controller_address,
                Router::Controller,
                "worker control",
            )?,
            worker: bind(&config.worker_address, Router::Worker, "workers")?,
            collector: bind(&config.collector_address, Router::Collector, "collectors")?,
            admin: bind(
                &config.admin_address,
                Router::Admin,
                "the admin command line",
            )?,
        };
        let mut auth = auth;
        if let Some(auth) = &mut auth {
            let r = &routers;
            for (router, socket) in Router::ALL.into_iter().zip([
                &r.dealer,
                &r.controller,
                &r.worker,
                &r.collector,
                &r.admin,
            ]) {
                auth.monitors.push(
                    transport::handshake_monitor(&context, socket, &router.to_string())
                        .context("cannot watch the routers' handshakes")?,
                );
            }
        }
        info!(
            dealer = %config.dealer_address,
            controller = %config.controller_address,
            worker = %config.worker_address,
            collector = %config.collector_address,
            admin = %config.admin_address,
            curve = curve.enabled,
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
            counters: Counters::new(&metrics.router_events),
            policy,
            submissions: Vec::new(),
            updates: Vec::new(),
            audits: Vec::new(),
            started_ms: now,
            last_commit_ms: now,
            next_heartbeat_ms: now,
            next_maintenance_ms: now,
            next_purge_ms: now,
            auth,
            reload,
            checkpoints,
            metrics,
            next_gauges_ms: now,
            _context: context,
        })
    }

    /// Serves until `shutdown` is set.
    pub fn run(&mut self, shutdown: &AtomicBool) -> anyhow::Result<()> {
        while !shutdown.load(Ordering::Relaxed) {
            bonnie_core::systemd::watchdog();
            let wait =
                (self.next_heartbeat_ms.min(self.next_maintenance_ms) - now_ms()).clamp(0, 100);
            if self.reload.swap(false, Ordering::Relaxed) {
                self.reload_keys();
            }
            let r = &self.routers;
            let mut sockets = vec![&r.dealer, &r.controller, &r.worker, &r.collector, &r.admin];
            if let Some(auth) = &self.auth {
                sockets.push(&auth.zap);
                sockets.extend(auth.monitors.iter());
            }
            let readable = match transport::poll(&sockets, Duration::from_millis(wait as u64)) {
                Ok(readable) => readable,
                Err(transport::Error::EINTR) => continue,
                Err(e) => return Err(e).context("polling the routers"),
            };
            if readable.get(5) == Some(&true) {
                self.answer_zap();
            }
            if readable.iter().skip(6).any(|r| *r) {
                self.count_failed_handshakes();
            }
            for (router, ready) in Router::ALL.into_iter().zip(readable) {
                if ready {
                    self.drain(router);
                }
            }
            self.flush(false);
            self.keep_audits();
            self.maintain();
            self.dispatch();
        }
        bonnie_core::systemd::stopping();
        self.flush(true);
        self.keep_audits();
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

    /// Re-reads the allowed keys (SIGHUP); on an error the old list stays.
    fn reload_keys(&mut self) {
        let Some(auth) = &mut self.auth else {
            info!("SIGHUP: CURVE is off, no keys to read.");
            return;
        };
        match AllowList::load(&auth.dir) {
            Ok(list) => {
                auth.list = list;
                log_keys(&auth.dir, &auth.list);
            }
            Err(e) => {
                error!(error = %e, "Cannot read the allowed keys again; the previous ones stay in force.")
            }
        }
    }

    /// Lets a new connection in if its key is allowed in the role of its router.
    fn answer_zap(&mut self) {
        let Some(auth) = &self.auth else { return };
        for _ in 0..DRAIN {
            let request = match transport::zap_next(&auth.zap) {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "Receiving a ZAP request failed.");
                    return;
                }
            };
            let router = Router::of_domain(&request.domain);
            let name = match (router, &request.public_key) {
                (Some(router), Some(key)) => auth.list.name(router.role(), key).map(str::to_string),
                _ => None,
            };
            if let Err(e) = transport::zap_reply(&auth.zap, &request, name.as_deref()) {
                warn!(error = %e, "Answering a ZAP request failed.");
            }
            // Counted with the failed handshake it makes (count_failed_handshakes).
            if name.is_none() {
                let router = router.unwrap_or(Router::Admin);
                if self.counters.may_log(router) {
                    warn!(router = %router, address = %request.address, mechanism = %request.mechanism,
                        key = request.public_key.as_deref().unwrap_or("none"),
                        "Refused a connection: its key is not allowed for this router's role.");
                }
            }
        }
    }

    /// Counts the connections whose handshake failed: no CURVE, a wrong server key, a key the
    /// ZAP handler refused.
    fn count_failed_handshakes(&mut self) {
        let Some(auth) = &self.auth else { return };
        let mut failed = Vec::new();
        for (router, monitor) in Router::ALL.into_iter().zip(&auth.monitors) {
            match transport::handshake_failures(monitor) {
                Ok(list) => failed.extend(list.into_iter().map(|why| (router, why))),
                Err(e) => warn!(router = %router, error = %e, "Reading handshake events failed."),
            }
        }
        for (router, why) in failed {
            self.counters.get(router).refused_connections.inc();
            if self.counters.may_log(router) {
                warn!(router = %router, reason = %why, "Refused a connection.");
            }
        }
    }

    /// Counts and logs a message refused from a peer; false, for the caller to return.
    fn refuse(&mut self, router: Router, identity: &[u8], user: Option<&str>, why: &str) -> bool {
        self.counters.get(router).refused_messages.inc();
        if self.counters.may_log(router) {
            warn!(router = %router, peer = %printable(identity), key = user.unwrap_or("none"),
                reason = why, "Refused a message.");
        }
        false
    }

    /// With CURVE, whether `user` may still act on `router` (its key not revoked since) and
    /// `identity` is its own: a registered peer's identity belongs to the key it registered
    /// with. A peer acting under another key's identity is dropped as well: its connection
    /// is not the one that registered.
    fn authorized(&mut self, router: Router, identity: &[u8], user: Option<&str>) -> bool {
        let Some(auth) = &self.auth else { return true };
        let Some(user) = user else {
            return self.refuse(router, identity, None, "no authenticated key");
        };
        if !auth.list.has_name(router.role(), user) {
            return self.refuse(router, identity, Some(user), "its key is no longer allowed");
        }
        let peers = match router {
            Router::Controller | Router::Worker => &self.jobs.workers,
            Router::Collector => &self.jobs.collectors,
            Router::Dealer | Router::Admin => return true,
        };
        match peers.get(identity).and_then(|p| p.user.as_deref()) {
            Some(owner) if owner != user => {
                warn!(router = %router, peer = %printable(identity), owner = %owner, key = %user,
                    "A key acts under an identity another key registered; that peer is dropped and its jobs return to PENDING.");
                self.jobs.drop_peer(identity);
                self.refuse(
                    router,
                    identity,
                    Some(user),
                    "an identity another key holds",
                )
            }
            _ => true,
        }
    }

    fn drain(&mut self, router: Router) {
        for _ in 0..DRAIN {
            let (frames, user) = match transport::try_recv_from(self.socket(router)) {
                Ok(Some(received)) => received,
                Ok(None) => return,
                Err(e) => {
                    warn!(router = %router, error = %e, "Receiving failed.");
                    return;
                }
            };
            self.counters.get(router).messages.inc();
            let Some((identity, message)) = frames.split_first() else {
                continue;
            };
            let user = user.as_deref();
            if !self.authorized(router, identity, user) {
                continue;
            }
            let result = match router {
                Router::Dealer => self.on_dealer(identity, message, user),
                Router::Controller => self.on_controller(identity, message, user),
                Router::Worker => self.on_worker(identity, message, user),
                Router::Collector => self.on_collector(identity, message, user),
                Router::Admin => self.on_admin(identity, message),
            };
            if let Err(e) = result {
                let count = self.counters.get(router);
                if e.is_unknown_command() {
                    count.unknown_commands.inc();
                } else {
                    count.malformed.inc();
                }
                if self.counters.may_log(router) {
                    warn!(router = %router, peer = %printable(identity), error = %e,
                        "Ignored a message the broker does not understand.");
                }
            }
        }
    }

    fn unknown_peer(&mut self, router: Router, identity: &[u8], what: &str) {
        self.counters.get(router).unknown_peers.inc();
        if self.counters.may_log(router) {
            warn!(router = %router, peer = %printable(identity), message = what,
                "Ignored a message from a peer that has not announced itself.");
        }
    }

    fn send(&mut self, router: Router, identity: &[u8], frames: &Frames) -> bool {
        match transport::send_to(self.socket(router), identity, frames) {
            Ok(()) => true,
            Err(e) => {
                self.counters.get(router).unroutable.inc();
                debug!(router = %router, peer = %printable(identity), error = %e, "Could not send to a peer.");
                false
            }
        }
    }

    fn on_dealer(
        &mut self,
        identity: &[u8],
        message: &[Vec<u8>],
        user: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let DealerMsg::Notify { id, notification } = DealerMsg::parse(message)?;
        // With CURVE a submission is the host's whose key sent it, whatever the identity says.
        let host = match user {
            Some(host) => host.to_string(),
            None => protocol::host_of_dealer(identity).unwrap_or_else(|| {
                self.counters.get(Router::Dealer).unknown_peers.inc();
                "unknown".to_string()
            }),
        };
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

    fn on_controller(
        &mut self,
        identity: &[u8],
        message: &[Vec<u8>],
        user: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let message = ControlMsg::parse(message)?;
        let now = now_ms();
        if let ControlMsg::Ready { credit } = message {
            if !self.jobs.workers.contains_key(identity) {
                info!(worker = %printable(identity), key = user.unwrap_or("none"), credit, "Worker connected.");
            }
            self.jobs.worker_ready(identity, credit, now, user);
            return Ok(());
        }
        if !Jobs::seen(&mut self.jobs.workers, identity, now) {
            self.unknown_peer(Router::Controller, identity, "worker report");
            return Ok(());
        }
        let mut leaves = None;
        let (id, outcome) = match message {
            ControlMsg::Heartbeat | ControlMsg::Ready { .. } => return Ok(()),
            ControlMsg::Done {
                id,
                leaves: reported,
            } => {
                leaves = Some(reported);
                (id, Outcome::Done)
            }
            ControlMsg::Postpone { id, reason } => (id, Outcome::Postpone(reason)),
            ControlMsg::Collect {
                id,
                commands,
                notification,
            } => (id, Outcome::Collect(commands, notification)),
            ControlMsg::Fail { id, reason } => (id, Outcome::Fail(reason)),
        };
        // Only the worker that holds the job may say how it ended; anyone else's word (a late
        // report after the job moved on, or a forgery) changes nothing.
        if self.jobs.owner(&id).is_none_or(|owner| owner != identity) {
            self.refuse(
                Router::Controller,
                identity,
                user,
                "an outcome for a job it does not hold",
            );
            return Ok(());
        }
        if let Some(worker) = self.jobs.workers.get_mut(identity) {
            worker.credit += 1;
        }
        if self.apply(&id, outcome, now)
            && let Some(leaves) = leaves
        {
            self.store.done(crate::ledger::DoneJob { id, leaves });
        }
        Ok(())
    }

    /// Applies a report to an unfinished job; false when there is none (a late report).
    fn apply(&mut self, id: &str, outcome: Outcome, now: i64) -> bool {
        let described = match &outcome {
            Outcome::Fail(reason) => Some(reason.clone()),
            _ => None,
        };
        match self.jobs.finish(id, outcome, self.policy, now) {
            Some(update) => {
                let ended = match update.state {
                    State::Done => Some(&self.metrics.done),
                    State::Failed => Some(&self.metrics.failed),
                    State::Postponed => Some(&self.metrics.postponed),
                    State::Pending | State::Alloc => None,
                };
                if let Some(counter) = ended {
                    counter.inc();
                }
                if let Some(reason) = described {
                    warn!(job = %id, reason = %reason, "Job failed.");
                } else if update.state == State::Failed {
                    warn!(job = %id, reason = ?update.reason, "Job failed after its last postponement.");
                }
                self.updates.push(update);
                true
            }
            None => {
                debug!(job = %id, "A report for a job that is not unfinished here; ignored.");
                false
            }
        }
    }

    fn on_worker(
        &mut self,
        identity: &[u8],
        message: &[Vec<u8>],
        _user: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let id = protocol::parse_get(message)?;
        let reply = if self.jobs.owner(&id).is_some_and(|owner| owner == identity) {
            match self.notification(&id) {
                Ok(Some(notification)) => {
                    let meta = self.job_meta(&id, &notification);
                    DataReply::Job {
                        id,
                        notification,
                        meta: Some(meta),
                    }
                }
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

    /// What the worker is told of a job besides its notification: whether a collector wrote
    /// it and, for a notification that carries no `timestamp`, when the broker first stored
    /// it (the time every run of the job gives it; others cost no read).
    fn job_meta(&self, id: &str, notification: &[u8]) -> String {
        const TIMESTAMP: &[u8] = b"\"timestamp\"";
        let collected = self.jobs.collected(id);
        let received_ms = if notification
            .windows(TIMESTAMP.len())
            .any(|w| w == TIMESTAMP)
        {
            None
        } else {
            self.store.created_ms(id).unwrap_or_else(|e| {
                warn!(job = %id, error = %e, "Cannot read when a job was stored.");
                None
            })
        };
        match received_ms {
            Some(ms) => format!(r#"{{"collected":{collected},"received_ms":{ms}}}"#),
            None => format!(r#"{{"collected":{collected}}}"#),
        }
    }

    /// A waiting job's notification: from memory, else from the store.
    fn notification(&self, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        match self.jobs.payload(id) {
            Some(payload) => Ok(Some(payload.to_vec())),
            None => self.store.notification(id),
        }
    }

    fn on_collector(
        &mut self,
        identity: &[u8],
        message: &[Vec<u8>],
        user: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let message = CollectorMsg::parse(message)?;
        let now = now_ms();
        if let CollectorMsg::Ready {
            host,
            commands,
            credit,
        } = message
        {
            // A collector key is for one IMAP host: it serves that host's jobs and no other's.
            if user.is_some_and(|name| name != host) {
                self.refuse(
                    Router::Collector,
                    identity,
                    user,
                    "a host its key is not for",
                );
                return Ok(());
            }
            if !self.jobs.collectors.contains_key(identity) {
                info!(collector = %printable(identity), host = %host, commands = ?commands, credit, "Collector connected.");
            }
            self.jobs
                .collector_ready(identity, host, commands, credit, now, user);
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
            CollectorMsg::Fail { id, reason } => {
                (id, Outcome::Fail(format!("collector: {reason}")))
            }
        };
        if self.jobs.owner(&id).is_some_and(|owner| owner == identity) {
            if let Some(collector) = self.jobs.collectors.get_mut(identity) {
                collector.credit += 1;
            }
            self.apply(&id, outcome, now);
        } else {
            self.refuse(
                Router::Collector,
                identity,
                user,
                "an outcome for a job it does not hold",
            );
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
            AdminRequest::Checkpoint => self.checkpoint(),
            AdminRequest::Audit(record) => {
                // Answered by keep_audits, once it is committed.
                self.audits.push((identity.to_vec(), *record));
                return Ok(());
            }
        };
        let reply = reply.unwrap_or_else(|e| AdminReply::Error(format!("{e:#}")));
        self.send(Router::Admin, identity, &reply.frames());
        Ok(())
    }

    /// Keeps this turn's audit records and their leaves in one transaction, then answers each
    /// sender: `OK {"seq": n}`, or `ERROR` when nothing could be kept (the action must not
    /// happen; its sender may send the record again under the same id).
    fn keep_audits(&mut self) {
        if self.audits.is_empty() {
            return;
        }
        let audits = std::mem::take(&mut self.audits);
        let records: Vec<AuditRecord> = audits.iter().map(|(_, r)| r.clone()).collect();
        let replies: Vec<AdminReply> = match crate::audit::append(self.store.connection(), &records)
        {
            Ok(seqs) => seqs
                .into_iter()
                .map(|seq| AdminReply::Ok(serde_json::json!({ "seq": seq }).to_string()))
                .collect(),
            Err(e) => {
                error!(error = %e, records = records.len(), "Cannot keep audit records in the job store; their actions are refused.");
                let why = format!("the broker cannot keep the audit record: {e}");
                vec![AdminReply::Error(why); records.len()]
            }
        };
        for ((identity, _), reply) in audits.iter().zip(replies) {
            self.send(Router::Admin, identity, &reply.frames());
        }
    }

    /// A checkpoint now, of every job DONE so far (the pending batch committed first).
    fn checkpoint(&mut self) -> anyhow::Result<AdminReply> {
        self.flush(true);
        let made = self.checkpoints.make(self.store.connection())?;
        if made.new {
            info!(
                size = made.size,
                "Checkpoint signed on the admin's request."
            );
        }
        Ok(AdminReply::Ok(serde_json::to_string(&made)?))
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
                    if seq.is_some() {
                        self.metrics.submissions.inc();
                    } else {
                        self.metrics.resubmissions.inc();
                    }
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
        self.refresh_gauges(now);
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
        self.checkpoints.tick(self.store.connection(), now);
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

    /// The metrics' gauges: peers on every maintenance turn, job states (two queries of the
    /// store's state index) every [`GAUGES_INTERVAL_MS`].
    fn refresh_gauges(&mut self, now: i64) {
        self.metrics.workers.set(self.jobs.workers.len() as i64);
        self.metrics
            .collectors
            .set(self.jobs.collectors.len() as i64);
        if now < self.next_gauges_ms {
            return;
        }
        self.next_gauges_ms = now + GAUGES_INTERVAL_MS;
        match status::job_counts(&self.store, &self.jobs, now) {
            Ok((counts, oldest_age_s)) => self.metrics.set_jobs(counts, oldest_age_s),
            Err(e) => warn!(error = %format!("{e:#}"), "Cannot refresh the job-state metrics."),
        }
    }

    /// Hands pending jobs to workers and collectors with credit, first reading more of the
    /// workers' queue from the store when its head runs short.
    fn dispatch(&mut self) {
        if let Some((from, limit)) = self.jobs.wanted_from_store() {
            match self.store.pending_for_workers(from, limit) {
                Ok(jobs) => self.jobs.read_from_store(jobs, limit),
                Err(e) => error!(error = %e, "Cannot read pending jobs from the job store."),
            }
        }
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

/// Logs how many keys each role allows.
fn log_keys(dir: &KeyDir, list: &AllowList) {
    let counts = list.counts();
    let n = |role| counts.get(&role).copied().unwrap_or(0);
    info!(keys = %dir.path().display(), dealers = n(Role::Dealer), collectors = n(Role::Collector),
        workers = n(Role::Worker), admins = n(Role::Admin), "Allowed keys read.");
}

/// An identity for the log: text if it is text, hex otherwise.
pub fn printable(identity: &[u8]) -> String {
    match std::str::from_utf8(identity) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => text.to_string(),
        _ => identity.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
