/**
 * mm/huge_memory.c, the folio side of anonymous transparent huge pages: the sysfs state
 * (/sys/kernel/mm/transparent_hugepage), vma_thp_gfp_mask(), the per-folio entire mapcount, the
 * deferred split queue with its shrinker, and the large-folio helpers the rest of mm/ asks.
 *
 * An anonymous large folio (a THP of order 2..9, "mTHP" below PMD size) is a compound block
 * (PG_head + PG_tail from __GFP_COMP), naturally aligned, so a subpage finds its head by clearing
 * the low bits of its pfn up to the head's order (folio_head()). Every subpage carries the anon
 * identity (PG_anon, mapping, index = head index + i) so the reverse map finds each of its PTEs;
 * the folio-wide state (PG_lru, PG_active, PG_mlocked, PG_unevictable, PG_dirty, PG_referenced)
 * lives on the head only. frames.mapcount of a subpage counts its PTE mappings
 * (page->_mapcount + 1); PMD mappings (order 9 only) are the folio's entire mapcount, kept here
 * per 2 MiB frame (folio->_entire_mapcount + 1). Folios below PMD order are only PTE-mapped.
 *
 * The page-table side (PMD mappings, the THP fault, split_huge_pmd, split_folio) is
 * vm/huge_memory.ts, which installs split_folio here for the shrinker and for migration.
 */

import {
  __GFP_DIRECT_RECLAIM,
  __GFP_KSWAPD_RECLAIM,
  __GFP_NORETRY,
  GFP_TRANSHUGE,
  GFP_TRANSHUGE_LIGHT,
} from './gfp.ts';
import type { MM } from './mm.ts';
import { PG_anon, PG_head, PG_tail } from './page-flags.ts';
import type { ShrinkControl } from './shrinker.ts';
import { vm_event_index } from './vmstat_items.ts';

export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;
export const HPAGE_PMD_SIZE = HPAGE_PMD_NR * 4096;

export const THP_ENABLED_MODES = ['always', 'madvise', 'never'] as const;
export type ThpEnabled = (typeof THP_ENABLED_MODES)[number];
export const THP_DEFRAG_MODES = ['always', 'defer', 'defer+madvise', 'madvise', 'never'] as const;
export type ThpDefrag = (typeof THP_DEFRAG_MODES)[number];

/**
 * The per-size anonymous controls (hugepages-<size>kB/enabled): which of the bitmaps
 * huge_anon_orders_{always,inherit,madvise} holds the order, or none (never).
 */
export const ANON_ORDER_NEVER = 0;
export const ANON_ORDER_ALWAYS = 1;
export const ANON_ORDER_INHERIT = 2;
export const ANON_ORDER_MADVISE = 3;
/** THP_ORDERS_ALL_ANON on x86-64: orders 2..9 (order 1 is never an anonymous THP). */
export const THP_ANON_MIN_ORDER = 2;

const THP_DEFERRED_SPLIT_PAGE = vm_event_index('thp_deferred_split_page');

/**
 * The per-size event counters of enum mthp_stat_item the model counts for every order (the
 * hugepages-<size>kB/stats files): count_mthp_stat(order, item).
 */
export const MTHP_STAT_ANON_FAULT_ALLOC = 0;
export const MTHP_STAT_ANON_FAULT_FALLBACK = 1;
export const MTHP_STAT_ANON_FAULT_FALLBACK_CHARGE = 2;
export const MTHP_STAT_SPLIT = 3;
export const MTHP_STAT_SPLIT_FAILED = 4;
export const MTHP_STAT_SPLIT_DEFERRED = 5;
const MTHP_STAT_NR = 6;

