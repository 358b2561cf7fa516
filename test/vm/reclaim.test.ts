/**
 * Page reclaim over the LRU lists (mm/vmscan.c): kswapd and direct reclaim free clean page
 * cache, age the active lists, leave dirty pages to the flusher, unmap mapped pages through the
 * rmap, spare referenced and mlocked pages, discard clean lazyfree memory; with nothing left to
 * reclaim the OOM killer runs.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP_HIGHMEM,
  __GFP_MOVABLE,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_NOIO,
  gfp_migratetype,
  gfp_zone,
} from '../../src/mm/gfp.ts';
import { AllocContext } from '../../src/mm/page_alloc/context.ts';
import { PG_active, PG_anon, PG_reclaim, PG_swapcache, PG_workingset } from '../../src/mm/page-flags.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { meminfo, NO_EARLY, vmstat } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 2 ** 20;

const early = NO_EARLY;

function boot(memory = '512M'): { m: Machine; p: Process } {
  const m = Machine.boot({ memory, cpus: 2, early });
  return { m, p: m.spawn() };
}

/** Write `mib` MiB to a new file and wait for it to be written back (clean page cache). */
function cleanFile(p: Process, path: string, mib: number): number {
  const fd = p.open(path, O_CREAT | O_RDWR);
  p.write(fd, mib * MiB);
  p.fsync(fd);
  return fd;
}

/** A /proc/zoneinfo field of the zone named `zone` (DMA, DMA32, Normal, Movable). */
const zoneinfo = (m: Machine, zone: string, field: string): number => {
  const text = m.readFile('/proc/zoneinfo');
  const from = text.indexOf(`zone ${zone.padStart(8)}`);
  return Number(new RegExp(`^\\s+${field}\\s+(\\d+)$`, 'm').exec(text.slice(from))![1]);
};

/** Fault in `mib` MiB of anonymous memory. */
function anon(p: Process, mib: number): number {
  const a = p.mmap(0, mib * MiB, RW, ANON);
  p.touch(a, mib * MiB, { write: true });
  return a;
}

