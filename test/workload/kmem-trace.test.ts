/**
 * kmem tracepoint traces (mm_page_alloc, mm_page_free, mm_page_free_batched,
 * mm_page_alloc_extfrag): parsing tracefs and trace-cmd report text, one error per bad line, and
 * replay on the model with frees matched to allocations by pfn.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  __GFP_COMP,
  __GFP_DIRECT_RECLAIM,
  __GFP_KSWAPD_RECLAIM,
  __GFP_NOWARN,
  __GFP_ZERO,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_KERNEL_ACCOUNT,
  GFP_NOWAIT,
} from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import {
  compareExtfrag,
  KmemTraceError,
  type KmemTraceEvent,
  parse_trace_gfp,
  parseKmemTrace,
  replayKmemTrace,
} from '../../src/workload/kmem_trace.ts';
import { cleanMachine, violations } from '../helpers.ts';

const FIXTURES = new URL('../fixtures/kmem-trace/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

/** A tracefs line: comm-pid [cpu] flags ts: event: body. */
const tl = (cpu: number, ts: string, event: string, body: string) =>
  `           bash-4242    [${String(cpu).padStart(3, '0')}] ..... ${ts}: ${event}: ${body}`;
const alloc = (cpu: number, ts: string, pfn: number, order: number, gfp = 'GFP_KERNEL', mt = 0) =>
  tl(
    cpu,
    ts,
    'mm_page_alloc',
    `page=00000000deadbeef pfn=0x${pfn.toString(16)} order=${order} migratetype=${mt} gfp_flags=${gfp}`,
  );
const free = (cpu: number, ts: string, pfn: number, order: number) =>
  tl(cpu, ts, 'mm_page_free', `page=00000000deadbeef pfn=0x${pfn.toString(16)} order=${order}`);
const batched = (cpu: number, ts: string, pfn: number) =>
  tl(cpu, ts, 'mm_page_free_batched', `page=00000000deadbeef pfn=0x${pfn.toString(16)} order=0`);
const extfrag = (ts: string, order: number, fb: number, amt: number, fmt: number, own: number) =>
  tl(
    0,
    ts,
    'mm_page_alloc_extfrag',
    `page=00000000deadbeef pfn=0x1200 alloc_order=${order} fallback_order=${fb} pageblock_order=9 alloc_migratetype=${amt} fallback_migratetype=${fmt} fragmenting=${fb < 9 ? 1 : 0} change_ownership=${own}`,
  );

describe('parseKmemTrace: captured traces', () => {
  it.each([
    ['dd-64x64k.trace', 984, 429, 321, 234],
    ['python-mmap-8m.trace', 2035, 911, 585, 539],
    ['tar-gzip-pipes.trace', 1725, 1499, 186, 40],
  ])('%s', (name, total, allocs, frees, batch) => {
    const t = parseKmemTrace(fixture(name), { source: name });
    const by = (k: KmemTraceEvent['kind']) => t.events.filter((e) => e.kind === k).length;
    expect([t.events.length, by('mm_page_alloc'), by('mm_page_free'), by('mm_page_free_batched')]).toEqual([
      total,
      allocs,
      frees,
      batch,
    ]);
    expect(t.skipped).toEqual({});
    // The ring buffer merges the CPUs in time order.
    for (let i = 1; i < t.events.length; i++)
      expect(t.events[i].ts_ns).toBeGreaterThanOrEqual(t.events[i - 1].ts_ns);
  });

  it('reads every field of the first line of dd-64x64k.trace', () => {
    const t = parseKmemTrace(fixture('dd-64x64k.trace'));
    expect(t.events[0]).toEqual({
      line: 13,
      kind: 'mm_page_alloc',
      comm: 'kcap.sh',
      pid: 14361,
      cpu: 0,
      ts_ns: 35340277137000,
      pfn: 0x200f7d,
      order: 0,
      migratetype: 1,
      gfp: GFP_HIGHUSER_MOVABLE | __GFP_ZERO | __GFP_COMP,
      gfp_text: 'GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
    });
  });

  it('reads the order-1 and order-2 allocations of tar-gzip-pipes.trace', () => {
    const t = parseKmemTrace(fixture('tar-gzip-pipes.trace'));
    const big = t.events.filter((e) => e.kind === 'mm_page_alloc' && e.order > 0);
    expect(
      big.map((e) => [e.kind === 'mm_page_alloc' && e.order, e.kind === 'mm_page_alloc' && e.migratetype]),
    ).toEqual([
      [2, 0],
      [1, 2],
    ]);
  });
});