/** transparent_hugepage_flags and the khugepaged tunables, plus the per-folio state of THPs. */
export class ThpState {
  enabled: ThpEnabled = 'madvise';
  defrag: ThpDefrag = 'madvise';
  /** TRANSPARENT_HUGEPAGE_USE_ZERO_PAGE_FLAG (default 1). */
  use_zero_page = 1;
  /** khugepaged/defrag (TRANSPARENT_HUGEPAGE_DEFRAG_KHUGEPAGED_FLAG, default 1). */
  khugepaged_defrag = 1;
  /**
   * Per order, its hugepages-<size>kB/enabled setting (ANON_ORDER_*): hugepage_init_sysfs()
   * sets only the PMD order to inherit, every other size is never.
   */
  readonly anon_orders = new Uint8Array(HPAGE_PMD_ORDER + 1);
  /** khugepaged tunables (mm/khugepaged.c defaults). */
  readonly khugepaged = {
    pages_to_scan: 8 * HPAGE_PMD_NR,
    scan_sleep_millisecs: 10000,
    alloc_sleep_millisecs: 60000,
    max_ptes_none: HPAGE_PMD_NR - 1,
    max_ptes_swap: HPAGE_PMD_NR / 8,
    max_ptes_shared: HPAGE_PMD_NR / 2,
    pages_collapsed: 0,
    full_scans: 0,
  };
  /** Per 2 MiB frame: PMD mappings of the THP whose head starts it (_entire_mapcount + 1). */
  readonly entire_mapcount: Int32Array;
  /** Heads of the large anon folios with PG_partially_mapped (any order). */
  readonly partially_mapped = new Set<number>();
  /** Per order and mthp_stat_item: the event counts (count_mthp_stat()). */
  readonly mthp_stats = new Float64Array((HPAGE_PMD_ORDER + 1) * MTHP_STAT_NR);
  /** Per order: MTHP_STAT_NR_ANON, the anonymous folios of that order (mod_mthp_stat()). */
  readonly nr_anon = new Int32Array(HPAGE_PMD_ORDER + 1);
  /** Per node: the deferred split queue (pgdat->deferred_split_queue), heads in list order. */
  readonly split_queue: Set<number>[];
  /** The vm layer, once it has installed split_folio() (vm/huge_memory.ts thp_shrinker_init()). */
  vm: ThpVmOps | null = null;
  /** The vm layer, once khugepaged_init() has run (vm/khugepaged.ts). */
  khugepaged_thread: ThpVmOps | null = null;

  constructor(nr_frames: number, nr_nodes: number) {
    this.entire_mapcount = new Int32Array((nr_frames >> HPAGE_PMD_ORDER) + 1);
    this.split_queue = Array.from({ length: nr_nodes }, () => new Set<number>());
    this.anon_orders[HPAGE_PMD_ORDER] = ANON_ORDER_INHERIT;
  }

  /** split_folio() of the vm layer (it needs the reverse map); 0 or -errno (-EBUSY without). */
  split_folio(head: number, isolated: boolean): number {
    return this.vm ? this.vm.split_folio(head, isolated) : -16;
  }

  /** start_stop_khugepaged() of the vm layer (vm/khugepaged.ts), after an enabled write. */
  start_stop_khugepaged(): void {
    this.khugepaged_thread?.start_stop_khugepaged();
  }

  /** wake_up_interruptible(&khugepaged_wait) with the sleep expired (the sleep knobs' writes). */
  khugepaged_wakeup(): void {
    this.khugepaged_thread?.khugepaged_wakeup();
  }
}

/** What THP needs of the address-space layer (vm/vm.ts Vm implements it). */
export interface ThpVmOps {
  split_folio(head: number, isolated: boolean): number;
  start_stop_khugepaged(): void;
  khugepaged_wakeup(): void;
}

/** The THP state of a machine (created with the defaults at first use). */
export function thp(mm: MM): ThpState {
  let s = mm.thp_state;
  if (!s) {
    s = new ThpState(mm.frames.nr_frames, mm.nodes.length);
    mm.thp_state = s;
  }
  return s;
}

/** A subpage of a large anonymous folio (a THP). */
export function folio_test_large_anon(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  return (fl & (PG_head | PG_tail)) !== 0 && (fl & PG_anon) !== 0;
}

