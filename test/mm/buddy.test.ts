/**
 * The buddy rules: where a split's remainder goes, which end of a list a freed block joins, and
 * when blocks merge across pageblocks.
 */
import { describe, expect, it } from 'vitest';
import { FPI_TO_TAIL } from '../../src/mm/internal.ts';
import {
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_UNMOVABLE,
  ZONE_DMA32,
} from '../../src/mm/mmzone.ts';
import { __free_one_page, __rmqueue_smallest } from '../../src/mm/page_alloc/buddy.ts';
import {
  get_pfnblock_migratetype,
  set_pageblock_isolate,
  set_pageblock_migratetype,
} from '../../src/mm/pageblock.ts';
import { NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS } from '../../src/mm/vmstat_items.ts';
import { cleanMachine, takeAll, untake, violations } from '../helpers.ts';

function setup() {
  const m = cleanMachine();
  const mm = m.mm;
  const zone = mm.zone(0, ZONE_DMA32);
  const taken = takeAll(mm, zone);
  const big = taken.filter(([, o]) => o === 10).map(([p]) => p);
  return { m, mm, zone, big };
}

describe('expand(): splitting a block', () => {
  it('hands out the lowest pages and puts each upper half at the head of its order', () => {
    const { mm, zone, big } = setup();
    const p = big[0];
    untake(mm, p);
    __free_one_page(mm, p, zone, 10, MIGRATE_MOVABLE, 0);
    expect(__rmqueue_smallest(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p);
    for (let order = 9; order >= 0; order--) {
      expect(mm.frames.list_first(zone.free_list(order, MIGRATE_MOVABLE)), `order ${order}`).toBe(
        p + (1 << order),
      );
    }
    // Sequential allocations then come out physically ascending.
    expect(__rmqueue_smallest(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p + 1);
    expect(__rmqueue_smallest(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p + 2);
    expect(__rmqueue_smallest(mm, zone, 0, MIGRATE_MOVABLE)).toBe(p + 3);
    expect(__rmqueue_smallest(mm, zone, 1, MIGRATE_MOVABLE)).toBe(p + 4);
  });

  it('counts only the pages handed out as no longer free', () => {
    const { mm, zone, big } = setup();
    untake(mm, big[0]);
    __free_one_page(mm, big[0], zone, 10, MIGRATE_MOVABLE, 0);
    expect(zone.vm_stat[NR_FREE_PAGES]).toBe(1024);
    __rmqueue_smallest(mm, zone, 3, MIGRATE_MOVABLE);
    expect(zone.vm_stat[NR_FREE_PAGES]).toBe(1016);
    // Of the remainders only the order-9 block is a whole free pageblock.
    expect(zone.vm_stat[NR_FREE_PAGES_BLOCKS]).toBe(512);
  });
});

describe('__free_one_page(): merging', () => {
  it('merges free buddies up to MAX_PAGE_ORDER', () => {
    const { m, mm, zone, big } = setup();
    const p = big[0];
    untake(mm, p);
    for (let i = 0; i < 1024; i++) __free_one_page(mm, p + i, zone, 0, MIGRATE_MOVABLE, 0);
    expect(zone.nr_free[10]).toBe(1);
    expect(zone.nr_free.slice(0, 10).every((n) => n === 0)).toBe(true);
    takeBackOthers(m, big.slice(1));
    expect(violations(m)).toEqual([]);
  });

  it('merges two pageblocks of different mergeable types and retypes the buddy', () => {
    const { mm, zone, big } = setup();
    const p = big[0];
    untake(mm, p);
    set_pageblock_migratetype(mm, p + 512, MIGRATE_UNMOVABLE);
    __free_one_page(mm, p + 512, zone, 9, MIGRATE_UNMOVABLE, 0);
    expect(zone.nr_free[9]).toBe(1);
    __free_one_page(mm, p, zone, 9, MIGRATE_MOVABLE, 0);
    expect(zone.nr_free[10]).toBe(1);
    expect(mm.frames.list_first(zone.free_list(10, MIGRATE_MOVABLE))).toBe(p);
    expect(get_pfnblock_migratetype(mm, p + 512)).toBe(MIGRATE_MOVABLE);
  });

  for (const [name, mt] of [
    ['HIGHATOMIC', MIGRATE_HIGHATOMIC],
    ['CMA', MIGRATE_CMA],
  ] as const) {
    it(`never merges a ${name} pageblock with another type`, () => {
      const { mm, zone, big } = setup();
      const p = big[0];
      untake(mm, p);
      set_pageblock_migratetype(mm, p + 512, mt);
      __free_one_page(mm, p + 512, zone, 9, mt, 0);
      __free_one_page(mm, p, zone, 9, MIGRATE_MOVABLE, 0);
      expect(zone.nr_free[10]).toBe(0);
      expect(zone.nr_free[9]).toBe(2);
      expect(mm.frames.list_first(zone.free_list(9, mt))).toBe(p + 512);
    });
  }

  it('never merges into an isolated pageblock, whose free pages are not counted free', () => {
    const { mm, zone, big } = setup();
    const p = big[0];
    untake(mm, p);
    set_pageblock_isolate(mm, p + 512, true);
    __free_one_page(mm, p + 512, zone, 9, MIGRATE_ISOLATE, 0);
    expect(zone.vm_stat[NR_FREE_PAGES]).toBe(0);
    __free_one_page(mm, p, zone, 9, MIGRATE_MOVABLE, 0);
    expect(zone.nr_free[9]).toBe(2);
    expect(zone.vm_stat[NR_FREE_PAGES]).toBe(512);
    expect(zone.vm_stat[NR_FREE_PAGES_BLOCKS]).toBe(512);
  });

  it('puts a block whose merge one order up looks likely at the tail (buddy_merge_likely)', () => {
    const { mm, zone, big } = setup();
    const [p, q] = big;
    untake(mm, p);
    untake(mm, q);
    // q+2 (order 1): its order-2 parent's buddy q+4 is allocated, so no merge is likely: head.
    __free_one_page(mm, q + 2, zone, 1, MIGRATE_MOVABLE, 0);
    // p+4 (order 2) free, then p+2 (order 1): the parent p's order-2 buddy p+4 is free: tail.
    __free_one_page(mm, p + 4, zone, 2, MIGRATE_MOVABLE, 0);
    __free_one_page(mm, p + 2, zone, 1, MIGRATE_MOVABLE, 0);
    const list = zone.free_list(1, MIGRATE_MOVABLE);
    expect(mm.frames.list_first(list)).toBe(q + 2);
    expect(mm.frames.list_last(list)).toBe(p + 2);
  });

  it('puts boot-time (FPI_TO_TAIL) frees at the tail', () => {
    const { mm, zone, big } = setup();
    const [p, q] = big;
    untake(mm, p);
    untake(mm, q);
    __free_one_page(mm, q, zone, 10, MIGRATE_MOVABLE, FPI_TO_TAIL);
    __free_one_page(mm, p, zone, 10, MIGRATE_MOVABLE, FPI_TO_TAIL);
    expect(mm.frames.list_last(zone.free_list(10, MIGRATE_MOVABLE))).toBe(p);
  });
});

/** Return the other taken max-order blocks so conservation holds for the invariant check. */
function takeBackOthers(m: ReturnType<typeof cleanMachine>, blocks: number[]): void {
  const zone = m.mm.zone(0, ZONE_DMA32);
  for (const p of blocks) {
    untake(m.mm, p);
    __free_one_page(m.mm, p, zone, 10, get_pfnblock_migratetype(m.mm, p), 0);
  }
}
