/**
 * Contiguous allocation (mm/page_alloc.c, CONFIG_CONTIG_ALLOC, Linux 6.18): alloc_contig_range()
 * takes an exact pfn range, whatever is in it, by isolating its pageblocks, migrating (or, for
 * clean page cache, reclaiming) what lives there and taking the freed pages off the ISOLATE free
 * lists; alloc_contig_pages() looks for a range to take, nr_pages-aligned, zone by zone;
 * free_contig_range() gives the pages back.
 *
 * How alloc_contig_range() gets [start, end), with start = 1100 and end = 1300 inside the order-10
 * free block at 1024 of an otherwise busy zone as an example:
 *  1. start_isolate_page_range() isolates pageblocks [1024, 1536): the boundary blocks first
 *     (isolating splits the order-10 block into two order-9 ones, one per pageblock), checked
 *     whole for unmovable pages, then the middle ones; every free page there sits on the ISOLATE
 *     lists, outside NR_FREE_PAGES, where no allocation looks.
 *  2. drain_all_pages(zone) flushes the pcp lists, whose pages of isolated blocks go to the
 *     ISOLATE lists too.
 *  3. __alloc_contig_migrate_range() isolates the movable pages of [1100, 1300) 32 at a time,
 *     drops the clean page-cache ones (reclaim_clean_pages_from_list) and migrates the rest
 *     (MIGRATE_SYNC, MR_CONTIG_RANGE) to pages allocated outside the isolated blocks; a batch that
 *     still fails after 5 tries gives -EBUSY, a migration without a target -ENOMEM.
 *  4. find_large_buddy(1100) finds the free order-9 block at 1024 that straddles start: the
 *     outer range is [1024, 1300). test_pages_isolated() checks that every page of it is free.
 *  5. isolate_freepages_range() takes the free blocks of [1024, 1300) off the lists: the order-9
 *     block at 1024 ends past end, at 1536 (outer_end).
 *  6. split_free_pages() makes them order-0 pages; [1024, 1100) and [1300, 1536) are freed again
 *     (to the ISOLATE lists still).
 *  7. undo_isolate_page_range() clears the isolate bits: the free pages move back to their
 *     pageblocks' own type, and the caller owns exactly [1100, 1300).
 */
import { CompactControl, isolate_freepages_range, isolate_migratepages_range } from '../compaction.ts';
import {
  __GFP_COMP,
  __GFP_DMA,
  __GFP_DMA32,
  __GFP_FS,
  __GFP_HARDWALL,
  __GFP_HIGHMEM,
  __GFP_IO,
  __GFP_MOVABLE,
  __GFP_NOWARN,
  __GFP_RECLAIM,
  __GFP_RECLAIMABLE,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  __GFP_WRITE,
  __GFP_ZERO,
  GFP_TRANSHUGE,
  gfp_zone,
} from '../gfp.ts';
import { folio_maybe_dma_pinned } from '../gup.ts';
import {
  alloc_hugetlb_folio_nodemask,
  folio_hstate,
  folio_isolate_hugetlb,
  folio_putback_hugetlb,
  htlb_modify_alloc_mask,
  replace_free_hugepage_folios,
} from '../hugetlb.ts';
import {
  folio_isolate_lru,
  folio_putback_lru,
  MIGRATE_SYNC,
  migrate_pages,
  type NewFolioOps,
} from '../migrate.ts';
import type { MM } from '../mm.ts';
import { MAX_FOLIO_ORDER, ZONE_MOVABLE, type Zone } from '../mmzone.ts';
import {
  compound_head,
  PB_ISOLATE_MODE_CMA_ALLOC,
  PB_ISOLATE_MODE_OTHER,
  start_isolate_page_range,
  test_pages_isolated,
  undo_isolate_page_range,
} from '../page_isolation.ts';
import {
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_lru,
  PG_reserved,
  PG_swapbacked,
  PG_tail,
  PG_unevictable,
  PGI_alloc,
  PGI_nopage,
} from '../page-flags.ts';
import { reclaim_pages } from '../vmscan.ts';
import { __alloc_pages, __free_pages } from './alloc_pages.ts';
import { find_large_buddy } from './isolate.ts';
import { drain_all_pages } from './pcp.ts';
import { prep_new_page } from './rmqueue.ts';