describe('parseKmemTrace: hand-written lines', () => {
  it('parses mm_page_alloc from tracefs with every field', () => {
    const t = parseKmemTrace(
      '# tracer: nop\n#\n' +
        '  kworker/u8:2-events-117   [001] d..1. 12.000000123: mm_page_alloc: page=ffffea0000048000 pfn=0x1200 order=3 migratetype=0 gfp_flags=GFP_NOWAIT|__GFP_ZERO\n',
    );
    expect(t.events).toEqual([
      {
        line: 3,
        kind: 'mm_page_alloc',
        comm: 'kworker/u8:2-events',
        pid: 117,
        cpu: 1,
        ts_ns: 12_000_000_123,
        pfn: 0x1200,
        order: 3,
        migratetype: 0,
        gfp: GFP_NOWAIT | __GFP_ZERO,
        gfp_text: 'GFP_NOWAIT|__GFP_ZERO',
      },
    ]);
  });

  it('parses the trace-cmd report prefix (no flags column), a tgid column and a comm with spaces', () => {
    const text = [
      'version = 6',
      'cpus=4',
      'CPU 2 is empty',
      '       trace-cmd-5120  [003]  3101.554820: mm_page_free:         page=0x12345 pfn=0x48d1 order=2',
      '   Web Content-777   (  770) [000] .... 5.5: mm_page_free_batched: page=000000001234abcd pfn=0x10 order=0',
      '          <idle>-0     [000] 7: mm_page_alloc: page=0000000000000000 pfn=0x0 order=0 migratetype=1 gfp_flags=none',
    ].join('\r\n');
    const t = parseKmemTrace(text);
    expect(t.events).toEqual([
      {
        line: 4,
        kind: 'mm_page_free',
        comm: 'trace-cmd',
        pid: 5120,
        cpu: 3,
        ts_ns: 3101_554_820_000,
        pfn: 0x48d1,
        order: 2,
      },
      {
        line: 5,
        kind: 'mm_page_free_batched',
        comm: 'Web Content',
        pid: 777,
        cpu: 0,
        ts_ns: 5.5e9,
        pfn: 0x10,
        order: 0,
      },
      {
        line: 6,
        kind: 'mm_page_alloc',
        comm: '<idle>',
        pid: 0,
        cpu: 0,
        ts_ns: 7, // a bare integer timestamp is taken as ns
        pfn: -1, // page=NULL: the allocation failed in the kernel
        order: 0,
        migratetype: 1,
        gfp: 0,
        gfp_text: 'none',
      },
    ]);
  });

  it('parses mm_page_alloc_extfrag', () => {
    const t = parseKmemTrace(`${extfrag('1.000001', 0, 3, 0, 1, 1)}\n`);
    expect(t.events[0]).toMatchObject({
      kind: 'mm_page_alloc_extfrag',
      pfn: 0x1200,
      alloc_order: 0,
      fallback_order: 3,
      pageblock_order: 9,
      alloc_migratetype: 0,
      fallback_migratetype: 1,
      fragmenting: true,
      change_ownership: true,
    });
  });

  it('skips and counts other tracepoints and lost events', () => {
    const t = parseKmemTrace(
      [
        tl(0, '1.0', 'mm_page_alloc_zone_locked', 'page=0 pfn=0x1 order=0 migratetype=1 percpu_refill=1'),
        tl(0, '1.1', 'mm_page_pcpu_drain', 'page=0 pfn=0x1 order=0 migratetype=1'),
        tl(1, '1.2', 'mm_page_alloc_zone_locked', 'page=0 pfn=0x2 order=0 migratetype=1 percpu_refill=1'),
        'CPU:1 [LOST 42 EVENTS]',
        '##### CPU 1 buffer started ####',
        '',
        free(1, '1.3', 0x20, 0),
      ].join('\n'),
    );
    expect(t.skipped).toEqual({ mm_page_alloc_zone_locked: 2, mm_page_pcpu_drain: 1 });
    expect(t.lost_events).toBe(42);
    expect(t.events.map((e) => e.line)).toEqual([7]);
  });

  it('maps show_gfp_flags() strings to the model bits', () => {
    expect(parse_trace_gfp('GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP')).toBe(
      GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_COMP,
    );
    expect(parse_trace_gfp('__GFP_RECLAIM|__GFP_NOWARN')).toBe(
      __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM | __GFP_NOWARN,
    );
    // Flags the model lacks are dropped; a hex remainder keeps the model's bits only.
    expect(parse_trace_gfp('GFP_KERNEL|__GFP_ZEROTAGS|__GFP_NOLOCKDEP|__GFP_NO_OBJ_EXT')).toBe(GFP_KERNEL);
    expect(parse_trace_gfp('GFP_KERNEL|0x80000100')).toBe(GFP_KERNEL | __GFP_ZERO);
    expect(parse_trace_gfp('none')).toBe(0);
  });
});

