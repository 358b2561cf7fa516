/**
 * mm/huge_memory.c, the page-table side of anonymous THP: PMD mappings, the THP fault
 * (do_huge_pmd_anonymous_page), the copy-on-write fault (do_huge_pmd_wp_page), zap and fork of
 * PMD mappings, split_huge_pmd() and split_folio().
 *
 * A PMD-mapped THP is a leaf entry in the PMD table: the head pfn with _PAGE_PSE. PageTables.child()
 * treats such an entry as "no PTE table", so PTE walkers skip the range; the operations here
 * handle it. As in the kernel, every PMD mapping has a PTE table deposited with it
 * (pgtable_trans_huge_deposit(): a real page-table page, counted in nr_page_table_pages), which
 * split_huge_pmd() fills with 512 PTEs.
 */

import { folio_maybe_dma_pinned } from '../mm/gup.ts';
import {
  anon_large_folios_exist,
  count_mthp_stat,
  deferred_split_count,
  deferred_split_folio,
  deferred_split_scan,
  folio_entire_mapcount,
  folio_head,
  folio_nr_pages,
  folio_unqueue_deferred_split,
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  MTHP_STAT_ANON_FAULT_ALLOC,
  MTHP_STAT_ANON_FAULT_FALLBACK,
  MTHP_STAT_SPLIT,
  MTHP_STAT_SPLIT_FAILED,
  THP_ANON_MIN_ORDER,
  thp,
  thp_anon_orders_mask,
  thp_mapped,
  thp_pmd_order_enabled,
  vma_thp_gfp_mask,
} from '../mm/huge_memory.ts';
import { lruvec_add_folio, lruvec_del_folio, mlock_new_folio, munlock_folio } from '../mm/lru.ts';
import type { MM } from '../mm/mm.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_head,
  PG_lru,
  PG_mlocked,
  PG_referenced,
  PG_swapbacked,
  PG_tail,
  PG_unevictable,
  PG_workingset,
  PGI_alloc,
} from '../mm/page-flags.ts';
import {
  SHRINK_EMPTY,
  SHRINKER_NUMA_AWARE,
  type ShrinkControl,
  Shrinker,
  shrinker_register,
} from '../mm/shrinker.ts';
import { NR_MLOCK, node_stat_index, vm_event_index } from '../mm/vmstat_items.ts';
import { anon_mapping } from './anon_vma.ts';
import { khugepaged_enter_vma } from './khugepaged.ts';
import { MM_ANONPAGES, type MmStruct } from './mm_struct.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_TABLE,
  _PAGE_USER,
  PTRS_PER_TABLE,
  pgd_index,
  pmd_index,
  pud_index,
} from './pgtable.ts';
import { page_mapped_in_locked_vma } from './rmap.ts';
import type { Vm } from './vm.ts';
import { VM_HUGEPAGE, VM_HUGETLB, VM_LOCKED, VM_NOHUGEPAGE, VM_SHARED, VM_SPECIAL, VM_WRITE } from './vma.ts';

const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');
const NR_ANON_THPS = node_stat_index('nr_anon_transparent_hugepages');
const NR_ISOLATED_ANON = node_stat_index('nr_isolated_anon');
const THP_FAULT_ALLOC = vm_event_index('thp_fault_alloc');
const THP_FAULT_FALLBACK = vm_event_index('thp_fault_fallback');
const THP_SPLIT_PMD = vm_event_index('thp_split_pmd');
const THP_SPLIT_PAGE = vm_event_index('thp_split_page');
const THP_SPLIT_PAGE_FAILED = vm_event_index('thp_split_page_failed');
const UNEVICTABLE_PGCLEARED = vm_event_index('unevictable_pgs_cleared');

/** The fault found no THP to map: the caller serves it with a PTE (VM_FAULT_FALLBACK). */
export const VM_FAULT_FALLBACK = 0x800;
const PMD_BYTES = HPAGE_PMD_NR * 4096;

