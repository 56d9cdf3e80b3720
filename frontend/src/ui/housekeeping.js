// The housekeeping card (admins): the jobs with their last and next run and buttons to pause,
// resume or run each now; the retention setting; the daily summaries. Only DOM: what the admin
// does is reported through callbacks; text from the server is set with textContent.

import { describeJob, dayRow, describeRetention } from '../data/housekeeping.js';

export function createHousekeeping(root, on, doc = document) {
  const jobs = root.querySelector('[data-testid="jobs"]');
  const days = root.querySelector('[data-testid="daily"]');
  const retention = root.querySelector('[data-testid="retention-now"]');
  const input = root.querySelector('#retain');
  const said = root.querySelector('[data-testid="housekeeping-said"]');
  root.querySelector('#retention-form').addEventListener('submit', (e) => {
    e.preventDefault();
    on.setRetention(input.value);
  });
  root.querySelector('#housekeeping-refresh').addEventListener('click', () => on.refresh());
  const cell = (tag, text) => {
    const el = doc.createElement(tag);
    el.textContent = text;
    return el;
  };
  const button = (text, testid, act) => {
    const b = cell('button', text);
    b.setAttribute('type', 'button');
    b.setAttribute('data-testid', testid);
    b.addEventListener('click', act);
    return b;
  };
  return {
    /** Lists the jobs (as GET /api/jobs gives them) at wall clock `now` (ms). */
    showJobs(list, now) {
      jobs.replaceChildren();
      for (const job of list) {
        const d = describeJob(job, now);
        const row = doc.createElement('tr');
        row.setAttribute('data-job', d.name);
        const last = cell('td', d.last);
        if (d.failed) last.setAttribute('class', 'failed');
        // The job's name with its buttons under it (the card is narrow).
        const name = doc.createElement('td');
        const actions = doc.createElement('div');
        actions.append(
          d.paused
            ? button('Resume', `job-resume-${d.name}`, () => on.act(d.name, 'resume'))
            : button('Pause', `job-pause-${d.name}`, () => on.act(d.name, 'pause')),
          button('Run now', `job-run-${d.name}`, () => on.act(d.name, 'run')),
        );
        name.append(cell('strong', d.name), actions);
        const when = doc.createElement('td');
        when.append(cell('div', d.state), cell('div', d.next));
        row.append(name, when, last);
        jobs.append(row);
      }
    },
    /** The retention setting (GET /api/retention's answer). */
    showRetention(answer) {
      retention.textContent = describeRetention(answer);
      if (doc.activeElement !== input) input.value = answer?.retain ?? '';
    },
    /** The daily summaries, newest first. */
    showDays(list) {
      days.replaceChildren();
      for (const day of list) {
        const row = doc.createElement('tr');
        row.append(...dayRow(day).map((text) => cell('td', text)));
        days.append(row);
      }
      if (list.length === 0) {
        const row = doc.createElement('tr');
        row.append(cell('td', 'no daily summaries yet'));
        days.append(row);
      }
    },
    /** A one-line answer (a refused setting, a failed action). */
    say(text) {
      said.textContent = text;
    },
  };
}
