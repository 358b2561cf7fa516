/**
 * deferred_init=lazy, as our machines boot (real-kernel-notes §1): zone Normal starts with one
 * 128 MiB section initialised and grows a section at a time (deferred_grow_zone()) when an
 * allocation fails its watermark or finds no block of its order, instead of reclaiming or
 * compacting; the watermarks follow the grown managed size, as measured on the real kernel.
 */
import { describe, expect, it } from 'vitest';
import { __GFP_COMP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { PAGES_PER_SECTION, ZONE_NORMAL } from '../../src/mm/mmzone.ts';
import { Machine } from '../../src/sim/machine.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { vmstat } from '../vm/helpers.ts';

const GiB = 2 ** 30;

function lazy(memory = '8G'): Machine {
  return Machine.boot({ memory, cpus: 2, deferred_init: 'lazy' });
}

/** Normal's blocks as /proc/pagetypeinfo counts them. */
function normalBlocks(m: Machine): number {
  const line = m
    .readFile('/proc/pagetypeinfo')
    .split('\n')
    .filter((l) => l.startsWith('Node 0, zone   Normal '))
    .at(-1)!;
  return line
    .split(/\s+/)
    .slice(4)
    .filter(Boolean)
    .reduce((s, n) => s + Number(n), 0);
}

describe('deferred_init=lazy', () => {
  it('boots with one section of Normal initialised; spanned and present stay whole', () => {
    const m = lazy();
    const eager = Machine.boot({ memory: '8G', cpus: 2 });
    const normal = m.mm.zone(0, ZONE_NORMAL);
    const full = eager.mm.zone(0, ZONE_NORMAL);
    expect(normal.managed_pages).toBe(PAGES_PER_SECTION);
    expect(normal.present_pages).toBe(full.present_pages);
    expect(normal.spanned_pages).toBe(full.spanned_pages);
    // pagetypeinfo counts only the initialised blocks (page_zone() of the rest is not Normal):
    // the first section's and those of reserved pages (the memmap at the top of the node).
    expect(normalBlocks(m)).toBeGreaterThanOrEqual(PAGES_PER_SECTION / 512);
    expect(normalBlocks(eager)).toBeGreaterThan(10 * normalBlocks(m));
    // The watermarks follow the small managed size.
    expect(normal.min_wmark_pages()).toBeLessThan(full.min_wmark_pages() / 10);
    expect(m.invariantViolations()).toEqual([]);
    // /proc/meminfo counts the uninitialised pages in MemTotal and MemFree, as the real kernel
    // does (MemTotal stays 24684084 kB on our 24 GiB machines however far Normal has grown).
    const kB = (mm: Machine, k: string): number =>
      Number(new RegExp(`^${k}: +(\\d+) kB$`, 'm').exec(mm.readFile('/proc/meminfo'))![1]);
    expect(kB(m, 'MemTotal')).toBe(kB(eager, 'MemTotal'));
    expect(kB(m, 'MemFree') - kB(eager, 'MemFree')).toBeLessThan(64 * 1024);
    expect(kB(eager, 'MemFree') - kB(m, 'MemFree')).toBeLessThan(64 * 1024);
    // Uninitialised pages show no flags in /proc/kpageflags.
    const pfn = normal.zone_start_pfn + 2 * PAGES_PER_SECTION;
    const word = m.readFileBytes('/proc/kpageflags', { offset: pfn * 8, length: 8 });
    expect([...word]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('grows Normal a section at a time as memory is used, recomputing the watermarks', () => {
    const m = lazy();
    const normal = m.mm.zone(0, ZONE_NORMAL);
    const p = m.spawn();
    for (let i = 0; i < 8; i++) {
      const a = p.mmap(0, GiB / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      p.touch(a, GiB / 2, { write: true });
    }
    expect(normal.managed_pages % PAGES_PER_SECTION).toBe(0);
    expect(normal.managed_pages).toBeGreaterThan(PAGES_PER_SECTION * 8);
    // Growing instead of reclaiming: no reclaim or compaction happened.
    expect(vmstat(m, 'pgscan_kswapd') + vmstat(m, 'pgscan_direct')).toBe(0);
    expect(vmstat(m, 'compact_stall')).toBe(0);
    // Once all of Normal is in, the marks are those of a machine booted with everything.
    const rest = m.mm.nodes[0].first_deferred_pfn;
    const eager = Machine.boot({ memory: '8G', cpus: 2 });
    while (m.mm.nodes[0].first_deferred_pfn !== Number.POSITIVE_INFINITY)
      m.kernel.alloc_pages(GFP_KERNEL, 10);
    expect(rest).toBeLessThan(normal.zone_end_pfn);
    expect(normal.managed_pages).toBe(eager.mm.zone(0, ZONE_NORMAL).managed_pages);
    expect(normal.min_wmark_pages()).toBe(eager.mm.zone(0, ZONE_NORMAL).min_wmark_pages());
    expect(m.invariantViolations()).toEqual([]);
  });

  it('serves an order-9 request from a new section when no free block is large enough', () => {
    const m = lazy();
    const normal = m.mm.zone(0, ZONE_NORMAL);
    // Take every free block of order 9 or more in Normal (and below it, so nothing falls back).
    const THP = GFP_HIGHUSER_MOVABLE | __GFP_COMP;
    const managed = normal.managed_pages;
    while (normal.nr_free.slice(9).some((n) => n > 0)) m.kernel.alloc_pages(THP, 9);
    const grown = normal.managed_pages;
    expect(grown).toBeGreaterThanOrEqual(managed);
    const pfn = m.kernel.alloc_pages(THP, 9);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(normal.managed_pages).toBeGreaterThan(grown);
    expect(vmstat(m, 'compact_stall')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('leaves CMA areas in the deferred part to CMA: growing never frees their pages again', () => {
    const m = Machine.boot({ memory: '8G', cpus: 2, deferred_init: 'lazy', cma: '256M' });
    expect(m.invariantViolations()).toEqual([]);
    while (m.mm.nodes[0].first_deferred_pfn !== Number.POSITIVE_INFINITY)
      m.kernel.alloc_pages(GFP_KERNEL, 10);
    expect(m.mm.nodes[0].nr_deferred_pages).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    expect(m.readFile('/proc/meminfo')).toMatch(/^CmaTotal: +262144 kB$/m);
  });

  it('is off by default: everything is initialised at boot', () => {
    const m = Machine.boot({ memory: '8G', cpus: 2 });
    expect(m.mm.nodes[0].first_deferred_pfn).toBe(Number.POSITIVE_INFINITY);
    expect(() => Machine.boot({ memory: '8G', deferred_init: 'later' as never })).toThrow(/deferred_init/);
  });
});
