/**
 * mm/huge_memory.c, the folio side of anonymous transparent huge pages: the sysfs state
 * (/sys/kernel/mm/transparent_hugepage), vma_thp_gfp_mask(), the per-folio entire mapcount, the
 * deferred split queue with its shrinker, and the large-folio helpers the rest of mm/ asks.
 *
 * An anonymous THP is an order-9 compound block (PG_head + PG_tail from __GFP_COMP), naturally
 * aligned, so a subpage finds its head by clearing the low 9 bits of its pfn. Every subpage
 * carries the anon identity (PG_anon, mapping, index = head index + i) so the reverse map finds
 * each of its PTEs; the folio-wide state (PG_lru, PG_active, PG_mlocked, PG_unevictable,
 * PG_dirty, PG_referenced) lives on the head only. frames.mapcount of a subpage counts its PTE
 * mappings (page->_mapcount + 1); PMD mappings are the folio's entire mapcount, kept here per
 * 2 MiB frame (folio->_entire_mapcount + 1).
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
  /** Per 2 MiB frame: PG_partially_mapped of the THP there. */
  readonly partially_mapped: Uint8Array;
  /** Per node: the deferred split queue (pgdat->deferred_split_queue), heads in list order. */
  readonly split_queue: Set<number>[];
  /** split_folio() of the vm layer (it needs the reverse map); 0 or -errno. */
  split_folio: (head: number, isolated: boolean) => number = () => -16;
  /** start_stop_khugepaged() of the vm layer (vm/khugepaged.ts), after an enabled write. */
  start_stop_khugepaged: () => void = () => {};
  /** wake_up_interruptible(&khugepaged_wait) with the sleep expired (the sleep knobs' writes). */
  khugepaged_wakeup: () => void = () => {};

  constructor(nr_frames: number, nr_nodes: number) {
    this.entire_mapcount = new Int32Array((nr_frames >> HPAGE_PMD_ORDER) + 1);
    this.partially_mapped = new Uint8Array((nr_frames >> HPAGE_PMD_ORDER) + 1);
    this.split_queue = Array.from({ length: nr_nodes }, () => new Set<number>());
    this.anon_orders[HPAGE_PMD_ORDER] = ANON_ORDER_INHERIT;
  }
}

const states = new WeakMap<MM, ThpState>();

/** The THP state of a machine (created with the defaults at first use). */
export function thp(mm: MM): ThpState {
  let s = states.get(mm);
  if (!s) {
    s = new ThpState(mm.frames.nr_frames, mm.nodes.length);
    states.set(mm, s);
  }
  return s;
}

/** A subpage of a large anonymous folio (a THP). */
export function folio_test_large_anon(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  return (fl & (PG_head | PG_tail)) !== 0 && (fl & PG_anon) !== 0;
}

/** The head of the THP `pfn` belongs to (compound_head() of an order-9 anon folio). */
export function thp_head(pfn: number): number {
  return pfn - (pfn & (HPAGE_PMD_NR - 1));
}

/** folio_nr_pages(): pages of the folio headed by `pfn` (1 for order-0 pages). */
export function folio_nr_pages(mm: MM, pfn: number): number {
  return mm.frames.flags[pfn] & PG_head ? 1 << mm.frames.order[pfn] : 1;
}

/** folio_entire_mapcount() */
export function folio_entire_mapcount(mm: MM, head: number): number {
  return thp(mm).entire_mapcount[head >> HPAGE_PMD_ORDER];
}

/** folio_mapped() of a THP: a PMD mapping or any subpage mapped by a PTE. */
export function thp_mapped(mm: MM, head: number): boolean {
  if (folio_entire_mapcount(mm, head) > 0) return true;
  const mc = mm.frames.mapcount;
  for (let i = 0; i < HPAGE_PMD_NR; i++) if (mc[head + i] > 0) return true;
  return false;
}

/** Subpages of a THP that some PTE maps. */
export function thp_ptemapped_pages(mm: MM, head: number): number {
  const mc = mm.frames.mapcount;
  let n = 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) if (mc[head + i] > 0) n++;
  return n;
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
 * Queue a THP on its node's deferred split queue. A new THP is queued (not partially mapped)
 * for the underused-THP scan (split_underused_thp, default on); a partial unmap marks it
 * partially mapped, counted once in thp_deferred_split_page.
 */
export function deferred_split_folio(mm: MM, head: number, partially_mapped: boolean): void {
  const s = thp(mm);
  const i = head >> HPAGE_PMD_ORDER;
  if (partially_mapped && !s.partially_mapped[i]) {
    s.partially_mapped[i] = 1;
    mm.vm_events[THP_DEFERRED_SPLIT_PAGE]++;
  }
  const q = s.split_queue[mm.page_zone(head)!.nid];
  if (!q.has(head)) q.add(head);
}

/** The folio leaves the deferred split queue (folio_unqueue_deferred_split(), at free or split). */
export function folio_unqueue_deferred_split(mm: MM, head: number): void {
  const s = thp(mm);
  s.partially_mapped[head >> HPAGE_PMD_ORDER] = 0;
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
    const i = head >> HPAGE_PMD_ORDER;
    if (!s.partially_mapped[i]) {
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
