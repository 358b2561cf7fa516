/**
 * The collateral-damage probe: measured as the difference from a baseline copy where nothing was
 * asked, positive when a request takes the large blocks others need, zero when it takes nothing,
 * and the same for the same seed.
 */
import { describe, expect, it } from 'vitest';
import {
  collateral_of,
  collateralProbe,
  no_collateral,
  resolveProbeOptions,
} from '../../src/contig/collateral.ts';
import { type Contender, compareContenders, replayCopies } from '../../src/contig/compare.ts';
import { __GFP_DMA, GFP_NOWAIT } from '../../src/mm/gfp.ts';
import { renderComparison } from '../../src/report/comparison.ts';
import { MiB } from '../vm/helpers.ts';
import { CONFIG } from './compare-helpers.ts';

/**
 * The classic way to wreck contiguity: take every free page, give all back but one per 2 MiB,
 * except in 8 blocks left whole. Nearly all memory is free again, but only those, and any the kernel
 * cannot take (CMA, the watermarks), can form (kernel pages do not move): what Hocko feared a user could do to large blocks.
 */
const hog: Contender = {
  name: 'test-hog',
  summary: 'leaves one kernel page in every 2 MiB block but 8',
  run(m) {
    const pages: number[] = [];
    for (const gfp of [GFP_NOWAIT, GFP_NOWAIT | __GFP_DMA]) {
      for (;;) {
        const pfn = m.kernel.alloc_pages(gfp, 0);
        if (pfn < 0) break;
        pages.push(pfn);
      }
    }
    pages.sort((a, b) => a - b);
    const whole = new Set(pages.filter((pfn) => pfn % 512 === 0).slice(-8));
    let kept = 0;
    for (const pfn of pages) {
      if (pfn % 512 === 0 && !whole.has(pfn)) kept++;
      else m.kernel.free_pages(pfn, 0);
    }
    m.kernel.drain_all_pages();
    const left = m.mm.zones.reduce((n, z) => n + z.nr_free[9] + 2 * z.nr_free[10], 0);
    return {
      addr: 0,
      len: 0,
      ok: true,
      note: `${kept} 2 MiB blocks pinned by one kernel page, ${left} left free`,
    };
  },
};

const nothing: Contender = {
  name: 'test-nothing',
  summary: 'asks for nothing',
  run: () => ({ addr: 0, len: 0, ok: true, note: '' }),
};

// 64 extents of THP, more than the hog leaves free 2 MiB blocks.
const probe = collateralProbe({ window: '2s', steps: 8, thp_bytes: 128 * MiB, read_bytes: 16 * MiB });

describe('collateral damage', () => {
  it('rises when a request takes most free 2 MiB blocks, and is zero when it takes nothing', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG),
      request: { bytes: 64 * MiB },
      contenders: [hog, nothing],
      probe,
    });
    const base = r.baseline!;
    expect(base.thp.extents).toBe(64);
    expect(base.thp.fallback_rate).toBe(0);
    expect(base.kernel.atomic_attempts).toBe(8 * 64);
    expect(base.kernel.noretry_attempts).toBe(8 * 16);
    expect(base.page_cache.bytes_read).toBe(16 * MiB);
    const [h, n] = r.results;
    const [, pinned, left] = /^(\d+) 2 MiB blocks pinned by one kernel page, (\d+) left free$/
      .exec(h.note)!
      .map(Number);
    expect(pinned).toBeGreaterThan(400);
    // The 8 kept whole, CMA (no kernel page goes there) and what the watermarks kept.
    expect(left).toBeLessThan(40);
    // No more THPs than free 2 MiB blocks: kernel pages cannot be migrated away.
    expect(h.probe!.thp.extents).toBe(64);
    expect(h.probe!.thp.thp_fault_alloc).toBeLessThanOrEqual(left);
    expect(h.collateral!.thp.fallback_rate).toBeGreaterThanOrEqual((64 - left) / 64);
    expect(h.collateral!.oom_kills).toBe(0);
    expect(h.collateral!.thp.fault_ns).toBeGreaterThan(0);
    expect(no_collateral(h.collateral!)).toBe(false);
    expect(no_collateral(n.collateral!)).toBe(true);
    expect(n.probe).toEqual(base);
    expect(renderComparison(r)).toMatch(/test-hog .*\+\d+\.\d pp/);
  });

  it('is deterministic: the same seed gives the same probe results', () => {
    const copy = replayCopies(CONFIG);
    const run = () => compareContenders({ copy, request: { bytes: 64 * MiB }, contenders: ['thp'], probe });
    const a = run();
    expect(run()).toEqual(a);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
  });

  it('subtracts leaf by leaf, and refuses results of different shapes', () => {
    const m = replayCopies(CONFIG)();
    const p = probe.run(m);
    expect(no_collateral(collateral_of(p, p))).toBe(true);
    const more = structuredClone(p);
    more.kernel.atomic_failures += 3;
    expect(collateral_of(more, p).kernel.atomic_failures).toBe(3);
    expect(() => collateral_of(p, { ...p, thp: 0 } as never)).toThrow(/different shapes/);
  });

  it('sizes default to shares of RAM; bad options are refused with the reason', () => {
    const m = replayCopies(CONFIG)();
    const o = resolveProbeOptions(m, {});
    expect(o.window).toBe(10e9);
    expect(o.thp_bytes % (2 * MiB)).toBe(0);
    expect(o.thp_bytes).toBe(Math.floor((m.mm.totalram_pages * 4096) / 16 / (2 * MiB)) * 2 * MiB);
    expect(() => resolveProbeOptions(m, { order: 11 })).toThrow(/order 11 is above MAX_PAGE_ORDER/);
    expect(() => resolveProbeOptions(m, { thp_bytes: MiB })).toThrow(/not a multiple of 2 MiB/);
    expect(() => resolveProbeOptions(m, { steps: 0 })).toThrow(/steps 0/);
  });
});
