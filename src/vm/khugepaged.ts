/**
 * mm/khugepaged.c for anonymous memory: the khugepaged kernel thread, which scans the address
 * spaces registered for THP (mm_slots) and collapses 2 MiB ranges mapped by 4 KiB PTEs into one
 * PMD-mapped THP.
 *
 * An address space joins the scan list (__khugepaged_enter(), MMF_VM_HUGEPAGE) when one of its
 * VMAs could hold a PMD THP: at mmap, brk, MADV_HUGEPAGE, a THP fault, or fork of a registered
 * parent. The thread sleeps scan_sleep_millisecs between passes; a pass looks at up to
 * pages_to_scan PTEs (each 2 MiB range counts 512, each VMA or address space visited 1),
 * resuming where the previous pass stopped. A range is collapsed when hpage_collapse_scan_pmd()'s
 * limits hold (max_ptes_none / swap / shared, every page anonymous, on the LRU, unlocked, not
 * pinned, one PTE young); collapse_huge_page() allocates an order-9 folio (khugepaged/defrag:
 * GFP_TRANSHUGE or GFP_TRANSHUGE_LIGHT), copies the pages into it (zeroing the holes), maps it
 * with one PMD over the old PTE table (which becomes the deposited table), and frees the old
 * pages. A failed allocation puts the thread to sleep alloc_sleep_millisecs; a second failure in
 * the same pass ends the pass.
 *
 * The thread's loop runs as events on the machine's clock; its CPU time goes to mm.khugepaged.
 */

import { run_kthread } from '../mm/cost.ts';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT } from '../mm/gfp.ts';
import { folio_maybe_dma_pinned } from '../mm/gup.ts';
import {
  folio_entire_mapcount,
  folio_head,
  folio_nr_pages,
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  hugepage_pmd_enabled,
  thp,
} from '../mm/huge_memory.ts';
import { lruvec_add_folio, lruvec_del_folio } from '../mm/lru.ts';
import type { MM } from '../mm/mm.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import {
  calculate_min_free_kbytes,
  set_recommended_min_free_kbytes,
  setup_per_zone_wmarks,
} from '../mm/page_alloc/watermark.ts';
import { PG_anon, PG_head, PG_locked, PG_lru, PG_referenced, PG_tail } from '../mm/page-flags.ts';
import { node_stat_index, vm_event_index } from '../mm/vmstat_items.ts';
import type { Work } from '../mm/workqueue.ts';
import { map_anon_folio_pmd, pmd_table, thp_vma_allowable_khugepaged } from './huge_memory.ts';
import { handle_mm_fault, page_remove_rmap, VM_FAULT_OK } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_SWP_ENTRY,
  _PAGE_TABLE,
  PTRS_PER_TABLE,
  pmd_index,
} from './pgtable.ts';
import type { Vm } from './vm.ts';
import { VM_ACCESS_FLAGS } from './vma.ts';

/** enum scan_result (mm/khugepaged.c), the values the model produces. */
export const SCAN_FAIL = 0;
export const SCAN_SUCCEED = 1;
export const SCAN_PMD_NULL = 2;
export const SCAN_PMD_NONE = 3;
export const SCAN_PMD_MAPPED = 4;
export const SCAN_EXCEED_NONE_PTE = 5;
export const SCAN_EXCEED_SWAP_PTE = 6;
export const SCAN_EXCEED_SHARED_PTE = 7;
export const SCAN_PTE_NON_PRESENT = 8;
export const SCAN_LACK_REFERENCED_PAGE = 11;
export const SCAN_PAGE_NULL = 12;
export const SCAN_PAGE_COUNT = 14;
export const SCAN_PAGE_LRU = 15;
export const SCAN_PAGE_LOCK = 16;
export const SCAN_PAGE_ANON = 17;
export const SCAN_ANY_PROCESS = 19;
export const SCAN_VMA_NULL = 20;
export const SCAN_VMA_CHECK = 21;
export const SCAN_ADDRESS_RANGE = 22;
export const SCAN_DEL_PAGE_LRU = 23;
export const SCAN_ALLOC_HUGE_PAGE_FAIL = 24;