/** The PMD table slot covering `vpn`, allocating the PUD and PMD tables with `alloc`; -1 if none. */
export function pmd_table(vm: Vm, mm: MmStruct, vpn: number, alloc: boolean): number {
  const pt = vm.pt;
  let table = mm.pgd;
  const idx0 = pgd_index(vpn);
  const idx1 = pud_index(vpn);
  for (let level = 0; level < 2; level++) {
    const i = level === 0 ? idx0 : idx1;
    let child = pt.child(table, i);
    if (child < 0) {
      if (!alloc) return -1;
      child = pt.alloc(mm.id, mm.nid, mm.cpu);
      if (child < 0) return -1;
      pt.set(table, i, pt.frame[child], _PAGE_TABLE);
    }
    table = child;
  }
  return table;
}

/** The flat index of the PMD entry mapping `vpn` if it is a huge (PSE) entry, else -1. */
export function huge_pmd_entry(vm: Vm, mm: MmStruct, vpn: number): number {
  const pmd = pmd_table(vm, mm, vpn, false);
  if (pmd < 0) return -1;
  const e = pmd * PTRS_PER_TABLE + pmd_index(vpn);
  return vm.pt.bits[e] & _PAGE_PSE ? e : -1;
}

/**
 * kernel: mm/huge_memory.c __thp_vma_allowable_orders() for the PMD order of an anonymous fault
 * Anonymous private VMAs only; the PMD order enabled for the VMA (thp_pmd_order_enabled():
 * hugepages-2048kB/enabled, inheriting the global enabled by default); never VM_NOHUGEPAGE;
 * the aligned 2 MiB range around `addr` inside the VMA (thp_vma_suitable_order()).
 */
export function thp_vma_allowable(vm: Vm, vma: number, addr: number): boolean {
  if (!thp_vma_allowable_anon(vm, vma, vm.vmas.vm_flags[vma])) return false;
  const v = vm.vmas;
  const haddr = Math.floor(addr / PMD_BYTES) * PMD_BYTES;
  return haddr >= v.vm_start[vma] && haddr + PMD_BYTES <= v.vm_end[vma];
}

/**
 * kernel: include/linux/huge_mm.h thp_vma_allowable_order(vma, vm_flags, TVA_KHUGEPAGED, PMD_ORDER)
 * As for a fault, with `vm_flags` in place of the VMA's, VM_NO_KHUGEPAGED (VM_SPECIAL, hugetlb)
 * excluded, and the VMA big enough for one aligned 2 MiB range (checked at its end).
 */
export function thp_vma_allowable_khugepaged(vm: Vm, vma: number, vm_flags: number): boolean {
  if (vm_flags & VM_HUGETLB || !thp_vma_allowable_anon(vm, vma, vm_flags)) return false;
  const v = vm.vmas;
  const haddr = Math.floor((v.vm_end[vma] - PMD_BYTES) / PMD_BYTES) * PMD_BYTES;
  return haddr >= v.vm_start[vma];
}

/**
 * kernel: mm/memory.c alloc_anon_folio()'s order mask: thp_vma_allowable_orders(vma, vm_flags,
 * TVA_PAGEFAULT, BIT(PMD_ORDER) - 1) then thp_vma_suitable_orders(vma, addr, orders)
 * The orders 2..8 (a bitmask) whose hugepages-<size>kB/enabled allows THPs in this anonymous
 * private VMA (never VM_NOHUGEPAGE), each kept only if the naturally aligned range around
 * `addr` lies inside the VMA and the VMA's offset is aligned to it.
 */
