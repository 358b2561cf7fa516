/**
 * The boot half of mm/cma.c (Linux 6.18): declaring CMA areas while memblock still owns memory.
 * cma_declare_contiguous_nid() reserves one range (fixed, or found bottom-up from 4 GiB, else
 * top-down), cma_declare_contiguous_multi() up to CMA_MAX_RANGES ranges above 4 GiB when one
 * range does not fit. A small memblock model (RAM, reservations, nodes) stands in for
 * mm/memblock.c. Addresses and sizes are bytes, as phys_addr_t; ranges are pfns.
 */
import {
  CMA_MAX_RANGES,
  CMA_MIN_ALIGNMENT_BYTES,
  type CmaReservation,
  max_cma_areas,
  NUMA_NO_NODE,
} from './cma.ts';
import type { PfnRange } from './mm_init.ts';

const ENOSPC = -28;
const ENOMEM = -12;
const EBUSY = -16;
const EINVAL = -22;

const PAGE_SIZE = 4096;
const SZ_1M = 2 ** 20;
const SZ_4G = 2 ** 32;

/** What memblock knows during setup_arch(), and the CMA areas declared so far. */
export interface Memblock {
  /** memblock.memory: RAM, pfns, sorted. */
  readonly memory: readonly PfnRange[];
  /** memblock.reserved: pfns; declarations add to it. */
  readonly reserved: PfnRange[];
  /** Node spans, pfns. */
  readonly nodes: readonly PfnRange[];
  /** CONFIG_NUMA */
  readonly numa: boolean;
  /** cma_areas[] so far (cma_area_count = its length). */
  readonly areas: CmaReservation[];
  /** printk, in order. */
  readonly log: string[];
}

const ALIGN = (x: number, a: number): number => Math.ceil(x / a) * a;
const ALIGN_DOWN = (x: number, a: number): number => Math.floor(x / a) * a;
const is_power_of_2 = (n: number): boolean => n > 0 && 2 ** Math.round(Math.log2(n)) === n;
/** %pa: a phys_addr_t as 0x and 16 hex digits. */
export const pa = (addr: number): string => `0x${addr.toString(16).padStart(16, '0')}`;

/** memblock_end_of_DRAM(), bytes. */
export function memblock_end_of_DRAM(mb: Memblock): number {
  return mb.memory.length ? mb.memory[mb.memory.length - 1].end * PAGE_SIZE : 0;
}

