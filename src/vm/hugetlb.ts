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
import type { AddressSpace } from '../mm/filemap.ts';
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
import { VM_ACCESS_FLAGS, VM_HUGETLB, VM_MAYSHARE, VM_NORESERVE, VM_SHARED, VM_WRITE } from './vma.ts';

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
  /** VMAs using it, plus one for a hugetlbfs inode that owns it (src/vm/hugetlbfs.ts). */
  refs: number;
  /** A hugetlbfs file's object: its address_space (i_size: faults past it get SIGBUS). */
  mapping: AddressSpace | null;
  /**
   * A MAP_PRIVATE mapping of a hugetlbfs file: the file's object, whose page cache its faults
   * look in first (hugetlb_no_page() maps a cached page read-only; a write copies it).
   */
  cache: HugetlbObject | null;
  /**
   * HPAGE_RESV_UNMAPPED: the owner of the mapping this fork child shares pages with took one
   * back (unmap_ref_private()); a fault on a missing page here gets SIGBUS.
   */
  unmapped: boolean;
}

/** mm->hugetlb_usage: base pages mapped by hugetlb leaves (hugetlb_count_add()/_sub()). */
function hugetlb_count_add(mm: MmStruct, nr: number): void {
  mm.hugetlb_usage += nr;
}

/** kernel: mm/hugetlb.c hugetlb_report_usage(): the HugetlbPages line's value, in kB. */
export function hugetlb_usage_kb(mm: MmStruct): number {
  return mm.hugetlb_usage * 4;
}

/**
 * The machine's hugetlb objects by id (slot 0 unused), made at the first one; from then on the
 * vm layer takes part in duplicating hugetlb VMAs (hugetlb_vm_op_open()) and in migrating
 * in-use hugetlb pages (mm.hugetlb.vm).
 */
function objects(vm: Vm): Array<HugetlbObject | undefined> {
  let t = vm.hugetlb_objects;
  if (!t) {
    t = [undefined];
    vm.hugetlb_objects = t;
    vm.mm.hugetlb.vm = vm;
  }
  return t;
}

