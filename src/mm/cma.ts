/**
 * The Contiguous Memory Allocator (mm/cma.c, mm/cma.h, mm/cma_sysfs.c, Linux 6.18).
 *
 * Boot: an area's ranges are memblock reservations (cma_declare_contiguous_nid() and
 * cma_declare_contiguous_multi(), placed by the memblock model below); cma_init_reserved_areas()
 * (core_initcall) gives each pageblock to the buddy allocator as MIGRATE_CMA free memory, which
 * movable allocations may borrow (ALLOC_CMA, page_alloc/fallback.ts __rmqueue()).
 *
 * Run time: cma_alloc() looks in the area's bitmap (one bit per 2^order_per_bit pages) for a free
 * aligned run, marks it, and takes the pages with alloc_contig_range(ACR_FLAGS_CMA), which
 * migrates the borrowers out; on -EBUSY it clears the bits and tries the next aligned slot.
 * cma_release() frees the pages back to the buddy (as CMA pages) and clears the bits.
 */
import { __GFP_COMP, __GFP_NOWARN, GFP_KERNEL } from './gfp.ts';
import { FPI_NONE } from './internal.ts';
import type { MM } from './mm.ts';
import type { PfnRange } from './mm_init.ts';
import { MIGRATE_CMA, pageblock_nr_pages, pageblock_order, type Zone } from './mmzone.ts';
import { free_one_page } from './page_alloc/alloc_pages.ts';
import {
  ACR_FLAGS_CMA,
  alloc_contig_range,
  type ContigTask,
  free_contig_range,
} from './page_alloc/contig.ts';
import { PG_buddy, PG_tail, PGI_alloc, PGI_nopage, PGI_pcp } from './page-flags.ts';
import { get_pfnblock_migratetype, PB_migratetype_mask, set_pageblock_migratetype } from './pageblock.ts';
import { vm_event_index } from './vmstat_items.ts';

const ENOMEM = -12;
const EBUSY = -16;

/** include/linux/cma.h */
export const CMA_MAX_NAME = 64;
export const CMA_MIN_ALIGNMENT_PAGES = pageblock_nr_pages;
export const CMA_MIN_ALIGNMENT_BYTES = CMA_MIN_ALIGNMENT_PAGES * 4096;
/** mm/cma.h: ranges of a multi-range area. */
export const CMA_MAX_RANGES = 8;
/** CONFIG_CMA_AREAS: 20 with NUMA, else 8 (mm/Kconfig). */
export const max_cma_areas = (numa: boolean): number => (numa ? 20 : 8);
export const NUMA_NO_NODE = -1;

const CMA_ALLOC_SUCCESS = vm_event_index('cma_alloc_success');
const CMA_ALLOC_FAIL = vm_event_index('cma_alloc_fail');

/** struct cma_memrange: one physically contiguous part of an area and its allocation bitmap. */
export class CmaMemrange {
  /** One bit per 2^order_per_bit pages: set = handed out by cma_alloc(). */
  readonly bitmap: Uint32Array;
  constructor(
    readonly base_pfn: number,
    readonly count: number,
    readonly nbits: number,
  ) {
    this.bitmap = new Uint32Array(Math.ceil(nbits / 32));
  }
}

/** struct cma */
export class Cma {
  available_count: number;
  readonly ranges: CmaMemrange[];
  /** CMA_ACTIVATED: its pageblocks were given to the buddy allocator. */
  activated = false;
  /** cma_sysfs: pages handed out, requested in failed calls, released. */
  nr_pages_succeeded = 0;
  nr_pages_failed = 0;
  nr_pages_released = 0;

  constructor(
    readonly name: string,
    public count: number,
    readonly order_per_bit: number,
    ranges: readonly PfnRange[],
    readonly nid: number,
  ) {
    this.available_count = count;
    this.ranges = ranges.map(
      (r) => new CmaMemrange(r.start, r.end - r.start, (r.end - r.start) >>> order_per_bit),
    );
  }
}

