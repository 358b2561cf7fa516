/**
 * The reverse map (mm/rmap.c): from a page to every PTE that maps it. An anonymous page is found
 * through its anon_vma (every VMA that may map it, forked children included) and its index; a
 * page-cache page through its file's i_mmap (every VMA mapping the file). Reclaim uses it to
 * test and clear accessed bits (folio_referenced) and to unmap pages (try_to_unmap); the vm
 * layer installs those on the MM (install_rmap).
 */
import { type AddressSpace, folio_mark_dirty, NR_FILE_MAPPED } from '../mm/filemap.ts';
import { mlock_folio } from '../mm/lru.ts';
import type { MM } from '../mm/mm.ts';
import { PG_anon, PG_dirty, PG_head, PG_swapbacked, PG_swapcache, PG_tail } from '../mm/page-flags.ts';
import { RMAP_VM_EXEC, RMAP_VM_LOCKED } from '../mm/rmap.ts';
import { folio_swap_slot, swap_duplicate } from '../mm/swapfile.ts';
import { node_stat_index } from '../mm/vmstat_items.ts';
import { mm_counter_file } from './filemap_fault.ts';
import { huge_pmd_entry } from './huge_memory.ts';
import { walk_pte_table } from './memory.ts';
import { MM_ANONPAGES, MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_RW,
  _PAGE_SWP_ENTRY,
  PTRS_PER_TABLE,
  pte_index,
  pte_present,
} from './pgtable.ts';
import type { Vm } from './vm.ts';
import { VM_EXEC, VM_LOCKED, VM_RAND_READ, VM_SEQ_READ, VM_SHARED, VM_SPECIAL } from './vma.ts';

const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');

/**
 * A visitor of the PTEs mapping a page: (vm, address space, VMA, address, PTE slot index into
 * pt.bits, the caller's `arg`). Returning false stops the walk. Plain functions with their state
 * in `arg`, so a walk allocates nothing.
 */
export type RmapVisitor<A> = (
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  e: number,
  arg: A,
) => boolean | undefined;

/**
 * kernel: mm/rmap.c rmap_walk() (rmap_walk_anon / rmap_walk_file)
 * Visit every PTE that maps `pfn`: through its anon_vma's VMAs, or its file's i_mmap. Returns
 * false if the visitor stopped the walk.
 */
export function rmap_walk<A>(vm: Vm, pfn: number, visit: RmapVisitor<A>, arg: A): boolean {
  const mapping = vm.mm.frames.mapping[pfn];
  if (vm.mm.frames.flags[pfn] & PG_anon) {
    const list = vm.anon.linked(mapping >> 2);
    for (let i = 0; i < list.length; i++) if (!rmap_one(vm, pfn, list[i], visit, arg)) return false;
    return true;
  }
  const set = vm.vmas.i_mmap.get(mapping >> 2);
  if (set) for (const vma of set) if (!rmap_one(vm, pfn, vma, visit, arg)) return false;
  return true;
}

/** Visit the PTE of `vma` at `pfn`'s index if it maps `pfn`; false if the visitor said stop. */
function rmap_one<A>(vm: Vm, pfn: number, vma: number, visit: RmapVisitor<A>, arg: A): boolean {
  const v = vm.vmas;
  const addr = v.vm_start[vma] + (vm.mm.frames.index[pfn] - v.vm_pgoff[vma]) * 4096;
  if (addr < v.vm_start[vma] || addr >= v.vm_end[vma]) return true;
  vm.mm.kernel_ns += vm.mm.cost.rmap_one;
  const mm = vm.mms[v.vm_mm[vma]]!;
  const vpn = addr / 4096;
  const table = walk_pte_table(vm, mm, vpn);
  if (table < 0) {
    // A PMD mapping of a THP is visited as the mapping of its head (page_vma_mapped_walk's pmd).
    if (!vm.pt.deposit.size) return true;
    const pe = huge_pmd_entry(vm, mm, vpn);
    if (pe < 0 || vm.pt.pfn[pe] !== pfn) return true;
    return visit(vm, mm, vma, addr, pe, arg) !== false;
  }
  const e = table * PTRS_PER_TABLE + pte_index(vpn);
  if (!pte_present(vm.pt.bits[e]) || vm.pt.pfn[e] !== pfn) return true;
  return visit(vm, mm, vma, addr, e, arg) !== false;
}

