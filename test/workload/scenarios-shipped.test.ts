/**
 * The shipped scenarios (scenarios/*.yaml): every one parses, and every one runs — scaled down so
 * the whole file takes well under a minute: durations and times ÷ 1000, memory capped at 1 GiB
 * with every size in it (workload sizes, CMA and huge page reservations, requests) scaled by the
 * same ratio, and the first two contenders compared. The full runs' wall times are
 * bench/scenarios.bench.ts's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSize } from '../../src/lib/size.ts';
import type { MachineConfigInput } from '../../src/sim/config.ts';
import '../../src/workload/models.ts';
import { runScenario } from '../../src/workload/run.ts';
import { loadScenario, parseScenario, type Scenario } from '../../src/workload/scenario.ts';

const DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

const CAP = 2 ** 30;
/** Contenders compared per scenario here (each costs a clone and a probe; all are tested elsewhere). */
const CONTENDERS = 2;
const TIME = 1 / 1000;
const PAGE = 4096;
/** Params that are sizes but not amounts of memory (an I/O size, a stride): kept. */
const UNSCALED = new Set(['io_size', 'stride']);

const pagesOf = (bytes: number) => Math.max(16 * PAGE, Math.floor(bytes / PAGE) * PAGE);
const isSize = (v: unknown): v is string => typeof v === 'string' && /^\d+(\.\d+)?[KMGTP]$/.test(v);

/** `s` with durations ÷ 1000 and memory at most 1 GiB, every size in it scaled alike. */
function scaledDown(s: Scenario): { s: Scenario; ratio: number } {
  const memory = parseSize(String(s.machine.memory));
  const r = Math.min(1, CAP / memory);
  const time = (ns: number) => Math.max(1e9, Math.round(ns * TIME));
  const machine: MachineConfigInput = { ...s.machine, memory: Math.min(memory, CAP) };
  for (const k of ['cma', 'hugetlb_cma'] as const) {
    const v = machine[k];
    if (typeof v === 'string' && isSize(v)) machine[k] = String(pagesOf(parseSize(v) * r));
  }
  if (typeof machine.hugetlb === 'string')
    machine.hugetlb = machine.hugetlb.replace(/hugepages=(\d+)/g, (_, n) => `hugepages=${Math.floor(n * r)}`);
  const phases = s.phases.map((p) => ({
    ...p,
    duration: time(p.duration),
    workloads: p.workloads.map((w) => ({
      ...w,
      params: Object.fromEntries(
        Object.entries(w.params).map(([k, v]) => [
          k,
          isSize(v) && !UNSCALED.has(k) ? pagesOf(parseSize(v) * r) : v,
        ]),
      ),
    })),
  }));
  const total = phases.reduce((t, p) => t + p.duration, 0);
  const events = s.events.map((e) => {
    const at = Math.min(total, Math.round(e.at * TIME));
    if (e.action === 'map_contig') return { ...e, at, bytes: pagesOf(e.bytes * r) };
    if (e.action === 'nr_hugepages') return { ...e, at, count: Math.floor(e.count * r) };
    return { ...e, at };
  });
  const sysfs = Object.fromEntries(
    Object.entries(s.sysfs).map(([k, v]) => [
      k,
      k.endsWith('min_free_kbytes') ? String(Math.max(1024, Math.floor(Number(v) * r))) : v,
    ]),
  );
  return {
    ratio: r,
    s: {
      ...s,
      machine,
      sysfs,
      phases,
      events,
      sample: s.sample && { ...s.sample, every: time(s.sample.every) },
      compare: s.compare && {
        ...s.compare,
        at: s.compare.at === undefined ? undefined : Math.min(total, Math.round(s.compare.at * TIME)),
        request: { ...s.compare.request, bytes: pagesOf(s.compare.request.bytes * r) },
        policies: s.compare.policies.slice(0, CONTENDERS),
      },
    },
  };
}

describe('shipped scenarios', () => {
  it('are all there', () => {
    for (const name of [
      'build-box',
      'camera-board',
      'database-host',
      'dpdk-hugepages',
      'kvm-host',
      'rdma-webserver',
      'thread-700m',
    ])
      expect(FILES).toContain(`${name}.yaml`);
  });

  it.each(FILES)('%s parses, with phases, events, sampling, a comparison and a header', (file) => {
    const s = loadScenario(join(DIR, file));
    expect(s.name).toBe(file.replace(/\.yaml$/, ''));
    expect(s.phases.length).toBeGreaterThan(0);
    expect(s.events.length).toBeGreaterThan(0);
    expect(s.sample).toBeDefined();
    expect(s.compare?.policies.length).toBeGreaterThan(0);
    // Documented at the top: the question it answers and where its numbers come from.
    const head = readFileSync(join(DIR, file), 'utf8').split('\nname:')[0];
    expect(head.split('\n').every((l) => l.startsWith('#') || l === '')).toBe(true);
    expect(head).toMatch(/\?/);
    expect(head).toMatch(/Rates|wall time/);
    // The same text parsed from elsewhere gives the same scenario (trace paths resolve alike).
    const again = parseScenario(readFileSync(join(DIR, file), 'utf8'), file, { base_dir: DIR });
    expect(again).toEqual(s);
  });

  it.each(FILES)('%s runs scaled down (durations ÷ 1000, at most 1 GiB)', (file) => {
    const { s } = scaledDown(loadScenario(join(DIR, file)));
    const r = runScenario(s);
    const total = s.phases.reduce((t, p) => t + p.duration, 0);
    expect(r.end_ns).toBeGreaterThanOrEqual(total);
    expect(r.phases.map((p) => p.name)).toEqual(s.phases.map((p) => p.name));
    expect(r.events).toHaveLength(s.events.length);
    // Events may fail as the kernel would (ENOMEM, a short pool), but only with an errno.
    for (const e of r.events)
      if (!e.ok && e.action !== 'nr_hugepages') expect(e.errno, e.what).not.toBeNull();
    expect(r.samples.t_ns.length).toBeGreaterThan(1);
    expect(r.comparison?.results.map((c) => c.name)).toEqual(s.compare?.policies);
  });
});
