// The Refine view: erase or restore parts of a cut-out by hand.
//
// Two full-size images make the model: `source`, the original photo, and
// `mask`, a canvas whose alpha is the cut-out's alpha. What is shown and what
// Done exports is always source masked by the mask (`destination-in`), so the
// brushes only ever draw on the mask: Erase with `destination-out`, Restore
// opaque with `source-over`. The photo's own pixels are never altered, which
// is why restoring brings back exactly the original's colours.
//
// Hand-off (IndexedDB, lib/uploads.js): the result page stores the cut-out and
// the original under refineKeys(job); Done stores the refined PNG under
// refineKeys(job).refined and returns to the result page, which prefers it.
import { putBlob, readBlob, refineKeys } from '../../lib/uploads.js';
import { grow, keepRegion, regionAt } from '../../lib/selection.js';
import { flipsFrom, grabCutInput } from '../../lib/resegment.js';
import { nextZoom, panBy, trackPinch, zoomAround } from '../../lib/zoom.js';
import { Target, Type } from '../../messages.js';

const $ = (id) => document.getElementById(id);
const jobId = new URLSearchParams(location.search).get('job');
const keys = refineKeys(jobId);
const RESULT_URL = new URL(`../result/result.html?job=${encodeURIComponent(jobId)}`, location.href).href;

// Decoded as the engine decodes (cutout.engine._js.decode), so an untouched
// pixel exports exactly as the engine composed it.
const DECODE = { premultiplyAlpha: 'none', imageOrientation: 'from-image' };
// Three full-size canvases live here (source, mask, export); beyond this many
// pixels they would take more memory than a tab can be expected to have.
const MAX_PIXELS = 50e6;
const MAX_UPSCALE = 4;        // small images are enlarged to fit, up to this much
const TILE = 256;             // undo granularity: mask tiles saved before an edit first touches them
const UNDO_STEPS = 50;
const UNDO_BYTES = 512 * 2 ** 20;  // older steps are dropped beyond this (a full-mask step can be big)
const BRUSH_SPACING = 0.25;   // dabs per stroke, as a fraction of the brush radius
const SOFT_CORE = 0.5;        // soft brush: opaque out to this fraction of the radius, then fades
const CLEAN_LOW = 24;         // Edge refine: alpha at or below this becomes 0 ...
const CLEAN_HIGH = 232;       // ... and at or above this 255
const FEATHER_PX = 1;         // Edge refine: Gaussian blur radius (CSS blur(), i.e. sigma) in image px

const view = $('view');
const viewCtx = view.getContext('2d');
const state = {
  width: 0, height: 0,   // full resolution
  source: null,          // the original at full size (its soft edge in the cut-out's colours)
  initial: null,         // ImageBitmap: the cut-out as handed over (Reset)
  mask: null, maskCtx: null,
  sourceView: null,      // the original at display size, redrawn on resize
  scale: 1,              // CSS px per image px, as shown
  zoom: 0,               // 0: fit the window; else CSS px per image px (lib/zoom.js)
  tool: 'erase',
  stroke: null,          // {pointerId, edit, last, since} while a pointer draws
  undo: [], redo: [],    // edits: arrays of tile patches {x, y, data}
  dirty: null,           // image-space rect waiting for the next frame
  keepBase: null,        // the mask before the first Keep click of a keep/add sequence
  boxing: null,          // {pointerId, start, end} while the box tool draws (image px)
};

// ---- loading --------------------------------------------------------------

async function decode(blob, width, height) {
  const bitmap = await createImageBitmap(blob, DECODE);
  if (!width || (bitmap.width === width && bitmap.height === height)) return bitmap;
  // An original of another size (should not happen: the engine composes at the
  // original's size) is stretched so that restored pixels line up.
  bitmap.close();
  return createImageBitmap(blob, { ...DECODE, resizeWidth: width, resizeHeight: height, resizeQuality: 'high' });
}

async function load() {
  const [cutout, original] = await Promise.all([readBlob(keys.cutout), readBlob(keys.original)]);
  if (!cutout) throw new Error('This cut-out is no longer stored. Go back and press Refine again.');
  state.initial = await decode(cutout);
  state.width = state.initial.width;
  state.height = state.initial.height;
  if (state.width * state.height > MAX_PIXELS) {
    throw new Error(`This image is too large to refine here (${state.width} × ${state.height} px).`);
  }
  // Without a decodable original, the cut-out itself is the source: restoring
  // then brings back only what the cut-out still holds.
  state.source = await decode(original ?? cutout, state.width, state.height)
    .catch(() => decode(cutout, state.width, state.height));
  if (original) state.source = withEdgeColours(state.source, state.initial);
  state.mask = new OffscreenCanvas(state.width, state.height);
  // Read back for every undo patch: keep it in CPU memory.
  state.maskCtx = state.mask.getContext('2d', { willReadFrequently: true });
  state.maskCtx.drawImage(state.initial, 0, 0);
  view.dataset.width = state.width;
  view.dataset.height = state.height;
}

// The engine's cut-out carries, in its soft edge (0 < alpha < 255), the subject's
// own colour with the old background taken out (the compose graph); the original
// there is a mix of both. The source takes those colours, so that an untouched
// edge shows and exports as the engine made it, not with a halo. Where the cut-out
// is opaque or clear its colours are the original's anyway (restoring a clear
// area brings back exactly the photo). Above the engine's compose limit (16 MP)
// the cut-out is the plain original masked: nothing to take.
const EDGE_COLOUR_MAX_PIXELS = 16e6;

