/**
 * Random page isolation and contiguous allocation: anonymous memory touched and partly dropped,
 * kernel allocations of several orders, pins and mlock, interleaved with alloc_contig_range() on
 * random ranges (aligned or not, one page to several pageblocks), alloc_contig_pages() and
 * free_contig_range(). After every step the model must be consistent, with no pageblock left
 * isolated; a successful allocation owns exactly its range (plain order-0 pages, nobody's) and
 * costs exactly its size in free pages, a failed one costs nothing; every mapped address stays
 * mapped and pinned pages never move; and once everything is released the machine's free memory
 * is back where it started.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { __GFP_NOWARN, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { ZONE_DMA32 } from '../../src/mm/mmzone.ts';
import { PG_head, PG_tail, PGI_alloc } from '../../src/mm/page-flags.ts';
import { PB_migrate_isolate } from '../../src/mm/pageblock.ts';
import { NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { NO_EARLY } from '../vm/helpers.ts';
import { Workload, type WorkloadOp, workloadOps } from './workload.ts';

const SHAPE = { chunks: 24, chunkPages: 1024, orders: [0, 0, 1, 3, 9] }; // 4 MiB chunks

type Op =
  | WorkloadOp
  | { kind: 'contig'; at: number; len: number; aligned: boolean }
  | { kind: 'contig_pages'; nr: number }
  | { kind: 'contig_free'; index: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  ...workloadOps(SHAPE),
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('contig' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      len: fc.integer({ min: 1, max: 2048 }),
      aligned: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('contig_pages' as const),
      nr: fc.constantFrom(512, 1000, 1024, 4096),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('contig_free' as const), index: fc.nat() }) },
);

describe('random isolation and contiguous allocation', () => {
  test.prop([fc.array(op, { minLength: 10, maxLength: 40 })], { numRuns: 15 })(
    'keeps the machine consistent, takes exactly the range, moves no pinned page, gives everything back',
    (ops) => {
      const m = Machine.boot({ memory: '256M', cpus: 2, seed: 3, early: NO_EARLY });
      m.kernel.drain_all_pages();
      const boot = m.readFile('/proc/buddyinfo');
      const mm = m.mm;
      const f = mm.frames;
      const zone = mm.zones[ZONE_DMA32];
      const w = new Workload(m, SHAPE);
      const contig: Array<[number, number]> = [];
      const free = (): number =>
        mm.zones.reduce((s, z) => {
          let pcp = 0;
          for (let cpu = 0; cpu < mm.nr_cpus; cpu++) pcp += z.pcp.count[cpu];
          return s + z.vm_stat[NR_FREE_PAGES] + pcp;
        }, 0);
      const noIsolation = (): void => {
        expect(mm.zones.every((z) => z.nr_isolate_pageblock === 0)).toBe(true);
        expect(mm.pb_flags.every((b) => (b & PB_migrate_isolate) === 0)).toBe(true);
      };
      /** Try to take [start, start + nr) (or let alloc_contig_pages find it, start < 0). */
      const take = (start: number, nr: number): void => {
        const before = free();
        const maps = w.mapped();
        const pinned = w.pinned();
        const pfn =
          start >= 0
            ? m.kernel.alloc_contig_range(start, start + nr, 0, GFP_KERNEL) === 0
              ? start
              : -1
            : m.kernel.alloc_contig_pages(nr, GFP_KERNEL | __GFP_NOWARN);
        expect(m.invariantViolations()).toEqual([]);
        noIsolation();
        expect(w.mapped()).toEqual(maps);
        expect(w.pinned()).toEqual(pinned);
        if (pfn < 0) {
          expect(free()).toBe(before);
          return;
        }
        expect(free()).toBe(before - nr);
        for (let q = pfn; q < pfn + nr; q++) {
          expect(f.flags[q] & (PGI_alloc | PG_head | PG_tail)).toBe(PGI_alloc);
          expect(f.order[q]).toBe(0);
          expect(f.mapcount[q]).toBe(0);
          expect(f.mapping[q]).toBe(0);
        }
        contig.push([pfn, nr]);
      };
      for (const o of ops) {
        if (o.kind === 'contig') {
          const span = zone.zone_end_pfn - zone.zone_start_pfn - o.len;
          let start = zone.zone_start_pfn + Math.floor(o.at * span);
          if (o.aligned) start -= start % 512;
          if (start < zone.zone_start_pfn) start += 512;
          take(start, o.len);
        } else if (o.kind === 'contig_pages') {
          take(-1, o.nr);
        } else if (o.kind === 'contig_free') {
          if (!contig.length) continue;
          const [pfn, nr] = contig.splice(o.index % contig.length, 1)[0];
          const before = free();
          m.kernel.free_contig_range(pfn, nr);
          expect(free()).toBe(before + nr);
          expect(m.invariantViolations()).toEqual([]);
        } else w.apply(o);
      }
      expect(m.invariantViolations()).toEqual([]);
      for (const [pfn, nr] of contig) m.kernel.free_contig_range(pfn, nr);
      w.release();
      m.kernel.drain_all_pages();
      expect(m.invariantViolations()).toEqual([]);
      expect(m.readFile('/proc/buddyinfo')).toBe(boot);
    },
  );
});
