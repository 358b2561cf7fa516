import { describe, expect, it } from 'vitest';
import { fragmentLikeAServer } from '../../src/contig/compare.ts';
import { Machine } from '../../src/sim/machine.ts';
import {
  createWorkload,
  runWorkloads,
  WORKLOAD_FACTORIES,
  WorkloadParamError,
  type WorkloadPhase,
} from '../../src/workload/models.ts';
import { parseScenario, WORKLOAD_MODELS } from '../../src/workload/scenario.ts';

const boot = (seed = 1) => Machine.boot({ memory: '512M', cpus: 2, seed });

/** A /proc/meminfo field, kB. */
const meminfo = (m: Machine, key: string): number =>
  Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(m.readFile('/proc/meminfo'))?.[1]);

/** The free order-3+ blocks in /proc/buddyinfo, summed over zones. */
const freeOrder3Up = (m: Machine): number =>
  m
    .readFile('/proc/buddyinfo')
    .trim()
    .split('\n')
    .reduce(
      (n, line) =>
        n +
        line
          .trim()
          .split(/\s+/)
          .slice(4 + 3)
          .map(Number)
          .reduce((a, b) => a + b, 0),
      0,
    );

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WorkloadParamError);
    return (e as Error).message;
  }
  throw new Error('did not throw');
};

