/**
 * MAP_CONTIG's policies: how a `mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG)` gets its pages.
 * mmap() (src/vm/process.ts) does the RFC's checks and bookkeeping for every policy: anonymous
 * and private only (EINVAL), MAP_POPULATE | MAP_LOCKED implied with mlock's permission and limit
 * (EPERM, EAGAIN), VM_CONTIG | VM_DONTEXPAND (no growth), faults map the pre-allocated pages, and a
 * fork child gets an ordinary mapping. The policy supplies the pages.
 *
 * - `rfc-poc`, the proof of concept of 2017-10-11 (patch 3/3, __alloc_vma_contig_range()): one
 *   buddy block of get_order(length) from the local node, GFP_HIGHUSER | __GFP_ZERO, nothing
 *   else tried; ENOMEM if the order exceeds MAX_PAGE_ORDER (4 MiB here) or the allocation fails;
 *   the block is split into order-0 pages and the tail beyond `length` freed at once.
 *
 * What the POC's code does beyond its description, and the model with it: VM_DONTEXPAND makes
 * the mapping VM_SPECIAL, so mmap_region() clears its VM_LOCKED (after mlock's checks ran) and
 * its pages go on the ordinary LRU, where compaction may migrate them and break the contiguity
 * (Dave Hansen's question in the thread). The model departs from the POC in two places: MAP_SHARED
 * is refused (the POC would map shmem pages and leak its block), and faults index the block by
 * page offset, not from vm_start (which a partial munmap moves).
 */
import { errnos } from '../lib/errno.ts';
import { __GFP_ZERO, GFP_HIGHUSER } from '../mm/gfp.ts';
import type { MM } from '../mm/mm.ts';
import { get_order, MAX_PAGE_ORDER } from '../mm/mmzone.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { split_page } from '../mm/vmalloc.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import type { MapContigPolicy } from '../vm/vm.ts';

export const MAP_CONTIG_POLICIES = ['rfc-poc'] as const;
export type MapContigPolicyName = (typeof MAP_CONTIG_POLICIES)[number];

const ENOMEM = -errnos.ENOMEM;

/** The policy named `name` for the machine's memory. */
export function map_contig_policy(mm: MM, name: MapContigPolicyName): MapContigPolicy {
  switch (name) {
    case 'rfc-poc':
      return { name, alloc: (task, pages) => rfc_poc_alloc(mm, task, pages) };
  }
}

/** The RFC POC's __alloc_vma_contig_range(): one buddy block, the tail given back. */
function rfc_poc_alloc(mm: MM, task: MmStruct, pages: number): number {
  const order = get_order(pages * 4096);
  if (order > MAX_PAGE_ORDER) return ENOMEM;
  const pfn = __alloc_pages(mm, GFP_HIGHUSER | __GFP_ZERO, order, task.nid, task.cpu);
  if (pfn < 0) return ENOMEM;
  split_page(mm, pfn, order);
  for (let p = pfn + pages; p < pfn + (1 << order); p++) __free_pages(mm, p, 0, task.cpu);
  return pfn;
}
