/**
 * The benchmark contract. Each `bench/<what-it-measures>.bench.ts` default-exports a Benchmark;
 * bench/run.ts runs each one in its own child process (bench/lib/child.ts) so JIT feedback, heap
 * and RSS of one benchmark never leak into another, and collects its rows into one table.
 */
import { do_not_optimize, measure } from 'mitata';

/** What the runner tells a benchmark. */
export interface BenchContext {
  /** --quick: fewer samples and smaller machines, so the whole run stays under 30 s. */
  quick: boolean;
}

/** One line of the results table. */
export interface Row {
  /** The workload variant, e.g. 'GFP_KERNEL, pcp hit'. */
  case: string;
  /** What `value` is, e.g. 'throughput', 'wall time'. */
  metric: string;
  value: number;
  /** 'ops/s', 'ms', 'B/frame', 'MB', 'x', …; the table scales ops/s and bytes for reading. */
  unit: string;
  /** Secondary numbers (percentiles, sample counts) shown after the value. */
  detail?: string;
  /** The target this row is judged against, e.g. '< 10 s'. */
  target?: string;
  /** Whether the target was met; absent when there is no target. */
  met?: boolean;
}

/** A benchmark file's default export. */
export interface Benchmark {
  /** Short title shown as the table's section heading. */
  title: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** Identity helper that type-checks a benchmark definition. */
export function defineBenchmark(b: Benchmark): Benchmark {
  return b;
}

/** Throughput of a pass function, from mitata's per-pass timings. */
export interface OpsStats {
  /** Operations per second at the median pass time. */
  opsPerSec: number;
  /** Nanoseconds per operation at the median pass time. */
  nsPerOp: number;
  /** ns/op at the fastest and the 99th-percentile pass. */
  nsPerOpMin: number;
  nsPerOpP99: number;
  samples: number;
}

/**
 * Time `pass`, which performs `opsPerPass` operations and returns a checksum (kept alive through
 * do_not_optimize so the work cannot be elided). Runs `warmup` passes first so TurboFan has
 * optimised the hot path: mitata's own warmup only kicks in for sub-millisecond functions.
 */
export async function timeOps(
  pass: () => number,
  opsPerPass: number,
  ctx: BenchContext,
  warmup = 5,
): Promise<OpsStats> {
  for (let i = 0; i < warmup; i++) do_not_optimize(pass());
  const stats = await measure(() => do_not_optimize(pass()), {
    min_samples: ctx.quick ? 5 : 15,
    min_cpu_time: (ctx.quick ? 150 : 700) * 1e6,
    // Never batch: a pass is milliseconds long, and batching would mix passes from different states.
    batch_threshold: 0,
    warmup_samples: 0,
  });
  return {
    opsPerSec: (opsPerPass * 1e9) / stats.p50,
    nsPerOp: stats.p50 / opsPerPass,
    nsPerOpMin: stats.min / opsPerPass,
    nsPerOpP99: stats.p99 / opsPerPass,
    samples: stats.samples.length,
  };
}

/** Rows for one OpsStats: throughput with the ns/op spread as detail. */
export function opsRow(name: string, s: OpsStats, extra = ''): Row {
  return {
    case: name,
    metric: 'throughput',
    value: s.opsPerSec,
    unit: 'ops/s',
    detail: `${s.nsPerOp.toFixed(1)} ns/op (min ${s.nsPerOpMin.toFixed(1)}, p99 ${s.nsPerOpP99.toFixed(1)}; ${s.samples} passes)${extra}`,
  };
}

/** Progress note on stderr, so stdout stays clean for the table. */
export function note(text: string): void {
  process.stderr.write(`    ${text}\n`);
}
