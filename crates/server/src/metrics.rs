//! Counters for `GET /metrics`, rendered in the Prometheus text exposition format.
//!
//! A handful of relaxed atomics: cheaper on the ingest path than a metrics registry, and
//! the exposition text is simple enough to write by hand.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The server's counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) events_accepted: AtomicU64,
    pub(crate) requests_accepted: AtomicU64,
    pub(crate) requests_malformed: AtomicU64,
    pub(crate) requests_invalid: AtomicU64,
    pub(crate) requests_too_large: AtomicU64,
    pub(crate) requests_wrong_type: AtomicU64,
    pub(crate) clients_connected: AtomicU64,
    pub(crate) clients_total: AtomicU64,
    pub(crate) streams_refused: AtomicU64,
    pub(crate) snapshot_timeouts: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) lag_resyncs: AtomicU64,
    pub(crate) frames_published: AtomicU64,
}

impl Metrics {
    /// Requests refused, all reasons together.
    pub fn requests_rejected(&self) -> u64 {
        self.requests_malformed.load(Relaxed)
            + self.requests_invalid.load(Relaxed)
            + self.requests_too_large.load(Relaxed)
            + self.requests_wrong_type.load(Relaxed)
    }

    /// Clients connected to the stream right now.
    pub fn clients_connected(&self) -> u64 {
        self.clients_connected.load(Relaxed)
    }

    /// The exposition text; `published` and `recent` are gauges read from the hub.
    pub fn render(&self, published: u64, recent: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let get = |a: &AtomicU64| a.load(Relaxed);
        metric(
            "traffic_events_accepted_total",
            "counter",
            "Events accepted by POST /api/events.",
            &[("", get(&self.events_accepted))],
        );
        metric(
            "traffic_ingest_requests_total",
            "counter",
            "POST /api/events requests by outcome.",
            &[
                ("{outcome=\"accepted\"}", get(&self.requests_accepted)),
                ("{outcome=\"malformed\"}", get(&self.requests_malformed)),
                ("{outcome=\"invalid\"}", get(&self.requests_invalid)),
                ("{outcome=\"too_large\"}", get(&self.requests_too_large)),
                (
                    "{outcome=\"unsupported_media_type\"}",
                    get(&self.requests_wrong_type),
                ),
            ],
        );
        metric(
            "traffic_events_published_total",
            "counter",
            "Events published to the stream (the newest event id).",
            &[("", published)],
        );
        metric(
            "traffic_frames_published_total",
            "counter",
            "Stream messages published to all clients.",
            &[("", get(&self.frames_published))],
        );
        metric(
            "traffic_recent_events",
            "gauge",
            "Events held in the ring used for resumes and snapshots.",
            &[("", recent as u64)],
        );
        metric(
            "traffic_stream_clients",
            "gauge",
            "Clients connected to GET /api/stream.",
            &[("", get(&self.clients_connected))],
        );
        metric(
            "traffic_stream_connections_total",
            "counter",
            "Connections made to GET /api/stream.",
            &[("", get(&self.clients_total))],
        );
        metric(
            "traffic_stream_refused_total",
            "counter",
            "Connections to GET /api/stream refused with 503 because --max-streams were open.",
            &[("", get(&self.streams_refused))],
        );
        metric(
            "traffic_stream_snapshot_timeouts_total",
            "counter",
            "Streams ended because the client did not take its snapshot within --snapshot-timeout-secs.",
            &[("", get(&self.snapshot_timeouts))],
        );
        metric(
            "traffic_stream_starts_total",
            "counter",
            "How streams began: resumed from Last-Event-ID, or with a snapshot.",
            &[
                ("{start=\"resume\"}", get(&self.resumes)),
                ("{start=\"snapshot\"}", get(&self.snapshots)),
            ],
        );
        metric(
            "traffic_stream_lag_resyncs_total",
            "counter",
            "Times a client fell behind the fan-out buffer and was sent a fresh snapshot.",
            &[("", get(&self.lag_resyncs))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_help_type_and_current_values() {
        let m = Metrics::default();
        m.events_accepted.fetch_add(7, Relaxed);
        m.requests_invalid.fetch_add(2, Relaxed);
        let text = m.render(7, 3);
        assert!(text.contains(
            "# TYPE traffic_events_accepted_total counter\ntraffic_events_accepted_total 7\n"
        ));
        assert!(text.contains("traffic_ingest_requests_total{outcome=\"invalid\"} 2\n"));
        assert!(text.contains("traffic_recent_events 3\n"));
        assert_eq!(m.requests_rejected(), 2);
    }
}