const PMD_BYTES = HPAGE_PMD_NR * 4096;
const NR_ISOLATED_ANON = node_stat_index('nr_isolated_anon');
const THP_COLLAPSE_ALLOC = vm_event_index('thp_collapse_alloc');
const THP_COLLAPSE_ALLOC_FAILED = vm_event_index('thp_collapse_alloc_failed');
const THP_SCAN_EXCEED_NONE_PTE = vm_event_index('thp_scan_exceed_none_pte');
const THP_SCAN_EXCEED_SWAP_PTE = vm_event_index('thp_scan_exceed_swap_pte');
const THP_SCAN_EXCEED_SHARE_PTE = vm_event_index('thp_scan_exceed_share_pte');

/** What the thread waits for: nothing (running or queued), work, the scan sleep, the alloc sleep. */
type Wait = '' | 'idle' | 'scan' | 'alloc';

/**
 * The khugepaged thread and khugepaged_scan: the mm_slot list in scan order, the cursor (slot
 * and address), khugepaged_do_scan()'s locals kept across an alloc sleep, and collapse_control.
 */
export class Khugepaged {
  /** khugepaged_thread != NULL. */
  started = false;
  /** khugepaged_scan.mm_head: the registered address spaces (MMF_VM_HUGEPAGE), in scan order. */
  readonly mm_head: MmStruct[] = [];
  /** khugepaged_scan.mm_slot: the address space being scanned, or null (start from the head). */
  mm_slot: MmStruct | null = null;
  /** khugepaged_scan.address: where the scan of mm_slot resumes. */
  address = 0;
  /** What the thread waits for now. */
  waiting: Wait = '';
  /** Numbers the waits, so the timeout of a wait a wake-up (or a stop) ended does nothing. */
  wait_seq = 0;
  /** khugepaged_sleep_expire, ns. */
  sleep_expire = 0;
  /** Simulated time the current wait ends (Infinity without a timeout), for tests. */
  wait_until = Number.POSITIVE_INFINITY;
  /** Result of the last scan_mm_slot() and the last scanned range. */
  result = SCAN_SUCCEED;
  /** hpage_collapse_scan_pmd()'s *mmap_locked: false once it tried a collapse. */
  mmap_locked = true;
  // khugepaged_do_scan()'s locals.
  private pages = 0;
  private progress = 0;
  private pass_through_head = 0;
  private alloc_wait = true;
  /** collapse_control.node_load: pages per node in the range being scanned. */
  readonly node_load: Int32Array;
  /** The large folios __collapse_huge_page_isolate() isolated (compound_pagelist). */
  private readonly compound: number[] = [];

  constructor(nr_nodes: number) {
    this.node_load = new Int32Array(nr_nodes);
  }

  /** khugepaged_do_scan(): start a pass (fresh) or resume it after the alloc sleep. */
  do_scan(vm: Vm, fresh: boolean): boolean {
    const s = thp(vm.mm);
    if (fresh) {
      this.pages = s.khugepaged.pages_to_scan;
      this.progress = 0;
      this.pass_through_head = 0;
      this.alloc_wait = true;
    }
    while (this.started) {
      if (!this.mm_slot) this.pass_through_head++;
      this.result = SCAN_SUCCEED;
      if (khugepaged_has_work(vm.mm, this) && this.pass_through_head < 2)
        this.progress += khugepaged_scan_mm_slot(vm, this, this.pages - this.progress);
      else this.progress = this.pages;
      if (this.progress >= this.pages) break;
      if (this.result === SCAN_ALLOC_HUGE_PAGE_FAIL) {
        // Sleep once after a failed allocation; a second failure ends the pass.
        if (!this.alloc_wait) break;
        this.alloc_wait = false;
        khugepaged_alloc_sleep(vm, this);
        return false;
      }
    }
    return true;
  }

  /** Isolated large folios of the current collapse. */
  get compound_pagelist(): number[] {
    return this.compound;
  }
}

/** The machine's khugepaged (created at first use). */
export function khugepaged_state(vm: Vm): Khugepaged {
  let k = vm.khugepaged;
  if (!k) {
    k = new Khugepaged(vm.mm.nodes.length);
    vm.khugepaged = k;
  }
  return k;
}

/** kernel: mm/khugepaged.c hpage_collapse_test_exit(): the address space is gone (exit_mmap()). */
function hpage_collapse_test_exit(vm: Vm, mm: MmStruct): boolean {
  return vm.mms[mm.id] !== mm;
}

/** kernel: mm/khugepaged.c khugepaged_has_work() */
function khugepaged_has_work(mm: MM, k: Khugepaged): boolean {
  return k.mm_head.length > 0 && hugepage_pmd_enabled(mm);
}

/**
 * kernel: mm/khugepaged.c __khugepaged_enter()
 * Register `mm` (once) at the tail of the scan list; the first one wakes the thread.
 */
