/**
 * Reading /proc/kpageflags and /proc/kpagecount whole, as page-types(1) and snapshot tools do:
 * one u64 per frame of a 16 GiB machine (4.4 M frames, 34 MiB per file). The target is the
 * responsiveness a snapshot import needs: well under a second for both files.
 */
import { Machine } from '../src/sim/machine.ts';
import { type BenchContext, defineBenchmark, note, type Row, timeOps } from './lib/harness.ts';

const benchmark = defineBenchmark({
  title: '/proc/kpageflags and /proc/kpagecount, read whole (16 GiB, freshly booted)',
  async run(ctx: BenchContext): Promise<Row[]> {
    note('booting 16G');
    const m = Machine.boot({ memory: '16G', cpus: 2, seed: 1 });
    const frames = m.readFileBytes('/proc/kpageflags').length / 8;
    const s = await timeOps(
      () => m.readFileBytes('/proc/kpageflags').length + m.readFileBytes('/proc/kpagecount').length,
      1,
      ctx,
      2,
    );
    const ms = (1 / s.opsPerSec) * 1e3;
    return [
      {
        case: 'both files, whole',
        metric: 'wall time',
        value: ms,
        unit: 'ms',
        detail: `${frames.toLocaleString('en-US')} frames; min ${(s.nsPerOpMin / 1e6).toFixed(1)} ms, p99 ${(s.nsPerOpP99 / 1e6).toFixed(1)} ms; ${s.samples} reads`,
        target: '< 700 ms',
        met: ms < 700,
      },
    ];
  },
});

export default benchmark;
