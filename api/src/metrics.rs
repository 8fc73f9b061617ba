//! bonnie-api's Prometheus metrics: HTTP requests by method and status with their latency,
//! and JSON-RPC calls by method and outcome with theirs. HTTP methods other than the usual
//! few count as `other`, and call methods the service does not have as `unknown`, so that a
//! client cannot make series.

use std::time::Duration;

use bonnie_metrics::{
    CounterFamily, HistogramFamily, Registry, labels, latency_histograms, registered,
};
use hyper::{Method, StatusCode};

use crate::methods;

/// The handles bonnie-api counts with. [`ApiMetrics::default`] counts into families no
/// registry serves (a service without metrics).
pub struct ApiMetrics {
    requests: CounterFamily,
    request_latency: HistogramFamily,
    calls: CounterFamily,
    call_latency: HistogramFamily,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            requests: CounterFamily::default(),
            request_latency: latency_histograms(),
            calls: CounterFamily::default(),
            call_latency: latency_histograms(),
        }
    }
}

impl ApiMetrics {
    /// Registers bonnie-api's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let unregistered = Self::default();
        Self {
            requests: registered(
                registry,
                "bonnie_api_requests",
                "HTTP requests answered, by method and status",
                unregistered.requests,
            ),
            request_latency: registered(
                registry,
                "bonnie_api_request_duration_seconds",
                "Time from a request's head to its answer, body and calls included, by method",
                unregistered.request_latency,
            ),
            calls: registered(
                registry,
                "bonnie_api_calls",
                "JSON-RPC calls run, by method and outcome (ok, error)",
                unregistered.calls,
            ),
            call_latency: registered(
                registry,
                "bonnie_api_call_duration_seconds",
                "Time one JSON-RPC call took, by method",
                unregistered.call_latency,
            ),
        }
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
        self.request_latency
            .get_or_create(&labels([("method", method)]))
            .observe(took.as_secs_f64());
    }

    /// Counts one call of `method` that ran, succeeded or not (`ok`), in `took`.
    pub fn called(&self, method: &str, ok: bool, took: Duration) {
        let method = if methods::is_method(method) {
            method
        } else {
            "unknown"
        };
        let outcome = if ok { "ok" } else { "error" };
        self.calls
            .get_or_create(&labels([("method", method), ("outcome", outcome)]))
            .inc();
        self.call_latency
            .get_or_create(&labels([("method", method)]))
            .observe(took.as_secs_f64());
    }
}
