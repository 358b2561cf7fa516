/**
 * The plot-fragmentation export: a fragmenting run yields extfrag steal/claim and compaction
 * events in mcgrof/plot-fragmentation's schema, deterministically, and leaves no probe behind.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/lib/prng.ts';
import { __GFP_NOWARN, GFP_KERNEL, GFP_TRANSHUGE } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import {
  format_trace,
  type PlotFragmentationTrace,
  record,
  write_trace,
} from '../../src/workload/plot_fragmentation.ts';
import { NO_EARLY } from '../vm/helpers.ts';

const MiB = 2 ** 20;
const PAGE = 4096;

/**
 * Movable anonymous memory filling most of the machine with half its pages then freed at random;
 * every free pageblock taken by unmovable high-order allocations that cannot compact (claims);
 * unmovable order-0 pages, which now find only holes in movable pageblocks (steals); then THP
 * requests, which compact directly (and kcompactd in the background).
 */
function fragmenting_run(m: Machine, seed: number): void {
  const p = m.spawn();
  const r = new Prng(seed);
  const chunks: number[] = [];
  for (let i = 0; i < 48; i++) {
    const a = p.mmap(0, 8 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.touch(a, 8 * MiB, { write: true });
    chunks.push(a);
    m.advance('10ms');
  }
  for (const a of chunks)
    for (let off = 0; off < 8 * MiB; off += PAGE) if (r.below(2)) p.madvise(a + off, PAGE, MADV_DONTNEED);
  m.kernel.drain_all_pages();
  // No __GFP_DIRECT_RECLAIM: these never compact.
  for (const o of [10, 9]) while (m.kernel.alloc_pages(__GFP_NOWARN, o) >= 0) m.advance('1ms');
  for (let i = 0; i < 4096; i++) {
    m.kernel.alloc_pages(GFP_KERNEL, 0);
    if (i % 64 === 0) m.advance('1ms');
  }
  m.advance('10ms');
  for (let i = 0; i < 64; i++) {
    m.kernel.alloc_pages(GFP_TRANSHUGE | __GFP_NOWARN, 9);
    m.advance('1ms');
  }
}

function run(seed: number): { m: Machine; trace: PlotFragmentationTrace } {
  const m = Machine.boot({ memory: '512M', cpus: 2, early: NO_EARLY, seed });
  const trace = record(m, () => fragmenting_run(m, seed), { start_time: 1_700_000_000 });
  return { m, trace };
}

describe('plot-fragmentation export', () => {
  const { m, trace } = run(7);
  const extfrag = trace.events.filter((e) => e.event_type === 'extfrag');
  const compaction = trace.events.filter((e) => e.event_type !== 'extfrag');

  it('records extfrag steals and claims with the tracker fields', () => {
    expect(extfrag.some((e) => e.is_steal)).toBe(true);
    expect(extfrag.some((e) => !e.is_steal)).toBe(true);
    for (const e of extfrag) {
      expect(Object.keys(e)).toEqual([
        'timestamp',
        'absolute_time',
        'event_type',
        'pid',
        'tid',
        'comm',
        'order',
        'fallback_order',
        'migrate_from',
        'migrate_to',
        'is_steal',
        'node',
        'fragmentation_index',
      ]);
      expect(e.fallback_order).toBeGreaterThanOrEqual(e.order);
      expect(e.migrate_from).not.toBe(e.migrate_to);
      expect(['UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'HIGHATOMIC']).toContain(e.migrate_from);
      expect(e.fragmentation_index).toBeGreaterThanOrEqual(-1000);
      expect(e.fragmentation_index).toBeLessThanOrEqual(1000);
    }
    expect(extfrag.some((e) => e.migrate_from === 'MOVABLE' && e.migrate_to === 'UNMOVABLE')).toBe(true);
  });

  it('records compaction runs with their outcome and starting fragmentation index', () => {
    expect(compaction.length).toBeGreaterThan(0);
    for (const e of compaction) {
      expect([9, 10]).toContain(e.order);
      if (e.event_type === 'compaction_success') {
        expect(Object.keys(e)).toEqual([
          'timestamp',
          'absolute_time',
          'event_type',
          'pid',
          'comm',
          'order',
          'fragmentation_index',
          'zone',
          'node',
        ]);
        expect(['DMA', 'DMA32', 'Normal']).toContain(e.zone);
        expect(e.fragmentation_index).toBeGreaterThanOrEqual(-1000);
      } else {
        expect(Object.keys(e)).toEqual([
          'timestamp',
          'absolute_time',
          'event_type',
          'pid',
          'comm',
          'order',
          'fragmentation_index',
        ]);
        expect(e.fragmentation_index).toBe(-1);
      }
    }
    expect(compaction.some((e) => e.event_type === 'compaction_success')).toBe(true);
    expect(compaction.some((e) => e.event_type === 'compaction_failure')).toBe(true);
    const counted = Object.values(trace.statistics.compaction).reduce((n, s) => n + s.success + s.failure, 0);
    expect(counted).toBe(compaction.length);
  });

  it('has metadata, statistics and simulated timestamps that agree with the events', () => {
    expect(trace.metadata.total_events).toBe(trace.events.length);
    // 48 * 10 ms + 64 ms + 10 ms + 64 ms of advance() at least, plus modelled kernel time.
    expect(trace.metadata.duration).toBeGreaterThan(0.618);
    expect(trace.metadata.end_time).toBe(trace.metadata.start_time + trace.metadata.duration);
    const ts = trace.events.map((e) => e.timestamp);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(ts[ts.length - 1]).toBeGreaterThan(ts[0]);
    expect(Object.values(trace.statistics.extfrag).reduce((a, b) => a + b, 0)).toBe(extfrag.length);
    expect(trace.events[0].absolute_time).toMatch(/^2023-11-14T22:13:20\.\d{6}$/);
  });

  it('is byte-identical for the same seed', () => {
    expect(format_trace(run(7).trace)).toBe(format_trace(trace));
  });

  it('detaches its probes, so the machine clones', () => {
    expect(m.mm.trace.mm_page_alloc_extfrag).toBeNull();
    expect(m.mm.trace.mm_compaction_begin).toBeNull();
    expect(m.mm.trace.mm_compaction_end).toBeNull();
    expect(() => m.clone()).not.toThrow();
  });

  it('detaches its probes when the run throws', () => {
    const m2 = Machine.boot({ memory: '512M', cpus: 1, early: NO_EARLY });
    expect(() =>
      record(m2, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(m2.mm.trace.mm_page_alloc_extfrag).toBeNull();
    expect(m2.mm.trace.mm_compaction_end).toBeNull();
    expect(() => m2.clone()).not.toThrow();
  });

  it('writes the JSON the tracker writes, and names a bad path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plotfrag-'));
    const file = join(dir, 'trace.json');
    write_trace(file, trace);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(trace);
    expect(() => write_trace(join(dir, 'missing', 'x.json'), trace)).toThrow(
      /plot-fragmentation: cannot write .*missing.*: its directory does not exist/,
    );
    expect(() => write_trace(dir, trace)).toThrow(/it is a directory/);
    expect(() => write_trace('', trace)).toThrow('no output path given');
  });
});
