// onnxruntime-web in a dedicated worker of the offscreen document. The extension's
// pages share the offscreen document's renderer main thread: a model run there
// froze the result page for seconds. Here it blocks only this worker.
//
// Requests {id, op, ...} -> replies {id, ok, ...} or {id, ok: false, error}.
// Events (no id): {event: 'device-lost', message}.
import * as ort from '../vendor/ort/ort.wasm.min.mjs';

const ORT_DIR = new URL('../vendor/ort/', import.meta.url).href;
ort.env.wasm.wasmPaths = ORT_DIR;

// The WebGPU build (26 MB of WASM) is imported on the first WebGPU session only.
let webgpuOrt = null;
function loadWebgpuOrt() {
  webgpuOrt ??= import('../vendor/ort/ort.webgpu.min.mjs').then((module) => {
    module.env.wasm.wasmPaths = ORT_DIR;
    module.env.wasm.numThreads = ort.env.wasm.numThreads;
    return module;
  }, (error) => { webgpuOrt = null; throw error; });
  return webgpuOrt;
}

const sessions = new Map();  // id -> {session, runtime}
let nextSession = 1;
const watchedDevices = new WeakSet();

async function watchDeviceLost(runtime) {
  const device = await runtime.env.webgpu.device;
  if (!device?.lost || watchedDevices.has(device)) return;
  watchedDevices.add(device);
  device.lost.then((info) => {
    // 'destroyed': released on purpose (the engine drops WebGPU after a failure).
    if (info.reason === 'destroyed') return;
    postMessage({ event: 'device-lost', message: `${info.reason ?? ''} ${info.message ?? ''}`.trim() });
  });
}

const ops = {
  configure({ numThreads }) {
    ort.env.wasm.numThreads = numThreads;
    return {};
  },

  async create({ bytes, backend, options }) {
    const runtime = backend === 'wasm' ? ort : await loadWebgpuOrt();
    const session = await runtime.InferenceSession.create(new Uint8Array(bytes), options);
    if (backend === 'webgpu') await watchDeviceLost(runtime).catch(() => {});
    const id = nextSession++;
    sessions.set(id, { session, runtime });
    return { reply: { session: id } };
  },

  // feeds: {name: {type, data, dims}}; the outputs named in `fetch` (default: all)
  // come back the same way, their buffers transferred (no copy).
  async run({ session: id, feeds, fetch }) {
    const { session, runtime } = sessions.get(id) ?? {};
    if (!session) throw new Error('This model session was released.');
    const tensors = Object.fromEntries(Object.entries(feeds).map(
      ([name, { type, data, dims }]) => [name, new runtime.Tensor(type, data, dims)]));
    const results = await (fetch ? session.run(tensors, fetch) : session.run(tensors));
    const outputs = {};
    const transfer = [];
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data;  // on the CPU: preferredOutputLocation is left as 'cpu'
      outputs[name] = { type: tensor.type, data, dims: tensor.dims };
      transfer.push(data.buffer);
    }
    return { reply: { outputs }, transfer };
  },

  async release({ session: id }) {
    const entry = sessions.get(id);
    sessions.delete(id);
    await entry?.session.release();
    return {};
  },
};

self.onmessage = async ({ data: { id, op, ...args } }) => {
  try {
    const { reply = {}, transfer = [] } = await ops[op](args);
    postMessage({ id, ok: true, ...reply }, transfer);
  } catch (error) {
    postMessage({ id, ok: false, error: String(error?.message ?? error) });
  }
};