export function __khugepaged_enter(vm: Vm, mm: MmStruct): void {
  const k = khugepaged_state(vm);
  if (k.mm_head.includes(mm) || hpage_collapse_test_exit(vm, mm)) return;
  const wakeup = k.mm_head.length === 0;
  k.mm_head.push(mm);
  if (wakeup) wake_up_khugepaged(vm, k, false);
}

/**
 * kernel: mm/khugepaged.c khugepaged_enter_vma()
 * Register the address space if PMD THPs are enabled and `vma`, with `vm_flags`, could hold one.
 */
export function khugepaged_enter_vma(vm: Vm, mm: MmStruct, vma: number, vm_flags: number): void {
  const k = khugepaged_state(vm);
  if (k.mm_head.includes(mm) || !hugepage_pmd_enabled(vm.mm)) return;
  if (thp_vma_allowable_khugepaged(vm, vma, vm_flags)) __khugepaged_enter(vm, mm);
}

/** kernel: include/linux/khugepaged.h khugepaged_fork(): a registered parent's child is registered. */
export function khugepaged_fork(vm: Vm, mm: MmStruct, oldmm: MmStruct): void {
  if (khugepaged_state(vm).mm_head.includes(oldmm)) __khugepaged_enter(vm, mm);
}

/**
 * kernel: mm/khugepaged.c __khugepaged_exit()
 * An exiting address space leaves the list, unless the scan is at it: then the scan drops it
 * (collect_mm_slot()).
 */
export function khugepaged_exit(vm: Vm, mm: MmStruct): void {
  const k = vm.khugepaged;
  if (!k || k.mm_slot === mm) return;
  const i = k.mm_head.indexOf(mm);
  if (i >= 0) k.mm_head.splice(i, 1);
}

/** kernel: mm/khugepaged.c collect_mm_slot(): free the slot of an address space that exited. */
function collect_mm_slot(vm: Vm, k: Khugepaged, mm: MmStruct): void {
  if (!hpage_collapse_test_exit(vm, mm)) return;
  const i = k.mm_head.indexOf(mm);
  if (i >= 0) k.mm_head.splice(i, 1);
}

/**
 * wake_up_interruptible(&khugepaged_wait): a thread waiting for work runs if there is some; one
 * in its alloc sleep resumes the pass; one in its scan sleep wakes only if the sleep has expired
 * (`expire`: the scan_sleep_millisecs and alloc_sleep_millisecs writes reset it).
 */
function wake_up_khugepaged(vm: Vm, k: Khugepaged, expire: boolean): void {
  if (expire) k.sleep_expire = 0;
  if (!k.started) return;
  if (k.waiting === 'idle' && k.mm_head.length) queue_run(vm, k, true);
  else if (k.waiting === 'alloc') queue_run(vm, k, false);
  else if (k.waiting === 'scan' && vm.mm.now() >= k.sleep_expire) queue_run(vm, k, true);
}

/** wake_up_interruptible(&khugepaged_wait) with the sleep expired (the sleep knobs' writes). */
export function khugepaged_wakeup(vm: Vm): void {
  wake_up_khugepaged(vm, khugepaged_state(vm), true);
}

/** End the wait and run the thread now: a new pass (`fresh`) or the rest of the current one. */
function queue_run(vm: Vm, k: Khugepaged, fresh: boolean): void {
  k.waiting = '';
  k.wait_until = Number.POSITIVE_INFINITY;
  vm.mm.defer(0, new KhugepagedRun(vm, ++k.wait_seq, fresh));
}

/** The thread runs now, unless the wait `seq` it ends was ended otherwise meanwhile. */
class KhugepagedRun implements Work {
  constructor(
    readonly vm: Vm,
    readonly seq: number,
    readonly fresh: boolean,
  ) {}

  run(): void {
    const k = khugepaged_state(this.vm);
    if (k.wait_seq === this.seq) khugepaged_run_once(this.vm, k, this.fresh);
  }
}

/** The end of a timed wait (`what`): the thread runs, if this is still the wait it is in. */
class KhugepagedTimeout implements Work {
  constructor(
    readonly vm: Vm,
    readonly seq: number,
    readonly what: Wait,
    readonly fresh: boolean,
  ) {}

  run(): void {
    const k = khugepaged_state(this.vm);
    if (k.wait_seq !== this.seq || k.waiting !== this.what) return;
    k.waiting = '';
    k.wait_until = Number.POSITIVE_INFINITY;
    khugepaged_run_once(this.vm, k, this.fresh);
  }
}

