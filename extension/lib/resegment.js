// Strokes that re-segment: Refine's Erase or Restore stroke, with "Smart" on,
// re-labels the area around it with OpenCV's GrabCut (a graph cut on colour
// models), seeded by the cut-out's own mask. Pure functions on byte arrays, so that
// Node's unit tests run exactly what the sandboxed frame runs.
//
// The stroke says "colours like these, here, are background" (Erase) or "are the
// subject" (Restore). An Erase stroke may only remove, a Restore stroke only bring
// back: the side the stroke claims from is the only one GrabCut may change
// ("probable"); everything else, the stroke itself and a ring along the area's seams
// are fixed.
//
// GrabCut learns one colour model per side from the labels. Seeded by the mask
// alone, a wrongly kept patch trains the subject's model, and a stroke of a few
// hundred pixels hardly moves the other one: the patch stays. So two kinds of fixed
// rows are added below the area; they shape the colour models only (the graph cut
// then runs on the area alone, see grabCut):
// - the stroke's colours, repeated as many times as the area has pixels: in the
//   stroke's side's model they then weigh at least half;
// - colours of the claimed side from elsewhere in the image (for Erase: the subject
//   outside the area), as many as the claimed side: in that side's model the
//   patch then weighs at most half, however much of the area it fills.
// Measured on synthetic images (tests/unit/test_resegment.py): without these rows a
// wrongly kept patch of one colour stays; with them the whole patch goes.

// cv.grabCut's mask values.
export const GC = Object.freeze({ BGD: 0, FGD: 1, PR_BGD: 2, PR_FGD: 3 });
const RING = 2;  // px along an area's seam that keep their label

// The GrabCut image and labels for an area of `width` × `height` px:
// `rgba` its photo, `alpha` its cut-out alpha (one byte per px), `stroke` one byte per
// px (> 127: under the stroke), `erase` the stroke's kind, `seams` which of the
// area's sides lie inside the image {left, top, right, bottom}, `elsewhere` RGBA
// bytes of pixels outside the area on the side the stroke claims from (may be empty).
// Returns {image (RGB), labels, rows, height, claimed}, or null when the stroke has
// nothing to claim (an Erase stroke where nothing is kept, say).
export function grabCutInput({ rgba, alpha, stroke, width: w, height: h, erase, seams,
  elsewhere = new Uint8Array(0) }) {
  const strokeSide = erase ? GC.BGD : GC.FGD;
  const labels = new Uint8Array(w * h);
  const strokeColours = [];
  let claimed = 0;
  for (let y = 0; y < h; y++) {
    const ringY = (seams.top && y < RING) || (seams.bottom && y >= h - RING);
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const ring = ringY || (seams.left && x < RING) || (seams.right && x >= w - RING);
      const kept = alpha[i] >= 128;
      if (stroke[i] > 127) {
        labels[i] = strokeSide;
        strokeColours.push(i * 4);
      } else if (kept === erase && !ring) {
        labels[i] = erase ? GC.PR_FGD : GC.PR_BGD;
        claimed++;
      } else {
        labels[i] = kept ? GC.FGD : GC.BGD;
      }
    }
  }
  if (!claimed || !strokeColours.length) return null;
  const fromElsewhere = elsewhere.length ? claimed : 0;
  const rows = 2 * h + Math.ceil(fromElsewhere / w);  // the stroke's colours: h rows
  const image = new Uint8Array(w * rows * 3);
  const all = new Uint8Array(w * rows);
  const put = (k, bytes, at, label) => {
    image[k * 3] = bytes[at]; image[k * 3 + 1] = bytes[at + 1]; image[k * 3 + 2] = bytes[at + 2];
    all[k] = label;
  };
  for (let i = 0; i < w * h; i++) put(i, rgba, i * 4, labels[i]);
  const others = elsewhere.length / 4;
  for (let k = w * h, n = 0; k < w * rows; k++, n++) {
    if (n < fromElsewhere) put(k, elsewhere, (n % others) * 4, erase ? GC.FGD : GC.BGD);
    else put(k, rgba, strokeColours[n % strokeColours.length], strokeSide);
  }
  dither(image);
  return { image, labels: all, rows, height: h, claimed };
}