/** The head of the PMD-mapped THP `pfn` belongs to (an order-9 folio: clear the low 9 bits). */
export function thp_head(pfn: number): number {
  return pfn - (pfn & (HPAGE_PMD_NR - 1));
}

/**
 * compound_head() of a page of a large anonymous folio (order 2..9): the folio is naturally
 * aligned, so its head is the nearest PG_head below `pfn` whose order covers it (at most 9
 * tries); `pfn` itself if it is not a tail. An order-4 folio at pfn 0x1230 is the head of
 * pfn 0x123b: 0x123b with its low 4 bits cleared.
 */
export function folio_head(mm: MM, pfn: number): number {
  const f = mm.frames;
  if (!(f.flags[pfn] & PG_tail)) return pfn;
  for (let o = 1; o <= HPAGE_PMD_ORDER; o++) {
    const h = pfn - (pfn & ((1 << o) - 1));
    if (f.flags[h] & PG_head && f.order[h] >= o) return h;
  }
  return pfn;
}

/** folio_nr_pages(): pages of the folio headed by `pfn` (1 for order-0 pages). */
export function folio_nr_pages(mm: MM, pfn: number): number {
  return mm.frames.flags[pfn] & PG_head ? 1 << mm.frames.order[pfn] : 1;
}

/** folio_entire_mapcount(): PMD mappings, which only a PMD-order folio can have. */
export function folio_entire_mapcount(mm: MM, head: number): number {
  if (mm.frames.order[head] !== HPAGE_PMD_ORDER) return 0;
  return thp(mm).entire_mapcount[head >> HPAGE_PMD_ORDER];
}

/** folio_mapped() of a large folio: a PMD mapping or any subpage mapped by a PTE. */
export function thp_mapped(mm: MM, head: number): boolean {
  if (folio_entire_mapcount(mm, head) > 0) return true;
  const mc = mm.frames.mapcount;
  const nr = folio_nr_pages(mm, head);
  for (let i = 0; i < nr; i++) if (mc[head + i] > 0) return true;
  return false;
}

/** Subpages of a large folio that some PTE maps. */
export function thp_ptemapped_pages(mm: MM, head: number): number {
  const mc = mm.frames.mapcount;
  const nr = folio_nr_pages(mm, head);
  let n = 0;
  for (let i = 0; i < nr; i++) if (mc[head + i] > 0) n++;
  return n;
}

/** kernel: include/linux/huge_mm.h count_mthp_stat() */
export function count_mthp_stat(mm: MM, order: number, item: number): void {
  thp(mm).mthp_stats[order * MTHP_STAT_NR + item]++;
}

/** The count of one mthp_stat_item of `order`. */
export function mthp_stat(mm: MM, order: number, item: number): number {
  return thp(mm).mthp_stats[order * MTHP_STAT_NR + item];
}

/** Any anonymous large folio exists (MTHP_STAT_NR_ANON of some order): an early-out. */
export function anon_large_folios_exist(mm: MM): boolean {
  const n = thp(mm).nr_anon;
  for (let o = THP_ANON_MIN_ORDER; o <= HPAGE_PMD_ORDER; o++) if (n[o]) return true;
  return false;
}

/**
 * kernel: mm/huge_memory.c vma_thp_gfp_mask()
 * The allocation flags of a THP fault under the sysfs defrag mode; `madvised` is VM_HUGEPAGE.
 */
export function vma_thp_gfp_mask(mm: MM, madvised: boolean): number {
  switch (thp(mm).defrag) {
    case 'always':
      return GFP_TRANSHUGE | (madvised ? 0 : __GFP_NORETRY);
    case 'defer':
      return GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM;
    case 'defer+madvise':
      return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : __GFP_KSWAPD_RECLAIM);
    case 'madvise':
      return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : 0);
    default:
      return GFP_TRANSHUGE_LIGHT;
  }
}

