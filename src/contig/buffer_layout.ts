/**
 * A buffer's physical layout: what the device model reads. A buffer is a virtual range
 * [addr, addr + length) of a process; its layout is the pfn behind each 4 KiB page the range
 * touches (in virtual order) and the size of the CPU mapping of each page (4K PTE, 2M PMD leaf,
 * 1G PUD leaf).
 *
 * Page i of the layout is the page at virtual address (addr & ~4095) + i * 4096; a buffer of
 * 8192 bytes at 0x1800 touches three pages (0x1000, 0x2000, 0x3000).
 *
 * buffer_layout() reads a process's page tables the way /proc/<pid>/pagemap does
 * (fs/proc/task_mmu.c pagemap_pmd_range()): present PTEs give their pfn; swap entries and holes
 * give -1. Huge leaves (_PAGE_PSE in a PMD entry for THP and 2 MiB hugetlb, in a PUD entry for
 * 1 GiB hugetlb) give head pfn + the page's index inside the leaf, as pagemap does for them.
 */
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { walk_pte_table } from '../vm/memory.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import {
  _PAGE_PSE,
  _PAGE_SWP_ENTRY,
  PTRS_PER_TABLE,
  pgd_index,
  pmd_index,
  pte_index,
  pte_present,
  pud_index,
} from '../vm/pgtable.ts';
import type { Vm } from '../vm/vm.ts';
import { is_u53 } from './bits64.ts';

/** log2 of the CPU mapping size of a page: a PTE, a PMD leaf, a PUD leaf; 0 = not mapped. */
export const MAP_4K = 12;
export const MAP_2M = 21;
export const MAP_1G = 30;

/** The physical side of a virtual buffer. */
export interface BufferLayout {
  /** Virtual address of the buffer's first byte. */
  readonly addr: number;
  /** Length in bytes (> 0). */
  readonly length: number;
  /** Per 4 KiB page touched by the buffer, in virtual order: its pfn, or -1 if not resident. */
  readonly pfns: Int32Array;
  /** Per page: log2 of the CPU mapping size (MAP_4K, MAP_2M, MAP_1G), 0 if not mapped. */
  readonly map_shift: Uint8Array;
}

/** Pages touched by [addr, addr + length): from the page holding addr to the one holding the last byte. */
export function nr_pages_of(addr: number, length: number): number {
  return Math.ceil((addr + length) / PAGE_SIZE) - Math.floor(addr / PAGE_SIZE);
}

function check_range(addr: number, length: number, what: string): void {
  if (!is_u53(addr)) throw new RangeError(`${what}: address ${addr} is not an integer in [0, 2^53)`);
  if (!is_u53(length) || length === 0)
    throw new RangeError(`${what}: length ${length} must be a positive whole number of bytes`);
  if (addr + length > 2 ** 53) throw new RangeError(`${what}: [${addr}, +${length}) runs past 2^53`);
}

/**
 * A layout from a pfn per page (the device model's plain input). `map_shift` is one value for
 * every page or one per page; by default every page is taken as mapped with a 4 KiB PTE (-1 pfns
 * as not mapped). RangeError if the arrays do not match the pages the range touches.
 */
export function layout_from_pfns(
  addr: number,
  length: number,
  pfns: ArrayLike<number>,
  map_shift: number | ArrayLike<number> = MAP_4K,
): BufferLayout {
  check_range(addr, length, 'layout_from_pfns');
  const n = nr_pages_of(addr, length);
  if (pfns.length !== n)
    throw new RangeError(
      `layout_from_pfns: ${pfns.length} pfns for a buffer touching ${n} pages (0x${addr.toString(16)}, ${length} bytes)`,
    );
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = pfns[i];
    if (!Number.isInteger(v) || v < -1 || v > 0x7fffffff)
      throw new RangeError(`layout_from_pfns: pfn ${v} at page ${i} is not -1 or a pfn in [0, 2^31)`);
    p[i] = v;
  }
  const s = new Uint8Array(n);
  if (typeof map_shift === 'number') {
    check_shift(map_shift, -1);
    for (let i = 0; i < n; i++) s[i] = p[i] < 0 ? 0 : map_shift;
  } else {
    if (map_shift.length !== n)
      throw new RangeError(`layout_from_pfns: ${map_shift.length} mapping sizes for ${n} pages`);
    for (let i = 0; i < n; i++) {
      check_shift(map_shift[i], i);
      s[i] = p[i] < 0 ? 0 : map_shift[i];
    }
  }
  return { addr, length, pfns: p, map_shift: s };
}

