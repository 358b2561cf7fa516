/**
 * kpageflags + kpagecount → what each page was doing (the PC_* classes of sim/frame_image.ts).
 *
 * The rules, in order (docs/import.md has the reasons):
 *  1. NOPAGE: no page (a hole). RESERVED: a memblock reservation. OFFLINE, HWPOISON: kernel.
 *  2. BUDDY: free. HUGE: hugetlb (heads listed with their order; in use when mapped).
 *  3. SLAB, and anything else the kernel holds with no LRU flag and a map count: kernel.
 *     PGTABLE: page table.
 *  4. ANON (KSM included): anonymous; a page of a large anonymous folio (THP with COMPOUND_HEAD
 *     or COMPOUND_TAIL) is PC_THP, which the rebuild maps by PMD when the run is PMD-sized.
 *  5. LRU, or UPTODATE without the kernel's marks (a page cache page between lists): SWAPBACKED
 *     is shmem, DIRTY or WRITEBACK a dirty file page, the rest a clean file page.
 *     ACTIVE and REFERENCED are kept as the page's LRU age, for reclaim to see.
 *  6. No flag and no mapping: either free on a per-cpu list or a kernel allocation that sets no
 *     flag (pipe buffers, vmalloc, kernel stacks). Each zone's per-cpu lists held the pages its
 *     /proc/zoneinfo pagesets count; that many of these pages are per-cpu pages (PC_PCP, parked
 *     on the CPUs' lists again by the rebuild, a whole pageblock of them as one order-9 page),
 *     those in the pageblocks with the most free and user pages first; the rest are kernel.
 */

import { pageblock_nr_pages, pageblock_order } from '../mm/mmzone.ts';
import {
  AGE_ACTIVE,
  AGE_REFERENCED,
  type FrameImage,
  PC_ANON,
  PC_FILE,
  PC_FILE_DIRTY,
  PC_FREE,
  PC_HUGETLB,
  PC_KERNEL,
  PC_PCP,
  PC_PGTABLE,
  PC_RESERVED,
  PC_SHMEM,
  PC_THP,
  PC_UNKNOWN,
} from '../sim/frame_image.ts';
import type { KpfName } from './kpageflags.ts';
import type { KpageData, Snapshot } from './read.ts';

/** A page with no flag and no mapping, until the per-cpu lists' share is decided. */
const PC_BARE = 255;

export interface Classified {
  classes: Uint8Array;
  /** LRU age per pfn (AGE_ACTIVE, AGE_REFERENCED), from KPF_ACTIVE and KPF_REFERENCED. */
  age: Uint8Array;
  hugetlb: FrameImage['hugetlb'];
  /** Pages with no flag and no mapping, and how many of them were taken as per-cpu pages. */
  bare: number;
  bare_free: number;
}

/** One flag as masks of the low and high words (0 when the release lacks it). */
function mask(k: KpageData, name: KpfName): [number, number] {
  const bit = k.layout.bits[name];
  if (bit === undefined) return [0, 0];
  return bit < 32 ? [(1 << bit) >>> 0, 0] : [0, (1 << (bit - 32)) >>> 0];
}

/** The end pfn of the snapshot's zones, rounded up to a MAX_ORDER block. */
export function snapshotEndPfn(s: Snapshot): number {
  let end = 0;
  for (const z of s.zoneinfo) if (z.start_pfn !== undefined) end = Math.max(end, z.start_pfn + z.spanned);
  return Math.ceil(end / 1024) * 1024;
}

/**
 * Classify every page kpageflags covers; pfns it does not cover, or outside `ram` (6.18 reads 0
 * where there is no memmap, e.g. the PCI hole), stay PC_UNKNOWN.
 */
