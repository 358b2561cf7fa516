/**
 * The trace-replay workload model: the captured strace and kmem fixtures (and a JSONL trace)
 * replayed slice by slice, the same as a one-shot replay; determinism; interleaving with another
 * model and looping; release at stop(); and bad params or a missing file reported once, against
 * the scenario's line.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import { parseJsonlTrace, replayJsonlTrace } from '../../src/workload/jsonl_trace.ts';
import { parseKmemTrace, replayKmemTrace } from '../../src/workload/kmem_trace.ts';
import {
  createWorkload,
  detectTraceFormat,
  runWorkloads,
  WorkloadParamError,
  type WorkloadPhase,
} from '../../src/workload/models.ts';
import { parseScenario, ScenarioError } from '../../src/workload/scenario.ts';
import { parseStrace } from '../../src/workload/strace.ts';
import { violations } from '../helpers.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const fx = (name: string) => join(FIXTURES, name);
const text = (name: string) => readFileSync(fx(name), 'utf8');

const STRACE = ['strace/ls.log', 'strace/sh-fork.log', 'strace/python-thread.log'];
const KMEM = [
  'kmem-trace/dd-64x64k.trace',
  'kmem-trace/python-mmap-8m.trace',
  'kmem-trace/tar-gzip-pipes.trace',
];

const boot = (seed = 1) => Machine.boot({ memory: '512M', cpus: 2, seed });
const memFree = (m: Machine) => Number(/^MemFree:\s+(\d+)/m.exec(m.readFile('/proc/meminfo'))?.[1]);

/** A JSONL trace: a process maps, touches and unmaps 1 MiB, and the kernel keeps 4 blocks. */
const A = 0x7f0000000000;
const JSONL = [
  {
    t: 0,
    pid: 7,
    op: 'mmap',
    len: 1 << 20,
    prot: 'PROT_READ|PROT_WRITE',
    flags: 'MAP_PRIVATE|MAP_ANONYMOUS',
    ret: A,
  },
  { t: '100ms', pid: 7, op: 'touch', addr: A, len: 1 << 20, write: true },
  ...[0, 1, 2, 3].map((i) => ({
    t: `${200 + i}ms`,
    pid: 0,
    op: 'alloc_pages',
    order: 2,
    gfp: 'GFP_KERNEL',
    pfn: 16 * i,
  })),
  { t: '1.5s', pid: 0, op: 'free_pages', order: 2, pfn: 0 },
  { t: '2s', pid: 7, op: 'munmap', addr: A, len: 1 << 19 },
]
  .map((o) => JSON.stringify(o))
  .join('\n');

function jsonlFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trace-replay-'));
  writeFileSync(join(dir, 'app.jsonl'), `# a test trace\n${JSONL}\n`);
  return join(dir, 'app.jsonl');
}

const message = (fn: () => unknown, type: new (...a: never[]) => Error): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return (e as Error).message;
  }
  throw new Error('did not throw');
};

describe('trace-replay: formats', () => {
  it('tells each fixture format from its content', () => {
    for (const f of STRACE) expect(detectTraceFormat(text(f)), f).toBe('strace');
    for (const f of KMEM) expect(detectTraceFormat(text(f)), f).toBe('kmem');
    expect(detectTraceFormat(`// c\n\n${JSONL}`)).toBe('jsonl');
    expect(detectTraceFormat('version = 6\ncpus=2\n')).toBe('kmem');
    expect(detectTraceFormat('hello world\n')).toBeUndefined();
    expect(detectTraceFormat('')).toBeUndefined();
  });

  it('replays every strace and kmem fixture to its end and releases everything at stop()', () => {
    for (const f of [...STRACE, ...KMEM]) {
      const m = boot();
      const free0 = memFree(m);
      const w = createWorkload(m, 'trace-replay', { file: fx(f) });
      const events = f.startsWith('strace')
        ? parseStrace(text(f)).events.length
        : parseKmemTrace(text(f)).events.length;
      // Traces span under a minute: a minute of one-second slices replays them whole.
      for (let s = 1; s <= 60; s++) {
        w.step(m.now + 1e9);
        // Between steps no closure may stay in the machine.
        if (s === 1) expect(() => m.clone(), f).not.toThrow();
      }
      const r = w.report();
      expect(r.events, f).toBe(events);
      expect(r.passes, f).toBe(1);
      w.stop();
      expect(w.report().live_blocks, f).toBe(0);
      expect(violations(m), f).toEqual([]);
      // What the replay held is back: only the per-cpu lists it filled keep some (< 2% of RAM).
      expect(memFree(m), f).toBeGreaterThan(free0 - 10240);
    }
  });
});

