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
import { ErrnoError } from '../../src/lib/errno.ts';
import { Prng } from '../../src/lib/prng.ts';
import {
  __GFP_COMP,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_TRANSHUGE,
} from '../../src/mm/gfp.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import { NR_FREE_PAGES, NR_MLOCK, node_stat_index } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FaultError } from '../../src/vm/process.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { NO_EARLY, pte } from '../vm/helpers.ts';

const PAGE = 4096;
const CHUNK_PAGES = 2048; // 8 MiB
const NR_CHUNKS = 20;
/** Node counters a compaction must not change. */
const NODE_ITEMS = (['nr_inactive_anon', 'nr_active_anon', 'nr_unevictable', 'nr_anon_pages'] as const).map(
  node_stat_index,
);

type Op =
  | { kind: 'touch'; chunk: number }
  | { kind: 'drop'; chunk: number; page: number; pages: number; stride: number }
  | { kind: 'kalloc'; order: number; movable: boolean }
  | { kind: 'kfree'; index: number }
  | { kind: 'pin'; chunk: number; page: number }
  | { kind: 'unpin'; index: number }
  | { kind: 'mlock'; chunk: number; unlock: boolean }
  | { kind: 'compact' };

const chunk = fc.nat(NR_CHUNKS - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), chunk }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('drop' as const),
      chunk,
      page: fc.nat(CHUNK_PAGES - 1),
      pages: fc.integer({ min: 1, max: CHUNK_PAGES }),
      stride: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('kalloc' as const),
      order: fc.constantFrom(0, 0, 1, 2, 3, 4, 9, 10),
      movable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kfree' as const), index: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('pin' as const), chunk, page: fc.nat(CHUNK_PAGES - 1) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unpin' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mlock' as const), chunk, unlock: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
);

function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

describe('random fragmentation and compaction', () => {
  test.prop([fc.integer({ min: 1, max: 2 ** 30 }), fc.array(op, { minLength: 10, maxLength: 50 })], {
    numRuns: 12,
  })('keeps the machine consistent, conserves pages, and gives everything back', (seed, ops) => {
    const m = Machine.boot({
      memory: '256M',
      cpus: 2,
      seed: 5,
      early: NO_EARLY,
    });
    m.kernel.drain_all_pages();
    const boot = m.readFile('/proc/buddyinfo');
    const p = m.spawn();
    const base = p.mmap(
      0,
      NR_CHUNKS * CHUNK_PAGES * PAGE,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS,
    );
    const blocks: Array<[number, number]> = [];
    const pins: number[] = [];
    const f = m.mm.frames;
    const identity = (pfn: number): number[] => [
      f.flags[pfn] & PGI_alloc,
      f.mapping[pfn],
      f.index[pfn],
      f.mapcount[pfn],
    ];
    const addr = (c: number, page = 0): number => base + (c * CHUNK_PAGES + page) * PAGE;
    // Start fragmented: every chunk touched, about half of its pages dropped (seeded), and every
    // free block of pageblock order or more taken by kernel allocations that never compact.
    const r = new Prng(seed);
    p.touch(base, NR_CHUNKS * CHUNK_PAGES * PAGE, { write: true });
    for (let i = 0; i < NR_CHUNKS * CHUNK_PAGES; i++)
      if (r.below(2)) p.madvise(base + i * PAGE, PAGE, MADV_DONTNEED);
    m.kernel.drain_all_pages();
    for (const order of [10, 9]) {
      for (;;) {
        const pfn = m.kernel.alloc_pages(__GFP_NOWARN, order);
        if (pfn < 0) break;
        blocks.push([pfn, order]);
      }
    }
    const mapped = (): number[] => {
      const out: number[] = [];
      for (let i = 0; i < NR_CHUNKS * CHUNK_PAGES; i++) if (pte(m, p, base + i * PAGE)) out.push(i);
      return out;
    };
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
      if (o.kind === 'touch') tolerate(() => p.touch(addr(o.chunk), CHUNK_PAGES * PAGE, { write: true }));
      else if (o.kind === 'drop') {
        for (let i = o.page; i < Math.min(CHUNK_PAGES, o.page + o.pages); i += o.stride)
          tolerate(() => p.madvise(addr(o.chunk, i), PAGE, MADV_DONTNEED));
      } else if (o.kind === 'kalloc') {
        const gfp =
          o.order >= 9
            ? GFP_TRANSHUGE | __GFP_COMP
            : (o.movable ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
        const pfn = m.kernel.alloc_pages(gfp, o.order, { cpu: o.order & 1 });
        if (pfn >= 0) blocks.push([pfn, o.order]);
        expect(m.invariantViolations()).toEqual([]);
      } else if (o.kind === 'kfree') {
        if (blocks.length) {
          const [pfn, order] = blocks.splice(o.index % blocks.length, 1)[0];
          m.kernel.free_pages(pfn, order);
        }
      } else if (o.kind === 'pin') {
        if (pte(m, p, addr(o.chunk, o.page)))
          tolerate(() => pins.push(...p.pin_user_pages(addr(o.chunk, o.page), PAGE)));
      } else if (o.kind === 'unpin') {
        if (pins.length) p.unpin_user_pages(pins.splice(o.index % pins.length, 1));
      } else if (o.kind === 'mlock') {
        if (o.unlock) tolerate(() => p.munlock(addr(o.chunk), CHUNK_PAGES * PAGE));
        else tolerate(() => p.mlock(addr(o.chunk), CHUNK_PAGES * PAGE));
      } else {
        const before = counts();
        const maps = mapped();
        const pinned = pins.map(identity);
        m.writeFile('/proc/sys/vm/compact_memory', '1');
        expect(m.invariantViolations()).toEqual([]);
        expect(counts()).toEqual(before);
        expect(mapped()).toEqual(maps);
        // Pinned pages never move: each keeps its identity and mappings.
        expect(pins.map(identity)).toEqual(pinned);
      }
    }
    expect(m.invariantViolations()).toEqual([]);
    p.unpin_user_pages(pins);
    for (const [pfn, order] of blocks) m.kernel.free_pages(pfn, order);
    p.exit();
    m.kernel.drain_all_pages();
    expect(m.invariantViolations()).toEqual([]);
    expect(m.readFile('/proc/buddyinfo')).toBe(boot);
  });
});