/**
 * kernel: mm/huge_memory.c deferred_split_folio()
 * Queue a large folio on its node's deferred split queue. A new PMD-sized THP is queued (not
 * partially mapped) for the underused-THP scan (split_underused_thp, default on); a partial
 * unmap marks a folio of any order partially mapped, counted once in its split_deferred (and,
 * PMD-sized, in thp_deferred_split_page). Order 0 and 1 folios are never queued.
 */
export function deferred_split_folio(mm: MM, head: number, partially_mapped: boolean): void {
  const s = thp(mm);
  const order = mm.frames.order[head];
  if (order <= 1) return;
  if (partially_mapped && !s.partially_mapped.has(head)) {
    s.partially_mapped.add(head);
    if (order === HPAGE_PMD_ORDER) mm.vm_events[THP_DEFERRED_SPLIT_PAGE]++;
    count_mthp_stat(mm, order, MTHP_STAT_SPLIT_DEFERRED);
  }
  const q = s.split_queue[mm.page_zone(head)!.nid];
  if (!q.has(head)) q.add(head);
}

/** The folio leaves the deferred split queue (folio_unqueue_deferred_split(), at free or split). */
export function folio_unqueue_deferred_split(mm: MM, head: number): void {
  const s = thp(mm);
  s.partially_mapped.delete(head);
  s.split_queue[mm.page_zone(head)!.nid].delete(head);
}

// kernel: mm/huge_memory.c deferred_split_count(): the folios queued on the node (the shrinker,
// registered by vm/huge_memory.ts, turns 0 into SHRINK_EMPTY).
export function deferred_split_count(mm: MM, sc: ShrinkControl): number {
  return thp(mm).split_queue[sc.nid].size;
}

/**
 * kernel: mm/huge_memory.c deferred_split_scan()
 * Take up to nr_to_scan folios off the queue: a partially mapped one is split (its unmapped
 * pages freed) or, if that fails, stays queued; one that is not is an underused-THP candidate.
 * thp_underused() needs page contents (zero-filled subpages), which the model does not keep:
 * with the default max_ptes_none (511) the kernel answers false anyway, and the model always
 * does, so such folios just leave the queue.
 */
export function deferred_split_scan(mm: MM, sc: ShrinkControl): number {
  const s = thp(mm);
  const q = s.split_queue[sc.nid];
  const batch: number[] = [];
  for (const head of q) {
    batch.push(head);
    if (--sc.nr_to_scan <= 0) break;
  }
  let split = 0;
  for (const head of batch) {
    if (!s.partially_mapped.has(head)) {
      q.delete(head);
      continue;
    }
    if (s.split_folio(head, false) === 0) split++;
  }
  return split;
}

/** hugepage_init(): the boot-time `enabled` mode (the shrinker: vm/huge_memory.ts). */
export function thp_init(mm: MM, enabled: ThpEnabled): void {
  thp(mm).enabled = enabled;
}

/** kernel: mm/huge_memory.c enabled_show() */
export function thp_enabled_show(mm: MM): string {
  const e = thp(mm).enabled;
  return `${THP_ENABLED_MODES.map((m) => (m === e ? `[${m}]` : m)).join(' ')}\n`;
}

/** kernel: mm/huge_memory.c defrag_show() */
export function thp_defrag_show(mm: MM): string {
  const d = thp(mm).defrag;
  return `${THP_DEFRAG_MODES.map((m) => (m === d ? `[${m}]` : m)).join(' ')}\n`;
}

/** sysfs_streq(): equal, ignoring one trailing newline on either side. */
export function sysfs_streq(a: string, b: string): boolean {
  const strip = (s: string): string => (s.endsWith('\n') ? s.slice(0, -1) : s);
  return strip(a) === strip(b);
}

/** kernel: mm/huge_memory.c enabled_store(); 0 or -EINVAL. Every valid write restarts khugepaged. */
export function thp_enabled_store(mm: MM, buf: string): number {
  const m = THP_ENABLED_MODES.find((x) => sysfs_streq(buf, x));
  if (!m) return -22;
  const s = thp(mm);
  s.enabled = m;
  s.start_stop_khugepaged();
  return 0;
}

