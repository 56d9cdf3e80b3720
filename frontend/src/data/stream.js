// The live stream: EventSource on /api/stream (same origin). The browser resends the last
// event id itself when it reconnects; if it gives up (e.g. the server answered 502), we
// open a new stream after a pause and the server's snapshot repaints everything.

const RETRY_MS = 2000;

/**
 * @param {string} url
 * @param {{snapshot: Function, hits: Function, stats: Function, status: Function}} on
 * @returns {{close: () => void}}
 */
export function connectStream(url, on) {
  let source = null;
  let timer = null;
  let closed = false;

  const parse = (handler) => (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (e) {
      console.warn('stream: unreadable message', e);
      return;
    }
    handler(data, event.lastEventId);
  };

  function open() {
    on.status('connecting');
    source = new EventSource(url);
    source.addEventListener('open', () => on.status('live'));
    source.addEventListener('snapshot', parse(on.snapshot));
    source.addEventListener('hits', parse(on.hits));
    source.addEventListener('stats', parse(on.stats));
    source.addEventListener('error', () => {
      if (closed) return;
      if (source.readyState === EventSource.CLOSED) {
        on.status('offline');
        timer = setTimeout(open, RETRY_MS);
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
