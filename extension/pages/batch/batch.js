// The batch view: several images (picked, dropped or pasted at once) as a list,
// each with its progress, a thumbnail, its error and Try again; Download all as
// one ZIP, which the engine writes (it holds the cut-outs). The engine works
// through the jobs one at a time; reloading asks again and loses nothing.
import { PAGE_CHANNEL, Target, Type } from '../../messages.js';
import { acceptImages, startUploads } from '../../lib/uploads.js';
import { backendText } from '../../lib/device.js';
import { stageText } from '../../lib/stages.js';
import { ENGINE_DIED, WATCH_MS, engineDeaths } from '../../lib/watch.js';

const $ = (id) => document.getElementById(id);
const resultUrl = (job) => new URL(`../result/result.html?job=${encodeURIComponent(job)}`, location.href).href;
const items = new Map();  // job id -> { row, state, result }

function jobIds() {
  return (new URLSearchParams(location.search).get('jobs') ?? '').split(',').filter(Boolean);
}

// The name a person gave the file (upload:<id>/<name>), or the URL's last part.
async function displayName(job) {
  const key = `job:${job}`;
  const src = (await chrome.storage.session.get(key))[key]?.src ?? '';
  const last = src.split(/[/?#]/).filter(Boolean).pop() ?? '';
  try {
    return decodeURIComponent(last) || 'image';
  } catch {
    return last || 'image';
  }
}

function summarise() {
  const states = [...items.values()].map((item) => item.state);
  const done = states.filter((s) => s === 'done').length;
  const failed = states.filter((s) => s === 'failed').length;
  const working = states.length - done - failed;
  $('summary').textContent = working
    ? `${done} of ${states.length} done${failed ? `, ${failed} failed` : ''}; working…`
    : `${states.length} image${states.length === 1 ? '' : 's'}: ${done} done${failed ? `, ${failed} failed` : ''}.`;
  document.body.dataset.state = working ? 'working' : 'finished';
  $('download-all').disabled = done === 0;
}

function setState(job, state, text) {
  const item = items.get(job);
  item.state = state;
  item.row.dataset.state = state;
  item.row.querySelector('.status').textContent = text;
  item.row.querySelector('.retry').hidden = state !== 'failed';
  summarise();
}

function showDone(job, data) {
  const item = items.get(job);
  item.result = data;
  const { row } = item;
  row.querySelector('img').src = data.url;
  row.querySelector('img').alt = `Cut-out of ${row.querySelector('.name').textContent}`;
  row.querySelector('.thumb').href = resultUrl(job);
  Object.assign(row.querySelector('.open'), { href: resultUrl(job), hidden: false });
  const download = row.querySelector('.download');
  Object.assign(download, { href: data.url, download: data.filename, hidden: false });
  const seconds = (data.timings_ms?.total ?? 0) / 1000;
  setState(job, 'done', `${data.width} × ${data.height} · ${data.model} on ${backendText(data.backend)} · ${seconds.toFixed(1)} s`);
}

const ask = (job) => chrome.runtime.sendMessage({ target: Target.WORKER, type: Type.RUN_JOB, data: { job } });

function answered(job, reply) {
  const item = items.get(job);
  if (reply?.error) return setState(job, 'failed', reply.error);
  if (item.deaths(reply) >= 2 && item.state === 'working') setState(job, 'failed', ENGINE_DIED);
}

async function run(job) {
  setState(job, 'working', 'Waiting for the engine…');
  items.get(job).deaths = engineDeaths();
  try {
    answered(job, await ask(job));
  } catch (error) {
    setState(job, 'failed', `Cutout could not start: ${error.message}`);
  }
}

async function add(job) {
  if (items.has(job)) return;
  const row = $('item').content.firstElementChild.cloneNode(true);
  row.dataset.job = job;
  row.querySelector('.name').textContent = await displayName(job);
  row.querySelector('.retry').addEventListener('click', () => run(job));
  $('items').append(row);
  items.set(job, { row, state: 'working', result: null, deaths: engineDeaths() });
  run(job);
}

new BroadcastChannel(PAGE_CHANNEL).addEventListener('message', ({ data: message }) => {
  const job = message?.data?.job;
  if (message?.target !== Target.PAGE || !items.has(job)) return;
  if (message.type === Type.PROGRESS) setState(job, 'working', stageText(message.data));
  else if (message.type === Type.DONE) showDone(job, message.data);
  else if (message.type === Type.FAILED) setState(job, 'failed', message.data.message);
});

// While jobs run, ask again (lib/watch.js): free when they run, a restart should the
// engine's document have died, as the result page does.
setInterval(() => {
  for (const [job, item] of items) {
    if (item.state === 'working') ask(job).then((reply) => answered(job, reply), () => {});
  }
}, WATCH_MS);

$('download-all').addEventListener('click', async () => {
  const done = [...items].filter(([, item]) => item.state === 'done').map(([job]) => job);
  $('download-all').disabled = true;
  $('error').hidden = true;
  try {
    const reply = await chrome.runtime.sendMessage({ target: Target.WORKER, type: Type.ZIP, data: { jobs: done } });
    if (!reply || reply.error) throw new Error(reply?.error ?? 'The engine did not answer.');
    if (reply.missing?.length) {
      $('error').textContent = `${reply.missing.length} cut-out(s) are no longer held by the engine; open them again to include them.`;
      $('error').hidden = false;
    }
    Object.assign($('zip'), { href: reply.url, download: reply.name });
    $('zip').click();
  } catch (error) {
    $('error').textContent = `The ZIP could not be made: ${error.message}`;
    $('error').hidden = false;
  } finally {
    summarise();
  }
});

// More images here join the list (and the address, so that a reload keeps them).
acceptImages({
  input: $('file'), zone: $('dropzone'),
  onFiles: async (files) => {
    try {
      const jobs = await startUploads(files);
      const url = new URL(location.href);
      url.searchParams.set('jobs', [...items.keys(), ...jobs.map((j) => j.id)].join(','));
      history.replaceState(null, '', url);
      for (const { id } of jobs) await add(id);
    } catch (error) {
      $('error').textContent = error.message;
      $('error').hidden = false;
    }
  },
});

for (const job of jobIds()) await add(job);
summarise();
