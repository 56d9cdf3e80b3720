//! Live-capture counters reported by senders (`POST /api/capture`, ingest role), so that
//! packets lost before they became events (dropped by the kernel, the interface or the
//! sender's queue) show beside the other counters in `/api/stats` and on the page.
//!
//! Each sender (`sensor`, its run id) reports absolute counters since its capture started,
//! about once a second and once at the end; the server keeps the latest report per sensor,
//! each counter never going down (a late, reordered report changes nothing), and shows the
//! sums. At most [`MAX_SENSORS`] are kept: a new one beyond that retires the one silent the
//! longest, whose counts stay in the sums.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::check_json_content_type;
use crate::error::ApiError;

/// Most sensors kept apart.
pub const MAX_SENSORS: usize = 256;
/// Largest report body.
const MAX_REPORT_BYTES: usize = 4096;

/// One report, as the sender posts it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Who reports: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
    pub sensor: String,
    /// The interface captured (at most 64 bytes).
    pub interface: String,
    /// The counters.
    #[serde(flatten)]
    pub counts: Counts,
    /// The capture has ended: its last report.
    #[serde(default)]
    pub ended: bool,
}

/// Capture counters (absolute since the capture started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Packets read from the capture.
    #[serde(default)]
    pub captured: u64,
    /// Packets passed over as not IP.
    #[serde(default)]
    pub not_ip: u64,
    /// Packets the kernel dropped (capture buffer full).
    #[serde(default)]
    pub kernel_dropped: u64,
    /// Packets the interface dropped.
    #[serde(default)]
    pub interface_dropped: u64,
    /// Packets the sender's queue dropped.
    #[serde(default)]
    pub queue_dropped: u64,
    /// Events the sender could not deliver.
    #[serde(default)]
    pub not_sent: u64,
}

impl Counts {
    fn max(self, o: Counts) -> Counts {
        Counts {
            captured: self.captured.max(o.captured),
            not_ip: self.not_ip.max(o.not_ip),
            kernel_dropped: self.kernel_dropped.max(o.kernel_dropped),
            interface_dropped: self.interface_dropped.max(o.interface_dropped),
            queue_dropped: self.queue_dropped.max(o.queue_dropped),
            not_sent: self.not_sent.max(o.not_sent),
        }
    }

    fn plus(self, o: Counts) -> Counts {
        Counts {
            captured: self.captured.saturating_add(o.captured),
            not_ip: self.not_ip.saturating_add(o.not_ip),
            kernel_dropped: self.kernel_dropped.saturating_add(o.kernel_dropped),
            interface_dropped: self.interface_dropped.saturating_add(o.interface_dropped),
            queue_dropped: self.queue_dropped.saturating_add(o.queue_dropped),
            not_sent: self.not_sent.saturating_add(o.not_sent),
        }
    }
}

/// The `capture` object of `/api/stats` (absent until a sender has reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Sensors capturing now (reported, not ended).
    pub sensors: usize,
    /// Sums over every sensor since the server started.
    #[serde(flatten)]
    pub counts: Counts,
    /// `kernel_dropped + interface_dropped + queue_dropped`: packets lost before they
    /// became events.
    pub dropped: u64,
}

struct Sensor {
    counts: Counts,
    updated: Instant,
    ended: bool,
}

#[derive(Default)]
struct Inner {
    sensors: HashMap<String, Sensor>,
    retired: Counts,
    version: u64,
}

/// The sensors' latest counters (see the module documentation).
#[derive(Default)]
pub struct Sensors(Mutex<Inner>);

