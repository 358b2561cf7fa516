/**
 * The network page_pool (net/core/page_pool.c, Linux 6.18): a pool takes unmovable GFP_ATOMIC
 * pages from the page allocator (64 order-0 pages at a time through the bulk path, or one
 * compound page of its order), recycles what the driver gives back through its 128-entry direct
 * cache and its ring without touching the allocator, frees what fits in neither, and gives
 * everything back when destroyed. No /proc counter or page flag marks its pages.
 */
import { describe, expect, it } from 'vitest';
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, stable_page_flags } from '../../src/fs/proc/page.ts';
import { __GFP_NOWARN, GFP_ATOMIC } from '../../src/mm/gfp.ts';
import { MIGRATE_UNMOVABLE } from '../../src/mm/mmzone.ts';
import {
  type PagePool,
  PP_ALLOC_CACHE_REFILL,
  PP_ALLOC_CACHE_SIZE,
  page_pool_check,
} from '../../src/mm/page_pool.ts';
import { PG_head, PG_tail, PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { cache_objects_inuse } from '../../src/mm/slab.ts';
import { global_node_page_state, global_zone_page_state } from '../../src/mm/vmstat.ts';
import { NR_FREE_PAGES, node_stat_index, PGALLOC_DMA, PGFREE } from '../../src/mm/vmstat_items.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, violations } from '../helpers.ts';

const UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');

/** Free pages, wherever they sit: the buddy lists and every CPU's per-cpu lists. */
function freePages(m: Machine): number {
  let n = global_zone_page_state(m.mm, NR_FREE_PAGES);
  for (const z of m.mm.zones) for (let cpu = 0; cpu < m.mm.nr_cpus; cpu++) n += z.pcp.count[cpu];
  return n;
}
const slabPages = (m: Machine): number => global_node_page_state(m.mm, UNRECLAIMABLE);
const inuse = (m: Machine, cache: string): number => cache_objects_inuse(m.kernel.kmem_cache(cache)!);
/** The page allocator's activity: pages allocated and freed since boot. */
function allocatorEvents(m: Machine): number[] {
  const e = m.mm.vm_events;
  return [e[PGALLOC_DMA] + e[PGALLOC_DMA + 1] + e[PGALLOC_DMA + 2] + e[PGALLOC_DMA + 3], e[PGFREE]];
}
function consistent(m: Machine, pool: PagePool): void {
  expect(page_pool_check(m.mm, pool)).toEqual([]);
  expect(violations(m)).toEqual([]);
}
function allocN(m: Machine, pool: PagePool, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const pfn = m.kernel.page_pool_alloc_pages(pool);
    expect(pfn).toBeGreaterThanOrEqual(0);
    out.push(pfn);
  }
  return out;
}

describe('creating a pool', () => {
  it('allocates the struct (kmalloc-2k) and the default 1024-entry ring (kmalloc-8k), no pages', () => {
    const m = cleanMachine();
    const before = [inuse(m, 'kmalloc-2k'), inuse(m, 'kmalloc-8k')];
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const pool = m.kernel.page_pool_create({ cpu: 1 })!;
    expect(pool.ring_qsize).toBe(1024);
    expect([inuse(m, 'kmalloc-2k'), inuse(m, 'kmalloc-8k')]).toEqual(before.map((n) => n + 1));
    expect(free0 - freePages(m)).toBe(slabPages(m) - slab0);
    expect(pool.inflight).toBe(0);
    consistent(m, pool);
  });

  it('caps the ring at 16384 entries, whose 128 KiB queue is a large kmalloc', () => {
    const m = cleanMachine();
    const slab0 = slabPages(m);
    const pool = m.kernel.page_pool_create({ pool_size: 100000 })!;
    expect(pool.ring_qsize).toBe(16384);
    expect(m.mm.slab.large_kmalloc.has(pool.ring_handle / 4096)).toBe(true);
    expect(slabPages(m) - slab0).toBeGreaterThanOrEqual(32);
    consistent(m, pool);
  });

  it('refuses a bad order, pool size, node or CPU', () => {
    const m = cleanMachine();
    expect(() => m.kernel.page_pool_create({ order: 11 })).toThrow(RangeError);
    expect(() => m.kernel.page_pool_create({ order: -1 })).toThrow(RangeError);
    expect(() => m.kernel.page_pool_create({ pool_size: -5 })).toThrow(RangeError);
    expect(() => m.kernel.page_pool_create({ pool_size: 1.5 })).toThrow(RangeError);
    expect(() => m.kernel.page_pool_create({ nid: 3 })).toThrow(RangeError);
    expect(() => m.kernel.page_pool_create({ cpu: 2 })).toThrow(RangeError);
  });
});

