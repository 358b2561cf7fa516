/**
 * vmalloc (mm/vmalloc.c, Linux 6.18): virtually contiguous kernel memory made of scattered
 * order-0 pages, the kernel's largest consumer of unmovable memory that is not slab.
 *
 * An allocation is, in the kernel's order: the `struct vm_struct` (kzalloc, 72 bytes:
 * kmalloc-96), its `struct vmap_area` (the vmap_area cache) with a range of the vmalloc address
 * space [VMALLOC_START, VMALLOC_END) plus a guard page unless VM_NO_GUARD, the page-pointer array
 * (kmalloc when nr_pages * 8 <= PAGE_SIZE, else itself vmalloc'ed: `vpages`), then the pages:
 * order-0 pages 100 at a time through the bulk allocator, then one by one
 * (vm_area_alloc_pages()), with the caller's GFP (GFP_KERNEL: unmovable). Only VM_ALLOW_HUGE_VMAP
 * areas of at least PMD_SIZE (vmalloc_huge(), kvmalloc()) use PMD-order pages, split to order 0
 * so they are freed one by one; if those fail the allocation starts again with order-0 pages.
 * 6.19's eager high-order attempt for plain vmalloc ("request large order pages from buddy
 * allocator") is not in 6.18 and not here. vfree() frees the pages, then the array, then the
 * vm_struct.
 *
 * Handles are the area's virtual start address, as vmalloc() returns it: page-aligned numbers
 * near 2^64 that doubles hold exactly (multiples of 2048 are exact there). The address space is
 * handed out lowest-fit from VMALLOC_START, as __alloc_vmap_area() does; the range starts empty
 * (the kernel's boot-time vmallocs are not modelled yet). nr_vmalloc_pages, which 6.18's
 * /proc/meminfo shows as VmallocUsed, counts every page of every area, the vmalloc'ed page
 * arrays included.
 *
 * Departures: freed areas are purged at once (the kernel frees the vmap_area and its range lazily,
 * after lazy_max_pages() of freed space or from a work item, parking small ones in per-node
 * pools, and lists them as "unpurged vm_area" in /proc/vmallocinfo meanwhile); the kernel page
 * tables that map the range (one PTE page per 2 MiB, never freed) are not allocated; KASAN and
 * memcg accounting are absent.
 */
import {
  __GFP_DIRECT_RECLAIM,
  __GFP_DMA,
  __GFP_DMA32,
  __GFP_FS,
  __GFP_HIGH,
  __GFP_HIGHMEM,
  __GFP_IO,
  __GFP_MEMALLOC,
  __GFP_NOFAIL,
  __GFP_NOMEMALLOC,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RECLAIM,
  __GFP_RETRY_MAYFAIL,
  __GFP_ZERO,
  GFP_KERNEL,
  gfp_flags_string,
  gfpflags_allow_blocking,
} from './gfp.ts';
import type { MM } from './mm.ts';
import { PAGE_SHIFT, PAGE_SIZE } from './mmzone.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import { alloc_pages_bulk } from './page_alloc/bulk.ts';
import { PG_head, PG_tail, PGI_alloc } from './page-flags.ts';
import { type KmemCache, kmem_cache_free, NULL, NUMA_NO_NODE, slab_alloc_node } from './slab.ts';
import { __kmalloc_node, find_kmem_cache, kfree } from './slab_common.ts';

/** x86-64 with 4-level paging, without KASLR: __VMALLOC_BASE_L4. */
export const VMALLOC_START = 0xffffc90000000000;
/** VMALLOC_SIZE_TB_L4 = 32: VMALLOC_END is VMALLOC_START + 32 TiB - 1 (inclusive). */
export const VMALLOC_END = VMALLOC_START + 32 * 2 ** 40 - 1;
/** The last usable page offset + 1: areas end at or below VMALLOC_END. */
const VMALLOC_PAGES = 32 * 2 ** (40 - PAGE_SHIFT) - 1;
export const PMD_SHIFT = 21;
export const PMD_SIZE = 1 << PMD_SHIFT;

// include/linux/vmalloc.h: bits in vm_struct->flags
export const VM_IOREMAP = 0x1;
export const VM_ALLOC = 0x2;
export const VM_MAP = 0x4;
export const VM_USERMAP = 0x8;
export const VM_DMA_COHERENT = 0x10;
export const VM_UNINITIALIZED = 0x20;
export const VM_NO_GUARD = 0x40;
export const VM_MAP_PUT_PAGES = 0x200;
export const VM_ALLOW_HUGE_VMAP = 0x400;
export const VM_SPARSE = 0x1000;

