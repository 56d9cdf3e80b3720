//! Pacing maths for replays: when each row is due, relative to the start of the replay.
//!
//! The schedule is absolute: row `i` is due at `(t_i - t_0) / speed` after the start, never
//! "the previous row plus the gap", so rounding and slow sends never add up to drift.
//! A row whose timestamp is earlier than one already scheduled is due at once (at the
//! latest offset so far) and counted as out of order.
//!
//! Gaps: with [`Schedule::with_max_gap`], a gap in data time longer than the limit counts as
//! the limit: every later row moves earlier by the data seconds cut so far (cumulatively, so
//! the schedule stays absolute). Timestamps themselves are never changed.
//!
//! Looping: pass `k` of the same data is shifted by `k × (span + gap)`, where `span` is the
//! first pass's time range and `gap` one typical gap between rows ([`LOOP_GAP_SECS`]), so the
//! data's clock keeps moving forward and the schedule keeps going without restarting.

use std::time::Duration;

/// The pause, in data seconds, between the end of one pass and the start of the next.
pub const LOOP_GAP_SECS: f64 = 1.0;

/// A speed factor that cannot pace a replay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("speed must be a finite number greater than 0, got {0}")]
pub struct InvalidSpeed(pub f64);

/// When a row is due, as returned by [`Schedule::due`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Due {
    /// Time after the start of the replay at which the row is due.
    pub offset: Duration,
    /// The row's timestamp is earlier than one already scheduled, so it is due at once.
    pub out_of_order: bool,
    /// The row's timestamp shifted for the current pass (unchanged in the first pass):
    /// the timestamp to send.
    pub timestamp: f64,
    /// Data seconds cut from the gap before this row by the max gap (0 when none).
    pub gap_cut: f64,
}

/// The replay schedule for a sequence of timestamps, one pass after another.
#[derive(Debug, Clone)]
pub struct Schedule {
    speed: f64,
    /// Timestamp of the very first row, `t_0`.
    origin: Option<f64>,
    /// Latest (shifted) timestamp scheduled so far and its offset.
    latest: Option<(f64, Duration)>,
    /// Smallest and largest unshifted timestamps of the first pass.
    first_pass_range: Option<(f64, f64)>,
    /// Number of the current pass, from 0.
    pass: u32,
    /// Data seconds between the starts of two passes, fixed when the second pass begins.
    period: Option<f64>,
    /// Longest gap in data seconds that is kept as it is.
    max_gap: Option<f64>,
    /// Data seconds cut from gaps so far.
    cut: f64,
}

