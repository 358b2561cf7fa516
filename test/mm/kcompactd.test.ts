/**
 * kcompactd and proactive compaction (mm/compaction.c kcompactd(), v6.18) on the simulated clock:
 * one thread per node, waiting HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms) between proactive checks
 * (no timeout with compaction_proactiveness 0); woken by kswapd when it goes to sleep after
 * reclaiming for a high-order request, by kswapd's boosted reclaim, and by wakeup_kswapd() for
 * callers that cannot reclaim directly when kswapd has nothing to do; compacting for the order it
 * was asked (kcompactd_do_work: MIGRATE_SYNC_LIGHT, deferral, compact_daemon_* counters); and
 * compacting whole nodes proactively while their fragmentation score is above the proactiveness
 * thresholds, backing off 32 s when a round does not lower it.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/lib/prng.ts';
import {
  fragmentation_score_node,
  fragmentation_score_zone,
  HPAGE_FRAG_CHECK_INTERVAL_NS,
  wakeup_kcompactd,
} from '../../src/mm/compaction.ts';
import { __GFP_COMP, __GFP_NOWARN, GFP_KERNEL, GFP_NOWAIT } from '../../src/mm/gfp.ts';
import {
  MAX_NR_ZONES,
  NR_PAGE_ORDERS,
  pageblock_order,
  ZONE_DMA32,
  ZONE_NORMAL,
} from '../../src/mm/mmzone.ts';
import { MAX_RECLAIM_RETRIES } from '../../src/mm/vmscan.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { NO_EARLY, pte, vmstat } from '../vm/helpers.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const early = NO_EARLY;
/** An order-9 request that wakes kswapd but may not reclaim or compact itself. */
const NOWAIT_THP = GFP_NOWAIT | __GFP_COMP;

/** Free blocks of pageblock order or more on a machine, in pageblocks. */
function free_pageblocks(m: Machine): number {
  let n = 0;
  for (const z of m.mm.zones)
    for (let o = pageblock_order; o < NR_PAGE_ORDERS; o++) n += z.nr_free[o] << (o - pageblock_order);
  return n;
}

/** The kcompactd tracepoints, recorded. */
function traced(m: Machine) {
  const t = {
    sleep: 0,
    wakeup: [] as Array<[number, number, number]>,
    wake: [] as Array<[number, number, number]>,
  };
  m.mm.trace.mm_compaction_kcompactd_sleep = () => {
    t.sleep++;
  };
  m.mm.trace.mm_compaction_wakeup_kcompactd = (nid, order, zid) => {
    t.wakeup.push([nid, order, zid]);
  };
  m.mm.trace.mm_compaction_kcompactd_wake = (nid, order, zid) => {
    t.wake.push([nid, order, zid]);
  };
  return t;
}

interface Fragmented {
  m: Machine;
  p: Process;
  chunks: number[];
}

/**
 * A 512 MiB machine (DMA and DMA32 only) fragmented as in compaction.test.ts: 8 MiB anonymous
 * chunks with 16 kernel pages after each, about half of the anonymous pages and of the kernel
 * pages freed at random, every remaining free block of pageblock order or more taken by kernel
 * allocations. With `file`, 1 MiB of a file is written (and synced) after each chunk, so kswapd
 * has clean page cache to reclaim. Built instantly: kswapd and kcompactd have not run.
 */
function fragmented(seed = 3, file = false): Fragmented {
  const m = Machine.boot({ memory: '512M', cpus: 2, early, seed });
  const p = m.instantly(() => m.spawn());
  const chunks = m.instantly(() => build(m, p, seed, file));
  expect(m.now).toBe(0);
  expect(m.mm.kswapd[0].queued).toBe(false);
  return { m, p, chunks };
}

/** fragmented()'s work; returns the chunks' addresses. */
function build(m: Machine, p: Process, seed: number, file: boolean): number[] {
  const fd = file ? p.open('/data/f', O_CREAT | O_RDWR) : -1;
  const r = new Prng(seed);
  const kernel: number[] = [];
  const chunks: number[] = [];
  for (let i = 0; i < 40; i++) {
    const a = p.mmap(0, 8 * MiB, RW, ANON);
    p.touch(a, 8 * MiB, { write: true });
    if (file) p.write(fd, MiB);
    chunks.push(a);
    for (let k = 0; k < 16; k++) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
      if (pfn >= 0) kernel.push(pfn);
    }
  }
  if (file) p.fsync(fd);
  for (const a of chunks)
    for (let off = 0; off < 8 * MiB; off += PAGE) if (r.below(2)) p.madvise(a + off, PAGE, MADV_DONTNEED);
  kernel.forEach((pfn, i) => {
    if (i % 2 === 0) m.kernel.free_pages(pfn, 0);
  });
  m.kernel.drain_all_pages();
  for (const o of [10, 9]) {
    // No __GFP_KSWAPD_RECLAIM: these wake nobody.
    while (m.kernel.alloc_pages(__GFP_NOWARN, o) >= 0);
  }
  m.kernel.drain_all_pages();
  return chunks;
}