/** mm/internal.h GFP_RECLAIM_MASK: what nested allocations inherit (no zone or mobility bits). */
export const GFP_RECLAIM_MASK =
  __GFP_RECLAIM |
  __GFP_HIGH |
  __GFP_IO |
  __GFP_FS |
  __GFP_NOWARN |
  __GFP_RETRY_MAYFAIL |
  __GFP_NOFAIL |
  __GFP_NORETRY |
  __GFP_MEMALLOC |
  __GFP_NOMEMALLOC;

/** sizeof(struct vm_struct) on x86-64 6.18 (with page_order and requested_size): kmalloc-96. */
export const SIZEOF_VM_STRUCT = 72;
/** sizeof(struct page *) */
const PTR_SIZE = 8;
/** INT_MAX: kvmalloc refuses larger sizes. */
const INT_MAX = 2 ** 31 - 1;
/** The largest request vm_area_alloc_pages() hands the bulk allocator at once. */
const VMALLOC_BULK_MAX = 100;

/**
 * struct vm_struct together with its struct vmap_area: one vmalloc area, busy from
 * __get_vm_area_node() until vfree().
 */
export class VmStruct {
  /** The start address (vm->addr, va->va_start): the handle vmalloc() returns. */
  readonly addr: number;
  /** Bytes, with the guard page unless VM_NO_GUARD (vm->size; /proc/vmallocinfo prints this). */
  readonly size: number;
  /** Page offsets from VMALLOC_START of va_start and va_end. */
  readonly va_start: number;
  readonly va_end: number;
  flags: number;
  /** The size asked for (vm->requested_size). */
  readonly requested_size: number;
  /** %pS of the caller in /proc/vmallocinfo. */
  readonly caller: string;
  /** vm->pages: the pfn of each PAGE_SIZE page, nr_pages of them valid. */
  pages: Int32Array = new Int32Array(0);
  nr_pages = 0;
  /** vm_area_page_order() */
  page_order = 0;
  /** Handle of the page array: a kmalloc object, or a vmalloc area ("vpages"); NULL before. */
  pages_addr = NULL;
  /** Handles of the kzalloc'ed vm_struct and of the vmap_area object. */
  readonly vm_handle: number;
  readonly va_handle: number;

  constructor(
    va_start: number,
    npages: number,
    flags: number,
    requested_size: number,
    caller: string,
    vm_handle: number,
    va_handle: number,
  ) {
    this.va_start = va_start;
    this.va_end = va_start + npages;
    this.addr = VMALLOC_START + va_start * PAGE_SIZE;
    this.size = npages * PAGE_SIZE;
    this.flags = flags;
    this.requested_size = requested_size;
    this.caller = caller;
    this.vm_handle = vm_handle;
    this.va_handle = va_handle;
  }
}

/** vmalloc's global state (mm.vmalloc): the busy areas and nr_vmalloc_pages. */
export class VmallocState {
  /** Busy areas sorted by address (the kernel keeps them in per-vmap-node busy trees). */
  readonly busy: VmStruct[] = [];
  /** nr_vmalloc_pages: pages of every vmalloc area (vmalloc_nr_pages()). */
  nr_vmalloc_pages = 0;
  /** vmap_area_cachep, looked up on first use. */
  vmap_area_cachep: KmemCache | null = null;
}

/** kernel: include/linux/mm.h is_vmalloc_addr() */
export function is_vmalloc_addr(addr: number): boolean {
  return addr >= VMALLOC_START && addr < VMALLOC_END;
}

/** kernel: mm/vmalloc.c vmalloc_nr_pages(): what /proc/meminfo prints as VmallocUsed. */
export function vmalloc_nr_pages(mm: MM): number {
  return mm.vmalloc.nr_vmalloc_pages;
}

/** kernel: include/linux/vmalloc.h get_vm_area_size(): the size without the guard page. */
export function get_vm_area_size(vm: VmStruct): number {
  return vm.flags & VM_NO_GUARD ? vm.size : vm.size - PAGE_SIZE;
}