/** Wait `ms` milliseconds (`what`), then run the thread: a new pass or the rest of this one. */
function wait_timeout(vm: Vm, k: Khugepaged, what: Wait, ms: number, fresh: boolean): void {
  k.waiting = what;
  const seq = ++k.wait_seq;
  const ns = ms * 1e6;
  k.wait_until = vm.mm.now() + ns;
  vm.mm.defer(ns, new KhugepagedTimeout(vm, seq, what, fresh));
}

/** kernel: mm/khugepaged.c khugepaged(), one turn of its loop: a scan pass, then the wait. */
function khugepaged_run_once(vm: Vm, k: Khugepaged, fresh: boolean): void {
  if (!k.started) return;
  run_kthread(vm.mm, vm.mm.khugepaged, () => {
    if (k.do_scan(vm, fresh)) khugepaged_wait_work(vm, k);
  });
}

/** kernel: mm/khugepaged.c khugepaged_alloc_sleep() */
function khugepaged_alloc_sleep(vm: Vm, k: Khugepaged): void {
  wait_timeout(vm, k, 'alloc', thp(vm.mm).khugepaged.alloc_sleep_millisecs, false);
}

/**
 * kernel: mm/khugepaged.c khugepaged_wait_work()
 * With work, sleep scan_sleep_millisecs (0 is one 1 ms jiffy here, so the clock moves on);
 * without, wait until __khugepaged_enter() wakes the thread.
 */
function khugepaged_wait_work(vm: Vm, k: Khugepaged): void {
  if (khugepaged_has_work(vm.mm, k)) {
    const ms = Math.max(1, thp(vm.mm).khugepaged.scan_sleep_millisecs);
    k.sleep_expire = vm.mm.now() + ms * 1e6;
    wait_timeout(vm, k, 'scan', ms, true);
    return;
  }
  k.waiting = 'idle';
  k.wait_seq++;
  k.wait_until = Number.POSITIVE_INFINITY;
}

/**
 * kernel: mm/khugepaged.c start_stop_khugepaged()
 * Start the thread while PMD THPs are enabled (waking it if address spaces wait), stop it
 * otherwise; then set_recommended_min_free_kbytes() raises min_free_kbytes for THP or, with THP
 * off, recomputes the plain default, and the watermarks follow.
 */
export function start_stop_khugepaged(vm: Vm): void {
  const k = khugepaged_state(vm);
  const mm = vm.mm;
  if (hugepage_pmd_enabled(mm)) {
    if (!k.started) {
      k.started = true;
      queue_run(vm, k, true);
    } else if (k.mm_head.length) wake_up_khugepaged(vm, k, false);
    set_recommended_min_free_kbytes(mm);
  } else {
    if (k.started) {
      // kthread_stop(): the loop ends and drops its cursor.
      k.started = false;
      k.waiting = '';
      k.wait_seq++;
      k.wait_until = Number.POSITIVE_INFINITY;
      const slot = k.mm_slot;
      k.mm_slot = null;
      if (slot) collect_mm_slot(vm, k, slot);
    }
    calculate_min_free_kbytes(mm);
  }
  setup_per_zone_wmarks(mm);
}

/**
 * kernel: mm/khugepaged.c khugepaged_init() + hugepage_init()'s start_stop_khugepaged()
 * Install the sysfs hooks and start the thread if THP is enabled. Boot has already raised
 * min_free_kbytes (mm_init), so the watermarks are left alone here.
 */
export function khugepaged_init(vm: Vm): void {
  if (!vm.mm.config.TRANSPARENT_HUGEPAGE) return;
  thp(vm.mm).khugepaged_thread = vm;
  const k = khugepaged_state(vm);
  if (hugepage_pmd_enabled(vm.mm) && !k.started) {
    k.started = true;
    queue_run(vm, k, true);
  }
}

/**
 * kernel: mm/khugepaged.c khugepaged_scan_mm_slot()
 * Scan the current address space from the cursor, VMA by VMA, 2 MiB at a time, until `pages`
 * of progress, a collapse attempt (the kernel drops mmap_lock for it), or its end; at the end the
 * cursor moves to the next address space, or back to the head (khugepaged_full_scans).
 */
