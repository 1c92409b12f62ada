//! From a slow percentile to the request behind it: the W3C trace context sonde sends, the
//! slowest-request exemplars against the real demo (`slow-profile`), and live metrics pushed to
//! a real Prometheus.

mod context;
mod exemplars;
mod prometheus;