export function thp_vma_allowable_orders_below_pmd(vm: Vm, vma: number, addr: number): number {
  if (!vm.mm.config.TRANSPARENT_HUGEPAGE) return 0;
  const v = vm.vmas;
  const flags = v.vm_flags[vma];
  if (v.vm_file[vma] || flags & (VM_SHARED | VM_SPECIAL | VM_NOHUGEPAGE | VM_HUGETLB)) return 0;
  let orders = thp_anon_orders_mask(vm.mm, (flags & VM_HUGEPAGE) !== 0) & ((1 << HPAGE_PMD_ORDER) - 1);
  if (!orders) return 0;
  const start = v.vm_start[vma];
  const end = v.vm_end[vma];
  const off = start / 4096 - v.vm_pgoff[vma];
  for (let o = THP_ANON_MIN_ORDER; o < HPAGE_PMD_ORDER; o++) {
    if (!(orders & (1 << o))) continue;
    const size = 4096 << o;
    const haddr = Math.floor(addr / size) * size;
    if (off % (1 << o) !== 0 || haddr < start || haddr + size > end) orders &= ~(1 << o);
  }
  return orders;
}

/**
 * folio_add_new_anon_rmap(RMAP_EXCLUSIVE) + folio_add_lru_vma() + set_ptes() of do_anonymous_page()
 * for a new large folio `head` of `order` below PMD size: every subpage joins the anon_vma at its
 * index and is mapped once by its PTE (entries [i, i + nr) of PTE table `table`, all none),
 * writable and dirty if the VMA is writable; nr_pages of rss and nr_anon_pages; MTHP_STAT_NR_ANON.
 */
