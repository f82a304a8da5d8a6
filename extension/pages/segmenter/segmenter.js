// Refine's segmenter: GrabCut (lib/resegment.js) on the area around a stroke, in
// this sandboxed frame. Messages are the usual {target, type, data} envelope, by
// postMessage with the embedding Refine page only.
import { grabCut } from '../../lib/resegment.js';
import { Target, Type } from '../../messages.js';

const cv = globalThis.cv;
const reply = (type, data, transfer = []) =>
  parent.postMessage({ target: Target.PAGE, type, data }, '*', transfer);

// OpenCV's module is a thenable that resolves to itself: wait for its runtime instead.
await new Promise((done) => { if (cv.Mat) done(); else cv.onRuntimeInitialized = done; });

addEventListener('message', (event) => {
  if (event.source !== parent) return;
  const { target, type, data } = event.data ?? {};
  if (target !== Target.SEGMENTER) return;
  if (type !== Type.RESEGMENT) {
    console.warn('segmenter: unknown message type', type);
    return;
  }
  const started = performance.now();
  try {
    const fg = grabCut(cv, data.input, data.width);
    reply(Type.RESEGMENTED, { id: data.id, fg, ms: performance.now() - started }, [fg.buffer]);
  } catch (error) {
    reply(Type.RESEGMENTED, { id: data.id, error: String(error?.message ?? error) });
  }
});
reply(Type.SEGMENTER_READY, {});
