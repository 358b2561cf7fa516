/**
 * The slow path's control flow as in v6.18 __alloc_pages_slowpath(): __GFP_NOFAIL's two ways into
 * the reserves (ALLOC_NO_WATERMARKS from __alloc_pages_may_oom, a one-shot ALLOC_MIN_RESERVE at
 * nopage), none without direct reclaim, and the can_compact (__GFP_IO) gates. Reclaim,
 * compaction and the OOM killer are test hooks that count their calls.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP_DIRECT_RECLAIM,
  __GFP_MEMALLOC,
  __GFP_NOFAIL,
  __GFP_NORETRY,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  GFP_ATOMIC,
  GFP_KERNEL,
  GFP_NOIO,
  GFP_NOWAIT,
  GFP_TRANSHUGE_LIGHT,
} from '../../src/mm/gfp.ts';
import { ALLOC_MIN_RESERVE } from '../../src/mm/internal.ts';
import { ZONE_DMA32 } from '../../src/mm/mmzone.ts';
import {
  COMPACT_COMPLETE,
  COMPACT_SKIPPED,
  no_slowpath_hooks,
  type SlowpathHooks,
} from '../../src/mm/page_alloc/context.ts';
import { gfp_compaction_allowed, NOFAIL_LOOP_LIMIT } from '../../src/mm/page_alloc/slowpath.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, violations } from '../helpers.ts';

interface Calls {
  reclaim: number;
  /** alloc_flags and priority of each try_to_compact_pages() call. */
  compact: Array<{ alloc_flags: number; prio: number }>;
  suitable: number;
  oom: number;
}

/**
 * A 1 GiB machine (DMA and DMA32) whose reclaim, compaction and OOM killer are counting stubs;
 * `over` replaces some of them.
 */
function machine(over: Partial<SlowpathHooks> = {}): { m: Machine; calls: Calls } {
  const m = cleanMachine({ memory: '1G' });
  const calls: Calls = { reclaim: 0, compact: [], suitable: 0, oom: 0 };
  const base = no_slowpath_hooks();
  m.mm.hooks = {
    ...base,
    try_to_free_pages: () => {
      calls.reclaim++;
      return 0;
    },
    try_to_compact_pages(_gfp, _order, alloc_flags, _ac, prio, out) {
      calls.compact.push({ alloc_flags, prio });
      out.pfn = -1;
      out.result = COMPACT_SKIPPED;
    },
    compaction_zonelist_suitable: () => {
      calls.suitable++;
      return false;
    },
    out_of_memory: () => {
      calls.oom++;
      return false;
    },
    ...over,
  };
  return { m, calls };
}

/** Allocate order-0 pages with `gfp` until even the drained pcp lists give nothing more. */
function exhaust(m: Machine, gfp: number): void {
  for (;;) {
    let got = 0;
    while (m.kernel.alloc_pages(gfp, 0) >= 0) got++;
    m.kernel.drain_all_pages();
    if (!got) return;
  }
}

/** Forget the calls and kernel-log lines so far. */
function reset(m: Machine, calls: Calls): void {
  m.mm.klog.length = 0;
  calls.reclaim = 0;
  calls.compact.length = 0;
  calls.suitable = 0;
  calls.oom = 0;
}

describe('__GFP_NOFAIL', () => {
  it('ignores the watermarks from __alloc_pages_may_oom() when the OOM killer cannot help', () => {
    const { m, calls } = machine();
    const zone = m.mm.zone(0, ZONE_DMA32);
    exhaust(m, GFP_ATOMIC);
    // Below half the min mark: not even ALLOC_MIN_RESERVE would get a page.
    expect(zone.vm_stat[0]).toBeLessThanOrEqual(zone.min_wmark_pages() / 2);
    reset(m, calls);
    const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 0);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(calls.oom).toBe(1);
    // WARN_ON_ONCE_GFP(gfp_mask & __GFP_NOFAIL) fires, once.
    expect(m.mm.klog).toEqual(['WARNING: CPU: 0 at mm/page_alloc.c:4056 __alloc_pages_may_oom']);
    expect(m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 0)).toBeGreaterThanOrEqual(0);
    expect(m.mm.klog.length).toBe(1);
    expect(violations(m)).toEqual([]);
  });

  it('takes ALLOC_MIN_RESERVE at nopage when the OOM killer is not for it', () => {
    const { m, calls } = machine();
    const zone = m.mm.zone(0, ZONE_DMA32);
    exhaust(m, GFP_NOWAIT);
    expect(zone.vm_stat[0]).toBeLessThanOrEqual(zone.min_wmark_pages());
    expect(zone.vm_stat[0]).toBeGreaterThan(zone.min_wmark_pages() / 2);
    reset(m, calls);
    // __GFP_RETRY_MAYFAIL keeps __alloc_pages_may_oom() from the OOM killer and its reserves.
    const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOFAIL | __GFP_RETRY_MAYFAIL, 0);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(calls.reclaim).toBe(1);
    expect(calls.oom).toBe(0);
    expect(m.mm.klog).toEqual([]);
  });

  it('tries ALLOC_MIN_RESERVE once per pass: the retry loop keeps its own flags', () => {
    const { m, calls } = machine();
    exhaust(m, GFP_ATOMIC);
    reset(m, calls);
    // Order 1 and unmovable: compacted before reclaim and on every pass, so the compaction hook
    // sees the flags each pass runs with.
    const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOFAIL | __GFP_RETRY_MAYFAIL, 1);
    expect(pfn).toBe(-1);
    expect(calls.compact.length).toBe(NOFAIL_LOOP_LIMIT + 2);
    expect(calls.compact.filter((c) => c.alloc_flags & ALLOC_MIN_RESERVE)).toEqual([]);
    expect(calls.reclaim).toBe(NOFAIL_LOOP_LIMIT + 1);
    expect(m.mm.klog[0]).toBe(
      '__GFP_NOFAIL allocation of order 1 cannot be satisfied: the kernel would loop forever here',
    );
    expect(m.mm.klog[1]).toMatch(/^page allocation failure: order:1, mode:0x[0-9a-f]+\(GFP_KERNEL\|/);
    expect(m.mm.klog.length).toBe(2);
    expect(violations(m)).toEqual([]);
  });

  it('gets no reserves without __GFP_DIRECT_RECLAIM: a warning, then NULL', () => {
    const { m, calls } = machine();
    exhaust(m, GFP_NOWAIT);
    reset(m, calls);
    // ALLOC_MIN_RESERVE would succeed here (the previous test), but 6.18 does not try it.
    expect(m.kernel.alloc_pages(GFP_NOWAIT | __GFP_NOFAIL, 0)).toBe(-1);
    expect(calls.reclaim + calls.oom).toBe(0);
    // GFP_NOWAIT carries __GFP_NOWARN: no allocation-failure report, only the WARN_ON_ONCE.
    expect(m.mm.klog).toEqual(['WARNING: CPU: 0 at mm/page_alloc.c:4654 __alloc_pages_slowpath']);
    expect(m.kernel.alloc_pages(GFP_NOWAIT | __GFP_NOFAIL, 0)).toBe(-1);
    expect(m.mm.klog.length).toBe(1);
  });
});