function withEdgeColours(original, cutout) {
  const { width: w, height: h } = cutout;
  if (w * h > EDGE_COLOUR_MAX_PIXELS) return original;
  const read = (image) => {
    const ctx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
    ctx.drawImage(image, 0, 0, w, h);
    return [ctx, ctx.getImageData(0, 0, w, h)];
  };
  const [ctx, source] = read(original);
  const edge = read(cutout)[1].data;
  const px = source.data;
  for (let i = 3; i < px.length; i += 4) {
    if (edge[i] > 0 && edge[i] < 255) {
      px[i - 3] = edge[i - 3]; px[i - 2] = edge[i - 2]; px[i - 1] = edge[i - 1];
    }
  }
  ctx.putImageData(source, 0, 0);
  original.close();
  return ctx.canvas;
}

// ---- display --------------------------------------------------------------

// Fit the whole image into the stage; the canvas holds display pixels (device
// pixels, at most the image's own), and the CSS size carries the fit scale.
function fitScale() {
  const stage = $('stage');
  const style = getComputedStyle(stage);
  const availW = stage.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const availH = stage.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  return Math.max(0.01, Math.min(availW / state.width, availH / state.height, MAX_UPSCALE));
}

function fit() {
  if (!state.mask) return;
  state.scale = state.zoom || fitScale();
  $('stage').classList.toggle('zoomed', state.zoom > 0);
  const cssW = Math.max(1, Math.floor(state.width * state.scale));
  const cssH = Math.max(1, Math.floor(state.height * state.scale));
  view.style.width = `${cssW}px`;
  view.style.height = `${cssH}px`;
  const backing = Math.min(1, state.scale * devicePixelRatio);
  const [backW, backH] = [Math.max(1, Math.round(state.width * backing)), Math.max(1, Math.round(state.height * backing))];
  view.classList.toggle('pixelated', backing === 1 && state.scale > 1);
  $('zoom-level').textContent = state.zoom ? `${Math.round(state.zoom * 100)} %` : 'Fit';
  $('zoom-fit').setAttribute('aria-pressed', String(state.zoom === 0));
  $('zoom-100').setAttribute('aria-pressed', String(state.zoom === 1));
  updateCursorSize();
  if (backW === view.width && backH === view.height && state.sourceView) return paint(null);
  view.width = backW;
  view.height = backH;
  // The original is scaled once per size, at high quality; only the mask is
  // rescaled while drawing.
  state.sourceView = new OffscreenCanvas(view.width, view.height);
  const ctx = state.sourceView.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(state.source, 0, 0, view.width, view.height);
  paint(null);
}

// Zoom (0 = fit) around a client point (default: the stage's centre).
function setZoom(next, anchor = null) {
  if (!state.mask) return;
  zoomAround($('stage'), state.scale, next || fitScale(), anchor, () => {
    state.zoom = next;
    fit();
  });
}
const stepZoom = (direction, anchor) => {
  const next = nextZoom(state.scale, direction);
  if (next) setZoom(next, anchor);
};

// Redraw `rect` (image px; null: everything) of the view: the original, cut by
// the mask, and optionally a faint ghost of what is removed behind it.
function paint(rect) {
  const k = view.width / state.width;
  const [x, y, w, h] = rect
    ? [Math.floor(rect.x0 * k) - 2, Math.floor(rect.y0 * k) - 2,
      Math.ceil((rect.x1 - rect.x0) * k) + 4, Math.ceil((rect.y1 - rect.y0) * k) + 4]
    : [0, 0, view.width, view.height];
  viewCtx.save();
  viewCtx.beginPath();
  viewCtx.rect(x, y, w, h);
  viewCtx.clip();  // the whole images are drawn, but only this rect is rasterised
  viewCtx.clearRect(x, y, w, h);
  viewCtx.drawImage(state.sourceView, 0, 0);
  viewCtx.globalCompositeOperation = 'destination-in';
  viewCtx.drawImage(state.mask, 0, 0, view.width, view.height);
  if ($('ghost').checked) {
    viewCtx.globalCompositeOperation = 'destination-over';  // only shows where the cut-out is clear
    viewCtx.globalAlpha = 0.3;
    viewCtx.drawImage(state.sourceView, 0, 0);
  }
  viewCtx.restore();
}

// Coalesce changes into one repaint per frame.
function invalidate(rect) {
  const d = state.dirty;
  state.dirty = d ? { x0: Math.min(d.x0, rect.x0), y0: Math.min(d.y0, rect.y0),
    x1: Math.max(d.x1, rect.x1), y1: Math.max(d.y1, rect.y1) } : { ...rect };
  if (!d) {
    requestAnimationFrame(() => {
      const dirty = state.dirty;
      state.dirty = null;
      paint(dirty);
    });
  }
}

const WHOLE = () => ({ x0: 0, y0: 0, x1: state.width, y1: state.height });

// ---- undo: tile patches ---------------------------------------------------
//
// An edit saves each 256² mask tile the first time it touches it, before the
// change; undoing puts the saved tiles back (and keeps the current ones for
// redo). A stroke thus costs only the tiles it crossed.

