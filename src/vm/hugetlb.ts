/**
 * The address-space side of hugetlb (mm/hugetlb.c, fs/hugetlbfs/inode.c): MAP_HUGETLB mappings,
 * their reservations, faults, unmapping and fork.
 *
 * A MAP_HUGETLB mapping is, as in the kernel, backed by an object standing for the file of the
 * internal hugetlbfs mount (hugetlb_file_setup()): it knows its hstate, its reservation map and,
 * for MAP_SHARED, its page cache (one pool page per huge page index). A private mapping's object
 * carries the VMA-owned reservation map (HPAGE_RESV_OWNER); a fork child gets an object without
 * reservations, as hugetlb_dup_vma_private() leaves it. VMAs point at their object through
 * vm_private_data. A huge page is mapped by one leaf entry with _PAGE_PSE: in the PMD table for
 * 2 MiB, in the PUD table for 1 GiB. Pool pages are not on the LRU, not in an anon_vma and not
 * counted in RSS (the kernel counts them in mm->hugetlb_usage); their mapcount counts leaf entries.
 */
import { errnos } from '../lib/errno.ts';
import { type Hstate, pages_per_huge_page } from '../mm/hstate.ts';
import { alloc_hugetlb_folio, free_huge_folio, hugetlb_acct_memory } from '../mm/hugetlb.ts';
import type { MmStruct } from './mm_struct.ts';
import { range_is_free, TASK_UNMAPPED_BASE } from './mmap.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_TABLE,
  _PAGE_USER,
  PTRS_PER_TABLE,
  pgd_index,
  pmd_index,
  pud_index,
} from './pgtable.ts';
import type { Vm } from './vm.ts';
import { VM_ACCESS_FLAGS, VM_HUGETLB, VM_NORESERVE, VM_SHARED, VM_WRITE } from './vma.ts';

const ENOMEM = -errnos.ENOMEM;
export const VM_FAULT_OK = 0;
export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;

/** The file (inode + resv_map) behind a MAP_HUGETLB mapping. */
export interface HugetlbObject {
  h: Hstate;
  shared: boolean;
  /** HPAGE_RESV_OWNER: a private mapping that reserved its pages at mmap. */
  owner: boolean;
  /** Per huge page index: shared: a region of the inode's resv_map; private: consumed. */
  resv: Uint8Array;
  /** MAP_SHARED: the page cache, head pfn per index or -1. */
  pages: Int32Array;
  refs: number;
}

const tables = new WeakMap<Vm, Array<HugetlbObject | undefined>>();

/** mm->hugetlb_usage: base pages mapped by hugetlb leaves (hugetlb_count_add()/_sub()). */
const usage = new WeakMap<MmStruct, number>();
function hugetlb_count_add(mm: MmStruct, nr: number): void {
  usage.set(mm, (usage.get(mm) ?? 0) + nr);
}

/** kernel: mm/hugetlb.c hugetlb_report_usage(): the HugetlbPages line's value, in kB. */
export function hugetlb_usage_kb(mm: MmStruct): number {
  return (usage.get(mm) ?? 0) * 4;
}