const ANON_ENABLED_OUTPUT = [
  'always inherit madvise [never]',
  '[always] inherit madvise never',
  'always [inherit] madvise never',
  'always inherit [madvise] never',
];

/** kernel: mm/huge_memory.c anon_enabled_show() of hugepages-<size>kB for `order`. */
export function thp_anon_enabled_show(mm: MM, order: number): string {
  return `${ANON_ENABLED_OUTPUT[thp(mm).anon_orders[order]]}\n`;
}

/** kernel: mm/huge_memory.c anon_enabled_store(); 0 or -EINVAL. Restarts khugepaged too. */
export function thp_anon_enabled_store(mm: MM, order: number, buf: string): number {
  const words = ['never', 'always', 'inherit', 'madvise'];
  const v = words.findIndex((x) => sysfs_streq(buf, x));
  if (v < 0) return -22;
  const s = thp(mm);
  s.anon_orders[order] = v;
  s.start_stop_khugepaged();
  return 0;
}

/** kernel: include/linux/huge_mm.h hugepage_global_enabled(): enabled is always or madvise. */
export function hugepage_global_enabled(mm: MM): boolean {
  return thp(mm).enabled !== 'never';
}

/**
 * The PMD order passes thp_vma_allowable_orders()' sysfs mask for a VMA with (`madvised`) or
 * without VM_HUGEPAGE: hugepages-2048kB is always, madvise with VM_HUGEPAGE, or inherit with the
 * global enabled=always (or madvise and VM_HUGEPAGE).
 */
export function thp_pmd_order_enabled(mm: MM, madvised: boolean): boolean {
  const s = thp(mm);
  switch (s.anon_orders[HPAGE_PMD_ORDER]) {
    case ANON_ORDER_ALWAYS:
      return true;
    case ANON_ORDER_MADVISE:
      return madvised;
    case ANON_ORDER_INHERIT:
      return s.enabled === 'always' || (madvised && s.enabled === 'madvise');
    default:
      return false;
  }
}

/**
 * kernel: include/linux/huge_mm.h thp_vma_allowable_orders(), the sysfs mask of an anonymous VMA
 * The orders (a bitmask, bit n = order n) whose hugepages-<size>kB/enabled allows THPs in a VMA
 * with (`madvised`) or without VM_HUGEPAGE: huge_anon_orders_always, plus _madvise with
 * VM_HUGEPAGE, plus _inherit when the global enabled is always (or madvise and VM_HUGEPAGE).
 */
export function thp_anon_orders_mask(mm: MM, madvised: boolean): number {
  const s = thp(mm);
  const inherit = s.enabled === 'always' || (madvised && s.enabled === 'madvise');
  let mask = 0;
  for (let o = THP_ANON_MIN_ORDER; o <= HPAGE_PMD_ORDER; o++) {
    const v = s.anon_orders[o];
    if (
      v === ANON_ORDER_ALWAYS ||
      (v === ANON_ORDER_MADVISE && madvised) ||
      (v === ANON_ORDER_INHERIT && inherit)
    )
      mask |= 1 << o;
  }
  return mask;
}

/**
 * kernel: mm/khugepaged.c hugepage_pmd_enabled() (anonymous part)
 * Some VMA could have PMD-sized THPs: the PMD order is always or madvise, or inherits an enabled
 * global setting. khugepaged runs while this holds.
 */
export function hugepage_pmd_enabled(mm: MM): boolean {
  const o = thp(mm).anon_orders[HPAGE_PMD_ORDER];
  return (
    o === ANON_ORDER_ALWAYS ||
    o === ANON_ORDER_MADVISE ||
    (o === ANON_ORDER_INHERIT && hugepage_global_enabled(mm))
  );
}

/** kernel: mm/huge_memory.c defrag_store(); 0 or -EINVAL. */
export function thp_defrag_store(mm: MM, buf: string): number {
  const m = THP_DEFRAG_MODES.find((x) => sysfs_streq(buf, x));
  if (!m) return -22;
  thp(mm).defrag = m;
  return 0;
}
