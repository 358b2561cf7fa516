/**
 * Random fragmentation and compaction: anonymous memory touched and partly dropped, kernel
 * allocations of every order (which compact directly at every priority), pins, mlock, and
 * compact_memory runs. The model must stay consistent after every compaction; a full compaction
 * must conserve pages (free + per-cpu pages per zone, LRU and anonymous page counts, every mapped
 * address still mapped); and once everything is released the machine's free memory is back where
 * it started.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { Prng } from '../../src/lib/prng.ts';
import { __GFP_NOWARN } from '../../src/mm/gfp.ts';
import { NR_FREE_PAGES, NR_MLOCK, node_stat_index } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { MADV_DONTNEED } from '../../src/vm/uapi.ts';
import { NO_EARLY } from '../vm/helpers.ts';
import { Workload, type WorkloadOp, workloadOps } from './workload.ts';

const PAGE = 4096;
const SHAPE = { chunks: 20, chunkPages: 2048, orders: [0, 0, 1, 2, 3, 4, 9, 10] }; // 8 MiB chunks
/** Node counters a compaction must not change. */
const NODE_ITEMS = (['nr_inactive_anon', 'nr_active_anon', 'nr_unevictable', 'nr_anon_pages'] as const).map(
  node_stat_index,
);

type Op = WorkloadOp | { kind: 'compact' };

const op: fc.Arbitrary<Op> = fc.oneof(...workloadOps(SHAPE, { drop: 4, kalloc: 4 }), {
  weight: 2,
  arbitrary: fc.record({ kind: fc.constant('compact' as const) }),
});

describe('random fragmentation and compaction', () => {
  test.prop([fc.integer({ min: 1, max: 2 ** 30 }), fc.array(op, { minLength: 10, maxLength: 50 })], {
    numRuns: 12,
  })('keeps the machine consistent, conserves pages, and gives everything back', (seed, ops) => {
    const m = Machine.boot({ memory: '256M', cpus: 2, seed: 5, early: NO_EARLY });
    m.kernel.drain_all_pages();
    const boot = m.readFile('/proc/buddyinfo');
    const w = new Workload(m, SHAPE);
    const pages = SHAPE.chunks * SHAPE.chunkPages;
    // Start fragmented: every chunk touched, about half of its pages dropped (seeded), and every
    // free block of pageblock order or more taken by kernel allocations that never compact.
    const r = new Prng(seed);
    w.p.touch(w.base, pages * PAGE, { write: true });
    for (let i = 0; i < pages; i++) if (r.below(2)) w.p.madvise(w.base + i * PAGE, PAGE, MADV_DONTNEED);
    m.kernel.drain_all_pages();
    for (const order of [10, 9]) {
      for (;;) {
        const pfn = m.kernel.alloc_pages(__GFP_NOWARN, order);
        if (pfn < 0) break;
        w.blocks.push({ pfn, order, movable: false });
      }
    }
    const counts = (): number[] => {
      const c = m.mm.zones.map((z) => {
        let pcp = 0;
        for (let cpu = 0; cpu < m.mm.nr_cpus; cpu++) pcp += z.pcp.count[cpu];
        return z.vm_stat[NR_FREE_PAGES] + pcp;
      });
      for (const item of NODE_ITEMS) c.push(m.mm.nodes[0].vm_stat[item]);
      c.push(m.mm.zones.reduce((s, z) => s + z.vm_stat[NR_MLOCK], 0));
      return c;
    };
    for (const o of ops) {
      if (o.kind !== 'compact') {
        w.apply(o);
        // Kernel allocations compact directly, at every priority.
        if (o.kind === 'kalloc') expect(m.invariantViolations()).toEqual([]);
        continue;
      }
      const before = counts();
      const maps = w.mapped();
      const pinned = w.pinned();
      m.writeFile('/proc/sys/vm/compact_memory', '1');
      expect(m.invariantViolations()).toEqual([]);
      expect(counts()).toEqual(before);
      expect(w.mapped()).toEqual(maps);
      // Pinned pages never move: each keeps its identity and mappings.
      expect(w.pinned()).toEqual(pinned);
    }
    expect(m.invariantViolations()).toEqual([]);
    w.release();
    m.kernel.drain_all_pages();
    expect(m.invariantViolations()).toEqual([]);
    expect(m.readFile('/proc/buddyinfo')).toBe(boot);
  });
});
