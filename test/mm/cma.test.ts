/**
 * CMA (mm/cma.c, mm/cma_sysfs.c, kernel/dma/contiguous.c, mm/hugetlb_cma.c, v6.18): areas
 * reserved at boot from cma=, cma_pernuma=, numa_cma= and hugetlb_cma= and placed as memblock
 * places them; their pageblocks become MIGRATE_CMA free memory that movable allocations borrow
 * (first once more than half of the zone's free memory is CMA) and unmovable ones never get;
 * cma_alloc() takes ranges back by migrating the borrowers out, retrying the next aligned slot on
 * -EBUSY (a pinned page); cma_release(); the sysfs files, vm events and meminfo lines.
 */
import { describe, expect, it } from 'vitest';
import { cma_by_name } from '../../src/mm/cma.ts';
import { __GFP_NORETRY, __GFP_NOWARN, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { MIGRATE_CMA, pageblock_nr_pages, ZONE_DMA32, ZONE_NORMAL } from '../../src/mm/mmzone.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import type { MachineConfigInput } from '../../src/sim/config.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { meminfo, NO_EARLY, pte, vmstat } from '../vm/helpers.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function boot(memory: string, over: Partial<MachineConfigInput> = {}): Machine {
  const m = Machine.boot({ memory, cpus: 2, early: NO_EARLY, seed: 5, ...over });
  m.kernel.drain_all_pages();
  return m;
}

const isCma = (m: Machine, pfn: number): boolean => get_pfnblock_migratetype(m.mm, pfn) === MIGRATE_CMA;

function sysfs(m: Machine, area: string, attr: string): number {
  const text = m.readFile(`/sys/kernel/mm/cma/${area}/${attr}`);
  expect(text).toMatch(/^\d+\n$/);
  return Number(text);
}

/** The pfns mapping [a, a + len) of `p`. */
function mapped(m: Machine, p: Process, a: number, len: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < len; off += PAGE) out.push(pte(m, p, a + off)?.pfn ?? -1);
  return out;
}