describe('allocating', () => {
  it('bulk-allocates 64 order-0 pages into the cache when it is empty, then serves from it', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ cpu: 1 })!;
    const free0 = freePages(m);
    const first = m.kernel.page_pool_alloc_pages(pool);
    expect(pool.inflight).toBe(PP_ALLOC_CACHE_REFILL);
    expect(pool.alloc_count).toBe(PP_ALLOC_CACHE_REFILL - 1);
    expect(free0 - freePages(m)).toBe(PP_ALLOC_CACHE_REFILL);
    const events = allocatorEvents(m);
    const rest = allocN(m, pool, PP_ALLOC_CACHE_REFILL - 1);
    expect(allocatorEvents(m)).toEqual(events);
    expect(pool.stats).toMatchObject({ slow: 1, fast: 63, empty: 1 });
    expect(new Set([first, ...rest]).size).toBe(PP_ALLOC_CACHE_REFILL);
    // The 65th goes to the page allocator again.
    m.kernel.page_pool_alloc_pages(pool);
    expect(pool.inflight).toBe(2 * PP_ALLOC_CACHE_REFILL);
    for (const pfn of [first, ...rest]) {
      expect(m.mm.frames.flags[pfn]).toBe(PGI_alloc);
      expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_UNMOVABLE);
      expect(stable_page_flags(m.mm, pfn)).toBe(0n); // 6.18: pp_magic, no KPF flag
    }
    consistent(m, pool);
  });

  it('gives an order-3 pool compound pages, shown as COMPOUND_HEAD/TAIL only', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ order: 3 })!;
    const pfn = m.kernel.page_pool_alloc_pages(pool);
    expect(pfn % 8).toBe(0);
    expect(m.mm.frames.order[pfn]).toBe(3);
    expect(m.mm.frames.flags[pfn]).toBe(PGI_alloc | PG_head);
    expect(m.mm.frames.flags[pfn + 7]).toBe(PG_tail);
    expect(stable_page_flags(m.mm, pfn)).toBe(1n << BigInt(KPF_COMPOUND_HEAD));
    expect(stable_page_flags(m.mm, pfn + 5)).toBe(1n << BigInt(KPF_COMPOUND_TAIL));
    expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_UNMOVABLE);
    expect([pool.inflight, pool.stats.slow_high_order]).toEqual([1, 1]);
    consistent(m, pool);
  });

  it('is counted by no /proc/meminfo line: only MemFree and MemAvailable move', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ order: 3, cpu: 1 })!;
    m.kernel.drain_all_pages();
    const before = m.readFile('/proc/meminfo');
    allocN(m, pool, 100);
    m.kernel.drain_all_pages();
    const after = m.readFile('/proc/meminfo');
    const labels = before
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, l.indexOf(':')));
    const changed = labels.filter((l) => meminfo_field(before, l) !== meminfo_field(after, l));
    expect(changed).toEqual(['MemFree', 'MemAvailable']);
    expect(meminfo_field(before, 'MemFree') - meminfo_field(after, 'MemFree')).toBe(100 * 8 * 4);
    consistent(m, pool);
  });
});

