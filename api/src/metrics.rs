//! bonnie-api's Prometheus metrics: HTTP requests by method and status, and their latency.
//! Methods other than the usual few count as `other`, so that a client cannot make series.

use std::time::Duration;

use bonnie_metrics::{
    CounterFamily, HistogramFamily, Registry, labels, latency_histograms, registered,
};
use hyper::{Method, StatusCode};

/// The handles bonnie-api counts with.
pub struct ApiMetrics {
    requests: CounterFamily,
    latency: HistogramFamily,
}

impl ApiMetrics {
    /// Registers bonnie-api's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = registered(
            registry,
            "bonnie_api_requests",
            "HTTP requests answered, by method and status",
            CounterFamily::default(),
        );
        let latency = registered(
            registry,
            "bonnie_api_request_duration_seconds",
            "Time from a request's head to its answer, body and call included, by method",
            latency_histograms(),
        );
        Self { requests, latency }
    }

    /// Counts one request answered with `status` after `took`.
    pub fn answered(&self, method: &Method, status: StatusCode, took: Duration) {
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        self.requests
            .get_or_create(&labels([("method", method), ("status", status.as_str())]))
            .inc();
        self.latency
            .get_or_create(&labels([("method", method)]))
            .observe(took.as_secs_f64());
    }
}