const EINTR = -4;
const EAGAIN = -11;
const ENOMEM = -12;
const EBUSY = -16;
const EINVAL = -22;

/** acr_flags_t (include/linux/gfp.h): an ordinary request, or one for CMA. */
export const ACR_FLAGS_NONE = 0;
export const ACR_FLAGS_CMA = 1 << 0;

/**
 * __GFP_ZEROTAGS (bit 23) zeroes memory tags; __GFP_SKIP_ZERO and __GFP_SKIP_KASAN are 0 without
 * CONFIG_KASAN_HW_TAGS, as on x86-64. The model keeps no memory contents, so they change nothing
 * but are accepted where 6.18 accepts them.
 */
const __GFP_ZEROTAGS = 1 << 23;

/** The CPU and task an alloc_contig_range() call runs in. */
export interface ContigTask {
  /** The CPU it runs on: drains, migration targets and frees use its pcp lists. Default 0. */
  cpu?: number;
  /** fatal_signal_pending(current), asked before each migration step: true gives -EINTR. */
  fatal_signal_pending?: () => boolean;
}

/** compact_control by nesting depth (a migration target allocation may compact, not nest here). */
const ccs: CompactControl[] = [];
let cc_depth = 0;

/**
 * alloc_migration_target() with the migration_target_control of __alloc_contig_migrate_range():
 * an order-0 page from the allocator, on the range's node (other nodes by the zonelist),
 * __GFP_HIGHMEM added for pages of ZONE_MOVABLE so that they stay there. It can never come from
 * the range itself: its pageblocks are isolated and the ISOLATE lists are never allocated from.
 */
class ContigMigrationTarget implements NewFolioOps {
  mm!: MM;
  gfp_mask = 0;
  nid = 0;
  cpu = 0;
  readonly pf_memalloc = false;

  get_new_folio(src: number): number {
    let gfp_mask = this.gfp_mask;
    let order = 0;
    // folio_test_hugetlb(src): a pool page of its size, on this node (MR_CONTIG_RANGE allows no
    // fallback); no put_new_folio: an unused one is folio_put() back to the pool.
    if (this.mm.frames.flags[src] & PG_hugetlb) {
      const h = folio_hstate(this.mm, src);
      return alloc_hugetlb_folio_nodemask(this.mm, h, this.nid, htlb_modify_alloc_mask(h, gfp_mask), false);
    }
    // folio_test_large(src) (a THP): GFP_TRANSHUGE without the caller's reclaim bits.
    if (this.mm.frames.flags[src] & PG_head) {
      gfp_mask = (gfp_mask & ~__GFP_RECLAIM) | GFP_TRANSHUGE;
      order = this.mm.frames.order[src];
    }
    const zidx = this.mm.page_zone(src)!.zone_idx;
    if (zidx === ZONE_MOVABLE) gfp_mask |= __GFP_HIGHMEM;
    // __folio_alloc(gfp_mask, order, nid, NULL)
    return __alloc_pages(this.mm, gfp_mask, order, this.nid, this.cpu);
  }

  /** No put_new_folio: an unused target is put (freed). */
  put_new_folio(dst: number): void {
    __free_pages(this.mm, dst, this.mm.frames.order[dst], this.cpu);
  }
}
const mtcs: ContigMigrationTarget[] = [];

/**
 * kernel: mm/page_alloc.c __alloc_contig_verify_gfp_mask()
 * Zone, node, mobility and placement hints are ignored; only reclaim modifiers and a few action
 * flags (__GFP_COMP, __GFP_RETRY_MAYFAIL, __GFP_NOWARN, __GFP_ZERO, __GFP_ZEROTAGS) are allowed:
 * anything else (__GFP_NOFAIL, __GFP_NORETRY, __GFP_HIGH, ...) is -EINVAL. Returns the mask that
 * migration and reclaim use: the reclaim flags, __GFP_RETRY_MAYFAIL (always) and __GFP_NOWARN,
 * plus __GFP_MOVABLE; or -EINVAL.
 */
