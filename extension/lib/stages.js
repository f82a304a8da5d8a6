// What a job's progress stages say to a person (the engine's Progress.stage).
export const STAGE_TEXT = Object.freeze({
  queued: 'Waiting for the images before it…',
  fetching: 'Downloading the image…',
  decoding: 'Reading the image…',
  'downloading-model': 'Downloading the model (once)…',
  'loading-model': 'Loading the model…',
  inferring: 'Finding the subject…',
  composing: 'Cutting out…',
});

// Stages whose detail a person wants to see: the download's MB, how long the model run
// should take here ("about 3.7 s on this device"), how far a big photo's cut-out is
// (its strips, "40 %").
const SHOWN_DETAIL = new Set(['downloading-model', 'inferring', 'composing']);

export function stageText({ stage, detail }) {
  return [STAGE_TEXT[stage] ?? stage, SHOWN_DETAIL.has(stage) ? detail ?? '' : ''].join(' ').trim();
}
