//! The broker's Prometheus metrics: what arrived and how jobs ended (counters, counted where
//! it happens; the routers' own in [`crate::counters`]), and jobs per state, the oldest
//! unfinished job's age and the peers connected (gauges the server loop refreshes).

use std::sync::atomic::AtomicU64;

use bonnie_metrics::{Counter, CounterFamily, Family, Gauge, Labels, Registry, labels, registered};

/// Jobs per state, as `bonnie status` counts them.
pub const STATES: [&str; 5] = ["PENDING", "ALLOC", "POSTPONED", "DONE", "FAILED"];

/// The handles the server counts with: atomics, and the family of the routers' series.
pub struct BrokerMetrics {
    /// New notifications stored (a resend of a known one is not counted).
    pub submissions: Counter,
    /// Submissions of an id already stored: a dealer resending after a lost ACK.
    pub resubmissions: Counter,
    /// Jobs DONE.
    pub done: Counter,
    /// Jobs FAILED, by a worker's or collector's word or after their last postponement.
    pub failed: Counter,
    /// Jobs postponed for a later try.
    pub postponed: Counter,
    jobs: [Gauge; 5],
    oldest_unfinished_age: Gauge<f64, AtomicU64>,
    /// Workers connected.
    pub workers: Gauge,
    /// Collectors connected.
    pub collectors: Gauge,
    /// What each router received, ignored and refused (the counts `bonnie status` shows).
    pub router_events: CounterFamily,
}

impl BrokerMetrics {
    /// Registers the broker's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            registered(registry, name, help, Counter::default())
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            registered(registry, name, help, Gauge::default())
        };
        let submissions = counter(
            registry,
            "bonnie_broker_submissions",
            "Notifications submitted by dealers and stored as new jobs",
        );
        let resubmissions = counter(
            registry,
            "bonnie_broker_resubmissions",
            "Submissions of a job already stored (a dealer's resend after a lost ACK)",
        );
        let done = counter(registry, "bonnie_broker_jobs_done", "Jobs that became DONE");
        let failed = counter(
            registry,
            "bonnie_broker_jobs_failed",
            "Jobs that became FAILED",
        );
        let postponed = counter(
            registry,
            "bonnie_broker_jobs_postponed",
            "Jobs postponed for a later try",
        );
        let jobs_family = registered(
            registry,
            "bonnie_broker_jobs",
            "Jobs per state, refreshed every 10 s",
            Family::<Labels, Gauge>::default(),
        );
        let jobs = STATES.map(|state| jobs_family.get_or_create_owned(&labels([("state", state)])));
        let oldest_unfinished_age = registered(
            registry,
            "bonnie_broker_oldest_unfinished_job_age_seconds",
            "Age of the oldest PENDING or POSTPONED job (0 when there is none), refreshed every 10 s",
            Gauge::<f64, AtomicU64>::default(),
        );
        let workers = gauge(registry, "bonnie_broker_workers", "Workers connected");
        let collectors = gauge(registry, "bonnie_broker_collectors", "Collectors connected");
        let router_events = registered(
            registry,
            "bonnie_broker_router_events",
            "What each router received, ignored and refused: messages received, malformed, \
             of an unknown command, from an unknown peer, unroutable; connections and \
             messages refused",
            CounterFamily::default(),
        );
        Self {
            submissions,
            resubmissions,
            done,
            failed,
            postponed,
            jobs,
            oldest_unfinished_age,
            workers,
            collectors,
            router_events,
        }
    }

    /// Sets the jobs per state, in the order of [`STATES`], and the oldest unfinished job's
    /// age.
    pub fn set_jobs(&self, counts: [u64; 5], oldest_unfinished_age_s: Option<f64>) {
        for (gauge, count) in self.jobs.iter().zip(counts) {
            gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.oldest_unfinished_age
            .set(oldest_unfinished_age_s.unwrap_or(0.0));
    }
}
