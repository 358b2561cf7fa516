/**
 * mm/memory.c: page faults and unmapping. A fault walks the page tables from the PGD, allocating
 * missing tables, then fills the PTE: a read of untouched anonymous memory maps the shared zero
 * page; a write allocates a zeroed movable page, puts it on the LRU and in the reverse map.
 * Unmapping (zap) drops each mapped page's mapcount and frees pages nobody maps any more; the
 * page tables of a range that no VMA covers any more are freed afterwards (free_pgtables).
 */

import { errnos } from '../lib/errno.ts';
import { folio_mark_accessed, folio_mark_dirty, NR_FILE_MAPPED } from '../mm/filemap.ts';
import { __GFP_ZERO, GFP_HIGHUSER_MOVABLE } from '../mm/gfp.ts';
import { folio_maybe_dma_pinned } from '../mm/gup.ts';
import {
  count_mthp_stat,
  folio_entire_mapcount,
  folio_head,
  MTHP_STAT_ANON_FAULT_ALLOC,
  MTHP_STAT_ANON_FAULT_FALLBACK,
  thp,
  vma_thp_gfp_mask,
} from '../mm/huge_memory.ts';
import {
  lruvec_add_folio,
  lruvec_del_folio,
  mlock_folio,
  mlock_new_folio,
  munlock_folio,
} from '../mm/lru.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_head,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_tail,
  PG_unevictable,
} from '../mm/page-flags.ts';
import {
  add_to_swap_cache,
  delete_from_swap_cache,
  folio_swap_slot,
  free_swap_and_cache,
  SWAP_HAS_CACHE,
  swap_read_folio,
} from '../mm/swapfile.ts';
import { NR_MLOCK, node_stat_index, vm_event_index } from '../mm/vmstat_items.ts';
import { anon_mapping } from './anon_vma.ts';
import { do_fault, fault_dirty_shared_page, mm_counter_file } from './filemap_fault.ts';
import {
  __split_huge_pmd,
  do_huge_pmd_anonymous_page,
  do_huge_pmd_wp_page,
  huge_pmd_entry,
  map_anon_folio_pte_range,
  munlock_vma_thp,
  pmd_table,
  thp_remove_rmap_pte,
  thp_vma_allowable,
  thp_vma_allowable_orders_below_pmd,
  VM_FAULT_FALLBACK,
  zap_huge_pmd,
} from './huge_memory.ts';
import { hugetlb_fault } from './hugetlb.ts';
import { MM_ANONPAGES, MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_SPECIAL,
  _PAGE_SWP_ENTRY,
  _PAGE_TABLE,
  _PAGE_USER,
  PTRS_PER_TABLE,
  pgd_index,
  pmd_index,
  pte_index,
  pud_index,
} from './pgtable.ts';
import { page_mapped_in_locked_vma, vma_has_recency } from './rmap.ts';
import { update_hiwater_rss, type Vm } from './vm.ts';
import {
  VM_CONTIG,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_EXEC,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYWRITE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
} from './vma.ts';

const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');
const UNEVICTABLE_PGCLEARED = vm_event_index('unevictable_pgs_cleared');
const PGFAULT = vm_event_index('pgfault');
const PGMAJFAULT = vm_event_index('pgmajfault');

/** vm_fault_t results the model distinguishes. */
export const VM_FAULT_OK = 0;
export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;
export const VM_FAULT_SIGSEGV = 0x40;

const PMD_PAGES = PTRS_PER_TABLE; // 2 MiB
const PUD_PAGES = PTRS_PER_TABLE * PMD_PAGES; // 1 GiB
const PGD_PAGES = PTRS_PER_TABLE * PUD_PAGES; // 512 GiB

/**
 * The PTE table slot covering `vpn`, allocating PUD, PMD and PTE tables on the way
 * (__pud_alloc, __pmd_alloc, __pte_alloc); -1 if a table could not be allocated.
 */
export function pte_table_alloc(vm: Vm, mm: MmStruct, vpn: number): number {
  const pt = vm.pt;
  let table = mm.pgd;
  const idx = [pgd_index(vpn), pud_index(vpn), pmd_index(vpn)];
  for (let level = 0; level < 3; level++) {
    let child = pt.child(table, idx[level]);
    if (child < 0) {
      child = pt.alloc(mm.id, mm.nid, mm.cpu);
      if (child < 0) return -1;
      pt.set(table, idx[level], pt.frame[child], _PAGE_TABLE);
    }
    table = child;
  }
  return table;
}

/** The PTE table slot covering `vpn`, or -1 if a level is missing. */
export function walk_pte_table(vm: Vm, mm: MmStruct, vpn: number): number {
  const pt = vm.pt;
  const pud = pt.child(mm.pgd, pgd_index(vpn));
  if (pud < 0) return -1;
  const pmd = pt.child(pud, pud_index(vpn));
  if (pmd < 0) return -1;
  return pt.child(pmd, pmd_index(vpn));
}

