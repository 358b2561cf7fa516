/**
 * SLUB's placement and list rules (mm/slub.c, Linux 6.18): objects come from the CPU's slab in
 * address order; a full slab leaves the CPU; the first free into a full slab puts it on the
 * freeing CPU's partial list, which spills to the node partial list when it holds
 * cpu_partial_slabs; empty slabs go back to the buddy allocator only while the node keeps
 * min_partial partial slabs; slabs are compound pages that claim pageblocks of the cache's
 * mobility; the preferred order falls back to s->min; kmalloc_large() bypasses the caches.
 */
import { describe, expect, it } from 'vitest';
import { __GFP_DMA, __GFP_RECLAIMABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import type { MM } from '../../src/mm/mm.ts';
import { MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, PAGE_SIZE, ZONE_DMA } from '../../src/mm/mmzone.ts';
import { PG_head, PG_slab, PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import {
  type KmemCache,
  MAX_CACHES,
  NULL,
  slab_check,
  virt_to_slab,
  ZERO_SIZE_PTR,
} from '../../src/mm/slab.ts';
import { SLAB_RECLAIM_ACCOUNT } from '../../src/mm/slab_flags.ts';
import { node_stat_index } from '../../src/mm/vmstat_items.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, markAllocated, takeAll, untake, violations } from '../helpers.ts';

const UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');
const RECLAIMABLE = node_stat_index('nr_slab_reclaimable');

function slotOf(mm: MM, h: number): number {
  const ref = virt_to_slab(mm, h);
  expect(ref).toBeGreaterThanOrEqual(0);
  return Math.floor(ref / MAX_CACHES);
}
function stateOf(m: Machine, s: KmemCache, h: number): string {
  return s.state_of(slotOf(m.mm, h));
}
function consistent(m: Machine): void {
  expect(slab_check(m.mm)).toEqual([]);
  expect(violations(m)).toEqual([]);
}
/** A 4 KiB-object cache: order 3, 8 per slab, min_partial 6, cpu_partial_slabs 2. */
function cache4k(m: Machine): KmemCache {
  const s = m.kernel.kmem_cache_create('test-4k', 4096);
  expect([s.oo_order, s.oo_objects, s.min_partial, s.cpu_partial_slabs]).toEqual([3, 8, 6, 2]);
  return s;
}
/** Allocate `n` objects of `s` on `cpu`. */
function alloc(m: Machine, s: KmemCache, n: number, cpu = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const h = m.kernel.kmem_cache_alloc(s, GFP_KERNEL, { cpu });
    expect(h).not.toBe(NULL);
    out.push(h);
  }
  return out;
}

describe('object placement', () => {
  it('hands out a new slab’s objects in address order; handles are physical addresses', () => {
    const m = cleanMachine();
    const s = m.kernel.kmem_cache('dentry')!;
    const hs = alloc(m, s, 3);
    const pfn = Math.floor(hs[0] / PAGE_SIZE);
    expect(hs).toEqual([pfn * PAGE_SIZE, pfn * PAGE_SIZE + 192, pfn * PAGE_SIZE + 384]);
    expect(m.mm.frames.flags[pfn] & (PG_slab | PGI_alloc)).toBe(PG_slab | PGI_alloc);
    expect(stateOf(m, s, hs[0])).toBe('cpu');
    consistent(m);
  });

  it('reuses the most recently freed object first (LIFO freelist)', () => {
    const m = cleanMachine();
    const s = m.kernel.kmem_cache('kmalloc-64')!;
    const hs = alloc(m, s, 4);
    m.kernel.kmem_cache_free(s, hs[1]);
    m.kernel.kmem_cache_free(s, hs[2]);
    expect(alloc(m, s, 2)).toEqual([hs[2], hs[1]]);
    consistent(m);
  });

  it('makes slabs compound pages of the cache’s order, PG_slab on every page', () => {
    const m = cleanMachine();
    const s = cache4k(m);
    const [h] = alloc(m, s, 1);
    const pfn = h / PAGE_SIZE;
    expect(pfn % 8).toBe(0);
    expect(m.mm.frames.order[pfn]).toBe(3);
    expect(m.mm.frames.flags[pfn] & PG_head).toBe(PG_head);
    for (let p = pfn; p < pfn + 8; p++) expect(m.mm.frames.flags[p] & PG_slab).toBe(PG_slab);
    // Any address inside the slab resolves to it; the object index is the offset / size.
    expect(virt_to_slab(m.mm, h + 5 * 4096 + 100)).toBe(virt_to_slab(m.mm, h));
    expect(m.mm.nodes[0].vm_stat[UNRECLAIMABLE]).toBe(8);
    consistent(m);
  });

  it('claims UNMOVABLE pageblocks for ordinary caches and RECLAIMABLE ones for SLAB_RECLAIM_ACCOUNT', () => {
    const m = cleanMachine();
    const plain = alloc(m, m.kernel.kmem_cache('kmalloc-128')!, 1)[0];
    const rcl = m.kernel.kmalloc(100, GFP_KERNEL | __GFP_RECLAIMABLE);
    const dentry = m.kernel.d_alloc(GFP_KERNEL);
    expect(get_pfnblock_migratetype(m.mm, plain / PAGE_SIZE)).toBe(MIGRATE_UNMOVABLE);
    expect(get_pfnblock_migratetype(m.mm, Math.floor(rcl / PAGE_SIZE))).toBe(MIGRATE_RECLAIMABLE);
    expect(get_pfnblock_migratetype(m.mm, Math.floor(dentry / PAGE_SIZE))).toBe(MIGRATE_RECLAIMABLE);
    expect(m.kernel.kmem_cache('dentry')!.flags & SLAB_RECLAIM_ACCOUNT).toBeTruthy();
    expect(m.mm.nodes[0].vm_stat[RECLAIMABLE]).toBe(2);
    expect(m.mm.nodes[0].vm_stat[UNRECLAIMABLE]).toBe(1);
    consistent(m);
  });

  it('puts dma-kmalloc slabs in ZONE_DMA', () => {
    const m = cleanMachine();
    const h = m.kernel.kmalloc(200, GFP_KERNEL | __GFP_DMA);
    expect(m.mm.page_zone(Math.floor(h / PAGE_SIZE))!.zone_idx).toBe(ZONE_DMA);
    expect(m.mm.slab.by_id[virt_to_slab(m.mm, h) % MAX_CACHES]!.name).toBe('dma-kmalloc-256');
    consistent(m);
  });
});

describe('cpu slab, cpu partial and node partial lists', () => {
  it('keeps a cpu slab frozen however many objects are freed into it', () => {
    const m = cleanMachine();
    const s = cache4k(m);
    const hs = alloc(m, s, 3);
    for (const h of hs) m.kernel.kmem_cache_free(s, h, { cpu: 1 });
    expect(s.nr_slabs[0]).toBe(1);
    expect(s.cpu_slab[0]).toBe(slotOf(m.mm, hs[0]));
    consistent(m);
  });

  it('lets a full slab leave the CPU and puts it on the freeing CPU’s partial list at its first free', () => {
    const m = cleanMachine();
    const s = cache4k(m);
    const a = alloc(m, s, 8);
    const b = alloc(m, s, 1);
    expect(stateOf(m, s, a[0])).toBe('full');
    expect(stateOf(m, s, b[0])).toBe('cpu');
    m.kernel.kmem_cache_free(s, a[3], { cpu: 1 });
    expect(stateOf(m, s, a[0])).toBe('cpu_partial');
    expect(s.slab_cpu[slotOf(m.mm, a[0])]).toBe(1);
    expect(s.cpu_partial_nr[1]).toBe(1);
    // A second free changes no list; CPU 1 allocates from its partial slab next.
    m.kernel.kmem_cache_free(s, a[4], { cpu: 0 });
    expect(alloc(m, s, 1, 1)).toEqual([a[4]]);
    expect(stateOf(m, s, a[0])).toBe('cpu');
    consistent(m);
  });

  it('spills a cpu partial list holding cpu_partial_slabs to the node list’s tail', () => {
    const m = cleanMachine();
    const s = cache4k(m);
    const slabs = [alloc(m, s, 8), alloc(m, s, 8), alloc(m, s, 8)];
    alloc(m, s, 1); // the last full slab leaves cpu 0
    for (const hs of slabs) m.kernel.kmem_cache_free(s, hs[0], { cpu: 1 });
    // Two slabs filled cpu 1's list; the third free moved them to node 0 and started a new list.
    expect(s.cpu_partial_nr[1]).toBe(1);
    expect(stateOf(m, s, slabs[2][0])).toBe('cpu_partial');
    expect(s.nr_partial[0]).toBe(2);
    expect(s.partial_head[0]).toBe(slotOf(m.mm, slabs[1][0])); // pushed last onto cpu 1's list, first off it
    expect(s.partial_tail[0]).toBe(slotOf(m.mm, slabs[0][0]));
    consistent(m);
  });

  it('frees an empty node-partial slab only while the node holds min_partial partial slabs', () => {
    const m = cleanMachine();
    const s = cache4k(m); // min_partial 6
    const slabs: number[][] = [];
    for (let i = 0; i < 8; i++) slabs.push(alloc(m, s, 8));
    // Move 8 slabs to node 0's partial list, one free each (cpu 1's list spills every 2; the
    // last, still cpu 0's slab, is deactivated by the flush).
    for (const hs of slabs) m.kernel.kmem_cache_free(s, hs[0], { cpu: 1 });
    m.kernel.kmem_cache_shrink(s, { cpu: 1 }); // flush cpu lists; nothing is empty yet
    expect(s.nr_partial[0]).toBe(8);
    const pages = () => m.mm.nodes[0].vm_stat[UNRECLAIMABLE];
    const before = pages();
    // Empty slabs one by one: freed while nr_partial >= 6 before the removal.
    for (let i = 0; i < 4; i++) for (const h of slabs[i].slice(1)) m.kernel.kmem_cache_free(s, h, { cpu: 1 });
    expect(s.nr_partial[0]).toBe(5); // 8, 7, 6 freed three; at 5 the fourth stays, empty
    expect(pages()).toBe(before - 3 * 8);
    expect(stateOf(m, s, slabs[3][1])).toBe('node_partial');
    expect(s.slab_inuse[slotOf(m.mm, slabs[3][1])]).toBe(0);
    // kmem_cache_shrink() frees empty slabs whatever min_partial says.
    m.kernel.kmem_cache_shrink(s);
    expect(s.nr_partial[0]).toBe(4);
    expect(pages()).toBe(before - 4 * 8);
    consistent(m);
  });

  it('takes a partial slab as the cpu slab and up to cpu_partial_slabs / 2 more onto the cpu list', () => {
    const m = cleanMachine();
    const s = m.kernel.kmem_cache('dentry')!; // cpu_partial_slabs 12: six extra slabs + 1
    expect(s.cpu_partial_slabs).toBe(12);
    const slabs: number[][] = [];
    for (let i = 0; i < 10; i++) slabs.push(alloc(m, s, 21));
    for (const hs of slabs) m.kernel.kmem_cache_free(s, hs[0], { cpu: 1 });
    m.kernel.kmem_cache_shrink(s);
    expect(s.nr_partial[0]).toBe(10);
    alloc(m, s, 1, 0);
    expect(s.nr_partial[0]).toBe(10 - 1 - 7);
    expect(s.cpu_partial_nr[0]).toBe(7);
    consistent(m);
  });

  it('deactivates the cpu slab when a node-specific request names another node', () => {
    const m = cleanMachine({ memory: '512M', nodes: 2, cpus: 2 });
    const s = m.kernel.kmem_cache('kmalloc-256')!;
    const a = m.kernel.kmem_cache_alloc(s, GFP_KERNEL, { cpu: 0 });
    const b = m.kernel.kmem_cache_alloc(s, GFP_KERNEL, { cpu: 0, nid: 1 });
    expect(m.mm.page_zone(a / PAGE_SIZE)!.nid).toBe(0);
    expect(m.mm.page_zone(Math.floor(b / PAGE_SIZE))!.nid).toBe(1);
    expect(stateOf(m, s, a)).toBe('node_partial');
    expect(s.nr_partial[0]).toBe(1);
    consistent(m);
  });
});

describe('allocate_slab', () => {
  /** Take every free block, then free every even page: plenty of memory, nothing above order 0. */
  function fragment(m: Machine): void {
    const taken = m.mm.zones.flatMap((z) => takeAll(m.mm, z));
    for (const [pfn, order] of taken) {
      untake(m.mm, pfn);
      markAllocated(m.mm, pfn, 1 << order);
      for (let p = pfn; p < pfn + (1 << order); p++) if (p % 2 === 0) m.kernel.free_pages(p, 0);
    }
  }

  it('falls back to s->min when no block of the preferred order is free', () => {
    const m = cleanMachine({ memory: '128M', cpus: 1 });
    const s = cache4k(m);
    fragment(m);
    const h = m.kernel.kmem_cache_alloc(s, GFP_KERNEL);
    expect(h).not.toBe(NULL);
    expect(s.order_fallback).toBe(1);
    expect(s.slab_order[slotOf(m.mm, h)]).toBe(0);
    expect(s.slab_objects[slotOf(m.mm, h)]).toBe(1);
    consistent(m);
  });

  it('returns NULL and logs slab_out_of_memory() when not even s->min can be had', () => {
    const m = cleanMachine({ memory: '128M', cpus: 1 });
    const s = cache4k(m);
    for (const z of m.mm.zones) takeAll(m.mm, z);
    expect(m.kernel.kmem_cache_alloc(s, GFP_KERNEL)).toBe(NULL);
    expect(m.mm.klog.some((l) => l.startsWith('SLUB: Unable to allocate memory on node -1'))).toBe(true);
    expect(slab_check(m.mm)).toEqual([]);
  });
});

describe('kmalloc and kfree', () => {
  it('serves sizes up to 8 KiB from the caches and larger ones as compound pages', () => {
    const m = cleanMachine();
    const small = m.kernel.kmalloc(8192, GFP_KERNEL);
    expect(m.mm.slab.by_id[virt_to_slab(m.mm, small) % MAX_CACHES]!.name).toBe('kmalloc-8k');
    const large = m.kernel.kmalloc(8193, GFP_KERNEL);
    const pfn = large / PAGE_SIZE;
    expect(Number.isInteger(pfn)).toBe(true);
    expect(m.mm.frames.order[pfn]).toBe(2);
    expect(m.mm.frames.flags[pfn] & (PG_slab | PG_head | PGI_alloc)).toBe(PG_head | PGI_alloc);
    expect(m.kernel.ksize(large)).toBe(16384);
    expect(m.kernel.ksize(small)).toBe(8192);
    // kmalloc_large is counted as unreclaimable slab, whatever the GFP flags say.
    const node = m.mm.nodes[0].vm_stat;
    expect(node[UNRECLAIMABLE]).toBe(8 + 4);
    const rcl = m.kernel.kmalloc(100_000, GFP_KERNEL | __GFP_RECLAIMABLE);
    expect(m.mm.frames.order[rcl / PAGE_SIZE]).toBe(5);
    expect(node[UNRECLAIMABLE]).toBe(8 + 4 + 32);
    consistent(m);
    m.kernel.kfree(large);
    m.kernel.kfree(rcl);
    m.kernel.kfree(small);
    expect(node[UNRECLAIMABLE]).toBe(8); // the kmalloc-8k slab stays as the cpu slab
    consistent(m);
  });

  it('returns ZERO_SIZE_PTR for 0 bytes and NULL beyond KMALLOC_MAX_SIZE; kfree ignores both', () => {
    const m = cleanMachine();
    expect(m.kernel.kmalloc(0, GFP_KERNEL)).toBe(ZERO_SIZE_PTR);
    expect(m.kernel.kmalloc(5 << 20, GFP_KERNEL)).toBe(NULL);
    m.kernel.kfree(ZERO_SIZE_PTR);
    m.kernel.kfree(NULL);
    expect(() => m.kernel.kmalloc(-1, GFP_KERNEL)).toThrow(RangeError);
    consistent(m);
  });

  it('refuses double frees and addresses it never returned', () => {
    const m = cleanMachine();
    const h = m.kernel.kmalloc(40, GFP_KERNEL);
    m.kernel.kfree(h);
    expect(() => m.kernel.kfree(h)).toThrow(/double free/);
    expect(() => m.kernel.kfree(h + 8)).toThrow(/not the start of an object/);
    expect(() => m.kernel.kfree(4096 * 300)).toThrow(/not returned by kmalloc/);
    const s = m.kernel.kmem_cache('dentry')!;
    const d = m.kernel.kmalloc(192, GFP_KERNEL);
    expect(() => m.kernel.kmem_cache_free(s, d)).toThrow(/belongs to cache kmalloc-192/);
    consistent(m);
  });
});

describe('kmem_cache_create and kmem_cache_destroy', () => {
  it('validates its arguments', () => {
    const m = cleanMachine();
    expect(() => m.kernel.kmem_cache_create('', 64)).toThrow(RangeError);
    expect(() => m.kernel.kmem_cache_create('x', 0)).toThrow(RangeError);
    expect(() => m.kernel.kmem_cache_create('x', 64, { align: 24 })).toThrow(RangeError);
  });

  it('refuses to destroy a cache with objects, warning and leaking it as the kernel does', () => {
    const m = cleanMachine();
    const s = m.kernel.kmem_cache_create('leaky', 100);
    const h = m.kernel.kmem_cache_alloc(s, GFP_KERNEL);
    expect(m.kernel.kmem_cache_destroy(s)).toBe(false);
    expect(m.mm.klog.at(-1)).toMatch(/kmem_cache_destroy leaky: Slab cache still has objects/);
    expect(m.kernel.kmem_cache('leaky')).toBeUndefined();
    m.kernel.kmem_cache_free(s, h);
    consistent(m);
  });

  it('gives every page back when an empty cache is destroyed', () => {
    const m = cleanMachine();
    const s = m.kernel.kmem_cache_create('tidy', 1000);
    const hs = alloc(m, s, 100);
    for (const h of hs) m.kernel.kmem_cache_free(s, h, { cpu: 1 });
    expect(m.mm.nodes[0].vm_stat[UNRECLAIMABLE]).toBeGreaterThan(0);
    expect(m.kernel.kmem_cache_destroy(s)).toBe(true);
    expect(m.mm.nodes[0].vm_stat[UNRECLAIMABLE]).toBe(0);
    expect(m.mm.slab.by_id[s.id]).toBeNull();
    expect(() => m.kernel.kmem_cache_destroy(m.kernel.kmem_cache('kmalloc-64')!)).toThrow(/permanent/);
    consistent(m);
  });
});