function beginEdit() {
  return new Map();
}

function touch(edit, rect) {
  const tx0 = Math.max(0, Math.floor(rect.x0 / TILE));
  const ty0 = Math.max(0, Math.floor(rect.y0 / TILE));
  const tx1 = Math.min(Math.ceil(state.width / TILE), Math.ceil(rect.x1 / TILE));
  const ty1 = Math.min(Math.ceil(state.height / TILE), Math.ceil(rect.y1 / TILE));
  for (let ty = ty0; ty < ty1; ty++) {
    for (let tx = tx0; tx < tx1; tx++) {
      const key = ty * 65536 + tx;
      if (edit.has(key)) continue;
      const x = tx * TILE;
      const y = ty * TILE;
      const w = Math.min(TILE, state.width - x);
      const h = Math.min(TILE, state.height - y);
      edit.set(key, { x, y, data: state.maskCtx.getImageData(x, y, w, h) });
    }
  }
}

function commit(edit) {
  if (!edit.size) return;
  state.undo.push([...edit.values()]);
  state.redo = [];
  let bytes = state.undo.reduce((sum, patches) => sum + patchBytes(patches), 0);
  while (state.undo.length > UNDO_STEPS || (bytes > UNDO_BYTES && state.undo.length > 1)) {
    bytes -= patchBytes(state.undo.shift());
  }
  syncButtons();
}

function patchBytes(patches) {
  return patches.reduce((sum, p) => sum + p.data.data.length, 0);
}

// Put `patches` into the mask; returns the patches that undo this.
function swap(patches) {
  return patches.map(({ x, y, data }) => {
    const current = state.maskCtx.getImageData(x, y, data.width, data.height);
    state.maskCtx.putImageData(data, x, y);
    invalidate({ x0: x, y0: y, x1: x + data.width, y1: y + data.height });
    return { x, y, data: current };
  });
}

function undo() {
  if (state.stroke || !state.undo.length) return;
  state.redo.push(swap(state.undo.pop()));
  syncButtons();
}

function redo() {
  if (state.stroke || !state.redo.length) return;
  state.undo.push(swap(state.redo.pop()));
  syncButtons();
}

// A whole-mask operation as one undo step.
function editAll(action) {
  if (state.stroke) return;
  const edit = beginEdit();
  touch(edit, WHOLE());
  action();
  commit(edit);
  invalidate(WHOLE());
}

// ---- Keep subject -----------------------------------------------------------
//
// A click keeps the connected part of the cut-out under the pointer and drops
// every other part (several subjects, a wrongly kept patch of background); a
// shift-click adds another part of the cut-out as it was before the first click.
// "Connected": 8-neighbours with alpha above CLEAN_LOW, so a faint haze does not
// join separate subjects; the faint pixels within KEEP_HALO px of a kept part
// (its soft edge) stay, the others go. One undo step per click.
const KEEP_HALO = 2;

function keepAt({ x, y }, add) {
  const { width: w, height: h } = state;
  const [px, py] = [Math.floor(x), Math.floor(y)];
  if (px < 0 || py < 0 || px >= w || py >= h) return;
  const current = state.maskCtx.getImageData(0, 0, w, h);
  // The parts are found in the mask as it was before the first click of a
  // keep/add sequence, so that a shift-click can bring back a dropped part (a copy:
  // `current` is edited in place below).
  if (!add || !state.keepBase) state.keepBase = state.maskCtx.getImageData(0, 0, w, h);
  const base = state.keepBase.data;
  const region = regionAt(base, w, h, px, py, CLEAN_LOW);
  if (!region) {
    $('message').textContent = 'Click on a part of the cut-out to keep it.';
    return;
  }
  $('message').textContent = '';
  const near = grow(region, w, h, KEEP_HALO);
  const a = current.data;
  editAll(() => {
    keepRegion(a, base, region, near, add, CLEAN_LOW);
    state.maskCtx.globalCompositeOperation = 'copy';
    state.maskCtx.putImageData(current, 0, 0);
  });
}

// ---- brushes --------------------------------------------------------------

// The brush size is a diameter on screen, as the outline shows it; in image
// pixels it depends on the fit scale.
function brushRadius() {
  return Math.max(0.5, Number($('size').value) / 2 / state.scale);
}

function dab({ x, y }, edit) {
  const r = brushRadius();
  state.stroke?.dabs.push({ x, y, r });
  const rect = { x0: Math.floor(x - r - 1), y0: Math.floor(y - r - 1), x1: Math.ceil(x + r + 1), y1: Math.ceil(y + r + 1) };
  if (rect.x1 <= 0 || rect.y1 <= 0 || rect.x0 >= state.width || rect.y0 >= state.height) return;
  touch(edit, rect);
  const ctx = state.maskCtx;
  ctx.globalCompositeOperation = state.tool === 'erase' ? 'destination-out' : 'source-over';
  if ($('soft').checked) {
    // Feathered: opaque core, then alpha falls linearly to 0 at the radius.
    const gradient = ctx.createRadialGradient(x, y, r * SOFT_CORE, x, y, r);
    gradient.addColorStop(0, 'rgba(0, 0, 0, 1)');
    gradient.addColorStop(1, 'rgba(0, 0, 0, 0)');
    ctx.fillStyle = gradient;
  } else {
    ctx.fillStyle = '#000';  // only alpha matters on the mask
  }
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fill();
  invalidate(rect);
}

