//! The collector's Prometheus metrics: each command's outcomes and latency, and jobs by the
//! answer given to the broker. Every series is made at start, so collecting costs atomic
//! increments and one histogram observation per command.

use std::time::Duration;

use bonnie_core::config::COLLECTOR_COMMANDS;
use bonnie_metrics::{
    Counter, CounterFamily, Histogram, Registry, counter, histogram, latency_histograms, registered,
};

/// The label of a command the broker names that is none of [`COLLECTOR_COMMANDS`], so that a
/// hostile name cannot make new series.
const OTHER: &str = "other";

/// How one command ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its data was added.
    Ok,
    /// Retrying will not help; the record is stored with the reason.
    Permanent,
    /// Cyrus or LDAP could not serve it now; the job is postponed.
    Transient,
}

/// One command's series.
struct CommandSeries {
    ok: Counter,
    permanent: Counter,
    transient: Counter,
    latency: Histogram,
}

/// The handles the collector counts with.
pub struct CollectorMetrics {
    /// One per collector command, in [`COLLECTOR_COMMANDS`]' order.
    commands: [CommandSeries; COLLECTOR_COMMANDS.len()],
    /// Any other name.
    other: CommandSeries,
    /// Jobs answered DONE.
    pub done: Counter,
    /// Jobs answered POSTPONE.
    pub postponed: Counter,
    /// Jobs answered FAIL.
    pub failed: Counter,
}

impl CollectorMetrics {
    /// Registers the collector's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let commands = registered(
            registry,
            "bonnie_collector_commands",
            "Collector commands run, by command and outcome (ok, permanent, transient)",
            CounterFamily::default(),
        );
        let latency = registered(
            registry,
            "bonnie_collector_command_duration_seconds",
            "Time one collector command took",
            latency_histograms(),
        );
        let jobs = registered(
            registry,
            "bonnie_collector_jobs",
            "Jobs collected, by the answer to the broker (done, postponed, failed)",
            CounterFamily::default(),
        );
        let series = |command| {
            let outcome =
                |outcome| counter(&commands, [("command", command), ("outcome", outcome)]);
            CommandSeries {
                ok: outcome("ok"),
                permanent: outcome("permanent"),
                transient: outcome("transient"),
                latency: histogram(&latency, [("command", command)]),
            }
        };
        let job = |outcome| counter(&jobs, [("outcome", outcome)]);
        Self {
            commands: COLLECTOR_COMMANDS.map(series),
            other: series(OTHER),
            done: job("done"),
            postponed: job("postponed"),
            failed: job("failed"),
        }
    }

    /// Counts one run of `command` that took `took`.
    pub fn command(&self, command: &str, ended: Ended, took: Duration) {
        let series = COLLECTOR_COMMANDS
            .iter()
            .position(|known| *known == command)
            .map_or(&self.other, |index| &self.commands[index]);
        match ended {
            Ended::Ok => &series.ok,
            Ended::Permanent => &series.permanent,
            Ended::Transient => &series.transient,
        }
        .inc();
        series.latency.observe(took.as_secs_f64());
    }
}