/**
 * kernel: include/linux/mm_inline.h vma_has_recency()
 * Accesses through the VMA age its pages, unless it was advised MADV_SEQUENTIAL/MADV_RANDOM or
 * its file POSIX_FADV_NOREUSE.
 */
export function vma_has_recency(vm: Vm, vma: number): boolean {
  if (vm.vmas.vm_flags[vma] & (VM_SEQ_READ | VM_RAND_READ)) return false;
  const file = vm.vmas.vm_file[vma];
  return !(file && vm.files.file(file).noreuse);
}

/** Some PTE of a VM_LOCKED VMA maps `pfn`. */
export function page_mapped_in_locked_vma(vm: Vm, pfn: number): boolean {
  return !rmap_walk(vm, pfn, not_locked, null);
}

function not_locked(vm: Vm, _mm: MmStruct, vma: number): boolean {
  return !(vm.vmas.vm_flags[vma] & VM_LOCKED);
}

/** Walk state shared by the visitors below (one walk at a time: nothing runs in between). */
const walk = { pfn: 0, count: 0, flags: 0, anon: false, as: null as AddressSpace | null, new_pfn: 0 };

/**
 * kernel: mm/rmap.c folio_referenced() / folio_referenced_one()
 * Test and clear the accessed bit of every PTE mapping `pfn`; a mapping in a VM_LOCKED VMA
 * mlocks the page and ends the walk. Returns the young PTEs; out.vm_flags gets RMAP_VM_LOCKED /
 * RMAP_VM_EXEC.
 */
export function folio_referenced(vm: Vm, pfn: number, out: { vm_flags: number }): number {
  walk.pfn = pfn;
  walk.count = 0;
  walk.flags = 0;
  rmap_walk(vm, pfn, folio_referenced_one, walk);
  out.vm_flags = walk.flags;
  return walk.count;
}