impl Sensors {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a report (see [`Report`]); an unusable one is an error naming the field.
    pub fn report(&self, report: Report) -> Result<(), (&'static str, String)> {
        let valid_id = (1..=128).contains(&report.sensor.len())
            && report
                .sensor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !valid_id {
            return Err((
                "sensor",
                "must be 1 to 128 characters from A-Z a-z 0-9 . _ : -".into(),
            ));
        }
        if report.interface.len() > 64 {
            return Err(("interface", "is longer than 64 bytes".into()));
        }
        let mut inner = self.lock();
        if !inner.sensors.contains_key(&report.sensor) && inner.sensors.len() >= MAX_SENSORS {
            let oldest = inner
                .sensors
                .iter()
                .min_by_key(|(_, s)| s.updated)
                .map(|(k, _)| k.clone());
            if let Some(sensor) = oldest.and_then(|k| inner.sensors.remove(&k)) {
                inner.retired = inner.retired.plus(sensor.counts);
            }
        }
        let sensor = inner.sensors.entry(report.sensor).or_insert(Sensor {
            counts: Counts::default(),
            updated: Instant::now(),
            ended: false,
        });
        let counts = sensor.counts.max(report.counts);
        let changed = counts != sensor.counts || (report.ended && !sensor.ended);
        sensor.counts = counts;
        sensor.updated = Instant::now();
        sensor.ended |= report.ended;
        if changed {
            inner.version += 1;
        }
        Ok(())
    }

    /// The sums, `None` until a sensor has reported.
    pub fn stats(&self) -> Option<CaptureStats> {
        let inner = self.lock();
        if inner.version == 0 {
            return None;
        }
        let counts = inner
            .sensors
            .values()
            .fold(inner.retired, |sum, s| sum.plus(s.counts));
        Some(CaptureStats {
            sensors: inner.sensors.values().filter(|s| !s.ended).count(),
            counts,
            dropped: counts
                .kernel_dropped
                .saturating_add(counts.interface_dropped)
                .saturating_add(counts.queue_dropped),
        })
    }

    /// Changes with every report that changed a counter (for the stream's stats frames).
    pub fn version(&self) -> u64 {
        self.lock().version
    }
}

/// `POST /api/capture`: a sender's capture counters; 204, or 4xx saying what is wrong.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    check_json_content_type(&headers)?;
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a capture report is at most {MAX_REPORT_BYTES} bytes"
        )));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    let report: Report = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            ApiError::InvalidSetting {
                message: format!("{field}: {inner}"),
                field,
            }
        } else {
            ApiError::Malformed(format!("the body is not a capture report: {inner}"))
        }
    })?;
    state
        .hub
        .capture
        .report(report)
        .map_err(|(field, reason)| ApiError::InvalidSetting {
            message: format!("{field}: {reason}"),
            field: field.into(),
        })?;
    state.hub.publish_stats();
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sensor: &str, captured: u64, kernel_dropped: u64, ended: bool) -> Report {
        Report {
            sensor: sensor.into(),
            interface: "lo".into(),
            counts: Counts {
                captured,
                kernel_dropped,
                ..Counts::default()
            },
            ended,
        }
    }

    #[test]
    fn sums_take_each_sensors_latest_counters_and_never_go_down() {
        let sensors = Sensors::default();
        assert_eq!(sensors.stats(), None, "no capture, no capture stats");
        sensors.report(report("a", 10, 1, false)).unwrap();
        sensors.report(report("b", 5, 0, false)).unwrap();
        sensors.report(report("a", 20, 2, false)).unwrap();
        let v = sensors.version();
        sensors.report(report("a", 15, 1, false)).unwrap(); // late, reordered
        assert_eq!(sensors.version(), v, "nothing changed");
        sensors.report(report("b", 5, 0, true)).unwrap();
        let stats = sensors.stats().unwrap();
        assert_eq!(stats.counts.captured, 25);
        assert_eq!((stats.counts.kernel_dropped, stats.dropped), (2, 2));
        assert_eq!(stats.sensors, 1, "b has ended");
    }

    #[test]
    fn a_sensor_beyond_the_limit_retires_the_oldest_whose_counts_stay_in_the_sums() {
        let sensors = Sensors::default();
        for i in 0..=MAX_SENSORS {
            sensors
                .report(report(&format!("s{i}"), 1, 0, false))
                .unwrap();
        }
        let stats = sensors.stats().unwrap();
        assert_eq!(stats.counts.captured, MAX_SENSORS as u64 + 1);
        assert_eq!(stats.sensors, MAX_SENSORS);
    }

    #[test]
    fn a_bad_sensor_name_or_interface_is_named() {
        let sensors = Sensors::default();
        assert_eq!(
            sensors.report(report("a b", 1, 0, false)).unwrap_err().0,
            "sensor"
        );
        let mut long = report("a", 1, 0, false);
        long.interface = "x".repeat(65);
        assert_eq!(sensors.report(long).unwrap_err().0, "interface");
    }
}
