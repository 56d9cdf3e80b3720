//! The scheduler of the server's housekeeping jobs (retention, daily summaries, rotation of
//! the request log) and its admin endpoints: `GET /api/jobs`, `POST
//! /api/jobs/{name}/pause|resume|run`.
//!
//! Each job is a task of its own that sleeps until its next run (an absolute schedule:
//! `first_after`, then every `interval`), runs its work on a blocking thread (never on the
//! threads that serve ingest), and records when it ran, how long, and what came of it. A
//! paused job skips its scheduled runs until resumed; "run now" runs it at once, paused or
//! not. Shutdown ends the waiting tasks; a run in progress is waited for.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::ApiError;
use crate::hub::unix_ms;

/// What a job does: runs on a blocking thread, says what it did (`deleted 12 events`) or
/// why it failed.
pub type Work = Arc<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

/// The jobs of a server.
#[derive(Default)]
pub struct Jobs {
    jobs: Vec<Arc<Job>>,
}

struct Job {
    name: &'static str,
    first_after: Duration,
    interval: Duration,
    state: Mutex<JobState>,
    /// "Run now".
    poke: Notify,
}

#[derive(Default)]
struct JobState {
    paused: bool,
    running: bool,
    runs: u64,
    last: Option<LastRun>,
    next: Option<Instant>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The work was done.
    Ok,
    /// It failed (`detail` says why); the job runs again at its next time.
    Error,
}

/// A job's last run.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// When it started, unix milliseconds.
    pub started: u64,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it did, or why it failed.
    pub detail: String,
    /// Started by "run now" rather than by the schedule.
    pub manual: bool,
}

/// A job as `GET /api/jobs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Its name (`retention`, `daily-summary`, `request-log-rotation`).
    pub name: &'static str,
    /// Seconds between scheduled runs.
    pub interval_secs: u64,
    /// Scheduled runs are skipped until resumed.
    pub paused: bool,
    /// A run is in progress.
    pub running: bool,
    /// Runs since the server started.
    pub runs: u64,
    /// The last run, if any.
    pub last_run: Option<LastRun>,
    /// When the next scheduled run is due, unix milliseconds (null while stopped). A paused
    /// job keeps its schedule and skips the run.
    pub next_run: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the job state half-changed.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Jobs {
    /// Adds a job: first run `first_after` the scheduler starts, then every `interval`.
    pub fn add(&mut self, name: &'static str, first_after: Duration, interval: Duration) {
        self.jobs.push(Arc::new(Job {
            name,
            first_after,
            interval: interval.max(Duration::from_millis(1)),
            state: Mutex::default(),
            poke: Notify::new(),
        }));
    }

    fn find(&self, name: &str) -> Option<&Arc<Job>> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Every job, in the order added.
    pub fn list(&self) -> Vec<JobView> {
        self.jobs.iter().map(|j| j.view()).collect()
    }

    /// The names of the paused jobs, in the order they were added.
    pub fn paused(&self) -> Vec<&'static str> {
        self.list()
            .into_iter()
            .filter(|j| j.paused)
            .map(|j| j.name)
            .collect()
    }

    /// One job (`None`: no such job).
    pub fn get(&self, name: &str) -> Option<JobView> {
        self.find(name).map(|j| j.view())
    }

    /// Pauses (`true`) or resumes a job; `None` if there is no such job.
    pub fn set_paused(&self, name: &str, paused: bool) -> Option<JobView> {
        let job = self.find(name)?;
        lock(&job.state).paused = paused;
        Some(job.view())
    }

    /// Runs a job now (paused or not; after the current run if one is in progress); `None`
    /// if there is no such job.
    pub fn run_now(&self, name: &str) -> Option<JobView> {
        let job = self.find(name)?;
        job.poke.notify_one();
        Some(job.view())
    }

    /// Starts the task of every job that `work` gives the work of; they end when `stop` is
    /// cancelled (a run in progress first finishes). Await the handle to wait for them.
    pub fn spawn(
        &self,
        stop: CancellationToken,
        work: impl Fn(&str) -> Option<Work>,
    ) -> tokio::task::JoinHandle<()> {
        let tasks: Vec<_> = self
            .jobs
            .iter()
            .filter_map(|job| {
                let work = work(job.name)?;
                Some(tokio::spawn(Arc::clone(job).schedule(work, stop.clone())))
            })
            .collect();
        tokio::spawn(async move {
            for task in tasks {
                if let Err(e) = task.await {
                    tracing::error!(error = %e, "a housekeeping job's task failed");
                }
            }
        })
    }
}

