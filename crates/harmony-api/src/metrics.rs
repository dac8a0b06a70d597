//! Prometheus metrics, served at `/metrics` in the text exposition format.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route pattern (`/api/v1/chats/{id}`), never the raw path, to bound cardinality.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

/// Every metric Harmony exports. One per process, shared by handlers, gateway and workers.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram>,
    pub ws_sessions: Gauge,
    pub ws_closed_too_slow: Counter,
    pub messages_appended: Counter,
    pub messages_delivered: Counter,
    pub consumer_processed: Family<ConsumerLabels, Counter>,
    pub consumer_lag: Family<ConsumerLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("harmony");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let ws_sessions = Gauge::default();
        let ws_closed_too_slow = Counter::default();
        let messages_appended = Counter::default();
        let messages_delivered = Counter::default();
        let consumer_processed = Family::<ConsumerLabels, Counter>::default();
        let consumer_lag = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            http_duration.clone(),
        );
        registry.register(
            "ws_sessions",
            "Open WebSocket sessions",
            ws_sessions.clone(),
        );
        registry.register(
            "ws_closed_too_slow",
            "Sessions closed with 4008 because their queue overflowed",
            ws_closed_too_slow.clone(),
        );
        registry.register(
            "messages_appended",
            "Messages committed to the log by this node",
            messages_appended.clone(),
        );
        registry.register(
            "messages_delivered",
            "Message frames written to WebSocket sessions",
            messages_delivered.clone(),
        );
        registry.register(
            "consumer_processed",
            "Records a consumer finished",
            consumer_processed.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records in the log not yet committed by a consumer",
            consumer_lag.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            ws_sessions,
            ws_closed_too_slow,
            messages_appended,
            messages_delivered,
            consumer_processed,
            consumer_lag,
        }
    }

    pub fn observe_http(&self, labels: HttpLabels, elapsed: Duration) {
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn consumer(&self, consumer: &str) -> ConsumerLabels {
        ConsumerLabels {
            consumer: consumer.to_owned(),
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