describe('parseKmemTrace: bad lines', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['not an event line', 'hello world', /^t:2: not a trace event line .*'hello world'/],
    [
      'a missing field',
      tl(0, '1.0', 'mm_page_alloc', 'page=0 pfn=0x1 order=0 migratetype=0'),
      /^t:2: mm_page_alloc: expected gfp_flags=<value> as field 5/,
    ],
    [
      'fields out of order',
      tl(0, '1.0', 'mm_page_free', 'page=0 order=0 pfn=0x1'),
      /^t:2: mm_page_free: expected pfn=<value> as field 2 .*got 'order=0'/,
    ],
    [
      'an empty value',
      tl(0, '1.0', 'mm_page_free', 'page=0 pfn=0x1 order='),
      /^t:2: mm_page_free: expected order=<value> as field 3/,
    ],
    [
      'an extra field',
      tl(0, '1.0', 'mm_page_free', 'page=0 pfn=0x1 order=0 nid=0'),
      /^t:2: mm_page_free: unexpected text after order=: 'nid=0'/,
    ],
    [
      'a decimal pfn',
      tl(0, '1.0', 'mm_page_free', 'page=0 pfn=4096 order=0'),
      /^t:2: pfn=4096 is not a hex pfn/,
    ],
    ['an order above MAX_PAGE_ORDER', alloc(0, '1.0', 0x400, 11), /^t:2: order=11 is out of range \[0, 10\]/],
    [
      'a non-numeric migratetype',
      tl(0, '1.0', 'mm_page_alloc', 'page=0 pfn=0x1 order=0 migratetype=x gfp_flags=GFP_KERNEL'),
      /^t:2: migratetype=x is not a decimal number/,
    ],
    [
      'an unknown gfp flag',
      alloc(0, '1.0', 0x400, 0, 'GFP_KERNEL|__GFP_BOGUS'),
      /^t:2: gfp_flags has an unknown flag '__GFP_BOGUS'/,
    ],
    ['a malformed gfp flag', alloc(0, '1.0', 0x400, 0, 'GFP_KERNEL||x'), /^t:2: gfp_flags has a bad name ''/],
    [
      'a batched free of order 1',
      tl(0, '1.0', 'mm_page_free_batched', 'page=0 pfn=0x1 order=1'),
      /^t:2: mm_page_free_batched: order=1, the kernel prints order=0/,
    ],
    [
      'a non-boolean fragmenting',
      extfrag('1.0', 0, 3, 0, 1, 1).replace('fragmenting=1', 'fragmenting=2'),
      /^t:2: fragmenting=2 is not 0 or 1/,
    ],
    [
      'a timestamp with 10 decimals',
      free(0, '1.0123456789', 0x1, 0),
      /^t:2: timestamp '1.0123456789' has more than 9 decimals/,
    ],
    ['an over-long line', `x${'y'.repeat(5000)}`, /^t:2: line of 5001 characters is longer than 4096/],
  ];
  it.each(bad)('%s gives one error naming the line', (_what, line, message) => {
    const text = `# tracer: nop\n${line}\n${free(0, '2.0', 0x10, 0)}\n`;
    let err: unknown;
    try {
      parseKmemTrace(text, { source: 't' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KmemTraceError);
    expect((err as KmemTraceError).line).toBe(2);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses input above max_bytes before reading a line', () => {
    expect(() => parseKmemTrace('x'.repeat(100), { source: 'big', max_bytes: 99 })).toThrow(
      'big: 100 bytes is more than the limit of 99',
    );
  });
});