describe('boot: cma=, cma_pernuma=, numa_cma=, hugetlb_cma=', () => {
  it('cma=256M: CmaTotal 262144 kB, all free, MIGRATE_CMA pageblocks, sysfs and zoneinfo', () => {
    const m = boot('1G', { cma: '256M' });
    expect(meminfo(m, 'CmaTotal')).toBe(262144);
    expect(meminfo(m, 'CmaFree')).toBe(262144);
    const [area] = m.kernel.cma_areas();
    expect(area).toMatchObject({
      name: 'reserved',
      nid: -1,
      order_per_bit: 0,
      count: 65536,
      available_count: 65536,
    });
    // Below 4 GiB + size there is no bottom-up try: top-down under the end of RAM, 2 MiB aligned.
    const base = area.ranges[0].base_pfn;
    expect(base % pageblock_nr_pages).toBe(0);
    expect(m.mm.klog).toContain(`cma: Reserved 256 MiB at 0x${(base * PAGE).toString(16).padStart(16, '0')}`);
    for (let pfn = base; pfn < base + 65536; pfn += pageblock_nr_pages) expect(isCma(m, pfn)).toBe(true);
    expect(isCma(m, base - 1)).toBe(false);
    const zone = m.mm.zones[ZONE_DMA32];
    expect(zone.cma_pages).toBe(65536);
    expect(zone.vm_stat[NR_FREE_CMA_PAGES]).toBe(65536);
    expect(m.readFile('/proc/zoneinfo')).toMatch(/zone +DMA32\n[\s\S]*?\n {8}cma {6}65536\n/);
    expect(m.readFile('/proc/vmstat')).toMatch(/^nr_free_cma 65536$/m);
    expect(m.readFile('/proc/pagetypeinfo')).toMatch(/^Node 0, zone +DMA32 +\d+ +\d+ +\d+ +\d+ +128 +0 *$/m);
    // mm/cma_sysfs.c: five read-only files, one number each.
    expect(sysfs(m, 'reserved', 'total_pages')).toBe(65536);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(65536);
    expect(sysfs(m, 'reserved', 'alloc_pages_success')).toBe(0);
    expect(sysfs(m, 'reserved', 'alloc_pages_fail')).toBe(0);
    expect(sysfs(m, 'reserved', 'release_pages_success')).toBe(0);
    expect(() => m.writeFile('/sys/kernel/mm/cma/reserved/total_pages', '1')).toThrow(
      expect.objectContaining({ code: 'EACCES' }),
    );
    expect(() => m.readFile('/sys/kernel/mm/cma/nosuch/total_pages')).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    m.checkInvariants();
  });

  it('above 4 GiB the area goes bottom-up from 4 GiB, in ZONE_NORMAL; the memmap stays on top', () => {
    const m = boot('8G', { cma: '256M' });
    const [area] = m.kernel.cma_areas();
    expect(area.ranges[0].base_pfn).toBe(0x100000);
    expect(m.mm.zones[ZONE_NORMAL].cma_pages).toBe(65536);
    expect(m.mm.klog).toContain('cma: Reserved 256 MiB at 0x0000000100000000');
    m.checkInvariants();
  });

  it('no cma= at all: no area, no sysfs files, CmaTotal 0', () => {
    const m = boot('1G');
    expect(m.kernel.cma_areas()).toEqual([]);
    expect(meminfo(m, 'CmaTotal')).toBe(0);
    expect(m.mm.totalcma_pages).toBe(0);
  });

  it('cma=size@base is a fixed placement; misaligned, overlapping or too large ones are refused', () => {
    const fixed = boot('2G', { cma: '64M@1G' });
    expect(fixed.kernel.cma_areas()[0].ranges[0]).toEqual({ base_pfn: 0x40000, count: 16384 });
    expect(fixed.mm.klog).toContain('cma: Reserved 64 MiB at 0x0000000040000000');
    // -EINVAL: not 2 MiB aligned.
    const mis = boot('2G', { cma: '64M@1M' });
    expect(mis.kernel.cma_areas()).toEqual([]);
    expect(mis.mm.klog).toContain(
      'cma: Region at 0x0000000000100000 must be aligned to 0x0000000000200000 bytes',
    );
    expect(mis.mm.klog).toContain('cma: Failed to reserve 64 MiB');
    // -EBUSY: the kernel image sits at 16 MiB.
    const busy = boot('2G', { cma: '64M@16M' });
    expect(busy.kernel.cma_areas()).toEqual([]);
    expect(busy.mm.klog).toContain('cma: Failed to reserve 64 MiB');
    expect(meminfo(busy, 'CmaTotal')).toBe(0);
    // -EINVAL: beyond the end of memory.
    const big = boot('1G', { cma: '2G' });
    expect(big.kernel.cma_areas()).toEqual([]);
    expect(big.mm.klog.some((l) => l.startsWith('cma: Size (0x0000000080000000) of region'))).toBe(true);
    // size@base-limit: anywhere below limit (top-down).
    const lim = boot('2G', { cma: '32M@0-512M' });
    const r = lim.kernel.cma_areas()[0].ranges[0];
    expect(r.base_pfn + r.count).toBeLessThanOrEqual(512 * 256);
    for (const x of [fixed, lim]) x.checkInvariants();
  });

  it('an area across two zones is not activated: its pages are ordinary free memory', () => {
    // Fixed across the boundary of node 0's DMA32 and node 1's DMA32.
    const node1 = boot('2G', { nodes: 2 }).mm.nodes[1].node_start_pfn * PAGE;
    const m = boot('2G', { nodes: 2, cma: `4M@${node1 - 2 * MiB}` });
    const [area] = m.kernel.cma_areas();
    expect(area.count).toBe(0);
    expect(m.mm.klog).toContain('cma: CMA area reserved could not be activated');
    expect(meminfo(m, 'CmaTotal')).toBe(0);
    m.checkInvariants();
  });

  it('hugetlb_cma=2G on two nodes: hugetlb0 and hugetlb1, 1 GiB each, 1 GiB aligned, order_per_bit 9', () => {
    const m = boot('8G', { nodes: 2, hugetlb_cma: '2G' });
    const areas = m.kernel.cma_areas();
    expect(areas.map((a) => [a.name, a.nid, a.order_per_bit, a.count])).toEqual([
      ['hugetlb0', 0, 9, 262144],
      ['hugetlb1', 1, 9, 262144],
    ]);
    for (const a of areas) {
      expect(a.ranges[0].base_pfn % 262144).toBe(0);
      const pgdat = m.mm.nodes[a.nid];
      expect(a.ranges[0].base_pfn).toBeGreaterThanOrEqual(pgdat.node_start_pfn);
      expect(a.ranges[0].base_pfn + a.count).toBeLessThanOrEqual(
        pgdat.node_start_pfn + pgdat.node_spanned_pages,
      );
    }
    expect(m.mm.klog).toContain('hugetlb_cma: reserve 2048 MiB, up to 1024 MiB per node');
    expect(m.mm.klog).toContain('hugetlb_cma: reserved 1024 MiB on node 1');
    expect(meminfo(m, 'CmaTotal')).toBe(2 * 1024 * 1024);
    m.checkInvariants();
  });

  it('hugetlb_cma per node, with too small and unknown nodes warned about', () => {
    const m = boot('8G', { nodes: 2, hugetlb_cma: '1:1G,0:512M,7:1G' });
    expect(m.kernel.cma_areas().map((a) => a.name)).toEqual(['hugetlb1']);
    expect(m.mm.klog).toContain('hugetlb_cma: cma area of node 0 should be at least 1024 MiB');
    expect(m.mm.klog).toContain('hugetlb_cma: invalid node 7 specified');
  });

  it('cma_pernuma= and numa_cma= give per-node areas on their nodes, before the default one', () => {
    const m = boot('4G', { nodes: 2, cma_pernuma: '32M', numa_cma: '1:16M', cma: '64M' });
    const areas = m.kernel.cma_areas();
    expect(areas.map((a) => [a.name, a.nid, a.count])).toEqual([
      ['pernuma0', 0, 8192],
      ['pernuma1', 1, 8192],
      ['numa1', 1, 4096],
      ['reserved', -1, 16384],
    ]);
    for (const a of areas.slice(0, 3)) {
      const pgdat = m.mm.nodes[a.nid];
      expect(a.ranges[0].base_pfn).toBeGreaterThanOrEqual(pgdat.node_start_pfn);
    }
    expect(meminfo(m, 'CmaTotal')).toBe((32 + 32 + 16 + 64) * 1024);
    expect(m.readFile('/sys/kernel/mm/cma/numa1/total_pages')).toBe('4096\n');
    m.checkInvariants();
  });

  it('validates the parameters', () => {
    expect(() => Machine.boot({ memory: '1G', cma: '256X' })).toThrow(/cma/);
    expect(() => Machine.boot({ memory: '1G', cma: '256M@' })).toThrow(/cma/);
    expect(() => Machine.boot({ memory: '1G', hugetlb_cma: '0:1G,x' })).toThrow(/hugetlb_cma/);
    expect(() => Machine.boot({ memory: '1G', cma: '64M', kernel: { CMA: false } })).toThrow(
      /needs kernel.CMA/,
    );
    expect(() => Machine.boot({ memory: '1G', cma_pernuma: '64M', kernel: { NUMA: false } })).toThrow(
      /needs kernel.NUMA/,
    );
  });
});

