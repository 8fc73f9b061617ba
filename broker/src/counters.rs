//! Per-router counts of what the broker received, ignored and refused, shown by `bonnie
//! status`, and
//! a limit of one warning per router per second so a flood of garbage does not flood the log.

use std::{collections::BTreeMap, fmt};

use bonnie_metrics::{Counter, CounterFamily, counter};
use serde::Serialize;

/// The broker's routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Router {
    /// Dealers submit notifications.
    Dealer,
    /// Workers announce themselves and report outcomes.
    Controller,
    /// Workers fetch jobs.
    Worker,
    /// Collectors.
    Collector,
    /// The admin command line.
    Admin,
}

impl Router {
    /// Every router, in the order the server polls them.
    pub const ALL: [Router; 5] = [
        Router::Dealer,
        Router::Controller,
        Router::Worker,
        Router::Collector,
        Router::Admin,
    ];
}

impl fmt::Display for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Router::Dealer => "dealer",
            Router::Controller => "controller",
            Router::Worker => "worker",
            Router::Collector => "collector",
            Router::Admin => "admin",
        })
    }
}

/// Counts of one router, as `bonnie status` shows them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RouterCounts {
    /// Messages received.
    pub messages: u64,
    /// Messages with the wrong frames.
    pub malformed: u64,
    /// Messages whose command is not one of this router.
    pub unknown_commands: u64,
    /// Messages from peers that never announced themselves.
    pub unknown_peers: u64,
    /// Messages that could not be sent because the peer was gone.
    pub unroutable: u64,
    /// Connections refused by the ZAP handler: no CURVE key, or a key not allowed for this
    /// router's role.
    pub refused_connections: u64,
    /// Messages refused from authenticated peers: acting under an identity another key
    /// holds, an outcome for a job the peer does not hold, a collector announcing a host its
    /// key is not for, a key revoked since it connected.
    pub refused_messages: u64,
}

/// The counters of one router ([`RouterCounts`] says what each counts): the series of
/// `bonnie_broker_router_events_total` for this router, one atomic each.
#[derive(Debug, Clone)]
pub struct RouterCounters {
    /// See [`RouterCounts::messages`].
    pub messages: Counter,
    /// See [`RouterCounts::malformed`].
    pub malformed: Counter,
    /// See [`RouterCounts::unknown_commands`].
    pub unknown_commands: Counter,
    /// See [`RouterCounts::unknown_peers`].
    pub unknown_peers: Counter,
    /// See [`RouterCounts::unroutable`].
    pub unroutable: Counter,
    /// See [`RouterCounts::refused_connections`].
    pub refused_connections: Counter,
    /// See [`RouterCounts::refused_messages`].
    pub refused_messages: Counter,
}

impl RouterCounters {
    fn new(family: &CounterFamily, router: Router) -> Self {
        let name = router.to_string();
        let event = |event| counter(family, [("router", &name), ("event", event)]);
        Self {
            messages: event("received"),
            malformed: event("malformed"),
            unknown_commands: event("unknown_command"),
            unknown_peers: event("unknown_peer"),
            unroutable: event("unroutable"),
            refused_connections: event("refused_connection"),
            refused_messages: event("refused_message"),
        }
    }

    fn snapshot(&self) -> RouterCounts {
        RouterCounts {
            messages: self.messages.get(),
            malformed: self.malformed.get(),
            unknown_commands: self.unknown_commands.get(),
            unknown_peers: self.unknown_peers.get(),
            unroutable: self.unroutable.get(),
            refused_connections: self.refused_connections.get(),
            refused_messages: self.refused_messages.get(),
        }
    }
}

/// Counts of every router.
#[derive(Debug)]
pub struct Counters {
    counts: BTreeMap<Router, RouterCounters>,
    last_warning_s: BTreeMap<Router, i64>,
}

impl Counters {
    /// Every router's counters, as series of `family`.
    pub fn new(family: &CounterFamily) -> Self {
        Self {
            counts: Router::ALL
                .into_iter()
                .map(|router| (router, RouterCounters::new(family, router)))
                .collect(),
            last_warning_s: BTreeMap::new(),
        }
    }

    /// The counters of one router.
    pub fn get(&self, router: Router) -> &RouterCounters {
        &self.counts[&router]
    }

    /// True at most once per second per router.
    pub fn may_log(&mut self, router: Router) -> bool {
        let now_s = bonnie_core::time::now_ms() / 1000;
        let last = self.last_warning_s.entry(router).or_insert(i64::MIN);
        if *last == now_s {
            return false;
        }
        *last = now_s;
        true
    }

    /// Every router's counts by name.
    pub fn snapshot(&self) -> BTreeMap<String, RouterCounts> {
        self.counts
            .iter()
            .map(|(router, counters)| (router.to_string(), counters.snapshot()))
            .collect()
    }
}
