/**
 * Sweep throughput (src/workload/sweep.ts): points per minute of a sweep run on 1 worker thread
 * and on 2, and the speedup. The full run is the shipped example,
 * scenarios/sweeps/thread-700m-sizes.yaml: 10 points (5 request sizes × 2 seeds) of a 1 GiB
 * machine after 10 simulated minutes, about 4 s of work each. --quick runs 4 points of
 * test/fixtures/scenarios/tiny.yaml (about 1 s each), where starting the workers dominates. Wall
 * time covers everything a user waits for: starting the workers (under tsx, each compiles the
 * model), the points, the point files and the merge.
 *
 * The two runs must write the same sweep.json, byte for byte, or the benchmark fails.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSweep, runSweep } from '../src/workload/sweep.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';

/** The command line tests' 256 MiB scenario: two simulated minutes, about 1 s of work a point. */
const TINY = fileURLToPath(new URL('../test/fixtures/scenarios/tiny.yaml', import.meta.url));
/** The shipped example: 10 points of 1 GiB and 10 simulated minutes, about 4 s of work each. */
const EXAMPLE = fileURLToPath(new URL('../scenarios/sweeps/thread-700m-sizes.yaml', import.meta.url));

export default defineBenchmark({
  title: 'Sweep throughput: a sweep on 1 vs 2 worker threads',
  async run(ctx: BenchContext) {
    const dir = mkdtempSync(join(tmpdir(), 'mapcontig-sweep-bench-'));
    try {
      // --quick: 4 tiny points, where each worker's start-up (tsx compiling the model) dominates.
      writeFileSync(
        join(dir, 'sweep.yaml'),
        `scenario: ${TINY}\nseeds: 2\ngrid:\n  compare.request.bytes: [8M, 32M]\n`,
      );
      const file = ctx.quick ? join(dir, 'sweep.yaml') : EXAMPLE;
      const sweep = loadSweep(file);
      const n = sweep.points.length;
      const label = ctx.quick
        ? `${n} points (256 MiB, 2 simulated min each)`
        : `${n} points of ${sweep.name}`;
      const rows: Row[] = [];
      const perMin: number[] = [];
      const results: string[] = [];
      for (const workers of [1, 2]) {
        const out = join(dir, `w${workers}`);
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const r = await runSweep(sweep, { out, workers });
        const s = (performance.now() - t0) / 1000;
        // CPU time of every thread of the process: equal per point on 1 and 2 workers means the
        // pool costs nothing, and a missing speedup is CPUs the machine did not have to give.
        const cpu = process.cpuUsage(cpu0);
        const cpuPerPoint = (cpu.user + cpu.system) / 1e6 / n;
        if (r.ran !== n || r.failed)
          throw new Error(`${workers} workers: ${r.ran} of ${n} points ran, ${r.failed} failed`);
        results.push(readFileSync(join(out, 'sweep.json'), 'utf8'));
        perMin.push((n / s) * 60);
        note(
          `${workers} worker${workers === 1 ? '' : 's'}: ${n} points in ${s.toFixed(1)} s, ${cpuPerPoint.toFixed(2)} CPU s/point`,
        );
        rows.push({
          case: label,
          metric: `throughput, ${workers} worker${workers === 1 ? '' : 's'}`,
          value: perMin[perMin.length - 1],
          unit: 'points/min',
          detail: `${s.toFixed(1)} s wall, worker start-up included; ${cpuPerPoint.toFixed(2)} CPU s/point; ${availableParallelism()} CPUs, load ${loadavg()[0].toFixed(1)}`,
        });
      }
      if (results[0] !== results[1]) throw new Error('sweep.json differs between 1 and 2 workers');
      rows.push({
        case: label,
        metric: 'speedup, 2 workers vs 1',
        value: perMin[1] / perMin[0],
        unit: 'x',
        detail: 'same sweep.json bytes from both',
        target: '> 1.5 x on an idle 2-CPU machine',
        met: perMin[1] / perMin[0] > 1.5,
      });
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