export function map_anon_folio_pte_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  table: number,
  i: number,
  head: number,
  order: number,
): void {
  const k = vm.mm;
  const v = vm.vmas;
  const f = k.frames;
  const nr = 1 << order;
  const mapping = anon_mapping(v.anon_vma[vma]);
  const index = v.linear_page_index(vma, addr);
  const bits =
    _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | (v.vm_flags[vma] & VM_WRITE ? _PAGE_RW | _PAGE_DIRTY : 0);
  for (let j = 0; j < nr; j++) {
    f.mapping[head + j] = mapping;
    f.index[head + j] = index + j;
    f.flags[head + j] |= PG_anon | PG_swapbacked;
    f.mapcount[head + j] = 1;
    vm.pt.set(table, i + j, head + j, bits);
  }
  thp(k).nr_anon[order]++;
  k.nodes[k.page_zone(head)!.nid].vm_stat[NR_ANON_MAPPED] += nr;
  if ((v.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) mlock_new_folio(k, head);
  else lruvec_add_folio(k, head);
  mm.rss[MM_ANONPAGES] += nr;
}

// The checks of __thp_vma_allowable_orders() that do not depend on the address.
function thp_vma_allowable_anon(vm: Vm, vma: number, flags: number): boolean {
  if (!vm.mm.config.TRANSPARENT_HUGEPAGE) return false;
  const v = vm.vmas;
  if (v.vm_file[vma] || flags & (VM_SHARED | VM_SPECIAL | VM_NOHUGEPAGE)) return false;
  if (!thp_pmd_order_enabled(vm.mm, (flags & VM_HUGEPAGE) !== 0)) return false;
  // The VMA's offset must be aligned with its address (mremap'ed anonymous VMAs may not be).
  return (v.vm_start[vma] / 4096 - v.vm_pgoff[vma]) % HPAGE_PMD_NR === 0;
}

/**
 * kernel: mm/huge_memory.c do_huge_pmd_anonymous_page() (write faults)
 * An order-9 folio with vma_thp_gfp_mask(), zeroed (folio_zero_user: 512 clear_page), with a PTE
 * table deposited, mapped by one PMD: thp_fault_alloc, AnonHugePages, 512 pages of rss. No folio:
 * thp_fault_fallback and VM_FAULT_FALLBACK. Read faults fall back too: the huge zero page is not
 * modelled (docs/decisions.md), so they map the 4 KiB zero page.
 */
export function do_huge_pmd_anonymous_page(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  pmd: number,
  anon_vma_prepare: (vm: Vm, vma: number) => void,
): number {
  const k = vm.mm;
  const v = vm.vmas;
  const haddr = Math.floor(addr / PMD_BYTES) * PMD_BYTES;
  khugepaged_enter_vma(vm, mm, vma, v.vm_flags[vma]);
  anon_vma_prepare(vm, vma);
  const gfp = vma_thp_gfp_mask(k, (v.vm_flags[vma] & VM_HUGEPAGE) !== 0);
  const head = __alloc_pages(k, gfp, HPAGE_PMD_ORDER, mm.nid, mm.cpu);
  if (head < 0) {
    k.vm_events[THP_FAULT_FALLBACK]++;
    count_mthp_stat(k, HPAGE_PMD_ORDER, MTHP_STAT_ANON_FAULT_FALLBACK);
    return VM_FAULT_FALLBACK;
  }
  const pgtable = vm.pt.alloc(mm.id, mm.nid, mm.cpu);
  if (pgtable < 0) {
    __free_pages(k, head, HPAGE_PMD_ORDER, mm.cpu);
    return 0x1; // VM_FAULT_OOM
  }
  k.kernel_ns += HPAGE_PMD_NR * k.cost.clear_page + k.cost.new_anon_folio;
  map_anon_folio_pmd(vm, mm, vma, haddr, pmd, head, pgtable);
  k.vm_events[THP_FAULT_ALLOC]++;
  count_mthp_stat(k, HPAGE_PMD_ORDER, MTHP_STAT_ANON_FAULT_ALLOC);
  return 0;
}

/**
 * folio_add_new_anon_rmap() + folio_add_lru_vma() + pgtable_trans_huge_deposit() + set_pmd_at()
 * + deferred_split_folio(): a new order-9 anonymous folio `head` is mapped at `haddr` by entry
 * `pmd_index(haddr)` of PMD table `pmd`, writable if the VMA is, with `pgtable` deposited (the
 * THP fault and khugepaged's collapse_huge_page()).
 */
export function map_anon_folio_pmd(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  haddr: number,
  pmd: number,
  head: number,
  pgtable: number,
): void {
  const k = vm.mm;
  const v = vm.vmas;
  // folio_add_new_anon_rmap(): every subpage joins the anon_vma at its index.
  const f = k.frames;
  const mapping = anon_mapping(v.anon_vma[vma]);
  const index = v.linear_page_index(vma, haddr);
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    f.mapping[head + i] = mapping;
    f.index[head + i] = index + i;
    f.flags[head + i] |= PG_anon | PG_swapbacked;
  }
  thp(k).entire_mapcount[head >> HPAGE_PMD_ORDER] = 1;
  thp(k).nr_anon[HPAGE_PMD_ORDER]++;
  const node = k.nodes[k.page_zone(head)!.nid];
  node.vm_stat[NR_ANON_MAPPED] += HPAGE_PMD_NR;
  node.vm_stat[NR_ANON_THPS] += HPAGE_PMD_NR;
  if ((v.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) mlock_new_folio(k, head);
  else lruvec_add_folio(k, head);
  const e = pmd * PTRS_PER_TABLE + pmd_index(haddr / 4096);
  vm.pt.deposit.set(e, pgtable);
  vm.pt.set(
    pmd,
    e % PTRS_PER_TABLE,
    head,
    _PAGE_PRESENT |
      _PAGE_USER |
      _PAGE_ACCESSED |
      _PAGE_DIRTY |
      _PAGE_PSE |
      (v.vm_flags[vma] & VM_WRITE ? _PAGE_RW : 0),
  );
  mm.rss[MM_ANONPAGES] += HPAGE_PMD_NR;
  deferred_split_folio(k, head, false);
}

/**
 * kernel: mm/huge_memory.c do_huge_pmd_wp_page()
 * A write to a read-only PMD: an exclusive THP (mapped by this PMD only) is reused; otherwise
 * the PMD is split and the fault falls back to the PTE level, which copies one page.
 */
export function do_huge_pmd_wp_page(vm: Vm, mm: MmStruct, vma: number, e: number): number {
  const pt = vm.pt;
  const head = pt.pfn[e];
  const k = vm.mm;
  if (thp(k).entire_mapcount[head >> HPAGE_PMD_ORDER] === 1 && !ptemapped(k.frames.mapcount, head)) {
    pt.bits[e] |= _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
    return 0;
  }
  __split_huge_pmd(vm, mm, vma, e);
  return VM_FAULT_FALLBACK;
}

function ptemapped(mc: Int32Array, head: number): boolean {
  for (let i = 0; i < HPAGE_PMD_NR; i++) if (mc[head + i] > 0) return true;
  return false;
}

/**
 * kernel: mm/huge_memory.c __split_huge_pmd_locked() (anonymous, not freezing)
 * The PMD mapping becomes 512 PTEs in the deposited table, with the PMD's bits: the folio stays
 * one order-9 folio, now PTE-mapped (thp_split_pmd). AnonHugePages drops when the last PMD
 * mapping goes; nr_anon_pages does not change (every page stays mapped).
 */
export function __split_huge_pmd(vm: Vm, _mm: MmStruct, _vma: number, e: number): void {
  const pt = vm.pt;
  const k = vm.mm;
  const head = pt.pfn[e];
  const bits = pt.bits[e] & ~_PAGE_PSE;
  const slot = pt.deposit.get(e)!;
  pt.deposit.delete(e);
  const pmd = Math.floor(e / PTRS_PER_TABLE);
  const i = e % PTRS_PER_TABLE;
  pt.clear(pmd, i);
  const f = k.frames;
  for (let j = 0; j < HPAGE_PMD_NR; j++) {
    pt.set(slot, j, head + j, bits);
    f.mapcount[head + j]++;
  }
  pt.set(pmd, i, pt.frame[slot], _PAGE_TABLE);
  const s = thp(k);
  if (--s.entire_mapcount[head >> HPAGE_PMD_ORDER] === 0)
    k.nodes[k.page_zone(head)!.nid].vm_stat[NR_ANON_THPS] -= HPAGE_PMD_NR;
  k.vm_events[THP_SPLIT_PMD]++;
  k.kernel_ns += HPAGE_PMD_NR * k.cost.zap_pte;
}

/**
 * kernel: mm/huge_memory.c split_huge_pmd_address() over a range
 * Split every PMD mapping of [start, end) in `mm`; with `partial_only`, only those the range
 * covers in part (the kernel's vma_adjust_trans_huge() and __split_huge_pmd() callers).
 */
export function split_huge_pmd_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
  partial_only = false,
): void {
  if (!vm.pt.deposit.size) return;
  for (let a = Math.floor(start / PMD_BYTES) * PMD_BYTES; a < end; a += PMD_BYTES) {
    const e = huge_pmd_entry(vm, mm, a / 4096);
    if (e < 0) continue;
    if (partial_only && a >= start && a + PMD_BYTES <= end) continue;
    __split_huge_pmd(vm, mm, vma, e);
  }
}