// Dabs every BRUSH_SPACING radii along the path, carrying the distance since
// the last dab across pointer events, so fast and slow strokes look the same.
function strokeTo(point) {
  const s = state.stroke;
  if (!s.last) {
    dab(point, s.edit);
    s.last = point;
    s.since = 0;
    return;
  }
  const spacing = Math.max(0.5, brushRadius() * BRUSH_SPACING);
  const dx = point.x - s.last.x;
  const dy = point.y - s.last.y;
  const dist = Math.hypot(dx, dy);
  let t = spacing - s.since;
  for (; t <= dist; t += spacing) dab({ x: s.last.x + (dx * t) / dist, y: s.last.y + (dy * t) / dist }, s.edit);
  s.since = dist - (t - spacing);
  s.last = point;
}

// Pointer position in full-resolution image pixels.
function toImage(event) {
  const rect = view.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) * state.width) / rect.width,
    y: ((event.clientY - rect.top) * state.height) / rect.height,
  };
}

// ---- re-run on a box --------------------------------------------------------
//
// The box tool asks the engine (which holds the job's photo) to run the model again
// on that part alone, at the model's full input size, and pastes the answer's alpha
// into the mask: fully inside, blended over REGION_FEATHER px at the box's edges
// (none along the image's own border). One undo step.
const REGION_FEATHER = 12;

function boxFrom(a, b) {
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x)));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y)));
  return { x0, y0, x1: Math.min(state.width, Math.ceil(Math.max(a.x, b.x))),
    y1: Math.min(state.height, Math.ceil(Math.max(a.y, b.y))) };
}

function showBox(a, b) {
  const rect = view.getBoundingClientRect();
  const k = rect.width / state.width;
  const box = boxFrom(a, b);
  Object.assign($('box').style, {
    left: `${rect.left + box.x0 * k}px`, top: `${rect.top + box.y0 * k}px`,
    width: `${(box.x1 - box.x0) * k}px`, height: `${(box.y1 - box.y0) * k}px`,
  });
  $('box').hidden = false;
}

async function runRegion(box) {
  $('box').hidden = true;
  const [w, h] = [box.x1 - box.x0, box.y1 - box.y0];
  setState('busy', `Running the model again on ${w} × ${h} px…`);
  try {
    const reply = await chrome.runtime.sendMessage({ target: Target.WORKER, type: Type.REGION,
      data: { job: jobId, box: { x: box.x0, y: box.y0, w, h }, mode: $('region-mode').value } });
    if (!reply || reply.error) throw new Error(reply?.error ?? 'the engine did not answer');
    const bitmap = await createImageBitmap(await (await fetch(reply.url)).blob(), DECODE);
    pasteRegion(reply.box, bitmap);
    bitmap.close();
    setState('ready', `The box was done again (${reply.model}, ${(reply.ms / 1000).toFixed(1)} s). Undo takes it back.`);
  } catch (error) {
    setState('ready', `The box could not be done again: ${error.message}`);
  }
}

function pasteRegion({ x, y, w, h }, bitmap) {
  const ctx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const fresh = ctx.getImageData(0, 0, w, h).data;
  const edit = beginEdit();
  touch(edit, { x0: x, y0: y, x1: x + w, y1: y + h });
  const current = state.maskCtx.getImageData(x, y, w, h);
  const a = current.data;
  const f = Math.max(1, Math.min(REGION_FEATHER, Math.floor(Math.min(w, h) / 4)));
  const seam = { left: x > 0, top: y > 0, right: x + w < state.width, bottom: y + h < state.height };
  for (let j = 0; j < h; j++) {
    const dy = Math.min(seam.top ? j + 0.5 : Infinity, seam.bottom ? h - j - 0.5 : Infinity);
    for (let i = 0; i < w; i++) {
      const d = Math.min(dy, seam.left ? i + 0.5 : Infinity, seam.right ? w - i - 0.5 : Infinity);
      const weight = Math.min(1, d / f);
      const k = (j * w + i) * 4 + 3;
      a[k] = Math.round(a[k] * (1 - weight) + fresh[k] * weight);
    }
  }
  state.maskCtx.putImageData(current, x, y);
  commit(edit);
  invalidate({ x0: x, y0: y, x1: x + w, y1: y + h });
}

function onPointerDown(event) {
  if (!isReady() || state.stroke) return;
  // Space held, or the middle button: pan instead of painting.
  if (state.zoom && (state.spaceDown || (event.pointerType === 'mouse' && event.button === 1))) {
    event.preventDefault();
    panBy($('stage'), event);
    return;
  }
  if (event.pointerType === 'mouse' && event.button !== 0) return;
  event.preventDefault();
  if (state.tool === 'keep') {
    keepAt(toImage(event), event.shiftKey);
    return;
  }
  if (state.tool === 'region') {
    view.setPointerCapture(event.pointerId);
    const start = toImage(event);
    state.boxing = { pointerId: event.pointerId, start, end: start };
    showBox(start, start);
    return;
  }
  state.keepBase = null;  // a brush stroke ends a keep/add sequence
  view.setPointerCapture(event.pointerId);
  state.stroke = { pointerId: event.pointerId, edit: beginEdit(), last: null, since: 0, dabs: [] };
  strokeTo(toImage(event));
}