function khugepaged_scan_mm_slot(vm: Vm, k: Khugepaged, pages: number): number {
  let slot = k.mm_slot;
  if (!slot) {
    slot = k.mm_head[0];
    k.address = 0;
    k.mm_slot = slot;
  }
  const mm = slot;
  const v = vm.vmas;
  let progress = 1;
  let vma = -1;
  k.result = SCAN_FAIL;
  if (!hpage_collapse_test_exit(vm, mm)) {
    vma = mm.mt.find(k.address);
    scan: while (vma >= 0) {
      if (!thp_vma_allowable_khugepaged(vm, vma, v.vm_flags[vma])) {
        progress++;
        vma = mm.mt.find(v.vm_end[vma]);
        continue;
      }
      const hstart = Math.ceil(v.vm_start[vma] / PMD_BYTES) * PMD_BYTES;
      const hend = Math.floor(v.vm_end[vma] / PMD_BYTES) * PMD_BYTES;
      if (k.address > hend) {
        progress++;
        vma = mm.mt.find(v.vm_end[vma]);
        continue;
      }
      if (k.address < hstart) k.address = hstart;
      while (k.address < hend) {
        k.mmap_locked = true;
        k.result = hpage_collapse_scan_pmd(vm, k, mm, k.address);
        if (k.result === SCAN_SUCCEED) thp(vm.mm).khugepaged.pages_collapsed++;
        k.address += PMD_BYTES;
        progress += HPAGE_PMD_NR;
        if (!k.mmap_locked || progress >= pages) break scan;
      }
      vma = mm.mt.find(v.vm_end[vma]);
    }
  }
  if (hpage_collapse_test_exit(vm, mm) || vma < 0) {
    const i = k.mm_head.indexOf(slot);
    if (i + 1 < k.mm_head.length) {
      k.mm_slot = k.mm_head[i + 1];
      k.address = 0;
    } else {
      k.mm_slot = null;
      thp(vm.mm).khugepaged.full_scans++;
    }
    collect_mm_slot(vm, k, slot);
  }
  return progress;
}

/** The last large folio maybe_mapped_shared() looked at, and its answer (a scan's PTEs map runs). */
const shared_memo = { head: -1, shared: false };

/**
 * kernel: include/linux/mm.h folio_maybe_mapped_shared(): a small folio mapped more than once;
 * a large one mapped more than once anywhere ("we treat a single page as shared if any part of
 * the THP is shared"). Memoised per folio within one scan (reset_shared_memo()).
 */
function maybe_mapped_shared(mm: MM, pfn: number): boolean {
  const f = mm.frames;
  if (!(f.flags[pfn] & (PG_head | PG_tail))) return f.mapcount[pfn] > 1;
  const head = folio_head(mm, pfn);
  if (head === shared_memo.head) return shared_memo.shared;
  const entire = folio_entire_mapcount(mm, head);
  let shared = entire > 1;
  for (let i = 0, n = folio_nr_pages(mm, head); i < n && !shared; i++)
    shared = f.mapcount[head + i] + entire > 1;
  shared_memo.head = head;
  shared_memo.shared = shared;
  return shared;
}

function reset_shared_memo(): void {
  shared_memo.head = -1;
}

/**
 * kernel: mm/khugepaged.c hpage_collapse_scan_pmd()
 * Check the 512 PTEs of the 2 MiB range at `address` against khugepaged's limits; if the range
 * qualifies, collapse it (k.mmap_locked turns false: the scan of this address space pauses).
 */
