// Housekeeping as an admin sees it: the scheduler's jobs (GET /api/jobs, POST
// /api/jobs/{name}/pause|resume|run), the retention setting (GET/PUT /api/retention) and the
// daily summaries (GET /api/history/daily); and how each is put in words. No DOM, no three.

import { send } from './generator.js';

/** How often the admin card asks for the jobs while it is shown. */
export const HOUSEKEEPING_POLL_MS = 10_000;

/** Requests resolve as the generator's do: {ok: true, view} or {ok: false, status, field, message}. */
export const api = {
  jobs: (f) => send('GET', '/api/jobs', undefined, f),
  /** `action` is pause, resume or run. */
  act: (name, action, f) => send('POST', `/api/jobs/${encodeURIComponent(name)}/${action}`, undefined, f),
  retention: (f) => send('GET', '/api/retention', undefined, f),
  /** `retain` like `30d`; empty text turns retention off. */
  setRetention: (retain, f) => send('PUT', '/api/retention', { retain: String(retain ?? '').trim() || null }, f),
  daily: (f) => send('GET', '/api/history/daily', undefined, f),
};

/** `ms` (a duration) in the largest whole unit that fits: `45 s`, `12 min`, `3 h`, `2 d`. */
export function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** A job as one row of text: {name, state, last, next, paused}, at wall clock `now` (ms). */
export function describeJob(job, now) {
  const last = job.last_run;
  let lastText = 'not run yet';
  if (last) {
    const how = last.outcome === 'ok' ? 'ok' : 'failed';
    lastText = `${span(now - last.started)} ago${last.manual ? ' (run now)' : ''}: ${how}, ${last.detail}`;
  }
  let next = 'stopped';
  if (job.next_run != null) next = job.paused ? `skips the run due in ${span(job.next_run - now)}` : `in ${span(job.next_run - now)}`;
  return {
    name: job.name,
    state: job.running ? 'running' : job.paused ? 'paused' : `every ${span(job.interval_secs * 1000)}`,
    last: lastText,
    failed: last?.outcome === 'error',
    next,
    paused: job.paused,
  };
}

/** A day's summary as table cells: day, events, suspicious share, top countries. */
export function dayRow(day) {
  const share = day.events > 0 ? `${((100 * day.suspicious) / day.events).toFixed(1)}%` : '–';
  const countries = (day.top_countries ?? []).map((c) => `${c.country_code} ${c.count.toLocaleString('en-US')}`).join(', ');
  return [day.day, day.events.toLocaleString('en-US'), share, countries || '–'];
}

/** The retention setting in words. */
export function describeRetention(answer) {
  return answer?.retain ? `events older than ${answer.retain} are deleted (hour rollups and daily summaries kept)` : 'off: every event is kept';
}