describe('can_compact = gfp_compaction_allowed()', () => {
  /** Reclaim that always claims progress; compaction_zonelist_suitable() true the first 5 times. */
  function progressing(): { m: Machine; calls: Calls } {
    const r = machine({
      try_to_free_pages: () => {
        r.calls.reclaim++;
        return 1;
      },
      compaction_zonelist_suitable: () => ++r.calls.suitable <= 5,
    });
    exhaust(r.m, GFP_NOWAIT);
    reset(r.m, r.calls);
    return r;
  }

  it('is __GFP_IO', () => {
    expect(gfp_compaction_allowed(GFP_KERNEL)).toBe(true);
    expect(gfp_compaction_allowed(GFP_NOIO)).toBe(false);
  });

  it('lets a costly __GFP_RETRY_MAYFAIL request retry only if it may compact', () => {
    const a = progressing();
    expect(a.m.kernel.alloc_pages(GFP_KERNEL | __GFP_RETRY_MAYFAIL, 4)).toBe(-1);
    expect(a.calls.suitable).toBe(6);
    expect(a.calls.reclaim).toBe(6);
    const b = progressing();
    expect(b.m.kernel.alloc_pages(GFP_NOIO | __GFP_RETRY_MAYFAIL, 4)).toBe(-1);
    expect(b.calls.suitable).toBe(0);
    expect(b.calls.reclaim).toBe(1);
    // No early compaction without __GFP_IO; the retry loop still calls try_to_compact_pages(),
    // which skips such requests itself.
    expect(a.calls.compact.map((c) => c.prio)).toEqual([2, 1, 1, 1, 1, 1, 1]);
    expect(b.calls.compact.map((c) => c.prio)).toEqual([1]);
  });

  it('keeps should_compact_retry() from requests that may not compact', () => {
    const a = progressing();
    expect(a.m.kernel.alloc_pages(GFP_KERNEL, 1)).toBe(-1);
    expect(a.calls.suitable).toBe(6);
    expect(a.calls.oom).toBe(1);
    const b = progressing();
    expect(b.m.kernel.alloc_pages(GFP_NOIO, 1)).toBe(-1);
    expect(b.calls.suitable).toBe(0);
    expect(b.calls.reclaim).toBe(1);
    expect(b.calls.oom).toBe(1);
  });

  it('skips early compaction for requests that may use every reserve (__GFP_MEMALLOC)', () => {
    const { m, calls } = machine();
    const zone = m.mm.zone(0, ZONE_DMA32);
    exhaust(m, GFP_NOWAIT);
    expect(zone.nr_free.slice(4).some((n) => n > 0)).toBe(true);
    reset(m, calls);
    // The first pass of the retry loop already ignores the watermarks.
    expect(m.kernel.alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 4)).toBeGreaterThanOrEqual(0);
    expect(calls.compact).toEqual([]);
    expect(calls.reclaim).toBe(0);
  });
});

describe('costly __GFP_NORETRY requests (THP faults)', () => {
  /** Compaction that ran and failed (COMPACT_COMPLETE), so neither skipped nor deferred. */
  function failing(): { m: Machine; calls: Calls } {
    const r = machine({
      try_to_compact_pages(_gfp, _order, alloc_flags, _ac, prio, out) {
        r.calls.compact.push({ alloc_flags, prio });
        out.pfn = -1;
        out.result = COMPACT_COMPLETE;
      },
    });
    exhaust(r.m, GFP_NOWAIT);
    reset(r.m, r.calls);
    return r;
  }

  it('reclaim and compact once more after a failed compaction', () => {
    const { m, calls } = failing();
    expect(m.kernel.alloc_pages(GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM | __GFP_NORETRY, 9)).toBe(-1);
    expect(calls.reclaim).toBe(1);
    expect(calls.compact.map((c) => c.prio)).toEqual([2, 2]);
  });

  it('give up after compaction alone when local to the node (__GFP_THISNODE)', () => {
    const { m, calls } = failing();
    const gfp = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM | __GFP_NORETRY | __GFP_THISNODE;
    expect(m.kernel.alloc_pages(gfp, 9)).toBe(-1);
    expect(calls.reclaim).toBe(0);
    expect(calls.compact.map((c) => c.prio)).toEqual([2]);
  });
});