export function __alloc_contig_verify_gfp_mask(gfp_mask: number): number {
  const reclaim_mask = __GFP_IO | __GFP_FS | __GFP_RECLAIM;
  const action_mask = __GFP_COMP | __GFP_RETRY_MAYFAIL | __GFP_NOWARN | __GFP_ZERO | __GFP_ZEROTAGS;
  const cc_action_mask = __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
  const GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
  gfp_mask &= ~(
    GFP_ZONEMASK |
    __GFP_RECLAIMABLE |
    __GFP_WRITE |
    __GFP_HARDWALL |
    __GFP_THISNODE |
    __GFP_MOVABLE
  );
  if (gfp_mask & ~(reclaim_mask | action_mask)) return EINVAL;
  return (gfp_mask & (reclaim_mask | cc_action_mask)) | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL;
}

/**
 * kernel: mm/vmscan.c reclaim_clean_pages_from_list()
 * Instead of migrating them, drop the clean page-cache pages of cc.migratepages (file LRU, not
 * dirty, not unevictable; lazyfree anonymous pages count as file LRU): shrink_folio_list() with
 * references ignored, unmapping them if mapped. Freed pages leave the list; the others stay on it.
 * Returns the pages freed.
 *
 * The model's pages on cc.migratepages are isolated (off the LRU, counted in nr_isolated_*);
 * reclaim_pages() wants LRU pages, so the candidates go back on the LRU for the call and those it
 * could not free are taken off again, which also moves a lazyfree page that turned out dirty to
 * the anonymous isolated count (the kernel's nr_lazyfree_fail compensation).
 */
function reclaim_clean_pages_from_list(cc: CompactControl): number {
  const mm = cc.mm;
  const f = mm.frames;
  const list = cc.migratepages;
  const clean: number[] = [];
  for (let i = 0; i < cc.nr_migratelist; i++) {
    const pfn = list[i];
    const fl = f.flags[pfn];
    if (!(fl & PG_hugetlb) && !(fl & PG_swapbacked) && !(fl & PG_dirty) && !(fl & PG_unevictable))
      clean.push(pfn);
  }
  if (clean.length === 0) return 0;
  for (const pfn of clean) folio_putback_lru(mm, pfn);
  const nr_reclaimed = reclaim_pages(mm, clean, cc.cpu);
  // list_splice(&clean_folios, folio_list): what was not freed is isolated again.
  let n = 0;
  for (let i = 0; i < cc.nr_migratelist; i++) {
    const pfn = list[i];
    if (clean.includes(pfn) && !folio_isolate_lru(mm, pfn)) continue; // freed
    list[n++] = pfn;
  }
  cc.nr_migratelist = n;
  return nr_reclaimed;
}

/** The migration list in the kernel's (LIFO) order, reused. */
let lifo = new Int32Array(64);

/** putback_movable_pages(&cc->migratepages) */
function putback_movable_pages(cc: CompactControl): void {
  for (let i = cc.nr_migratelist - 1; i >= 0; i--) {
    const pfn = cc.migratepages[i];
    if (cc.mm.frames.flags[pfn] & PG_hugetlb) folio_putback_hugetlb(cc.mm, pfn);
    else folio_putback_lru(cc.mm, pfn);
  }
  cc.nr_migratelist = 0;
}

/**
 * kernel: mm/page_alloc.c __alloc_contig_migrate_range()
 * Empty [start, end) of one zone, based on compact_zone(): isolate its movable pages
 * (isolate_migratepages_range, 32 at a time), drop the clean page-cache ones, migrate the rest
 * with MIGRATE_SYNC (MR_CONTIG_RANGE). Pages that fail stay on the list and are retried; once the
 * same list has been tried 5 times, -EBUSY. A pending fatal signal gives -EINTR, a migration with
 * no target page -ENOMEM (at once). On an error the pages left are put back on the LRU.
 *
 * lru_cache_disable() drains and disables the per-CPU LRU batches, which the model does not have.
 * The kernel's migrate_pages() leaves failed pages on cc->migratepages; the model's puts them back
 * on the LRU, so they are taken off again here.
 */