describe('lending: who gets CMA pages', () => {
  it('movable allocations borrow CMA once more than half of the zone free memory is CMA; unmovable never', () => {
    const m = boot('1G', { cma: '256M' });
    const zone = m.mm.zones[ZONE_DMA32];
    // Plenty of MOVABLE memory: a movable page comes from it.
    const first = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
    expect(isCma(m, first)).toBe(false);
    m.kernel.free_pages(first, 0);
    // Take ordinary memory with unmovable blocks until CMA is well over half the free pages.
    const held: number[] = [];
    while (zone.vm_stat[NR_FREE_CMA_PAGES] <= (zone.vm_stat[NR_FREE_PAGES] + 8192) / 2) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 9);
      expect(pfn).toBeGreaterThanOrEqual(0);
      expect(isCma(m, pfn)).toBe(false);
      held.push(pfn);
    }
    expect(meminfo(m, 'CmaFree')).toBe(262144);
    m.kernel.drain_all_pages();
    const movable = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
    expect(isCma(m, movable)).toBe(true);
    // The pcp refill took a batch from CMA: those sit on the MOVABLE pcp list.
    expect(zone.vm_stat[NR_FREE_CMA_PAGES]).toBeLessThan(65536);
    // Unmovable and reclaimable requests never get a CMA page, even with CMA the most free memory.
    for (let i = 0; i < 3000; i++) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 0);
      if (pfn < 0) break;
      expect(isCma(m, pfn)).toBe(false);
    }
    m.checkInvariants();
  });

  it('a FOLL_LONGTERM pin never keeps a page in CMA; a process faulting into CMA does', () => {
    const m = boot('1G', { cma: '600M' });
    const p = m.spawn();
    const a = p.mmap(0, 8 * MiB, RW, ANON);
    p.touch(a, 8 * MiB, { write: true });
    const before = mapped(m, p, a, 8 * MiB);
    expect(before.filter((pfn) => isCma(m, pfn)).length).toBeGreaterThan(1000);
    const pins = p.pin_user_pages(a, 8 * MiB, FOLL_LONGTERM | FOLL_WRITE);
    expect(pins.some((pfn) => isCma(m, pfn))).toBe(false);
    expect(mapped(m, p, a, 8 * MiB)).toEqual(pins);
    m.checkInvariants();
    p.unpin_user_pages(pins);
  });
});

