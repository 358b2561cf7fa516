/**
 * Pinning user memory (mm/gup.c pin_user_pages(), __gup_longterm_locked(),
 * check_and_migrate_movable_pages(); drivers/infiniband/core/umem.c ib_umem_get()): the pages
 * behind a user range, faulted in as needed, each with one more pin.
 *
 * FOLL_LONGTERM (RDMA memory registration, VFIO) runs with PF_MEMALLOC_PIN, so pages it faults
 * in are allocated unmovable; pages it finds in ZONE_MOVABLE or CMA pageblocks are unpinned,
 * migrated out with GFP_USER targets (MIGRATE_SYNC, MR_LONGTERM_PIN) and the walk starts over.
 * A long-term writable pin of a shared file mapping that needs dirty tracking is refused
 * (-EFAULT), as is any pin of a VM_IO/VM_PFNMAP range or a range not fully mapped.
 *
 * Simplification: pinning a shared (not exclusive) anonymous page in a writable private VMA
 * breaks COW with a write fault; the kernel's unshare fault leaves the PTE read-only.
 */
import { errnos } from '../lib/errno.ts';
import { __GFP_NOWARN, GFP_USER } from '../mm/gfp.ts';
import { folio_is_longterm_pinnable, try_grab_folio, unpin_folio } from '../mm/gup.ts';
import { folio_isolate_lru, MIGRATE_SYNC, migrate_pages } from '../mm/migrate.ts';
import { PG_anon } from '../mm/page-flags.ts';
import { split_thps_in_range } from './huge_memory.ts';
import { handle_mm_fault, VM_FAULT_OK, VM_FAULT_SIGBUS, walk_pte_table } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import { _PAGE_PRESENT, _PAGE_RW, PTRS_PER_TABLE, pte_index } from './pgtable.ts';
import type { Vm } from './vm.ts';
import { VM_IO, VM_PFNMAP, VM_READ, VM_SHARED, VM_WRITE } from './vma.ts';

/** enum gup_flags (include/linux/mm_types.h) */
export const FOLL_WRITE = 1 << 0;
export const FOLL_FORCE = 1 << 3;
export const FOLL_LONGTERM = 1 << 8;

const EFAULT = -errnos.EFAULT;
const ENOMEM = -errnos.ENOMEM;
/** Rounds of migrate-and-retry before giving up (the kernel loops while it gets -EAGAIN). */
const MAX_LONGTERM_RETRIES = 16;

/**
 * kernel: mm/gup.c check_vma_flags() (with writable_file_mapping_allowed())
 * 0 if `gup_flags` may pin pages of `vma`, else -EFAULT.
 */
function check_vma_flags(vm: Vm, vma: number, gup_flags: number): number {
  const flags = vm.vmas.vm_flags[vma];
  if (flags & (VM_IO | VM_PFNMAP)) return EFAULT;
  const write = (gup_flags & FOLL_WRITE) !== 0;
  if (write) {
    // vma_needs_dirty_tracking(): a shared mapping of a file that writes back (not tmpfs).
    const file = vm.vmas.vm_file[vma];
    if (gup_flags & FOLL_LONGTERM && flags & VM_SHARED && file && !vm.files.file(file).inode.mapping.shmem)
      return EFAULT;
    if (!(flags & VM_WRITE) && !(gup_flags & FOLL_FORCE)) return EFAULT;
  } else if (!(flags & VM_READ) && !(gup_flags & FOLL_FORCE)) return EFAULT;
  return 0;
}

/**
 * The page mapped at `addr` if its PTE allows the access (follow_page_pte), else -1. A pin needs
 * an exclusive anonymous page (gup_must_unshare), so a shared one counts as absent for a pin in a
 * writable private VMA.
 */
function follow_page(vm: Vm, mm: MmStruct, vma: number, addr: number, write: boolean): number {
  const vpn = addr / 4096;
  // A large folio faulted in by this GUP (PMD- or PTE-mapped): split it like the ones found
  // before (see __get_user_pages). split_thps_in_range() returns at once if none exist.
  split_thps_in_range(vm, mm, vma, addr, addr + 4096);
  const table = walk_pte_table(vm, mm, vpn);
  if (table < 0) return -1;
  const e = table * PTRS_PER_TABLE + pte_index(vpn);
  const bits = vm.pt.bits[e];
  if (!(bits & _PAGE_PRESENT) || (write && !(bits & _PAGE_RW))) return -1;
  const pfn = vm.pt.pfn[e];
  const f = vm.mm.frames;
  if (
    f.flags[pfn] & PG_anon &&
    f.mapcount[pfn] > 1 &&
    (vm.vmas.vm_flags[vma] & (VM_WRITE | VM_SHARED)) === VM_WRITE
  )
    return -1;
  return pfn;
}

/**
 * kernel: mm/gup.c __get_user_pages() with FOLL_PIN
 * Pin every page of [start, start + nr_pages * 4096), faulting in what is missing (a write fault
 * for FOLL_WRITE or to unshare). Fills `pages`; returns the number pinned or -errno (pages pinned
 * before an error are unpinned, as pin_user_pages() callers see nothing on failure).
 */
