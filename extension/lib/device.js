// What the engine knows about this device (cutout.engine.device): asked through the
// worker, which starts the engine if needed. Shared by the popup and the options page.
import { MODES, Target, Type } from '../messages.js';

export async function deviceInfo() {
  const info = await chrome.runtime.sendMessage({ target: Target.WORKER, type: Type.DEVICE_INFO, data: {} });
  if (!info || info.error) throw new Error(info?.error ?? 'the engine did not answer');
  return info;
}

// "8.1 s (measured on this device)" for a mode on a backend, or '' when nothing is known.
export function timeText(info, mode, backend) {
  const entry = info.estimates[mode]?.[backend];
  return entry ? `${(entry.ms / 1000).toFixed(1)} s (${entry.basis})` : '';
}

// Mode labels with what this device would use and take: the user decides.
export function modeLabels(info) {
  const backend = info.tier.name;
  const where = backend === 'webgpu' ? 'the GPU' : 'the CPU';
  return Object.fromEntries(Object.entries(MODES).map(([value, label]) => {
    // "Automatic: Fast on the CPU": what it means here, short enough for the popup.
    if (value === 'auto') return [value, `${label.split(' (')[0]}: ${MODES[info.tier.default_mode]} on ${where}`];
    const time = info.estimates[value]?.[backend];
    return [value, time ? `${label}, about ${(time.ms / 1000).toFixed(1)} s here` : label];
  }));
}

// A backend in words: "the CPU (WebAssembly, 2 threads)", "the GPU (WebGPU, <adapter>)".
export function deviceText(backend, detail = '') {
  const where = { wasm: 'the CPU (WebAssembly', webgpu: 'the GPU (WebGPU' }[backend];
  return where ? `${where}${detail ? `, ${detail}` : ''})` : backend;
}

// What ran a job, for a person: the engine's label ("wasm (2 threads)",
// "webgpu (<adapter>)", cutout.engine.device) in deviceText's words.
export function backendText(label) {
  const [, backend, detail] = /^(\w+)(?: \((.*)\))?$/.exec(label ?? '') ?? [];
  return backend ? deviceText(backend, detail) : label ?? 'unknown';
}