function hpage_collapse_scan_pmd(vm: Vm, k: Khugepaged, mm: MmStruct, address: number): number {
  reset_shared_memo();
  const pt = vm.pt;
  const kmm = vm.mm;
  const f = kmm.frames;
  const tun = thp(kmm).khugepaged;
  const vpn = address / 4096;
  const pmd = pmd_table(vm, mm, vpn, false);
  if (pmd < 0) return SCAN_PMD_NULL;
  const pbits = pt.bits[pmd * PTRS_PER_TABLE + pmd_index(vpn)];
  if (pbits === 0) return SCAN_PMD_NONE;
  if (pbits & _PAGE_PSE) return SCAN_PMD_MAPPED;
  const table = pt.child(pmd, pmd_index(vpn));
  k.node_load.fill(0);
  let none_or_zero = 0;
  let unmapped = 0;
  let shared = 0;
  let referenced = 0;
  const base = table * PTRS_PER_TABLE;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const b = pt.bits[base + i];
    const pfn = pt.pfn[base + i];
    if (b & _PAGE_SWP_ENTRY) {
      if (++unmapped <= tun.max_ptes_swap) continue;
      kmm.vm_events[THP_SCAN_EXCEED_SWAP_PTE]++;
      return SCAN_EXCEED_SWAP_PTE;
    }
    if (b === 0 || pfn === kmm.zero_pfn) {
      if (++none_or_zero <= tun.max_ptes_none) continue;
      kmm.vm_events[THP_SCAN_EXCEED_NONE_PTE]++;
      return SCAN_EXCEED_NONE_PTE;
    }
    const fl = f.flags[pfn];
    if (!(fl & PG_anon)) return SCAN_PAGE_ANON;
    if (maybe_mapped_shared(kmm, pfn) && ++shared > tun.max_ptes_shared) {
      kmm.vm_events[THP_SCAN_EXCEED_SHARE_PTE]++;
      return SCAN_EXCEED_SHARED_PTE;
    }
    k.node_load[kmm.page_zone(pfn)!.nid]++;
    const head = fl & (PG_head | PG_tail) ? folio_head(kmm, pfn) : pfn;
    if (!(f.flags[head] & PG_lru)) return SCAN_PAGE_LRU;
    if (f.flags[head] & PG_locked) return SCAN_PAGE_LOCK;
    if (folio_maybe_dma_pinned(kmm, pfn)) return SCAN_PAGE_COUNT;
    if (b & _PAGE_ACCESSED || f.flags[head] & PG_referenced) referenced++;
  }
  if (!referenced || (unmapped && referenced < HPAGE_PMD_NR / 2)) return SCAN_LACK_REFERENCED_PAGE;
  k.mmap_locked = false;
  return collapse_huge_page(vm, k, mm, address, unmapped);
}

/** kernel: mm/khugepaged.c hpage_collapse_find_target_node(): the first node with most pages. */
function hpage_collapse_find_target_node(k: Khugepaged): number {
  let target = 0;
  let max = 0;
  for (let nid = 0; nid < k.node_load.length; nid++) {
    if (k.node_load[nid] > max) {
      max = k.node_load[nid];
      target = nid;
    }
  }
  return target;
}

/**
 * kernel: mm/khugepaged.c hugepage_vma_revalidate()
 * After the allocation (which may have reclaimed, or OOM-killed this task): the VMA at `address`
 * still exists, covers the 2 MiB, may collapse, and has an anon_vma. Returns it or -SCAN_*.
 */
function hugepage_vma_revalidate(vm: Vm, mm: MmStruct, address: number): number {
  if (hpage_collapse_test_exit(vm, mm)) return -SCAN_ANY_PROCESS;
  const v = vm.vmas;
  const vma = mm.mt.find(address);
  if (vma < 0) return -SCAN_VMA_NULL;
  if (address < v.vm_start[vma] || address + PMD_BYTES > v.vm_end[vma]) return -SCAN_ADDRESS_RANGE;
  if (!thp_vma_allowable_khugepaged(vm, vma, v.vm_flags[vma])) return -SCAN_VMA_CHECK;
  if (v.anon_vma[vma] < 0) return -SCAN_PAGE_ANON;
  return vma;
}

/**
 * kernel: mm/khugepaged.c collapse_huge_page()
 * Allocate the THP (thp_collapse_alloc / thp_collapse_alloc_failed), revalidate, swap in the
 * swapped pages, take the PTE table out of the PMD (pmdp_collapse_flush(): a TLB shootdown),
 * isolate the pages, copy them (512 × copy_page, clear_page for the holes), and map the THP with
 * a PMD over the old table, which becomes its deposited table. Any failure puts the PTE table
 * back and frees the new folio.
 */
function collapse_huge_page(vm: Vm, k: Khugepaged, mm: MmStruct, address: number, unmapped: number): number {
  const kmm = vm.mm;
  const s = thp(kmm);
  const gfp = s.khugepaged_defrag ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT;
  const nid = hpage_collapse_find_target_node(k);
  const node = kmm.nodes[nid];
  const cpu = node.cpus.length ? node.cpus[0] : 0;
  const head = __alloc_pages(kmm, gfp, HPAGE_PMD_ORDER, nid, cpu);
  if (head < 0) {
    kmm.vm_events[THP_COLLAPSE_ALLOC_FAILED]++;
    return SCAN_ALLOC_HUGE_PAGE_FAIL;
  }
  kmm.vm_events[THP_COLLAPSE_ALLOC]++;
  const r = __collapse_huge_page(vm, k, mm, address, unmapped, head);
  if (r !== SCAN_SUCCEED) __free_pages(kmm, head, HPAGE_PMD_ORDER, cpu);
  return r;
}

