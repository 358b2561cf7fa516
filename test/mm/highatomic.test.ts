/**
 * The highatomic reserve: a high-order atomic allocation made in the slow path sets its pageblock
 * aside (up to about 1% of the zone); the reserve is given back before the allocator gives up.
 */
import { describe, expect, it } from 'vitest';
import { GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOWAIT } from '../../src/mm/gfp.ts';
import { ALLOC_HIGHATOMIC } from '../../src/mm/internal.ts';
import { MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, pageblock_nr_pages, ZONE_DMA32 } from '../../src/mm/mmzone.ts';
import {
  reserve_highatomic_pageblock,
  unreserve_highatomic_pageblock,
} from '../../src/mm/page_alloc/fallback.ts';
import { gfp_to_alloc_flags } from '../../src/mm/page_alloc/rmqueue.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { cleanMachine, violations } from '../helpers.ts';

describe('ALLOC_HIGHATOMIC', () => {
  it('is set only for non-blocking __GFP_HIGH requests above order 0 (6.18)', () => {
    const { mm } = cleanMachine();
    expect(gfp_to_alloc_flags(mm, GFP_ATOMIC, 2) & ALLOC_HIGHATOMIC).toBeTruthy();
    expect(gfp_to_alloc_flags(mm, GFP_ATOMIC, 0) & ALLOC_HIGHATOMIC).toBeFalsy();
    expect(gfp_to_alloc_flags(mm, GFP_NOWAIT, 2) & ALLOC_HIGHATOMIC).toBeFalsy();
    expect(gfp_to_alloc_flags(mm, GFP_KERNEL, 2) & ALLOC_HIGHATOMIC).toBeFalsy();
  });
});

describe('reserve_highatomic_pageblock()', () => {
  it('reserves whole pageblocks up to ALIGN(managed / 100, pageblock_nr_pages)', () => {
    const m = cleanMachine({ memory: '1G' });
    const mm = m.mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const cap = Math.ceil(Math.floor(zone.managed_pages / 100) / pageblock_nr_pages) * pageblock_nr_pages;
    const pfns: number[] = [];
    for (let i = 0; i < 10; i++) pfns.push(m.kernel.alloc_pages(GFP_KERNEL, 9));
    for (const pfn of pfns) reserve_highatomic_pageblock(mm, pfn, 2, zone);
    expect(zone.nr_reserved_highatomic).toBe(cap);
    expect(pfns.filter((p) => get_pfnblock_migratetype(mm, p) === MIGRATE_HIGHATOMIC).length).toBe(
      cap / pageblock_nr_pages,
    );
    // Order-9 frees park on the pcp THP lists (HIGHATOMIC rides on the MOVABLE one) until drained.
    for (const pfn of pfns) m.kernel.free_pages(pfn, 9);
    expect(zone.nr_free_highatomic).toBe(0);
    m.kernel.drain_all_pages();
    expect(zone.nr_free_highatomic).toBe(cap);
    expect(violations(m)).toEqual([]);
  });

  it('happens in the slow path for a GFP_ATOMIC order-2 request once the zone is below its low mark', () => {
    const m = cleanMachine({ memory: '1G' });
    const zone = m.mm.zone(0, ZONE_DMA32);
    // Fill memory with movable pages until even the slow path fails at the min watermark.
    while (m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0) >= 0);
    m.kernel.drain_all_pages();
    expect(zone.vm_stat[0]).toBeLessThan(zone.low_wmark_pages());
    expect(zone.nr_reserved_highatomic).toBe(0);
    const pfn = m.kernel.alloc_pages(GFP_ATOMIC, 2);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(zone.nr_reserved_highatomic).toBe(pageblock_nr_pages);
    expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_HIGHATOMIC);
    expect(violations(m)).toEqual([]);
  });
});

describe('unreserve_highatomic_pageblock()', () => {
  it('keeps the last reserved block unless forced, and converts to the caller’s type', () => {
    const m = cleanMachine({ memory: '1G' });
    const mm = m.mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 9);
    reserve_highatomic_pageblock(mm, pfn, 2, zone);
    m.kernel.free_pages(pfn, 9);
    m.kernel.drain_all_pages();
    const zonelist = mm.nodes[0].zonelist_fallback;
    expect(unreserve_highatomic_pageblock(mm, zonelist, ZONE_DMA32, MIGRATE_MOVABLE, false)).toBe(false);
    expect(unreserve_highatomic_pageblock(mm, zonelist, ZONE_DMA32, MIGRATE_MOVABLE, true)).toBe(true);
    expect(zone.nr_reserved_highatomic).toBe(0);
    expect(zone.nr_free_highatomic).toBe(0);
    expect(get_pfnblock_migratetype(mm, pfn)).toBe(MIGRATE_MOVABLE);
    expect(violations(m)).toEqual([]);
  });
});