describe('reclaim of the page cache', () => {
  it('direct reclaim frees clean page cache for anonymous memory, from the inactive file list', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/cache', 300);
    expect(meminfo(m, 'Cached')).toBe(300 * 1024);
    anon(p, 300);
    expect(p.exited).toBe(false);
    expect(meminfo(m, 'AnonPages')).toBe(300 * 1024);
    expect(meminfo(m, 'Cached')).toBeLessThan(300 * 1024);
    const stolen = vmstat(m, 'pgsteal_direct');
    expect(stolen).toBeGreaterThan(0);
    expect(vmstat(m, 'pgscan_direct')).toBeGreaterThanOrEqual(stolen);
    // kswapd, woken meanwhile, reclaims the same way.
    expect(vmstat(m, 'pgsteal_file')).toBe(stolen + vmstat(m, 'pgsteal_kswapd'));
    expect(vmstat(m, 'pgscan_anon')).toBe(0); // no swap: anonymous pages are never scanned
    expect(vmstat(m, 'allocstall_movable')).toBeGreaterThan(0);
    expect(vmstat(m, 'oom_kill')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('kswapd, woken below the low watermark, reclaims until the node is balanced', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/cache', 300);
    anon(p, 150);
    m.advance('10ms');
    expect(vmstat(m, 'pageoutrun')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgsteal_kswapd')).toBeGreaterThan(0);
    // Balanced: some zone of the node passes its high watermark again.
    const zones = m.mm.nodes[0].node_zones.filter((z) => z.managed_pages);
    expect(zones.some((z) => z.vm_stat[0] >= z.high_wmark_pages())).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('kswapd looks at the watermarks again after its 100 ms nap and goes back to work below high', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/cache', 400);
    m.advance('40s');
    const free = () => zoneinfo(m, 'DMA32', 'pages free');
    const low = zoneinfo(m, 'DMA32', 'low');
    const high = zoneinfo(m, 'DMA32', 'high');
    // Allocate until the allocator, below the low watermarks, wakes kswapd to balance the node.
    while (vmstat(m, 'pageoutrun') === 0) {
      for (let i = 0; i < 64; i++) m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
      m.advance('1ms');
    }
    expect(vmstat(m, 'pageoutrun')).toBe(1);
    expect(free()).toBeGreaterThanOrEqual(high);
    // During its nap, allocations take free memory between low and high: no wake-up.
    while (free() >= (low + high) / 2) m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
    expect(free()).toBeGreaterThan(low);
    expect(vmstat(m, 'kswapd_low_wmark_hit_quickly')).toBe(0);
    // At the end of the nap the node is no longer balanced: kswapd reclaims again.
    m.advance('1s');
    expect(vmstat(m, 'kswapd_high_wmark_hit_quickly')).toBe(1);
    expect(vmstat(m, 'pageoutrun')).toBe(2);
    expect(free()).toBeGreaterThanOrEqual(high);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('leaves dirty pages to the flusher: they are marked for reclaim and rotated, not written', () => {
    const { m, p } = boot();
    // High thresholds: the flusher leaves the 300 MiB written below alone.
    m.writeFile('/proc/sys/vm/dirty_expire_centisecs', '360000');
    m.writeFile('/proc/sys/vm/dirty_ratio', '90');
    m.writeFile('/proc/sys/vm/dirty_background_ratio', '80');
    const fd = p.open('/data/dirty', O_CREAT | O_RDWR);
    p.write(fd, 150 * MiB);
    expect(meminfo(m, 'Dirty')).toBe(150 * 1024);
    cleanFile(p, '/data/clean', 150);
    expect(meminfo(m, 'Dirty')).toBe(150 * 1024);
    const written = vmstat(m, 'nr_written');
    anon(p, 250);
    // Direct reclaim took the clean pages; the dirty ones it met were activated with PG_reclaim
    // and left to the flusher, which it woke: each is still dirty, or the flusher's.
    expect(vmstat(m, 'nr_vmscan_immediate_reclaim')).toBeGreaterThan(0);
    expect(vmstat(m, 'nr_vmscan_write')).toBe(0);
    const flushed = meminfo(m, 'Writeback') + 4 * (vmstat(m, 'nr_written') - written);
    expect(flushed).toBeGreaterThan(0);
    expect(meminfo(m, 'Dirty') + flushed).toBe(150 * 1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('wakes the flusher when it finds only dirty pages, and the flusher writes them all, below the background threshold too', () => {
    const { m, p } = boot();
    // Fixed thresholds (300 MiB, background 200 MiB), which memory pressure does not lower.
    m.writeFile('/proc/sys/vm/dirty_bytes', String(300 * MiB));
    m.writeFile('/proc/sys/vm/dirty_background_bytes', String(200 * MiB));
    const pages = 10240; // 40 MiB: not expired, below the background threshold
    const fd = p.open('/data/dirty', O_CREAT | O_RDWR);
    p.write(fd, pages * 4096);
    cleanFile(p, '/data/clean', 150);
    const written = vmstat(m, 'nr_written');
    // The dirty pages are the oldest on the inactive list: reclaim meets them first.
    anon(p, 300);
    expect(p.exited).toBe(false);
    expect(vmstat(m, 'nr_vmscan_immediate_reclaim')).toBeGreaterThan(0);
    expect(vmstat(m, 'nr_dirty_background_threshold')).toBe(51200);
    // Woken by reclaim, the flusher writes everything dirty at the disk's 100 MiB/s: it took
    // every dirty page at once, and the disk has written part of them while the process ran.
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback') + 4 * (vmstat(m, 'nr_written') - written)).toBe(pages * 4);
    m.advance('1s');
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(pages);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('ages the active list when the inactive one runs low (pgrefill, pgdeactivate)', () => {
    const { m, p } = boot();
    const fd = cleanFile(p, '/data/hot', 200);
    // Read twice: the second read of each page activates it.
    p.pread(fd, 200 * MiB, 0);
    p.pread(fd, 200 * MiB, 0);
    expect(meminfo(m, 'Active(file)')).toBe(200 * 1024);
    anon(p, 350);
    expect(vmstat(m, 'pgrefill')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgdeactivate')).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('kernel allocations reclaim the lower zones: Movable pages on the way count as skipped and scanned, and past 32768 of them are taken too', () => {
    const m = Machine.boot({ memory: '1G', movablecore: '700M', cpus: 2, early });
    const p = m.spawn();
    // 900 MiB of clean cache: the Movable zone full of it, the rest in DMA32 and DMA.
    cleanFile(p, '/data/cache', 900);
    const movable = zoneinfo(m, 'Movable', 'nr_zone_inactive_file');
    expect(movable).toBeGreaterThan(32768);
    // GFP_KERNEL cannot use ZONE_MOVABLE: allocate until direct reclaim has run a few times.
    let failed = 0;
    while (vmstat(m, 'allocstall_normal') < 5)
      for (let i = 0; i < 256; i++) if (m.kernel.alloc_pages(GFP_KERNEL, 0) < 0) failed++;
    expect(failed).toBe(0);
    const skipped = vmstat(m, 'pgskip_movable');
    const stolen = vmstat(m, 'pgsteal_direct') + vmstat(m, 'pgsteal_kswapd');
    expect(skipped).toBeGreaterThan(0);
    expect(stolen).toBeGreaterThan(0);
    // Skipped pages count as scanned; every other page scanned was clean cache, and freed.
    expect(vmstat(m, 'pgscan_direct') + vmstat(m, 'pgscan_kswapd')).toBe(skipped + stolen);
    // Each scan set aside at most SWAP_CLUSTER_MAX_SKIPPED (32768) pages, then took Movable
    // pages as they came; the lower zones gave the rest.
    const taken = movable - zoneinfo(m, 'Movable', 'nr_zone_inactive_file');
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(stolen);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('unmaps mapped page cache through the reverse map; referenced mapped pages get another trip', () => {
    const { m, p } = boot();
    const fd = cleanFile(p, '/data/mapped', 200);
    const a = p.mmap(0, 200 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(a, 200 * MiB);
    expect(meminfo(m, 'Mapped')).toBe(200 * 1024);
    anon(p, 350);
    // Pages were unmapped to be freed: the mapping lost resident pages.
    expect(meminfo(m, 'Mapped')).toBeLessThan(200 * 1024);
    expect(vmstat(m, 'pgsteal_file')).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
    // Touching the mapping again faults the dropped pages back in from the file.
    const before = vmstat(m, 'pgmajfault');
    p.touch(a, 200 * MiB);
    expect(vmstat(m, 'pgmajfault')).toBeGreaterThan(before);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a freed page starts its next life clean: page cache does not inherit workingset or other marks', () => {
    const m = Machine.boot({ memory: '512M', swap: '1G', cpus: 2, early });
    const p = m.spawn();
    // Anonymous memory shared with a child: referenced twice, reclaim activates it, then ages
    // it back to the inactive list as the active list outgrows it (PG_workingset).
    anon(p, 256);
    const child = p.fork();
    const hog = m.spawn({ cpu: 1 });
    anon(hog, 200);
    expect(vmstat(m, 'pgactivate')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgdeactivate')).toBeGreaterThan(0);
    for (const task of [child, p, hog]) task.exit();
    // Those pages are freed, and the page cache reuses them.
    const q = m.spawn();
    const fd = q.open('/data/new', O_CREAT | O_RDWR);
    q.write(fd, 100 * MiB);
    const f = m.mm.frames;
    const marks = PG_workingset | PG_active | PG_reclaim | PG_swapcache | PG_anon;
    const marked = [...m.vm.files.lookup('/data/new')!.mapping.i_pages.values()].filter(
      (pfn) => f.flags[pfn] & marks,
    );
    expect(marked).toEqual([]);
    expect(meminfo(m, 'Active(file)')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('never reclaims mlocked page cache', () => {
    const { m, p } = boot();
    const fd = cleanFile(p, '/data/locked', 64);
    const a = p.mmap(0, 64 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.mlock(a, 64 * MiB);
    expect(meminfo(m, 'Mlocked')).toBe(64 * 1024);
    cleanFile(p, '/data/other', 200);
    anon(p, 300);
    expect(meminfo(m, 'Mlocked')).toBe(64 * 1024);
    expect(meminfo(m, 'Unevictable')).toBe(64 * 1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('discards clean lazyfree (MADV_FREE) memory under pressure, keeping pages written since', () => {
    const { m, p } = boot();
    const a = anon(p, 200);
    p.madvise(a, 200 * MiB, MADV_FREE);
    p.touch(a, MiB, { write: true }); // 1 MiB written again after MADV_FREE
    anon(p, 300);
    expect(vmstat(m, 'pglazyfreed')).toBeGreaterThan(0);
    expect(vmstat(m, 'oom_kill')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('kills a task when only anonymous memory is left and there is no swap', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/cache', 100);
    const hog = m.spawn({ name: 'hog' });
    anon(hog, 300);
    const q = m.spawn({ name: 'late', cpu: 1 });
    anon(q, 250);
    expect(hog.exited).toBe(true);
    expect(vmstat(m, 'oom_kill')).toBe(1);
    expect(meminfo(m, 'Cached')).toBeLessThan(100 * 1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('drop_caches 1 drops clean unmapped page cache only', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/clean', 40);
    const fd = p.open('/data/dirty', O_CREAT | O_RDWR);
    p.write(fd, 8 * MiB);
    const fd2 = cleanFile(p, '/data/mapped', 16);
    const a = p.mmap(0, 16 * MiB, PROT_READ, MAP_SHARED, fd2, 0);
    p.touch(a, 16 * MiB);
    m.writeFile('/proc/sys/vm/drop_caches', '1');
    expect(meminfo(m, 'Cached')).toBe((8 + 16) * 1024);
    expect(vmstat(m, 'drop_pagecache')).toBe(1);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('reclaim for a high-order request', () => {
  /** The AllocContext prepare_alloc_pages() builds for `gfp` on node 0, CPU 0. */
  function allocContext(m: Machine, gfp: number): AllocContext {
    const ac = new AllocContext();
    ac.highest_zoneidx = gfp_zone(gfp);
    ac.zonelist = m.mm.nodes[0].zonelist_fallback;
    ac.migratetype = gfp_migratetype(gfp);
    ac.preferred_index = ac.zonelist.findIndex((z) => m.mm.zones[z].zone_idx <= ac.highest_zoneidx);
    ac.preferred_zone = m.mm.zones[ac.zonelist[ac.preferred_index]];
    return ac;
  }

  it('leaves a costly order to compaction where free memory suffices (compaction_ready), reclaims for order 0', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/cache', 100);
    const ac = allocContext(m, GFP_HIGHUSER_MOVABLE);
    const stolen = vmstat(m, 'pgsteal_direct');
    // Plenty of free memory: compaction could build an order-9 block, so nothing is reclaimed.
    expect(m.mm.hooks.try_to_free_pages(9, GFP_HIGHUSER_MOVABLE, ac)).toBe(1);
    expect(vmstat(m, 'pgsteal_direct')).toBe(stolen);
    // Without __GFP_IO compaction is not allowed: reclaim goes ahead.
    expect(m.mm.hooks.try_to_free_pages(9, GFP_NOIO | __GFP_HIGHMEM | __GFP_MOVABLE, ac)).toBeGreaterThan(1);
    expect(vmstat(m, 'pgsteal_direct')).toBeGreaterThan(stolen);
    expect(m.invariantViolations()).toEqual([]);
  });
});
