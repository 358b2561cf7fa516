/**
 * Boots one machine and prints one line of JSON with what bench/boot-time-memory.bench.ts
 * reports. Run in its own process per size, so peak RSS belongs to that size alone:
 * `node --import tsx bench/lib/boot-child.ts 1T`.
 */
import { Machine } from '../../src/sim/machine.ts';

/** One boot's measurements. */
export interface BootSample {
  memory: string;
  nr_frames: number;
  wallMs: number;
  /** CPU time in user space (the model) and in the kernel (mostly first-touch page faults). */
  userMs: number;
  sysMs: number;
  minorFaults: number;
  /** FrameTable bytes per frame (header and list sentinels included). */
  framesBytesPerFrame: number;
  /** Pageblock arrays (pb_flags + pb_zone) per frame. */
  pbBytesPerFrame: number;
  /** RSS before boot (node + tsx + the model's modules) and the peak over the process's life. */
  rssBeforeBytes: number;
  peakRssBytes: number;
}

const memory = process.argv[2];
if (!memory) throw new Error('usage: boot-child.ts <memory>');
const rssBefore = process.memoryUsage().rss;
const ru0 = process.resourceUsage();
const t0 = performance.now();
const machine = Machine.boot({ memory, cpus: 2 });
const t1 = performance.now();
const ru1 = process.resourceUsage();
const mm = machine.mm;
const sample: BootSample = {
  memory,
  nr_frames: mm.frames.nr_frames,
  wallMs: t1 - t0,
  userMs: (ru1.userCPUTime - ru0.userCPUTime) / 1000,
  sysMs: (ru1.systemCPUTime - ru0.systemCPUTime) / 1000,
  minorFaults: ru1.minorPageFault - ru0.minorPageFault,
  framesBytesPerFrame: mm.frames.bytesPerFrame(),
  pbBytesPerFrame: (mm.pb_flags.byteLength + mm.pb_zone.byteLength) / mm.frames.nr_frames,
  rssBeforeBytes: rssBefore,
  peakRssBytes: ru1.maxRSS * 1024,
};
process.stdout.write(`${JSON.stringify(sample)}\n`);