/** What boot reserved for one area (cma_declare_contiguous_*), before activation. */
export interface CmaReservation {
  name: string;
  order_per_bit: number;
  /** The node it was asked on, or NUMA_NO_NODE. */
  nid: number;
  ranges: PfnRange[];
}

// ---------------------------------------------------------------------------------------------
// Bitmap primitives (lib/bitmap.c, lib/find_bit.c) on 32-bit words.

function test_bit(map: Uint32Array, bit: number): boolean {
  return ((map[bit >>> 5] >>> (bit & 31)) & 1) === 1;
}

function bitmap_set(map: Uint32Array, start: number, nr: number): void {
  for (let b = start; b < start + nr; b++) map[b >>> 5] |= 1 << (b & 31);
}

function bitmap_clear(map: Uint32Array, start: number, nr: number): void {
  for (let b = start; b < start + nr; b++) map[b >>> 5] &= ~(1 << (b & 31));
}

/** find_next_zero_bit(): the first clear bit at or after `start`, or `size`. */
function find_next_zero_bit(map: Uint32Array, size: number, start: number): number {
  let b = start;
  while (b < size) {
    const w = map[b >>> 5];
    if (w === 0xffffffff && (b & 31) === 0) {
      b += 32;
      continue;
    }
    if (!((w >>> (b & 31)) & 1)) return b;
    b++;
  }
  return size;
}

/** find_next_bit(): the first set bit at or after `start`, or `size`. */
function find_next_bit(map: Uint32Array, size: number, start: number): number {
  let b = start;
  while (b < size) {
    const w = map[b >>> 5];
    if (w === 0 && (b & 31) === 0) {
      b += 32;
      continue;
    }
    if ((w >>> (b & 31)) & 1) return b;
    b++;
  }
  return size;
}

/**
 * kernel: lib/bitmap.c bitmap_find_next_zero_area_off()
 * The first run of `nr` clear bits at or after `start` whose index plus `align_offset` is a
 * multiple of align_mask + 1; a value > size when there is none.
 */
function bitmap_find_next_zero_area_off(
  map: Uint32Array,
  size: number,
  start: number,
  nr: number,
  align_mask: number,
  align_offset: number,
): number {
  for (;;) {
    let index = find_next_zero_bit(map, size, start);
    // __ALIGN_MASK(index + align_offset, align_mask) - align_offset
    index =
      Math.floor((index + align_offset + align_mask) / (align_mask + 1)) * (align_mask + 1) - align_offset;
    const end = index + nr;
    if (end > size) return end;
    const i = find_next_bit(map, end, index);
    if (i < end) {
      start = i + 1;
      continue;
    }
    return index;
  }
}

