// Watching a running job from a page (result view, batch view). The pages ask the
// worker to run the job again every WATCH_MS while it works: free when the engine
// runs it (a job id runs once), and if the engine's document died (a renderer crash,
// memory) the worker starts a new engine and the job runs again there. Once: a job
// whose engine dies twice ends in ENGINE_DIED instead of a loop.
export const WATCH_MS = 3000;
export const ENGINE_DIED = 'The engine stopped twice while working on this image (it may have '
  + 'run out of memory). Try again, or choose Fast mode or a smaller image.';

// Counts the engine's deaths seen by one job's asks: the first ask may start the
// engine (its first job); a start on a later ask means it had died.
export function engineDeaths() {
  let asked = false;
  let deaths = 0;
  return (reply) => {
    if (asked && reply?.engineStarted) deaths += 1;
    asked = true;
    return deaths;
  };
}
