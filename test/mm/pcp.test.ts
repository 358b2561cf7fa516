/**
 * Per-cpu lists: refills in batches from the buddy in ascending order, LIFO reuse of freed pages,
 * drains past `high`, and nothing lost between CPUs.
 */
import { describe, expect, it } from 'vitest';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { FPI_TO_TAIL } from '../../src/mm/internal.ts';
import { MIGRATE_MOVABLE, NR_PCP_LISTS, ZONE_DMA32 } from '../../src/mm/mmzone.ts';
import { __free_one_page } from '../../src/mm/page_alloc/buddy.ts';
import { order_to_pindex, zone_batchsize } from '../../src/mm/page_alloc/pcp.ts';
import { PGI_pcp } from '../../src/mm/page-flags.ts';
import { cleanMachine, takeAll, untake, violations } from '../helpers.ts';

describe('zone_batchsize()', () => {
  it('is 63 for zones of 1 GiB or more, 31 for 128 MiB, and 0 below 4 MiB', () => {
    const z = (managed: number) => zone_batchsize({ managed_pages: managed } as never);
    expect(z(262144)).toBe(63);
    expect(z(131072)).toBe(31);
    expect(z(3840)).toBe(0);
  });
});

describe('per-cpu lists', () => {
  it('refill with a batch from the buddy, in ascending physical order', () => {
    const m = cleanMachine({ memory: '1G' });
    const zone = m.mm.zone(0, ZONE_DMA32);
    // Leave DMA32 only max-order blocks, freed to the tail in ascending order as at boot.
    const big = takeAll(m.mm, zone).filter(([, o]) => o === 10);
    for (const [q] of big) {
      untake(m.mm, q);
      __free_one_page(m.mm, q, zone, 10, MIGRATE_MOVABLE, FPI_TO_TAIL);
    }
    const p = big[0][0];
    expect(m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, { cpu: 1, nid: 0 })).toBe(p);
    const batch = zone.pcp.batch[1];
    expect(zone.pcp.count[1]).toBe(batch - 1);
    expect(zone.pcp.count[0]).toBe(0);
    const list = zone.pcp.list_base + NR_PCP_LISTS + order_to_pindex(MIGRATE_MOVABLE, 0);
    const listed: number[] = [];
    for (let q = m.mm.frames.list_first(list); q >= 0; q = m.mm.frames.list_next(q)) listed.push(q);
    expect(listed).toEqual(Array.from({ length: batch - 1 }, (_, i) => p + 1 + i));
    expect(m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, { cpu: 1 })).toBe(p + 1);
    expect(zone.pcp.high[1]).toBeGreaterThanOrEqual(zone.pcp.high_min[1]);
  });

  it('give a freed page back to the next allocation on the same CPU (LIFO)', () => {
    const m = cleanMachine({ memory: '1G' });
    const a = m.kernel.alloc_pages(GFP_KERNEL, 0);
    m.kernel.alloc_pages(GFP_KERNEL, 0);
    m.kernel.free_pages(a, 0);
    expect(m.mm.frames.flags[a] & PGI_pcp).toBeTruthy();
    expect(m.kernel.alloc_pages(GFP_KERNEL, 0)).toBe(a);
    // A free on another CPU parks the page on that CPU's list instead.
    m.kernel.free_pages(a, 0, { cpu: 1 });
    expect(m.kernel.alloc_pages(GFP_KERNEL, 0, { cpu: 0 })).not.toBe(a);
  });

  it('keep high-order blocks on their own list', () => {
    const m = cleanMachine({ memory: '1G' });
    const zone = m.mm.zone(0, ZONE_DMA32);
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 3);
    m.kernel.free_pages(pfn, 3);
    const list = zone.pcp.list_base + order_to_pindex(0, 3);
    expect(m.mm.frames.list_first(list)).toBe(pfn);
    expect(NR_PCP_LISTS).toBe(14);
  });

  it('drain to the buddy once a CPU holds `high` pages', () => {
    const m = cleanMachine({ memory: '1G' });
    const zone = m.mm.zone(0, ZONE_DMA32);
    const pfns: number[] = [];
    for (let i = 0; i < 5000; i++) pfns.push(m.kernel.alloc_pages(GFP_KERNEL, 0));
    for (const p of pfns) {
      m.kernel.free_pages(p, 0);
      expect(zone.pcp.count[0]).toBeLessThanOrEqual(Math.max(zone.pcp.high[0], zone.pcp.batch[0]));
    }
    expect(zone.pcp.count[0]).toBeGreaterThan(0);
    expect(violations(m)).toEqual([]);
  });

  it('return everything on drain_all_pages(), restoring the boot-time free lists', () => {
    const m = cleanMachine({ memory: '1G' });
    m.kernel.drain_all_pages();
    const before = m.readFile('/proc/buddyinfo');
    const held: Array<[number, number, number]> = [];
    for (let i = 0; i < 3000; i++) {
      const order = i % 4;
      const cpu = i % 2;
      held.push([
        m.kernel.alloc_pages(i % 3 ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL, order, { cpu }),
        order,
        1 - cpu,
      ]);
    }
    for (const [pfn, order, cpu] of held) m.kernel.free_pages(pfn, order, { cpu });
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(before);
    expect(violations(m)).toEqual([]);
  });
});