function check_shift(v: number, page: number): void {
  if (v !== MAP_4K && v !== MAP_2M && v !== MAP_1G && v !== 0)
    throw new RangeError(
      `layout_from_pfns: mapping size 2^${v}${page >= 0 ? ` at page ${page}` : ''} is not 4K (12), 2M (21) or 1G (30)`,
    );
}

/** Pages of the layout with no resident page (pfn -1). */
export function missing_pages(layout: BufferLayout): number {
  const p = layout.pfns;
  let n = 0;
  for (let i = 0; i < p.length; i++) if (p[i] < 0) n++;
  return n;
}

const PMD_PAGES = PTRS_PER_TABLE;
const PUD_PAGES = PTRS_PER_TABLE * PTRS_PER_TABLE;

/**
 * The layout of [addr, addr + length) in address space `mm`, read from its page tables without
 * faulting anything in: pages not present (never touched, swapped out) are -1. Pages mapping the
 * shared zero page (read faults of anonymous memory) show the zero page's pfn, as pagemap does.
 */
export function buffer_layout(vm: Vm, mm: MmStruct, addr: number, length: number): BufferLayout {
  check_range(addr, length, 'buffer_layout');
  const first = Math.floor(addr / PAGE_SIZE);
  const n = nr_pages_of(addr, length);
  const pfns = new Int32Array(n).fill(-1);
  const shift = new Uint8Array(n);
  const pt = vm.pt;
  let i = 0;
  while (i < n) {
    const vpn = first + i;
    // One PTE table (or one huge leaf) covers the pages up to the next 2 MiB boundary.
    const next = Math.min(n, (Math.floor(vpn / PMD_PAGES) + 1) * PMD_PAGES - first);
    const table = walk_pte_table(vm, mm, vpn);
    if (table >= 0) {
      for (; i < next; i++) {
        const e = table * PTRS_PER_TABLE + pte_index(first + i);
        const bits = pt.bits[e];
        if (bits === 0 || bits & _PAGE_SWP_ENTRY || !pte_present(bits)) continue;
        pfns[i] = pt.pfn[e];
        shift[i] = MAP_4K;
      }
      continue;
    }
    i = huge_leaf(vm, mm, vpn, first, i, n, pfns, shift, next);
  }
  return { addr, length, pfns, map_shift: shift };
}

/**
 * walk_pte_table() found no PTE table at `vpn`: look for a huge leaf (PUD or PMD entry with
 * _PAGE_PSE) and fill its pages; returns the next page index to look at.
 */
function huge_leaf(
  vm: Vm,
  mm: MmStruct,
  vpn: number,
  first: number,
  i: number,
  n: number,
  pfns: Int32Array,
  shift: Uint8Array,
  next_pmd: number,
): number {
  const pt = vm.pt;
  if (mm.pgd < 0) return next_pmd;
  const pud = pt.child(mm.pgd, pgd_index(vpn));
  if (pud < 0) return next_pmd;
  const pud_e = pud * PTRS_PER_TABLE + pud_index(vpn);
  const pud_bits = pt.bits[pud_e];
  if (pud_bits & _PAGE_PSE && !(pud_bits & _PAGE_SWP_ENTRY)) {
    const end = Math.min(n, (Math.floor(vpn / PUD_PAGES) + 1) * PUD_PAGES - first);
    const head = pt.pfn[pud_e];
    for (; i < end; i++) {
      pfns[i] = head + ((first + i) % PUD_PAGES);
      shift[i] = MAP_1G;
    }
    return i;
  }
  if (pud_bits === 0) return next_pmd;
  const pmd = pt.child(pud, pud_index(vpn));
  if (pmd < 0) return next_pmd;
  const pmd_e = pmd * PTRS_PER_TABLE + pmd_index(vpn);
  const pmd_bits = pt.bits[pmd_e];
  if (pmd_bits & _PAGE_PSE && !(pmd_bits & _PAGE_SWP_ENTRY)) {
    const head = pt.pfn[pmd_e];
    for (; i < next_pmd; i++) {
      pfns[i] = head + ((first + i) % PMD_PAGES);
      shift[i] = MAP_2M;
    }
  }
  return next_pmd;
}