function __collapse_huge_page(
  vm: Vm,
  k: Khugepaged,
  mm: MmStruct,
  address: number,
  unmapped: number,
  head: number,
): number {
  const kmm = vm.mm;
  const pt = vm.pt;
  let vma = hugepage_vma_revalidate(vm, mm, address);
  if (vma < 0) return -vma;
  const vpn = address / 4096;
  if (unmapped) {
    // __collapse_huge_page_swapin(): fault the swapped pages back in.
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const pmd0 = pmd_table(vm, mm, vpn, false);
      const t = pmd0 < 0 ? -1 : pt.child(pmd0, pmd_index(vpn));
      if (t < 0) return SCAN_PMD_NULL;
      if (!(pt.bits[t * PTRS_PER_TABLE + i] & _PAGE_SWP_ENTRY)) continue;
      if (handle_mm_fault(vm, mm, vma, address + i * 4096, false) !== VM_FAULT_OK) return SCAN_FAIL;
    }
    vma = hugepage_vma_revalidate(vm, mm, address);
    if (vma < 0) return -vma;
  }
  // check_pmd_still_valid()
  const pmd = pmd_table(vm, mm, vpn, false);
  if (pmd < 0) return SCAN_PMD_NULL;
  const pi = pmd_index(vpn);
  const pbits = pt.bits[pmd * PTRS_PER_TABLE + pi];
  if (pbits === 0) return SCAN_PMD_NONE;
  if (pbits & _PAGE_PSE) return SCAN_PMD_MAPPED;
  // The model maps nothing in a VMA without access (its PTEs would be PROT_NONE).
  if (!(vm.vmas.vm_flags[vma] & VM_ACCESS_FLAGS)) return SCAN_VMA_CHECK;
  const table = pt.child(pmd, pi);
  // pmdp_collapse_flush(): the table leaves the PMD; GUP-fast and the MMU see nothing there.
  pt.clear(pmd, pi);
  kmm.kernel_ns += kmm.cost.ipi;
  const r = __collapse_huge_page_isolate(vm, k, table);
  if (r !== SCAN_SUCCEED) {
    pt.set(pmd, pi, pt.frame[table], _PAGE_TABLE);
    return r;
  }
  __collapse_huge_page_copy(vm, k, mm, vma, table);
  // The emptied PTE table is deposited with the new PMD.
  map_anon_folio_pmd(vm, mm, vma, address, pmd, head, table);
  return SCAN_SUCCEED;
}

/**
 * kernel: mm/khugepaged.c __collapse_huge_page_isolate()
 * Re-check every PTE with the table detached, and isolate each page (locked, off the LRU,
 * nr_isolated_anon); a large folio once. On failure every page isolated so far goes back.
 */
function __collapse_huge_page_isolate(vm: Vm, k: Khugepaged, table: number): number {
  reset_shared_memo();
  const kmm = vm.mm;
  const pt = vm.pt;
  const f = kmm.frames;
  const tun = thp(kmm).khugepaged;
  const compound = k.compound_pagelist;
  compound.length = 0;
  const base = table * PTRS_PER_TABLE;
  let none_or_zero = 0;
  let shared = 0;
  let referenced = 0;
  let result = SCAN_SUCCEED;
  let i = 0;
  for (; i < HPAGE_PMD_NR; i++) {
    const b = pt.bits[base + i];
    const pfn = pt.pfn[base + i];
    if (b === 0 || (b & (_PAGE_PRESENT | _PAGE_PROTNONE) && pfn === kmm.zero_pfn)) {
      if (++none_or_zero <= tun.max_ptes_none) continue;
      kmm.vm_events[THP_SCAN_EXCEED_NONE_PTE]++;
      result = SCAN_EXCEED_NONE_PTE;
      break;
    }
    if (!(b & (_PAGE_PRESENT | _PAGE_PROTNONE))) {
      result = SCAN_PTE_NON_PRESENT;
      break;
    }
    if (!(f.flags[pfn] & PG_anon)) {
      result = SCAN_PAGE_NULL;
      break;
    }
    if (maybe_mapped_shared(kmm, pfn) && ++shared > tun.max_ptes_shared) {
      kmm.vm_events[THP_SCAN_EXCEED_SHARE_PTE]++;
      result = SCAN_EXCEED_SHARED_PTE;
      break;
    }
    const large = (f.flags[pfn] & (PG_head | PG_tail)) !== 0;
    const head = large ? folio_head(kmm, pfn) : pfn;
    if (!large || !compound.includes(head)) {
      if (f.flags[head] & PG_locked) {
        result = SCAN_PAGE_LOCK;
        break;
      }
      if (folio_pinned(kmm, head, large)) {
        result = SCAN_PAGE_COUNT;
        break;
      }
      if (!(f.flags[head] & PG_lru)) {
        result = SCAN_DEL_PAGE_LRU;
        break;
      }
      // folio_trylock() + folio_isolate_lru()
      f.flags[head] |= PG_locked;
      lruvec_del_folio(kmm, head);
      kmm.nodes[kmm.page_zone(head)!.nid].vm_stat[NR_ISOLATED_ANON] += folio_nr_pages(kmm, head);
      if (large) compound.push(head);
    }
    if (b & _PAGE_ACCESSED || f.flags[head] & PG_referenced) referenced++;
  }
  if (result === SCAN_SUCCEED && !referenced) result = SCAN_LACK_REFERENCED_PAGE;
  if (result !== SCAN_SUCCEED) release_pte_pages(vm, k, base, i);
  return result;
}