describe('trace-replay: incremental replay', () => {
  it('replays only the events whose trace time falls in the slice', () => {
    const f = KMEM[0];
    const trace = parseKmemTrace(text(f)).events;
    const t0 = trace[0].ts_ns;
    const span = trace.at(-1)!.ts_ns - t0;
    const m = boot();
    // Slowed down to ten seconds of simulated time, with a 2 s delay.
    const speed = span / 10e9;
    const w = createWorkload(m, 'trace-replay', { file: fx(f), speed, delay: '2s' });
    const start = m.now;
    w.step(start + 1e9);
    expect(w.report().events).toBe(0);
    for (const s of [3, 5, 8, 12]) {
      const until = start + s * 1e9;
      w.step(until);
      const due = trace.filter((e) => start + 2e9 + Math.round((e.ts_ns - t0) / speed) <= until).length;
      expect(w.report().events, `${s} s`).toBe(due);
      // The clock follows the events; only the last call's own cost may pass the slice's end.
      expect(m.now).toBeLessThanOrEqual(until + 1e6);
    }
    expect(w.report().events).toBe(trace.length);
    w.stop();
  });

  it('leaves the machine as a one-shot replay does (kmem and JSONL)', () => {
    const kmem = parseKmemTrace(text(KMEM[2])).events;
    const a = boot();
    const b = boot();
    const w = createWorkload(a, 'trace-replay', { file: fx(KMEM[2]) });
    const end = a.now + (kmem.at(-1)!.ts_ns - kmem[0].ts_ns);
    for (let t = a.now; t < end; ) {
      t = Math.min(end, t + 2e8);
      w.step(t);
    }
    const one = replayKmemTrace(b, kmem);
    expect(a.readFile('/proc/buddyinfo')).toBe(b.readFile('/proc/buddyinfo'));
    expect(a.readFile('/proc/vmstat')).toBe(b.readFile('/proc/vmstat'));
    expect(w.report()).toMatchObject({
      replayed_allocs: one.replayed_allocs,
      replayed_frees: one.replayed_frees,
      live_blocks: one.live_blocks,
    });

    const file = jsonlFile();
    const c = boot();
    const d = boot();
    const j = createWorkload(c, 'trace-replay', { file });
    const c0 = c.now;
    for (let i = 1; i <= 5; i++) j.step(c0 + i * 5e8);
    replayJsonlTrace(d, parseJsonlTrace(JSONL).events);
    expect(c.readFile('/proc/buddyinfo')).toBe(d.readFile('/proc/buddyinfo'));
    expect(j.report()).toMatchObject({ events: 8, calls_ok: 8, live_blocks: 3, spawned: 1 });
    const anon = (m: Machine) => Number(/^AnonPages:\s+(\d+)/m.exec(m.readFile('/proc/meminfo'))?.[1]);
    const before = anon(c);
    j.stop();
    // The process exits (its 512 KiB still mapped go) and the three order-2 blocks are freed.
    expect(before - anon(c)).toBe(512);
    expect(j.report().live_blocks).toBe(0);
    expect(violations(c)).toEqual([]);
  });
});

describe('trace-replay: with other models', () => {
  const phases = (file: string): WorkloadPhase[] => [
    {
      name: 'mixed',
      duration: 20e9,
      workloads: [
        { model: 'anon-churn', params: { processes: 2, rss: '16M', lifetime: '5s', churn: 0.1 } },
        { model: 'trace-replay', params: { file, loop: true, every: '3s' } },
        { model: 'trace-replay', params: { file: fx('strace/sh-fork.log'), speed: 0.5, loop: true } },
      ],
    },
  ];

  it('interleaves with another model, loops, and the same seed gives the same result', () => {
    const run = (seed: number) => {
      const m = boot(seed);
      const r = runWorkloads(m, phases(fx(KMEM[0])));
      return { r, buddy: m.readFile('/proc/buddyinfo'), vmstat: m.readFile('/proc/vmstat'), m };
    };
    const x = run(3);
    const y = run(3);
    expect(y.r).toEqual(x.r);
    expect(y.buddy).toBe(x.buddy);
    expect(y.vmstat).toBe(x.vmstat);
    const [anon, kmem, strace] = x.r[0].workloads.map((w) => w.report);
    expect(anon.spawned).toBeGreaterThan(2);
    // A 3 s period over 20 s: passes start at 0, 3, …, 18.
    expect(kmem.passes).toBe(7);
    expect(kmem.replayed_allocs).toBeGreaterThan(6 * 400);
    expect(strace.passes).toBeGreaterThan(1);
    expect(strace.forked).toBeGreaterThan(0);
    expect(violations(x.m)).toEqual([]);
    const z = run(4);
    expect(z.buddy).not.toBe(x.buddy);
  });
});

