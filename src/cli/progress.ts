/**
 * A progress bar on stderr for anything that may take more than a second, in simulated time
 * covered; none when stderr is not a terminal or with --quiet, so pipes and logs stay clean.
 */
import cliProgress from 'cli-progress';
import { formatDuration } from '../lib/duration.ts';

export interface SimProgress {
  /** Simulated now and end, in ns. */
  update(now_ns: number, end_ns: number): void;
  stop(): void;
}

/** Wall ms between redraws: often enough to look alive, rarely enough to cost nothing. */
const REDRAW_MS = 100;

export function simProgress(label: string, quiet: boolean): SimProgress {
  if (quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | simulated {sim} of {end} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last = 0;
  return {
    update(now_ns, end_ns) {
      const wall = Date.now();
      if (started && wall - last < REDRAW_MS) return;
      last = wall;
      const payload = { sim: formatDuration(now_ns), end: formatDuration(end_ns) };
      const total = Math.max(1, Math.round(end_ns / 1e6));
      if (!started) {
        bar.start(total, 0, payload);
        started = true;
      }
      bar.update(Math.min(total, Math.round(now_ns / 1e6)), payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