// kernel: mm/rmap.c folio_referenced_one()
function folio_referenced_one(
  vm: Vm,
  _mm: MmStruct,
  vma: number,
  _addr: number,
  e: number,
  w: typeof walk,
): boolean {
  // invalid_folio_referenced_vma(): accesses through a VMA without recency do not count.
  if (!vma_has_recency(vm, vma)) return true;
  const vf = vm.vmas.vm_flags[vma];
  if ((vf & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) {
    mlock_folio(vm.mm, w.pfn);
    w.flags |= RMAP_VM_LOCKED;
    return false;
  }
  if (vm.pt.bits[e] & _PAGE_ACCESSED) {
    vm.pt.bits[e] &= ~_PAGE_ACCESSED;
    w.count++;
    if (vf & VM_EXEC) w.flags |= RMAP_VM_EXEC;
  }
  return true;
}

/**
 * kernel: mm/rmap.c try_to_unmap() / try_to_unmap_one()
 * Clear every PTE mapping `pfn`. A PTE's dirty bit moves to a page-cache page. A lazyfree
 * anonymous page (MADV_FREE) that was written again — dirty PTE or page — becomes swap-backed
 * and stays mapped; a VM_LOCKED mapping mlocks the page and stops the unmap. Returns whether the
 * page is unmapped.
 */
export function try_to_unmap(vm: Vm, pfn: number): boolean {
  const mm = vm.mm;
  // THPs are not swapped out or discarded whole (docs/decisions.md): they stay mapped.
  if (mm.frames.flags[pfn] & (PG_head | PG_tail) && mm.frames.flags[pfn] & PG_anon) return false;
  walk.pfn = pfn;
  walk.anon = (mm.frames.flags[pfn] & PG_anon) !== 0;
  walk.as = walk.anon ? null : mm.page_cache.of(mm.frames.mapping[pfn]);
  rmap_walk(vm, pfn, try_to_unmap_one, walk);
  return mm.frames.mapcount[pfn] === 0;
}

// kernel: mm/rmap.c try_to_unmap_one()
function try_to_unmap_one(
  vm: Vm,
  owner: MmStruct,
  vma: number,
  _addr: number,
  e: number,
  w: typeof walk,
): boolean {
  const mm = vm.mm;
  const f = mm.frames;
  const pfn = w.pfn;
  if ((vm.vmas.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) {
    mlock_folio(mm, pfn);
    return false;
  }
  const bits = vm.pt.bits[e];
  if (w.anon) {
    if (f.flags[pfn] & PG_swapbacked) {
      // A swap-backed page leaves a swap entry for its slot in the PTE (the caller put it in
      // the swap cache first); the PTE's dirty bit makes the page dirty.
      if (!(f.flags[pfn] & PG_swapcache)) return false;
      if (bits & _PAGE_DIRTY) f.flags[pfn] |= PG_dirty;
      const slot = folio_swap_slot(mm, pfn);
      swap_duplicate(mm, slot);
      owner.rss[MM_ANONPAGES]--;
      owner.rss[MM_SWAPENTS]++;
      vm.pt.pfn[e] = slot;
      vm.pt.bits[e] = _PAGE_SWP_ENTRY;
      if (--f.mapcount[pfn] === 0) mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_ANON_MAPPED]--;
      return true;
    }
    if (bits & _PAGE_DIRTY || f.flags[pfn] & PG_dirty) {
      // A lazyfree page dirtied again: it is anonymous memory again (folio_set_swapbacked).
      f.flags[pfn] |= PG_swapbacked;
      return false;
    }
    owner.rss[MM_ANONPAGES]--;
  } else {
    if (bits & _PAGE_DIRTY) folio_mark_dirty(mm, w.as!, pfn, mm.now());
    owner.rss[mm_counter_file(w.as!)]--;
  }
  clear_pte(vm, e);
  if (--f.mapcount[pfn] === 0)
    mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[w.anon ? NR_ANON_MAPPED : NR_FILE_MAPPED]--;
  return true;
}

/**
 * kernel: mm/migrate.c remove_migration_ptes() (after try_to_migrate())
 * Every PTE that maps `old` maps `new_pfn` instead, with the same bits.
 */
export function remap(vm: Vm, old: number, new_pfn: number): void {
  walk.new_pfn = new_pfn;
  rmap_walk(vm, old, remove_migration_pte, walk);
}

function remove_migration_pte(
  vm: Vm,
  _mm: MmStruct,
  _vma: number,
  _addr: number,
  e: number,
  w: typeof walk,
): boolean {
  vm.pt.pfn[e] = w.new_pfn;
  return true;
}

/**
 * kernel: mm/rmap.c folio_mkclean() → page_vma_mkclean_one() over the shared VMAs
 * (invalid_mkclean_vma skips private ones): every dirty or writable PTE mapping the page-cache
 * page `pfn` becomes read-only and clean. Returns how many were.
 */
export function folio_mkclean(vm: Vm, pfn: number): number {
  walk.count = 0;
  rmap_walk(vm, pfn, page_vma_mkclean_one, walk);
  return walk.count;
}

function page_vma_mkclean_one(
  vm: Vm,
  _mm: MmStruct,
  vma: number,
  _addr: number,
  e: number,
  w: typeof walk,
): boolean {
  const bits = vm.pt.bits[e];
  if (!(vm.vmas.vm_flags[vma] & VM_SHARED) || !(bits & (_PAGE_DIRTY | _PAGE_RW))) return true;
  vm.pt.bits[e] = bits & ~(_PAGE_DIRTY | _PAGE_RW);
  w.count++;
  return true;
}

/** Clear the PTE at flat slot index `e` (table * PTRS_PER_TABLE + i). */
function clear_pte(vm: Vm, e: number): void {
  vm.pt.clear(Math.floor(e / PTRS_PER_TABLE), e % PTRS_PER_TABLE);
}

/** Give the MM the reverse map of this Vm (reclaim's folio_referenced / try_to_unmap). */
export function install_rmap(vm: Vm, mm: MM): void {
  // Vm's RmapOps methods call folio_referenced(), try_to_unmap(), remap(), folio_mkclean().
  mm.rmap = vm;
}
