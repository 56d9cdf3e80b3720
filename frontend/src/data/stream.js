// The live stream: EventSource on /api/stream (same origin). The browser resends the last
// event id itself when it reconnects; if it gives up (e.g. the server answered 502), we
// open a new stream after a pause, passing the last id as `?last_event_id=` (a new
// EventSource cannot set the header), so the server resumes without loss when it still
// can and sends a snapshot otherwise.

const RETRY_MS = 2000;

/**
 * When the browser gives up on a stream, `on.refused()` (if given) is asked first whether
 * to stop: it resolves to true when the server wants a login (the stream answered 401),
 * and the stream then stays closed until it is opened again.
 *
 * @param {string} url
 * @param {{snapshot: Function, hits: Function, stats: Function, status: Function,
 *          refused?: Function, analytics?: Function, alert?: Function}} on
 * @returns {{close: () => void}}
 */
export function connectStream(url, on) {
  let source = null;
  let timer = null;
  let closed = false;
  let lastId = '';

  const parse = (handler) => (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (e) {
      console.warn('stream: unreadable message', e);
      return;
    }
    if (event.lastEventId) lastId = event.lastEventId;
    handler(data, event.lastEventId);
  };

  function open() {
    on.status('connecting');
    source = new EventSource(resumeUrl(url, lastId));
    source.addEventListener('open', () => on.status('live'));
    source.addEventListener('snapshot', parse(on.snapshot));
    source.addEventListener('hits', parse(on.hits));
    source.addEventListener('stats', parse(on.stats));
    if (on.analytics) source.addEventListener('analytics', parse(on.analytics));
    if (on.alert) source.addEventListener('alert', parse(on.alert));
    source.addEventListener('error', () => {
      if (closed) return;
      if (source.readyState === EventSource.CLOSED) {
        on.status('offline');
        Promise.resolve(on.refused ? on.refused() : false)
          .catch(() => false)
          .then((stop) => {
            if (!stop && !closed) timer = setTimeout(open, RETRY_MS);
          });
      } else {
        on.status('reconnecting');
      }
    });
  }
  open();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (source) source.close();
    },
  };
}

/** `url` with the id to resume after, if there is one. */
export function resumeUrl(url, lastId) {
  if (!lastId) return url;
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}last_event_id=${encodeURIComponent(lastId)}`;
}
