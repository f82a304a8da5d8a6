// Keep subject's selection logic (Refine), pure functions on RGBA bytes so that
// tests/unit/test_selection.py can run them in Node on small synthetic masks.

// The 8-connected region of alpha > `low` in `alpha` (RGBA bytes) containing
// pixel (x, y), as a 0/1 map; null when that pixel is not part of the cut-out.
export function regionAt(alpha, w, h, x, y, low) {
  const start = y * w + x;
  if (alpha[start * 4 + 3] <= low) return null;
  const inside = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  let top = 0;
  stack[top++] = start;
  inside[start] = 1;
  while (top) {
    const i = stack[--top];
    const px = i % w;
    for (let dy = -1; dy <= 1; dy++) {
      const row = i + dy * w;
      if (row < 0 || row >= w * h) continue;
      for (let dx = -1; dx <= 1; dx++) {
        if ((dx < 0 && px === 0) || (dx > 0 && px === w - 1)) continue;
        const j = row + dx;
        if (!inside[j] && alpha[j * 4 + 3] > low) {
          inside[j] = 1;
          stack[top++] = j;
        }
      }
    }
  }
  return inside;
}

// `map` grown by `r` px (a square window: separable running max, O(pixels)).
export function grow(map, w, h, r) {
  const tmp = new Uint8Array(w * h);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r) && !v; k++) v = map[y * w + k];
      tmp[y * w + x] = v;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r) && !v; k++) v = tmp[k * w + x];
      out[y * w + x] = v;
    }
  }
  return out;
}

// Keep (or with `add`, bring back from `base`) the `region` in the RGBA bytes `a`:
// pixels outside it go, except faint ones (alpha <= `low`) within `near` (the region
// grown by its halo: its soft edge); `add` restores the region and its faint halo.
export function keepRegion(a, base, region, near, add, low) {
  for (let i = 0; i < region.length; i++) {
    if (add) {
      if (near[i] && (region[i] || base[i * 4 + 3] <= low)) a[i * 4 + 3] = base[i * 4 + 3];
    } else if (!region[i] && !(near[i] && a[i * 4 + 3] <= low)) {
      a[i * 4 + 3] = 0;
    }
  }
}