function onPointerMove(event) {
  moveCursor(event);
  if (state.boxing?.pointerId === event.pointerId) {
    state.boxing.end = toImage(event);
    showBox(state.boxing.start, state.boxing.end);
    return;
  }
  if (state.stroke?.pointerId !== event.pointerId) return;
  // Coalesced events: every sample since the last frame, for smooth curves.
  const samples = event.getCoalescedEvents?.() ?? [];
  for (const sample of samples.length ? samples : [event]) strokeTo(toImage(sample));
}

function onPointerEnd(event) {
  if (state.boxing?.pointerId === event.pointerId) {
    const { start, end } = state.boxing;
    state.boxing = null;
    if (event.type === 'pointerup') runRegion(boxFrom(start, end));
    else $('box').hidden = true;
    return;
  }
  const s = state.stroke;
  if (s?.pointerId !== event.pointerId) return;
  // The dabs stop up to one spacing short of the last sample: finish there.
  if (s.since > 0) dab(s.last, s.edit);
  state.stroke = null;
  if (event.type === 'pointerup' && $('smart').checked) resegmentAround(s);
  else commit(s.edit);
}

// A second finger turns a touch into a pinch: the stroke or box the first finger
// began is taken back, leaving no trace in the mask or the undo history.
function dropPointerWork() {
  if (state.stroke) {
    swap([...state.stroke.edit.values()]);
    state.stroke = null;
  }
  if (state.boxing) {
    state.boxing = null;
    $('box').hidden = true;
  }
}

// ---- strokes that re-segment ------------------------------------------------
//
// With "Smart" on (key A), an Erase or Restore stroke, once painted, re-labels
// the area around it with GrabCut (lib/resegment.js) in the sandboxed segmenter
// frame: one stroke across a wrongly kept patch of background removes the whole
// patch. The area is the stroke's box grown by its own extent (at least AROUND of
// the image's longer side), worked on at most RESEGMENT_PIXELS (0.25-0.8 s from
// pointerup to applied on a 24 MP photo here, by content, see docs/BENCHMARKS.md; at
// 0.06 MP the wider soft edge of the scaled-up changes left 2 % of a removed disc
// faintly kept); the changes the stroke reaches are scaled back up smoothly and
// applied to the full-size mask, stroke and changes one undo step. Pixels GrabCut
// leaves alone stay exactly as they were. The claimed side's colours elsewhere are
// sampled from the whole image at ELSEWHERE_PIXELS.
const AROUND = 0.15;
const RESEGMENT_PIXELS = 0.1e6;
const ELSEWHERE_PIXELS = 0.02e6;

const segmenter = { frame: null, ready: null, pending: new Map(), next: 1 };

function startSegmenter() {
  if (segmenter.ready) return segmenter.ready;
  segmenter.frame = Object.assign(document.createElement('iframe'), {
    src: '../segmenter/segmenter.html', hidden: true, title: 'segmenter' });
  segmenter.ready = new Promise((resolve, reject) => {
    segmenter.started = resolve;
    setTimeout(() => reject(new Error('the segmenter did not start')), 30_000);
  });
  segmenter.ready.catch(() => { segmenter.ready = null; segmenter.frame?.remove(); });
  document.body.append(segmenter.frame);
  return segmenter.ready;
}

addEventListener('message', (event) => {
  if (!segmenter.frame || event.source !== segmenter.frame.contentWindow) return;
  const { target, type, data } = event.data ?? {};
  if (target !== Target.PAGE) return;
  if (type === Type.SEGMENTER_READY) segmenter.started();
  else if (type === Type.RESEGMENTED) segmenter.pending.get(data.id)?.(data);
});

async function grabCutRemote(input, width) {
  await startSegmenter();
  const id = segmenter.next++;
  const answer = new Promise((resolve) => segmenter.pending.set(id, resolve));
  segmenter.frame.contentWindow.postMessage(
    { target: Target.SEGMENTER, type: Type.RESEGMENT, data: { id, input, width } }, '*',
    [input.image.buffer, input.labels.buffer]);
  const data = await answer;
  segmenter.pending.delete(id);
  if (data.error) throw new Error(data.error);
  return data;
}

// The area (image px) around a stroke's dabs.
function areaAround(dabs) {
  const box = dabs.reduce((b, { x, y, r }) => ({ x0: Math.min(b.x0, x - r), y0: Math.min(b.y0, y - r),
    x1: Math.max(b.x1, x + r), y1: Math.max(b.y1, y + r) }), { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity });
  const margin = Math.max(box.x1 - box.x0, box.y1 - box.y0, AROUND * Math.max(state.width, state.height));
  return boxFrom({ x: box.x0 - margin, y: box.y0 - margin }, { x: box.x1 + margin, y: box.y1 + margin });
}

// `image` (or a canvas) cropped to `area` and scaled to w × h: its RGBA bytes.
function readScaled(image, area, w, h) {
  const ctx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, area.x0, area.y0, area.x1 - area.x0, area.y1 - area.y0, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
}