/**
 * Split the large folios (any order) that [start, end) of `mm` maps into order-0 pages (their PMDs first). Used by
 * the operations the model does not teach about large folios (mlock, madvise's LRU moves,
 * mremap, GUP): the kernel keeps the folios large there (docs/decisions.md).
 */
export function split_thps_in_range(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): void {
  if (!vm.pt.deposit.size && !anon_large_folios_exist(vm.mm)) return;
  split_huge_pmd_range(vm, mm, vma, start, end);
  const pt = vm.pt;
  const f = vm.mm.frames;
  for (let a = start; a < end; a += 4096) {
    const vpn = a / 4096;
    const pmd = pmd_table(vm, mm, vpn, false);
    if (pmd < 0) {
      a = (Math.floor(vpn / (HPAGE_PMD_NR * HPAGE_PMD_NR)) + 1) * HPAGE_PMD_NR * HPAGE_PMD_NR * 4096 - 4096;
      continue;
    }
    const table = pt.child(pmd, pmd_index(vpn));
    if (table < 0 || pt.used[table] === 0) {
      a = (Math.floor(vpn / HPAGE_PMD_NR) + 1) * PMD_BYTES - 4096;
      continue;
    }
    const ent = table * PTRS_PER_TABLE + (vpn & 511);
    if (!(pt.bits[ent] & _PAGE_PRESENT)) continue;
    const pfn = pt.pfn[ent];
    if (pfn !== vm.mm.zero_pfn && f.flags[pfn] & (PG_head | PG_tail) && f.flags[pfn] & PG_anon)
      split_folio(vm, folio_head(vm.mm, pfn), false);
  }
}

