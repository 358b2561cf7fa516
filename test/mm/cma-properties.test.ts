/**
 * Random CMA use: anonymous memory faulted in (much of it borrowing the CMA area, which holds
 * more than half of the free memory) and partly dropped, kernel allocations of several orders
 * and both mobilities, short- and long-term pins, interleaved with cma_alloc() of random sizes
 * and alignments and cma_release(). After every step the model must be consistent (the CMA
 * invariants included: pageblocks stay CMA, the bitmap covers exactly what cma_alloc() handed
 * out); unmovable pages and long-term pins are never in the area; an allocation owns its range,
 * aligned as asked, and the sysfs counters add up; mappings and pinned pages stay where they
 * are; and once everything is released the area is whole again.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { cma_by_name } from '../../src/mm/cma.ts';
import { __GFP_NOWARN, __GFP_RETRY_MAYFAIL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { MIGRATE_CMA } from '../../src/mm/mmzone.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import { FaultError } from '../../src/vm/process.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { NO_EARLY, pte } from '../vm/helpers.ts';

const PAGE = 4096;
const CHUNK_PAGES = 1024; // 4 MiB
const NR_CHUNKS = 16;

type Op =
  | { kind: 'touch'; chunk: number }
  | { kind: 'drop'; chunk: number; page: number; pages: number }
  | { kind: 'kalloc'; order: number; movable: boolean }
  | { kind: 'kfree'; index: number }
  | { kind: 'pin'; chunk: number; page: number; longterm: boolean }
  | { kind: 'unpin'; index: number }
  | { kind: 'cma_alloc'; count: number; align: number }
  | { kind: 'cma_release'; index: number };

const chunk = fc.nat(NR_CHUNKS - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('touch' as const), chunk }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('drop' as const),
      chunk,
      page: fc.nat(CHUNK_PAGES - 1),
      pages: fc.integer({ min: 1, max: CHUNK_PAGES }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('kalloc' as const),
      order: fc.constantFrom(0, 0, 3, 9),
      movable: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kfree' as const), index: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('pin' as const),
      chunk,
      page: fc.nat(CHUNK_PAGES - 1),
      longterm: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unpin' as const), index: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('cma_alloc' as const),
      count: fc.constantFrom(1, 7, 100, 512, 1000, 2048),
      align: fc.constantFrom(0, 0, 4, 9, 10),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cma_release' as const), index: fc.nat() }) },
);

function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

describe('random CMA allocation', () => {
  test.prop([fc.array(op, { minLength: 10, maxLength: 40 })], { numRuns: 12 })(
    'keeps the machine consistent, lends only to movable pages, takes ranges back, gives everything back',
    (ops) => {
      const m = Machine.boot({ memory: '256M', cpus: 2, seed: 9, early: NO_EARLY, cma: '96M' });
      m.kernel.drain_all_pages();
      const mm = m.mm;
      const f = mm.frames;
      const cma = cma_by_name(mm, 'reserved')!;
      const isCma = (pfn: number): boolean => get_pfnblock_migratetype(mm, pfn) === MIGRATE_CMA;
      const p = m.spawn();
      const base = p.mmap(
        0,
        NR_CHUNKS * CHUNK_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
      );
      const addr = (c: number, page = 0): number => base + (c * CHUNK_PAGES + page) * PAGE;
      const blocks: Array<[number, number, boolean]> = [];
      const pins: Array<[number, boolean]> = [];
      const held: Array<[number, number]> = [];
      let success = 0;
      let failed = 0;
      let released = 0;
      const mapped = (): number[] => {
        const out: number[] = [];
        for (let i = 0; i < NR_CHUNKS * CHUNK_PAGES; i++) if (pte(m, p, addr(0, i))) out.push(i);
        return out;
      };
      const check = (): void => {
        expect(m.invariantViolations()).toEqual([]);
        for (const [pfn, , movable] of blocks)
          if (!movable) expect(isCma(pfn), `unmovable ${pfn}`).toBe(false);
        for (const [pfn, longterm] of pins)
          if (longterm) expect(isCma(pfn), `long-term pin ${pfn}`).toBe(false);
        let out = 0;
        for (const [, n] of held) out += n;
        expect(cma.available_count).toBe(cma.count - out);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/alloc_pages_success')).toBe(`${success}\n`);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/alloc_pages_fail')).toBe(`${failed}\n`);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/release_pages_success')).toBe(`${released}\n`);
      };
      for (const o of ops) {
        if (o.kind === 'touch') tolerate(() => p.touch(addr(o.chunk), CHUNK_PAGES * PAGE, { write: true }));
        else if (o.kind === 'drop') {
          const n = Math.min(CHUNK_PAGES - o.page, o.pages);
          tolerate(() => p.madvise(addr(o.chunk, o.page), n * PAGE, MADV_DONTNEED));
        } else if (o.kind === 'kalloc') {
          const gfp = (o.movable ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
          const pfn = m.kernel.alloc_pages(gfp, o.order, { cpu: o.order & 1 });
          if (pfn >= 0) blocks.push([pfn, o.order, o.movable]);
        } else if (o.kind === 'kfree') {
          if (blocks.length) {
            const [pfn, order] = blocks.splice(o.index % blocks.length, 1)[0];
            m.kernel.free_pages(pfn, order);
          }
        } else if (o.kind === 'pin') {
          if (pte(m, p, addr(o.chunk, o.page)))
            tolerate(() => {
              const gup = FOLL_WRITE | (o.longterm ? FOLL_LONGTERM : 0);
              for (const pfn of p.pin_user_pages(addr(o.chunk, o.page), PAGE, gup))
                pins.push([pfn, o.longterm]);
            });
        } else if (o.kind === 'unpin') {
          if (pins.length) p.unpin_user_pages([pins.splice(o.index % pins.length, 1)[0][0]]);
        } else if (o.kind === 'cma_alloc') {
          const maps = mapped();
          const pinned = pins.map(([pfn]) => [pfn, f.mapcount[pfn], f.mapping[pfn]]);
          const pfn = m.kernel.cma_alloc('reserved', o.count, o.align, true);
          expect(mapped()).toEqual(maps);
          expect(pins.map(([q]) => [q, f.mapcount[q], f.mapping[q]])).toEqual(pinned);
          if (pfn < 0) failed += o.count;
          else {
            success += o.count;
            expect(pfn % 2 ** o.align).toBe(0);
            expect(pfn >= cma.ranges[0].base_pfn && pfn + o.count <= cma.ranges[0].base_pfn + cma.count).toBe(
              true,
            );
            for (let q = pfn; q < pfn + o.count; q++) {
              expect(f.flags[q] & PGI_alloc).toBe(PGI_alloc);
              expect(f.mapcount[q]).toBe(0);
              expect(pins.some(([x]) => x === q)).toBe(false);
            }
            held.push([pfn, o.count]);
          }
        } else if (held.length) {
          const [pfn, n] = held.splice(o.index % held.length, 1)[0];
          expect(m.kernel.cma_release('reserved', pfn, n)).toBe(true);
          released += n;
        }
        check();
      }
      for (const [pfn, n] of held.splice(0)) {
        m.kernel.cma_release('reserved', pfn, n);
        released += n;
      }
      p.unpin_user_pages(pins.map(([pfn]) => pfn));
      pins.length = 0;
      for (const [pfn, order] of blocks) m.kernel.free_pages(pfn, order);
      blocks.length = 0;
      p.exit();
      m.kernel.drain_all_pages();
      check();
      expect(cma.available_count).toBe(cma.count);
      expect(m.readFile('/proc/meminfo')).toMatch(new RegExp(`^CmaFree: +${cma.count * 4} kB$`, 'm'));
    },
  );
});
