// Who is watching: the session endpoints of the server (same origin, through web). The
// session itself is an HttpOnly cookie the browser keeps; nothing secret is held here.

/** A JSON request; resolves to {status, body} (body null when there is none). */
async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  return { status: response.status, body: json };
}

/** GET /api/me: 200 {user, role, open, setup_required}, or 401 when a login is needed. */
export const me = () => call('GET', '/api/me');
/** POST /api/login. */
export const login = (user, password) => call('POST', '/api/login', { user, password });
/** POST /api/setup: the first admin, with the one-time token from the server's log. */
export const setup = (token, user, password) => call('POST', '/api/setup', { token, user, password });
/** POST /api/logout: ends the session and its streams. */
export const logout = () => call('POST', '/api/logout');
/** POST /api/users (admins): adds a user or sets their role and password. */
export const addUser = (name, role, password) => call('POST', '/api/users', { name, role, password });
/** POST /api/tokens (admins): a new ingest token, in the answer only. */
export const addToken = (name) => call('POST', '/api/tokens', { name });
/** GET /api/audit (admins). */
export const audit = (limit = 50) => call('GET', `/api/audit?limit=${limit}`);

/** What the page may show for a `me` answer: `login`, `setup`, or `in` (with role). */
export function access(answer) {
  if (answer.status === 401) {
    return { view: answer.body?.message?.startsWith('no admin yet') ? 'setup' : 'login' };
  }
  const body = answer.body || {};
  return { view: 'in', user: body.user || null, role: body.role || null, open: !!body.open };
}

/** The setup token in a link like `#setup=TOKEN`, or ''. */
export function setupToken(hash) {
  const m = /(?:^#|&)setup=([A-Za-z0-9_-]+)/.exec(hash || '');
  return m ? m[1] : '';
}