async function resegmentAround(stroke) {
  const erase = state.tool === 'erase';
  const area = areaAround(stroke.dabs);
  const [aw, ah] = [area.x1 - area.x0, area.y1 - area.y0];
  const k = Math.min(1, Math.sqrt(RESEGMENT_PIXELS / (aw * ah)));
  const [w, h] = [Math.max(1, Math.round(aw * k)), Math.max(1, Math.round(ah * k))];
  setState('busy', 'Fixing the area around the stroke…');
  const started = performance.now();
  try {
    const alpha = channel(readScaled(state.mask, area, w, h));
    const marks = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
    marks.scale(w / aw, h / ah);
    marks.translate(-area.x0, -area.y0);
    for (const { x, y, r } of stroke.dabs) {
      marks.beginPath();
      marks.arc(x, y, r, 0, 2 * Math.PI);
      marks.fill();
    }
    const strokeMask = channel(marks.getImageData(0, 0, w, h).data);
    const input = grabCutInput({ rgba: readScaled(state.source, area, w, h), alpha,
      stroke: strokeMask, width: w, height: h, erase,
      seams: { left: area.x0 > 0, top: area.y0 > 0, right: area.x1 < state.width, bottom: area.y1 < state.height },
      elsewhere: claimedElsewhere(area, erase) });
    const prepared = performance.now();
    let changed = 0;
    if (input) {
      const { fg, ms } = await grabCutRemote(input, w);
      const answered = performance.now();
      changed = pasteFlips(area, flipsFrom(fg, alpha, erase, strokeMask, w), w, h, erase,
        stroke.edit);
      measureResegment({ started, prepared, answered, grabCutMs: ms, area: aw * ah, worked: w * h });
    }
    commit(stroke.edit);
    const what = erase ? 'removed' : 'brought back';
    setState('ready', changed
      ? `About ${changed.toLocaleString()} more px ${what} around the stroke (${((performance.now() - started) / 1000).toFixed(1)} s). Undo takes it back.`
      : `Nothing else around the stroke looks like what it ${erase ? 'erased' : 'restored'}.`);
  } catch (error) {
    commit(stroke.edit);  // the stroke itself stays
    setState('ready', `The area around the stroke could not be fixed: ${error.message}`);
  }
}

// Performance measures of the last re-segmentation (the benchmark reads them; they
// show in a Chrome trace): prepare (crop, scale, GrabCut's input), grabcut (the round
// trip to the segmenter; detail: GrabCut's own ms), paste (scale up, apply, redraw
// queued) and the whole, from the stroke's pointerup.
function measureResegment({ started, prepared, answered, grabCutMs, area, worked }) {
  const end = performance.now();
  const detail = { area, worked, grabCutMs };
  performance.measure('resegment:prepare', { start: started, end: prepared });
  performance.measure('resegment:grabcut', { start: prepared, end: answered, detail });
  performance.measure('resegment:paste', { start: answered, end });
  performance.measure('resegment', { start: started, end, detail });
}

// RGBA bytes of the photo's pixels outside `area` on the side an Erase (kept) or a
// Restore (dropped) stroke claims from, from the whole image scaled down.
function claimedElsewhere(area, erase) {
  const k = Math.min(1, Math.sqrt(ELSEWHERE_PIXELS / (state.width * state.height)));
  const [w, h] = [Math.max(1, Math.round(state.width * k)), Math.max(1, Math.round(state.height * k))];
  const whole = WHOLE();
  // The photo never changes: scaled once per page (on 24 MP a whole-photo drawImage).
  state.sourceSmall ??= readScaled(state.source, whole, w, h);
  const photo = state.sourceSmall;
  const alpha = readScaled(state.mask, whole, w, h);
  const out = [];
  for (let y = 0; y < h; y++) {
    const inY = (y + 0.5) / k >= area.y0 && (y + 0.5) / k < area.y1;
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      if (inY && (x + 0.5) / k >= area.x0 && (x + 0.5) / k < area.x1) continue;
      if ((alpha[i + 3] >= 128) === erase) out.push(photo[i], photo[i + 1], photo[i + 2], 255);
    }
  }
  return Uint8Array.from(out);
}

