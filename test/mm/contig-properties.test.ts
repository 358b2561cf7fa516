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
import { ErrnoError } from '../../src/lib/errno.ts';
import { __GFP_NOWARN, __GFP_RETRY_MAYFAIL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { ZONE_DMA32 } from '../../src/mm/mmzone.ts';
import { PG_head, PG_tail, PGI_alloc } from '../../src/mm/page-flags.ts';
import { PB_migrate_isolate } from '../../src/mm/pageblock.ts';
import { NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import { FaultError } from '../../src/vm/process.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { NO_EARLY, pte } from '../vm/helpers.ts';

const PAGE = 4096;
const CHUNK_PAGES = 1024; // 4 MiB
const NR_CHUNKS = 24;

type Op =
  | { kind: 'touch'; chunk: number }
  | { kind: 'drop'; chunk: number; page: number; pages: number; stride: number }
  | { kind: 'kalloc'; order: number; movable: boolean }
  | { kind: 'kfree'; index: number }
  | { kind: 'pin'; chunk: number; page: number; longterm: boolean }
  | { kind: 'unpin'; index: number }
  | { kind: 'mlock'; chunk: number; unlock: boolean }
  | { kind: 'contig'; at: number; len: number; aligned: boolean }
  | { kind: 'contig_pages'; nr: number }
  | { kind: 'contig_free'; index: number };

const chunk = fc.nat(NR_CHUNKS - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), chunk }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('drop' as const),
      chunk,
      page: fc.nat(CHUNK_PAGES - 1),
      pages: fc.integer({ min: 1, max: CHUNK_PAGES }),
      stride: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('kalloc' as const),
      order: fc.constantFrom(0, 0, 1, 3, 9),
      movable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kfree' as const), index: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pin' as const),
      chunk,
      page: fc.nat(CHUNK_PAGES - 1),
      longterm: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unpin' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mlock' as const), chunk, unlock: fc.boolean() }) },
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

function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

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
      const p = m.spawn();
      const base = p.mmap(
        0,
        NR_CHUNKS * CHUNK_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
      );
      const blocks: Array<[number, number]> = [];
      const pins: number[] = [];
      const contig: Array<[number, number]> = [];
      const addr = (c: number, page = 0): number => base + (c * CHUNK_PAGES + page) * PAGE;
      const identity = (pfn: number): number[] => [
        f.flags[pfn] & PGI_alloc,
        f.mapping[pfn],
        f.index[pfn],
        f.mapcount[pfn],
      ];
      const mapped = (): number[] => {
        const out: number[] = [];
        for (let i = 0; i < NR_CHUNKS * CHUNK_PAGES; i++) if (pte(m, p, base + i * PAGE)) out.push(i);
        return out;
      };
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
        const maps = mapped();
        const pinned = pins.map(identity);
        const pfn =
          start >= 0
            ? m.kernel.alloc_contig_range(start, start + nr, 0, GFP_KERNEL) === 0
              ? start
              : -1
            : m.kernel.alloc_contig_pages(nr, GFP_KERNEL | __GFP_NOWARN);
        expect(m.invariantViolations()).toEqual([]);
        noIsolation();
        expect(mapped()).toEqual(maps);
        expect(pins.map(identity)).toEqual(pinned);
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
        if (o.kind === 'touch') tolerate(() => p.touch(addr(o.chunk), CHUNK_PAGES * PAGE, { write: true }));
        else if (o.kind === 'drop') {
          for (let i = o.page; i < Math.min(CHUNK_PAGES, o.page + o.pages); i += o.stride)
            tolerate(() => p.madvise(addr(o.chunk, i), PAGE, MADV_DONTNEED));
        } else if (o.kind === 'kalloc') {
          const gfp = (o.movable ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
          const pfn = m.kernel.alloc_pages(gfp, o.order, { cpu: o.order & 1 });
          if (pfn >= 0) blocks.push([pfn, o.order]);
        } else if (o.kind === 'kfree') {
          if (blocks.length) {
            const [pfn, order] = blocks.splice(o.index % blocks.length, 1)[0];
            m.kernel.free_pages(pfn, order);
          }
        } else if (o.kind === 'pin') {
          if (pte(m, p, addr(o.chunk, o.page)))
            tolerate(() =>
              pins.push(
                ...p.pin_user_pages(
                  addr(o.chunk, o.page),
                  PAGE,
                  FOLL_WRITE | (o.longterm ? FOLL_LONGTERM : 0),
                ),
              ),
            );
        } else if (o.kind === 'unpin') {
          if (pins.length) p.unpin_user_pages(pins.splice(o.index % pins.length, 1));
        } else if (o.kind === 'mlock') {
          if (o.unlock) tolerate(() => p.munlock(addr(o.chunk), CHUNK_PAGES * PAGE));
          else tolerate(() => p.mlock(addr(o.chunk), CHUNK_PAGES * PAGE));
        } else if (o.kind === 'contig') {
          const span = zone.zone_end_pfn - zone.zone_start_pfn - o.len;
          let start = zone.zone_start_pfn + Math.floor(o.at * span);
          if (o.aligned) start -= start % 512;
          if (start < zone.zone_start_pfn) start += 512;
          take(start, o.len);
        } else if (o.kind === 'contig_pages') {
          take(-1, o.nr);
        } else if (contig.length) {
          const [pfn, nr] = contig.splice(o.index % contig.length, 1)[0];
          const before = free();
          m.kernel.free_contig_range(pfn, nr);
          expect(free()).toBe(before + nr);
          expect(m.invariantViolations()).toEqual([]);
        }
      }
      expect(m.invariantViolations()).toEqual([]);
      for (const [pfn, nr] of contig) m.kernel.free_contig_range(pfn, nr);
      p.unpin_user_pages(pins);
      for (const [pfn, order] of blocks) m.kernel.free_pages(pfn, order);
      p.exit();
      m.kernel.drain_all_pages();
      expect(m.invariantViolations()).toEqual([]);
      expect(m.readFile('/proc/buddyinfo')).toBe(boot);
    },
  );
});