function bitmap_weight(map: Uint32Array, nbits: number): number {
  let n = 0;
  for (let b = 0; b < nbits; b++) if (test_bit(map, b)) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// mm/cma.c helpers

/** cma_bitmap_aligned_mask() */
function cma_bitmap_aligned_mask(cma: Cma, align_order: number): number {
  if (align_order <= cma.order_per_bit) return 0;
  return 2 ** (align_order - cma.order_per_bit) - 1;
}

/** cma_bitmap_aligned_offset(): the base pfn's offset from an align_order boundary, in bits. */
function cma_bitmap_aligned_offset(cma: Cma, cmr: CmaMemrange, align_order: number): number {
  return Math.floor((cmr.base_pfn % 2 ** align_order) / 2 ** cma.order_per_bit);
}

/** cma_bitmap_pages_to_bits() */
function cma_bitmap_pages_to_bits(cma: Cma, pages: number): number {
  return Math.ceil(pages / 2 ** cma.order_per_bit);
}

/** cma_clear_bitmap() */
function cma_clear_bitmap(mm: MM, cma: Cma, cmr: CmaMemrange, pfn: number, count: number): void {
  mm.kernel_ns += mm.cost.zone_lock; // cma->lock, a spinlock with interrupts off
  bitmap_clear(cmr.bitmap, (pfn - cmr.base_pfn) >>> cma.order_per_bit, cma_bitmap_pages_to_bits(cma, count));
  cma.available_count += count;
}

/** The area called `name`, or undefined. */
export function cma_by_name(mm: MM, name: string): Cma | undefined {
  return mm.cma_areas.find((c) => c.name === name);
}

// ---------------------------------------------------------------------------------------------
// Activation (core_initcall cma_init_reserved_areas)

/**
 * kernel: mm/mm_init.c init_cma_reserved_pageblock()
 * A reserved pageblock becomes MIGRATE_CMA free memory: PageReserved cleared, freed whole to the
 * buddy, counted as managed and as the zone's cma_pages. (The kernel's __free_pages() would
 * pass the order-9 block through this CPU's pcp list, drained long before anyone allocates; the
 * model frees it to the buddy directly.)
 */
function init_cma_reserved_pageblock(mm: MM, pfn: number): void {
  mm.frames.flags.fill(0, pfn, pfn + pageblock_nr_pages);
  set_pageblock_migratetype(mm, pfn, MIGRATE_CMA);
  const zone = mm.page_zone(pfn)!;
  free_one_page(mm, zone, pfn, pageblock_order, FPI_NONE);
  // adjust_managed_page_count()
  zone.managed_pages += pageblock_nr_pages;
  mm.totalram_pages += pageblock_nr_pages;
  zone.cma_pages += pageblock_nr_pages;
}

/**
 * kernel: mm/mm_init.c pfn_range_intersects_zones() for cma_validate_zones(): every pfn of the
 * range in one zone (and RAM, which alloc_contig_range() needs as well).
 */
function pfn_range_intersects_zones(mm: MM, start: number, count: number): boolean {
  const zone: Zone | undefined = mm.page_zone(start);
  if (!zone) return true;
  for (let pfn = start; pfn < start + count; pfn += pageblock_nr_pages) {
    if (mm.page_zone(pfn) !== zone || !zone.zone_spans_pfn(pfn)) return true;
  }
  const flags = mm.frames.flags;
  for (let pfn = start; pfn < start + count; pfn++) if (flags[pfn] & PGI_nopage) return true;
  return false;
}

/**
 * kernel: mm/cma.c cma_activate_area()
 * An area whose ranges cross zones cannot be activated: its pages go to the buddy as ordinary
 * memory and it keeps no pages (count 0).
 */
function cma_activate_area(mm: MM, cma: Cma): void {
  let valid = true;
  for (const cmr of cma.ranges) if (pfn_range_intersects_zones(mm, cmr.base_pfn, cmr.count)) valid = false;
  if (!valid) {
    // free_reserved_page() on each page: ordinary free memory of its pageblock's type.
    for (const cmr of cma.ranges) {
      for (let pfn = cmr.base_pfn; pfn < cmr.base_pfn + cmr.count; pfn++) {
        const zone = mm.page_zone(pfn);
        if (!zone || mm.frames.flags[pfn] & PGI_nopage) continue;
        mm.frames.flags[pfn] = 0;
        free_one_page(mm, zone, pfn, 0, FPI_NONE);
        zone.managed_pages++;
        mm.totalram_pages++;
      }
    }
    mm.totalcma_pages -= cma.count;
    cma.available_count = cma.count = 0;
    mm.klog.push(`cma: CMA area ${cma.name} could not be activated`);
    return;
  }
  for (const cmr of cma.ranges)
    for (let pfn = cmr.base_pfn; pfn < cmr.base_pfn + cmr.count; pfn += pageblock_nr_pages)
      init_cma_reserved_pageblock(mm, pfn);
  cma.activated = true;
}

/**
 * kernel: mm/cma.c cma_new_area() for each reservation, then cma_init_reserved_areas(): the
 * areas in the order boot declared them, each activated.
 */
export function cma_init_reserved_areas(mm: MM, reservations: readonly CmaReservation[]): void {
  for (const r of reservations) {
    let count = 0;
    for (const x of r.ranges) count += x.end - x.start;
    const cma = new Cma(r.name, count, r.order_per_bit, r.ranges, r.nid);
    mm.cma_areas.push(cma);
    mm.totalcma_pages += count;
  }
  for (const cma of mm.cma_areas) cma_activate_area(mm, cma);
}

// ---------------------------------------------------------------------------------------------
// Allocation

/**
 * kernel: mm/cma.c cma_range_alloc()
 * 0 (the first pfn left in range_pfn), or -EBUSY (every slot busy or none free) / another errno.
 */
function cma_range_alloc(
  mm: MM,
  cma: Cma,
  cmr: CmaMemrange,
  count: number,
  align: number,
  gfp: number,
  task: ContigTask,
): number {
  const mask = cma_bitmap_aligned_mask(cma, align);
  const offset = cma_bitmap_aligned_offset(cma, cmr, align);
  const bitmap_maxno = cmr.nbits;
  const bitmap_count = cma_bitmap_pages_to_bits(cma, count);
  range_pfn = -1;
  if (bitmap_count > bitmap_maxno) return EBUSY;
  let ret = EBUSY;
  for (let start = 0; ; ) {
    mm.kernel_ns += mm.cost.zone_lock; // cma->lock
    // A request larger than what is left stops at once.
    if (count > cma.available_count) break;
    const bitmap_no = bitmap_find_next_zero_area_off(
      cmr.bitmap,
      bitmap_maxno,
      start,
      bitmap_count,
      mask,
      offset,
    );
    if (bitmap_no >= bitmap_maxno) break;
    const pfn = cmr.base_pfn + bitmap_no * 2 ** cma.order_per_bit;
    // page_range_contiguous(): always, with SPARSEMEM_VMEMMAP.
    bitmap_set(cmr.bitmap, bitmap_no, bitmap_count);
    cma.available_count -= count;
    // cma->alloc_mutex serialises alloc_contig_range() per area; the model runs one at a time.
    ret = alloc_contig_range(mm, pfn, pfn + count, ACR_FLAGS_CMA, gfp, task);
    if (ret === 0) {
      range_pfn = pfn;
      break;
    }
    cma_clear_bitmap(mm, cma, cmr, pfn, count);
    if (ret !== EBUSY) break;
    start = bitmap_no + mask + 1;
  }
  return ret;
}
/** cma_range_alloc()'s *pagep. */
let range_pfn = -1;

/** The rest of the kernel's cma_debug_show_areas(): each range's free runs (count@bit). */
function cma_debug_show_areas(mm: MM, cma: Cma): void {
  mm.klog.push('cma: number of available pages: ');
  cma.ranges.forEach((cmr, r) => {
    let parts = '';
    for (let start = find_next_zero_bit(cmr.bitmap, cmr.nbits, 0); start < cmr.nbits; ) {
      const end = find_next_bit(cmr.bitmap, cmr.nbits, start);
      parts += `${start ? '+' : ''}${(end - start) * 2 ** cma.order_per_bit}@${start}`;
      start = find_next_zero_bit(cmr.bitmap, cmr.nbits, end);
    }
    mm.klog.push(`cma: range ${r}: ${parts}`);
  });
  mm.klog.push(`=> ${cma.available_count} free of ${cma.count} total pages`);
}

/**
 * kernel: mm/cma.c __cma_alloc()
 * The first pfn of `count` pages aligned to 2^align, or -1. Each range is tried in turn while it
 * only says -EBUSY. An empty area or count 0 returns -1 without counting.
 */
export function __cma_alloc(
  mm: MM,
  cma: Cma | null | undefined,
  count: number,
  align: number,
  gfp: number,
  task: ContigTask = {},
): number {
  if (!cma?.count) return -1;
  if (!count) return -1;
  let ret = ENOMEM;
  let pfn = -1;
  for (const cmr of cma.ranges) {
    ret = cma_range_alloc(mm, cma, cmr, count, align, gfp, task);
    pfn = range_pfn;
    if (ret !== EBUSY || pfn >= 0) break;
  }
  if (ret && !(gfp & __GFP_NOWARN)) {
    mm.klog.push(`cma: __cma_alloc: ${cma.name}: alloc failed, req-size: ${count} pages, ret: ${ret}`);
    cma_debug_show_areas(mm, cma);
  }
  if (pfn >= 0) {
    mm.vm_events[CMA_ALLOC_SUCCESS]++;
    cma.nr_pages_succeeded += count;
  } else {
    mm.vm_events[CMA_ALLOC_FAIL]++;
    cma.nr_pages_failed += count;
  }
  return pfn;
}

/**
 * kernel: mm/cma.c cma_alloc()
 * `count` pages of `cma`, the first aligned to 2^align pages, as order-0 pages the caller owns
 * (GFP_KERNEL, __GFP_NOWARN with no_warn): the first pfn, or -1 (NULL).
 */
export function cma_alloc(
  mm: MM,
  cma: Cma | null | undefined,
  count: number,
  align: number,
  no_warn: boolean,
  task: ContigTask = {},
): number {
  return __cma_alloc(mm, cma, count, align, GFP_KERNEL | (no_warn ? __GFP_NOWARN : 0), task);
}

/**
 * kernel: mm/cma.c cma_alloc_folio()
 * One compound page of 2^order pages, naturally aligned (hugetlb's gigantic pages): its pfn or -1.
 * `gfp` must include __GFP_COMP and order be > 0 (else a warning and -1).
 */
export function cma_alloc_folio(
  mm: MM,
  cma: Cma | null | undefined,
  order: number,
  gfp: number,
  task: ContigTask = {},
): number {
  if (!order || !(gfp & __GFP_COMP)) {
    mm.klog.push('WARNING: CPU: 0 at mm/cma.c cma_alloc_folio');
    return -1;
  }
  return __cma_alloc(mm, cma, 2 ** order, order, gfp, task);
}

/** kernel: mm/cma.c cma_pages_valid(): the pages lie inside one range of the area. */
export function cma_pages_valid(cma: Cma | null | undefined, pfn: number, count: number): boolean {
  if (!cma || pfn < 0 || count > cma.count) return false;
  for (const cmr of cma.ranges) {
    const end = cmr.base_pfn + cmr.count;
    if (pfn >= cmr.base_pfn && pfn < end) return pfn + count <= end;
  }
  return false;
}

/**
 * kernel: mm/cma.c cma_release()
 * Free `count` pages from `pfn` that cma_alloc() gave back to the buddy (as CMA pages) and clear
 * their bits. False if they are not inside the area.
 */
export function cma_release(
  mm: MM,
  cma: Cma | null | undefined,
  pfn: number,
  count: number,
  cpu = 0,
): boolean {
  if (!cma || !cma_pages_valid(cma, pfn, count)) return false;
  const cmr = cma.ranges.find((r) => pfn >= r.base_pfn && pfn < r.base_pfn + r.count)!;
  free_contig_range(mm, pfn, count, cpu);
  cma_clear_bitmap(mm, cma, cmr, pfn, count);
  cma.nr_pages_released += count;
  return true;
}

/** kernel: mm/cma.c cma_free_folio(): cma_release() of a compound page from cma_alloc_folio(). */
export function cma_free_folio(
  mm: MM,
  cma: Cma | null | undefined,
  pfn: number,
  order: number,
  cpu = 0,
): boolean {
  return cma_release(mm, cma, pfn, 2 ** order, cpu);
}

/** Whether the bitmap says [pfn, pfn + count) is allocated (every bit set). */
export function cma_range_allocated(cma: Cma, pfn: number, count: number): boolean {
  const cmr = cma.ranges.find((r) => pfn >= r.base_pfn && pfn < r.base_pfn + r.count);
  if (!cmr || pfn + count > cmr.base_pfn + cmr.count) return false;
  const first = (pfn - cmr.base_pfn) >>> cma.order_per_bit;
  const last = (pfn + count - 1 - cmr.base_pfn) >>> cma.order_per_bit;
  for (let b = first; b <= last; b++) if (!test_bit(cmr.bitmap, b)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Invariants

/**
 * CMA's invariants: totalcma_pages is the sum of the areas' sizes and of the zones' cma_pages;
 * every pageblock of an active area is MIGRATE_CMA (isolation is a separate bit) and no other
 * pageblock is; pages whose bits are set are allocated (not free, not on a pcp list); the
 * available count lies between the clear bits' pages (a count rounded up to whole bits takes
 * more bits than pages) and the area's size.
 */
export function cma_check(mm: MM): string[] {
  const errors: string[] = [];
  const report = (m: string): void => {
    if (errors.length < 20) errors.push(m);
  };
  let total = 0;
  for (const cma of mm.cma_areas) total += cma.count;
  if (total !== mm.totalcma_pages) report(`totalcma_pages ${mm.totalcma_pages} but areas hold ${total}`);
  let zone_cma = 0;
  for (const z of mm.zones) zone_cma += z.cma_pages;
  if (zone_cma !== mm.totalcma_pages)
    report(`totalcma_pages ${mm.totalcma_pages} but zones' cma ${zone_cma}`);
  const inArea = new Uint8Array(mm.pb_flags.length);
  const flags = mm.frames.flags;
  for (const cma of mm.cma_areas) {
    if (!cma.activated) continue;
    let clear = 0;
    for (const cmr of cma.ranges) {
      for (let pfn = cmr.base_pfn; pfn < cmr.base_pfn + cmr.count; pfn += pageblock_nr_pages) {
        inArea[pfn >>> pageblock_order] = 1;
        if (get_pfnblock_migratetype(mm, pfn) !== MIGRATE_CMA)
          report(`cma ${cma.name}: pageblock at pfn ${pfn} is type ${get_pfnblock_migratetype(mm, pfn)}`);
      }
      const per = 2 ** cma.order_per_bit;
      for (let b = 0; b < cmr.nbits; b++) {
        if (!test_bit(cmr.bitmap, b)) {
          clear += per;
          continue;
        }
        for (let pfn = cmr.base_pfn + b * per; pfn < cmr.base_pfn + (b + 1) * per; pfn++) {
          const fl = flags[pfn];
          // Tail pages of an allocated compound page carry no PGI_alloc of their own.
          if (fl & (PG_buddy | PGI_pcp) || ((fl & PGI_alloc) === 0 && (fl & PG_tail) === 0))
            report(
              `cma ${cma.name}: pfn ${pfn} is in the bitmap but not allocated (flags 0x${fl.toString(16)})`,
            );
        }
      }
      if (bitmap_weight(cmr.bitmap, cmr.nbits) > cmr.nbits) report(`cma ${cma.name}: bitmap overflow`);
    }
    if (cma.available_count < clear || cma.available_count > cma.count)
      report(
        `cma ${cma.name}: available_count ${cma.available_count}, clear bits cover ${clear} of ${cma.count}`,
      );
  }
  for (let pb = 0; pb < mm.pb_flags.length; pb++) {
    if ((mm.pb_flags[pb] & PB_migratetype_mask) === MIGRATE_CMA && !inArea[pb])
      report(`pageblock ${pb} is MIGRATE_CMA outside every CMA area`);
  }
  return errors;
}
