// The server's /api/info: which IP databases place hits, with the attribution their licence
// requires (DB-IP: "IP Geolocation by DB-IP", linked to https://db-ip.com) and their build
// date, shown in the legend. Nothing is shown when no database is loaded. Built with DOM
// APIs only: every text from the server is set with textContent, and a link only for an
// http(s) address.

/** Splits "Text (https://site), rest" into a link and plain text; anything else stays text. */
export function attributionParts(attribution) {
  const m = /^(.+?) \((https?:\/\/[^\s()]+)\)(.*)$/.exec(attribution);
  if (!m) return [{ text: attribution }];
  const parts = [{ text: m[1], href: m[2] }];
  if (m[3]) parts.push({ text: m[3] });
  return parts;
}

/**
 * What the legend says about the IP databases: `{ attributions: [[part]], built: 'YYYY-MM-DD, ...',
 * types: 'DBIP-City-Lite' }`, or null when none is loaded. Equal attributions and dates (the
 * IPv4 and IPv6 files of one release) are named once.
 */
export function describeDatabases(info) {
  const dbs = Array.isArray(info?.databases) ? info.databases : [];
  if (dbs.length === 0) return null;
  const unique = (xs) => [...new Set(xs.filter((x) => typeof x === 'string' && x))];
  const attributions = unique(dbs.map((d) => d.attribution)).map(attributionParts);
  const built = unique(dbs.map((d) => (typeof d.build_date === 'string' ? d.build_date.slice(0, 10) : null)));
  const types = unique(dbs.map((d) => d.type));
  return { attributions, built: built.join(', '), types: types.join(', ') };
}

/** Fills `el` with the databases' attribution and build date, or hides it when there is none. */
export function renderDatabases(el, info, doc = document) {
  const d = describeDatabases(info);
  el.replaceChildren();
  el.hidden = d === null;
  if (d === null) return;
  const out = [];
  d.attributions.forEach((parts, i) => {
    if (i > 0) out.push(doc.createTextNode('; '));
    for (const part of parts) {
      if (part.href) {
        const a = doc.createElement('a');
        a.href = part.href;
        a.rel = 'noopener';
        a.target = '_blank';
        a.textContent = part.text;
        out.push(a);
      } else {
        out.push(doc.createTextNode(part.text));
      }
    }
  });
  const built = d.built ? `built ${d.built}` : '';
  if (d.attributions.length) {
    if (built) out.push(doc.createTextNode(` · database ${built}`));
  } else {
    out.push(doc.createTextNode(`IP database ${d.types}${built ? `, ${built}` : ''}`));
  }
  el.append(...out);
}

/** Fetches `url` once and renders it into `el`; a failed fetch leaves `el` hidden. Returns
 * the info (null when there is none), for the other parts it tells about (home). */
export async function loadDatabases(el, { url = '/api/info', fetchFn = fetch, doc = document } = {}) {
  try {
    const response = await fetchFn(url);
    if (!response.ok) return null;
    const info = await response.json();
    renderDatabases(el, info, doc);
    return info;
  } catch {
    // No info (an older server, web without an upstream yet): show nothing.
    return null;
  }
}
