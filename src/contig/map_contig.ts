/**
 * MAP_CONTIG's policies: how a `mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG)` gets its pages.
 * mmap() (src/vm/process.ts) does the RFC's checks and bookkeeping for every policy: anonymous
 * and private only (EINVAL), MAP_POPULATE | MAP_LOCKED implied with mlock's permission and limit
 * (EPERM, EAGAIN), VM_CONTIG (no growth, no merging), faults map the pre-allocated pages. The
 * policy supplies the pages and says what happens to them (docs/map-contig.md).
 *
 * - `rfc-poc`, the proof of concept of 2017-10-11 (patch 3/3, __alloc_vma_contig_range()): one
 *   buddy block of get_order(length) from the local node, GFP_HIGHUSER | __GFP_ZERO, nothing
 *   else tried; ENOMEM if the order exceeds MAX_PAGE_ORDER (4 MiB here) or the allocation fails;
 *   the block is split into order-0 pages and the tail beyond `length` freed at once. Its
 *   VM_DONTEXPAND makes the mapping VM_SPECIAL, so mmap_region() clears its VM_LOCKED (after
 *   mlock's checks ran) and its pages go on the ordinary LRU, where compaction may migrate them
 *   (Dave Hansen's question in the thread). A fork child gets an ordinary copy-on-write mapping.
 *   The model departs from the POC where the POC is broken: MAP_SHARED is refused (the POC
 *   would map shmem pages and leak its block), faults index the block by page offset (not from
 *   vm_start, which a partial munmap moves), and a page zapped by MADV_DONTNEED is not mapped
 *   again (the POC would map the freed page).
 * - `rfc`, the design the thread converged on: any size, through a buddy block up to 4 MiB or
 *   alloc_contig_pages() (isolation and migration), exactly `length` kept and the rest of the range back in the pools, zeroed.
 *   The mapping holds its pages: each is pinned while mapped (migration, compaction and reclaim
 *   leave pinned pages alone), the mapping stays VM_LOCKED (munlock changes nothing), advice
 *   that would drop, age or collapse them is EINVAL, and a fork child does not get the mapping
 *   (as if MADV_DONTFORK, Dave Hansen's suggestion; MADV_DOFORK is EINVAL). A page is freed when it
 *   leaves the mapping (munmap, a shrinking mremap, exit). With MAP_CONTIG_BEST_EFFORT it never
 *   fails for fragmentation: the fewest, largest buddy blocks it can get (compaction allowed
 *   within a budget of simulated time), reported as segments.
 * - `bounded`: `rfc` under the admin bounds of bounds.ts with their limits on.
 */
import { errnos } from '../lib/errno.ts';
import { __GFP_ZERO, GFP_HIGHUSER } from '../mm/gfp.ts';
import { try_grab_folio, unpin_folio } from '../mm/gup.ts';
import type { MM } from '../mm/mm.ts';
import { get_order, MAX_PAGE_ORDER } from '../mm/mmzone.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { split_page } from '../mm/vmalloc.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import type { ContigBacking, ContigCaller, MapContigPolicy } from '../vm/vm.ts';
import { contig_alloc, pfn_run } from './contig_alloc.ts';

export const MAP_CONTIG_POLICIES = ['rfc-poc', 'rfc', 'bounded'] as const;
export type MapContigPolicyName = (typeof MAP_CONTIG_POLICIES)[number];

/**
 * The admin's say over who gets contiguous memory and how much (bounds.ts): admit() charges a
 * request to the caller or refuses it with -errno (and a reason in `refusal`); release() gives
 * back pages as they leave their mappings.
 */
export interface ContigAdmission {
  admit(caller: ContigCaller, pages: number): number;
  release(uid: number, pages: number): void;
  readonly refusal: string;
}

const ENOMEM = -errnos.ENOMEM;

/**
 * The policy named `name` for the machine's memory. `admission` applies to `rfc` and `bounded`
 * (the POC had none); without it every request is admitted.
 */
export function map_contig_policy(
  mm: MM,
  name: MapContigPolicyName,
  admission: ContigAdmission | null = null,
): MapContigPolicy {
  return name === 'rfc-poc' ? new RfcPocPolicy(mm) : new RfcPolicy(mm, name, admission);
}

class RfcPocPolicy implements MapContigPolicy {
  readonly name = 'rfc-poc';
  readonly holds_pages = false;
  readonly dontfork = false;
  readonly refusal = 'no buddy block of that order (the POC tries one, up to 4 MiB)';

  constructor(private readonly mm: MM) {}

  /** The RFC POC's __alloc_vma_contig_range(): one buddy block, the tail given back. */
  alloc(task: MmStruct, caller: ContigCaller, pages: number): ContigBacking | number {
    const mm = this.mm;
    const order = get_order(pages * 4096);
    if (order > MAX_PAGE_ORDER) return ENOMEM;
    const pfn = __alloc_pages(mm, GFP_HIGHUSER | __GFP_ZERO, order, task.nid, task.cpu);
    if (pfn < 0) return ENOMEM;
    split_page(mm, pfn, order);
    for (let p = pfn + pages; p < pfn + (1 << order); p++) __free_pages(mm, p, 0, task.cpu);
    return { policy: this, pfns: pfn_run(pfn, pages), uid: caller.uid, mapped: pages };
  }

  /** The page went with its last mapping, as any anonymous page does. */
  unmapped(): void {}
}

class RfcPolicy implements MapContigPolicy {
  readonly holds_pages = true;
  readonly dontfork = true;
  refusal = '';

  constructor(
    private readonly mm: MM,
    readonly name: 'rfc' | 'bounded',
    private readonly admission: ContigAdmission | null,
  ) {}

  alloc(task: MmStruct, caller: ContigCaller, pages: number, best_effort: boolean): ContigBacking | number {
    const admitted = this.admission ? this.admission.admit(caller, pages) : 0;
    if (admitted < 0) {
      this.refusal = this.admission!.refusal;
      return admitted;
    }
    const pfns = contig_alloc(this.mm, pages, best_effort ? 'best-effort' : 'strict', task.nid, task.cpu);
    if (pfns === null) {
      this.admission?.release(caller.uid, pages);
      this.refusal = best_effort
        ? 'out of memory'
        : `no ${pages} contiguous pages could be freed up (alloc_contig_pages)`;
      return ENOMEM;
    }
    for (let i = 0; i < pages; i++) try_grab_folio(this.mm, pfns[i]);
    return { policy: this, pfns, uid: caller.uid, mapped: pages };
  }

  /** The mapping lets the page go: its pin drops, which frees it (nothing else holds it). */
  unmapped(backing: ContigBacking, pfn: number, cpu: number): void {
    unpin_folio(this.mm, pfn, cpu);
    this.admission?.release(backing.uid, 1);
  }
}
