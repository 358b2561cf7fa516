/**
 * Pageblock migratetypes for an imported machine. kpageflags does not export them, but
 * /proc/pagetypeinfo counts the blocks of each type per zone, and where the kernel's unmovable
 * pages sit says which blocks those are.
 *
 * The rule (docs/import.md), in each zone: whole free order-10 and order-9 blocks first, typed as
 * pagetypeinfo's free lists count them per type (an order-10 block's two pageblocks share one
 * type); the other whole free blocks are MOVABLE. Then rank the remaining pageblocks by their
 * kernel pages (slab, page tables, other kernel allocations), most first, then by fewest movable
 * pages, then by pfn: the first ones are UNMOVABLE, the next RECLAIMABLE, the next HIGHATOMIC, as
 * many as pagetypeinfo counts less those the free blocks took, and the rest MOVABLE.
 * Without pagetypeinfo (it is root-only), a block is UNMOVABLE when it holds at least as many
 * kernel pages as movable ones and at least one, else MOVABLE.
 */

import {
  MIGRATE_HIGHATOMIC,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  pageblock_order,
} from '../mm/mmzone.ts';
import {
  PC_ANON,
  PC_FILE,
  PC_FILE_DIRTY,
  PC_FREE,
  PC_HUGETLB,
  PC_KERNEL,
  PC_PGTABLE,
  PC_SHMEM,
  PC_THP,
  PC_UNKNOWN,
} from '../sim/frame_image.ts';
import type { Snapshot } from './read.ts';

const NOT_SET = 255;
// The migratetypes, by /proc/pagetypeinfo's names.
const MT = {
  Unmovable: MIGRATE_UNMOVABLE,
  Movable: MIGRATE_MOVABLE,
  Reclaimable: MIGRATE_RECLAIMABLE,
  HighAtomic: MIGRATE_HIGHATOMIC,
} as const;

export interface PageblockAssignment {
  pageblock_mt: Uint8Array;
  /** What could not be matched, one line each. */
  notes: string[];
}

export function assignPageblocks(s: Snapshot, classes: Uint8Array): PageblockAssignment {
  const nr = classes.length;
  const nblocks = Math.ceil(nr / (1 << pageblock_order));
  const kernel = new Int32Array(nblocks);
  const movable = new Int32Array(nblocks);
  const known = new Int32Array(nblocks);
  const freePages = new Int32Array(nblocks);
  for (let pfn = 0; pfn < nr; pfn++) {
    const c = classes[pfn];
    const pb = pfn >>> pageblock_order;
    if (c === PC_UNKNOWN) continue;
    known[pb]++;
    if (c === PC_FREE) freePages[pb]++;
    else if (c === PC_KERNEL || c === PC_PGTABLE) kernel[pb]++;
    else if (
      c === PC_ANON ||
      c === PC_THP ||
      c === PC_FILE ||
      c === PC_FILE_DIRTY ||
      c === PC_SHMEM ||
      c === PC_HUGETLB
    )
      movable[pb]++;
  }
  const pageblock_mt = new Uint8Array(nblocks).fill(NOT_SET);
  const notes: string[] = [];
  const pti = s.pagetypeinfo;
  for (const z of s.zoneinfo) {
    if (z.start_pfn === undefined || !z.spanned) continue;
    // The blocks whose first pfn is in the zone and that the image describes.
    const blocks: number[] = [];
    // pagetypeinfo counts from the zone's first pfn, so a block the zone starts inside is its.
    const first = Math.floor(z.start_pfn / (1 << pageblock_order));
    const end = Math.min(nblocks, Math.ceil((z.start_pfn + z.spanned) / (1 << pageblock_order)));
    for (let pb = first; pb < end; pb++) if (known[pb]) blocks.push(pb);
    if (!blocks.length) continue;
    const row = pti?.blocks.find((b) => b.node === z.node && b.zone === z.zone);
    if (!pti || !row) {
      for (const pb of blocks)
        pageblock_mt[pb] = kernel[pb] > 0 && kernel[pb] >= movable[pb] ? MT.Unmovable : MT.Movable;
      continue;
    }
    const count = (name: string): number => {
      const i = pti.types.indexOf(name);
      return i < 0 ? 0 : row.count[i];
    };
    const want: Record<keyof typeof MT, number> = {
      Unmovable: count('Unmovable'),
      Movable: Number.POSITIVE_INFINITY,
      Reclaimable: count('Reclaimable'),
      HighAtomic: count('HighAtomic'),
    };
    // Whole free blocks first: a free order-10 block spans two pageblocks of one type (merging
    // retypes the buddy), and pagetypeinfo's free lists say how many of each order each type has.
    const free = (pb: number) => freePages[pb] === 1 << pageblock_order;
    const typed = new Set<number>();
    for (const order of [10, 9]) {
      const span = 1 << (order - pageblock_order);
      const heads = blocks.filter(
        (pb) => pb % span === 0 && !typed.has(pb) && pb + span <= end && known[pb + span - 1] > 0,
      );
      const whole = heads.filter((pb) => {
        for (let k = 0; k < span; k++) if (!free(pb + k) || typed.has(pb + k)) return false;
        return true;
      });
      let next = 0;
      for (const name of ['Unmovable', 'Reclaimable', 'HighAtomic'] as const) {
        const row2 = pti.free.find((f) => f.node === z.node && f.zone === z.zone && f.type === name);
        for (let k = 0; k < (row2?.nr_free[order] ?? 0) && next < whole.length && want[name] >= span; k++) {
          for (let j = 0; j < span; j++) {
            pageblock_mt[whole[next] + j] = MT[name];
            typed.add(whole[next] + j);
          }
          want[name] -= span;
          next++;
        }
      }
      // The rest of the whole free blocks are Movable's, and stay together.
      for (; next < whole.length; next++)
        for (let j = 0; j < span; j++) {
          pageblock_mt[whole[next] + j] = MT.Movable;
          typed.add(whole[next] + j);
        }
    }
    const rest = blocks.filter((pb) => !typed.has(pb));
    rest.sort((a, b) => kernel[b] - kernel[a] || movable[a] - movable[b] || a - b);
    let i = 0;
    for (const name of ['Unmovable', 'Reclaimable', 'HighAtomic'] as const)
      for (let k = 0; k < want[name] && i < rest.length; k++) pageblock_mt[rest[i++]] = MT[name];
    for (; i < rest.length; i++) pageblock_mt[rest[i]] = MT.Movable;
    if (count('CMA'))
      notes.push(
        `zone ${z.zone}: ${count('CMA')} CMA pageblocks are imported as Movable (CMA areas are not rebuilt)`,
      );
    if (count('Isolate'))
      notes.push(`zone ${z.zone}: ${count('Isolate')} isolated pageblocks are imported unisolated`);
  }
  return { pageblock_mt, notes };
}
