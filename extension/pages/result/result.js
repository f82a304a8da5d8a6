// The result page: asks the worker to run its job, shows progress, then the
// cut-out on a checkerboard with a full-resolution Download PNG.
import { MODES, PAGE_CHANNEL, Target, Type } from '../../messages.js';
import { acceptImages, batchUrl, putBlob, readBlob, refineKeys, startUpload, startUploads } from '../../lib/uploads.js';
import { stageText } from '../../lib/stages.js';

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

// The cut-out composed onto a solid colour with canvas, at full resolution.
async function onBackground(cutout, colour) {
  if (!colour) return cutout;
  const bitmap = await createImageBitmap(cutout);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = colour;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas.convertToBlob({ type: 'image/png' });
}

function chosenColour() {
  const value = document.querySelector('input[name=background]:checked').value;
  return value === 'custom' ? $('custom-colour').value : value;
}

// The chosen background survives a trip to the refine view in this tab's sessionStorage.
const BACKGROUND_KEY = `background:${jobId}`;
function restoreBackground() {
  const saved = JSON.parse(sessionStorage.getItem(BACKGROUND_KEY) ?? 'null');
  if (!saved) return;
  $('custom-colour').value = saved.custom;
  const radio = [...document.querySelectorAll('input[name=background]')].find((r) => r.value === saved.value);
  if (radio) radio.checked = true;
}

function previewBackground(colour) {
  $('stage-figure').style.backgroundImage = colour ? 'none' : '';
  $('stage-figure').style.backgroundColor = colour || '';
}

// Encodes race (a big PNG takes a while): only the newest request may set the output.
let backgroundRequest = 0;
let outputUrl = null;
async function applyBackground() {
  const request = ++backgroundRequest;
  const colour = chosenColour();
  previewBackground(colour);
  const output = await onBackground(current.cutout, colour);
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
  $('compare').disabled = !current.original;
  $('download').download = data.filename;
  restoreBackground();
  await applyBackground();
  const t = data.timings_ms;
  const facts = {
    Size: `${data.width} × ${data.height} px, ${(data.bytes / 1024).toFixed(0)} KB PNG`,
    Mode: MODES[data.mode] ?? data.mode,
    Model: data.model,
    Device: data.backend,
    Time: `${(t.total / 1000).toFixed(2)} s (model ${(t.inference / 1000).toFixed(2)} s)`,
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
// result. So when the worker is stopped before it answers, ask again; and
// while the job runs, ask every 20 s, which restarts it should the engine's
// document have died (a renderer crash) and costs nothing otherwise.
const RUN_JOB = { target: Target.WORKER, type: Type.RUN_JOB, data: { job: jobId } };
let watchdog = null;
async function run(attempts = 4) {
  show('working');
  $('stage').textContent = 'Starting the engine…';
  clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (document.body.dataset.state !== 'working') clearInterval(watchdog);
    else chrome.runtime.sendMessage(RUN_JOB).catch(() => {});
  }, 20_000);
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await chrome.runtime.sendMessage(RUN_JOB);
      if (reply?.error) fail(reply.error);
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
  previewBackground($('custom-colour').value);
});
$('custom-colour').addEventListener('change', () => applyBackground());
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