describe('the kcompactd thread', () => {
  it('runs on every node with memory and waits 500 ms between proactive checks', () => {
    const m = Machine.boot({ memory: '8G', nodes: 2, cpus: 2, early, seed: 1 });
    const t = traced(m);
    for (const [nid, node] of m.mm.nodes.entries()) {
      const k = m.mm.kcompactd[nid];
      expect(k.started).toBe(true);
      expect(k.sleeping).toBe(true);
      expect(k.wait_until).toBe(HPAGE_FRAG_CHECK_INTERVAL_NS);
      expect(node.kcompactd_max_order).toBe(0);
      // pgdat->nr_zones: one more than the highest zone with pages.
      expect(node.kcompactd_highest_zoneidx).toBe(node.nr_zones - 1);
      expect(node.nr_zones).toBeLessThan(MAX_NR_ZONES);
    }
    expect(m.mm.nodes.map((n) => n.nr_zones)).toEqual([3, 3]); // DMA to Normal; Normal alone on node 1
    m.advance('2s');
    // Four timeouts per node, each ending with the next wait; a clean machine is not compacted.
    expect(t.sleep).toBe(8);
    expect(t.wake).toEqual([]);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(0);
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(0);
    expect(m.mm.kcompactd[0].wait_until).toBe(2.5e9);
    m.checkInvariants();
  });
});