describe('recycling', () => {
  it('cycles pages between the driver and the direct cache without touching the allocator', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ cpu: 1 })!;
    const warm = allocN(m, pool, 100);
    for (const pfn of warm) m.kernel.page_pool_put_page(pool, pfn);
    const free0 = freePages(m);
    const events = allocatorEvents(m);
    const seen = new Set<number>();
    for (let round = 0; round < 50; round++) {
      const got = allocN(m, pool, 100);
      for (const pfn of got) seen.add(pfn);
      for (const pfn of got.reverse()) m.kernel.page_pool_put_page(pool, pfn);
    }
    expect(freePages(m)).toBe(free0);
    expect(allocatorEvents(m)).toEqual(events);
    expect(seen.size).toBeLessThanOrEqual(pool.inflight);
    expect(pool.inflight).toBe(128); // two bulk refills
    consistent(m, pool);
  });

  it('puts pages into the ring when not in NAPI context or the cache is full, and refills from it', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ pool_size: 256 })!;
    const pages = allocN(m, pool, 192); // three bulk refills
    for (const pfn of pages.slice(0, 64)) m.kernel.page_pool_put_page(pool, pfn, { allow_direct: false });
    expect([pool.ring_count, pool.stats.ring]).toEqual([64, 64]);
    for (const pfn of pages.slice(64)) m.kernel.page_pool_put_page(pool, pfn);
    expect([pool.alloc_count, pool.stats.cache_full, pool.ring_count]).toEqual([PP_ALLOC_CACHE_SIZE, 0, 64]);
    // Empty the cache; the next allocation refills 64 from the ring.
    const events = allocatorEvents(m);
    allocN(m, pool, PP_ALLOC_CACHE_SIZE + 1);
    expect(pool.stats.refill).toBe(1);
    expect([pool.alloc_count, pool.ring_count]).toEqual([63, 0]);
    expect(allocatorEvents(m)).toEqual(events);
    consistent(m, pool);
  });

  it('frees to the page allocator what neither the cache nor the ring can hold', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ pool_size: 16, cpu: 1 })!;
    const pages = allocN(m, pool, 192);
    const free0 = freePages(m);
    for (const pfn of pages) m.kernel.page_pool_put_page(pool, pfn);
    // 128 in the cache, 16 in the ring, 48 freed.
    expect([pool.alloc_count, pool.ring_count, pool.stats.cache_full, pool.stats.ring_full]).toEqual([
      128, 16, 64, 48,
    ]);
    expect(freePages(m) - free0).toBe(48);
    expect(pool.inflight).toBe(144);
    consistent(m, pool);
  });

  it('refuses a page the pool did not hand out, and allocation from a destroyed pool', () => {
    const m = cleanMachine();
    const a = m.kernel.page_pool_create()!;
    const b = m.kernel.page_pool_create()!;
    const pfn = m.kernel.page_pool_alloc_pages(a);
    expect(() => m.kernel.page_pool_put_page(b, pfn)).toThrow(/not in use from this pool/);
    m.kernel.page_pool_put_page(a, pfn);
    expect(() => m.kernel.page_pool_put_page(a, pfn)).toThrow(/not in use from this pool/);
    expect(() => m.kernel.page_pool_put_page(a, -1)).toThrow(RangeError);
    m.kernel.page_pool_destroy(a);
    expect(() => m.kernel.page_pool_alloc_pages(a)).toThrow(/destroyed/);
    expect(() => m.kernel.page_pool_destroy(a)).toThrow(/already destroyed/);
    expect(() => m.kernel.page_pool_alloc_pages(b, -1)).toThrow(RangeError);
  });
});

describe('destroying', () => {
  it('gives back every page, the ring and the pool', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const objs0 = [inuse(m, 'kmalloc-2k'), inuse(m, 'kmalloc-8k')];
    const pool = m.kernel.page_pool_create({ cpu: 1 })!;
    const pages = allocN(m, pool, 300);
    pages.forEach((pfn, i) => {
      m.kernel.page_pool_put_page(pool, pfn, { allow_direct: i % 2 === 0 });
    });
    m.kernel.page_pool_destroy(pool);
    expect([pool.freed, pool.inflight]).toEqual([true, 0]);
    expect([inuse(m, 'kmalloc-2k'), inuse(m, 'kmalloc-8k')]).toEqual(objs0);
    expect(free0 - freePages(m)).toBe(slabPages(m) - slab0);
    expect(violations(m)).toEqual([]);
  });

  it('keeps the pool until the driver puts back its last page', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const pool = m.kernel.page_pool_create({ order: 2 })!;
    const pages = allocN(m, pool, 10);
    for (const pfn of pages.slice(0, 7)) m.kernel.page_pool_put_page(pool, pfn);
    m.kernel.page_pool_destroy(pool);
    expect([pool.freed, pool.inflight, pool.alloc_count]).toEqual([false, 3, 0]);
    m.kernel.page_pool_put_page(pool, pages[7]);
    m.kernel.page_pool_put_page(pool, pages[8]);
    expect(pool.freed).toBe(false);
    m.kernel.page_pool_put_page(pool, pages[9]);
    expect([pool.freed, pool.inflight]).toEqual([true, 0]);
    expect(free0 - freePages(m)).toBe(slabPages(m) - slab0);
    expect(violations(m)).toEqual([]);
  });
});

describe('memory pressure', () => {
  it('allocates with GFP_ATOMIC, which dips below the min watermark', () => {
    const m = cleanMachine();
    const pool = m.kernel.page_pool_create({ order: 0, pool_size: 16384 })!;
    // Allocate until the pool gets nothing; the last pages came from the atomic reserve.
    let n = 0;
    while (m.kernel.page_pool_alloc_pages(pool, GFP_ATOMIC | __GFP_NOWARN) >= 0) n++;
    const zone = m.mm.zones.find((z) => z.managed_pages > 0 && z.zone_idx === 1)!;
    expect(zone.vm_stat[NR_FREE_PAGES]).toBeLessThan(zone._watermark[0]);
    expect(n).toBeGreaterThan(0);
    expect(m.mm.klog.filter((l) => l.includes('page allocation failure'))).toEqual([]);
    expect(page_pool_check(m.mm, pool)).toEqual([]);
  });
});
