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