function __alloc_contig_migrate_range(
  cc: CompactControl,
  start: number,
  end: number,
  mtc: ContigMigrationTarget,
  fatal_signal_pending: (() => boolean) | null,
): number {
  const mm = cc.mm;
  const f = mm.frames;
  let pfn = start;
  let tries = 0;
  let ret = 0;
  mtc.mm = mm;
  mtc.nid = cc.zone.nid;
  mtc.gfp_mask = cc.gfp_mask;
  mtc.cpu = cc.cpu;
  while (pfn < end || cc.nr_migratelist > 0) {
    if (fatal_signal_pending?.()) {
      ret = EINTR;
      break;
    }
    if (cc.nr_migratelist === 0) {
      cc.nr_migratepages = 0;
      ret = isolate_migratepages_range(cc, pfn, end);
      if (ret && ret !== EAGAIN) break;
      // Nothing isolated and no progress: only invalid pageblocks (holes) are left, where the
      // kernel would loop for ever; the model moves on to the end.
      if (cc.migrate_pfn <= pfn && cc.nr_migratelist === 0) pfn = end;
      else pfn = cc.migrate_pfn;
      tries = 0;
    } else if (++tries === 5) {
      ret = EBUSY;
      break;
    }
    const nr_reclaimed = reclaim_clean_pages_from_list(cc);
    cc.nr_migratepages -= nr_reclaimed;
    // The kernel's list is LIFO: the last page isolated migrates first.
    const n = cc.nr_migratelist;
    const list = cc.migratepages;
    if (lifo.length < n) lifo = new Int32Array(Math.max(n, lifo.length * 2));
    for (let i = 0; i < n; i++) lifo[i] = list[n - 1 - i];
    const r = migrate_pages(mm, lifo, mtc, MIGRATE_SYNC, n);
    // Failed pages went back on their LRU lists (hugetlb ones: migratable again): they stay on
    // the list, in the same order. A migrated hugetlb source is a free pool page or buddy now.
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const p = list[i];
      if (
        f.flags[p] & PG_hugetlb
          ? folio_isolate_hugetlb(mm, p)
          : f.flags[p] & PG_lru && folio_isolate_lru(mm, p)
      )
        list[kept++] = p;
    }
    cc.nr_migratelist = kept;
    cc.nr_migratepages = kept;
    ret = r.err ? r.err : r.failed;
    // On -ENOMEM migrate_pages() bails out at once; retrying is pointless.
    if (ret === ENOMEM) break;
  }
  // lru_cache_enable()
  if (ret < 0) {
    // alloc_contig_dump_pages(): only with dynamic debug enabled for it.
    putback_movable_pages(cc);
  }
  return Math.min(ret, 0); // (ret < 0) ? ret : 0
}

/**
 * kernel: mm/page_alloc.c split_free_pages()
 * Make every block isolate_freepages_range() took a run of allocated order-0 pages
 * (post_alloc_hook(), set_page_refcounted(), split_page()).
 */
function split_free_pages(cc: CompactControl, gfp_mask = 0): void {
  const f = cc.mm.frames;
  // post_alloc_hook() on each block: kernel_init_pages() clears it for __GFP_ZERO.
  if (gfp_mask & __GFP_ZERO) cc.mm.kernel_ns += cc.mm.cost.clear_page * cc.nr_freepages;
  for (let order = 0; order < cc.freepages.length; order++) {
    const list = cc.freepages[order];
    while (list.count) {
      const pfn = list.take_head();
      const end = pfn + (1 << order);
      for (let p = pfn; p < end; p++) {
        f.flags[p] |= PGI_alloc;
        f.order[p] = 0;
      }
    }
  }
  cc.nr_freepages = 0;
}