// One byte per px: the alpha of RGBA bytes.
function channel(rgba) {
  const out = new Uint8Array(rgba.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = rgba[i * 4 + 3];
  return out;
}

// Scale the flips (w × h) up to `area` and apply them to the mask the way the brush
// does, by compositing (Erase: destination-out, Restore: source-over): where a flip
// is 0 the mask stays exactly as it was, and nothing is read back (on a 24 MP photo
// reading and writing the area's RGBA cost ~0.5 s). Only the box around the flips is
// touched, the bilinear ramp reaching one small pixel past a flip. Returns about how
// many pixels changed.
function pasteFlips(area, flips, w, h, erase, edit) {
  const near = flipsBox(flips, w, h);
  if (!near) return 0;
  const [aw, ah] = [area.x1 - area.x0, area.y1 - area.y0];
  const [kx, ky] = [aw / w, ah / h];
  const box = { x0: area.x0 + Math.floor(near.x0 * kx), y0: area.y0 + Math.floor(near.y0 * ky),
    x1: area.x0 + Math.min(aw, Math.ceil(near.x1 * kx)), y1: area.y0 + Math.min(ah, Math.ceil(near.y1 * ky)) };
  const small = new ImageData(w, h);
  let count = 0;
  for (let i = 0; i < flips.length; i++) {
    small.data[i * 4 + 3] = flips[i];
    if (flips[i]) count++;
  }
  const low = new OffscreenCanvas(w, h);
  low.getContext('2d').putImageData(small, 0, 0);
  touch(edit, box);
  const ctx = state.maskCtx;
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
  ctx.clip();
  ctx.globalCompositeOperation = erase ? 'destination-out' : 'source-over';
  ctx.imageSmoothingEnabled = true;  // bilinear: smooth edges to the changes
  ctx.drawImage(low, area.x0, area.y0, aw, ah);
  ctx.restore();
  invalidate(box);
  return Math.round(count * kx * ky);
}

// The box (small px, end exclusive) of the non-zero flips grown by two pixels, or
// null when there are none.
function flipsBox(flips, w, h) {
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let y = 0; y < h; y++) {
    for (let x = 0, i = y * w; x < w; x++, i++) {
      if (!flips[i]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  if (x1 < 0) return null;
  return { x0: Math.max(0, x0 - 2), y0: Math.max(0, y0 - 2), x1: Math.min(w, x1 + 3), y1: Math.min(h, y1 + 3) };
}

// ---- the brush outline ----------------------------------------------------

function moveCursor(event) {
  const cursor = $('cursor');
  cursor.hidden = event.pointerType === 'touch' || !isReady();
  cursor.style.left = `${event.clientX}px`;
  cursor.style.top = `${event.clientY}px`;
}

function updateCursorSize() {
  const size = `${$('size').value}px`;
  $('cursor').style.width = size;
  $('cursor').style.height = size;
  $('size-value').textContent = $('size').value;
}

// ---- Edge refine ----------------------------------------------------------
//
// Deterministic (same mask in, same mask out), in two steps:
// 1. Clean: alpha ≤ CLEAN_LOW becomes 0 (the faint haze a busy background
//    leaves) and ≥ CLEAN_HIGH becomes 255 (pinholes in the subject).
// 2. Feather: a FEATHER_PX Gaussian blur (canvas `filter`) of the cleaned mask
//    replaces only the pixels that are now fully clear or fully opaque. Flat
//    areas are unchanged by a blur, so this touches exactly the pixels next to
//    a hard edge, giving stair-stepped edges a ~2 px ramp, while detail that is
//    already partly transparent (hair) keeps its values. The mask's border is
//    replicated outwards before blurring so the image's own edge does not fade.

function refineEdges() {
  const { width: w, height: h } = state;
  const pixels = state.maskCtx.getImageData(0, 0, w, h);
  const a = pixels.data;
  for (let i = 3; i < a.length; i += 4) {
    a[i - 3] = 0; a[i - 2] = 0; a[i - 1] = 0;  // black: the mask's colour is unused
    a[i] = a[i] <= CLEAN_LOW ? 0 : a[i] >= CLEAN_HIGH ? 255 : a[i];
  }
  const cleaned = new OffscreenCanvas(w, h);
  cleaned.getContext('2d').putImageData(pixels, 0, 0);
  const blurred = blurAlpha(cleaned);
  for (let i = 3; i < a.length; i += 4) {
    if (a[i] === 0 || a[i] === 255) a[i] = blurred[i];
  }
  state.maskCtx.globalCompositeOperation = 'source-over';
  state.maskCtx.putImageData(pixels, 0, 0);
}

// RGBA bytes of `canvas` blurred by FEATHER_PX, its border extended by
// replication (nearest-neighbour stretches of the edge rows and columns).
function blurAlpha(canvas) {
  const { width: w, height: h } = canvas;
  const pad = 4 * FEATHER_PX;  // beyond 3 sigma the Gaussian is negligible
  const padded = new OffscreenCanvas(w + 2 * pad, h + 2 * pad);
  const p = padded.getContext('2d');
  p.imageSmoothingEnabled = false;
  // [source start, source size, target start, target size] along one axis:
  // first pixel stretched over the pad, the image, last pixel over the pad.
  const spans = (n) => [[0, 1, 0, pad], [0, n, pad, n], [n - 1, 1, pad + n, pad]];
  for (const [sx, sw, dx, dw] of spans(w)) {
    for (const [sy, sh, dy, dh] of spans(h)) p.drawImage(canvas, sx, sy, sw, sh, dx, dy, dw, dh);
  }
  const out = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
  out.filter = `blur(${FEATHER_PX}px)`;
  out.drawImage(padded, -pad, -pad);
  return out.getImageData(0, 0, w, h).data;
}

// ---- Done / Cancel --------------------------------------------------------

// The refined cut-out at full resolution: the original masked by the mask.
function exportPng() {
  const canvas = new OffscreenCanvas(state.width, state.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(state.source, 0, 0);
  ctx.globalCompositeOperation = 'destination-in';
  ctx.drawImage(state.mask, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

async function done() {
  if (state.stroke) return;
  setState('saving', 'Saving…');
  try {
    await putBlob(keys.refined, await exportPng());
    leave();
  } catch (error) {
    setState('ready', `Could not save: ${error.message}`);
  }
}

// Back to the result page: through history when it is the entry before this
// one (so it is not listed twice), otherwise by replacing this one.
// (document.referrer is empty between extension pages; the Navigation API knows.)
function leave() {
  const previous = globalThis.navigation?.entries()[navigation.currentEntry.index - 1];
  const url = previous?.url ? new URL(previous.url) : null;
  if (url?.pathname === new URL(RESULT_URL).pathname && url.searchParams.get('job') === jobId) history.back();
  else location.replace(RESULT_URL);
}

// ---- controls -------------------------------------------------------------

function isReady() {
  return document.body.dataset.state === 'ready';
}

function setState(name, message = '') {
  document.body.dataset.state = name;
  $('message').textContent = message;
  syncButtons();
}

function syncButtons() {
  const ready = isReady();
  for (const id of ['erase', 'restore', 'keep', 'region', 'region-mode', 'smart', 'edge', 'reset', 'done']) $(id).disabled = !ready;
  $('undo').disabled = !ready || !state.undo.length;
  $('redo').disabled = !ready || !state.redo.length;
}

function setTool(tool) {
  state.tool = tool;
  $('erase').setAttribute('aria-pressed', String(tool === 'erase'));
  $('restore').setAttribute('aria-pressed', String(tool === 'restore'));
  $('keep').setAttribute('aria-pressed', String(tool === 'keep'));
  $('region').setAttribute('aria-pressed', String(tool === 'region'));
  document.body.dataset.tool = tool;
  if (tool !== 'keep') state.keepBase = null;
}

function toggleSmart() {
  $('smart').checked = !$('smart').checked;
  $('smart').dispatchEvent(new Event('change'));
}

// [ and ] step the size by about 15%, at least 1 px.
function stepSize(direction) {
  const input = $('size');
  const value = Number(input.value);
  const step = Math.max(1, Math.round(value * 0.15));
  input.value = String(Math.min(Number(input.max), Math.max(Number(input.min), value + direction * step)));
  updateCursorSize();
}

function onKey(event) {
  if (!isReady() || event.altKey) return;
  const key = event.key.toLowerCase();
  const ctrl = event.ctrlKey || event.metaKey;
  let handled = true;
  if (ctrl && key === 'z' && !event.shiftKey) undo();
  else if (ctrl && (key === 'y' || (key === 'z' && event.shiftKey))) redo();
  else if (ctrl) handled = false;  // leave the browser's own shortcuts alone
  else if (key === 'e') setTool('erase');
  else if (key === 'r') setTool('restore');
  else if (key === 'k') setTool('keep');
  else if (key === 'b') setTool('region');
  else if (key === 'a') toggleSmart();
  else if (key === '[') stepSize(-1);
  else if (key === ']') stepSize(1);
  else if (key === '+' || key === '=') stepZoom(1);
  else if (key === '-') stepZoom(-1);
  else if (key === '0') setZoom(0);
  else if (key === '1') setZoom(1);
  else if (key === ' ' && !event.target.closest?.('button, input, select, label')) {
    state.spaceDown = true;
    document.body.classList.add('pan-ready');
  } else handled = false;
  if (handled) event.preventDefault();
}

function wire() {
  $('erase').addEventListener('click', () => setTool('erase'));
  $('restore').addEventListener('click', () => setTool('restore'));
  $('keep').addEventListener('click', () => setTool('keep'));
  $('region').addEventListener('click', () => setTool('region'));
  $('size').addEventListener('input', updateCursorSize);
  $('smart').addEventListener('change', () => { if ($('smart').checked) startSegmenter().catch(() => {}); });
  $('ghost').addEventListener('change', () => invalidate(WHOLE()));
  $('undo').addEventListener('click', undo);
  $('redo').addEventListener('click', redo);
  $('reset').addEventListener('click', () => editAll(() => {
    state.maskCtx.globalCompositeOperation = 'copy';
    state.maskCtx.drawImage(state.initial, 0, 0);
  }));
  $('edge').addEventListener('click', () => editAll(refineEdges));
  $('done').addEventListener('click', done);
  $('cancel').addEventListener('click', leave);
  view.addEventListener('pointerdown', onPointerDown);
  view.addEventListener('pointermove', onPointerMove);
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) view.addEventListener(type, onPointerEnd);
  view.addEventListener('pointerleave', () => { $('cursor').hidden = true; });
  document.addEventListener('keydown', onKey);
  document.addEventListener('keyup', (event) => {
    if (event.key !== ' ') return;
    state.spaceDown = false;
    document.body.classList.remove('pan-ready');
  });
  $('zoom-fit').addEventListener('click', () => setZoom(0));
  $('zoom-100').addEventListener('click', () => setZoom(1));
  $('zoom-in').addEventListener('click', () => stepZoom(1));
  $('zoom-out').addEventListener('click', () => stepZoom(-1));
  $('stage').addEventListener('wheel', (event) => {
    if (!event.ctrlKey || !isReady()) return;
    event.preventDefault();
    stepZoom(event.deltaY < 0 ? 1 : -1, { x: event.clientX, y: event.clientY });
  }, { passive: false });
  trackPinch($('stage'), { content: () => view, begin: dropPointerWork, scale: () => state.scale,
    zoomTo: (scale) => { if (isReady()) setZoom(scale); } });
  new ResizeObserver(() => { if (!state.zoom) fit(); }).observe($('stage'));
}

wire();
setState('loading', 'Loading…');
load().then(() => {
  setState('ready');
  fit();
}, (error) => setState('failed', error.message));
