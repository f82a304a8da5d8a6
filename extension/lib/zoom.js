// Zoom steps and anchored zooming, shared by the result view and Refine. A zoom is
// CSS px per image px (1 = 100 %); 0 means "fit the window".
export const ZOOMS = [0.25, 0.5, 1, 2, 4, 8];

// The next step up (direction > 0) or down from the current scale `now`, or null.
export function nextZoom(now, direction) {
  return (direction > 0 ? ZOOMS.find((z) => z > now * 1.001)
    : [...ZOOMS].reverse().find((z) => z < now * 0.999)) ?? null;
}

// Rescale the content of a scrolling `viewport` from `before` to `after` (CSS px per
// image px) with `apply()`, keeping the image point under `anchor` ({x, y} client
// px; default the viewport's centre) where it was.
export function zoomAround(viewport, before, after, anchor, apply) {
  const rect = viewport.getBoundingClientRect();
  const ax = anchor ? anchor.x - rect.left : viewport.clientWidth / 2;
  const ay = anchor ? anchor.y - rect.top : viewport.clientHeight / 2;
  const px = (viewport.scrollLeft + ax) / before;
  const py = (viewport.scrollTop + ay) / before;
  apply();
  viewport.scrollLeft = px * after - ax;
  viewport.scrollTop = py * after - ay;
}

// Drag the viewport's content by scrolling it (pointer captured until release).
export function panBy(viewport, event) {
  const start = { x: event.clientX, y: event.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
  viewport.setPointerCapture(event.pointerId);
  viewport.classList.add('panning');
  const move = (e) => {
    viewport.scrollLeft = start.left - (e.clientX - start.x);
    viewport.scrollTop = start.top - (e.clientY - start.y);
  };
  const end = () => {
    viewport.classList.remove('panning');
    viewport.removeEventListener('pointermove', move);
  };
  viewport.addEventListener('pointermove', move);
  viewport.addEventListener('pointerup', end, { once: true });
  viewport.addEventListener('pointercancel', end, { once: true });
}

// Pinch zoom limits (CSS px per image px); the buttons' steps stay within ZOOMS.
export const MIN_PINCH = 0.05;
export const MAX_PINCH = ZOOMS[ZOOMS.length - 1];

// Two fingers on `viewport` zoom its `content` (the image element) and pan with them:
// the image point first under their midpoint stays under it. Listens in the capture
// phase, so while two fingers are down the page's own pointer handlers (a brush) see
// nothing; `begin()` runs when the second finger lands (Refine drops the stroke the
// first one started). `scale()` is the current CSS px per image px; `zoomTo(scale)`
// applies one.
export function trackPinch(viewport, { content, begin = () => {}, scale, zoomTo }) {
  const touches = new Map();
  let pinch = null;
  const centre = () => {
    const [a, b] = [...touches.values()];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, d: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) };
  };
  viewport.addEventListener('pointerdown', (event) => {
    if (event.pointerType !== 'touch') return;
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (touches.size === 2) {
      begin();
      const at = centre();
      const r = content().getBoundingClientRect();
      // Where the fingers are, as a fraction of the image (kept however the layout shifts).
      pinch = { d: at.d, scale: scale(), fx: (at.x - r.left) / r.width, fy: (at.y - r.top) / r.height };
    }
    if (touches.size >= 2) event.stopImmediatePropagation();
  }, true);
  viewport.addEventListener('pointermove', (event) => {
    if (!touches.has(event.pointerId)) return;
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (!pinch || touches.size < 2) return;
    event.stopImmediatePropagation();
    const now = centre();
    zoomTo(Math.min(MAX_PINCH, Math.max(MIN_PINCH, pinch.scale * now.d / pinch.d)));
    const r = content().getBoundingClientRect();
    viewport.scrollLeft += r.left + pinch.fx * r.width - now.x;
    viewport.scrollTop += r.top + pinch.fy * r.height - now.y;
  }, true);
  const end = (event) => {
    if (!touches.delete(event.pointerId)) return;
    if (pinch) event.stopImmediatePropagation();
    if (touches.size < 2) pinch = null;
  };
  for (const type of ['pointerup', 'pointercancel']) viewport.addEventListener(type, end, true);
}