/** Empty cc.freepages, whose blocks become plain frames again (the caller makes them a page). */
function drop_free_lists(cc: CompactControl): void {
  const f = cc.mm.frames;
  for (let order = 0; order < cc.freepages.length; order++) {
    const list = cc.freepages[order];
    while (list.count) {
      const pfn = list.take_head();
      f.flags[pfn] &= ~PGI_alloc;
      f.order[pfn] = 0;
    }
  }
  cc.nr_freepages = 0;
}

/** ilog2() of a positive integer (may exceed 2^31). */
function ilog2(n: number): number {
  return Math.floor(Math.log2(n));
}

function is_power_of_2(n: number): boolean {
  return n > 0 && 2 ** ilog2(n) === n;
}

/** WARN() of mm/page_alloc.c: the message, then the WARNING line (no registers or stack). */
function WARN(mm: MM, cpu: number, line: number, fn: string, msg: string): void {
  if (msg) mm.klog.push(msg);
  mm.klog.push(`WARNING: CPU: ${cpu} at mm/page_alloc.c:${line} ${fn}`);
}

/** WARN_ON_ONCE(): the sites that fired are kept per machine (mm.warned_once). */
function WARN_ON_ONCE(mm: MM, cpu: number, line: number, fn: string): void {
  const site = `contig:${line}`;
  if (mm.warned_once.has(site)) return;
  mm.warned_once.add(site);
  WARN(mm, cpu, line, fn, '');
}

/**
 * kernel: mm/page_alloc.c alloc_contig_range_noprof()
 * Allocate exactly the pages [start, end) of one zone (not necessarily pageblock-aligned): 0 and
 * they are the caller's (order-0 pages, or with __GFP_COMP one compound page, for a
 * power-of-two range aligned to its size), to free with free_contig_range(); or -EBUSY
 * (something could not be isolated, moved, or freed), -ENOMEM (no page to migrate to), -EINTR (a
 * fatal signal), -EINVAL (a gfp flag outside the allowed ones; a compound request that is too
 * large or does not make a compound page). `alloc_flags` ACR_FLAGS_CMA isolates for CMA (its
 * pageblocks are then movable). The isolation is undone whatever the outcome: every pageblock of
 * the range that is isolated when it ends, whoever isolated it, as in 6.18.
 */
export function alloc_contig_range(
  mm: MM,
  start: number,
  end: number,
  alloc_flags: number,
  gfp_mask: number,
  task: ContigTask = {},
): number {
  const cpu = task.cpu ?? 0;
  const order = ilog2(end - start);
  const zone = mm.page_zone(start)!;
  // Orders above MAX_PAGE_ORDER are fine here, but not above the largest folio.
  if (gfp_mask & __GFP_COMP && order > MAX_FOLIO_ORDER) {
    WARN_ON_ONCE(mm, cpu, 6976, 'alloc_contig_range_noprof');
    return EINVAL;
  }
  // current_gfp_context(): a PF_MEMALLOC_PIN task allocates nothing movable.
  if (mm.pf_memalloc_pin) gfp_mask &= ~__GFP_MOVABLE;
  const cc_gfp = __alloc_contig_verify_gfp_mask(gfp_mask);
  if (cc_gfp === EINVAL) return EINVAL;
  if (cc_depth === ccs.length) {
    ccs.push(new CompactControl());
    mtcs.push(new ContigMigrationTarget());
  }
  const cc = ccs[cc_depth];
  const mtc = mtcs[cc_depth];
  cc_depth++;
  try {
    cc.reset(mm, zone, cpu);
    cc.order = -1;
    cc.mode = MIGRATE_SYNC;
    cc.ignore_skip_hint = true;
    cc.no_set_skip_hint = true;
    cc.alloc_contig = true;
    cc.gfp_mask = cc_gfp;
    const mode = alloc_flags & ACR_FLAGS_CMA ? PB_ISOLATE_MODE_CMA_ALLOC : PB_ISOLATE_MODE_OTHER;
    const ret = __alloc_contig_range(mm, cc, mtc, start, end, mode, gfp_mask, order, task);
    undo_isolate_page_range(mm, start, end);
    // The scans of isolate_migratepages_range() and isolate_freepages_range() (compact_zone()
    // charges its own).
    mm.kernel_ns +=
      cc.total_migrate_scanned * mm.cost.migrate_scan_pfn + cc.total_free_scanned * mm.cost.free_scan_pfn;
    return ret;
  } finally {
    cc_depth--;
  }
}

