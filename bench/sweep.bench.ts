/**
 * Sweep throughput (src/workload/sweep.ts): points per minute of a small sweep run on 1 worker
 * thread and on 2, and the speedup. Each point runs test/fixtures/scenarios/tiny.yaml (a 256 MiB
 * machine, two simulated minutes of anonymous churn and page-cache reads, two MAP_CONTIG requests
 * and three contenders compared; about 2 s of work) for one comparison size; a sweep is 8 points
 * (4 with --quick): four request sizes × two seeds. Wall time covers everything a user waits for: starting the workers
 * (under tsx, each compiles its modules), the points, the point files and the merge.
 *
 * The two runs must write the same sweep.json, byte for byte, or the benchmark fails.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSweep, runSweep } from '../src/workload/sweep.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';

/** The command line tests' 256 MiB scenario: two simulated minutes, about 2 s of work a point. */
const SCENARIO = fileURLToPath(new URL('../test/fixtures/scenarios/tiny.yaml', import.meta.url));

export default defineBenchmark({
  title: 'Sweep throughput: a small sweep on 1 vs 2 worker threads',
  async run(ctx: BenchContext) {
    const dir = mkdtempSync(join(tmpdir(), 'mapcontig-sweep-bench-'));
    try {
      const sizes = ctx.quick ? '[8M, 32M]' : '[8M, 16M, 32M, 64M]';
      writeFileSync(
        join(dir, 'sweep.yaml'),
        `scenario: ${SCENARIO}\nseeds: 2\ngrid:\n  compare.request.bytes: ${sizes}\n`,
      );
      const sweep = loadSweep(join(dir, 'sweep.yaml'));
      const n = sweep.points.length;
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
          case: `${n} points (256 MiB, 2 simulated min each)`,
          metric: `throughput, ${workers} worker${workers === 1 ? '' : 's'}`,
          value: perMin[perMin.length - 1],
          unit: 'points/min',
          detail: `${s.toFixed(1)} s wall, worker start-up included; ${cpuPerPoint.toFixed(2)} CPU s/point; ${availableParallelism()} CPUs, load ${loadavg()[0].toFixed(1)}`,
        });
      }
      if (results[0] !== results[1]) throw new Error('sweep.json differs between 1 and 2 workers');
      rows.push({
        case: `${n} points (256 MiB, 2 simulated min each)`,
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
