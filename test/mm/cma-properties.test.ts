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
import { cma_by_name } from '../../src/mm/cma.ts';
import { MIGRATE_CMA } from '../../src/mm/mmzone.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { NO_EARLY } from '../vm/helpers.ts';
import { Workload, type WorkloadOp, workloadOps } from './workload.ts';

const SHAPE = { chunks: 16, chunkPages: 1024, orders: [0, 0, 3, 9] }; // 4 MiB chunks

type Op =
  | WorkloadOp
  | { kind: 'cma_alloc'; count: number; align: number }
  | { kind: 'cma_release'; index: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  ...workloadOps(SHAPE, { touch: 4, drop: 2, kalloc: 2, kfree: 1, pin: 2, unpin: 1, mlock: 0 }),
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
      const w = new Workload(m, SHAPE);
      const held: Array<[number, number]> = [];
      let success = 0;
      let failed = 0;
      let released = 0;
      const check = (): void => {
        expect(m.invariantViolations()).toEqual([]);
        for (const { pfn, movable } of w.blocks)
          if (!movable) expect(isCma(pfn), `unmovable ${pfn}`).toBe(false);
        for (const { pfn, longterm } of w.pins)
          if (longterm) expect(isCma(pfn), `long-term pin ${pfn}`).toBe(false);
        let out = 0;
        for (const [, n] of held) out += n;
        expect(cma.available_count).toBe(cma.count - out);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/alloc_pages_success')).toBe(`${success}\n`);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/alloc_pages_fail')).toBe(`${failed}\n`);
        expect(m.readFile('/sys/kernel/mm/cma/reserved/release_pages_success')).toBe(`${released}\n`);
      };
      for (const o of ops) {
        if (o.kind === 'cma_alloc') {
          const maps = w.mapped();
          const pinned = w.pinned();
          const pfn = m.kernel.cma_alloc('reserved', o.count, o.align, true);
          expect(w.mapped()).toEqual(maps);
          expect(w.pinned()).toEqual(pinned);
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
              expect(w.pins.some((x) => x.pfn === q)).toBe(false);
            }
            held.push([pfn, o.count]);
          }
        } else if (o.kind === 'cma_release') {
          if (held.length) {
            const [pfn, n] = held.splice(o.index % held.length, 1)[0];
            expect(m.kernel.cma_release('reserved', pfn, n)).toBe(true);
            released += n;
          }
        } else w.apply(o);
        check();
      }
      for (const [pfn, n] of held.splice(0)) {
        m.kernel.cma_release('reserved', pfn, n);
        released += n;
      }
      w.release();
      m.kernel.drain_all_pages();
      check();
      expect(cma.available_count).toBe(cma.count);
      expect(m.readFile('/proc/meminfo')).toMatch(new RegExp(`^CmaFree: +${cma.count * 4} kB$`, 'm'));
    },
  );
});