/** The index of the busy area containing page offset `off`, or -1 (__find_vmap_area()). */
function find_busy_index(busy: readonly VmStruct[], off: number): number {
  let lo = 0;
  let hi = busy.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const va = busy[mid];
    if (off < va.va_start) hi = mid - 1;
    else if (off >= va.va_end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** kernel: mm/vmalloc.c find_vm_area(): the area containing `addr`, or null. */
export function find_vm_area(mm: MM, addr: number): VmStruct | null {
  if (!is_vmalloc_addr(addr)) return null;
  const busy = mm.vmalloc.busy;
  const i = find_busy_index(busy, Math.floor((addr - VMALLOC_START) / PAGE_SIZE));
  return i < 0 ? null : busy[i];
}

/** kernel: mm/vmalloc.c vmalloc_to_pfn(): the pfn mapped at `addr`, or -1. */
export function vmalloc_to_pfn(mm: MM, addr: number): number {
  const vm = find_vm_area(mm, addr);
  if (!vm) return -1;
  const i = Math.floor((addr - vm.addr) / PAGE_SIZE);
  return i < vm.nr_pages ? vm.pages[i] : -1;
}

/**
 * kernel: mm/vmalloc.c __alloc_vmap_area() -> find_vmap_lowest_match()
 * The lowest page offset where `npages` fit at `align_pages` alignment, and the index in the busy
 * list to insert at; -1 when the address space is full.
 */
function find_vmap_lowest_match(busy: readonly VmStruct[], npages: number, align_pages: number): number {
  let prev_end = 0;
  for (let i = 0; i <= busy.length; i++) {
    const addr = Math.ceil(prev_end / align_pages) * align_pages;
    const next = i < busy.length ? busy[i].va_start : VMALLOC_PAGES;
    if (addr + npages <= next) return addr;
    if (i < busy.length) prev_end = busy[i].va_end;
  }
  return -1;
}

/** Insert `vm` into the address-sorted busy list. */
function insert_vmap_area(busy: VmStruct[], vm: VmStruct): void {
  let lo = 0;
  let hi = busy.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (busy[mid].va_start < vm.va_start) lo = mid + 1;
    else hi = mid;
  }
  busy.splice(lo, 0, vm);
}

/** The kernel log line warn_alloc() prints for a vmalloc failure (none with __GFP_NOWARN). */
function warn_alloc(mm: MM, gfp: number, msg: string, cpu: number): void {
  if (gfp & __GFP_NOWARN) return;
  mm.klog.push(
    `vmalloc error: ${msg}, mode:0x${gfp.toString(16)}(${gfp_flags_string(gfp)}), nodemask=(null),cpuset=/,mems_allowed=0-${mm.nodes.length - 1} (cpu ${cpu})`,
  );
}

/**
 * kernel: mm/vmalloc.c __get_vm_area_node() + alloc_vmap_area()
 * The vm_struct (kzalloc_node, GFP_RECLAIM_MASK of `gfp`), then the vmap_area object and a range
 * of ALIGN(size, 1 << shift) bytes plus a guard page unless VM_NO_GUARD, lowest fit at `align`.
 * Returns the busy area, or null (nothing stays allocated).
 */
function __get_vm_area_node(
  mm: MM,
  size: number,
  align: number,
  shift: number,
  flags: number,
  node: number,
  gfp: number,
  caller: string,
  cpu: number,
): VmStruct | null {
  const requested_size = size;
  const unit = 2 ** shift;
  size = Math.ceil(size / unit) * unit;
  if (size === 0) return null;
  const rgfp = gfp & GFP_RECLAIM_MASK;
  const vm_handle = __kmalloc_node(mm, SIZEOF_VM_STRUCT, rgfp | __GFP_ZERO, node, cpu);
  if (vm_handle === NULL) return null;
  if ((flags & VM_NO_GUARD) === 0) size += PAGE_SIZE;
  // alloc_vmap_area(): kmem_cache_alloc_node(vmap_area_cachep), then the address range.
  const st = mm.vmalloc;
  st.vmap_area_cachep ??= find_kmem_cache(mm, 'vmap_area') ?? null;
  const cachep = st.vmap_area_cachep;
  if (cachep === null) throw new Error('vmalloc: no vmap_area cache');
  const va_handle = slab_alloc_node(mm, cachep, rgfp, node, cpu);
  if (va_handle === NULL) {
    kfree(mm, vm_handle, cpu);
    return null;
  }
  const npages = size / PAGE_SIZE;
  const off = find_vmap_lowest_match(st.busy, npages, Math.max(1, align / PAGE_SIZE));
  if (off < 0) {
    if ((gfp & __GFP_NOWARN) === 0)
      mm.klog.push(`vmap allocation for size ${size} failed: use vmalloc=<size> to increase size`);
    kmem_cache_free(mm, cachep, va_handle, cpu);
    kfree(mm, vm_handle, cpu);
    return null;
  }
  const vm = new VmStruct(off, npages, flags, requested_size, caller, vm_handle, va_handle);
  insert_vmap_area(st.busy, vm);
  return vm;
}

/**
 * kernel: mm/vmalloc.c remove_vm_area() (find_unlink_vmap_area() + free_unmap_vmap_area())
 * Unlink the area containing `addr` and free its vmap_area at once (the kernel purges lazily).
 * Returns the vm_struct, whose pages, array and struct the caller frees; null if none.
 */
function remove_vm_area(mm: MM, addr: number, cpu: number): VmStruct | null {
  if (!is_vmalloc_addr(addr)) return null;
  const busy = mm.vmalloc.busy;
  const i = find_busy_index(busy, Math.floor((addr - VMALLOC_START) / PAGE_SIZE));
  if (i < 0) return null;
  const vm = busy[i];
  busy.splice(i, 1);
  kmem_cache_free(mm, mm.vmalloc.vmap_area_cachep!, vm.va_handle, cpu);
  return vm;
}

/** kernel: mm/vmalloc.c free_vm_area(): an area whose page array could not be allocated. */
function free_vm_area(mm: MM, vm: VmStruct, cpu: number): void {
  remove_vm_area(mm, vm.addr, cpu);
  kfree(mm, vm.vm_handle, cpu);
}

/**
 * kernel: mm/page_alloc.c split_page()
 * Make a non-compound block of 2^order pages into 2^order order-0 pages, freed one by one.
 */
export function split_page(mm: MM, pfn: number, order: number): void {
  const f = mm.frames;
  if (f.flags[pfn] & PG_head) throw new Error(`split_page: pfn ${pfn} is a compound page`);
  const end = pfn + (1 << order);
  for (let p = pfn; p < end; p++) {
    f.flags[p] = (f.flags[p] & ~PG_tail) | PGI_alloc;
    f.order[p] = 0;
  }
}

/**
 * kernel: mm/vmalloc.c vm_area_alloc_pages()
 * Order-0 areas take pages from the bulk allocator, at most 100 per call, until a call comes back
 * short; the rest (and every page of a higher-order area) comes from alloc_pages(), one block at
 * a time, a high-order block split into order-0 pages. NUMA_NO_NODE means the CPU's node (the
 * default mempolicy). Returns how many PAGE_SIZE pages were stored in `pages`.
 */
function vm_area_alloc_pages(
  mm: MM,
  gfp: number,
  nid: number,
  order: number,
  nr_pages: number,
  pages: Int32Array,
  cpu: number,
): number {
  const node = nid === NUMA_NO_NODE ? mm.cpu_to_node[cpu] : nid;
  let nr_allocated = 0;
  if (order === 0) {
    const bulk_gfp = gfp & ~__GFP_NOFAIL;
    while (nr_allocated < nr_pages) {
      const request = Math.min(VMALLOC_BULK_MAX, nr_pages - nr_allocated);
      const nr = alloc_pages_bulk(mm, bulk_gfp, node, request, pages, nr_allocated, cpu);
      nr_allocated += nr;
      if (nr !== request) break;
    }
  }
  while (nr_allocated < nr_pages) {
    const pfn = __alloc_pages(mm, gfp, order, node, cpu);
    if (pfn < 0) break;
    if (order) split_page(mm, pfn, order);
    for (let i = 0; i < 1 << order; i++) pages[nr_allocated + i] = pfn + i;
    nr_allocated += 1 << order;
  }
  return nr_allocated;
}

/**
 * kernel: mm/vmalloc.c __vmalloc_area_node()
 * The page array (kmalloc_node up to PAGE_SIZE bytes, else a nested __vmalloc_node(), both with
 * (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO), then the pages (gfp | __GFP_HIGHMEM unless a DMA zone
 * is asked for, | __GFP_NOWARN, without __GFP_NOFAIL for high orders). nr_vmalloc_pages counts
 * what was allocated; if it falls short, vfree() undoes everything. Returns success.
 */
function __vmalloc_area_node(
  mm: MM,
  area: VmStruct,
  gfp: number,
  page_shift: number,
  node: number,
  cpu: number,
): boolean {
  const nested_gfp = (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO;
  const nr_small_pages = get_vm_area_size(area) / PAGE_SIZE;
  const array_size = nr_small_pages * PTR_SIZE;
  if ((gfp & (__GFP_DMA | __GFP_DMA32)) === 0) gfp |= __GFP_HIGHMEM;
  // Please note that the recursion is strictly bounded.
  const pages_addr =
    array_size > PAGE_SIZE
      ? __vmalloc_node(mm, array_size, 1, nested_gfp, node, cpu, area.caller)
      : __kmalloc_node(mm, array_size, nested_gfp, node, cpu);
  if (pages_addr === NULL) {
    warn_alloc(
      mm,
      gfp,
      `size ${nr_small_pages * PAGE_SIZE}, failed to allocated page array size ${array_size}`,
      cpu,
    );
    free_vm_area(mm, area, cpu);
    return false;
  }
  area.pages_addr = pages_addr;
  area.pages = new Int32Array(nr_small_pages);
  area.page_order = page_shift - PAGE_SHIFT;
  const page_order = area.page_order;
  area.nr_pages = vm_area_alloc_pages(
    mm,
    (page_order ? gfp & ~__GFP_NOFAIL : gfp) | __GFP_NOWARN,
    node,
    page_order,
    nr_small_pages,
    area.pages,
    cpu,
  );
  mm.vmalloc.nr_vmalloc_pages += area.nr_pages;
  if (area.nr_pages !== nr_small_pages) {
    // Huge-page attempts are retried with order-0 pages: no warning for them.
    if (page_order === 0)
      warn_alloc(mm, gfp, `size ${area.nr_pages * PAGE_SIZE}, failed to allocate pages`, cpu);
    vfree(mm, area.addr, cpu);
    return false;
  }
  return true;
}

/**
 * kernel: mm/vmalloc.c __vmalloc_node_range_noprof() over [VMALLOC_START, VMALLOC_END)
 * `size` bytes (rounded up to pages) of virtually contiguous memory on `cpu`, pages preferring
 * `node` (NUMA_NO_NODE: the CPU's). With VM_ALLOW_HUGE_VMAP and size >= PMD_SIZE the area is
 * PMD-aligned and built of PMD-order pages, falling back to order-0 pages if that fails. Returns
 * the address, or NULL (0): size 0 (a WARN), more than totalram_pages, no address space, or no
 * memory.
 */
export function __vmalloc_node_range(
  mm: MM,
  size: number,
  align: number,
  gfp: number,
  vm_flags: number,
  node: number,
  caller: string,
  cpu: number,
): number {
  if (size === 0) {
    mm.klog.push(`WARNING: CPU: ${cpu} at mm/vmalloc.c __vmalloc_node_range_noprof`);
    return NULL;
  }
  if (Math.floor(size / PAGE_SIZE) > mm.totalram_pages) {
    warn_alloc(mm, gfp, `size ${size}, exceeds total pages`, cpu);
    return NULL;
  }
  const original_align = align;
  let shift = PAGE_SHIFT;
  if (vm_flags & VM_ALLOW_HUGE_VMAP) {
    // x86-64: arch_vmap_pmd_supported() (PSE); arch_vmap_pte_supported_shift() is PAGE_SHIFT.
    if (size >= PMD_SIZE) shift = PMD_SHIFT;
    align = Math.max(original_align, 2 ** shift);
  }
  for (;;) {
    const area = __get_vm_area_node(
      mm,
      size,
      align,
      shift,
      VM_ALLOC | VM_UNINITIALIZED | vm_flags,
      node,
      gfp,
      caller,
      cpu,
    );
    if (area === null) {
      // The kernel retries __GFP_NOFAIL forever here; the model fails (there is no one to wait for).
      warn_alloc(mm, gfp, `size ${size}, vm_struct allocation failed`, cpu);
    } else if (__vmalloc_area_node(mm, area, gfp, shift, node, cpu)) {
      // clear_vm_uninitialized_flag()
      area.flags &= ~VM_UNINITIALIZED;
      return area.addr;
    }
    if (shift > PAGE_SHIFT) {
      shift = PAGE_SHIFT;
      align = original_align;
      continue;
    }
    return NULL;
  }
}

/** kernel: mm/vmalloc.c __vmalloc_node_noprof(): no VM_* flags. */
export function __vmalloc_node(
  mm: MM,
  size: number,
  align: number,
  gfp: number,
  node: number,
  cpu: number,
  caller: string,
): number {
  return __vmalloc_node_range(mm, size, align, gfp, 0, node, caller, cpu);
}

/**
 * kernel: mm/vmalloc.c vmalloc() / __vmalloc() / vmalloc_node()
 * `size` bytes with `gfp` (vmalloc() is GFP_KERNEL) from node `nid` (NUMA_NO_NODE: the CPU's).
 */
export function vmalloc(
  mm: MM,
  size: number,
  gfp = GFP_KERNEL,
  nid = NUMA_NO_NODE,
  cpu = 0,
  caller = 'vmalloc',
): number {
  return __vmalloc_node(mm, size, 1, gfp, nid, cpu, caller);
}

/** kernel: mm/vmalloc.c vmalloc_node(): GFP_KERNEL pages preferring node `nid`. */
export function vmalloc_node(mm: MM, size: number, nid: number, cpu = 0, caller = 'vmalloc_node'): number {
  return __vmalloc_node(mm, size, 1, GFP_KERNEL, nid, cpu, caller);
}

/** kernel: mm/vmalloc.c vzalloc() / vzalloc_node(): GFP_KERNEL | __GFP_ZERO. */
export function vzalloc(mm: MM, size: number, nid = NUMA_NO_NODE, cpu = 0, caller = 'vzalloc'): number {
  return __vmalloc_node(mm, size, 1, GFP_KERNEL | __GFP_ZERO, nid, cpu, caller);
}

/** kernel: mm/vmalloc.c vmalloc_huge_node(): VM_ALLOW_HUGE_VMAP, PMD-order pages from 2 MiB. */
export function vmalloc_huge(
  mm: MM,
  size: number,
  gfp = GFP_KERNEL,
  nid = NUMA_NO_NODE,
  cpu = 0,
  caller = 'vmalloc_huge',
): number {
  return __vmalloc_node_range(mm, size, 1, gfp, VM_ALLOW_HUGE_VMAP, nid, caller, cpu);
}

/**
 * kernel: mm/vmalloc.c vfree()
 * Free the area containing `addr` (vfree of any address inside an area frees it, as the kernel's
 * lookup does): its pages one by one on `cpu` (high-order pages were split), nr_vmalloc_pages,
 * the page array (kvfree), the vm_struct. NULL is ignored; an address in no area gets the
 * kernel's WARN in the log and changes nothing.
 */
export function vfree(mm: MM, addr: number, cpu: number): void {
  if (addr === NULL) return;
  if (addr % PAGE_SIZE !== 0) {
    mm.klog.push(
      `WARNING: CPU: ${cpu} at mm/vmalloc.c remove_vm_area: Trying to vfree() bad address (${addr})`,
    );
    return;
  }
  const vm = remove_vm_area(mm, addr, cpu);
  if (vm === null) {
    const hex = is_vmalloc_addr(addr) ? `0x${addr.toString(16)}` : String(addr);
    mm.klog.push(
      `WARNING: CPU: ${cpu} at mm/vmalloc.c vfree: Trying to vfree() nonexistent vm area (${hex})`,
    );
    return;
  }
  const pages = vm.pages;
  for (let i = 0; i < vm.nr_pages; i++) __free_pages(mm, pages[i], 0, cpu);
  if ((vm.flags & VM_MAP_PUT_PAGES) === 0) mm.vmalloc.nr_vmalloc_pages -= vm.nr_pages;
  kvfree(mm, vm.pages_addr, cpu);
  kfree(mm, vm.vm_handle, cpu);
}

/** kernel: mm/slub.c kvfree(): vfree() for vmalloc addresses, kfree() otherwise. */
export function kvfree(mm: MM, addr: number, cpu: number): void {
  if (is_vmalloc_addr(addr)) vfree(mm, addr, cpu);
  else kfree(mm, addr, cpu);
}

/**
 * kernel: mm/slub.c kmalloc_gfp_adjust()
 * Above a page the kmalloc attempt must not be disruptive: no warning, no direct reclaim unless
 * __GFP_RETRY_MAYFAIL, no __GFP_NOFAIL (the vmalloc fallback provides it).
 */
function kmalloc_gfp_adjust(gfp: number, size: number): number {
  if (size > PAGE_SIZE) {
    gfp |= __GFP_NOWARN;
    if ((gfp & __GFP_RETRY_MAYFAIL) === 0) gfp &= ~__GFP_DIRECT_RECLAIM;
    gfp &= ~__GFP_NOFAIL;
  }
  return gfp;
}

/**
 * kernel: mm/slub.c __kvmalloc_node_noprof()
 * kmalloc first (physically contiguous: a slab object or a large kmalloc); above a page, if that
 * fails and the caller may sleep, vmalloc with VM_ALLOW_HUGE_VMAP. Returns a handle for kvfree(),
 * or NULL.
 */
export function kvmalloc_node(
  mm: MM,
  size: number,
  gfp: number,
  node: number,
  cpu: number,
  caller = 'kvmalloc_node',
): number {
  const ret = __kmalloc_node(mm, size, kmalloc_gfp_adjust(gfp, size), node, cpu);
  if (ret !== NULL || size <= PAGE_SIZE) return ret;
  // Non-sleeping allocations are not supported by vmalloc.
  if (!gfpflags_allow_blocking(gfp)) return NULL;
  if (size > INT_MAX) {
    if ((gfp & __GFP_NOWARN) === 0) mm.klog.push(`WARNING: CPU: ${cpu} at mm/slub.c __kvmalloc_node_noprof`);
    return NULL;
  }
  return __vmalloc_node_range(mm, size, 1, gfp, VM_ALLOW_HUGE_VMAP, node, caller, cpu);
}

/**
 * The vmap node an area's busy list belongs to (addr_to_node_id()): with more than one possible
 * CPU the address space is dealt out to min(nr_cpus, 128) nodes in 16-page (64 KiB) zones;
 * /proc/vmallocinfo walks the nodes in turn.
 */
export function vmap_node_id(mm: MM, vm: VmStruct): number {
  const nr_vmap_nodes = Math.min(Math.max(mm.nr_cpus, 1), 128);
  if (nr_vmap_nodes === 1) return 0;
  // VMALLOC_START / 64 KiB is an exact integer below 2^53.
  return (VMALLOC_START / 65536 + Math.floor(vm.va_start / 16)) % nr_vmap_nodes;
}

/**
 * Every way vmalloc's state disagrees with itself or with the frame table: overlapping areas,
 * pages that are not allocated order-0 blocks, nr_vmalloc_pages against the areas' pages.
 */
export function vmalloc_check(mm: MM): string[] {
  const errors: string[] = [];
  const busy = mm.vmalloc.busy;
  const f = mm.frames;
  let total = 0;
  let prev_end = 0;
  for (const vm of busy) {
    if (vm.va_start < prev_end)
      errors.push(`vmalloc: area 0x${vm.addr.toString(16)} overlaps the one before`);
    prev_end = vm.va_end;
    if (vm.flags & VM_UNINITIALIZED)
      errors.push(`vmalloc: area 0x${vm.addr.toString(16)} left uninitialized`);
    if (vm.nr_pages !== get_vm_area_size(vm) / PAGE_SIZE)
      errors.push(
        `vmalloc: area 0x${vm.addr.toString(16)} has ${vm.nr_pages} of ${get_vm_area_size(vm) / PAGE_SIZE} pages`,
      );
    if ((vm.flags & VM_MAP_PUT_PAGES) === 0) total += vm.nr_pages;
    for (let i = 0; i < vm.nr_pages; i++) {
      const pfn = vm.pages[i];
      if ((f.flags[pfn] & (PGI_alloc | PG_head | PG_tail)) !== PGI_alloc || f.order[pfn] !== 0) {
        errors.push(
          `vmalloc: page ${i} (pfn ${pfn}) of area 0x${vm.addr.toString(16)} is not an allocated order-0 page`,
        );
        break;
      }
    }
  }
  if (total !== mm.vmalloc.nr_vmalloc_pages)
    errors.push(`vmalloc: nr_vmalloc_pages ${mm.vmalloc.nr_vmalloc_pages} but areas hold ${total}`);
  return errors;
}
