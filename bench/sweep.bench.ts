/**
 * Sweep throughput (src/workload/sweep.ts): points per minute of a small sweep run on 1 worker
 * thread and on 2, and the speedup. Each point boots a 256 MiB machine, runs a simulated minute
 * of anonymous churn and page-cache reads, maps 8 MiB with MAP_CONTIG and compares two
 * contenders for 16 MiB (about a second of work); a sweep is 8 points (4 with --quick): four
 * request sizes × two seeds. Wall time covers everything a user waits for: starting the workers
 * (under tsx, each compiles its modules), the points, the point files and the merge.
 *
 * The two runs must write the same sweep.json, byte for byte, or the benchmark fails.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSweep, runSweep } from '../src/workload/sweep.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';

const SCENARIO = `name: tiny
machine: { memory: 256M, cpus: 2, map_contig: rfc }
phases:
  - name: busy
    duration: 1min
    workloads:
      - model: anon-churn
        params: { rss: 16M, processes: 2, lifetime: 20s }
      - model: page-cache
        params: { working_set: 32M, read_mb_s: 10 }
events:
  - { at: 1min, action: map_contig, bytes: 8M }
compare:
  request: { bytes: 16M }
  policies: [rfc, thp]
`;

export default defineBenchmark({
  title: 'Sweep throughput: a small sweep on 1 vs 2 worker threads',
  async run(ctx: BenchContext) {
    const dir = mkdtempSync(join(tmpdir(), 'mapcontig-sweep-bench-'));
    try {
      writeFileSync(join(dir, 'tiny.yaml'), SCENARIO);
      const sizes = ctx.quick ? '[8M, 32M]' : '[8M, 16M, 32M, 64M]';
      writeFileSync(
        join(dir, 'sweep.yaml'),
        `scenario: tiny.yaml\nseeds: 2\ngrid:\n  compare.request.bytes: ${sizes}\n`,
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
          case: `${n} points (256 MiB, 1 simulated min each)`,
          metric: `throughput, ${workers} worker${workers === 1 ? '' : 's'}`,
          value: perMin[perMin.length - 1],
          unit: 'points/min',
          detail: `${s.toFixed(1)} s wall, worker start-up included; ${cpuPerPoint.toFixed(2)} CPU s/point; ${availableParallelism()} CPUs, load ${loadavg()[0].toFixed(1)}`,
        });
      }
      if (results[0] !== results[1]) throw new Error('sweep.json differs between 1 and 2 workers');
      rows.push({
        case: `${n} points (256 MiB, 1 simulated min each)`,
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
