// How the pages refresh: often while something is in progress (a deployment
// queued or running, an agent on its way in), seldom when nothing moves, and
// at once after the user's own action. Main thread only.

// Statuses of a deployment that change within seconds.
export const IN_PROGRESS = new Set(['queued', 'running']);
export const BUSY_MS = 1000;
export const IDLE_MS = 5000;

// Runs `load` again and again: `interval()` ms after each run ends (asked
// after the run, so the pace follows what the page now shows). `now()` runs
// it at once (after an action) and `stop()` ends it. Runs never overlap.
export function repeat(load, interval) {
  let timer = null;
  let stopped = false;
  let running = null;
  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) { await running; return run(); }
    running = Promise.resolve().then(load).catch(() => {});
    await running;
    running = null;
    if (!stopped) timer = setTimeout(run, interval());
  };
  timer = setTimeout(run, interval());
  return { now: run, stop: () => { stopped = true; clearTimeout(timer); } };
}
