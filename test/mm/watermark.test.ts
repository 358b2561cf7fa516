/**
 * Watermark checks: order-0 needs free pages above mark + lowmem reserve; a high-order request
 * also needs a free block of that order on a list it may use; highatomic and CMA free pages only
 * count for callers that may use them.
 */
import { describe, expect, it } from 'vitest';
import {
  ALLOC_CMA,
  ALLOC_HIGHATOMIC,
  ALLOC_MIN_RESERVE,
  ALLOC_NON_BLOCK,
  ALLOC_OOM,
  ALLOC_WMARK_LOW,
} from '../../src/mm/internal.ts';
import {
  MIGRATE_HIGHATOMIC,
  MIGRATE_MOVABLE,
  ZONE_DMA,
  ZONE_DMA32,
  ZONE_NORMAL,
} from '../../src/mm/mmzone.ts';
import { __free_one_page } from '../../src/mm/page_alloc/buddy.ts';
import { __zone_watermark_ok, zone_watermark_fast } from '../../src/mm/page_alloc/watermark.ts';
import { set_pageblock_migratetype } from '../../src/mm/pageblock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, takeAll, untake } from '../helpers.ts';

describe('__zone_watermark_ok()', () => {
  it('needs a block of the requested order even when free pages abound', () => {
    const m = cleanMachine();
    const mm = m.mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const taken = takeAll(mm, zone);
    // Give back every order-10 block split into order-3 pieces: plenty of pages, nothing above order 3.
    for (const [p, o] of taken) {
      if (o !== 10) continue;
      untake(mm, p);
      for (let q = p; q < p + 1024; q += 16) __free_one_page(mm, q, zone, 3, MIGRATE_MOVABLE, 0);
    }
    const free = zone.vm_stat[0];
    expect(free).toBeGreaterThan(zone.high_wmark_pages() * 2);
    expect(__zone_watermark_ok(mm, zone, 3, zone.low_wmark_pages(), ZONE_DMA32, 0, free)).toBe(true);
    expect(__zone_watermark_ok(mm, zone, 4, zone.low_wmark_pages(), ZONE_DMA32, 0, free)).toBe(false);
  });

  it('lets __GFP_HIGH dip to half of min, atomic callers to 3/8 and OOM victims further', () => {
    const m = cleanMachine();
    const zone = m.mm.zone(0, ZONE_DMA32);
    const mark = 1000;
    const ok = (free: number, flags: number) =>
      __zone_watermark_ok(m.mm, zone, 0, mark, ZONE_DMA32, flags, free);
    expect(ok(1001, 0)).toBe(true);
    expect(ok(1000, 0)).toBe(false);
    expect(ok(501, ALLOC_MIN_RESERVE)).toBe(true);
    expect(ok(500, ALLOC_MIN_RESERVE)).toBe(false);
    expect(ok(376, ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK)).toBe(true); // 1000 - 500 - 125 = 375
    expect(ok(375, ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK)).toBe(false);
    expect(ok(501, ALLOC_OOM)).toBe(true);
  });

  it('adds the lowmem reserve of the requested highest zone', () => {
    const m = Machine.boot({ memory: '24G', kernel: { CMA: false } });
    const dma = m.mm.zone(0, ZONE_DMA);
    const free = dma.vm_stat[0];
    // DMA keeps 3019+ pages against Normal-capable requests, more than it has.
    expect(__zone_watermark_ok(m.mm, dma, 0, dma.min_wmark_pages(), ZONE_DMA, 0, free)).toBe(true);
    expect(__zone_watermark_ok(m.mm, dma, 0, dma.min_wmark_pages(), ZONE_NORMAL, 0, free)).toBe(false);
  });

  it('does not count free highatomic pages for ordinary callers', () => {
    const m = cleanMachine();
    const mm = m.mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const taken = takeAll(mm, zone);
    const [p] = taken.find(([, o]) => o === 10)!;
    untake(mm, p);
    set_pageblock_migratetype(mm, p, MIGRATE_HIGHATOMIC);
    __free_one_page(mm, p, zone, 9, MIGRATE_HIGHATOMIC, 0);
    expect(zone.nr_free_highatomic).toBe(512);
    const free = zone.vm_stat[0];
    expect(__zone_watermark_ok(mm, zone, 0, 100, ZONE_DMA32, 0, free)).toBe(false);
    expect(__zone_watermark_ok(mm, zone, 0, 100, ZONE_DMA32, ALLOC_HIGHATOMIC, free)).toBe(true);
    // And a high-order request finds the HIGHATOMIC block only with ALLOC_HIGHATOMIC or ALLOC_OOM.
    expect(__zone_watermark_ok(mm, zone, 9, 0, ZONE_DMA32, ALLOC_HIGHATOMIC, free)).toBe(true);
    expect(__zone_watermark_ok(mm, zone, 9, 0, ZONE_DMA32, ALLOC_CMA | ALLOC_MIN_RESERVE, free)).toBe(false);
  });
});

describe('zone_watermark_fast()', () => {
  it('ignores the boost for order-0 __GFP_HIGH requests at the min mark', () => {
    const m = cleanMachine();
    const zone = m.mm.zone(0, ZONE_DMA32);
    zone.watermark_boost = 3 * zone.vm_stat[0];
    const mark = zone.min_wmark_pages();
    expect(zone_watermark_fast(m.mm, zone, 0, mark, ZONE_DMA32, 0)).toBe(false);
    expect(zone_watermark_fast(m.mm, zone, 0, mark, ZONE_DMA32, ALLOC_MIN_RESERVE)).toBe(true);
    expect(
      zone_watermark_fast(
        m.mm,
        zone,
        0,
        zone.low_wmark_pages(),
        ZONE_DMA32,
        ALLOC_MIN_RESERVE | ALLOC_WMARK_LOW,
      ),
    ).toBe(false);
  });
});
