// The result page: asks the worker to run its job, shows progress, then the
// cut-out on a checkerboard with a full-resolution Download PNG.
import { MODES, PAGE_CHANNEL, Target, Type } from '../../messages.js';
import { backendText } from '../../lib/device.js';
import { acceptImages, batchUrl, putBlob, readBlob, refineKeys, startUpload, startUploads } from '../../lib/uploads.js';
import { stageText } from '../../lib/stages.js';
import { ENGINE_DIED, WATCH_MS, engineDeaths } from '../../lib/watch.js';
import { nextZoom, panBy, trackPinch, zoomAround } from '../../lib/zoom.js';

const $ = (id) => document.getElementById(id);
const jobId = new URLSearchParams(location.search).get('job');
// What the page owns: the cut-out (transparent), the original, and the PNG the
// buttons currently offer (the cut-out on the chosen background).
const current = { cutout: null, original: null, output: null, urls: [] };

function show(state) {
  document.body.dataset.state = state;
  $('open').hidden = state !== 'open';
  $('working').hidden = state !== 'working';
  $('failure').hidden = state !== 'failed';
  $('result').hidden = state !== 'done';
}

function fail(message) {
  $('error').textContent = message;
  show('failed');
}

function ownUrl(blob) {
  const url = URL.createObjectURL(blob);
  current.urls.push(url);
  return url;
}