describe('trace-replay: bad params', () => {
  it('names the bad param, one message each', () => {
    const m = boot();
    expect(message(() => createWorkload(m, 'trace-replay', {}), WorkloadParamError)).toBe(
      'params.file: is required (the trace file to replay)',
    );
    expect(
      message(
        () => createWorkload(m, 'trace-replay', { file: fx(KMEM[0]), format: 'pcap' }),
        WorkloadParamError,
      ),
    ).toBe("params.format: 'pcap' is not one of auto, jsonl, strace, kmem");
    expect(
      message(() => createWorkload(m, 'trace-replay', { file: fx(KMEM[0]), speed: 0 }), WorkloadParamError),
    ).toMatch(/^params\.speed: 0 is not a number in/);
    expect(
      message(
        () => createWorkload(m, 'trace-replay', { file: fx(KMEM[0]), every: '1s' }),
        WorkloadParamError,
      ),
    ).toBe('params.every: only applies with loop: true');
    expect(
      message(() => createWorkload(m, 'trace-replay', { file: '/nonexistent/x.log' }), WorkloadParamError),
    ).toBe("params.file: cannot read '/nonexistent/x.log': ENOENT");
    // Read as the wrong format: the parser's own message, naming the trace line.
    expect(
      message(
        () => createWorkload(m, 'trace-replay', { file: fx(STRACE[0]), format: 'kmem' }),
        WorkloadParamError,
      ),
    ).toMatch(/^params\.file: .*ls\.log:1: not a trace event line/);
  });

  const scenario = (params: string) => `name: t
machine:
  memory: 256M
phases:
  - name: p
    duration: 10s
    workloads:
      - model: trace-replay
        params: ${params}
`;

  it('resolves a relative file against the scenario directory', () => {
    const s = parseScenario(
      scenario('{ file: ../fixtures/strace/ls.log }'),
      join(FIXTURES, '..', 'workload', 'x.yaml'),
    );
    expect(s.phases[0].workloads[0].params.file).toBe(fx('strace/ls.log'));
    const t = parseScenario(scenario('{ file: strace/ls.log, format: strace }'), 'elsewhere.yaml', {
      base_dir: FIXTURES,
    });
    expect(t.phases[0].workloads[0].params.file).toBe(fx('strace/ls.log'));
  });

  it('reports a missing file or a bad trace at the line of `file`, once', () => {
    const e = message(
      () =>
        parseScenario(scenario('{ speed: 2, file: nothere.log }'), 'scenarios/x.yaml', {
          base_dir: FIXTURES,
        }),
      ScenarioError,
    );
    expect(e).toBe(
      `scenarios/x.yaml:9:35: phases[0].workloads[0].params.file: 'nothere.log' cannot be read (ENOENT); relative paths are from the scenario's directory: ${fx('nothere.log')}`,
    );
    const bad = message(
      () =>
        parseScenario(scenario('{ file: strace/ls.log, format: jsonl }'), 'x.yaml', { base_dir: FIXTURES }),
      ScenarioError,
    );
    expect(bad).toMatch(/^x\.yaml:9:25: phases\[0\]\.workloads\[0\]\.params\.file: .*ls\.log:1: not JSON/);
    expect(message(() => parseScenario(scenario('{ file: 7 }'), 'x.yaml'), ScenarioError)).toBe(
      'x.yaml:9:25: phases[0].workloads[0].params.file: 7 is not a file path',
    );
    expect(
      message(
        () => parseScenario(scenario('{ file: strace, loop: yes }'), 'x.yaml', { base_dir: FIXTURES }),
        ScenarioError,
      ),
    ).toMatch(/^x\.yaml:9:25: phases\[0\]\.workloads\[0\]\.params\.file: 'strace' is not a file/);
    expect(
      message(
        () => parseScenario(scenario('{ file: strace/ls.log, lop: true }'), 'x.yaml', { base_dir: FIXTURES }),
        ScenarioError,
      ),
    ).toMatch(/^x\.yaml:9:40: phases\[0\]\.workloads\[0\]\.params\.lop: unknown parameter of trace-replay/);
  });
});