describe('replayKmemTrace', () => {
  it('matches frees to allocations by pfn and counts what it cannot replay', () => {
    const m = cleanMachine({ memory: '1G', cpus: 2 });
    const before = m.readFile('/proc/buddyinfo');
    const t = parseKmemTrace(
      [
        alloc(0, '1.000000', 0x1000, 2),
        alloc(3, '1.000001', 0x2000, 0, 'GFP_HIGHUSER_MOVABLE', 1),
        alloc(1, '1.000002', 0x3000, 1),
        tl(
          1,
          '1.000003',
          'mm_page_alloc',
          'page=0000000000000000 pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE',
        ),
        free(0, '1.000004', 0x9999, 0), // allocated before tracing started
        free(1, '1.000005', 0x3001, 0), // split_page(): not the block's head
        free(1, '1.000006', 0x3000, 0), // wrong order
        batched(1, '1.000007', 0x2000),
        free(0, '1.000008', 0x1000, 2),
        free(0, '1.000009', 0x1000, 2), // already freed
        alloc(0, '1.000010', 0x3000, 1), // reused without a traced free
        free(0, '1.000011', 0x3000, 1),
        // 6.18 free_unref_folios(): mm_page_free, then mm_page_free_batched, for one free.
        alloc(1, '1.000012', 0x4000, 0),
        free(1, '1.000013', 0x4000, 0),
        batched(1, '1.000014', 0x4000),
        batched(1, '1.000015', 0x9999), // the same for a page allocated before tracing
      ].join('\n'),
    );
    const r = replayKmemTrace(m, t.events, { time_scale: 0 });
    expect(r).toMatchObject({
      replayed_allocs: 5,
      replayed_frees: 4,
      failed_allocs: 0,
      kernel_failed_allocs: 1,
      unmatched_frees: 3,
      order_mismatched_frees: 1,
      batched_after_free: 2,
      implicit_frees: 1,
      live_blocks: 0,
    });
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(before);
    expect(violations(m)).toEqual([]);
  });

  it('advances the clock by the trace timestamps, scaled', () => {
    const text = [alloc(0, '10.000000', 0x1000, 0), free(0, '10.250000', 0x1000, 0)].join('\n');
    const events = parseKmemTrace(text).events;
    const m = cleanMachine({ memory: '1G' });
    const r = replayKmemTrace(m, events);
    expect(r.elapsed_ns).toBeGreaterThanOrEqual(250_000_000);
    expect(r.elapsed_ns).toBeLessThan(251_000_000);
    const m2 = cleanMachine({ memory: '1G' });
    expect(replayKmemTrace(m2, events, { time_scale: 4 }).elapsed_ns).toBeGreaterThanOrEqual(1_000_000_000);
    expect(() => replayKmemTrace(m2, events, { time_scale: -1 })).toThrow(RangeError);
  });

  it('is deterministic: same seed, same trace → identical /proc/buddyinfo and results', () => {
    const events = parseKmemTrace(fixture('python-mmap-8m.trace')).events;
    const run = () => {
      const m = Machine.boot({ memory: '1G', cpus: 2, seed: 7 });
      const r = replayKmemTrace(m, events);
      return {
        r,
        buddyinfo: m.readFile('/proc/buddyinfo'),
        pagetypeinfo: m.readFile('/proc/pagetypeinfo'),
        m,
      };
    };
    const a = run();
    const b = run();
    expect(b.buddyinfo).toBe(a.buddyinfo);
    expect(b.pagetypeinfo).toBe(a.pagetypeinfo);
    expect(b.r).toEqual(a.r);
    expect(a.r.replayed_allocs).toBe(911);
    // Every batched free of the capture follows its mm_page_free (6.18 traces both).
    expect(a.r.batched_after_free).toBe(539);
    // The probe is gone: the machine can still be cloned.
    expect(a.m.mm.trace.mm_page_alloc_extfrag).toBeNull();
    expect(() => a.m.clone()).not.toThrow();
    expect(violations(a.m)).toEqual([]);
  });

  it("sets the model's extfrag events next to the kernel's", () => {
    const trace = `${fixture('tar-gzip-pipes.trace')}${extfrag('35346.900000', 0, 3, 0, 1, 0)}\n${extfrag('35346.900001', 0, 10, 2, 1, 1)}\n${extfrag('35346.900002', 2, 10, 0, 2, 1)}\n`;
    const m = Machine.boot({ memory: '1G', cpus: 2, seed: 1 });
    const r = replayKmemTrace(m, parseKmemTrace(trace).events);
    expect(r.kernel_extfrag).toHaveLength(3);
    expect(r.kernel_extfrag[0]).toEqual({
      pfn: 0x1200,
      alloc_order: 0,
      fallback_order: 3,
      alloc_migratetype: 0,
      fallback_migratetype: 1,
      change_ownership: false,
    });
    for (const e of r.model_extfrag)
      expect(Object.keys(e).sort()).toEqual(Object.keys(r.kernel_extfrag[0]).sort());
    expect(r.extfrag_compare).toEqual(compareExtfrag(r.kernel_extfrag, r.model_extfrag));
    const kernelRows = r.extfrag_compare
      .filter((c) => c.kernel > 0)
      .map((c) => [c.alloc_order, c.fallback_migratetype, c.kernel]);
    expect(kernelRows).toEqual([
      [0, 1, 2],
      [2, 2, 1],
    ]);
    expect(r.extfrag_compare.reduce((s, c) => s + c.model, 0)).toBe(r.model_extfrag.length);
  });

  it('compareExtfrag counts by (alloc_order, fallback_migratetype), ascending', () => {
    const e = (alloc_order: number, fallback_migratetype: number) => ({
      pfn: 0,
      alloc_order,
      fallback_order: 9,
      alloc_migratetype: 0,
      fallback_migratetype,
      change_ownership: true,
    });
    expect(compareExtfrag([e(3, 1), e(0, 2), e(0, 1)], [e(0, 1), e(0, 1), e(9, 0)])).toEqual([
      { alloc_order: 0, fallback_migratetype: 1, kernel: 1, model: 2 },
      { alloc_order: 0, fallback_migratetype: 2, kernel: 1, model: 0 },
      { alloc_order: 3, fallback_migratetype: 1, kernel: 1, model: 0 },
      { alloc_order: 9, fallback_migratetype: 0, kernel: 0, model: 1 },
    ]);
  });

  it('names the trace line when the model refuses an event, and detaches the probe', () => {
    const m = cleanMachine({ memory: '1G' });
    const events = parseKmemTrace(
      `${alloc(0, '1.0', 0x10, 0)}\n${alloc(0, '1.1', 0x20, 0, '__GFP_DMA|__GFP_DMA32')}\n`,
    ).events;
    expect(() => replayKmemTrace(m, events)).toThrow(/^replayKmemTrace: line 2: invalid GFP zone modifiers/);
    expect(m.mm.trace.mm_page_alloc_extfrag).toBeNull();
    expect(() => replayKmemTrace(m, events, { max_events: 1.5 })).toThrow(RangeError);
    expect(replayKmemTrace(m, events, { max_events: 1 }).replayed_allocs).toBe(1);
  });

  it('replays GFP_KERNEL as unmovable on the traced CPU modulo the CPUs', () => {
    const m = cleanMachine({ memory: '1G', cpus: 2 });
    const seen: number[] = [];
    const events = parseKmemTrace(alloc(5, '1.0', 0x77, 0, 'GFP_KERNEL')).events;
    m.mm.trace.mm_page_alloc = (_pfn, _order, gfp, mt) => seen.push(gfp, mt);
    replayKmemTrace(m, events);
    m.mm.trace.mm_page_alloc = null;
    expect(seen).toEqual([GFP_KERNEL, 0]);
  });
});
