// Home: the server's own place, for arcs from each hit. The server may say where it is
// (`--home`, in /api/info); the page can set its own, kept in localStorage, which wins.
// Only the text field and the arcs switch are DOM; parsing and choosing are pure.

export const HOME_STORAGE_KEY = 'traffic-globe.home';

/** "52.52, 13.405" as {latitude, longitude}, or null when it is not a place on Earth. */
export function parseHome(text) {
  if (typeof text !== 'string') return null;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*[,\s]\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!m) return null;
  const latitude = Number(m[1]);
  const longitude = Number(m[2]);
  if (!(Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180)) return null;
  return { latitude, longitude };
}

/** "52.52, 13.405" for a home, '' for none. */
export function formatHome(home) {
  return home ? `${home.latitude}, ${home.longitude}` : '';
}

/** The home in force: the page's own if set, else the server's (a valid /api/info `home`). */
export function chooseHome(pageHome, serverHome) {
  if (pageHome) return pageHome;
  if (serverHome && Number.isFinite(serverHome.latitude) && Number.isFinite(serverHome.longitude)) {
    return { latitude: serverHome.latitude, longitude: serverHome.longitude };
  }
  return null;
}

/**
 * Wires the home field (`#home`) and the arcs switch (`#arcs`). `on.change(home, arcs)` is
 * called with the home in force (or null) and whether arcs are on, now and on every change.
 */
export function createHomeControl(root, on, storage = globalThis.localStorage) {
  const field = root.querySelector('#home');
  const arcs = root.querySelector('#arcs');
  let serverHome = null;
  let pageHome = null;
  try {
    pageHome = parseHome(storage?.getItem(HOME_STORAGE_KEY) ?? '');
  } catch {
    pageHome = null; // storage blocked: the page's home lasts for this visit only
  }
  const emit = () => {
    const home = chooseHome(pageHome, serverHome);
    field.placeholder = serverHome ? `${formatHome(serverHome)} (server)` : 'lat, lon';
    arcs.disabled = home === null;
    on.change(home, arcs.checked && home !== null);
  };
  field.value = formatHome(pageHome);
  field.addEventListener('change', () => {
    const text = field.value.trim();
    const parsed = parseHome(text);
    if (text !== '' && parsed === null) {
      field.setAttribute('aria-invalid', 'true');
      return;
    }
    field.removeAttribute('aria-invalid');
    pageHome = parsed;
    try {
      if (parsed) storage?.setItem(HOME_STORAGE_KEY, text);
      else storage?.removeItem(HOME_STORAGE_KEY);
    } catch {
      // not kept, still used
    }
    emit();
  });
  arcs.addEventListener('change', emit);
  emit();
  return {
    /** The server's home from /api/info (null when it has none). */
    setServerHome(home) {
      serverHome = chooseHome(null, home);
      emit();
    },
  };
}