/**
 * kernel: mm/huge_memory.c zap_huge_pmd()
 * Unmap a whole PMD mapping: the deposited table is freed, rss drops by 512, and the folio goes
 * when nothing maps it any more; still PTE-mapped elsewhere, it is partially mapped and queued
 * for a deferred split.
 */
export function zap_huge_pmd(vm: Vm, mm: MmStruct, vma: number, e: number): void {
  const pt = vm.pt;
  const k = vm.mm;
  const head = pt.pfn[e];
  const pmd = Math.floor(e / PTRS_PER_TABLE);
  pt.clear(pmd, e % PTRS_PER_TABLE);
  pt.release(pt.deposit.get(e)!, mm.cpu);
  pt.deposit.delete(e);
  k.kernel_ns += k.cost.zap_pte;
  mm.rss[MM_ANONPAGES] -= HPAGE_PMD_NR;
  // folio_remove_rmap_pmd()
  const s = thp(k);
  const node = k.nodes[k.page_zone(head)!.nid];
  if (--s.entire_mapcount[head >> HPAGE_PMD_ORDER] === 0) {
    node.vm_stat[NR_ANON_THPS] -= HPAGE_PMD_NR;
    const mc = k.frames.mapcount;
    let unmapped = 0;
    for (let i = 0; i < HPAGE_PMD_NR; i++) if (mc[head + i] === 0) unmapped++;
    node.vm_stat[NR_ANON_MAPPED] -= unmapped;
    if (unmapped && unmapped < HPAGE_PMD_NR) deferred_split_folio(k, head, true);
  }
  if (vm.vmas.vm_flags[vma] & VM_LOCKED) munlock_vma_thp(vm, head);
  if (!thp_mapped(k, head)) free_thp(vm, head, mm.cpu);
}

/**
 * folio_remove_rmap_pte() of a subpage of a large folio (its PTE is cleared): nr_anon_pages drops
 * when the page is mapped no more; the folio is freed with its last mapping, or queued partially
 * mapped (an mTHP too: 6.18 deferred-splits every order from 2).
 */
export function thp_remove_rmap_pte(vm: Vm, mm: MmStruct, pfn: number, vma: number): void {
  const k = vm.mm;
  const f = k.frames;
  const head = folio_head(k, pfn);
  mm.rss[MM_ANONPAGES]--;
  const entire = folio_entire_mapcount(k, head);
  if (--f.mapcount[pfn] === 0 && entire === 0) {
    k.nodes[k.page_zone(head)!.nid].vm_stat[NR_ANON_MAPPED]--;
    if (thp_mapped(k, head)) deferred_split_folio(k, head, true);
  }
  if (vm.vmas.vm_flags[vma] & VM_LOCKED) munlock_vma_thp(vm, head);
  if (f.mapcount[pfn] === 0 && !thp_mapped(k, head)) free_thp(vm, head, mm.cpu);
}

/** munlock_vma_folio() for a THP: it stays mlocked while a VM_LOCKED VMA maps any of it. */
export function munlock_vma_thp(vm: Vm, head: number): void {
  const k = vm.mm;
  if (!(k.frames.flags[head] & PG_mlocked)) return;
  if (thp_mapped(k, head) && thp_mapped_in_locked_vma(vm, head)) return;
  munlock_folio(k, head);
}