impl Job {
    fn view(&self) -> JobView {
        let state = lock(&self.state);
        let now = Instant::now();
        let wall = unix_ms(SystemTime::now());
        JobView {
            name: self.name,
            interval_secs: self.interval.as_secs(),
            paused: state.paused,
            running: state.running,
            runs: state.runs,
            last_run: state.last.clone(),
            next_run: state
                .next
                .map(|next| wall + next.saturating_duration_since(now).as_millis() as u64),
        }
    }

    async fn schedule(self: Arc<Self>, work: Work, stop: CancellationToken) {
        let mut next = Instant::now() + self.first_after;
        loop {
            lock(&self.state).next = Some(next);
            let manual = tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(next) => false,
                () = self.poke.notified() => true,
            };
            if !manual {
                // Absolute: the next run is an interval after this one was due; runs missed
                // while one took longer are skipped, not bunched.
                next += self.interval;
                let now = Instant::now();
                if next <= now {
                    next = now + self.interval;
                }
                if lock(&self.state).paused {
                    continue;
                }
            }
            self.run(&work, manual).await;
        }
        lock(&self.state).next = None;
    }

    async fn run(&self, work: &Work, manual: bool) {
        let started = unix_ms(SystemTime::now());
        let clock = Instant::now();
        lock(&self.state).running = true;
        let work = Arc::clone(work);
        let result = match tokio::task::spawn_blocking(move || work()).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the job panicked: {e}")),
        };
        let (outcome, detail) = match result {
            Ok(detail) => {
                tracing::info!(job = self.name, %detail, "housekeeping job done");
                (Outcome::Ok, detail)
            }
            Err(e) => {
                let detail = format!("{e:#}");
                tracing::warn!(job = self.name, error = %detail, "housekeeping job failed");
                (Outcome::Error, detail)
            }
        };
        let mut state = lock(&self.state);
        state.running = false;
        state.runs += 1;
        state.last = Some(LastRun {
            started,
            duration_ms: clock.elapsed().as_millis() as u64,
            outcome,
            detail,
            manual,
        });
    }
}

/// The answer of `GET /api/jobs`.
#[derive(Serialize)]
pub struct JobList {
    /// Every job.
    jobs: Vec<JobView>,
}

/// `GET /api/jobs` (admin): every job with its interval, last run, next run and pause flag.
pub async fn list(State(state): State<AppState>) -> Json<JobList> {
    Json(JobList {
        jobs: state.jobs.list(),
    })
}

fn no_such_job(name: &str) -> ApiError {
    ApiError::NotFound(format!("job {name:?} (see GET /api/jobs)"))
}

/// `POST /api/jobs/{name}/pause` (admin): scheduled runs are skipped until resumed, also
/// after a restart (saved in `settings.json`).
pub async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    set_paused(&state, &name, true).await
}

/// `POST /api/jobs/{name}/resume` (admin).
pub async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    set_paused(&state, &name, false).await
}

/// Pauses or resumes `name` and saves which jobs are paused for the next start.
async fn set_paused(state: &AppState, name: &str, paused: bool) -> Result<Json<JobView>, ApiError> {
    let _changing = match &state.settings {
        Some(settings) => Some(settings.changing().await),
        None => None,
    };
    let view = state
        .jobs
        .set_paused(name, paused)
        .ok_or_else(|| no_such_job(name))?;
    if let Some(settings) = &state.settings {
        let names = state.jobs.paused().into_iter().map(str::to_owned).collect();
        settings.save_paused_jobs(names).await.map_err(|e| {
            ApiError::Internal(e.context(
                "the job is paused or resumed, but that could not be saved for the next start",
            ))
        })?;
    }
    Ok(Json(view))
}

