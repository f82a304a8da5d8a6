// The result page: asks the worker to run its job, shows progress, then the
// cut-out on a checkerboard with a full-resolution Download PNG.
import { Target, Type } from '../../messages.js';
import { imageFrom, startUpload } from '../../lib/uploads.js';

const STAGE_TEXT = {
  fetching: 'Downloading the image…',
  decoding: 'Reading the image…',
  'downloading-model': 'Downloading the model (once)…',
  'loading-model': 'Loading the model…',
  inferring: 'Finding the subject…',
  composing: 'Cutting out…',
};
const $ = (id) => document.getElementById(id);
const jobId = new URLSearchParams(location.search).get('job');
let objectUrl = null;

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

async function showResult(data) {
  // The engine owns data.url; copy the bytes so this page keeps them even if
  // the engine is restarted.
  const blob = await (await fetch(data.url)).blob();
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = URL.createObjectURL(blob);
  $('cutout').src = objectUrl;
  $('download').href = objectUrl;
  $('download').download = data.filename;
  const t = data.timings_ms;
  const facts = {
    Size: `${data.width} × ${data.height} px, ${(data.bytes / 1024).toFixed(0)} KB PNG`,
    Model: data.model,
    Device: data.backend,
    Time: `${(t.total / 1000).toFixed(2)} s (model ${(t.inference / 1000).toFixed(2)} s)`,
  };
  $('facts').replaceChildren(...Object.entries(facts).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  $('notes').replaceChildren(...data.notes.map((note) => {
    const li = document.createElement('li'); li.textContent = note; return li;
  }));
  document.body.dataset.result = JSON.stringify(data);
  show('done');
}

chrome.runtime.onMessage.addListener((message) => {
  if (message?.target !== Target.PAGE || message.data?.job !== jobId) return false;
  switch (message.type) {
    case Type.PROGRESS:
      $('stage').textContent = [STAGE_TEXT[message.data.stage] ?? message.data.stage,
        message.data.stage === 'downloading-model' ? message.data.detail : ''].join(' ');
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
  return false;
});

// Asking twice is safe: the engine runs a job id once and re-sends a finished
// result. So when the worker is stopped before it answers, ask again.
async function run(attempts = 4) {
  show('working');
  $('stage').textContent = 'Starting the engine…';
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await chrome.runtime.sendMessage({ target: Target.WORKER, type: Type.RUN_JOB, data: { job: jobId } });
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

// Opening a file here starts a job and shows it in this same tab.
async function openFile(file) {
  if (!file) return;
  try {
    const { url } = await startUpload(file, false);
    location.replace(url);
  } catch (error) {
    fail(error.message);
  }
}

$('file').addEventListener('change', () => openFile($('file').files[0]));
$('another').addEventListener('click', () => { location.href = location.pathname; });
document.addEventListener('paste', (event) => openFile(imageFrom(event.clipboardData)));
const zone = $('dropzone');
zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (event) => {
  event.preventDefault();
  zone.classList.remove('over');
  openFile(imageFrom(event.dataTransfer));
});

$('retry').addEventListener('click', () => run());
if (jobId) run(); else show('open');