/** alloc_contig_range_noprof() from start_isolate_page_range() to `done:`. */
function __alloc_contig_range(
  mm: MM,
  cc: CompactControl,
  mtc: ContigMigrationTarget,
  start: number,
  end: number,
  mode: number,
  gfp_mask: number,
  order: number,
  task: ContigTask,
): number {
  // Mark every pageblock of the range MIGRATE_ISOLATE; start_isolate_page_range() copes with
  // pageblocks and max-order pages of different sizes.
  let ret = start_isolate_page_range(mm, start, end, mode);
  if (ret) return ret;
  drain_all_pages(mm, cc.zone, cc.cpu);
  // -EBUSY falls through: the busy pages may have become free since, and test_pages_isolated()
  // tells (its tracepoint reports the busy pfn).
  ret = __alloc_contig_migrate_range(cc, start, end, mtc, task.fatal_signal_pending ?? null);
  if (ret && ret !== EBUSY) return ret;
  // Migrated hugetlb pages may have gone back to the pool inside the range: replace them too.
  ret = replace_free_hugepage_folios(mm, start, end, cc.cpu);
  if (ret) return ret;
  // The free pages at the ends may be parts of larger buddies: take those whole (from
  // outer_start, and up to outer_end) and free the pieces outside [start, end).
  const outer_start = find_large_buddy(mm, start);
  // Make sure the range is really isolated.
  if (test_pages_isolated(mm, outer_start, end, mode)) return EBUSY;
  // Grab the isolated pages from the free lists.
  const outer_end = isolate_freepages_range(cc, outer_start, end);
  if (!outer_end) return EBUSY;
  if (!(gfp_mask & __GFP_COMP)) {
    split_free_pages(cc, gfp_mask);
    // Free head and tail (if any).
    if (start !== outer_start) free_contig_range(mm, outer_start, start - outer_start, cc.cpu);
    if (end !== outer_end) free_contig_range(mm, end, outer_end - end, cc.cpu);
    return 0;
  }
  // The model also wants the compound page aligned to its size: an unaligned one would corrupt
  // the buddy lists when freed (split_large_buddy() warns of it in the kernel). Callers (hugetlb,
  // CMA) only ask for aligned ones.
  if (
    start === outer_start &&
    end === outer_end &&
    is_power_of_2(end - start) &&
    start % (end - start) === 0
  ) {
    // check_new_pages(), prep_new_page(), set_page_refcounted(): one compound page.
    drop_free_lists(cc);
    prep_new_page(mm, start, order, gfp_mask);
    return 0;
  }
  // The kernel leaves the pages it took isolated (allocated, owned by nobody).
  WARN(
    mm,
    cc.cpu,
    7082,
    'alloc_contig_range_noprof',
    `PFN range: requested [${start}, ${end}), allocated [${outer_start}, ${outer_end})`,
  );
  split_free_pages(cc);
  return EINVAL;
}

/**
 * kernel: mm/page_alloc.c pfn_range_valid_contig()
 * Whether alloc_contig_pages() tries [start_pfn, start_pfn + nr_pages): every pfn online, in
 * `z`, not reserved (holes included) and not part of a hugetlb page. In-use pages are fine:
 * alloc_contig_range() migrates them.
 */
export function pfn_range_valid_contig(mm: MM, z: Zone, start_pfn: number, nr_pages: number): boolean {
  const end_pfn = start_pfn + nr_pages;
  const flags = mm.frames.flags;
  const scan = mm.cost.migrate_scan_pfn;
  for (let i = start_pfn; i < end_pfn; i++) {
    mm.kernel_ns += scan;
    if (i >= mm.frames.nr_frames || !mm.pfn_online(i)) return false;
    if (mm.page_zone(i) !== z) return false;
    if (flags[i] & (PG_reserved | PGI_nopage)) return false;
    if (flags[i] & PG_hugetlb) return false;
  }
  return true;
}