/** A visitor of present PTEs: plain functions with their state in `arg`, so a walk allocates nothing. */
export type PteEntry<A> = (vm: Vm, mm: MmStruct, table: number, i: number, arg: A) => void;

/**
 * kernel: mm/pagewalk.c walk_page_range() at the PTE level (ops->pte_entry)
 * Call `pte_entry` for every present PTE in [start, end) — and swap entries too with
 * `include_swap` — a PTE table at a time, skipping missing and empty tables. The visitor may
 * clear the entry it is given.
 */
export function walk_pte_range<A>(
  vm: Vm,
  mm: MmStruct,
  start: number,
  end: number,
  pte_entry: PteEntry<A>,
  arg: A,
  include_swap = false,
): void {
  const skip = include_swap ? 0 : _PAGE_SWP_ENTRY;
  const pt = vm.pt;
  let vpn = start / 4096;
  const last = end / 4096;
  while (vpn < last) {
    const next = Math.min(last, (Math.floor(vpn / PMD_PAGES) + 1) * PMD_PAGES);
    const table = walk_pte_table(vm, mm, vpn);
    if (table >= 0 && pt.used[table] > 0) {
      for (; vpn < next; vpn++) {
        const i = pte_index(vpn);
        const bits = pt.bits[table * PTRS_PER_TABLE + i];
        if (bits !== 0 && !(bits & skip)) pte_entry(vm, mm, table, i, arg);
      }
    }
    vpn = next;
  }
}

/**
 * folio_add_new_anon_rmap() + folio_add_lru_vma(): a new anonymous page joins the VMA's
 * anon_vma at its linear index, mapped once, on the inactive anon list, or on the unevictable
 * list (PG_mlocked, mlock_new_folio) in a VM_LOCKED VMA.
 */
