// Images the user opens from disk, pasted or dropped. They are kept in
// IndexedDB (shared by all extension pages and the offscreen engine, and
// unlike storage.session free of a 10 MB quota) so a job can be re-run and
// nothing is lost when the popup closes or the worker is stopped.
import { Target, Type } from '../messages.js';

const DB = 'cutout';
const STORE = 'uploads';
const KEEP = 20;  // newest uploads kept; older ones are deleted on each new upload
// Other blobs pages hand each other (the Refine view's input and output) share
// the store under this key prefix, so upload pruning leaves them alone and
// they are pruned among themselves.
const BLOB_PREFIX = 'blob:';
const KEEP_BLOBS = 30;  // newest hand-off blobs kept (three per refined job)

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export async function readUpload(id) {
  const entry = await transact('readonly', (store) => store.get(id));
  return entry?.blob;
}

// Store `entry` under `key`, with a message a user can act on when the disk is full.
async function put(key, entry) {
  try {
    await transact('readwrite', (store) => store.put(entry, key));
  } catch (error) {
    if (error?.name === 'QuotaExceededError') {
      throw new Error('The browser has no room left to hold this image. Free some disk space and try again.');
    }
    throw error;
  }
}

async function putUpload(blob) {
  const id = `${Date.now().toString(36)}-${crypto.randomUUID()}`;  // sorts by age
  await put(id, { blob });
  const keys = (await transact('readonly', (store) => store.getAllKeys()))
    .filter((key) => !String(key).startsWith(BLOB_PREFIX));
  const stale = keys.sort().slice(0, Math.max(0, keys.length - KEEP));
  if (stale.length) await transact('readwrite', (store) => { stale.forEach((k) => store.delete(k)); });
  return id;
}

// Hand-off blobs: any page stores a Blob under a key of its choosing and
// another page reads it back (undefined when it is gone).
export async function putBlob(key, blob) {
  const id = BLOB_PREFIX + key;
  await put(id, { blob, id, saved: Date.now() });
  // Keep the newest KEEP_BLOBS; reading the entries only reads Blob handles, not bytes.
  const range = IDBKeyRange.bound(BLOB_PREFIX, `${BLOB_PREFIX}\uffff`);
  const entries = await transact('readonly', (store) => store.getAll(range));
  const stale = entries.sort((a, b) => a.saved - b.saved)
    .slice(0, Math.max(0, entries.length - KEEP_BLOBS)).map((entry) => entry.id);
  if (stale.length) await transact('readwrite', (store) => { stale.forEach((k) => store.delete(k)); });
}

export async function readBlob(key) {
  const entry = await transact('readonly', (store) => store.get(BLOB_PREFIX + key));
  return entry?.blob;
}

// The IndexedDB keys through which the result page and the Refine view of one
// job exchange images.
export function refineKeys(job) {
  return { cutout: `refine:${job}:cutout`, original: `refine:${job}:original`, refined: `refine:${job}:refined` };
}

// Store the file and start a job for it; resolves to {id, url} of the job.
export async function startUpload(file, openTab) {
  const name = encodeURIComponent(file.name || 'pasted-image.png');
  const uploadId = await putUpload(file);
  const reply = await chrome.runtime.sendMessage({
    target: Target.WORKER, type: Type.START_JOB,
    data: { src: `upload:${uploadId}/${name}`, open: openTab },
  });
  if (!reply || reply.error) throw new Error(reply?.error ?? 'The worker did not answer.');
  return reply;
}

// Start a job for each file, in order, without opening tabs; resolves to their {id, url}.
export async function startUploads(files) {
  const jobs = [];
  for (const file of files) jobs.push(await startUpload(file, false));
  return jobs;
}

// The batch view of several jobs.
export function batchUrl(jobs) {
  return chrome.runtime.getURL(`pages/batch/batch.html?jobs=${jobs.map((j) => encodeURIComponent(j.id)).join(',')}`);
}

// Every image file among a drop's or paste's items (a file of unknown type is let
// through: the engine names what it is if it is no image).
function imagesFrom(dataTransfer) {
  return [...(dataTransfer?.files ?? [])].filter((f) => f.type.startsWith('image/') || !f.type);
}

// Every way a page takes images: the file picker, a drop on `zone`, a paste; one
// or several at once.
export function acceptImages({ input, zone, onFiles }) {
  const take = (files) => { if (files.length) onFiles(files); };
  input.addEventListener('change', () => take([...input.files]));
  document.addEventListener('paste', (event) => take(imagesFrom(event.clipboardData)));
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    take(imagesFrom(event.dataTransfer));
  });
}
