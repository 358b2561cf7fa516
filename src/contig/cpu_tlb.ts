/**
 * The CPU side: how much of a buffer the second-level TLB (STLB) can translate at once, given the
 * page size each part is mapped with (4 KiB PTEs, 2 MiB THP/hugetlb PMD leaves, 1 GiB hugetlb PUD
 * leaves). Babka's point in the 2017 thread: a program that cares about performance wants the CPU
 * TLB benefit too, which physical contiguity alone does not give (a MAP_CONTIG buffer mapped with
 * 4 KiB PTEs still needs one TLB entry per 4 KiB).
 *
 * Default STLB geometry (configurable): Intel Skylake-SP, 1536 entries shared by 4 KiB and 2 MiB
 * translations and 16 entries for 1 GiB (Intel 64 and IA-32 Architectures Optimization Reference
 * Manual, Skylake microarchitecture TLB parameters). Newer cores have larger STLBs: pass their
 * numbers.
 *
 * Coverage: 1 GiB translations use the 1 GiB entries; 2 MiB translations take shared entries
 * first (they cover more), 4 KiB ones get the rest. covered_bytes is the part of the buffer those
 * entries translate; the random-access miss rate uses the cache model of translation_cache.ts on
 * each structure, weighted by the bytes it translates.
 */
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { type BufferLayout, MAP_1G, MAP_2M, MAP_4K } from './buffer_layout.ts';
import { entries_by_shift, estimate_translation_cache } from './translation_cache.ts';

/** Pages per translation by log2 mapping size (only 12, 21 and 30 occur). */
const LEAF_PAGES = Float64Array.from({ length: 31 }, (_, k) => (k >= 12 ? 2 ** (k - 12) : 1));

/** A second-level TLB's geometry. */
export interface StlbConfig {
  readonly name: string;
  /** Entries shared by 4 KiB and 2 MiB translations. */
  readonly shared_4k_2m: number;
  /** Entries for 1 GiB translations. */
  readonly entries_1g: number;
}

/** Intel Skylake-SP STLB: 1536 shared 4K/2M entries, 16 1G entries. */
export const STLB_SKYLAKE_SP: StlbConfig = { name: 'Skylake-SP', shared_4k_2m: 1536, entries_1g: 16 };

/** The CPU translations of a buffer and what the STLB does with them. */
export interface CpuTlbReport {
  readonly stlb: StlbConfig;
  /** Distinct translations by size. */
  readonly translations_4k: number;
  readonly translations_2m: number;
  readonly translations_1g: number;
  /** Buffer bytes (whole pages) mapped with each size. */
  readonly bytes_4k: number;
  readonly bytes_2m: number;
  readonly bytes_1g: number;
  /** Buffer bytes the STLB translates at once. */
  readonly covered_bytes: number;
  /** covered_bytes over the mapped bytes (1 when everything fits). */
  readonly coverage: number;
  /** Uniform random accesses: estimated STLB misses per lookup. */
  readonly random_miss_rate: number;
  /** Random accesses of access_bytes: estimated STLB misses per access. */
  readonly misses_per_access: number;
}

/**
 * The CPU translations of a buffer and the STLB's coverage of them. Pages not mapped (shift 0)
 * count for nothing. A 2 MiB leaf partly inside the buffer is one translation.
 */
export function cpu_tlb_reach(
  layout: BufferLayout,
  stlb: StlbConfig = STLB_SKYLAKE_SP,
  access_bytes = 64,
): CpuTlbReport {
  if (!(stlb.shared_4k_2m >= 0) || !(stlb.entries_1g >= 0))
    throw new RangeError(`cpu_tlb_reach: STLB ${stlb.name} has a negative entry count`);
  const shift = layout.map_shift;
  const first_vpn = Math.floor(layout.addr / PAGE_SIZE);
  let n4 = 0;
  let n2 = 0;
  let n1 = 0;
  let p4 = 0;
  let p2 = 0;
  let p1 = 0;
  let prev_shift = 0;
  let prev_id = -1;
  for (let i = 0; i < shift.length; i++) {
    const s = shift[i];
    if (s === 0) {
      prev_shift = 0;
      continue;
    }
    // Which translation of its size the page belongs to (leaves are naturally aligned).
    const id = Math.floor((first_vpn + i) / LEAF_PAGES[s]);
    const fresh = s !== prev_shift || id !== prev_id;
    if (s === MAP_4K) {
      p4++;
      if (fresh) n4++;
    } else if (s === MAP_2M) {
      p2++;
      if (fresh) n2++;
    } else if (s === MAP_1G) {
      p1++;
      if (fresh) n1++;
    }
    prev_shift = s;
    prev_id = id;
  }
  const E = stlb.shared_4k_2m;
  const e2 = Math.min(n2, E);
  const e4 = Math.min(n4, E - e2);
  const e1 = Math.min(n1, stlb.entries_1g);
  const b4 = p4 * PAGE_SIZE;
  const b2 = p2 * PAGE_SIZE;
  const b1 = p1 * PAGE_SIZE;
  const covered = (n2 ? (b2 * e2) / n2 : 0) + (n4 ? (b4 * e4) / n4 : 0) + (n1 ? (b1 * e1) / n1 : 0);
  const mapped = b4 + b2 + b1;

  const shared = entries_by_shift();
  shared[12] = n4;
  shared[21] = n2;
  const huge = entries_by_shift();
  huge[30] = n1;
  const a = estimate_translation_cache(shared, E, access_bytes);
  const b = estimate_translation_cache(huge, stlb.entries_1g, access_bytes);
  const wa = mapped ? (b4 + b2) / mapped : 0;
  const wb = mapped ? b1 / mapped : 0;
  return {
    stlb,
    translations_4k: n4,
    translations_2m: n2,
    translations_1g: n1,
    bytes_4k: b4,
    bytes_2m: b2,
    bytes_1g: b1,
    covered_bytes: covered,
    coverage: mapped ? covered / mapped : 0,
    random_miss_rate: wa * a.random_miss_rate + wb * b.random_miss_rate,
    misses_per_access: wa * a.misses_per_access + wb * b.misses_per_access,
  };
}