impl Schedule {
    /// A schedule at `speed` times real time (`2.0` plays twice as fast).
    pub fn new(speed: f64) -> Result<Self, InvalidSpeed> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(InvalidSpeed(speed));
        }
        Ok(Self {
            speed,
            origin: None,
            latest: None,
            first_pass_range: None,
            pass: 0,
            period: None,
            max_gap: None,
            cut: 0.0,
        })
    }

    /// Shortens every gap between consecutive rows longer than `max_gap` (data time) to
    /// `max_gap`, so that a file with a first row years before the next does not wait years.
    pub fn with_max_gap(mut self, max_gap: Duration) -> Self {
        self.max_gap = Some(max_gap.as_secs_f64());
        self
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The current pass, counted from 0.
    pub fn pass(&self) -> u32 {
        self.pass
    }

    /// Schedules the next row, given its timestamp as written in the data (unix seconds).
    ///
    /// Offsets too large for a [`Duration`] (absurdly slow speeds) saturate at
    /// [`Duration::MAX`].
    pub fn due(&mut self, timestamp: f64) -> Due {
        if self.pass == 0 {
            let (low, high) = self.first_pass_range.unwrap_or((timestamp, timestamp));
            self.first_pass_range = Some((low.min(timestamp), high.max(timestamp)));
        }
        let timestamp = timestamp + self.shift();
        let origin = *self.origin.get_or_insert(timestamp);
        match self.latest {
            Some((latest, offset)) if timestamp < latest => Due {
                offset,
                out_of_order: true,
                timestamp,
                gap_cut: 0.0,
            },
            _ => {
                let gap = self.latest.map_or(0.0, |(latest, _)| timestamp - latest);
                let gap_cut = self.max_gap.map_or(0.0, |max| (gap - max).max(0.0));
                self.cut += gap_cut;
                let seconds = (timestamp - origin - self.cut) / self.speed;
                // Only a row before t_0 and after nothing else can be negative: the first row.
                let offset = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX);
                self.latest = Some((timestamp, offset));
                Due {
                    offset,
                    out_of_order: false,
                    timestamp,
                    gap_cut,
                }
            }
        }
    }

    /// Starts the next pass over the same data: its timestamps will be shifted to continue
    /// after the first pass's, `span + LOOP_GAP_SECS` data seconds per pass.
    pub fn next_pass(&mut self) {
        if self.period.is_none() {
            let (low, high) = self.first_pass_range.unwrap_or((0.0, 0.0));
            self.period = Some(high - low + LOOP_GAP_SECS);
        }
        self.pass += 1;
    }

    /// Data seconds added to the timestamps of the current pass.
    pub fn shift(&self) -> f64 {
        self.period.unwrap_or(0.0) * f64::from(self.pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_736_919_120.0;

    fn offsets(schedule: &mut Schedule, timestamps: &[f64]) -> Vec<Duration> {
        timestamps.iter().map(|&t| schedule.due(t).offset).collect()
    }

    #[test]
    fn at_speed_1_rows_are_due_their_data_distance_from_the_first_row() {
        let mut schedule = Schedule::new(1.0).unwrap();
        let got = offsets(&mut schedule, &[T0, T0, T0 + 1.0, T0 + 600.0]);
        assert_eq!(
            got,
            [0, 0, 1, 600].map(Duration::from_secs).to_vec(),
            "absolute offsets from t_0"
        );
    }

    #[test]
    fn at_speed_60_a_minute_of_data_takes_a_second() {
        let mut schedule = Schedule::new(60.0).unwrap();
        let got = offsets(
            &mut schedule,
            &[T0, T0 + 60.0, T0 + 600.0, T0 + 30.0 + 600.0],
        );
        assert_eq!(
            got,
            [
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_millis(10_500)
            ]
            .to_vec()
        );
    }

    #[test]
    fn fractional_timestamps_keep_sub_second_offsets() {
        let mut schedule = Schedule::new(1.0).unwrap();
        let got = offsets(&mut schedule, &[T0 + 0.25, T0 + 0.5, T0 + 1.75]);
        // 1.7e9 as f64 resolves ~0.24 µs: compare to the microsecond.
        let micros: Vec<u128> = got.iter().map(|d| d.as_micros()).collect();
        assert_eq!(micros, [0, 250_000, 1_500_000]);
    }

    #[test]
    fn a_timestamp_earlier_than_the_previous_row_is_due_at_once_and_flagged() {
        let mut schedule = Schedule::new(2.0).unwrap();
        assert!(!schedule.due(T0).out_of_order);
        let later = schedule.due(T0 + 10.0);
        assert_eq!(later.offset, Duration::from_secs(5));
        let back = schedule.due(T0 + 4.0);
        assert!(back.out_of_order);
        assert_eq!(
            back.offset,
            Duration::from_secs(5),
            "due with the previous row"
        );
        assert_eq!(back.timestamp, T0 + 4.0, "its own timestamp is still sent");
        // Still behind the latest row: out of order too, even though it is after `back`.
        assert!(schedule.due(T0 + 6.0).out_of_order);
        let resumed = schedule.due(T0 + 12.0);
        assert!(!resumed.out_of_order);
        assert_eq!(
            resumed.offset,
            Duration::from_secs(6),
            "schedule unchanged after"
        );
    }

    #[test]
    fn equal_timestamps_are_not_out_of_order() {
        let mut schedule = Schedule::new(1.0).unwrap();
        schedule.due(T0);
        assert!(!schedule.due(T0).out_of_order);
    }

    #[test]
    fn a_second_pass_continues_the_data_clock_and_the_schedule() {
        let mut schedule = Schedule::new(1.0).unwrap();
        for t in [T0, T0 + 5.0, T0 + 10.0] {
            schedule.due(t);
        }
        schedule.next_pass();
        assert_eq!(schedule.pass(), 1);
        let first = schedule.due(T0);
        assert_eq!(first.timestamp, T0 + 10.0 + LOOP_GAP_SECS);
        assert_eq!(first.offset, Duration::from_secs(11));
        assert!(!first.out_of_order);
        assert_eq!(schedule.due(T0 + 10.0).offset, Duration::from_secs(21));
        schedule.next_pass();
        let third = schedule.due(T0 + 5.0);
        assert_eq!(third.timestamp, T0 + 5.0 + 22.0);
        assert_eq!(third.offset, Duration::from_secs(27));
    }

    #[test]
    fn the_pass_period_covers_out_of_order_rows_of_the_first_pass() {
        let mut schedule = Schedule::new(1.0).unwrap();
        for t in [T0 + 2.0, T0 + 8.0, T0] {
            schedule.due(t);
        }
        schedule.next_pass();
        // span 8 s (T0..T0+8) + 1 s gap: the second pass starts after the first ended.
        assert_eq!(schedule.shift(), 9.0);
        let first = schedule.due(T0 + 2.0);
        assert!(!first.out_of_order);
        assert_eq!(first.timestamp, T0 + 11.0);
    }

    #[test]
    fn gaps_longer_than_the_max_gap_are_shortened_to_it_and_the_schedule_stays_absolute() {
        let year = 365.0 * 86_400.0;
        let mut schedule = Schedule::new(2.0)
            .unwrap()
            .with_max_gap(Duration::from_secs(10));
        let rows = [
            T0,
            T0 + year,
            T0 + year + 4.0,
            T0 + year + 3.0,
            T0 + year + 30.0,
        ];
        let due: Vec<Due> = rows.iter().map(|&t| schedule.due(t)).collect();
        let offsets: Vec<Duration> = due.iter().map(|d| d.offset).collect();
        // Gaps 1 year -> 10 s, 4 s kept, out of order at once, 26 s -> 10 s; all at speed 2.
        assert_eq!(offsets, [0, 5, 7, 7, 12].map(Duration::from_secs).to_vec());
        let cuts: Vec<f64> = due.iter().map(|d| d.gap_cut).collect();
        assert_eq!(cuts, [0.0, year - 10.0, 0.0, 0.0, 16.0]);
        let sent: Vec<f64> = due.iter().map(|d| d.timestamp).collect();
        assert_eq!(sent, rows, "timestamps are the data's own");
    }

    #[test]
    fn with_a_max_gap_a_second_pass_still_continues_the_data_clock() {
        let mut schedule = Schedule::new(1.0)
            .unwrap()
            .with_max_gap(Duration::from_secs(5));
        let rows = [T0, T0 + 100.0];
        let first: Vec<Duration> = offsets(&mut schedule, &rows);
        assert_eq!(first, [0, 5].map(Duration::from_secs).to_vec());
        schedule.next_pass();
        let second: Vec<Due> = rows.iter().map(|&t| schedule.due(t)).collect();
        let sent: Vec<f64> = second.iter().map(|d| d.timestamp).collect();
        assert_eq!(
            sent,
            [T0 + 101.0, T0 + 201.0],
            "shifted by the real span + 1 s"
        );
        let offsets: Vec<Duration> = second.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, [6, 11].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn speed_must_be_finite_and_positive() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = Schedule::new(bad).unwrap_err();
            assert!(err.to_string().contains("greater than 0"), "{err}");
        }
        assert!(Schedule::new(0.001).is_ok());
    }
}
