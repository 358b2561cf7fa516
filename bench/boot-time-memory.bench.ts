/**
 * Boot time and state size: Machine.boot({ memory, cpus: 2 }) at 16 GiB, 64 GiB, 256 GiB and
 * 1 TiB (--quick: 16 and 64 GiB only). Each boot runs in its own process (bench/lib/boot-child.ts)
 * so peak RSS is that size's alone. Reports wall time, user and system CPU time (system time is
 * almost all first-touch page faults on the frame table, so it depends on how the host backs
 * fresh memory), bytes of state per frame, and peak RSS.
 *
 * Targets (the boot-speed issue): 1 TiB boots in under 10 s, within 16 bytes per frame (aim 8).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BootSample } from './lib/boot-child.ts';
import { defineBenchmark, note, type Row } from './lib/harness.ts';

const CHILD = fileURLToPath(new URL('./lib/boot-child.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const TARGET_BOOT_MS = 10_000;
const TARGET_BYTES_PER_FRAME = 16;
const AIM_BYTES_PER_FRAME = 8;

/** Boot `memory` in a fresh process. */
function bootOnce(memory: string): BootSample {
  const out = execFileSync(
    process.execPath,
    // Typed arrays live outside the JS heap; the old-space cap only bounds the boot's JS objects.
    ['--max-old-space-size=4096', '--import', TSX, CHILD, memory],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 },
  );
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as BootSample;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

const MB = 2 ** 20;

export default defineBenchmark({
  title: 'boot time and state per frame (Machine.boot, 2 CPUs)',
  async run(ctx) {
    // Small machines boot in well under a second, so take the median of three; the large ones once.
    const plan: Array<[string, number]> = ctx.quick
      ? [
          ['16G', 1],
          ['64G', 1],
        ]
      : [
          ['16G', 3],
          ['64G', 3],
          ['256G', 1],
          ['1T', 1],
        ];
    const rows: Row[] = [];
    for (const [memory, repeats] of plan) {
      const samples: BootSample[] = [];
      for (let i = 0; i < repeats; i++) {
        note(`boot ${memory} (${i + 1}/${repeats})`);
        samples.push(bootOnce(memory));
      }
      const wall = median(samples.map((s) => s.wallMs));
      const s = samples.find((x) => x.wallMs === wall) ?? samples[0];
      const total = s.framesBytesPerFrame + s.pbBytesPerFrame;
      const big = memory === '1T';
      rows.push({
        case: memory,
        metric: 'boot wall time',
        value: wall,
        unit: 'ms',
        detail:
          `user ${s.userMs.toFixed(0)} ms, sys ${s.sysMs.toFixed(0)} ms, ` +
          `${(s.minorFaults / 1000).toFixed(0)}k minor faults; ${s.nr_frames.toLocaleString('en-US')} frames` +
          (repeats > 1 ? `; median of ${repeats}` : ''),
        ...(big ? { target: '< 10 s', met: wall < TARGET_BOOT_MS } : {}),
      });
      rows.push({
        case: memory,
        metric: 'state per frame',
        value: total,
        unit: 'B/frame',
        detail: `frame table ${s.framesBytesPerFrame.toFixed(4)} + pageblock arrays ${s.pbBytesPerFrame.toFixed(4)}`,
        target: `<= ${TARGET_BYTES_PER_FRAME} (aim ${AIM_BYTES_PER_FRAME})`,
        met: total <= TARGET_BYTES_PER_FRAME,
      });
      rows.push({
        case: memory,
        metric: 'peak RSS',
        value: s.peakRssBytes / MB,
        unit: 'MB',
        detail:
          `${((s.peakRssBytes - s.rssBeforeBytes) / s.nr_frames).toFixed(2)} B/frame over the ` +
          `${(s.rssBeforeBytes / MB).toFixed(0)} MB before boot`,
      });
    }
    return rows;
  },
});