function thp_mapped_in_locked_vma(vm: Vm, head: number): boolean {
  const mc = vm.mm.frames.mapcount;
  if (folio_entire_mapcount(vm.mm, head) > 0 && page_mapped_in_locked_vma(vm, head)) return true;
  const nr = folio_nr_pages(vm.mm, head);
  for (let i = 0; i < nr; i++) if (mc[head + i] > 0 && page_mapped_in_locked_vma(vm, head + i)) return true;
  return false;
}

/**
 * Free an unmapped large folio: off the LRU and the split queue, identity cleared, the whole
 * block (its order) back to the buddy.
 */
export function free_thp(vm: Vm, head: number, cpu: number): void {
  const k = vm.mm;
  const f = k.frames;
  const order = f.order[head];
  const nr = 1 << order;
  folio_unqueue_deferred_split(k, head);
  thp(k).nr_anon[order]--;
  if (f.flags[head] & PG_lru) lruvec_del_folio(k, head);
  if (f.flags[head] & PG_mlocked) {
    k.page_zone(head)!.vm_stat[NR_MLOCK] -= nr;
    k.vm_events[UNEVICTABLE_PGCLEARED] += nr;
  }
  let pinned = false;
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    if (folio_maybe_dma_pinned(k, p)) pinned = true;
    f.flags[p] &= ~(FOLIO_FLAGS | PG_anon | PG_swapbacked);
    f.mapping[p] = 0;
    f.index[p] = 0;
  }
  if (!pinned) __free_pages(k, head, order, cpu);
}

/** Folio-wide flags the head carries and split_folio() gives every page. */
const FOLIO_FLAGS = PG_active | PG_referenced | PG_mlocked | PG_unevictable | PG_dirty | PG_workingset;

/**
 * kernel: mm/huge_memory.c copy_huge_pmd()
 * fork() of a PMD mapping: the child gets its own deposited table and the same PMD, both
 * write-protected in a COW mapping; the folio gains an entire mapping. A pinned folio cannot be
 * shared (folio_try_dup_anon_rmap_pmd()): the parent's PMD is split and the PTEs are copied
 * instead (returns false).
 */
export function copy_huge_pmd(
  vm: Vm,
  dst: MmStruct,
  src: MmStruct,
  vma: number,
  e: number,
  cow: boolean,
  vpn: number,
): boolean {
  const pt = vm.pt;
  const k = vm.mm;
  const head = pt.pfn[e];
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    if (folio_maybe_dma_pinned(k, head + i)) {
      __split_huge_pmd(vm, src, vma, e);
      return false;
    }
  }
  const i = e % PTRS_PER_TABLE;
  const se = e;
  const dpmd = pmd_table(vm, dst, vpn, true);
  if (dpmd < 0) return false;
  const pgtable = pt.alloc(dst.id, dst.nid, dst.cpu);
  if (pgtable < 0) return false;
  let bits = pt.bits[se];
  if (cow && bits & _PAGE_RW) {
    bits &= ~_PAGE_RW;
    pt.bits[se] = bits;
  }
  const de = dpmd * PTRS_PER_TABLE + i;
  pt.deposit.set(de, pgtable);
  pt.set(dpmd, i, head, bits);
  thp(k).entire_mapcount[head >> HPAGE_PMD_ORDER]++;
  dst.rss[MM_ANONPAGES] += HPAGE_PMD_NR;
  return true;
}

/**
 * kernel: mm/huge_memory.c thp_shrinker_init()
 * Install split_folio() for the folio side (the shrinker and migration split THPs through the
 * reverse map) and register the deferred split shrinker: "thp-deferred_split", NUMA aware.
 */
export function thp_shrinker_init(vm: Vm): void {
  const mm = vm.mm;
  thp(mm).vm = vm;
  shrinker_register(mm, new DeferredSplitShrinker(mm));
}

/** The "thp-deferred_split" shrinker: deferred_split_count() / deferred_split_scan(). */
class DeferredSplitShrinker extends Shrinker {
  constructor(readonly mm: MM) {
    super(SHRINKER_NUMA_AWARE, 'thp-deferred_split', mm.nodes.length);
  }

