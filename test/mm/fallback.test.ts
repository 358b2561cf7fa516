/**
 * Migratetype fallback (6.15+): small movable requests steal, unmovable and reclaimable requests
 * (and any request finding a block of order >= 4) try to claim the pageblock, claims need half the
 * block free or alike, ALLOC_NOFRAGMENT only takes whole free pageblocks, and each partial claim
 * attempt boosts the watermark.
 */
import { describe, expect, it } from 'vitest';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { ALLOC_KSWAPD, ALLOC_NOFRAGMENT } from '../../src/mm/internal.ts';
import {
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  pageblock_nr_pages,
  ZONE_BOOSTED_WATERMARK,
  ZONE_DMA32,
  ZONE_NORMAL,
} from '../../src/mm/mmzone.ts';
import { __free_one_page } from '../../src/mm/page_alloc/buddy.ts';
import {
  __rmqueue,
  RMQUEUE_NORMAL,
  rmqueue_state,
  should_try_claim_block,
} from '../../src/mm/page_alloc/fallback.ts';
import { PG_lru } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype, set_pageblock_migratetype } from '../../src/mm/pageblock.ts';
import { cleanMachine, markAllocated, takeAll, untake, violations } from '../helpers.ts';

function emptyZone() {
  const m = cleanMachine();
  const mm = m.mm;
  const zone = mm.zone(0, ZONE_DMA32);
  const big = takeAll(mm, zone)
    .filter(([, o]) => o === 10)
    .map(([p]) => p);
  return { m, mm, zone, big };
}

function rmqueue(
  mm: ReturnType<typeof emptyZone>['mm'],
  zone: ReturnType<typeof emptyZone>['zone'],
  order: number,
  mt: number,
  flags = 0,
) {
  rmqueue_state.mode = RMQUEUE_NORMAL;
  return __rmqueue(mm, zone, order, mt, flags);
}

describe('should_try_claim_block()', () => {
  it('is false only for small movable requests', () => {
    const { mm } = emptyZone();
    expect(should_try_claim_block(mm, 3, MIGRATE_MOVABLE)).toBe(false);
    expect(should_try_claim_block(mm, 4, MIGRATE_MOVABLE)).toBe(true);
    expect(should_try_claim_block(mm, 0, MIGRATE_UNMOVABLE)).toBe(true);
    expect(should_try_claim_block(mm, 0, MIGRATE_RECLAIMABLE)).toBe(true);
  });
});