/// `POST /api/jobs/{name}/run` (admin): runs it now, paused or not; the answer is the job
/// as it was asked (its last run shows the outcome once done).
pub async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    state
        .jobs
        .run_now(&name)
        .map(Json)
        .ok_or_else(|| no_such_job(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// A job whose runs report on a channel; `fail` makes each run an error.
    fn jobs_with(
        first: u64,
        every: u64,
        fail: bool,
    ) -> (Jobs, Work, mpsc::UnboundedReceiver<u64>, CancellationToken) {
        let (sender, runs) = mpsc::unbounded_channel();
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut jobs = Jobs::default();
        jobs.add(
            "tick",
            Duration::from_secs(first),
            Duration::from_secs(every),
        );
        let work: Work = Arc::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let _ = sender.send(n);
            if fail {
                anyhow::bail!("disk full (run {n})");
            }
            Ok(format!("did {n}"))
        });
        (jobs, work, runs, CancellationToken::new())
    }

    fn spawn_tick(
        jobs: &Jobs,
        work: &Work,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        jobs.spawn(stop.clone(), |name| {
            (name == "tick").then(|| Arc::clone(work))
        })
    }

    /// Waits for the job's `runs` to reach `n` as recorded (the channel hears of a run
    /// before its record is written).
    async fn recorded(jobs: &Jobs, n: u64) -> JobView {
        for _ in 0..1000 {
            let view = jobs.get("tick").unwrap();
            if view.runs >= n && !view.running {
                return view;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("run {n} never recorded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_runs_first_after_its_delay_then_every_interval_and_records_each_run() {
        let (jobs, work, mut runs, stop) = jobs_with(10, 60, false);
        let start = Instant::now();
        let handle = spawn_tick(&jobs, &work, &stop);
        assert_eq!(runs.recv().await, Some(1));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        let view = recorded(&jobs, 1).await;
        let last = view.last_run.unwrap();
        assert_eq!((last.outcome, last.detail.as_str()), (Outcome::Ok, "did 1"));
        assert!(!last.manual);
        let next = view.next_run.unwrap();
        let now = unix_ms(SystemTime::now());
        assert!(
            next > now + 55_000 && next <= now + 60_000,
            "next run an interval after the first: {next} vs {now}"
        );
        assert_eq!(runs.recv().await, Some(2));
        assert_eq!(start.elapsed(), Duration::from_secs(70));
        assert_eq!(runs.recv().await, Some(3));
        assert_eq!(start.elapsed(), Duration::from_secs(130));
        stop.cancel();
        handle.await.unwrap();
        assert_eq!(jobs.get("tick").unwrap().next_run, None, "stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_job_skips_its_runs_until_resumed_and_run_now_runs_it_anyway() {
        let (jobs, work, mut runs, stop) = jobs_with(60, 60, false);
        let start = Instant::now();
        let handle = spawn_tick(&jobs, &work, &stop);
        assert!(jobs.set_paused("tick", true).unwrap().paused);
        // Five scheduled times pass: nothing runs.
        tokio::time::sleep(Duration::from_secs(5 * 60 + 30)).await;
        assert!(runs.try_recv().is_err());
        assert_eq!(jobs.get("tick").unwrap().runs, 0);
        // Run now, while paused: at once.
        jobs.run_now("tick").unwrap();
        assert_eq!(runs.recv().await, Some(1));
        assert_eq!(start.elapsed(), Duration::from_secs(330));
        assert!(recorded(&jobs, 1).await.last_run.unwrap().manual);
        // Resumed: the next scheduled time (6 min) runs it.
        assert!(!jobs.set_paused("tick", false).unwrap().paused);
        assert_eq!(runs.recv().await, Some(2));
        assert_eq!(start.elapsed(), Duration::from_secs(360));
        stop.cancel();
        handle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_run_is_recorded_as_an_error_with_its_reason_and_the_schedule_goes_on() {
        let (jobs, work, mut runs, stop) = jobs_with(1, 30, true);
        let handle = spawn_tick(&jobs, &work, &stop);
        assert_eq!(runs.recv().await, Some(1));
        let last = recorded(&jobs, 1).await.last_run.unwrap();
        assert_eq!(last.outcome, Outcome::Error);
        assert_eq!(last.detail, "disk full (run 1)");
        assert_eq!(runs.recv().await, Some(2));
        stop.cancel();
        handle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_jobs_are_none_and_shutdown_ends_the_scheduler() {
        let (jobs, work, _runs, stop) = jobs_with(3600, 3600, false);
        assert!(jobs.set_paused("nope", true).is_none());
        assert!(jobs.run_now("nope").is_none());
        let handle = spawn_tick(&jobs, &work, &stop);
        tokio::task::yield_now().await;
        assert!(jobs.get("tick").unwrap().next_run.is_some());
        stop.cancel();
        handle.await.unwrap();
        assert_eq!(jobs.get("tick").unwrap().runs, 0);
    }
}