function objects(vm: Vm): Array<HugetlbObject | undefined> {
  let t = tables.get(vm);
  if (!t) {
    t = [undefined];
    tables.set(vm, t);
    // vm_ops->open (hugetlb_vm_op_open): a duplicated VMA shares the object.
    const table = t;
    vm.vmas.private_get = (id) => {
      table[id]!.refs++;
    };
    vm.mm.hugetlb.migrate_mapping = (old, dst) => hugetlb_migrate_mapping(vm, old, dst);
  }
  return t;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_migrate_folio() and mm/migrate.c remove_migration_ptes()
 * for a migrated hugetlb page (`dst` already has `old`'s index): a shared object's page cache
 * slot, and every PMD/PUD leaf of a hugetlb VMA that mapped `old` at that index, now hold `dst`.
 */
function hugetlb_migrate_mapping(vm: Vm, old: number, dst: number): void {
  const f = vm.mm.frames;
  const idx = f.index[dst];
  for (const obj of tables.get(vm) ?? []) if (obj?.shared && obj.pages[idx] === old) obj.pages[idx] = dst;
  const v = vm.vmas;
  const order = f.order[dst];
  for (let vma = 0; vma < v.vm_flags.length; vma++) {
    if (!(v.vm_flags[vma] & VM_HUGETLB) || v.vm_mm[vma] < 0 || !v.vm_private_data[vma]) continue;
    const obj = hugetlb_object(vm, vma);
    if (!obj || obj.h.order !== order) continue;
    const size = 4096 * pages_per_huge_page(obj.h);
    const addr = v.vm_start[vma] + idx * size - v.vm_pgoff[vma] * 4096;
    if (addr < v.vm_start[vma] || addr >= v.vm_end[vma]) continue;
    const mm = vm.mms[v.vm_mm[vma]];
    if (!mm) continue;
    const e = huge_pte_alloc(vm, mm, obj.h, addr, false);
    if (e >= 0 && vm.pt.bits[e] !== 0 && vm.pt.pfn[e] === old) vm.pt.pfn[e] = dst;
  }
}

/** The object of a hugetlb VMA. */
export function hugetlb_object(vm: Vm, vma: number): HugetlbObject {
  return objects(vm)[vm.vmas.vm_private_data[vma]]!;
}

/** huge_page_size(hstate_vma(vma)) in bytes. */
export function vma_huge_page_size(vm: Vm, vma: number): number {
  return 4096 * pages_per_huge_page(hugetlb_object(vm, vma).h);
}

function new_object(vm: Vm, h: Hstate, shared: boolean, nr: number): number {
  const t = objects(vm);
  let id = t.indexOf(undefined, 1);
  if (id < 0) id = t.length;
  t[id] = { h, shared, owner: false, resv: new Uint8Array(nr), pages: new Int32Array(nr).fill(-1), refs: 1 };
  return id;
}

/**
 * kernel: mm/hugetlb.c hugetlb_reserve_pages() (from hugetlbfs_file_mmap())
 * A new MAP_HUGETLB mapping of `len` bytes gets its object; unless VM_NORESERVE, every huge page
 * is reserved now (shared: the regions not yet in the inode's map; private: all, owned by the
 * VMA), growing the pool with surplus pages up to nr_overcommit_hugepages; -ENOMEM if the pool
 * cannot cover it. Returns the object id for vm_private_data.
 */
export function hugetlb_reserve_pages(
  vm: Vm,
  mm: MmStruct,
  h: Hstate,
  len: number,
  vm_flags: number,
): number {
  const nr = len / (4096 * pages_per_huge_page(h));
  const shared = (vm_flags & VM_SHARED) !== 0;
  const id = new_object(vm, h, shared, nr);
  const obj = objects(vm)[id]!;
  if (vm_flags & VM_NORESERVE) return id;
  if (hugetlb_acct_memory(vm.mm, h, nr, mm.nid, mm.cpu) < 0) {
    objects(vm)[id] = undefined;
    return ENOMEM;
  }
  if (shared) obj.resv.fill(1);
  else obj.owner = true;
  return id;
}

/**
 * kernel: mm/hugetlb.c hugetlb_get_unmapped_area() (generic_hugetlb_get_unmapped_area(), top
 * down with the huge page alignment): a free hint aligned to `size`, else the highest free
 * aligned range below mmap_base, else the lowest above TASK_UNMAPPED_BASE; -ENOMEM if none.
 */
export function hugetlb_get_unmapped_area(
  vm: Vm,
  mm: MmStruct,
  addr: number,
  len: number,
  size: number,
): number {
  const low = Math.max(4096, vm.sysctl.mmap_min_addr);
  if (len > mm.task_size - low) return ENOMEM;
  if (addr) {
    addr = Math.ceil(addr / size) * size;
    if (addr >= low && addr + len <= mm.task_size && range_is_free(mm, addr, len)) return addr;
  }
  let found = mm.mt.emptyAreaRev(low, mm.mmap_base, len, size);
  if (found < 0) found = mm.mt.emptyArea(TASK_UNMAPPED_BASE, mm.task_size, len, size);
  return found < 0 ? ENOMEM : found;
}

/** The PMD (2 MiB) or PUD (1 GiB) table slot and index of `addr`, allocating tables; -1 if none. */
function huge_pte_alloc(vm: Vm, mm: MmStruct, h: Hstate, addr: number, alloc: boolean): number {
  const pt = vm.pt;
  const vpn = addr / 4096;
  const idx = [pgd_index(vpn), pud_index(vpn)];
  const levels = h.order === 18 ? 1 : 2;
  let table = mm.pgd;
  for (let level = 0; level < levels; level++) {
    let child = pt.child(table, idx[level]);
    if (child < 0) {
      if (!alloc || pt.bits[table * PTRS_PER_TABLE + idx[level]] !== 0) return -1;
      child = pt.alloc(mm.id, mm.nid, mm.cpu);
      if (child < 0) return -1;
      pt.set(table, idx[level], pt.frame[child], _PAGE_TABLE);
    }
    table = child;
  }
  return table * PTRS_PER_TABLE + (h.order === 18 ? pud_index(vpn) : pmd_index(vpn));
}

/** The huge page index of `addr` in the VMA's object (vma_hugecache_offset()). */
function hugecache_offset(vm: Vm, vma: number, h: Hstate, addr: number): number {
  const v = vm.vmas;
  return Math.floor((v.vm_pgoff[vma] * 4096 + addr - v.vm_start[vma]) / (4096 * pages_per_huge_page(h)));
}

/**
 * kernel: mm/hugetlb.c alloc_hugetlb_folio() with vma_needs_reservation()/commit: a page for
 * index `idx`, consuming the mapping's reservation if it has one. -1: no page (SIGBUS).
 */
function alloc_for_vma(vm: Vm, mm: MmStruct, obj: HugetlbObject, idx: number, cow: boolean): number {
  // Reserved: shared with a region for idx; private owner with idx not yet consumed.
  const reserved = !cow && (obj.shared ? obj.resv[idx] === 1 : obj.owner && obj.resv[idx] === 0);
  const pfn = alloc_hugetlb_folio(vm.mm, obj.h, !reserved, mm.nid);
  if (pfn < 0) return -1;
  // vma_commit_reservation(): shared adds the region, private marks it consumed.
  if (!cow) obj.resv[idx] = 1;
  // folio_zero_user(): the page is cleared at fault time, not when it joined the pool.
  vm.mm.kernel_ns += pages_per_huge_page(obj.h) * vm.mm.cost.clear_page;
  return pfn;
}

/**
 * kernel: mm/hugetlb.c hugetlb_fault() → hugetlb_no_page() / hugetlb_wp()
 * A fault in a hugetlb VMA maps the whole huge page with one PMD/PUD leaf: a shared mapping's
 * page from its page cache or a new one added there; a private mapping's a new page (reads too:
 * there is no huge zero page). A write to a read-only leaf of a private mapping reuses the page
 * if this is its only mapping, else copies it. VM_FAULT_SIGBUS when the pool has no page for it
 * (MAP_NORESERVE, or a COW beyond the reservation), VM_FAULT_OOM when a page table cannot be had.
 */
export function hugetlb_fault(vm: Vm, mm: MmStruct, vma: number, addr: number, write: boolean): number {
  const obj = hugetlb_object(vm, vma);
  const h = obj.h;
  const size = 4096 * pages_per_huge_page(h);
  const haddr = Math.floor(addr / size) * size;
  const e = huge_pte_alloc(vm, mm, h, haddr, true);
  if (e < 0) return VM_FAULT_OOM;
  const pt = vm.pt;
  const f = vm.mm.frames;
  const flags = vm.vmas.vm_flags[vma];
  const idx = hugecache_offset(vm, vma, h, haddr);
  const rw = flags & VM_WRITE ? _PAGE_RW : 0;
  const bits = pt.bits[e];
  if (bits !== 0) {
    if (!write || bits & _PAGE_RW) {
      pt.bits[e] = bits | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
      return VM_FAULT_OK;
    }
    const old = pt.pfn[e];
    if (obj.shared || f.mapcount[old] === 1) {
      pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
      return VM_FAULT_OK;
    }
    // hugetlb_wp(): copy the page shared with a fork child or parent.
    const pfn = alloc_for_vma(vm, mm, obj, idx, true);
    if (pfn < 0) return VM_FAULT_SIGBUS;
    vm.mm.kernel_ns += pages_per_huge_page(h) * (vm.mm.cost.copy_page - vm.mm.cost.clear_page);
    f.index[pfn] = idx;
    f.mapcount[pfn] = 1;
    pt.pfn[e] = pfn;
    pt.bits[e] = _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW;
    if (--f.mapcount[old] === 0) free_huge_folio(vm.mm, old, mm.cpu);
    return VM_FAULT_OK;
  }
  // hugetlb_no_page()
  let pfn = obj.shared ? obj.pages[idx] : -1;
  if (pfn < 0) {
    pfn = alloc_for_vma(vm, mm, obj, idx, false);
    if (pfn < 0) return VM_FAULT_SIGBUS;
    f.index[pfn] = idx;
    if (obj.shared) obj.pages[idx] = pfn;
  }
  f.mapcount[pfn]++;
  hugetlb_count_add(mm, pages_per_huge_page(h));
  // A private page is writable at once only on a write (or when nothing else maps it).
  pt.set(
    Math.floor(e / PTRS_PER_TABLE),
    e % PTRS_PER_TABLE,
    pfn,
    _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0) | rw,
  );
  return VM_FAULT_OK;
}

/**
 * kernel: mm/hugetlb.c __unmap_hugepage_range()
 * Clear the leaf entries of [start, end) (huge page aligned) in `vma`: a private page whose last
 * mapping this was goes back to the pool (free_huge_folio()); shared pages stay in their
 * object's page cache.
 */
export function unmap_hugepage_range(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): void {
  const obj = hugetlb_object(vm, vma);
  const size = 4096 * pages_per_huge_page(obj.h);
  const pt = vm.pt;
  const f = vm.mm.frames;
  for (let addr = start; addr < end; addr += size) {
    const e = huge_pte_alloc(vm, mm, obj.h, addr, false);
    if (e < 0 || pt.bits[e] === 0) continue;
    const pfn = pt.pfn[e];
    pt.clear(Math.floor(e / PTRS_PER_TABLE), e % PTRS_PER_TABLE);
    hugetlb_count_add(mm, -pages_per_huge_page(obj.h));
    vm.mm.kernel_ns += vm.mm.cost.zap_pte;
    if (--f.mapcount[pfn] === 0 && !obj.shared) free_huge_folio(vm.mm, pfn, mm.cpu);
  }
}

/**
 * kernel: mm/hugetlb.c hugetlb_change_protection()
 * New permissions for the leaves of [start, end) (huge page aligned) of `vma`, from its new
 * vm_page_prot: PROT_NONE entries for an inaccessible VMA; otherwise present, writable only in a
 * shared writable mapping (a private one is PAGE_COPY: the next write faults and hugetlb_wp()
 * reuses or copies the page). Accessed and dirty bits stay. Returns the base pages changed.
 */
export function hugetlb_change_protection(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
): number {
  const obj = hugetlb_object(vm, vma);
  const nr = pages_per_huge_page(obj.h);
  const size = 4096 * nr;
  const flags = vm.vmas.vm_flags[vma];
  const pt = vm.pt;
  let pages = 0;
  for (let addr = start; addr < end; addr += size) {
    const e = huge_pte_alloc(vm, mm, obj.h, addr, false);
    if (e < 0 || pt.bits[e] === 0) continue;
    const bits = pt.bits[e];
    let nb = bits & (_PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE);
    if (!(flags & VM_ACCESS_FLAGS)) nb |= _PAGE_PROTNONE;
    else {
      nb |= _PAGE_PRESENT | _PAGE_USER;
      if ((flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED)) nb |= _PAGE_RW;
    }
    if (nb !== bits) {
      pt.bits[e] = nb;
      pages += nr;
    }
  }
  // flush_hugetlb_tlb_range()
  if (pages) vm.mm.kernel_ns += vm.mm.cost.ipi;
  return pages;
}

/**
 * kernel: mm/hugetlb.c hugetlb_vm_op_close(), and for the last user of a shared object
 * hugetlbfs_evict_inode() → remove_inode_hugepages() + hugetlb_unreserve_pages()
 * A VMA going away: a reservation owner gives back the reservations of its range that no fault
 * consumed; the last reference to a shared object frees its cached pages and the reservations
 * they did not consume.
 */
export function hugetlb_vm_op_close(vm: Vm, mm: MmStruct, vma: number): void {
  const t = objects(vm);
  const id = vm.vmas.vm_private_data[vma];
  const obj = t[id]!;
  const h = obj.h;
  if (obj.owner) {
    const first = hugecache_offset(vm, vma, h, vm.vmas.vm_start[vma]);
    const last = hugecache_offset(vm, vma, h, vm.vmas.vm_end[vma]);
    let reserve = 0;
    for (let i = first; i < last; i++) if (obj.resv[i] === 0) reserve++;
    if (reserve) hugetlb_acct_memory(vm.mm, h, -reserve, mm.nid, mm.cpu);
    // The range is gone: its indices hold no reservation any more.
    obj.resv.fill(1, first, last);
  }
  vm.vmas.vm_private_data[vma] = 0;
  if (--obj.refs > 0) return;
  t[id] = undefined;
  if (!obj.shared) return;
  let regions = 0;
  let freed = 0;
  for (let i = 0; i < obj.pages.length; i++) {
    regions += obj.resv[i];
    const pfn = obj.pages[i];
    if (pfn < 0) continue;
    freed++;
    free_huge_folio(vm.mm, pfn, mm.cpu);
  }
  if (regions - freed) hugetlb_acct_memory(vm.mm, h, -(regions - freed), mm.nid, mm.cpu);
}

/**
 * kernel: mm/hugetlb.c copy_hugetlb_page_range() with hugetlb_dup_vma_private()
 * fork: the child's VMA shares a shared object; a private one gets an object of its own without
 * reservations. Each mapped page gets the child's mapping too; private pages are write-protected
 * on both sides (copy-on-write). False if a page table could not be allocated.
 */
export function copy_hugetlb_page_range(
  vm: Vm,
  dst: MmStruct,
  src: MmStruct,
  vma: number,
  dst_vma: number,
): boolean {
  const obj = hugetlb_object(vm, vma);
  if (!obj.shared) {
    obj.refs--;
    vm.vmas.vm_private_data[dst_vma] = new_object(vm, obj.h, false, obj.resv.length);
  }
  const size = 4096 * pages_per_huge_page(obj.h);
  const pt = vm.pt;
  for (let addr = vm.vmas.vm_start[vma]; addr < vm.vmas.vm_end[vma]; addr += size) {
    const e = huge_pte_alloc(vm, src, obj.h, addr, false);
    if (e < 0 || pt.bits[e] === 0) continue;
    const d = huge_pte_alloc(vm, dst, obj.h, addr, true);
    if (d < 0) return false;
    if (!obj.shared) pt.bits[e] &= ~_PAGE_RW;
    vm.mm.frames.mapcount[pt.pfn[e]]++;
    hugetlb_count_add(dst, pages_per_huge_page(obj.h));
    pt.set(Math.floor(d / PTRS_PER_TABLE), d % PTRS_PER_TABLE, pt.pfn[e], pt.bits[e]);
  }
  return true;
}