  override count_objects(sc: ShrinkControl): number {
    return deferred_split_count(this.mm, sc) || SHRINK_EMPTY;
  }

  override scan_objects(sc: ShrinkControl): number {
    return deferred_split_scan(this.mm, sc);
  }
}

/**
 * kernel: mm/huge_memory.c split_folio() → __folio_split() (anonymous, order 2..9 → order 0)
 * Every PMD mapping is split first (the kernel unmaps and remaps as PTEs); then the compound
 * page becomes 1 << order order-0 pages that inherit the folio's flags. Pages nothing maps are
 * freed (the deferred split's purpose); the others rejoin the LRU, or stay isolated for a caller
 * that isolated the folio (`isolated`, migration). A pinned folio cannot be split: -EAGAIN and
 * split_failed (thp_split_page_failed for the PMD order). Success counts the size's split
 * (and thp_split_page for the PMD order, as __folio_split()'s out: label does).
 */
export function split_folio(vm: Vm, head: number, isolated: boolean): number {
  const k = vm.mm;
  const f = k.frames;
  const order = f.order[head];
  const nr = 1 << order;
  for (let i = 0; i < nr; i++) {
    if (folio_maybe_dma_pinned(k, head + i)) {
      if (order === HPAGE_PMD_ORDER) k.vm_events[THP_SPLIT_PAGE_FAILED]++;
      count_mthp_stat(k, order, MTHP_STAT_SPLIT_FAILED);
      return -11;
    }
  }
  // Unmap the PMD mappings (as PTEs): through the reverse map of the head.
  if (folio_entire_mapcount(k, head) > 0) split_all_pmds(vm, head);
  const wasLru = (f.flags[head] & PG_lru) !== 0;
  if (wasLru) lruvec_del_folio(k, head);
  const folio_flags = f.flags[head] & FOLIO_FLAGS;
  folio_unqueue_deferred_split(k, head);
  thp(k).nr_anon[order]--;
  const zone = k.page_zone(head)!;
  const node = k.nodes[zone.nid];
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    f.flags[p] = (f.flags[p] & ~(PG_head | PG_tail)) | PGI_alloc | folio_flags;
    f.order[p] = 0;
  }
  k.kernel_ns += nr * k.cost.isolate_page;
  if (order === HPAGE_PMD_ORDER) k.vm_events[THP_SPLIT_PAGE]++;
  count_mthp_stat(k, order, MTHP_STAT_SPLIT);
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    if (f.mapcount[p] > 0) {
      if (wasLru) lruvec_add_folio(k, p);
      continue;
    }
    // Nothing maps this page: free_folio_and_swap_cache() after the split.
    if (f.flags[p] & PG_mlocked) {
      zone.vm_stat[NR_MLOCK]--;
      k.vm_events[UNEVICTABLE_PGCLEARED]++;
    }
    if (isolated) node.vm_stat[NR_ISOLATED_ANON]--;
    f.flags[p] &= ~(FOLIO_FLAGS | PG_anon | PG_swapbacked);
    f.mapping[p] = 0;
    f.index[p] = 0;
    __free_pages(k, p, 0, 0);
  }
  return 0;
}

/** Split every PMD that maps the THP `head`, in every address space (rmap walk of the head). */
function split_all_pmds(vm: Vm, head: number): void {
  const pt = vm.pt;
  const v = vm.vmas;
  const list = vm.anon.linked(vm.mm.frames.mapping[head] >> 2);
  for (let n = 0; n < list.length; n++) {
    const vma = list[n];
    const addr = v.vm_start[vma] + (vm.mm.frames.index[head] - v.vm_pgoff[vma]) * 4096;
    if (addr < v.vm_start[vma] || addr >= v.vm_end[vma]) continue;
    const mm = vm.mms[v.vm_mm[vma]]!;
    const e = huge_pmd_entry(vm, mm, addr / 4096);
    if (e >= 0 && pt.pfn[e] === head) __split_huge_pmd(vm, mm, vma, e);
  }
}
