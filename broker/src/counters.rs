//! Per-router counts of what the broker received, ignored and refused, shown by `bonnie
//! status`, and
//! a limit of one warning per router per second so a flood of garbage does not flood the log.

use std::{collections::BTreeMap, fmt};

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

/// Counts of one router.
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

/// Counts of every router.
#[derive(Debug, Default)]
pub struct Counters {
    counts: BTreeMap<Router, RouterCounts>,
    last_warning_s: BTreeMap<Router, i64>,
}

impl Counters {
    /// The counts of one router.
    pub fn get(&mut self, router: Router) -> &mut RouterCounts {
        self.counts.entry(router).or_default()
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
        [
            Router::Dealer,
            Router::Controller,
            Router::Worker,
            Router::Collector,
            Router::Admin,
        ]
        .into_iter()
        .map(|r| {
            (
                r.to_string(),
                self.counts.get(&r).cloned().unwrap_or_default(),
            )
        })
        .collect()
    }
}