describe('__rmqueue() fallback', () => {
  it('lets a small movable request steal from an UNMOVABLE block without converting it', () => {
    const { mm, zone, big } = emptyZone();
    const p = big[0];
    untake(mm, p);
    markAllocated(mm, p, 1024);
    set_pageblock_migratetype(mm, p, MIGRATE_UNMOVABLE);
    markFree(mm, p + 4, 2);
    __free_one_page(mm, p + 4, zone, 2, MIGRATE_UNMOVABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p + 4);
    expect(get_pfnblock_migratetype(mm, p)).toBe(MIGRATE_UNMOVABLE);
    // The remainders stay on the UNMOVABLE lists.
    expect(mm.frames.list_first(zone.free_list(0, MIGRATE_UNMOVABLE))).toBe(p + 5);
    expect(mm.frames.list_first(zone.free_list(1, MIGRATE_UNMOVABLE))).toBe(p + 6);
  });

  it('lets an unmovable request claim a MOVABLE pageblock that is half free', () => {
    const { mm, zone, big } = emptyZone();
    const p = big[0];
    untake(mm, p);
    markAllocated(mm, p, 1024);
    markFree(mm, p + 256, 8);
    __free_one_page(mm, p + 256, zone, 8, MIGRATE_MOVABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE, ALLOC_KSWAPD)).toBe(p + 256);
    expect(get_pfnblock_migratetype(mm, p)).toBe(MIGRATE_UNMOVABLE);
    expect(get_pfnblock_migratetype(mm, p + 512)).toBe(MIGRATE_MOVABLE);
    // The partial claim boosted the watermark by a pageblock and asked for kswapd.
    expect(zone.watermark_boost).toBe(pageblock_nr_pages);
    expect(zone.flags & ZONE_BOOSTED_WATERMARK).toBeTruthy();
  });

  it('does not claim a MOVABLE block full of LRU pages for an unmovable request: it steals', () => {
    const { mm, zone, big } = emptyZone();
    const p = big[0];
    untake(mm, p);
    markAllocated(mm, p, 512, PG_lru);
    markAllocated(mm, p + 512, 512);
    markFree(mm, p + 128, 7);
    __free_one_page(mm, p + 128, zone, 7, MIGRATE_MOVABLE, 0);
    // free 128 + alike (512 - 128 free - 384 LRU = 0) < 256: no claim.
    expect(rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE)).toBe(p + 128);
    expect(get_pfnblock_migratetype(mm, p)).toBe(MIGRATE_MOVABLE);
  });

  it('lets a movable request claim when it finds a block of order >= 4 among movable pages', () => {
    const { mm, zone, big } = emptyZone();
    const p = big[0];
    untake(mm, p);
    markAllocated(mm, p, 512, PG_lru);
    markAllocated(mm, p + 512, 512);
    set_pageblock_migratetype(mm, p, MIGRATE_UNMOVABLE);
    markFree(mm, p + 32, 5);
    __free_one_page(mm, p + 32, zone, 5, MIGRATE_UNMOVABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p + 32);
    expect(get_pfnblock_migratetype(mm, p)).toBe(MIGRATE_MOVABLE);
  });

  it('under ALLOC_NOFRAGMENT takes only whole free pageblocks and never steals', () => {
    const { mm, zone, big } = emptyZone();
    const [p, q] = big;
    untake(mm, p);
    markAllocated(mm, p, 1024);
    markFree(mm, p + 256, 8);
    __free_one_page(mm, p + 256, zone, 8, MIGRATE_MOVABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE, ALLOC_NOFRAGMENT)).toBe(-1);
    untake(mm, q);
    __free_one_page(mm, q, zone, 10, MIGRATE_MOVABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE, ALLOC_NOFRAGMENT)).toBe(q);
    // A free block above pageblock order changes owner whole: both its pageblocks.
    expect(get_pfnblock_migratetype(mm, q)).toBe(MIGRATE_UNMOVABLE);
    expect(get_pfnblock_migratetype(mm, q + 512)).toBe(MIGRATE_UNMOVABLE);
    expect(zone.watermark_boost).toBe(0);
  });

  it('prefers the RECLAIMABLE fallback for unmovable requests', () => {
    const { mm, zone, big } = emptyZone();
    const [p, q] = big;
    untake(mm, p);
    untake(mm, q);
    set_pageblock_migratetype(mm, q, MIGRATE_RECLAIMABLE);
    __free_one_page(mm, p, zone, 9, MIGRATE_MOVABLE, 0);
    __free_one_page(mm, q, zone, 9, MIGRATE_RECLAIMABLE, 0);
    expect(rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE)).toBe(q);
  });
});

describe('the allocator end to end', () => {
  it('keeps a small unmovable allocation out of movable pageblocks by claiming a whole free block', () => {
    const m = cleanMachine({ memory: '6G' });
    const normal = m.mm.zone(0, ZONE_NORMAL);
    const before = countTypes(m, normal);
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
    expect(normal.zone_spans_pfn(pfn)).toBe(true);
    const after = countTypes(m, normal);
    expect(after[MIGRATE_UNMOVABLE] - before[MIGRATE_UNMOVABLE]).toBe(2);
    expect(violations(m)).toEqual([]);
  });
});

function countTypes(
  m: ReturnType<typeof cleanMachine>,
  zone: { zone_start_pfn: number; zone_end_pfn: number },
): number[] {
  const counts = [0, 0, 0, 0, 0, 0];
  for (let pfn = zone.zone_start_pfn; pfn < zone.zone_end_pfn; pfn += 512)
    counts[get_pfnblock_migratetype(m.mm, pfn)]++;
  return counts;
}

/** Clear the allocated marks of a block about to be freed by hand. */
function markFree(mm: ReturnType<typeof emptyZone>['mm'], pfn: number, order: number): void {
  for (let p = pfn; p < pfn + (1 << order); p++) untake(mm, p);
}