describe('cma_alloc and cma_release', () => {
  it('migrates borrowed anonymous and page-cache pages out, keeping every mapping', () => {
    const m = boot('1G', { cma: '600M' });
    const cma = cma_by_name(m.mm, 'reserved')!;
    const base = cma.ranges[0].base_pfn;
    const inArea = (pfn: number) => pfn >= base && pfn < base + cma.count;
    const p = m.spawn();
    const a = p.mmap(0, 48 * MiB, RW, ANON);
    p.touch(a, 48 * MiB, { write: true });
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 16 * MiB);
    const fm = p.mmap(0, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(fm, 16 * MiB);
    const anonBefore = mapped(m, p, a, 48 * MiB);
    const fileBefore = mapped(m, p, fm, 16 * MiB);
    expect(anonBefore.filter(inArea).length).toBeGreaterThan(1000);
    expect(fileBefore.filter(inArea).length).toBeGreaterThan(100);
    const migrated = vmstat(m, 'pgmigrate_success');
    const t0 = m.mm.kernel_ns;
    const pfn = m.kernel.cma_alloc('reserved', cma.count, 0);
    expect(pfn).toBe(base);
    expect(m.mm.kernel_ns).toBeGreaterThan(t0);
    expect(vmstat(m, 'pgmigrate_success') - migrated).toBeGreaterThanOrEqual(
      anonBefore.filter(inArea).length,
    );
    const anonAfter = mapped(m, p, a, 48 * MiB);
    const fileAfter = mapped(m, p, fm, 16 * MiB);
    expect(anonAfter.every((x) => x >= 0 && !inArea(x))).toBe(true);
    expect(fileAfter.every((x) => x >= 0 && !inArea(x))).toBe(true);
    for (let q = base; q < base + cma.count; q++) expect(m.mm.frames.flags[q] & PGI_alloc).toBe(PGI_alloc);
    expect(vmstat(m, 'cma_alloc_success')).toBe(1);
    expect(vmstat(m, 'cma_alloc_fail')).toBe(0);
    expect(sysfs(m, 'reserved', 'alloc_pages_success')).toBe(cma.count);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(0);
    expect(meminfo(m, 'CmaFree')).toBe(0);
    m.checkInvariants();
    // A second request finds nothing available: -1 at once, counted as a failure.
    expect(m.kernel.cma_alloc('reserved', 1, 0, true)).toBe(-1);
    expect(vmstat(m, 'cma_alloc_fail')).toBe(1);
    expect(sysfs(m, 'reserved', 'alloc_pages_fail')).toBe(1);
    expect(m.kernel.cma_release('reserved', pfn, cma.count)).toBe(true);
    m.kernel.drain_all_pages();
    expect(sysfs(m, 'reserved', 'release_pages_success')).toBe(cma.count);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(cma.count);
    expect(meminfo(m, 'CmaFree')).toBe(cma.count * 4);
    m.checkInvariants();
  });

  it('a short-term pin makes cma_alloc fail with -EBUSY or retry at the next aligned slot', () => {
    const m = boot('256M', { cma: '200M' });
    const cma = cma_by_name(m.mm, 'reserved')!;
    const base = cma.ranges[0].base_pfn;
    const p = m.spawn();
    const a = p.mmap(0, 8 * MiB, RW, ANON);
    p.touch(a, 8 * MiB, { write: true });
    const pfns = mapped(m, p, a, 8 * MiB);
    const idx = pfns.findIndex((x) => x >= base && x < base + cma.count);
    expect(idx).toBeGreaterThanOrEqual(0);
    const [pinned] = p.pin_user_pages(a + idx * PAGE, PAGE, FOLL_WRITE);
    expect(pinned).toBe(pfns[idx]);
    // The whole area is one slot: busy, so the allocation fails, logged with the free runs.
    expect(m.kernel.cma_alloc('reserved', cma.count, 0)).toBe(-1);
    expect(vmstat(m, 'cma_alloc_fail')).toBe(1);
    expect(sysfs(m, 'reserved', 'alloc_pages_fail')).toBe(cma.count);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(cma.count);
    expect(m.mm.klog).toContain(
      `cma: __cma_alloc: reserved: alloc failed, req-size: ${cma.count} pages, ret: -16`,
    );
    expect(m.mm.klog).toContain(`=> ${cma.count} free of ${cma.count} total pages`);
    m.checkInvariants();
    // Pageblock-sized, pageblock-aligned pieces: every slot but the pinned page's one.
    const slots = cma.count / pageblock_nr_pages;
    const got: number[] = [];
    for (let i = 0; i < slots; i++) {
      const pfn = m.kernel.cma_alloc('reserved', pageblock_nr_pages, 9, true);
      if (pfn < 0) break;
      expect(pfn % pageblock_nr_pages).toBe(0);
      expect(pinned >= pfn && pinned < pfn + pageblock_nr_pages).toBe(false);
      got.push(pfn);
    }
    expect(got.length).toBe(slots - 1);
    expect(mapped(m, p, a, 8 * MiB)[idx]).toBe(pinned);
    expect(vmstat(m, 'cma_alloc_success')).toBe(slots - 1);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(pageblock_nr_pages);
    m.checkInvariants();
    // Unpinned, the last slot can be had too.
    p.unpin_user_pages([pinned]);
    const last = m.kernel.cma_alloc('reserved', pageblock_nr_pages, 9);
    expect(pinned >= last && pinned < last + pageblock_nr_pages).toBe(true);
    for (const pfn of [...got, last])
      expect(m.kernel.cma_release('reserved', pfn, pageblock_nr_pages)).toBe(true);
    expect(sysfs(m, 'reserved', 'available_pages')).toBe(cma.count);
    expect(sysfs(m, 'reserved', 'release_pages_success')).toBe(cma.count);
    m.checkInvariants();
  });

  it('alignment: align is a page order counted from pfn 0, whatever the base', () => {
    const m = boot('1G', { cma: '64M' });
    const pfn = m.kernel.cma_alloc('reserved', 3, 4);
    expect(pfn % 16).toBe(0);
    const next = m.kernel.cma_alloc('reserved', 1, 0);
    expect(next).toBe(pfn + 3);
    expect(m.kernel.cma_release('reserved', pfn, 3)).toBe(true);
    expect(m.kernel.cma_release('reserved', next, 1)).toBe(true);
    m.checkInvariants();
  });

  it('errors: unknown area, bad arguments, count 0, releases outside the area or never allocated', () => {
    const m = boot('1G', { cma: '64M' });
    const cma = cma_by_name(m.mm, 'reserved')!;
    const base = cma.ranges[0].base_pfn;
    expect(() => m.kernel.cma_alloc('nosuch', 1)).toThrow(RangeError);
    expect(() => m.kernel.cma_alloc('reserved', -1)).toThrow(RangeError);
    expect(() => m.kernel.cma_alloc('reserved', 1, 1.5)).toThrow(RangeError);
    // count 0: NULL without counting (__cma_alloc returns before the accounting).
    expect(m.kernel.cma_alloc('reserved', 0)).toBe(-1);
    expect(vmstat(m, 'cma_alloc_fail')).toBe(0);
    // More than the area: -1, counted.
    expect(m.kernel.cma_alloc('reserved', cma.count + 1, 0, true)).toBe(-1);
    expect(vmstat(m, 'cma_alloc_fail')).toBe(1);
    // cma_release() of pages outside the area is false; of free pages inside it, a misuse.
    expect(m.kernel.cma_release('reserved', base - 1, 1)).toBe(false);
    expect(m.kernel.cma_release('reserved', base + cma.count - 1, 2)).toBe(false);
    expect(() => m.kernel.cma_release('reserved', base, 1)).toThrow(RangeError);
    m.checkInvariants();
  });

  it('the invariant checker notices a pageblock of an area that lost its CMA type', () => {
    const m = boot('1G', { cma: '64M' });
    const base = m.kernel.cma_areas()[0].ranges[0].base_pfn;
    m.mm.pb_flags[(base + 512) / 512] = (m.mm.pb_flags[(base + 512) / 512] & ~7) | 1;
    expect(m.invariantViolations().some((v) => v.includes('cma reserved: pageblock'))).toBe(true);
  });
});
