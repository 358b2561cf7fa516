/**
 * The scenario runner: events, samples and the comparison happen at their simulated times, in
 * the documented order, before the workloads of an ending phase stop; failures of events are
 * results, not crashes; the same scenario gives byte-identical results.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/workload/models.ts';
import { type RunResult, runScenario, scenarioUntil } from '../../src/workload/run.ts';
import { parseScenario, type Scenario } from '../../src/workload/scenario.ts';

const MIN = 60e9;

const text = `
name: runner-test
seed: 5
machine: { memory: 256M, cpus: 2, map_contig: rfc }
phases:
  - name: fill
    duration: 2min
    workloads:
      - model: anon-churn
        params: { rss: 48M, rss_sigma: 0, processes: 2, lifetime: 1h, churn: 0.01 }
  - name: cache
    duration: 1min
    workloads:
      - model: page-cache
        params: { working_set: 32M, read_mb_s: 10 }
events:
  - { at: 0, action: spawn, name: app }
  - { at: 1min, action: nr_hugepages, count: 4 }
  - { at: 2min, action: map_contig, bytes: 4M }
  - { at: 2min, action: open_device, path: /dev/nonexistent, uid: 1000 }
  - { at: 150s, action: write, path: /proc/sys/vm/min_free_kbytes, value: lots }
  - { at: 3min, action: exit, name: app }
sample:
  every: 30s
  counters: [nr_free_pages, nr_anon_pages]
  metrics: [largest_free_block, mixed_pageblocks]
  files: [/proc/buddyinfo, /proc/meminfo]
compare:
  at: 2min
  request: { bytes: 8M }
  policies: [rfc, best-effort]
`;

let s: Scenario;
let r: RunResult;
let ends = 0;
let freeAtEnd = 0;

beforeAll(() => {
  s = parseScenario(text, 'runner-test.yaml');
  r = runScenario(s, {
    atEnd: (m) => {
      ends++;
      freeAtEnd = Number(/MemFree:\s+(\d+)/.exec(m.readFile('/proc/meminfo'))?.[1]);
    },
  });
}, 60_000);

describe('runScenario', () => {
  it('covers the phases from time 0 and reports each', () => {
    expect(r.end_ns).toBe(3 * MIN);
    // A phase ends on schedule; its workloads stop once the events of that instant are done.
    expect(r.phases.map((p) => p.name)).toEqual(['fill', 'cache']);
    expect(r.phases[0].start_ns).toBe(0);
    expect(r.phases[0].end_ns - 2 * MIN).toBeLessThan(10e6);
    expect(r.phases[1].start_ns).toBe(r.phases[0].end_ns);
    expect(r.phases[1].end_ns).toBe(3 * MIN);
    expect(r.phases[0].workloads[0].report.spawned).toBeGreaterThanOrEqual(2);
  });

  it('fires every event at its time, in file order, and records failures as results', () => {
    expect(r.events.map((e) => [e.action, e.ok, e.errno])).toEqual([
      ['spawn', true, null],
      ['nr_hugepages', true, null],
      ['map_contig', true, null],
      ['open_device', false, 'ENOENT'],
      ['write', false, 'EINVAL'],
      ['exit', true, null],
    ]);
    expect(r.events[0].at_ns).toBe(0);
    expect(r.events[1].at_ns).toBe(MIN);
    expect(r.events[1].detail).toBe('4 of 4 pages');
    expect(r.events[2].at_ns).toBe(2 * MIN);
    // The request meets the first phase's 96 MiB of anonymous memory still in place.
    expect(r.events[2].segments).toBe(1);
    expect(r.events[2].cost?.latency_ns).toBeGreaterThan(0);
    expect(r.events[4].at_ns).toBe(150e9);
  });

  it('samples at 0, every `every` and at the end, after the events of that instant', () => {
    // At their times, or as soon after as the syscall before them (1 ms of migration) lets.
    const expected = [0, 30e9, 60e9, 90e9, 120e9, 150e9, 180e9];
    expect(r.samples.t_ns).toHaveLength(expected.length);
    r.samples.t_ns.forEach((t, i) => {
      expect(t - expected[i]).toBeGreaterThanOrEqual(0);
      expect(t - expected[i]).toBeLessThan(10e6);
    });
    for (const series of [
      r.samples.unusable_index,
      r.samples.fragmentation_index,
      r.samples.metrics.largest_free_block,
      r.samples.metrics.mixed_pageblocks,
      r.samples.counters.nr_free_pages,
      r.samples.files['/proc/buddyinfo'],
    ])
      expect(series).toHaveLength(7);
    expect(r.samples.free_by_order[0]).toHaveLength(11);
    expect(r.samples.blocks_by_occupant[0]).toHaveLength(4);
    // The huge pages reserved at 1 min are in the 1 min sample: events come first.
    const hugepages = r.samples.files['/proc/meminfo'].map((t) =>
      Number(/HugePages_Total:\s+(\d+)/.exec(t)?.[1]),
    );
    expect(hugepages.slice(0, 3)).toEqual([0, 0, 4]);
    // Anonymous memory of the first phase is in place at its end (2 min) and gone after.
    expect(r.samples.counters.nr_anon_pages[4]).toBeGreaterThan(12_000);
    expect(r.samples.counters.nr_anon_pages[5]).toBeLessThan(r.samples.counters.nr_anon_pages[4] / 4);
  });

  it('compares on clones at compare.at, leaving the run alone', () => {
    expect((r.comparison?.at_ns ?? 0) - 2 * MIN).toBeGreaterThanOrEqual(0);
    expect((r.comparison?.at_ns ?? 0) - 2 * MIN).toBeLessThan(10e6);
    expect(r.comparison?.results.map((c) => c.name)).toEqual(['rfc', 'best-effort']);
    expect(r.comparison?.results.every((c) => c.ok)).toBe(true);
    expect(r.comparison?.baseline).not.toBeNull();
    // The clones' requests are not in the run's counters: nothing was pinned for them here.
    expect(r.events.filter((e) => e.action === 'map_contig')).toHaveLength(1);
  });

  it('calls atEnd once, at the end, and keeps the final files', () => {
    expect(ends).toBe(1);
    expect(freeAtEnd).toBeGreaterThan(0);
    expect(r.final['/proc/buddyinfo']).toMatch(/^Node 0, zone/);
    expect(r.final['/proc/pagetypeinfo']).toMatch(/^Page block order: 9/);
  });

  it('records fragmentation events in plot-fragmentation form', () => {
    expect(r.fragmentation.metadata.duration).toBeCloseTo(180, 0);
    expect(r.fragmentation.events.length).toBe(r.fragmentation.metadata.total_events);
  });

  it('gives byte-identical results for the same scenario and seed', () => {
    expect(JSON.stringify(runScenario(s))).toBe(JSON.stringify(r));
  }, 60_000);
});

describe('scenarioUntil', () => {
  it('cuts the phases, events and comparison at the given time', () => {
    const cut = scenarioUntil(s, 90e9);
    expect(cut.phases.map((p) => [p.name, p.duration])).toEqual([['fill', 90e9]]);
    expect(cut.events.map((e) => e.action)).toEqual(['spawn', 'nr_hugepages']);
    expect(cut.compare).toBeUndefined();
    expect(scenarioUntil(s, 150e9).phases.map((p) => p.duration)).toEqual([120e9, 30e9]);
    expect(scenarioUntil(s, 120e9).compare?.at).toBe(120e9);
  });

  it('refuses a time outside the scenario', () => {
    expect(() => scenarioUntil(s, 0)).toThrow(/not within the scenario's 180s/);
    expect(() => scenarioUntil(s, 4 * MIN)).toThrow(/not within/);
  });
});
