// Constants shared by the scene and the UI: sizes, colours, limits. One place to tune.

/** Globe radius in scene units. */
export const GLOBE_RADIUS = 100;

/** Okabe–Ito palette: distinguishable with every common form of colour blindness. */
export const COLORS = {
  normal: '#56b4e9', // sky blue
  suspicious: '#e69f00', // orange
  highlight: '#f0e442', // yellow
  ocean: '#02081a',
  land: '#0a1a33',
  landDots: '#4a84c4',
  borders: '#2a5688',
  atmosphere: '#3a8dde',
};

/** Ring-buffer capacity for live hit points (one draw call). */
export const POINT_CAPACITY = 1 << 17; // 131072

/** Fade window, seconds. */
export const FADE_DEFAULT = 10;
export const FADE_MIN = 2;
export const FADE_MAX = 60;

/** Merge grid, degrees of latitude and of longitude: hits in the same cell merge into one
 * marker (a cell is about 83 km north–south); hits close together on either side of a cell
 * edge stay apart. */
export const MERGE_CELL_DEG = 0.75;
/** Most merged markers drawn at once. */
export const MARKER_CAPACITY = 8192;

/** Timeline span, seconds of the data's clock. */
export const TIMELINE_SECS = 600;

/** How often panels refresh, milliseconds. */
export const PANEL_INTERVAL_MS = 250;

/** Ring-buffer capacity for arcs to home (one instanced draw call): the newest this many hits. */
export const ARC_CAPACITY = 1 << 14; // 16384
/** Line segments per arc. */
export const ARC_SEGMENTS = 32;
