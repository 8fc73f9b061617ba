//! The dealer daemon's Prometheus metrics: how each notification from Cyrus was answered,
//! what the forwarder took from the spools to the broker, and what the daemon's own spool
//! holds.

use bonnie_metrics::{Counter, CounterFamily, Gauge, Registry, counter, registered};

/// The handles the daemon counts with; each is one atomic.
pub struct DealerMetrics {
    /// Acknowledged by the broker, then answered OK.
    pub acknowledged: Counter,
    /// Synced to the spool, then answered OK.
    pub spooled: Counter,
    /// Dropped by a drop rule, answered OK.
    pub dropped: Counter,
    /// Neither acknowledged nor made durable: Cyrus was answered NO.
    pub refused: Counter,
    /// Spooled notifications (the daemon's and the exec dealers') the broker acknowledged.
    pub forwarded: Counter,
    /// Notifications in the daemon's spool.
    pub spool_records: Gauge,
    /// Bytes of the daemon's spool not yet acknowledged.
    pub spool_bytes: Gauge,
}

impl DealerMetrics {
    /// Registers the dealer daemon's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let notifications = registered(
            registry,
            "bonnie_dealer_notifications",
            "Notifications from Cyrus, by how they were answered: acknowledged by the broker, \
             spooled, dropped by a rule, refused (answered NO)",
            CounterFamily::default(),
        );
        let result = |name| counter(&notifications, [("result", name)]);
        let forwarded = registered(
            registry,
            "bonnie_dealer_forwarded",
            "Spooled notifications forwarded to the broker and acknowledged",
            Counter::default(),
        );
        let spool_records = registered(
            registry,
            "bonnie_dealer_spool_records",
            "Notifications in the daemon's spool, waiting for the broker",
            Gauge::default(),
        );
        let spool_bytes = registered(
            registry,
            "bonnie_dealer_spool_bytes",
            "Bytes of the daemon's spool waiting for the broker",
            Gauge::default(),
        );
        Self {
            acknowledged: result("acknowledged"),
            spooled: result("spooled"),
            dropped: result("dropped"),
            refused: result("refused"),
            forwarded,
            spool_records,
            spool_bytes,
        }
    }
}
