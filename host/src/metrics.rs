//! The worker's Prometheus metrics: jobs by outcome, each handler's outcomes and latency, and
//! the latency of each storage and output batch. Handler series are made when the handler
//! starts, so running a job costs atomic increments and a histogram observation per handler.

use std::time::Duration;

use bonnie_metrics::{
    Counter, CounterFamily, Histogram, HistogramFamily, Registry, counter, histogram,
    latency_histograms, registered,
};

/// The handles the worker counts with.
pub struct WorkerMetrics {
    /// Jobs by the outcome reported to their input.
    pub jobs: JobCounters,
    handler_jobs: CounterFamily,
    handler_latency: HistogramFamily,
    write_latency: HistogramFamily,
}

/// Jobs by the outcome reported to their input.
pub struct JobCounters {
    /// Stored (and written to every output).
    pub done: Counter,
    /// Sent to the collector for data the handlers asked for.
    pub collect: Counter,
    /// To be tried again later.
    pub postponed: Counter,
    /// Refused for good as bad input.
    pub rejected: Counter,
    /// Failed for good.
    pub failed: Counter,
}

/// One handler's series.
pub struct HandlerMetrics {
    done: Counter,
    collect: Counter,
    postponed: Counter,
    rejected: Counter,
    failed: Counter,
    latency: Histogram,
}

/// What one handler made of a job, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Handed the job on.
    Done,
    /// Handed the job on, asking for collector data.
    Collect,
    /// Asked for a later try (or failed for a passing reason).
    Postponed,
    /// Refused the job as bad input.
    Rejected,
    /// Failed, or answered what the host cannot use.
    Failed,
}

impl WorkerMetrics {
    /// Registers the worker's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let jobs = registered(
            registry,
            "bonnie_worker_jobs",
            "Jobs by the outcome reported to their input",
            CounterFamily::default(),
        );
        let handler_jobs = registered(
            registry,
            "bonnie_worker_handler_jobs",
            "Jobs each handler ran, by what it made of them",
            CounterFamily::default(),
        );
        let handler_latency = registered(
            registry,
            "bonnie_worker_handler_duration_seconds",
            "Time each handler took on one job",
            latency_histograms(),
        );
        let write_latency = registered(
            registry,
            "bonnie_worker_write_duration_seconds",
            "Time the storage (role storage) or an output (role output) took to write one batch",
            latency_histograms(),
        );
        let outcome = |name| counter(&jobs, [("outcome", name)]);
        Self {
            jobs: JobCounters {
                done: outcome("done"),
                collect: outcome("collect"),
                postponed: outcome("postponed"),
                rejected: outcome("rejected"),
                failed: outcome("failed"),
            },
            handler_jobs,
            handler_latency,
            write_latency,
        }
    }

    /// The series of the handler `name`.
    pub fn handler(&self, name: &str) -> HandlerMetrics {
        let outcome = |outcome| {
            counter(
                &self.handler_jobs,
                [("handler", name), ("outcome", outcome)],
            )
        };
        HandlerMetrics {
            done: outcome("done"),
            collect: outcome("collect"),
            postponed: outcome("postponed"),
            rejected: outcome("rejected"),
            failed: outcome("failed"),
            latency: histogram(&self.handler_latency, [("handler", name)]),
        }
    }

    /// The write-latency series of the storage or output (`role`) plugin `name`.
    pub fn writer(&self, role: &str, name: &str) -> Histogram {
        histogram(&self.write_latency, [("role", role), ("plugin", name)])
    }
}

impl HandlerMetrics {
    /// Counts one job the handler ran in `took`.
    pub fn observe(&self, outcome: Handled, took: Duration) {
        let counter = match outcome {
            Handled::Done => &self.done,
            Handled::Collect => &self.collect,
            Handled::Postponed => &self.postponed,
            Handled::Rejected => &self.rejected,
            Handled::Failed => &self.failed,
        };
        counter.inc();
        self.latency.observe(took.as_secs_f64());
    }
}