describe('kcompactd woken for an order', () => {
  it('compacts after kswapd balances a node for a high-order allocation, raising the free order-9 count', () => {
    const { m } = fragmented(3, true);
    const t = traced(m);
    const before = free_pageblocks(m);
    // The request fails without reclaim or compaction of its own; kswapd is asked for order 9.
    expect(m.kernel.alloc_pages(NOWAIT_THP, 9)).toBe(-1);
    expect(m.mm.kswapd[0].queued).toBe(true);
    expect(m.mm.kswapd[0].order).toBe(9);
    m.advance('50ms');
    // kswapd reclaimed compact_gap(9) pages, fell back to order 0, found the node balanced and
    // woke kcompactd for the original order before its nap (kswapd_try_to_sleep).
    expect(vmstat(m, 'pgsteal_kswapd')).toBeGreaterThanOrEqual(1024);
    expect(t.wakeup).toEqual([[0, 9, ZONE_NORMAL]]);
    // kcompactd_highest_zoneidx only tightens: this machine has no Normal zone.
    expect(t.wake).toEqual([[0, 9, ZONE_DMA32]]);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBeGreaterThan(0);
    expect(vmstat(m, 'compact_daemon_free_scanned')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgmigrate_success')).toBeGreaterThan(0);
    // Only kcompactd compacted.
    expect(vmstat(m, 'compact_migrate_scanned')).toBe(vmstat(m, 'compact_daemon_migrate_scanned'));
    expect(vmstat(m, 'compact_stall')).toBe(0);
    expect(free_pageblocks(m)).toBeGreaterThan(before);
    // Done: the request is forgotten, the zone's deferral reset for order 9.
    expect(m.mm.nodes[0].kcompactd_max_order).toBe(0);
    expect(m.mm.nodes[0].kcompactd_highest_zoneidx).toBe(m.mm.nodes[0].nr_zones - 1);
    expect(m.mm.zones[ZONE_DMA32].compact_order_failed).toBe(10);
    m.checkInvariants();
    // The same request now succeeds from the free lists.
    const pfn = m.kernel.alloc_pages(NOWAIT_THP, 9);
    expect(pfn).toBeGreaterThanOrEqual(0);
    m.kernel.free_pages(pfn, 9);
    m.checkInvariants();
  });

  it('is woken by wakeup_kswapd() only for callers that cannot reclaim directly, when kswapd has given up', () => {
    const { m } = fragmented(5);
    const t = traced(m);
    const node = m.mm.nodes[0];
    node.kswapd_failures = MAX_RECLAIM_RETRIES; // a hopeless node: leave it to direct reclaim
    const zone = m.mm.zones[ZONE_DMA32];
    // A caller that may reclaim (and compact) itself: kcompactd is not asked.
    m.mm.hooks.wakeup_kswapd(zone, GFP_KERNEL, 9, ZONE_NORMAL);
    expect(node.kcompactd_max_order).toBe(0);
    expect(t.wakeup).toEqual([]);
    // One that may not: kcompactd is woken, kswapd is not.
    expect(m.kernel.alloc_pages(NOWAIT_THP, 9)).toBe(-1);
    expect(t.wakeup).toEqual([[0, 9, ZONE_NORMAL]]);
    expect(m.mm.kswapd[0].queued).toBe(false);
    expect(m.mm.kcompactd[0].sleeping).toBe(false);
    // A second failure while kcompactd is already woken only records the request.
    expect(m.kernel.alloc_pages(NOWAIT_THP, 9)).toBe(-1);
    expect(t.wakeup.length).toBe(1);
    m.advance(1);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    expect(vmstat(m, 'pgsteal_kswapd')).toBe(0);
    const pfn = m.kernel.alloc_pages(NOWAIT_THP, 9);
    expect(pfn).toBeGreaterThanOrEqual(0);
    m.kernel.free_pages(pfn, 9);
    m.checkInvariants();
  });

  it('is woken for pageblock order after kswapd reclaimed for a boosted watermark', () => {
    const { m } = fragmented(7);
    const t = traced(m);
    const zones = m.mm.nodes[0].node_zones;
    // Unmovable allocations fall back into MOVABLE pageblocks until one boosts the watermark
    // (boost_watermark) and flags kswapd (ZONE_BOOSTED_WATERMARK).
    const kernel: number[] = [];
    while (!zones.some((z) => z.watermark_boost) && kernel.length < 10000)
      kernel.push(m.kernel.alloc_pages(GFP_KERNEL, 0));
    expect(zones[ZONE_DMA32].watermark_boost).toBeGreaterThan(0);
    m.advance(1);
    expect(zones[ZONE_DMA32].watermark_boost).toBe(0);
    // balance_pgdat(): "as there is now likely space, wakeup kcompact to defragment pageblocks".
    expect(t.wakeup).toEqual([[0, pageblock_order, ZONE_DMA32]]);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    for (const pfn of kernel) m.kernel.free_pages(pfn, 0);
    m.checkInvariants();
  });

  it('counts compact_daemon_wake once per run and defers zones where compaction fails', () => {
    const fr = fragmented(9);
    const { m } = fr;
    const node = m.mm.nodes[0];
    const zone = m.mm.zones[ZONE_DMA32];
    // Pin every mapped page: no pageblock can be emptied.
    const pins: number[] = [];
    for (const a of fr.chunks)
      for (let off = 0; off < 8 * MiB; off += PAGE)
        if (pte(m, fr.p, a + off)) pins.push(...fr.p.pin_user_pages(a + off, PAGE));
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL); // already woken
    m.advance(1);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    const scanned = vmstat(m, 'compact_daemon_migrate_scanned');
    expect(scanned).toBeGreaterThan(0);
    expect(vmstat(m, 'pgmigrate_success')).toBe(0);
    // The sync run reached the end without a block: deferred as sync direct compaction is
    // (compact_order_failed stays at its boot value 0: min(0, 9)).
    expect([zone.compact_defer_shift, zone.compact_order_failed]).toEqual([1, 0]);
    // The next wake-up is skipped by the deferral but still counted; the one after runs.
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    m.advance(1);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(2);
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(scanned);
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    m.advance(1);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(3);
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBeGreaterThan(scanned);
    expect(zone.compact_defer_shift).toBe(2);
    fr.p.unpin_user_pages(pins);
    m.checkInvariants();
  });

  it('serves a request it was not woken for when its wait next ends', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early, seed: 1 });
    const node = m.mm.nodes[0];
    const t = traced(m);
    // Order-9 blocks are free: no zone is worth compacting, so kcompactd is not woken, but the
    // request is recorded (kcompactd_max_order) and ends its next wait early.
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    expect(t.wakeup).toEqual([]);
    expect(node.kcompactd_max_order).toBe(9);
    m.advance('499ms');
    expect(vmstat(m, 'compact_daemon_wake')).toBe(0);
    m.advance('1ms');
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(0);
    expect(node.kcompactd_max_order).toBe(0);
    // With proactive compaction off, the wait after the current one has no timeout.
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '0');
    m.advance('500ms');
    expect(m.mm.kcompactd[0].wait_until).toBe(Number.POSITIVE_INFINITY);
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    m.advance('60s');
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    expect(node.kcompactd_max_order).toBe(9);
    m.checkInvariants();
  });
});