export function classifyKpage(
  s: Snapshot,
  k: KpageData,
  ram?: readonly { start: number; end: number }[],
): Classified {
  const nr = Math.max(
    snapshotEndPfn(s),
    ...k.ranges.map((r) => Math.ceil((r.start_pfn + r.nr_pages) / 1024) * 1024),
  );
  const classes = new Uint8Array(nr);
  const age = new Uint8Array(nr);
  const hugetlb: FrameImage['hugetlb'] = [];
  const [NOPAGE] = mask(k, 'KPF_NOPAGE');
  const [, RESERVED_HI] = mask(k, 'KPF_RESERVED');
  const [OFFLINE] = mask(k, 'KPF_OFFLINE');
  const [BALLOON] = mask(k, 'KPF_BALLOON');
  const [HWPOISON] = mask(k, 'KPF_HWPOISON');
  const [BUDDY] = mask(k, 'KPF_BUDDY');
  const [HUGE] = mask(k, 'KPF_HUGE');
  const [HEAD] = mask(k, 'KPF_COMPOUND_HEAD');
  const [TAIL] = mask(k, 'KPF_COMPOUND_TAIL');
  const [SLAB] = mask(k, 'KPF_SLAB');
  const [PGTABLE] = mask(k, 'KPF_PGTABLE');
  const [ANON] = mask(k, 'KPF_ANON');
  const [KSM] = mask(k, 'KPF_KSM');
  const [THP] = mask(k, 'KPF_THP');
  const [LRU] = mask(k, 'KPF_LRU');
  const [UPTODATE] = mask(k, 'KPF_UPTODATE');
  const [SWAPBACKED] = mask(k, 'KPF_SWAPBACKED');
  const [DIRTY] = mask(k, 'KPF_DIRTY');
  const [WRITEBACK] = mask(k, 'KPF_WRITEBACK');
  const [ZERO] = mask(k, 'KPF_ZERO_PAGE');
  const KERNELISH = (OFFLINE | BALLOON | HWPOISON | SLAB | ZERO) >>> 0;
  // Flags that say nothing about the owner: a page with only these is "bare".
  const [IDLE] = mask(k, 'KPF_IDLE');
  const [REFERENCED] = mask(k, 'KPF_REFERENCED');
  const [ACTIVE] = mask(k, 'KPF_ACTIVE');

  for (const r of k.ranges) {
    const { flags, count } = r;
    let head = -1;
    for (let i = 0; i < r.nr_pages; i++) {
      const pfn = r.start_pfn + i;
      const lo = flags[2 * i];
      const hi = flags[2 * i + 1];
      let c: number;
      if (lo & NOPAGE) c = PC_UNKNOWN;
      else if (hi & RESERVED_HI) c = PC_RESERVED;
      else if (lo & BUDDY) c = PC_FREE;
      else if (lo & HUGE) {
        c = PC_HUGETLB;
        if (lo & HEAD) {
          head = hugetlb.length;
          hugetlb.push({ pfn, order: 0, in_use: count[2 * i] > 0 });
        } else if (lo & TAIL && head >= 0) {
          const h = hugetlb[head];
          const nrp = pfn - h.pfn + 1;
          if ((nrp & (nrp - 1)) === 0) h.order = 31 - Math.clz32(nrp);
        }
      } else if (lo & KERNELISH) c = PC_KERNEL;
      else if (lo & PGTABLE) c = PC_PGTABLE;
      else if (lo & (ANON | KSM)) c = lo & THP && lo & (HEAD | TAIL) ? PC_THP : PC_ANON;
      else if (lo & LRU || lo & UPTODATE)
        c = lo & SWAPBACKED ? PC_SHMEM : lo & (DIRTY | WRITEBACK) ? PC_FILE_DIRTY : PC_FILE;
      else if (count[2 * i] > 0) c = PC_KERNEL;
      else if ((lo & ~(IDLE | REFERENCED)) === 0 && hi === 0) c = PC_BARE;
      else c = PC_KERNEL;
      classes[pfn] = c;
      if (lo & (ACTIVE | REFERENCED))
        age[pfn] = (lo & ACTIVE ? AGE_ACTIVE : 0) | (lo & REFERENCED ? AGE_REFERENCED : 0);
    }
  }
  if (ram) {
    let from = 0;
    for (const r of ram) {
      classes.fill(PC_UNKNOWN, from, Math.min(r.start, nr));
      from = Math.max(from, r.end);
    }
    if (from < nr) classes.fill(PC_UNKNOWN, from);
  }
  // A hugetlb folio whose tails did not make a power of two is not one the model can hold.
  const whole = hugetlb.filter((h) => h.order > 0);
  for (const h of hugetlb) if (h.order === 0) classes[h.pfn] = PC_KERNEL;
  const { bare, bare_free } = resolveBare(s, classes);
  return { classes, age, hugetlb: whole, bare, bare_free };
}

/** Decide, zone by zone, which bare pages were free on the per-cpu lists (rule 6). */
function resolveBare(s: Snapshot, classes: Uint8Array): { bare: number; bare_free: number } {
  const nr = classes.length;
  const nblocks = Math.ceil(nr / pageblock_nr_pages);
  const score = new Int32Array(nblocks);
  let bare = 0;
  for (let pfn = 0; pfn < nr; pfn++) {
    const c = classes[pfn];
    if (c === PC_BARE) bare++;
    else if (c !== PC_UNKNOWN && c !== PC_KERNEL && c !== PC_PGTABLE && c !== PC_RESERVED)
      score[pfn >>> pageblock_order]++;
  }
  // Whole bare pageblocks (a free order-9 page on a per-cpu list, or kernel memory such as pipe
  // buffers filling a block) score 0: on the QEMU guests ranking them first made predictions worse.
  let bare_free = 0;
  for (const z of s.zoneinfo) {
    if (z.start_pfn === undefined || !z.spanned) continue;
    const start = z.start_pfn;
    const end = Math.min(nr, start + z.spanned);
    let budget = 0;
    for (const p of z.pagesets) budget += p.count;
    // The highest-scoring bare pages are per-cpu: find the score where the budget runs out, then
    // take every page above it and the first ones, in pfn order, at it.
    const perScore = new Int32Array(pageblock_nr_pages + 1);
    for (let pfn = start; pfn < end; pfn++)
      if (classes[pfn] === PC_BARE) perScore[score[pfn >>> pageblock_order]]++;
    let cut = pageblock_nr_pages;
    let above = 0;
    while (cut > 0 && above + perScore[cut] < budget) above += perScore[cut--];
    let atCut = Math.max(0, Math.min(budget - above, perScore[cut]));
    for (let pfn = start; pfn < end; pfn++) {
      if (classes[pfn] !== PC_BARE) continue;
      const sc = score[pfn >>> pageblock_order];
      const pcp = sc > cut || (sc === cut && atCut-- > 0);
      classes[pfn] = pcp ? PC_PCP : PC_KERNEL;
      if (pcp) bare_free++;
    }
  }
  // Bare pages outside every zone's span (there should be none) are kernel.
  for (let pfn = 0; pfn < nr; pfn++) if (classes[pfn] === PC_BARE) classes[pfn] = PC_KERNEL;
  return { bare, bare_free };
}
