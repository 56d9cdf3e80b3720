// The controls: filter, ranking metric, pause, fade window, auto-rotate, density, and the hover tooltip.
// Only DOM: each control reports through a callback.

import { FADE_DEFAULT, FADE_MIN, FADE_MAX } from '../config.js';

export function createControls(root, on) {
  const filterButtons = [...root.querySelectorAll('[data-filter]')];
  for (const b of filterButtons) {
    b.addEventListener('click', () => {
      for (const o of filterButtons) o.setAttribute('aria-pressed', String(o === b));
      on.filter(b.dataset.filter);
    });
  }
  // Rank the top lists by requests or by bytes.
  const metricButtons = [...root.querySelectorAll('[data-metric]')];
  for (const b of metricButtons) {
    b.addEventListener('click', () => {
      for (const o of metricButtons) o.setAttribute('aria-pressed', String(o === b));
      on.metric?.(b.dataset.metric);
    });
  }
  const pause = root.querySelector('#pause');
  pause.addEventListener('click', () => {
    const paused = pause.getAttribute('aria-pressed') !== 'true';
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    on.pause(paused);
  });
  const fade = root.querySelector('#fade');
  const fadeOut = root.querySelector('#fade-value');
  fade.min = String(FADE_MIN);
  fade.max = String(FADE_MAX);
  fade.value = String(FADE_DEFAULT);
  const showFade = () => {
    fadeOut.textContent = `${fade.value} s`;
  };
  showFade();
  fade.addEventListener('input', () => {
    showFade();
    on.fade(Number(fade.value));
  });
  const rotate = root.querySelector('#autorotate');
  rotate.addEventListener('change', () => on.autoRotate(rotate.checked));
  const density = root.querySelector('#density');
  density.addEventListener('change', () => on.density(density.checked));
}

/** The hover tooltip over the globe. */
export function createTooltip(el) {
  const lines = [...el.children];
  return {
    show(x, y, rows) {
      rows.forEach((text, i) => {
        lines[i].textContent = text;
        lines[i].hidden = !text;
      });
      for (let i = rows.length; i < lines.length; i++) lines[i].hidden = true;
      el.hidden = false;
      const pw = el.parentElement.clientWidth;
      const left = Math.min(x + 14, pw - el.offsetWidth - 8);
      el.style.transform = `translate(${Math.max(8, left)}px, ${Math.max(8, y - el.offsetHeight - 12)}px)`;
    },
    hide() {
      el.hidden = true;
    },
  };
}