/** A pin on the folio (its expected reference count would not match). */
function folio_pinned(mm: MM, head: number, large: boolean): boolean {
  const n = large ? folio_nr_pages(mm, head) : 1;
  for (let j = 0; j < n; j++) if (folio_maybe_dma_pinned(mm, head + j)) return true;
  return false;
}

/** kernel: mm/khugepaged.c release_pte_folio(): un-isolate, unlock, back on the LRU. */
function release_pte_folio(mm: MM, head: number, nr: number): void {
  mm.nodes[mm.page_zone(head)!.nid].vm_stat[NR_ISOLATED_ANON] -= nr;
  mm.frames.flags[head] &= ~PG_locked;
  lruvec_add_folio(mm, head);
}

/** kernel: mm/khugepaged.c release_pte_pages(): the pages of PTEs [0, end) and the large folios. */
function release_pte_pages(vm: Vm, k: Khugepaged, base: number, end: number): void {
  const kmm = vm.mm;
  const pt = vm.pt;
  const f = kmm.frames;
  for (let i = end - 1; i >= 0; i--) {
    const b = pt.bits[base + i];
    const pfn = pt.pfn[base + i];
    if (b === 0 || pfn === kmm.zero_pfn || f.flags[pfn] & (PG_head | PG_tail)) continue;
    release_pte_folio(kmm, pfn, 1);
  }
  const compound = k.compound_pagelist;
  for (let j = 0; j < compound.length; j++)
    release_pte_folio(kmm, compound[j], folio_nr_pages(kmm, compound[j]));
  compound.length = 0;
}

/**
 * kernel: mm/khugepaged.c __collapse_huge_page_copy() + __collapse_huge_page_copy_succeeded()
 * Copy each page into the THP (clear_page for a hole or the zero page), then drop the old
 * mappings: holes count in rss, zero-page PTEs are cleared, every page loses its PTE and is
 * freed with its last mapping. The large folios go back to the LRU first, so that their last
 * unmap frees them.
 */
function __collapse_huge_page_copy(vm: Vm, k: Khugepaged, mm: MmStruct, vma: number, table: number): void {
  const kmm = vm.mm;
  const pt = vm.pt;
  const f = kmm.frames;
  const base = table * PTRS_PER_TABLE;
  let holes = 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const b = pt.bits[base + i];
    if (b === 0 || pt.pfn[base + i] === kmm.zero_pfn) holes++;
  }
  kmm.kernel_ns += holes * kmm.cost.clear_page + (HPAGE_PMD_NR - holes) * kmm.cost.copy_page;
  const compound = k.compound_pagelist;
  for (let j = 0; j < compound.length; j++)
    release_pte_folio(kmm, compound[j], folio_nr_pages(kmm, compound[j]));
  compound.length = 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const b = pt.bits[base + i];
    const pfn = pt.pfn[base + i];
    // A hole counts in rss from now on: map_anon_folio_pmd() adds 512 and each page's
    // page_remove_rmap() takes one off, which nets the kernel's add_mm_counter() per hole.
    if (b === 0 || pfn === kmm.zero_pfn) {
      if (b !== 0) pt.clear(table, i);
      continue;
    }
    if (!(f.flags[pfn] & (PG_head | PG_tail))) release_pte_folio(kmm, pfn, 1);
    pt.clear(table, i);
    page_remove_rmap(vm, mm, pfn, vma);
  }
}
