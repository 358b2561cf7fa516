/**
 * The shipped scenarios (scenarios/*.yaml) end to end with runScenario(): simulated seconds per
 * wall-clock second, and the wall time of the whole run (boot, phases, events, samples and the
 * `compare:` section). Every scenario runs on 64 GiB: one written for a smaller machine has its
 * `machine.memory` raised to 64G (noted in the row), so the rows compare the workloads, not the
 * machine sizes; its own size's run is in docs/scenarios.md, "Rates and wall time".
 *
 * --quick runs 1/1000 of each scenario (phase durations and event times scaled, at least 1 s per
 * phase) with two samples and without the comparison: mostly boot and the initial fault-in of
 * each workload's memory, 3 to 15 s each at 64 GiB. The full run is each scenario as shipped,
 * with a target of 3 minutes of wall time.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSize } from '../src/lib/size.ts';
import { runScenario } from '../src/workload/run.ts';
import { loadScenario, type Scenario } from '../src/workload/scenario.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';

const DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));
const MEMORY = 64 * 2 ** 30;
const TARGET_S = 180;
const QUICK_FRACTION = 1 / 1000;

/** `s` with its timeline scaled by `f` (phases at least 1 s), sampled twice, and no comparison. */
function shortened(s: Scenario, f: number): Scenario {
  const phases = s.phases.map((p) => ({ ...p, duration: Math.max(1e9, Math.round(p.duration * f)) }));
  const total = phases.reduce((t, p) => t + p.duration, 0);
  return {
    ...s,
    phases,
    events: s.events.map((e) => ({ ...e, at: Math.min(total, Math.round(e.at * f)) })),
    // Two samples (start and end): at 64 GiB each costs a few hundred ms of wall time.
    sample: { every: total, files: [], counters: [], metrics: [] },
    compare: undefined,
  };
}

function rows(file: string, ctx: BenchContext): Row[] {
  let s = loadScenario(join(DIR, file));
  const written = String(s.machine.memory);
  const raised = parseSize(written) < MEMORY;
  if (raised) s = { ...s, machine: { ...s.machine, memory: '64G' } };
  if (ctx.quick) s = shortened(s, QUICK_FRACTION);
  const t0 = performance.now();
  const r = runScenario(s);
  const wall = (performance.now() - t0) / 1e3;
  const sim = r.end_ns / 1e9;
  const what = raised ? `64 GiB (written for ${written})` : '64 GiB';
  const detail = `${what}; ${sim.toFixed(0)} simulated s in ${wall.toFixed(1)} s wall${ctx.quick ? `, 1/${1 / QUICK_FRACTION} of the run, no compare` : ''}`;
  note(`${s.name}: ${detail}`);
  const out: Row[] = [
    { case: s.name, metric: 'simulated s per wall s', value: sim / wall, unit: 'x', detail },
  ];
  if (!ctx.quick)
    out.push({
      case: s.name,
      metric: 'wall time, whole run',
      value: wall,
      unit: 's',
      detail,
      target: `< ${TARGET_S} s`,
      met: wall < TARGET_S,
    });
  return out;
}

export default defineBenchmark({
  title: 'Shipped scenarios end to end (runScenario) at 64 GiB: simulated seconds per wall second',
  async run(ctx: BenchContext) {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    return files.flatMap((f) => rows(f, ctx));
  },
});