describe('workload models: registry and params', () => {
  it('registers every implemented model with the scenario format', () => {
    for (const name of Object.keys(WORKLOAD_FACTORIES)) expect(WORKLOAD_MODELS).toContain(name);
  });

  it('names the bad param, one message each', () => {
    const m = boot();
    expect(message(() => createWorkload(m, 'anon-churn', { rss: '3X' }))).toMatch(
      /^params\.rss: '3X' is not a size/,
    );
    expect(message(() => createWorkload(m, 'anon-churn', { lifetime: 'forever' }))).toMatch(
      /^params\.lifetime: 'forever' is not a duration/,
    );
    expect(message(() => createWorkload(m, 'anon-churn', { processes: 0 }))).toBe(
      'params.processes: 0 is not a whole number ≥ 1',
    );
    expect(message(() => createWorkload(m, 'page-cache', { read_mb_s: 'fast' }))).toMatch(
      /^params\.read_mb_s: 'fast' is not a number/,
    );
    expect(message(() => createWorkload(m, 'page-cache', { workingset: '1G' }))).toMatch(
      /^params\.workingset: unknown parameter of page-cache \(known: working_set,/,
    );
    expect(message(() => createWorkload(m, 'net-buffers', { order: 11 }))).toMatch(/^params\.order: 11/);
    expect(message(() => createWorkload(m, 'stress-highalloc', { gfp: 'GFP_ATOMIC' }))).toMatch(
      /^params\.gfp: 'GFP_ATOMIC' is not one of GFP_KERNEL/,
    );
    expect(() => createWorkload(m, 'no-such-model')).toThrow(/'no-such-model' is not implemented/);
    expect(message(() => createWorkload(m, 'trace-replay'))).toBe(
      'params.file: is required (the trace file to replay)',
    );
  });

  it('runWorkloads says which phase and workload the bad param is in', () => {
    const m = boot();
    expect(() =>
      runWorkloads(m, [
        {
          name: 'a',
          duration: 1e9,
          workloads: [{ model: 'slab-churn' }, { model: 'anon-churn', params: { rss: 'x' } }],
        },
      ]),
    ).toThrow(/^phases\[0\]\.workloads\[1\]\.params\.rss: 'x' is not a size/);
  });
});

describe('workload models: from a scenario file', () => {
  it('runs the phases parseScenario() returns', () => {
    const s = parseScenario(
      `name: t
seed: 5
machine: { memory: 512M, cpus: 2 }
phases:
  - name: warm
    duration: 2s
    workloads:
      - model: page-cache
        params: { working_set: 8M, read_mb_s: 8 }
      - model: anon-churn
        params: { processes: 2, rss: 8M }
  - name: test
    duration: 1s
    workloads:
      - model: stress-highalloc
        params: { attempts: 5, fill: 0.2 }
`,
      'x.yaml',
    );
    const m = Machine.boot(s.machine);
    const r = runWorkloads(m, s.phases);
    expect(r.map((p) => p.name)).toEqual(['warm', 'test']);
    expect(r[0].workloads[1].report.spawned).toBe(2);
    expect(r[1].workloads[0].report.attempts).toBe(5);
    m.checkInvariants();
  });

  it('a bad param in a later workload leaves no process of the earlier ones behind', () => {
    const m = boot();
    expect(() =>
      runWorkloads(m, [
        {
          name: 'a',
          duration: 1e9,
          workloads: [
            { model: 'longterm-pin', params: { regions: 1, region_size: '1M' } },
            { model: 'net-buffers', params: { ring: 0 } },
          ],
        },
      ]),
    ).toThrow(/^phases\[0\]\.workloads\[1\]\.params\.ring: 0 is not a whole number ≥ 1/);
    // longterm-pin had started pid 1 and pinned 1M before net-buffers refused its params.
    expect(m.process(1)).toBeUndefined();
    expect(meminfo(m, 'AnonPages')).toBeLessThan(256);
  });
});

describe('workload models: each moves the machine the expected way', () => {
  it('anon-churn: a churn rate below one piece per slice still churns, carried over', () => {
    const m = boot();
    // 16 MiB is 256 pieces of 64 KiB; 0.1 %/s of it is a piece every ~4 s.
    const w = createWorkload(m, 'anon-churn', {
      processes: 1,
      rss: '16M',
      rss_sigma: 0,
      lifetime: '1h',
      churn: 0.001,
    });
    const t0 = m.now;
    for (let s = 1; s <= 40; s++) {
      w.step(t0 + s * 1e9);
      if (m.now < t0 + s * 1e9) m.advance(t0 + s * 1e9 - m.now);
    }
    // 40 s × 0.256 pieces/s: 10 pieces (with the fraction dropped each second: none).
    expect(w.report().churned_bytes).toBe(10 * 65536);
    w.stop();
  });

  it('anon-churn raises AnonPages while it runs and gives it back at stop()', () => {
    const m = boot();
    const before = meminfo(m, 'AnonPages');
    const w = createWorkload(m, 'anon-churn', { processes: 3, rss: '32M', lifetime: '2s' });
    for (let t = 1; t <= 3; t++) {
      w.step(t * 1e9);
      if (m.now < t * 1e9) m.advance(t * 1e9 - m.now);
    }
    expect(meminfo(m, 'AnonPages') - before).toBeGreaterThan(3 * 8 * 1024);
    expect(w.report().spawned).toBeGreaterThanOrEqual(3);
    w.stop();
    expect(meminfo(m, 'AnonPages') - before).toBeLessThan(1024);
    m.checkInvariants();
  });

  it('page-cache raises Cached with the working set and the stream', () => {
    const m = boot();
    const before = meminfo(m, 'Cached');
    runWorkloads(m, [
      {
        name: 'read',
        duration: 3e9,
        workloads: [{ model: 'page-cache', params: { working_set: '16M', read_mb_s: 20 } }],
      },
    ]);
    expect(meminfo(m, 'Cached') - before).toBeGreaterThan(16 * 1024);
    m.checkInvariants();
  });

  it('net-buffers takes order-3 blocks and gives them back when stopped', () => {
    const m = boot();
    m.kernel.drain_all_pages();
    const before = freeOrder3Up(m);
    const w = createWorkload(m, 'net-buffers', { ring: 128, packets_per_s: 1000, hold: 0.2 });
    w.step(1e9);
    m.advance(1e9);
    const r = w.report();
    expect(r.queues).toBe(2);
    expect(r.packets).toBe(2000);
    expect(r.inflight_pages).toBeGreaterThanOrEqual(2 * 128 * 8);
    m.kernel.drain_all_pages();
    expect(freeOrder3Up(m)).toBeLessThan(before);
    w.stop();
    m.checkInvariants();
  });

  it('slab-churn allocates dentries and inodes (SReclaimable)', () => {
    const m = boot();
    const before = meminfo(m, 'SReclaimable');
    const w = createWorkload(m, 'slab-churn', { files_per_s: 5000, lifetime: '1h', keep: 1 });
    w.step(2e9);
    expect(meminfo(m, 'SReclaimable') - before).toBeGreaterThan(1024);
    w.stop();
    m.checkInvariants();
  });

  it('longterm-pin pins pages (nr_foll_pin_acquired) and re-registers', () => {
    const m = boot();
    const w = createWorkload(m, 'longterm-pin', { regions: 2, region_size: '2M', reregister: '1s' });
    w.step(3e9);
    const r = w.report();
    expect(r.registered).toBe(5);
    expect(r.released).toBe(3);
    expect(r.pinned_pages).toBe(2 * 512);
    w.stop();
    m.checkInvariants();
  });

  it('fork-server forks children that copy page tables and break COW', () => {
    const m = boot();
    const before = meminfo(m, 'PageTables');
    const w = createWorkload(m, 'fork-server', { rss: '32M', forks_per_s: 4, lifetime: '10s', cow: 0.25 });
    // A second from now: faulting in the parent's memory took time of its own.
    w.step(m.now + 1e9);
    const r = w.report();
    expect(r.forked).toBe(4);
    expect(r.children).toBe(4);
    expect(r.cow_bytes).toBe(4 * 8 * 2 ** 20);
    expect(meminfo(m, 'PageTables')).toBeGreaterThan(before);
    expect(meminfo(m, 'AnonPages')).toBeGreaterThan(32 * 1024 + 4 * 8 * 1024 - 1024);
    w.stop();
    m.checkInvariants();
  });

  it('page-tables: a page-table page for each sparse touch', () => {
    const m = boot();
    const before = meminfo(m, 'PageTables');
    const w = createWorkload(m, 'page-tables', { vsize: '4G', stride: '2M' });
    expect(w.report().touched_pages).toBe(2048);
    // 2048 PTE pages (8 MiB) plus the PMD pages above them.
    expect(meminfo(m, 'PageTables') - before).toBeGreaterThanOrEqual(2048 * 4);
    expect(meminfo(m, 'PageTables') - before).toBeLessThan(2048 * 4 + 64);
    w.stop();
    expect(meminfo(m, 'PageTables')).toBe(before);
    m.checkInvariants();
  });

  it('stress-highalloc: a success rate in [0, 1], lower on a fragmented machine', () => {
    const rate = (fragment: boolean): number => {
      const m = boot();
      if (fragment) fragmentLikeAServer(m);
      const w = createWorkload(m, 'stress-highalloc', { attempts: 60, interval: '10ms', fill: 0.5 });
      w.step(m.now + 1e9);
      const r = w.report();
      expect(r.attempts).toBe(60);
      w.stop();
      m.checkInvariants();
      return r.success_rate;
    };
    const fresh = rate(false);
    const fragmented = rate(true);
    expect(fresh).toBeGreaterThan(0.9);
    expect(fresh).toBeLessThanOrEqual(1);
    expect(fragmented).toBeGreaterThanOrEqual(0);
    expect(fragmented).toBeLessThan(fresh);
  });
});

describe('workload models: determinism and machine state', () => {
  const phases: WorkloadPhase[] = [
    {
      name: 'mixed',
      duration: 3e9,
      workloads: [
        { model: 'anon-churn', params: { processes: 2, rss: '16M', lifetime: '1s' } },
        { model: 'page-cache', params: { working_set: '8M', read_mb_s: 10 } },
        { model: 'net-buffers', params: { ring: 64, packets_per_s: 500 } },
        { model: 'slab-churn', params: { files_per_s: 200 } },
        { model: 'longterm-pin', params: { regions: 1, region_size: '1M', reregister: '1s' } },
        { model: 'fork-server', params: { rss: '8M', forks_per_s: 2, lifetime: '1s' } },
        { model: 'page-tables', params: { vsize: '1G', stride: '4M' } },
      ],
    },
    {
      name: 'highalloc',
      duration: 1e9,
      workloads: [{ model: 'stress-highalloc', params: { attempts: 20, interval: '20ms' } }],
    },
  ];

  const run = (seed: number) => {
    const m = boot(seed);
    const results = runWorkloads(m, phases);
    return { m, results, buddyinfo: m.readFile('/proc/buddyinfo'), vmstat: m.readFile('/proc/vmstat') };
  };

  it('same seed, byte-identical /proc/buddyinfo and /proc/vmstat and reports', () => {
    const a = run(7);
    const b = run(7);
    expect(b.buddyinfo).toBe(a.buddyinfo);
    expect(b.vmstat).toBe(a.vmstat);
    expect(JSON.stringify(b.results)).toBe(JSON.stringify(a.results));
    expect(a.results.map((r) => r.name)).toEqual(['mixed', 'highalloc']);
    expect(a.results[0].end_ns).toBeGreaterThanOrEqual(3e9);
  });

  it('leaves a machine that clones and keeps its invariants', () => {
    const { m } = run(3);
    m.checkInvariants();
    const copy = m.clone();
    expect(copy.readFile('/proc/buddyinfo')).toBe(m.readFile('/proc/buddyinfo'));
    // The models can run again on the copy.
    runWorkloads(copy, [phases[0]]);
    copy.checkInvariants();
  });

  it('a machine still clones in the middle of a phase (no closures in its state)', () => {
    const m = boot();
    const ws = phases[0].workloads.map((w) => createWorkload(m, w.model, w.params));
    for (const w of ws) w.step(1e9);
    m.advance(Math.max(0, 1e9 - m.now));
    const copy = m.clone();
    copy.checkInvariants();
    for (const w of ws) w.stop();
    m.checkInvariants();
  });
});