export function add_new_anon_page(vm: Vm, mm: MmStruct, vma: number, addr: number, pfn: number): void {
  const f = vm.mm.frames;
  const vmas = vm.vmas;
  f.mapping[pfn] = anon_mapping(vmas.anon_vma[vma]);
  f.index[pfn] = vmas.linear_page_index(vma, addr);
  f.mapcount[pfn] = 1;
  f.flags[pfn] |= PG_anon | PG_swapbacked;
  vm.mm.kernel_ns += vm.mm.cost.new_anon_folio;
  const zone = vm.mm.page_zone(pfn)!;
  if ((vmas.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) mlock_new_folio(vm.mm, pfn);
  else lruvec_add_folio(vm.mm, pfn);
  vm.mm.nodes[zone.nid].vm_stat[NR_ANON_MAPPED]++;
  mm.rss[MM_ANONPAGES]++;
}

/** anon_vma_prepare(): give the VMA an anon_vma before its first anonymous page. */
export function anon_vma_prepare(vm: Vm, vma: number): void {
  if (vm.vmas.anon_vma[vma] >= 0) return;
  const av = vm.anon.alloc();
  vm.vmas.anon_vma[vma] = av;
  vm.anon.link(av, vma);
}

/**
 * kernel: mm/memory.c handle_mm_fault() → handle_pte_fault()
 * `vma` must contain `addr` and allow the access; the caller checked that (the kernel's
 * access_error()). A missing PTE is an anonymous fault (do_anonymous_page) or, in a file VMA, a
 * file fault (do_fault). A write to a read-only PTE is do_wp_page(): a shared mapping dirties
 * its page-cache page and makes the PTE writable; a private one reuses an anonymous page mapped
 * once and copies anything else (the zero page, a page shared after fork, a file page). Returns
 * VM_FAULT_OK, VM_FAULT_OOM or VM_FAULT_SIGBUS.
 */
export function handle_mm_fault(vm: Vm, mm: MmStruct, vma: number, addr: number, write: boolean): number {
  // mm_account_fault(): every fault counts, from user space or GUP (populate, mlock).
  vm.mm.vm_events[PGFAULT]++;
  vm.mm.kernel_ns += vm.mm.cost.handle_mm_fault;
  // is_vm_hugetlb_page(): hugetlb_fault() handles the whole fault.
  if (vm.vmas.vm_flags[vma] & VM_HUGETLB) return hugetlb_fault(vm, mm, vma, addr, write);
  // __handle_mm_fault()'s PMD level: a THP fault on an empty PMD, or a huge PMD's own fault.
  if (vm.pt.deposit.size || vm.mm.config.TRANSPARENT_HUGEPAGE) {
    const r = handle_pmd_fault(vm, mm, vma, addr, write);
    if (r !== VM_FAULT_FALLBACK) return r;
  }
  return handle_pte_fault(vm, mm, vma, addr, write);
}

// kernel: mm/memory.c __handle_mm_fault() at the PMD level (create_huge_pmd / wp_huge_pmd)
function handle_pmd_fault(vm: Vm, mm: MmStruct, vma: number, addr: number, write: boolean): number {
  const vpn = addr / 4096;
  // do_huge_pmd_anonymous_page(): a read fault maps the huge zero page when use_zero_page is set
  // (the model maps the 4 KiB zero page instead: fall back), else allocates a THP too.
  const allowable = (write || !thp(vm.mm).use_zero_page) && thp_vma_allowable(vm, vma, addr);
  const pmd = pmd_table(vm, mm, vpn, allowable);
  if (pmd < 0) return allowable ? VM_FAULT_OOM : VM_FAULT_FALLBACK;
  const e = pmd * PTRS_PER_TABLE + pmd_index(vpn);
  const bits = vm.pt.bits[e];
  if (bits === 0) {
    if (!allowable) return VM_FAULT_FALLBACK;
    return do_huge_pmd_anonymous_page(vm, mm, vma, addr, pmd, anon_vma_prepare);
  }
  if (!(bits & _PAGE_PSE)) return VM_FAULT_FALLBACK;
  if (write && !(bits & _PAGE_RW)) return do_huge_pmd_wp_page(vm, mm, vma, e);
  vm.pt.bits[e] = bits | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
  return VM_FAULT_OK;
}

// kernel: mm/memory.c handle_pte_fault()
function handle_pte_fault(vm: Vm, mm: MmStruct, vma: number, addr: number, write: boolean): number {
  const vpn = addr / 4096;
  const table = pte_table_alloc(vm, mm, vpn);
  if (table < 0) return VM_FAULT_OOM;
  const pt = vm.pt;
  const i = pte_index(vpn);
  const e = table * PTRS_PER_TABLE + i;
  const bits = pt.bits[e];
  const flags = vm.vmas.vm_flags[vma];
  if (bits & _PAGE_SWP_ENTRY) return do_swap_page(vm, mm, vma, addr, write, table, i);
  if (bits !== 0) {
    if (!write || bits & _PAGE_RW) {
      pt.bits[e] = bits | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
      return VM_FAULT_OK;
    }
    const old = pt.pfn[e];
    if (bits & _PAGE_SPECIAL) {
      // do_wp_page() without a normal page: wp_pfn_shared() makes the PTE writable where it is;
      // a private one would be copied (wp_page_copy), but the model's drivers map only MAP_SHARED.
      if (!(flags & VM_SHARED)) return VM_FAULT_SIGBUS;
      pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
      return VM_FAULT_OK;
    }
    if (flags & VM_SHARED) {
      // wp_page_shared(): page_mkwrite, then the page is dirty and the PTE writable.
      pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
      fault_dirty_shared_page(vm, vm.mm.page_cache.of(vm.mm.frames.mapping[old]), old);
      return VM_FAULT_OK;
    }
    const f = vm.mm.frames;
    // A THP subpage is exclusive only if no PMD maps its folio too (page_mapcount()).
    if (
      old !== vm.mm.zero_pfn &&
      f.flags[old] & PG_anon &&
      f.mapcount[old] === 1 &&
      !(f.flags[old] & (PG_head | PG_tail) && folio_entire_mapcount(vm.mm, folio_head(vm.mm, old)) > 0)
    ) {
      // wp_can_reuse_anon_folio(): a page about to be written has no use for its swap copy.
      if (f.flags[old] & PG_swapcache) {
        const si = vm.mm.swap!;
        if ((si.swap_map[folio_swap_slot(vm.mm, old)] & ~SWAP_HAS_CACHE) === 0) {
          delete_from_swap_cache(vm.mm, old);
          f.flags[old] |= PG_dirty;
        }
      }
      pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
      return VM_FAULT_OK;
    }
    // wp_page_copy() holds the old page while it allocates: reclaim must not take it.
    const held = old !== vm.mm.zero_pfn && !(f.flags[old] & PG_locked);
    if (held) f.flags[old] |= PG_locked;
    // A copy of the zero page is a zeroed page; anything else is copied (__wp_page_copy_user).
    const pfn = alloc_anon_page(vm, mm, vma, addr, old === vm.mm.zero_pfn);
    if (held) f.flags[old] &= ~PG_locked;
    if (pfn < 0) return VM_FAULT_OOM;
    if (old !== vm.mm.zero_pfn) vm.mm.kernel_ns += vm.mm.cost.copy_page;
    // The new PTE is set before the old page loses this mapping.
    pt.pfn[e] = pfn;
    pt.bits[e] = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW;
    if (old !== vm.mm.zero_pfn) page_remove_any_rmap(vm, mm, old, vma);
    return VM_FAULT_OK;
  }
  if (vm.vmas.vm_file[vma]) {
    // do_fault(): a driver's mapping faults through its vm_ops->fault, SIGBUS without one.
    const f_op = vm.files.file(vm.vmas.vm_file[vma]).f_op;
    if (f_op) return f_op.fault ? f_op.fault(mm, vma, addr, write) : VM_FAULT_SIGBUS;
    return do_fault(vm, mm, vma, addr, write, table, i);
  }
  // do_anonymous_page(); a MAP_CONTIG mapping's page was allocated at mmap (RFC POC 2/3), zeroed.
  if (flags & VM_CONTIG && map_contig_page(vm, mm, vma, addr, table, i)) return VM_FAULT_OK;
  if (!write) {
    // Where a THP could go, 6.18 maps the huge zero page, and a later write splits it into 512
    // zero-page PTEs: the model maps those at once (so no mTHP finds the range none later).
    const huge_zero =
      vm.mm.config.TRANSPARENT_HUGEPAGE && thp(vm.mm).use_zero_page && thp_vma_allowable(vm, vma, addr);
    if (huge_zero) {
      for (let j = 0; j < PTRS_PER_TABLE; j++)
        if (pt.bits[table * PTRS_PER_TABLE + j] === 0)
          pt.set(table, j, vm.mm.zero_pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
    } else pt.set(table, i, vm.mm.zero_pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
    return VM_FAULT_OK;
  }
  // alloc_anon_folio()'s large orders (mTHP) below PMD size, when enabled for the VMA.
  if (vm.mm.config.TRANSPARENT_HUGEPAGE && do_anonymous_page_large(vm, mm, vma, addr, table))
    return VM_FAULT_OK;
  const pfn = alloc_anon_page(vm, mm, vma, addr, true);
  if (pfn < 0) return VM_FAULT_OOM;
  pt.set(
    table,
    i,
    pfn,
    _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | (flags & VM_WRITE ? _PAGE_RW : 0),
  );
  return VM_FAULT_OK;
}

/**
 * Map the page MAP_CONTIG pre-allocated for `addr`, if it is still there. The mapping's page
 * offsets start at 0 and index its backing, so splits and moves keep the arithmetic right (the
 * POC counted from vm_start, which a split moves). A page the mapping already let go (a POC
 * mapping's page zapped by MADV_DONTNEED) is not mapped again: the POC would map the freed
 * page; the fault takes an ordinary page instead.
 */
function map_contig_page(vm: Vm, mm: MmStruct, vma: number, addr: number, table: number, i: number): boolean {
  const backing = vm.contig_backings[vm.vmas.vm_private_data[vma]];
  const pfn = backing ? backing.pfns[vm.vmas.linear_page_index(vma, addr)] : -1;
  if (pfn < 0) return false;
  anon_vma_prepare(vm, vma);
  add_new_anon_page(vm, mm, vma, addr, pfn);
  const rw = vm.vmas.vm_flags[vma] & VM_WRITE ? _PAGE_RW : 0;
  vm.pt.set(table, i, pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | rw);
  return true;
}

/** The VMA is a MAP_CONTIG mapping whose policy holds its pages (they never move or leave). */
export function contig_held(vm: Vm, vma: number): boolean {
  return (
    (vm.vmas.vm_flags[vma] & VM_CONTIG) !== 0 &&
    vm.contig_backings[vm.vmas.vm_private_data[vma]]?.policy.holds_pages === true
  );
}

/**
 * A MAP_CONTIG mapping's anonymous page at offset `idx` left it (zap): its backing lets that
 * offset go, and the policy the page if it is the one it gave (not a COW copy or a migrated
 * page); the backing goes with its last page.
 */
function map_contig_unmapped(vm: Vm, vma: number, idx: number, pfn: number, cpu: number): void {
  const id = vm.vmas.vm_private_data[vma];
  const backing = vm.contig_backings[id];
  if (!backing || backing.pfns[idx] < 0) return;
  if (backing.pfns[idx] === pfn) backing.policy.unmapped(backing, pfn, cpu);
  backing.pfns[idx] = -1;
  if (--backing.mapped === 0) vm.contig_backings[id] = undefined;
}

/**
 * kernel: mm/memory.c do_swap_page()
 * A fault on a swap entry: the page comes from the swap cache if it is still there, else it is
 * read back from the device (a major fault) into a new page that joins the swap cache. The PTE
 * maps it, writable if this is its only user and the VMA is writable; the slot loses this
 * reference, and the swap copy is dropped when it is no longer worth keeping
 * (should_try_to_free_swap(): a write to an exclusive page, a locked VMA, swap half full).
 */
function do_swap_page(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  write: boolean,
  table: number,
  i: number,
): number {
  const pt = vm.pt;
  const e = table * PTRS_PER_TABLE + i;
  const slot = pt.pfn[e];
  const si = vm.mm.swap!;
  const f = vm.mm.frames;
  let pfn = si.cache.get(slot) ?? -1;
  if (pfn < 0) {
    pfn = alloc_anon_folio(vm, mm, vma, false);
    if (pfn < 0) return VM_FAULT_OOM;
    vm.mm.vm_events[PGMAJFAULT]++;
    swap_read_folio(vm.mm);
    add_to_swap_cache(vm.mm, pfn, slot);
    add_new_anon_page(vm, mm, vma, addr, pfn);
  } else {
    // folio_add_anon_rmap_pte(): another mapping of the cached page.
    if (f.mapcount[pfn]++ === 0) vm.mm.nodes[vm.mm.page_zone(pfn)!.nid].vm_stat[NR_ANON_MAPPED]++;
    mm.rss[MM_ANONPAGES]++;
    if ((vm.vmas.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) mlock_folio(vm.mm, pfn);
  }
  mm.rss[MM_SWAPENTS]--;
  si.put(slot, 1); // swap_free()
  const exclusive = f.mapcount[pfn] === 1 && (si.swap_map[slot] & ~SWAP_HAS_CACHE) === 0;
  let bits = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if (exclusive && vm.vmas.vm_flags[vma] & VM_WRITE) bits |= _PAGE_RW | (write ? _PAGE_DIRTY : 0);
  pt.pfn[e] = pfn;
  pt.bits[e] = bits;
  const vm_swap_full = si.free * 2 < si.total;
  if (
    exclusive &&
    (vm_swap_full || vm.vmas.vm_flags[vma] & VM_LOCKED || f.flags[pfn] & PG_mlocked || write)
  ) {
    // folio_free_swap(): the page is the only copy again, so it is dirty.
    delete_from_swap_cache(vm.mm, pfn);
    f.flags[pfn] |= PG_dirty;
  }
  // A write to a page still shared: do_wp_page() copies it.
  if (write && !(bits & _PAGE_RW)) return handle_pte_fault(vm, mm, vma, addr, true);
  return VM_FAULT_OK;
}

/**
 * vma_alloc_zeroed_movable_folio() (`zero`) or vma_alloc_folio() after anon_vma_prepare(): a new
 * page, -1 if memory ran out.
 */
export function alloc_anon_folio(vm: Vm, mm: MmStruct, vma: number, zero: boolean): number {
  anon_vma_prepare(vm, vma);
  return __alloc_pages(vm.mm, GFP_HIGHUSER_MOVABLE | (zero ? __GFP_ZERO : 0), 0, mm.nid, mm.cpu);
}

/** pte_range_none(): entries [i, i + nr) of PTE table `table` are all none. */
function pte_range_none(vm: Vm, table: number, i: number, nr: number): boolean {
  const bits = vm.pt.bits;
  const base = table * PTRS_PER_TABLE + i;
  for (let j = 0; j < nr; j++) if (bits[base + j] !== 0) return false;
  return true;
}

/**
 * kernel: mm/memory.c alloc_anon_folio() (its large orders) + do_anonymous_page() with nr_pages > 1
 * A write fault on a none PTE: of the orders below PMD size that hugepages-<size>kB/enabled allows
 * for the VMA and whose aligned range fits it (thp_vma_allowable_orders_below_pmd()), the highest
 * whose range is all none (pte_range_none(): the zero page is not none) and every lower one are
 * tried, highest first, with vma_thp_gfp_mask(); each failure counts anon_fault_fallback for its
 * size. A folio is zeroed (folio_zero_user: clear_page per page), mapped by all its PTEs at once
 * (set_ptes) and counted in anon_fault_alloc. Returns false when no large folio was mapped: the
 * caller allocates order 0 (folio_prealloc()).
 */
function do_anonymous_page_large(vm: Vm, mm: MmStruct, vma: number, addr: number, table: number): boolean {
  let orders = thp_vma_allowable_orders_below_pmd(vm, vma, addr);
  if (!orders) return false;
  const vpn = addr / 4096;
  let order = 31 - Math.clz32(orders);
  while (orders) {
    const first = vpn - (vpn & ((1 << order) - 1));
    if (pte_range_none(vm, table, pte_index(first), 1 << order)) break;
    orders &= ~(1 << order);
    order = 31 - Math.clz32(orders);
  }
  if (!orders) return false;
  const k = vm.mm;
  anon_vma_prepare(vm, vma);
  const gfp = vma_thp_gfp_mask(k, (vm.vmas.vm_flags[vma] & VM_HUGEPAGE) !== 0);
  while (orders) {
    const head = __alloc_pages(k, gfp, order, mm.nid, mm.cpu);
    if (head >= 0) {
      const nr = 1 << order;
      const first = vpn - (vpn & (nr - 1));
      k.kernel_ns += nr * k.cost.clear_page + k.cost.new_anon_folio;
      map_anon_folio_pte_range(vm, mm, vma, first * 4096, table, pte_index(first), head, order);
      count_mthp_stat(k, order, MTHP_STAT_ANON_FAULT_ALLOC);
      return true;
    }
    count_mthp_stat(k, order, MTHP_STAT_ANON_FAULT_FALLBACK);
    orders &= ~(1 << order);
    order = 31 - Math.clz32(orders);
  }
  return false;
}

/** alloc_anon_folio() and its rmap/LRU setup; -1 if memory ran out. */
function alloc_anon_page(vm: Vm, mm: MmStruct, vma: number, addr: number, zero: boolean): number {
  const pfn = alloc_anon_folio(vm, mm, vma, zero);
  if (pfn >= 0) add_new_anon_page(vm, mm, vma, addr, pfn);
  return pfn;
}

/**
 * folio_remove_rmap_pte() (with munlock_vma_folio() for a VM_LOCKED VMA) and, at the last unmap,
 * freeing: off the LRU, out of the anon_vma, back to the page allocator (through this CPU's pcp
 * list). The PTE is already cleared.
 */
export function page_remove_rmap(vm: Vm, mm: MmStruct, pfn: number, vma: number): void {
  const f = vm.mm.frames;
  if (f.flags[pfn] & (PG_head | PG_tail)) {
    thp_remove_rmap_pte(vm, mm, pfn, vma);
    return;
  }
  mm.rss[MM_ANONPAGES]--;
  --f.mapcount[pfn];
  if (vm.vmas.vm_flags[vma] & VM_LOCKED) munlock_vma_folio(vm, pfn);
  if (f.mapcount[pfn] > 0) return;
  const zone = vm.mm.page_zone(pfn)!;
  vm.mm.nodes[zone.nid].vm_stat[NR_ANON_MAPPED]--;
  if (f.flags[pfn] & PG_swapcache) {
    // free_swap_cache(): the unmapped page leaves the swap cache unless swap PTEs elsewhere
    // still need it (then it stays cached, unmapped, for their faults).
    const si = vm.mm.swap!;
    if (si.swap_map[folio_swap_slot(vm.mm, pfn)] !== SWAP_HAS_CACHE) return;
    delete_from_swap_cache(vm.mm, pfn);
  }
  if (f.flags[pfn] & PG_lru) lruvec_del_folio(vm.mm, pfn);
  if (f.flags[pfn] & PG_mlocked) {
    // free_pages_prepare(): a page freed still mlocked.
    zone.vm_stat[NR_MLOCK]--;
    vm.mm.vm_events[UNEVICTABLE_PGCLEARED]++;
  }
  f.flags[pfn] &= ~(
    PG_anon |
    PG_swapbacked |
    PG_mlocked |
    PG_unevictable |
    PG_active |
    PG_referenced |
    PG_dirty
  );
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  // A pinned page stays allocated until its last unpin (unpin_folio frees it).
  if (!folio_maybe_dma_pinned(vm.mm, pfn)) __free_pages(vm.mm, pfn, 0, mm.cpu);
}

/** Drop one mapping of `pfn` by `vma`: anonymous pages may be freed, page-cache pages stay cached. */
export function page_remove_any_rmap(vm: Vm, mm: MmStruct, pfn: number, vma: number): void {
  if (vm.mm.frames.flags[pfn] & PG_anon) page_remove_rmap(vm, mm, pfn, vma);
  else page_remove_file_rmap(vm, mm, pfn, vma);
}

/**
 * folio_remove_rmap_pte() for a page-cache page: the rss counter, mapcount (nr_mapped when it
 * was the last) and, for a VM_LOCKED VMA, munlock_vma_folio(). The page stays in the cache.
 */
export function page_remove_file_rmap(vm: Vm, mm: MmStruct, pfn: number, vma: number): void {
  const f = vm.mm.frames;
  mm.rss[mm_counter_file(vm.mm.page_cache.of(f.mapping[pfn]))]--;
  if (--f.mapcount[pfn] === 0) vm.mm.nodes[vm.mm.page_zone(pfn)!.nid].vm_stat[NR_FILE_MAPPED]--;
  if (vm.vmas.vm_flags[vma] & VM_LOCKED) munlock_vma_folio(vm, pfn);
}

/**
 * kernel: mm/mlock.c munlock_vma_folio()
 * A mapping of `pfn` in a VM_LOCKED VMA went away (or its VMA was munlocked): the page stays
 * mlocked only while another VM_LOCKED VMA still maps it. The kernel keeps that count in
 * folio->mlock_count; the model asks the reverse map instead, which gives the same answer without
 * the kernel's occasional undercount.
 */
export function munlock_vma_folio(vm: Vm, pfn: number): void {
  if (vm.mm.frames.flags[pfn] & (PG_head | PG_tail) && vm.mm.frames.flags[pfn] & PG_anon) {
    munlock_vma_thp(vm, folio_head(vm.mm, pfn));
    return;
  }
  if (!(vm.mm.frames.flags[pfn] & PG_mlocked)) return;
  if (vm.mm.frames.mapcount[pfn] > 0 && page_mapped_in_locked_vma(vm, pfn)) return;
  munlock_folio(vm.mm, pfn);
}

/**
 * kernel: mm/memory.c unmap_page_range() / zap_pte_range()
 * Clear every PTE of `vma` in [start, end) (page-aligned), dropping the pages' mappings; without
 * `even_cows` (struct zap_details of a hole punch) anonymous pages are left mapped.
 */
export function zap_page_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
  even_cows = true,
): void {
  // zap_pmd_range(): a huge PMD the range covers whole goes at once; one covered in part is
  // split first (__split_huge_pmd) and its PTEs zapped below. File hole punches skip THPs.
  if (vm.pt.deposit.size) {
    const PMD_BYTES = PMD_PAGES * 4096;
    for (let a = Math.floor(start / PMD_BYTES) * PMD_BYTES; a < end; a += PMD_BYTES) {
      const e = huge_pmd_entry(vm, mm, a / 4096);
      if (e < 0 || !even_cows) continue;
      if (a >= start && a + PMD_BYTES <= end) zap_huge_pmd(vm, mm, vma, e);
      else __split_huge_pmd(vm, mm, vma, e);
    }
  }
  walk_pte_range(vm, mm, start, end, even_cows ? zap_pte : zap_file_pte, vma, even_cows);
}

// zap_pte_range() with details->even_cows false: skip anonymous pages (should_zap_folio()).
function zap_file_pte(vm: Vm, mm: MmStruct, table: number, i: number, vma: number): void {
  const pfn = vm.pt.pfn[table * PTRS_PER_TABLE + i];
  if (vm.pt.bits[table * PTRS_PER_TABLE + i] & _PAGE_SPECIAL) {
    zap_pte(vm, mm, table, i, vma);
    return;
  }
  if (pfn === vm.mm.zero_pfn || vm.mm.frames.flags[pfn] & PG_anon) return;
  zap_pte(vm, mm, table, i, vma);
}

// kernel: mm/memory.c zap_pte_range(), one entry: a page-cache page takes the PTE's dirty bit
// and, if the PTE was young, an access (folio_mark_accessed).
function zap_pte(vm: Vm, mm: MmStruct, table: number, i: number, vma: number): void {
  const e = table * PTRS_PER_TABLE + i;
  const pfn = vm.pt.pfn[e];
  const bits = vm.pt.bits[e];
  vm.pt.clear(table, i);
  vm.mm.kernel_ns += vm.mm.cost.zap_pte;
  // vm_normal_page() is NULL: the driver owns the page; only the entry goes.
  if (bits & _PAGE_SPECIAL) return;
  if (bits & _PAGE_SWP_ENTRY) {
    // A swapped-out page: drop the slot reference (free_swap_and_cache()).
    mm.rss[MM_SWAPENTS]--;
    free_swap_and_cache(vm.mm, pfn, mm.cpu);
    return;
  }
  if (pfn === vm.mm.zero_pfn) return;
  if (vm.mm.frames.flags[pfn] & PG_anon) {
    const idx = vm.mm.frames.index[pfn];
    page_remove_rmap(vm, mm, pfn, vma);
    if (vm.vmas.vm_flags[vma] & VM_CONTIG) map_contig_unmapped(vm, vma, idx, pfn, mm.cpu);
    return;
  }
  const as = vm.mm.page_cache.of(vm.mm.frames.mapping[pfn]);
  if (bits & _PAGE_DIRTY) folio_mark_dirty(vm.mm, as, pfn, vm.mm.now());
  if (bits & _PAGE_ACCESSED && vma_has_recency(vm, vma)) folio_mark_accessed(vm.mm, pfn);
  page_remove_file_rmap(vm, mm, pfn, vma);
}
export function zap_page_range_single(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): void {
  update_hiwater_rss(vm, mm);
  zap_page_range(vm, mm, vma, start, end);
  const pt = vm.pt;
  for (
    let vpn = Math.ceil(start / 4096 / PMD_PAGES) * PMD_PAGES;
    vpn + PMD_PAGES <= end / 4096;
    vpn += PMD_PAGES
  ) {
    const pud = pt.child(mm.pgd, pgd_index(vpn));
    if (pud < 0) continue;
    const pmd = pt.child(pud, pud_index(vpn));
    if (pmd < 0) continue;
    const table = pt.child(pmd, pmd_index(vpn));
    if (table < 0) continue;
    pt.clear(pmd, pmd_index(vpn));
    pt.release(table, mm.cpu);
  }
}

/**
 * kernel: mm/memory.c free_pgd_range()
 * After [start, end) was unmapped, free the page tables whose whole span lies inside
 * [floor, ceiling), the hole between the neighbouring VMAs: a PTE table covers 2 MiB, a PMD table
 * 1 GiB, a PUD table 512 GiB. The PGD is freed only with the address space.
 */
export function free_pgd_range(
  vm: Vm,
  mm: MmStruct,
  start: number,
  end: number,
  floor: number,
  ceiling: number,
): void {
  const lo = floor / 4096;
  const hi = ceiling / 4096;
  free_level(vm, mm, mm.pgd, 0, start / 4096, end / 4096, lo, hi, 0);
}

const SPAN = [PGD_PAGES, PUD_PAGES, PMD_PAGES];

/** Free the children of `table` (at `level`, 0 = PGD) whose span is inside [lo, hi). */
function free_level(
  vm: Vm,
  mm: MmStruct,
  table: number,
  level: number,
  s: number,
  e: number,
  lo: number,
  hi: number,
  base: number,
): void {
  const pt = vm.pt;
  const span = SPAN[level];
  const first = Math.floor((s - base) / span);
  const lastIdx = Math.min(PTRS_PER_TABLE - 1, Math.floor((e - 1 - base) / span));
  for (let i = first; i <= lastIdx; i++) {
    const child = pt.child(table, i);
    if (child < 0) continue;
    const cs = base + i * span;
    if (level < 2) free_level(vm, mm, child, level + 1, Math.max(s, cs), Math.min(e, cs + span), lo, hi, cs);
    if (cs >= lo && cs + span <= hi && pt.used[child] === 0) {
      pt.clear(table, i);
      pt.release(child, mm.cpu);
    }
  }
}

/**
 * kernel: mm/memory.c vm_normal_page()
 * The page a present PTE maps as far as the memory manager is concerned, or -1: a special PTE
 * (remap_pfn_range(), vmf_insert_pfn()) and the zero page have none.
 */
export function vm_normal_page(vm: Vm, bits: number, pfn: number): number {
  if (bits & _PAGE_SPECIAL || pfn === vm.mm.zero_pfn) return -1;
  return pfn;
}

/**
 * kernel: mm/memory.c remap_pfn_range() (remap_pfn_range_internal() → remap_pte_range())
 * Map `nr` pages from pfn `pfns[from]` on at `addr` of `vma` with special PTEs (pte_mkspecial):
 * no rmap, no mapcount, no RSS. The VMA becomes VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP.
 * A copy-on-write mapping must be remapped whole in one call (its vm_pgoff becomes the pfn):
 * -EINVAL otherwise. -ENOMEM when a page table cannot be allocated; -EINVAL (BUG in the kernel)
 * if an entry is already populated.
 */
export function remap_pfn_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  pfns: Int32Array,
  from: number,
  nr: number,
): number {
  const v = vm.vmas;
  const end = addr + nr * 4096;
  if (addr < v.vm_start[vma] || end > v.vm_end[vma]) return -errnos.EINVAL;
  // is_cow_mapping(): the whole VMA at once.
  if ((v.vm_flags[vma] & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE) {
    if (addr !== v.vm_start[vma] || end !== v.vm_end[vma]) return -errnos.EINVAL;
    v.vm_pgoff[vma] = pfns[from];
  }
  v.vm_flags[vma] |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  const pgprot = pfn_pgprot(v.vm_flags[vma]);
  for (let k = 0; k < nr; k++) {
    const vpn = addr / 4096 + k;
    const table = pte_table_alloc(vm, mm, vpn);
    if (table < 0) return -errnos.ENOMEM;
    const i = pte_index(vpn);
    if (vm.pt.bits[table * PTRS_PER_TABLE + i] !== 0) return -errnos.EINVAL;
    vm.pt.set(table, i, pfns[from + k], pgprot);
    vm.mm.kernel_ns += vm.mm.cost.zap_pte;
  }
  return 0;
}

/**
 * kernel: mm/memory.c vmf_insert_pfn()
 * A fault handler maps `pfn` at `addr` with a special PTE (VM_PFNMAP); VM_FAULT_OOM without a
 * page table.
 */
export function vmf_insert_pfn(vm: Vm, mm: MmStruct, vma: number, addr: number, pfn: number): number {
  const vpn = addr / 4096;
  const table = pte_table_alloc(vm, mm, vpn);
  if (table < 0) return VM_FAULT_OOM;
  const i = pte_index(vpn);
  if (vm.pt.bits[table * PTRS_PER_TABLE + i] === 0)
    vm.pt.set(table, i, pfn, pfn_pgprot(vm.vmas.vm_flags[vma]));
  return VM_FAULT_OK;
}

/**
 * vm_page_prot of a VM_PFNMAP mapping as a special PTE: present and user, writable when the
 * mapping is shared and writable (no write notification for VM_PFNMAP: vma_wants_writenotify()),
 * PROT_NONE when it allows no access. Fresh entries are not young or dirty.
 */
export function pfn_pgprot(flags: number): number {
  if (!(flags & (VM_READ | VM_WRITE | VM_EXEC))) return _PAGE_PROTNONE | _PAGE_SPECIAL;
  const rw = (flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED) ? _PAGE_RW : 0;
  return _PAGE_PRESENT | _PAGE_USER | _PAGE_SPECIAL | rw;
}