/** kernel: mm/page_alloc.c zone_spans_last_pfn() */
export function zone_spans_last_pfn(zone: Zone, start_pfn: number, nr_pages: number): boolean {
  const last_pfn = start_pfn + nr_pages - 1;
  return zone.zone_spans_pfn(last_pfn);
}

/** ALIGN(x, a) with the kernel's mask arithmetic (for a that is not a power of two as well). */
function ALIGN(x: number, a: number): number {
  const mask = BigInt(a) - 1n;
  return Number((BigInt(x) + mask) & ~mask);
}

/**
 * kernel: mm/page_alloc.c alloc_contig_pages_noprof()
 * Find and allocate `nr_pages` contiguous pages: in the zones of `nid`'s zonelist the gfp allows
 * (its own node only with __GFP_THISNODE; only nodes in `nodemask` if given), highest zone
 * first, try every range aligned to nr_pages (ALIGN(zone_start_pfn, nr_pages), then steps of
 * nr_pages) that pfn_range_valid_contig() accepts, with alloc_contig_range(); the first that
 * succeeds is returned (its first pfn), -1 (NULL) if none does. A range that fails does not stop
 * the search. A power-of-two request is naturally aligned (1 GiB at a 1 GiB boundary).
 */
export function alloc_contig_pages(
  mm: MM,
  nr_pages: number,
  gfp_mask: number,
  nid: number,
  nodemask: readonly number[] | null,
  task: ContigTask = {},
): number {
  const node = mm.nodes[nid];
  const zonelist = gfp_mask & __GFP_THISNODE ? node.zonelist_nofallback : node.zonelist_fallback;
  const highest_zoneidx = gfp_zone(gfp_mask);
  for (const id of zonelist) {
    const zone = mm.zones[id];
    if (zone.zone_idx > highest_zoneidx) continue;
    if (nodemask !== null && !nodemask.includes(zone.nid)) continue;
    let pfn = ALIGN(zone.zone_start_pfn, nr_pages);
    while (zone_spans_last_pfn(zone, pfn, nr_pages)) {
      if (pfn_range_valid_contig(mm, zone, pfn, nr_pages)) {
        // __alloc_contig_pages()
        const ret = alloc_contig_range(mm, pfn, pfn + nr_pages, ACR_FLAGS_NONE, gfp_mask, task);
        if (!ret) return pfn;
      }
      pfn += nr_pages;
    }
  }
  return -1;
}

/**
 * kernel: mm/page_alloc.c free_contig_range()
 * Free what alloc_contig_range() gave: a compound page whole (nr_pages must be its size, else a
 * warning and nothing is freed), otherwise each order-0 page (the kernel's __free_page() puts
 * one reference; a page still referenced, here a pinned one, stays and is counted in a warning).
 */
export function free_contig_range(mm: MM, pfn: number, nr_pages: number, cpu = 0): void {
  const f = mm.frames;
  let count = 0;
  // folio_test_large(pfn_folio(pfn))
  if (f.flags[pfn] & (PG_head | PG_tail)) {
    const head = compound_head(mm, pfn);
    const order = f.order[head];
    const expected = 2 ** order;
    if (nr_pages === expected)
      __free_pages(mm, head, order, cpu); // folio_put()
    else WARN(mm, cpu, 7203, 'free_contig_range', `PFN ${pfn}: nr_pages ${nr_pages} != expected ${expected}`);
    return;
  }
  for (; nr_pages--; pfn++) {
    if (folio_maybe_dma_pinned(mm, pfn)) {
      count++;
      continue;
    }
    __free_pages(mm, pfn, 0, cpu);
  }
  if (count !== 0) WARN(mm, cpu, 7214, 'free_contig_range', `${count} pages are still in use!`);
}