// The cut-out composed onto the chosen background with canvas, at full resolution:
// a colour, or the user's own image scaled to cover it (centred, cropped).
async function onBackground(cutout, background) {
  if (!background) return cutout;
  const bitmap = await createImageBitmap(cutout);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  if (background.image) {
    const image = await createImageBitmap(background.image);
    const scale = Math.max(canvas.width / image.width, canvas.height / image.height);
    const [w, h] = [image.width * scale, image.height * scale];
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(image, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    image.close();
  } else {
    ctx.fillStyle = background.colour;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas.convertToBlob({ type: 'image/png' });
}

// null (transparent), {colour}, or {image: File}.
function chosenBackground() {
  const value = document.querySelector('input[name=background]:checked').value;
  if (value === 'image') return current.backgroundImage ? { image: current.backgroundImage } : null;
  if (value === 'custom') return { colour: $('custom-colour').value };
  return value ? { colour: value } : null;
}

// The chosen background survives a trip to the refine view in this tab's sessionStorage.
const BACKGROUND_KEY = `background:${jobId}`;
function restoreBackground() {
  const saved = JSON.parse(sessionStorage.getItem(BACKGROUND_KEY) ?? 'null');
  if (!saved) return;
  $('custom-colour').value = saved.custom;
  const radio = [...document.querySelectorAll('input[name=background]')].find((r) => r.value === saved.value);
  if (radio && !radio.disabled) radio.checked = true;  // a background image is not kept
}

let previewUrl = null;
function previewBackground(background) {
  const frame = $('stage-figure');
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = background?.image ? URL.createObjectURL(background.image) : null;
  frame.classList.toggle('with-image', Boolean(previewUrl));
  frame.style.backgroundImage = previewUrl ? `url("${previewUrl}")` : background ? 'none' : '';
  frame.style.backgroundColor = background?.colour ?? '';
}

// Encodes race (a big PNG takes a while): only the newest request may set the output.
let backgroundRequest = 0;
let outputUrl = null;
async function applyBackground() {
  const request = ++backgroundRequest;
  const background = chosenBackground();
  previewBackground(background);
  const output = await onBackground(current.cutout, background);
  if (request !== backgroundRequest) return;
  current.output = output;
  if (outputUrl) URL.revokeObjectURL(outputUrl);
  outputUrl = URL.createObjectURL(output);
  $('download').href = outputUrl;
}

let shown = 0;  // showResult can be re-entered (a re-sent result, bfcache return): newest wins
async function showResult(data) {
  const generation = ++shown;
  // The engine owns data.url; copy the bytes so this page keeps them even if
  // the engine is restarted.
  // A cut-out refined by hand (pages/refine/) replaces the engine's.
  const refined = jobId && await readBlob(refineKeys(jobId).refined).catch(() => undefined);
  const cutout = refined ?? await (await fetch(data.url)).blob();
  const original = data.original_url ? await (await fetch(data.original_url)).blob() : null;
  if (generation !== shown) return;
  current.urls.forEach((url) => URL.revokeObjectURL(url));
  current.urls = [];
  current.cutout = cutout;
  current.original = original;
  document.body.dataset.refined = String(Boolean(refined));
  current.output = current.cutout;
  $('cutout').src = ownUrl(current.cutout);
  $('cutout').dataset.cutout = $('cutout').src;
  $('cutout').dataset.original = current.original ? ownUrl(current.original) : '';
  $('before').src = $('cutout').dataset.original;
  $('split').disabled = !current.original;
  $('compare').disabled = !current.original;
  $('download').download = data.filename;
  restoreBackground();
  await applyBackground();
  const t = data.timings_ms;
  const seconds = `${(t.total / 1000).toFixed(2)} s`;
  $('summary').textContent = `${MODES[data.mode] ?? data.mode} on ${backendText(data.backend)}, ${seconds}`;
  const facts = {
    Size: `${data.width} × ${data.height} px, ${(data.bytes / 1024).toFixed(0)} KB PNG`,
    Mode: MODES[data.mode] ?? data.mode,
    Model: data.model,
    Device: backendText(data.backend),
    Time: `${seconds} (model ${(t.inference / 1000).toFixed(2)} s)`,
  };
  $('facts').replaceChildren(...Object.entries(facts).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  $('notes').replaceChildren(...[...data.notes, ...(refined ? ['Refined by hand.'] : [])].map((note) => {
    const li = document.createElement('li'); li.textContent = note; return li;
  }));
  document.body.dataset.result = JSON.stringify(data);
  $('redo-mode').replaceChildren(new Option('…', ''), ...Object.entries(MODES)
    .filter(([value]) => value !== data.mode).map(([value, label]) => new Option(label, value)));
  show('done');
}

// The engine's messages: a BroadcastChannel of the extension origin, so only our
// own documents can post on it.
new BroadcastChannel(PAGE_CHANNEL).addEventListener('message', ({ data: message }) => {
  if (message?.target !== Target.PAGE || message.data?.job !== jobId) return;
  switch (message.type) {
    case Type.PROGRESS:
      $('stage').textContent = stageText(message.data);
      break;
    case Type.DONE:
      showResult(message.data).catch((error) => fail(`The result could not be shown: ${error.message}`));
      break;
    case Type.FAILED:
      fail(message.data.message);
      break;
    default:
      console.warn('cutout result page: unknown message type', message.type);
  }
});

// Asking twice is safe: the engine runs a job id once and re-sends a finished
// result. So when the worker is stopped before it answers, ask again; and while the
// job runs, ask every few seconds (lib/watch.js: an engine that died is restarted
// and the job run again, once).
const RUN_JOB = { target: Target.WORKER, type: Type.RUN_JOB, data: { job: jobId } };
let watchdog = null;
let deaths = engineDeaths();

function answered(reply) {
  if (reply?.error) return fail(reply.error);
  const died = deaths(reply);
  if (!died || document.body.dataset.state !== 'working') return;
  if (died >= 2) fail(ENGINE_DIED);
  else $('engine-note').hidden = false;
}

async function run(attempts = 4) {
  show('working');
  $('stage').textContent = 'Starting the engine…';
  deaths = engineDeaths();
  $('engine-note').hidden = true;
  clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (document.body.dataset.state !== 'working') clearInterval(watchdog);
    else chrome.runtime.sendMessage(RUN_JOB).then(answered, () => {});
  }, WATCH_MS);
  for (let attempt = 1; ; attempt++) {
    try {
      answered(await chrome.runtime.sendMessage(RUN_JOB));
      return;
    } catch (error) {
      if (attempt >= attempts || document.body.dataset.state !== 'working') {
        if (document.body.dataset.state === 'working') fail(`Cutout could not start: ${error.message}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

// Opening a file here starts a job and shows it in this same tab; several files,
// the batch view.
async function openFiles(files) {
  try {
    if (files.length === 1) {
      location.replace((await startUpload(files[0], false)).url);
    } else {
      location.replace(batchUrl(await startUploads(files)));
    }
  } catch (error) {
    fail(error.message);
  }
}

acceptImages({ input: $('file'), zone: $('dropzone'), onFiles: openFiles });
$('another').addEventListener('click', () => { location.href = location.pathname; });

$('retry').addEventListener('click', () => run());
// Another mode on the same image: a new job, shown in this tab.
$('redo-mode').addEventListener('change', async () => {
  const key = `job:${jobId}`;
  const job = (await chrome.storage.session.get(key))[key];
  if (!job || !$('redo-mode').value) return;
  const reply = await chrome.runtime.sendMessage({
    target: Target.WORKER, type: Type.START_JOB,
    data: { src: job.src, mode: $('redo-mode').value, open: false },
  });
  if (reply?.url) location.replace(reply.url); else fail(reply?.error ?? 'Cutout could not start.');
});
$('backgrounds').addEventListener('change', () => applyBackground());
// Dragging the picker previews with CSS; the full-size PNG is made once, on release.
$('custom-colour').addEventListener('input', () => {
  document.querySelector('input[name=background][value=custom]').checked = true;
  previewBackground({ colour: $('custom-colour').value });
});
$('custom-colour').addEventListener('change', () => applyBackground());
$('background-image').addEventListener('change', () => {
  const [file] = $('background-image').files;
  if (!file) return;
  current.backgroundImage = file;
  const radio = document.querySelector('input[name=background][value=image]');
  radio.disabled = false;
  radio.checked = true;
  applyBackground().catch((error) => {
    $('action-status').textContent = `That background image could not be used: ${error.message}`;
  });
});

// ---- inspecting: zoom, pan, before/after ------------------------------------
// Zoom 0 = fit the window; otherwise CSS px per image px (1 = 100 %), lib/zoom.js.
let zoom = 0;
function fitScale() {
  const img = $('cutout');
  return img.naturalWidth ? img.getBoundingClientRect().width / img.naturalWidth : 1;
}
function setZoom(next, anchor = null) {
  const viewport = $('viewport');
  const img = $('cutout');
  zoomAround(viewport, zoom || fitScale(), next || 1, anchor, () => {
    zoom = next;
    viewport.classList.toggle('zoomed', zoom > 0);
    img.style.width = zoom ? `${img.naturalWidth * zoom}px` : '';
    img.style.height = zoom ? `${img.naturalHeight * zoom}px` : '';
    $('zoom-fit').setAttribute('aria-pressed', String(zoom === 0));
    $('zoom-100').setAttribute('aria-pressed', String(zoom === 1));
    $('zoom-level').textContent = zoom ? `${Math.round(zoom * 100)} %` : 'Fit';
  });
}
function stepZoom(direction, anchor) {
  const next = nextZoom(zoom || fitScale(), direction);
  if (next) setZoom(next, anchor);
}
$('zoom-fit').addEventListener('click', () => setZoom(0));
$('zoom-100').addEventListener('click', () => setZoom(1));
$('zoom-in').addEventListener('click', () => stepZoom(1));
$('zoom-out').addEventListener('click', () => stepZoom(-1));
$('viewport').addEventListener('wheel', (event) => {
  if (!event.ctrlKey) return;
  event.preventDefault();
  stepZoom(event.deltaY < 0 ? 1 : -1, { x: event.clientX, y: event.clientY });
}, { passive: false });
trackPinch($('viewport'), { content: () => $('cutout'), scale: () => zoom || fitScale(),
  zoomTo: (scale) => { if (document.body.dataset.state === 'done') setZoom(scale); } });
// Drag to pan while zoomed.
$('viewport').addEventListener('pointerdown', (event) => {
  if (zoom && event.button === 0) panBy($('viewport'), event);
});
// Before / after: the original over the cut-out, shown up to the slider.
$('split').addEventListener('input', () => {
  const value = Number($('split').value);
  const before = $('before');
  before.hidden = value === 0 || !$('cutout').dataset.original;
  before.style.clipPath = `inset(0 ${100 - value}% 0 0)`;
});
document.addEventListener('keydown', (event) => {
  if (document.body.dataset.state !== 'done' || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.('input, select, textarea')) return;
  const keys = { '+': () => stepZoom(1), '=': () => stepZoom(1), '-': () => stepZoom(-1),
    '0': () => setZoom(0), '1': () => setZoom(1) };
  if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
});

$('compare').addEventListener('click', () => {
  const showOriginal = $('compare').getAttribute('aria-pressed') !== 'true';
  $('compare').setAttribute('aria-pressed', String(showOriginal));
  $('compare').textContent = showOriginal ? 'Show cut-out' : 'Show original';
  $('cutout').src = showOriginal ? $('cutout').dataset.original : $('cutout').dataset.cutout;
});
// Refine: hand the cut-out and the original over through IndexedDB (blobs are
// too big for storage.session), then open the refine view in this tab.
$('refine').addEventListener('click', async () => {
  sessionStorage.setItem(BACKGROUND_KEY, JSON.stringify({
    value: document.querySelector('input[name=background]:checked').value, custom: $('custom-colour').value }));
  try {
    const keys = refineKeys(jobId);
    await putBlob(keys.cutout, current.cutout);
    await putBlob(keys.original, current.original ?? current.cutout);
    location.href = `../refine/refine.html?job=${encodeURIComponent(jobId)}`;
  } catch (error) {
    $('action-status').textContent = `Could not open Refine: ${error.message}`;
  }
});
// Coming back to this page from the back/forward cache: pick up a new refinement.
addEventListener('pageshow', (event) => {
  if (!event.persisted || !document.body.dataset.result) return;
  showResult(JSON.parse(document.body.dataset.result)).catch((error) => fail(`The result could not be shown: ${error.message}`));
});
$('copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': current.output })]);
    $('action-status').textContent = 'Copied to the clipboard.';
  } catch (error) {
    $('action-status').textContent = `Could not copy: ${error.message}`;
  }
});
const startError = new URLSearchParams(location.search).get('error');
if (startError) fail(startError);  // the worker could not even create the job
else if (jobId) run();
else show('open');
