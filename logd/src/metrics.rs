//! bonnie-logd's Prometheus metrics: log lines handed over by the kind of source they came
//! from, and batches handed over (acknowledged by the broker or synced to the spool).

use bonnie_metrics::{Counter, CounterFamily, Registry, labels, registered};

/// The handles bonnie-logd counts with.
pub struct LogdMetrics {
    lines: CounterFamily,
    batches: Counter,
}

impl LogdMetrics {
    /// Registers bonnie-logd's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self {
            lines: registered(
                registry,
                "bonnie_logd_lines",
                "Log lines handed over, by source (udp, tcp, unix, file)",
                CounterFamily::default(),
            ),
            batches: registered(
                registry,
                "bonnie_logd_batches",
                "Batches of log lines handed over: acknowledged by the broker or spooled",
                Counter::default(),
            ),
        }
    }

    /// Counts one batch of `lines` lines from a source of kind `source`, handed over.
    pub fn handed(&self, source: &str, lines: usize) {
        self.lines
            .get_or_create(&labels([("source", source)]))
            .inc_by(lines as u64);
        self.batches.inc();
    }
}