function __get_user_pages(
  vm: Vm,
  mm: MmStruct,
  start: number,
  nr_pages: number,
  gup_flags: number,
  pages: number[],
): number {
  const write = (gup_flags & FOLL_WRITE) !== 0;
  let err = 0;
  // Large folios are split to order-0 pages first (the model pins order-0 pages only). Not only
  // PMD-mapped ones: a folio whose PMD was split (partial MADV_DONTNEED) or an mTHP is PTE-mapped.
  for (let a = start; a < start + nr_pages * 4096; ) {
    const vma = mm.mt.walk(a);
    if (vma < 0) break;
    const e = Math.min(vm.vmas.vm_end[vma], start + nr_pages * 4096);
    split_thps_in_range(vm, mm, vma, a, e);
    a = e;
  }
  for (let i = 0; i < nr_pages && !err; i++) {
    const addr = start + i * 4096;
    const vma = mm.mt.walk(addr);
    if (vma < 0) {
      err = EFAULT;
      break;
    }
    err = check_vma_flags(vm, vma, gup_flags);
    if (err) break;
    let pfn = follow_page(vm, mm, vma, addr, write);
    if (pfn < 0) {
      // faultin_page(): a write fault also unshares a COW page.
      const unshare = (vm.vmas.vm_flags[vma] & (VM_WRITE | VM_SHARED)) === VM_WRITE;
      const r = handle_mm_fault(vm, mm, vma, addr, write || unshare);
      if (r !== VM_FAULT_OK) {
        err = r & VM_FAULT_SIGBUS ? EFAULT : ENOMEM;
        break;
      }
      pfn = follow_page(vm, mm, vma, addr, write);
      if (pfn < 0) {
        err = EFAULT;
        break;
      }
    }
    if (!try_grab_folio(vm.mm, pfn)) {
      err = ENOMEM;
      break;
    }
    pages.push(pfn);
  }
  if (err) {
    unpin_user_pages(vm, pages, mm.cpu);
    pages.length = 0;
    return err;
  }
  return pages.length;
}

/**
 * kernel: mm/gup.c check_and_migrate_movable_pages()
 * 0 if every pinned page may stay pinned for long; otherwise all pins are dropped, the pages in
 * ZONE_MOVABLE or CMA are migrated to GFP_USER pages, and -EAGAIN asks for a new walk (-ENOMEM
 * if migration failed).
 */
function check_and_migrate_movable_pages(vm: Vm, mm: MmStruct, pages: number[]): number {
  const movable: number[] = [];
  let collected = 0;
  for (const pfn of new Set(pages)) {
    if (folio_is_longterm_pinnable(vm.mm, pfn)) continue;
    collected++;
    if (folio_isolate_lru(vm.mm, pfn)) movable.push(pfn);
  }
  if (!collected) return 0;
  unpin_user_pages(vm, pages, mm.cpu);
  pages.length = 0;
  if (movable.length) {
    const r = migrate_pages(
      vm.mm,
      movable,
      { gfp: GFP_USER | __GFP_NOWARN, nid: -1, cpu: mm.cpu },
      MIGRATE_SYNC,
    );
    if (r.err || r.failed) return ENOMEM;
  }
  return -errnos.EAGAIN;
}

/**
 * kernel: mm/gup.c pin_user_pages() (__gup_longterm_locked())
 * Pin the pages of [start, start + nr_pages pages) into `pages` (one pfn per page). Returns the
 * number pinned or -errno: -EFAULT for a hole or a forbidden mapping, -ENOMEM when memory ran out
 * or long-term migration failed.
 */
export function pin_user_pages(
  vm: Vm,
  mm: MmStruct,
  start: number,
  nr_pages: number,
  gup_flags: number,
  pages: number[],
): number {
  if (!(gup_flags & FOLL_LONGTERM)) return __get_user_pages(vm, mm, start, nr_pages, gup_flags, pages);
  const saved = vm.mm.pf_memalloc_pin;
  vm.mm.pf_memalloc_pin = true;
  try {
    for (let round = 0; ; round++) {
      const n = __get_user_pages(vm, mm, start, nr_pages, gup_flags, pages);
      if (n <= 0) return n;
      const rc = check_and_migrate_movable_pages(vm, mm, pages);
      if (rc === 0) return n;
      if (rc !== -errnos.EAGAIN) return rc;
      if (round === MAX_LONGTERM_RETRIES) {
        vm.mm.klog.push('pin_user_pages: pages kept moving back into ZONE_MOVABLE/CMA; giving up');
        return ENOMEM;
      }
    }
  } finally {
    vm.mm.pf_memalloc_pin = saved;
  }
}

/** kernel: mm/gup.c unpin_user_pages(): drop one pin from each page. */
export function unpin_user_pages(vm: Vm, pages: readonly number[], cpu: number): void {
  for (const pfn of pages) unpin_folio(vm.mm, pfn, cpu);
}