/** kernel: mm/hugetlb.c hugetlb_vm_op_open(): a duplicated VMA shares object `id`. */
export function hugetlb_vm_op_open(vm: Vm, id: number): void {
  const t = vm.hugetlb_objects;
  if (t) t[id]!.refs++;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_migrate_folio() and mm/migrate.c remove_migration_ptes()
 * for a migrated hugetlb page (`dst` already has `old`'s index): a shared object's page cache
 * slot, and every PMD/PUD leaf of a hugetlb VMA that mapped `old` at that index, now hold `dst`.
 */
export function hugetlb_migrate_mapping(vm: Vm, old: number, dst: number): void {
  const f = vm.mm.frames;
  const idx = f.index[dst];
  for (const obj of vm.hugetlb_objects ?? []) if (obj?.shared && obj.pages[idx] === old) obj.pages[idx] = dst;
  for_each_leaf(vm, old, idx, f.order[dst], (_vma, _mm, e) => {
    vm.pt.pfn[e] = dst;
  });
}

/**
 * Every leaf of a hugetlb VMA that maps `pfn` as huge page index `idx` (the kernel walks the
 * file's i_mmap at that offset): `fn` gets the VMA, its mm, the entry, the object and the address.
 */
function for_each_leaf(
  vm: Vm,
  pfn: number,
  idx: number,
  order: number,
  fn: (vma: number, mm: MmStruct, e: number, obj: HugetlbObject, addr: number) => void,
): void {
  const v = vm.vmas;
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
    if (e >= 0 && vm.pt.bits[e] !== 0 && vm.pt.pfn[e] === pfn) fn(vma, mm, e, obj, addr);
  }
}

/**
 * kernel: mm/hugetlb.c unmap_ref_private()
 * The owner of a private mapping found no page to copy `old` into: it takes the page back from
 * the fork children that share it (they own no reservation), which get SIGBUS at their next
 * fault there (HPAGE_RESV_UNMAPPED), so the owner can keep faulting without interruption.
 */
function unmap_ref_private(vm: Vm, owner_vma: number, old: number, idx: number, order: number): void {
  for_each_leaf(vm, old, idx, order, (vma, mm, _e, obj, addr) => {
    if (vma === owner_vma || vm.vmas.vm_flags[vma] & VM_MAYSHARE || obj.owner) return;
    unmap_hugepage_range(vm, mm, vma, addr, addr + 4096 * pages_per_huge_page(obj.h));
    obj.unmapped = true;
  });
}

/** The object of a hugetlb VMA. */
export function hugetlb_object(vm: Vm, vma: number): HugetlbObject {
  return objects(vm)[vm.vmas.vm_private_data[vma]]!;
}

/** The object with id `id` (vm_private_data), or undefined. */
export function hugetlb_object_by_id(vm: Vm, id: number): HugetlbObject | undefined {
  return objects(vm)[id];
}

/** Grow an object's resv_map and page cache to hold indices below `nr`. */
export function hugetlb_object_grow(obj: HugetlbObject, nr: number): void {
  if (nr <= obj.resv.length) return;
  const resv = new Uint8Array(nr);
  resv.set(obj.resv);
  // A private owner's indices it never reserved count as consumed (see hugetlb_reserve_pages).
  if (!obj.shared) resv.fill(1, obj.resv.length);
  const pages = new Int32Array(nr).fill(-1);
  pages.set(obj.pages);
  obj.resv = resv;
  obj.pages = pages;
}

/** A cached page of a hugetlbfs file (never freed by unmapping: the page cache holds it). */
function is_cache_page(vm: Vm, obj: HugetlbObject, pfn: number): boolean {
  if (obj.shared) return true;
  if (!obj.cache) return false;
  const idx = vm.mm.frames.index[pfn];
  return idx < obj.cache.pages.length && obj.cache.pages[idx] === pfn;
}

/** huge_page_size(hstate_vma(vma)) in bytes. */
export function vma_huge_page_size(vm: Vm, vma: number): number {
  return 4096 * pages_per_huge_page(hugetlb_object(vm, vma).h);
}

/** A new object with id (refs 1): a hugetlbfs file's (`mapping`) or a mapping's own. */
export function new_object(
  vm: Vm,
  h: Hstate,
  shared: boolean,
  nr: number,
  mapping: AddressSpace | null = null,
  cache: HugetlbObject | null = null,
): number {
  const t = objects(vm);
  let id = t.indexOf(undefined, 1);
  if (id < 0) id = t.length;
  const pages = new Int32Array(nr).fill(-1);
  t[id] = {
    h,
    shared,
    owner: false,
    resv: new Uint8Array(nr),
    pages,
    refs: 1,
    mapping,
    cache,
    unmapped: false,
  };
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
  return hugetlb_reserve_range(vm, mm, h, 0, nr, vm_flags, 0);
}

/**
 * kernel: mm/hugetlb.c hugetlb_reserve_pages(inode, from, to, vma, vm_flags)
 * Reserve huge page indices [from, to) for a new VMA. `file` is the id of a hugetlbfs file's
 * object (0: an object of the mapping's own, MAP_HUGETLB). Shared (VM_MAYSHARE): the file's
 * object gains a reference and the indices without a region are reserved (region_chg(),
 * region_add()); private: a new object owning to - from reservations (HPAGE_RESV_OWNER), whose
 * faults look in the file's page cache first. Returns the id for vm_private_data or -ENOMEM
 * (nothing changed).
 */
export function hugetlb_reserve_range(
  vm: Vm,
  mm: MmStruct,
  h: Hstate,
  from: number,
  to: number,
  vm_flags: number,
  file: number,
): number {
  const t = objects(vm);
  const shared = (vm_flags & VM_MAYSHARE) !== 0;
  const fobj = file ? t[file]! : null;
  let id: number;
  if (shared && fobj) {
    hugetlb_object_grow(fobj, to);
    fobj.refs++;
    id = file;
  } else id = new_object(vm, h, shared, to, fobj?.mapping ?? null, fobj);
  const obj = t[id]!;
  if (!shared) obj.resv.fill(1, 0, from);
  if (vm_flags & VM_NORESERVE) {
    if (!shared) obj.resv.fill(1);
    return id;
  }
  let chg = to - from;
  if (shared) for (let i = from; i < to; i++) chg -= obj.resv[i];
  if (hugetlb_acct_memory(vm.mm, h, chg, mm.nid, mm.cpu) < 0) {
    if (id === file) obj.refs--;
    else t[id] = undefined;
    return ENOMEM;
  }
  if (shared) obj.resv.fill(1, from, to);
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

/**
 * The MMU's view of a hugetlb leaf: does the PMD/PUD entry mapping `addr` allow the access (then
 * it is marked accessed, and dirty on a write)? One fault serves the whole huge page.
 */
export function hugetlb_leaf_allows(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  write: boolean,
): boolean {
  const e = huge_pte_alloc(vm, mm, hugetlb_object(vm, vma).h, addr, false);
  if (e < 0) return false;
  const bits = vm.pt.bits[e];
  if (!(bits & _PAGE_PRESENT) || (write && !(bits & _PAGE_RW))) return false;
  vm.pt.bits[e] = bits | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
  return true;
}

/**
 * kernel: mm/hugetlb.c move_hugetlb_page_tables()
 * mremap: move the leaves of [old_addr, old_addr + len) to new_addr (huge page aligned), one per
 * huge page, allocating the target's tables. Returns the bytes moved (less if a table could not
 * be had).
 */
export function move_hugetlb_page_tables(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  old_addr: number,
  new_addr: number,
  len: number,
): number {
  const h = hugetlb_object(vm, vma).h;
  const size = 4096 * pages_per_huge_page(h);
  const pt = vm.pt;
  let done = 0;
  for (; done < len; done += size) {
    const s = huge_pte_alloc(vm, mm, h, old_addr + done, false);
    if (s < 0 || pt.bits[s] === 0) continue;
    const d = huge_pte_alloc(vm, mm, h, new_addr + done, true);
    if (d < 0) break;
    pt.set(Math.floor(d / PTRS_PER_TABLE), d % PTRS_PER_TABLE, pt.pfn[s], pt.bits[s]);
    pt.clear(Math.floor(s / PTRS_PER_TABLE), s % PTRS_PER_TABLE);
  }
  // flush_hugetlb_tlb_range()
  vm.mm.kernel_ns += vm.mm.cost.ipi;
  return Math.min(done, len);
}

/**
 * kernel: mm/hugetlb.c fixup_hugetlb_reservations() (clear_vma_resv_huge_pages())
 * After an mremap() move of a private mapping, the new VMA (which shares its source's object,
 * and keeps its page offset) takes the reservations of its indices into an object of its own;
 * the source keeps them marked consumed, so unmapping it gives none back. (6.18 clears the whole
 * source VMA's reservation map instead, which loses the reservations of a part of it that did not
 * move; the model keeps those.)
 */
export function fixup_hugetlb_reservations(vm: Vm, new_vma: number): void {
  const t = objects(vm);
  const id = vm.vmas.vm_private_data[new_vma];
  const obj = t[id];
  if (!obj || obj.shared) return;
  const first = hugecache_offset(vm, new_vma, obj.h, vm.vmas.vm_start[new_vma]);
  const last = hugecache_offset(vm, new_vma, obj.h, vm.vmas.vm_end[new_vma]);
  const fresh = new_object(vm, obj.h, false, obj.resv.length, obj.mapping, obj.cache);
  const nobj = t[fresh]!;
  nobj.resv.fill(1);
  nobj.resv.set(obj.resv.subarray(first, last), first);
  nobj.owner = obj.owner;
  obj.resv.fill(1, first, last);
  obj.refs--;
  vm.vmas.vm_private_data[new_vma] = fresh;
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
function alloc_for_vma(vm: Vm, mm: MmStruct, obj: HugetlbObject, idx: number): number {
  // Reserved: shared with a region for idx; private owner with idx not yet consumed (a COW of
  // a page this mapping faulted finds it consumed; one of a file's cached page does not).
  const reserved = obj.shared ? obj.resv[idx] === 1 : obj.owner && obj.resv[idx] === 0;
  const pfn = alloc_hugetlb_folio(vm.mm, obj.h, !reserved, mm.nid);
  if (pfn < 0) return -1;
  // vma_commit_reservation(): shared adds the region, private marks it consumed.
  obj.resv[idx] = 1;
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
    const cached = is_cache_page(vm, obj, old);
    if (obj.shared || (f.mapcount[old] === 1 && !cached)) {
      pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
      return VM_FAULT_OK;
    }
    // hugetlb_wp(): copy the page shared with a fork child or parent, or the file's page. The
    // owner that finds no page takes it back from the children instead (cow_from_owner).
    const pfn = alloc_for_vma(vm, mm, obj, idx);
    if (pfn < 0 && obj.owner && !cached) {
      unmap_ref_private(vm, vma, old, idx, h.order);
      if (f.mapcount[old] === 1) {
        pt.bits[e] = bits | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
        return VM_FAULT_OK;
      }
    }
    if (pfn < 0) return VM_FAULT_SIGBUS;
    vm.mm.kernel_ns += pages_per_huge_page(h) * (vm.mm.cost.copy_page - vm.mm.cost.clear_page);
    f.index[pfn] = idx;
    f.mapcount[pfn] = 1;
    pt.pfn[e] = pfn;
    pt.bits[e] = _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW;
    if (--f.mapcount[old] === 0 && !cached) free_huge_folio(vm.mm, old, mm.cpu);
    return VM_FAULT_OK;
  }
  // hugetlb_no_page(): the page cache first (filemap_lock_hugetlb_folio()).
  const cache = obj.shared ? obj : obj.cache;
  let pfn = cache && idx < cache.pages.length ? cache.pages[idx] : -1;
  let bits_rw = rw;
  if (pfn >= 0 && !obj.shared) {
    if (write) {
      // A write to a private mapping of a cached page: hugetlb_wp() copies it at once.
      pfn = alloc_for_vma(vm, mm, obj, idx);
      if (pfn < 0) return VM_FAULT_SIGBUS;
      vm.mm.kernel_ns += pages_per_huge_page(h) * (vm.mm.cost.copy_page - vm.mm.cost.clear_page);
      f.index[pfn] = idx;
    } else bits_rw = 0; // the file's page, mapped read-only (copy on write)
  } else if (pfn < 0) {
    // A child whose page the owner took back ("PID %d killed due to inadequate hugepage pool"),
    // or past the end of a hugetlbfs file: SIGBUS.
    if (obj.unmapped) return VM_FAULT_SIGBUS;
    const mapping = obj.mapping;
    if (mapping && idx >= Math.floor(mapping.i_size / size)) return VM_FAULT_SIGBUS;
    pfn = alloc_for_vma(vm, mm, obj, idx);
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
    _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0) | bits_rw,
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
    if (--f.mapcount[pfn] === 0 && !is_cache_page(vm, obj, pfn)) free_huge_folio(vm.mm, pfn, mm.cpu);
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
  hugetlb_object_put(vm, id, mm.cpu);
}

/**
 * mmap() failed after the mapping reserved its pages (hugetlb_reserve_pages() or
 * hugetlbfs_file_mmap()): a private owner gives all of them back, and the mapping's reference to
 * its object goes (the kernel's error path after mmap_file() closes the VMA the same way).
 */
export function hugetlb_mmap_abort(vm: Vm, mm: MmStruct, id: number): void {
  const obj = objects(vm)[id]!;
  if (obj.owner) {
    let reserve = 0;
    for (let i = 0; i < obj.resv.length; i++) if (obj.resv[i] === 0) reserve++;
    if (reserve) hugetlb_acct_memory(vm.mm, obj.h, -reserve, mm.nid, mm.cpu);
    obj.resv.fill(1);
  }
  hugetlb_object_put(vm, id, mm.cpu);
}

/**
 * Drop a reference to object `id`; the last one (hugetlbfs_evict_inode() for a file's object)
 * frees its cached pages and gives back the reservations they did not consume.
 */
export function hugetlb_object_put(vm: Vm, id: number, cpu: number): void {
  const t = objects(vm);
  const obj = t[id]!;
  if (--obj.refs > 0) return;
  if (obj.shared) remove_inode_hugepages(vm, obj, 0, cpu);
  t[id] = undefined;
}

/**
 * kernel: fs/hugetlbfs/inode.c remove_inode_hugepages(inode, lstart, LLONG_MAX) with
 * mm/hugetlb.c hugetlb_unreserve_pages()
 * Drop the cached pages of indices `first` and up (unmapped by now) back to the pool and delete
 * the regions there: the reservations not consumed by a page go back (chg - freed).
 */
export function remove_inode_hugepages(vm: Vm, obj: HugetlbObject, first: number, cpu: number): void {
  let regions = 0;
  let freed = 0;
  for (let i = first; i < obj.pages.length; i++) {
    regions += obj.resv[i];
    obj.resv[i] = 0;
    const pfn = obj.pages[i];
    if (pfn < 0) continue;
    obj.pages[i] = -1;
    freed++;
    free_huge_folio(vm.mm, pfn, cpu);
  }
  if (regions - freed) hugetlb_acct_memory(vm.mm, obj.h, -(regions - freed), 0, cpu);
}

/**
 * Reservations an object holds that no fault has consumed: a shared object's regions without a
 * page, a private owner's unconsumed indices. Their sum over all objects is resv_huge_pages.
 */
function outstanding(obj: HugetlbObject): number {
  let n = 0;
  if (obj.shared) {
    for (let i = 0; i < obj.resv.length; i++) if (obj.resv[i] === 1 && obj.pages[i] < 0) n++;
  } else if (obj.owner) for (let i = 0; i < obj.resv.length; i++) if (obj.resv[i] === 0) n++;
  return n;
}

/**
 * Invariant: per hstate, the reservations the objects hold add up to resv_huge_pages, and every
 * cached page is an in-use hugetlb page of the object's size with that index.
 */
export function hugetlb_objects_check(vm: Vm): string[] {
  const errors: string[] = [];
  const t = vm.hugetlb_objects;
  const sum = new Map<Hstate, number>();
  for (const h of vm.mm.hugetlb.hstates) sum.set(h, 0);
  const f = vm.mm.frames;
  for (const obj of t ?? []) {
    if (!obj) continue;
    sum.set(obj.h, (sum.get(obj.h) ?? 0) + outstanding(obj));
    for (let i = 0; i < obj.pages.length; i++) {
      const pfn = obj.pages[i];
      if (pfn >= 0 && (f.order[pfn] !== obj.h.order || f.index[pfn] !== i))
        errors.push(
          `hugetlb page cache: index ${i} holds pfn ${pfn} of order ${f.order[pfn]}, index ${f.index[pfn]}`,
        );
    }
  }
  for (const [h, n] of sum)
    if (n !== h.resv_huge_pages)
      errors.push(`${h.name}: resv_huge_pages ${h.resv_huge_pages} but objects hold ${n} reservations`);
  return errors;
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
    const child = new_object(vm, obj.h, false, obj.resv.length, obj.mapping, obj.cache);
    objects(vm)[child]!.resv.fill(1);
    vm.vmas.vm_private_data[dst_vma] = child;
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