/** for_each_free_mem_range(nid): RAM of the node(s) minus the reservations, ascending. */
function free_mem_ranges(mb: Memblock, nid: number): PfnRange[] {
  const out: PfnRange[] = [];
  const res = [...mb.reserved].sort((a, b) => a.start - b.start);
  const nodes = nid === NUMA_NO_NODE ? mb.nodes : [mb.nodes[nid]];
  for (const n of nodes) {
    if (!n) continue;
    for (const m of mb.memory) {
      let s = Math.max(m.start, n.start);
      const e = Math.min(m.end, n.end);
      if (e <= s) continue;
      for (const r of res) {
        if (r.end <= s || r.start >= e) continue;
        if (r.start > s) out.push({ start: s, end: r.start });
        s = Math.max(s, r.end);
      }
      if (s < e) out.push({ start: s, end: e });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** memblock_is_region_reserved(): any overlap with a reservation. */
function memblock_is_region_reserved(mb: Memblock, start: number, end: number): boolean {
  return mb.reserved.some((r) => r.start < end && r.end > start);
}

/**
 * memblock_alloc_range_nid(exact_nid = true): the lowest (bottom-up) or highest (top-down)
 * `align`-aligned free range of `size` bytes inside [start, end) on node `nid`, reserved; its
 * address, or 0.
 */
function memblock_alloc_range_nid(
  mb: Memblock,
  size: number,
  align: number,
  start: number,
  end: number,
  nid: number,
  bottom_up: boolean,
): number {
  const pages = size / PAGE_SIZE;
  const a = align / PAGE_SIZE;
  const lo_lim = Math.max(start, PAGE_SIZE) / PAGE_SIZE;
  const hi_lim = end / PAGE_SIZE;
  const ranges = free_mem_ranges(mb, nid);
  if (!bottom_up) ranges.reverse();
  for (const f of ranges) {
    const lo = Math.max(f.start, Math.ceil(lo_lim));
    const hi = Math.min(f.end, Math.floor(hi_lim));
    if (hi - lo < pages) continue;
    const cand = bottom_up ? ALIGN(lo, a) : ALIGN_DOWN(hi - pages, a);
    if (cand >= lo && cand + pages <= hi) {
      mb.reserved.push({ start: cand, end: cand + pages });
      return cand * PAGE_SIZE;
    }
  }
  return 0;
}

/** kernel: mm/cma.c cma_alloc_mem(): bottom-up from 4 GiB when there is room, else top-down. */
function cma_alloc_mem(
  mb: Memblock,
  base: number,
  size: number,
  align: number,
  limit: number,
  nid: number,
): number {
  let addr = 0;
  // Close to the start of the node, so that compaction moves pages out of CMA, not into it;
  // above 4 GiB, away from DMA/DMA32.
  if (limit >= SZ_4G + size) addr = memblock_alloc_range_nid(mb, size, align, SZ_4G, limit, nid, true);
  if (!addr) addr = memblock_alloc_range_nid(mb, size, align, base, limit, nid, false);
  return addr;
}

function new_area(
  mb: Memblock,
  name: string,
  order_per_bit: number,
  nid: number,
  ranges: PfnRange[],
): number {
  if (mb.areas.length === max_cma_areas(mb.numa)) {
    mb.log.push('cma: Not enough slots for CMA reserved regions!');
    return ENOSPC;
  }
  mb.areas.push({ name: name.slice(0, 63), order_per_bit, nid, ranges });
  return 0;
}

/**
 * kernel: mm/cma.c __cma_declare_contiguous_nid()
 * Returns 0 and the base, or -ENOSPC (no slot), -EINVAL (bad size, alignment or limit), -EBUSY
 * (a fixed range overlaps a reservation), -ENOMEM (no room).
 */
function __cma_declare_contiguous_nid(
  mb: Memblock,
  base: number,
  size: number,
  limit: number,
  alignment: number,
  order_per_bit: number,
  fixed: boolean,
  name: string,
  nid: number,
): { ret: number; base: number } {
  const memblock_end = memblock_end_of_DRAM(mb);
  const fail = (ret: number) => ({ ret, base });
  if (mb.areas.length === max_cma_areas(mb.numa)) {
    mb.log.push('cma: Not enough slots for CMA reserved regions!');
    return fail(ENOSPC);
  }
  if (!size) return fail(EINVAL);
  if (alignment && !is_power_of_2(alignment)) return fail(EINVAL);
  if (!mb.numa) nid = NUMA_NO_NODE;
  alignment = Math.max(alignment, CMA_MIN_ALIGNMENT_BYTES);
  if (fixed && base % alignment) {
    mb.log.push(`cma: Region at ${pa(base)} must be aligned to ${pa(alignment)} bytes`);
    return fail(EINVAL);
  }
  base = ALIGN(base, alignment);
  size = ALIGN(size, alignment);
  limit = ALIGN_DOWN(limit, alignment);
  if (!base) fixed = false;
  if ((size / PAGE_SIZE) % 2 ** order_per_bit) return fail(EINVAL);
  if (limit === 0 || limit > memblock_end) limit = memblock_end;
  if (base + size > limit) {
    mb.log.push(`cma: Size (${pa(size)}) of region at ${pa(base)} exceeds limit (${pa(limit)})`);
    return fail(EINVAL);
  }
  if (fixed) {
    // cma_fixed_reserve()
    const s = base / PAGE_SIZE;
    const e = (base + size) / PAGE_SIZE;
    if (memblock_is_region_reserved(mb, s, e)) return fail(EBUSY);
    mb.reserved.push({ start: s, end: e });
  } else {
    base = cma_alloc_mem(mb, base, size, alignment, limit, nid);
    if (!base) return fail(ENOMEM);
  }
  // cma_init_reserved_mem()
  const ret = new_area(mb, name, order_per_bit, nid, [
    { start: base / PAGE_SIZE, end: (base + size) / PAGE_SIZE },
  ]);
  if (ret) {
    const i = mb.reserved.findIndex((r) => r.start === base / PAGE_SIZE);
    mb.reserved.splice(i, 1); // memblock_phys_free()
    return fail(ret);
  }
  return { ret: 0, base };
}

/**
 * kernel: mm/cma.c cma_declare_contiguous_nid(): one range, logged as the kernel logs it.
 */
export function cma_declare_contiguous_nid(
  mb: Memblock,
  base: number,
  size: number,
  limit: number,
  alignment: number,
  order_per_bit: number,
  fixed: boolean,
  name: string,
  nid: number,
): number {
  const r = __cma_declare_contiguous_nid(mb, base, size, limit, alignment, order_per_bit, fixed, name, nid);
  if (r.ret !== 0) mb.log.push(`cma: Failed to reserve ${Math.floor(size / SZ_1M)} MiB`);
  else mb.log.push(`cma: Reserved ${Math.floor(size / SZ_1M)} MiB at ${pa(r.base)}`);
  return r.ret;
}

interface InitMemrange {
  base: number;
  size: number;
}

/**
 * list_insert_sorted() as 6.18 writes it: the new entry goes before the first entry for which
 * cmp(entry, new) holds, or, when none does, before the last entry.
 */
function list_insert_sorted(
  list: InitMemrange[],
  mrp: InitMemrange,
  cmp: (l: InitMemrange, r: InitMemrange) => boolean,
): void {
  if (list.length === 0) {
    list.push(mrp);
    return;
  }
  let at = list.length - 1;
  for (let i = 0; i < list.length; i++) {
    if (cmp(list[i], mrp)) {
      at = i;
      break;
    }
  }
  list.splice(at, 0, mrp);
}

/**
 * kernel: mm/cma.c cma_declare_contiguous_multi()
 * One area of `total_size` bytes: one range if one fits (as cma_declare_contiguous_nid()), else
 * up to CMA_MAX_RANGES free ranges above 4 GiB on the node, the list kept by size and then by
 * base with 6.18's list_insert_sorted() as it is. 0 or a negative errno.
 */
export function cma_declare_contiguous_multi(
  mb: Memblock,
  total_size: number,
  align: number,
  order_per_bit: number,
  name: string,
  nid: number,
): number {
  let nr = 1;
  let ret = __cma_declare_contiguous_nid(mb, 0, total_size, 0, align, order_per_bit, false, name, nid).ret;
  if (ret === ENOMEM) ret = multi(mb, total_size, align, order_per_bit, name, nid, (n) => (nr = n));
  if (ret !== 0) mb.log.push(`cma: Failed to reserve ${Math.floor(total_size / SZ_1M)} MiB`);
  else
    mb.log.push(`cma: Reserved ${Math.floor(total_size / SZ_1M)} MiB in ${nr} range${nr === 1 ? '' : 's'}`);
  return ret;
}

function multi(
  mb: Memblock,
  total_size: number,
  align: number,
  order_per_bit: number,
  name: string,
  nid: number,
  set_nr: (nr: number) => void,
): number {
  if (mb.areas.length === max_cma_areas(mb.numa)) {
    mb.log.push('cma: Not enough slots for CMA reserved regions!');
    return ENOSPC;
  }
  align = Math.max(align, CMA_MIN_ALIGNMENT_BYTES);
  const ranges: InitMemrange[] = [];
  let sizesum = 0;
  let nr = 0;
  for (const f of free_mem_ranges(mb, nid)) {
    let start = f.start * PAGE_SIZE;
    let end = f.end * PAGE_SIZE;
    if (start < SZ_4G) continue; // upper_32_bits(start) == 0
    start = ALIGN(start, align);
    if (start >= end) continue;
    end = ALIGN_DOWN(end, align);
    if (end <= start) continue;
    const size = ALIGN_DOWN(end - start, PAGE_SIZE * 2 ** order_per_bit);
    if (!size) continue;
    sizesum += size;
    let mrp: InitMemrange;
    if (nr < CMA_MAX_RANGES) {
      mrp = { base: 0, size: 0 };
      nr++;
    } else {
      mrp = ranges[ranges.length - 1];
      if (size < mrp.size) continue;
      ranges.pop();
      sizesum -= mrp.size;
    }
    mrp.base = start;
    mrp.size = size;
    list_insert_sorted(ranges, mrp, (l, r) => l.size > r.size);
  }
  if (sizesum < total_size) return ENOMEM;
  const final: InitMemrange[] = [];
  sizesum = 0;
  while (ranges.length) {
    const mlp = ranges.shift()!;
    list_insert_sorted(final, mlp, (l, r) => l.base < r.base);
    sizesum += mlp.size;
    if (sizesum >= total_size) break;
  }
  const out: PfnRange[] = [];
  let sizeleft = total_size;
  for (const mlp of final) {
    const size = Math.min(sizeleft, mlp.size);
    mb.reserved.push({ start: mlp.base / PAGE_SIZE, end: (mlp.base + size) / PAGE_SIZE });
    out.push({ start: mlp.base / PAGE_SIZE, end: (mlp.base + size) / PAGE_SIZE });
    sizeleft -= size;
    if (sizeleft === 0) break;
  }
  mb.areas.push({ name: name.slice(0, 63), order_per_bit, nid, ranges: out });
  set_nr(out.length);
  return 0;
}