// ±DITHER levels of fixed pseudo-random noise on every channel. OpenCV floors a
// colour model's variance at 0.01: on flat colours (graphics, drawn shapes) a model
// whose component happens to be exactly one colour then peaks so sharply that it
// wins whatever the weights. A spread of a few levels, far below what separates
// subject from background, makes the weights decide (measured on a flat two-disc
// image, where without it the stroke removed nothing).
const DITHER = 2;

function dither(bytes) {
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    bytes[i] = Math.max(0, Math.min(255, bytes[i] + ((seed >>> 16) % (2 * DITHER + 1)) - DITHER));
  }
}

// Run GrabCut (OpenCV.js `cv`) on grabCutInput's answer for an area `width` px wide;
// returns one byte per px of the area itself: 1 foreground, 0 background.
// Two steps: the colour models from every row (GrabCut's k-means start, no
// iteration), then one graph cut of the area alone with those models frozen
// (GC_EVAL_FREEZE_MODEL). Measured against 2 full iterations on the tall input
// (bench/smart_stroke_quality.py, 12 areas, Node): half the time (median 171 against
// 325 ms, worst 200 against 389), the patch removed the same (98.2 against 98.5 %),
// less of the subject taken (3.9 against 5.5 %). Re-learning the models from the
// area's own new labels is what let later iterations eat into a subject that shares
// the patch's colours, and the weighting rows no longer enter the graph (where their
// first row was coupled to the area's bottom one).
export function grabCut(cv, { image, labels, rows, height }, width) {
  const mats = [];
  const mat = (m) => { mats.push(m); return m; };
  try {
    const bgd = mat(new cv.Mat());
    const fgd = mat(new cv.Mat());
    const tall = mat(cv.matFromArray(rows, width, cv.CV_8UC3, image));
    const tallMask = mat(cv.matFromArray(rows, width, cv.CV_8UC1, labels));
    cv.grabCut(tall, tallMask, new cv.Rect(0, 0, width, rows), bgd, fgd, 0, cv.GC_INIT_WITH_MASK);
    const img = mat(cv.matFromArray(height, width, cv.CV_8UC3, image.subarray(0, width * height * 3)));
    const mask = mat(cv.matFromArray(height, width, cv.CV_8UC1, labels.subarray(0, width * height)));
    cv.grabCut(img, mask, new cv.Rect(0, 0, width, height), bgd, fgd, 1, cv.GC_EVAL_FREEZE_MODEL);
    const fg = new Uint8Array(width * height);
    for (let i = 0; i < fg.length; i++) fg[i] = mask.data[i] & 1;  // FGD 1, PR_FGD 3
    return fg;
  } finally {
    for (const m of mats) m.delete();
  }
}

// Where the new labels `fg` (first width*height bytes) differ from the cut-out on the
// side the stroke claims from, and are reached from the stroke (`stroke`: one byte
// per px, > 127 under it) through such pixels, 4-connected: 255 there, else 0.
// GrabCut judges by colour alone: left to it, an Erase stroke on sky beside a rocket
// also took a third of the rocket, parts that do not touch what was stroked.
// Measured on 12 areas of the scikit-image photos with a wrongly kept disc beside the
// subject (bench/smart_stroke_quality.py, docs/BENCHMARKS.md): the subject lost
// 11.7 % of its pixels on average, up to 46 %, against 4.6 % (up to 42 %) when only
// what the stroke reaches changes; the disc went the same (98.5 %).
export function flipsFrom(fg, alpha, erase, stroke, width) {
  const n = alpha.length;
  const flips = new Uint8Array(n);
  const queued = new Uint8Array(n);
  const stack = new Int32Array(n);  // each pixel is queued once at most
  let top = 0;
  const offer = (j) => {
    if (queued[j]) return;
    if (stroke[j] <= 127) {
      const kept = alpha[j] >= 128;
      if (kept !== erase || (fg[j] === 1) === kept) return;  // not a flip
      flips[j] = 255;
    }
    queued[j] = 1;
    stack[top++] = j;
  };
  for (let i = 0; i < n; i++) if (stroke[i] > 127) offer(i);
  while (top) {
    const i = stack[--top];
    const x = i % width;
    if (x > 0) offer(i - 1);
    if (x < width - 1) offer(i + 1);
    if (i >= width) offer(i - width);
    if (i + width < n) offer(i + width);
  }
  return flips;
}
