//! The Prometheus metrics of bonnie's daemons: the metric types they count with (the
//! Prometheus project's `prometheus-client`, atomic counters and gauges) and the `/metrics`
//! listener that serves them.
//!
//! A daemon builds a [`Registry`], registers its metrics, keeps their handles (clones share
//! one atomic) and hands the registry to [`serve`]. The listener answers `GET /metrics` with
//! the Prometheus text format (version 0.0.4, what `promtool check metrics` and every
//! Prometheus server read) and nothing else; it is read-only and unauthenticated, so it
//! belongs on loopback, and is off unless the daemon's `metrics_listen` is set.
#![forbid(unsafe_code)]

mod listener;

use prometheus_client::{metrics::histogram::exponential_buckets, registry::Metric};
/// The metric types, re-exported so that every daemon names the one version this crate uses.
pub use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

pub use listener::{MetricsError, MetricsServer, serve};

/// The labels of one series, by name: a small vector, hashed when a series is first looked
/// up. Hot paths keep the series they count in (a cloned [`Counter`] or [`Histogram`] is the
/// same series) instead of looking it up for each event.
pub type Labels = Vec<(&'static str, String)>;

/// Counters by label set.
pub type CounterFamily = Family<Labels, Counter>;

/// Latency histograms by label set, all with [`latency_histogram`]'s buckets.
pub type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// A histogram of durations in seconds: buckets from 0.5 ms doubling to 32 s (and +Inf), the
/// range from a cached handler to an IMAP fetch of a large message.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// A family of [`latency_histogram`]s.
pub fn latency_histograms() -> HistogramFamily {
    Family::new_with_constructor(latency_histogram)
}

/// Registers `metric` in `registry` as `name` with `help` (a sentence; the encoder adds the
/// full stop); the handle to count with, sharing its series with the registered one.
pub fn registered<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// `Labels` from `(name, value)` pairs.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect()
}

/// The counter of `family` for `pairs`: a handle to keep for counting without a look-up.
pub fn counter<const N: usize>(
    family: &CounterFamily,
    pairs: [(&'static str, &str); N],
) -> Counter {
    family.get_or_create_owned(&labels(pairs))
}

/// The histogram of `family` for `pairs`: a handle to keep for observing without a look-up.
pub fn histogram<const N: usize>(
    family: &HistogramFamily,
    pairs: [(&'static str, &str); N],
) -> Histogram {
    family.get_or_create_owned(&labels(pairs))
}