describe('proactive compaction', () => {
  it('compacts a node whose score exceeds the high mark (90 by default) at the next check, down to 80', () => {
    const { m } = fragmented(11);
    const node = m.mm.nodes[0];
    const zone = m.mm.zones[ZONE_DMA32];
    const score = fragmentation_score_node(node);
    expect(score).toBeGreaterThan(90);
    m.advance('499ms');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(0);
    m.advance('1ms');
    const scanned = vmstat(m, 'compact_daemon_migrate_scanned');
    expect(scanned).toBeGreaterThan(0);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(0); // proactive rounds are not wake-ups
    expect(vmstat(m, 'compact_stall')).toBe(0);
    // Each zone is compacted until its own score is at most 100 - proactiveness.
    expect(fragmentation_score_zone(zone)).toBeLessThanOrEqual(80);
    expect(fragmentation_score_node(node)).toBeLessThan(score);
    // Below the high mark: later checks leave it alone.
    m.advance('5s');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(scanned);
    m.checkInvariants();
  });

  it('with proactiveness 100 lowers the score at once and every 500 ms while it helps, then backs off 32 s', () => {
    const { m } = fragmented(13);
    const node = m.mm.nodes[0];
    const t = traced(m);
    const first = fragmentation_score_node(node);
    // The trigger ends the wait at once: kcompactd runs a round as soon as the write returns,
    // without waiting for the 500 ms check.
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '100');
    expect(t.wakeup).toEqual([[0, -1, ZONE_DMA32]]);
    expect(node.proactive_compact_trigger).toBe(false);
    const scores = [first, fragmentation_score_node(node)];
    expect(scores[1]).toBeLessThan(first);
    // Then a round every 500 ms until one does not lower the score.
    let scanned = vmstat(m, 'compact_daemon_migrate_scanned');
    for (let i = 0; i < 20; i++) {
      m.advance('500ms');
      const now = vmstat(m, 'compact_daemon_migrate_scanned');
      expect(now).toBeGreaterThan(scanned);
      scanned = now;
      scores.push(fragmentation_score_node(node));
      if (scores[scores.length - 1] >= scores[scores.length - 2]) break;
    }
    expect(scores[scores.length - 1]).toBeGreaterThanOrEqual(scores[scores.length - 2]);
    expect(scores[scores.length - 1]).toBeGreaterThan(0); // the kernel pages keep it above 0
    // 64 intervals without a check, then one more round.
    expect(m.mm.kcompactd[0].timeout).toBe(64 * HPAGE_FRAG_CHECK_INTERVAL_NS);
    m.advance('31.9s');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(scanned);
    m.advance('0.1s');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBeGreaterThan(scanned);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(0);
    m.checkInvariants();
  });

  it('is off with proactiveness 0, and writing a nonzero value runs a round at once', () => {
    const { m } = fragmented(15);
    const node = m.mm.nodes[0];
    const score = fragmentation_score_node(node);
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '0');
    expect(node.proactive_compact_trigger).toBe(false);
    m.advance('60s');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(0);
    expect(fragmentation_score_node(node)).toBe(score);
    expect(m.mm.kcompactd[0].sleeping).toBe(true);
    expect(m.mm.kcompactd[0].wait_until).toBe(Number.POSITIVE_INFINITY);
    // kcompactd still compacts for an order when asked.
    wakeup_kcompactd(m.mm, node, 9, ZONE_NORMAL);
    m.advance(1);
    expect(vmstat(m, 'compact_daemon_wake')).toBe(1);
    const scanned = vmstat(m, 'compact_daemon_migrate_scanned');
    expect(scanned).toBeGreaterThan(0);
    m.advance('60s');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBe(scanned);
    // 30: start above 70 + 10 = 80, stop at 70. The write's trigger runs the check now.
    expect(fragmentation_score_node(node)).toBeGreaterThan(80);
    const written = m.now;
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '30');
    expect(vmstat(m, 'compact_daemon_migrate_scanned')).toBeGreaterThan(scanned);
    expect(fragmentation_score_zone(m.mm.zones[ZONE_DMA32])).toBeLessThanOrEqual(70);
    expect(m.mm.kcompactd[0].wait_until).toBe(written + HPAGE_FRAG_CHECK_INTERVAL_NS);
    m.checkInvariants();
  });
});
