/**
 * The block census (src/mm/fragmentation.ts): every 2 MiB block counted once under the worst it
 * holds, mixed blocks, and the 1 GiB ranges that hold nothing but free and movable memory.
 */
import { describe, expect, it } from 'vitest';
import { blockCensus, fragmentationSummary } from '../../src/mm/fragmentation.ts';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { FOLL_LONGTERM } from '../../src/vm/gup.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { cleanMachine } from '../helpers.ts';

const MiB = 2 ** 20;

describe('blockCensus', () => {
  it('counts each 2 MiB block once, under the worst it holds', () => {
    const m = cleanMachine({ memory: '2G', thp: 'never' });
    const before = blockCensus(m.mm);
    const blocks = (c: typeof before) => c.free + c.movable + c.pinned + c.kernel;
    const p = m.spawn({ uid: 0 });
    const addr = p.mmap(0, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.touch(addr, 64 * MiB, { write: true });
    const anon = blockCensus(m.mm);
    expect(blocks(anon)).toBe(blocks(before));
    expect(anon.movable - before.movable).toBeGreaterThanOrEqual(32);
    // Pinning one page of a block makes the whole block pinned.
    p.pin_user_pages(addr + 40 * MiB, 4096, FOLL_LONGTERM);
    const pinned = blockCensus(m.mm);
    expect(pinned.pinned - anon.pinned).toBe(1);
    expect(pinned.movable).toBe(anon.movable - 1);
    // An unmovable kernel page in a movable block is both kernel and mixed.
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
    expect(pfn).toBeGreaterThanOrEqual(0);
    const kernel = blockCensus(m.mm);
    expect(kernel.kernel).toBeGreaterThanOrEqual(pinned.kernel);
    expect(blocks(kernel)).toBe(blocks(before));
  });

  it('counts the 1 GiB ranges a gigantic page could be migrated into', () => {
    const m = cleanMachine({ memory: '4G' });
    // The first GiB holds the boot reservations; the last ones are free and movable.
    const fresh = blockCensus(m.mm);
    expect(fresh.gigantic).toBeGreaterThanOrEqual(1);
    // An unmovable page in every GiB leaves none.
    const held: number[] = [];
    for (let pfn = 0; pfn < m.mm.frames.nr_frames; pfn += 1 << 18) {
      const mid = pfn + (1 << 17);
      if (
        m.mm.page_zone(mid)?.zone_spans_pfn(mid) &&
        m.kernel.alloc_contig_range(mid, mid + 1, 0, GFP_KERNEL) === 0
      )
        held.push(mid);
    }
    expect(held.length).toBeGreaterThanOrEqual(fresh.gigantic);
    expect(blockCensus(m.mm).gigantic).toBe(0);
    expect(fragmentationSummary(m.mm).freePages).toBeGreaterThan(0);
  });
});
