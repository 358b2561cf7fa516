/**
 * Page migration (mm/migrate.c): move an LRU page's contents, identity and mappings to a new
 * page. migrate_pages() takes isolated pages; for each it allocates a target (or takes one from
 * the caller's get_new_folio(), as compaction does), copies the page's state (page-cache or
 * swap-cache slot, anon_vma and index, LRU list, dirty/mlock state and their counters), repoints
 * every PTE through the rmap (the kernel's migration entries, made and removed in one step here:
 * nothing runs in between), and frees the old page.
 *
 * Failure causes as in the kernel: a pinned page (its reference count is not what the mapping
 * explains: -EAGAIN, retried, then a failure), a page under writeback or locked in the async
 * modes (-EBUSY), no target page (-ENOMEM, which stops the whole call). Order-0 pages only;
 * compound pages (THP) arrive with issue 5's large folios.
 */
import {
  type AddressSpace,
  folio_end_writeback,
  is_file_page,
  NR_FILE_DIRTY,
  NR_FILE_MAPPED,
  NR_FILE_PAGES,
  NR_SHMEM,
} from './filemap.ts';
import { __GFP_RECLAIM, GFP_TRANSHUGE } from './gfp.ts';
import { folio_maybe_dma_pinned } from './gup.ts';
import { hugepage_migration_supported, pages_per_huge_page } from './hstate.ts';
import { folio_nr_pages, HPAGE_PMD_ORDER, thp } from './huge_memory.ts';
import {
  alloc_hugetlb_folio_nodemask,
  folio_hstate,
  folio_put_hugetlb_migrated,
  folio_putback_hugetlb,
  htlb_modify_alloc_mask,
  hugetlb_migrate_nr_hugetlb,
  move_hugetlb_state,
} from './hugetlb.ts';
import { lruvec_add_folio, lruvec_del_folio } from './lru.ts';
import type { MM } from './mm.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_tail,
  PG_unevictable,
  PG_uptodate,
  PG_workingset,
  PG_writeback,
} from './page-flags.ts';
import { NR_MLOCK, NR_ZONE_WRITE_PENDING, node_stat_index, vm_event_index } from './vmstat_items.ts';

/** enum migrate_mode */
export const MIGRATE_ASYNC = 0;
export const MIGRATE_SYNC_LIGHT = 1;
export const MIGRATE_SYNC = 2;

/** enum migrate_reason (the ones the model uses) */
export const MR_COMPACTION = 0;
export const MR_MEMORY_FAILURE = 1;
export const MR_MEMORY_HOTPLUG = 2;
export const MR_SYSCALL = 3;
export const MR_MEMPOLICY_MBIND = 4;
export const MR_NUMA_MISPLACED = 5;
export const MR_CONTIG_RANGE = 6;
export const MR_LONGTERM_PIN = 7;
export const MR_DEMOTION = 8;

/** NR_MAX_MIGRATE_PAGES_RETRY: attempts per page before -EAGAIN becomes a failure. */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;

const PGMIGRATE_SUCCESS = vm_event_index('pgmigrate_success');
const PGMIGRATE_FAIL = vm_event_index('pgmigrate_fail');
const NR_ISOLATED_ANON = node_stat_index('nr_isolated_anon');
const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');
const NR_SWAPCACHE = node_stat_index('nr_swapcached');
const NR_ANON_THPS = node_stat_index('nr_anon_transparent_hugepages');
const THP_MIGRATION_SUCCESS = vm_event_index('thp_migration_success');
const THP_MIGRATION_FAIL = vm_event_index('thp_migration_fail');
const THP_MIGRATION_SPLIT = vm_event_index('thp_migration_split');

/** struct migration_target_control: where targets come from. */
export interface MigrationTarget {
  gfp: number;
  /** Preferred node, or -1 for the page's own (NUMA_NO_NODE). */
  nid: number;
  cpu: number;
}

/**
 * kernel: mm/vmscan.c folio_isolate_lru()
 * Take a page off its LRU list for migration (nr_isolated_*). False if it is not on one.
 */
export function folio_isolate_lru(mm: MM, pfn: number): boolean {
  const f = mm.frames;
  if (!(f.flags[pfn] & PG_lru)) return false;
  lruvec_del_folio(mm, pfn);
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_ISOLATED_ANON + (f.flags[pfn] & PG_swapbacked ? 0 : 1)] +=
    folio_nr_pages(mm, pfn);
  return true;
}

/** kernel: mm/migrate.c folio_putback_lru() for an isolated page. */
export function folio_putback_lru(mm: MM, pfn: number): void {
  const f = mm.frames;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_ISOLATED_ANON + (f.flags[pfn] & PG_swapbacked ? 0 : 1)] -=
    folio_nr_pages(mm, pfn);
  lruvec_add_folio(mm, pfn);
}

/**
 * migrate_folio_move() for an isolated large anon folio and a target of its order: all its
 * pages' identities and mappings (a PMD-sized one's PMDs, and PTEs) move, with the entire
 * mapcount (PMD order only) and the deferred split state; one copy per page.
 */
function move_large_folio(mm: MM, old: number, dst: number, cpu: number): void {
  const f = mm.frames;
  const s = thp(mm);
  const order = f.order[old];
  const nr = 1 << order;
  const pmd = order === HPAGE_PMD_ORDER;
  // prep_compound_page() for a target that came off compaction's free lists.
  if (!(f.flags[dst] & PG_head)) {
    f.flags[dst] |= PG_head;
    for (let i = 1; i < nr; i++) f.flags[dst + i] |= PG_tail;
  }
  const oi = old >> HPAGE_PMD_ORDER;
  const di = dst >> HPAGE_PMD_ORDER;
  const entire = pmd ? s.entire_mapcount[oi] : 0;
  const zo = mm.page_zone(old)!;
  const zn = mm.page_zone(dst)!;
  let mapped = 0;
  for (let i = 0; i < nr; i++) if (entire > 0 || f.mapcount[old + i] > 0) mapped++;
  if (zo !== zn) {
    const no = mm.nodes[zo.nid].vm_stat;
    const nn = mm.nodes[zn.nid].vm_stat;
    no[NR_ANON_MAPPED] -= mapped;
    nn[NR_ANON_MAPPED] += mapped;
    if (entire > 0) {
      no[NR_ANON_THPS] -= nr;
      nn[NR_ANON_THPS] += nr;
    }
    if (f.flags[old] & PG_mlocked) {
      zo.vm_stat[NR_MLOCK] -= nr;
      zn.vm_stat[NR_MLOCK] += nr;
    }
  }
  f.flags[dst] = (f.flags[dst] & ~MIGRATE_FLAGS) | (f.flags[old] & MIGRATE_FLAGS);
  for (let i = 0; i < nr; i++) {
    f.mapping[dst + i] = f.mapping[old + i];
    f.index[dst + i] = f.index[old + i];
    if (i > 0) f.flags[dst + i] |= f.flags[old + i] & (PG_anon | PG_swapbacked);
  }
  const cost = mm.cost;
  mm.kernel_ns += cost.migrate_folio + nr * cost.copy_page + mapped * cost.rmap_one;
  if (pmd) s.entire_mapcount[di] = entire;
  for (let i = 0; i < nr; i++) {
    if (f.mapcount[old + i] > 0 || (i === 0 && entire > 0)) mm.rmap.remap(old + i, dst + i);
    f.mapcount[dst + i] = f.mapcount[old + i];
    f.mapcount[old + i] = 0;
  }
  if (pmd) s.entire_mapcount[oi] = 0;
  const q = s.split_queue[zo.nid];
  if (q.delete(old)) s.split_queue[zn.nid].add(dst);
  if (s.partially_mapped.delete(old)) s.partially_mapped.add(dst);
  for (let i = 0; i < nr; i++) {
    f.mapping[old + i] = 0;
    f.index[old + i] = 0;
    f.flags[old + i] &= ~MIGRATE_FLAGS;
  }
  mm.nodes[zo.nid].vm_stat[NR_ISOLATED_ANON] -= nr;
  lruvec_add_folio(mm, dst);
  __free_pages(mm, old, order, cpu);
}

/** The state a migrated page carries over (folio_migrate_flags). */
const MIGRATE_FLAGS =
  PG_anon |
  PG_swapbacked |
  PG_dirty |
  PG_uptodate |
  PG_active |
  PG_referenced |
  PG_workingset |
  PG_mlocked |
  PG_unevictable |
  PG_swapcache;

/** Move the per-node/zone counters a page contributes from `old`'s zone to `new_pfn`'s. */
function migrate_counters(mm: MM, old: number, new_pfn: number, as: AddressSpace | null): void {
  const zo = mm.page_zone(old)!;
  const zn = mm.page_zone(new_pfn)!;
  if (zo === zn) return;
  const f = mm.frames;
  const no = mm.nodes[zo.nid];
  const nn = mm.nodes[zn.nid];
  const move = (item: number): void => {
    no.vm_stat[item]--;
    nn.vm_stat[item]++;
  };
  const fl = f.flags[old];
  if (f.mapcount[old] > 0) move(fl & PG_anon ? NR_ANON_MAPPED : NR_FILE_MAPPED);
  if (as) {
    move(NR_FILE_PAGES);
    if (as.shmem) move(NR_SHMEM);
    if (fl & PG_dirty && !as.shmem) {
      move(NR_FILE_DIRTY);
      zo.vm_stat[NR_ZONE_WRITE_PENDING]--;
      zn.vm_stat[NR_ZONE_WRITE_PENDING]++;
    }
  }
  if (fl & PG_mlocked) {
    zo.vm_stat[NR_MLOCK]--;
    zn.vm_stat[NR_MLOCK]++;
  }
  if (fl & PG_swapcache) move(NR_SWAPCACHE);
}

/**
 * kernel: mm/migrate.c migrate_folio_move() after migrate_folio_unmap(), for an isolated order-0
 * page and an allocated target: the target takes over the page's identity and mappings; the old
 * page is freed.
 */
function move_to_new_folio(mm: MM, old: number, new_pfn: number, cpu: number): void {
  const f = mm.frames;
  const as = is_file_page(mm, old) ? mm.page_cache.of(f.mapping[old]) : null;
  migrate_counters(mm, old, new_pfn, as);
  f.mapping[new_pfn] = f.mapping[old];
  f.index[new_pfn] = f.index[old];
  f.flags[new_pfn] = (f.flags[new_pfn] & ~MIGRATE_FLAGS) | (f.flags[old] & MIGRATE_FLAGS);
  if (as) {
    // folio_migrate_mapping(): the new page takes the old one's slot.
    as.i_pages.set(f.index[old], new_pfn);
    if (as.dirty_pages.delete(old)) as.dirty_pages.add(new_pfn);
  } else if (f.flags[old] & PG_swapcache) {
    // __folio_migrate_mapping() of the swap cache: the new page caches the old one's slot.
    const si = mm.swap!;
    const slot = si.slot_of.get(old)!;
    si.slot_of.delete(old);
    si.slot_of.set(new_pfn, slot);
    si.cache.set(slot, new_pfn);
  }
  // try_to_migrate()'s walk (made one with remove_migration_ptes()'s here) visits every mapping.
  const cost = mm.cost;
  mm.kernel_ns += cost.migrate_folio + cost.copy_page + f.mapcount[old] * cost.rmap_one;
  // remove_migration_ptes(): the PTEs that mapped the old page map the new one.
  if (f.mapcount[old] > 0) mm.rmap.remap(old, new_pfn);
  f.mapcount[new_pfn] = f.mapcount[old];
  f.mapcount[old] = 0;
  f.mapping[old] = 0;
  f.index[old] = 0;
  f.flags[old] &= ~MIGRATE_FLAGS;
  // The new page joins the LRU in place of the old (both stay counted as isolated until now).
  mm.nodes[mm.page_zone(old)!.nid].vm_stat[NR_ISOLATED_ANON + (f.flags[new_pfn] & PG_swapbacked ? 0 : 1)]--;
  lruvec_add_folio(mm, new_pfn);
  __free_pages(mm, old, 0, cpu);
}

/**
 * One large anon folio (order 2..9) of migrate_pages(): 1 moved whole, 0 retry (pinned), -1
 * failed (put back), 2 split (its mapped pages appended to `split_list`, still isolated). The
 * thp_migration_* events count PMD-sized folios only (is_thp = folio_test_pmd_mappable()).
 */
function migrate_large(
  mm: MM,
  head: number,
  ops: NewFolioOps | null,
  alloc: MigrationTarget | null,
  cpu: number,
  split_list: number[],
): number {
  const f = mm.frames;
  const order = f.order[head];
  const nr = 1 << order;
  const is_thp = order === HPAGE_PMD_ORDER;
  for (let i = 0; i < nr; i++) if (folio_maybe_dma_pinned(mm, head + i)) return 0;
  let dst = -1;
  if (ops !== null) {
    dst = ops.get_new_folio(head);
    // A target allocator that only hands out smaller blocks has no room for the folio.
    if (dst >= 0 && f.order[dst] !== order) {
      ops.put_new_folio(dst);
      dst = -1;
    }
  } else {
    // alloc_migration_target(): a THP target is GFP_TRANSHUGE without the caller's reclaim bits.
    const nid = alloc!.nid >= 0 ? alloc!.nid : mm.page_zone(head)!.nid;
    dst = __alloc_pages(mm, (alloc!.gfp & ~__GFP_RECLAIM) | GFP_TRANSHUGE, order, nid, cpu);
  }
  if (dst >= 0) {
    move_large_folio(mm, head, dst, cpu);
    if (is_thp) mm.vm_events[THP_MIGRATION_SUCCESS]++;
    return 1;
  }
  // -ENOMEM for a large folio: try_split_folio() and migrate the pieces.
  if (is_thp) mm.vm_events[THP_MIGRATION_FAIL]++;
  if (thp(mm).split_folio(head, true) !== 0) {
    folio_putback_lru(mm, head);
    return -1;
  }
  if (is_thp) mm.vm_events[THP_MIGRATION_SPLIT]++;
  for (let i = 0; i < nr; i++) if (f.mapcount[head + i] > 0) split_list.push(head + i);
  return 2;
}

/**
 * kernel: mm/migrate.c unmap_and_move_huge_page() for an isolated in-use hugetlb page
 * The target comes from the caller's get_new_folio() or alloc_migration_target()'s hugetlb branch
 * (alloc_hugetlb_folio_nodemask(), __GFP_THISNODE); none: -ENOMEM. A pinned page fails the
 * reference check of hugetlbfs_migrate_folio() (-EAGAIN, the target put). Otherwise
 * try_to_migrate() and remove_migration_ptes() repoint every PMD/PUD leaf (and a shared file's
 * page cache slot) at the target, its state and mapcount move with pages_per_huge_page()
 * copies, move_hugetlb_state() passes on the temporary state, and the source, put back, is
 * freed: to the pool's free list (which replace_free_hugepage_folios() empties later), or to the
 * page allocator if temporary or surplus. Returns 0, -EAGAIN or -ENOMEM.
 */
function unmap_and_move_huge_page(
  mm: MM,
  src: number,
  ops: NewFolioOps | null,
  alloc: MigrationTarget | null,
  cpu: number,
): number {
  const f = mm.frames;
  const h = folio_hstate(mm, src);
  let dst: number;
  if (ops !== null) dst = ops.get_new_folio(src);
  else {
    // alloc_migration_target(): reasons other than hotplug, memory failure and syscalls keep the node.
    const nid = alloc!.nid >= 0 ? alloc!.nid : mm.page_zone(src)!.nid;
    dst = alloc_hugetlb_folio_nodemask(mm, h, nid, htlb_modify_alloc_mask(h, alloc!.gfp), false);
  }
  if (dst < 0) return -12;
  if (folio_maybe_dma_pinned(mm, src)) {
    // No put_new_folio for hugetlb targets: folio_put() frees it back to the pool.
    folio_put_hugetlb_migrated(mm, dst, cpu);
    return -11;
  }
  const nr = pages_per_huge_page(h);
  const mapped = f.mapcount[src];
  f.mapping[dst] = f.mapping[src];
  f.index[dst] = f.index[src];
  f.flags[dst] = (f.flags[dst] & ~MIGRATE_FLAGS) | (f.flags[src] & MIGRATE_FLAGS);
  mm.hugetlb.vm?.hugetlb_migrate_mapping(src, dst);
  f.mapcount[dst] = mapped;
  f.mapcount[src] = 0;
  f.flags[src] &= ~MIGRATE_FLAGS;
  // try_to_migrate() flushes the TLB of each hugetlb mapping at once (no batching).
  const cost = mm.cost;
  mm.kernel_ns += cost.migrate_folio + nr * cost.copy_page + mapped * cost.rmap_one + (mapped ? cost.ipi : 0);
  hugetlb_migrate_nr_hugetlb(mm, src, dst);
  move_hugetlb_state(mm, src, dst);
  folio_putback_hugetlb(mm, src);
  folio_put_hugetlb_migrated(mm, src, cpu);
  return 0;
}

/**
 * kernel: mm/migrate.c migrate_hugetlbs()
 * The hugetlb folios of the first `nr` entries of `pfns`, before anything else, one at a time, up
 * to NR_MAX_MIGRATE_PAGES_RETRY passes while some get -EAGAIN. Moved ones count their pages in
 * res.succeeded; failures are put back (folio_putback_hugetlb()) and count one in res.failed
 * (their pages in pgmigrate_fail). -ENOMEM stops everything: res.err is set and the folios not
 * moved are put back. Returns the folios that failed, or -ENOMEM.
 */
function migrate_hugetlbs(
  mm: MM,
  pfns: ArrayLike<number>,
  nr: number,
  ops: NewFolioOps | null,
  alloc: MigrationTarget | null,
  cpu: number,
  res: MigrateResult,
): number {
  const f = mm.frames;
  let list: number[] = [];
  for (let i = 0; i < nr; i++) if (f.flags[pfns[i]] & PG_hugetlb) list.push(pfns[i]);
  let nr_failed = 0;
  let failed_pages = 0;
  let ret = 0;
  for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && list.length && !ret; pass++) {
    const retry: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const pfn = list[i];
      const h = folio_hstate(mm, pfn);
      const nr_pages = pages_per_huge_page(h);
      if (ret) {
        retry.push(pfn);
        continue;
      }
      if (!hugepage_migration_supported(h)) {
        nr_failed++;
        failed_pages += nr_pages;
        folio_putback_hugetlb(mm, pfn);
        continue;
      }
      const rc = unmap_and_move_huge_page(mm, pfn, ops, alloc, cpu);
      if (rc === 0) res.succeeded += nr_pages;
      else if (rc === -11) retry.push(pfn);
      else {
        // -ENOMEM: when memory is low, don't bother to try to migrate other folios.
        retry.push(pfn);
        ret = rc;
      }
    }
    list = retry;
  }
  // What is left failed (retried NR_MAX_MIGRATE_PAGES_RETRY times, or not tried after -ENOMEM).
  for (const pfn of list) {
    if (!ret) nr_failed++;
    failed_pages += pages_per_huge_page(folio_hstate(mm, pfn));
    folio_putback_hugetlb(mm, pfn);
  }
  res.failed += nr_failed;
  mm.vm_events[PGMIGRATE_FAIL] += failed_pages - nr_failed;
  if (ret) {
    res.err = ret;
    return ret;
  }
  return nr_failed;
}

/** An unused target goes back: put_new_folio(), or freed (alloc_migration_target's page). */
function put_target(mm: MM, ops: NewFolioOps | null, dst: number, cpu: number): void {
  if (ops !== null) ops.put_new_folio(dst);
  else __free_pages(mm, dst, 0, cpu);
}

/** The outcome of migrate_pages(): pages moved, pages that failed, and -ENOMEM if targets ran out. */
export interface MigrateResult {
  succeeded: number;
  failed: number;
  /** 0, or -ENOMEM when no target page could be allocated (the rest were not tried). */
  err: number;
}

/**
 * new_folio_t and free_folio_t with their `private`: a caller that supplies its own targets
 * (compaction's compaction_alloc() and compaction_free()). get_new_folio() is asked before the
 * source is locked, as migrate_folio_unmap() does; a target that ends up unused goes back through
 * put_new_folio().
 */
export interface NewFolioOps {
  /** A target page for `src` (an allocated order-0 page), or -1: migration stops with -ENOMEM. */
  get_new_folio(src: number): number;
  /** An unused target from get_new_folio(). */
  put_new_folio(dst: number): void;
  /** The CPU the migration runs on: where the migrated-from pages are freed. */
  readonly cpu: number;
  /**
   * PF_MEMALLOC of the migrating task (direct compaction sets it): a locked source is never
   * waited for, only retried (migrate_folio_unmap()).
   */
  readonly pf_memalloc: boolean;
}

/** Scratch lists of migrate_pages() by nesting depth (allocating a target can migrate again). */
const scratch: Int32Array[] = [];
let depth = 0;
/** Lists per depth: pending, retry, and the unmapped sources and their targets. */
const LISTS = 4;

/** The scratch list `i` of this depth, with room for `n` pfns. */
function scratch_list(i: number, n: number): Int32Array {
  const k = depth * LISTS + i;
  while (scratch.length <= k) scratch.push(new Int32Array(64));
  if (scratch[k].length < n) scratch[k] = new Int32Array(Math.max(n, scratch[k].length * 2));
  return scratch[k];
}

/**
 * kernel: mm/migrate.c migrate_pages() for isolated order-0 pages
 * Migrate the first `nr` pages of `pfns` (isolated with folio_isolate_lru), in that order, to
 * targets from `target`: allocated as a migration_target_control says, or from the caller's
 * get_new_folio(). A page that cannot move now is retried up to NR_MAX_MIGRATE_PAGES_RETRY
 * times, then put back on its LRU and counted failed (pgmigrate_fail); moved pages count
 * pgmigrate_success. Running out of targets puts the rest back and returns -ENOMEM (with
 * get_new_folio() the page that found none counts as failed, as in the kernel).
 *
 * The kernel's MIGRATE_SYNC* runs (an async batch of 3 passes, then each failed page alone for
 * 7 more) come to the same outcome here as 10 passes in one loop: nothing changes between them.
 */
export function migrate_pages(
  mm: MM,
  pfns: ArrayLike<number>,
  target: MigrationTarget | NewFolioOps,
  mode: number,
  nr = pfns.length,
): MigrateResult {
  const f = mm.frames;
  const res: MigrateResult = { succeeded: 0, failed: 0, err: 0 };
  const ops = 'get_new_folio' in target ? target : null;
  const alloc = ops === null ? (target as MigrationTarget) : null;
  const cpu = target.cpu;
  const split_list: number[] = [];
  let pending = scratch_list(0, nr);
  let retry = scratch_list(1, nr);
  const srcs = scratch_list(2, nr);
  const dsts = scratch_list(3, nr);
  // migrate_hugetlbs() first; the other folios wait (and stay isolated) meanwhile.
  let npending = 0;
  let nhuge = 0;
  for (let i = 0; i < nr; i++) {
    if (f.flags[pfns[i]] & PG_hugetlb) nhuge++;
    else pending[npending++] = pfns[i];
  }
  if (nhuge && migrate_hugetlbs(mm, pfns, nr, ops, alloc, cpu, res) < 0) {
    // -ENOMEM: the rest are not tried (the model puts them back, as for its other -ENOMEM).
    for (let i = 0; i < npending; i++) folio_putback_lru(mm, pending[i]);
    npending = 0;
  }
  const pf_memalloc = ops?.pf_memalloc === true;
  depth++;
  try {
    for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && npending && !res.err; pass++) {
      let nretry = 0;
      let unmapped = false;
      // migrate_pages_batch(): every folio is unmapped (its target allocated) before any moves.
      let nmove = 0;
      for (let i = 0; i < npending; i++) {
        const pfn = pending[i];
        if (res.err) {
          folio_putback_lru(mm, pfn);
          continue;
        }
        let dst = -1;
        const large = (f.flags[pfn] & PG_head) !== 0;
        if (large) {
          // A large folio: whole to a target of its order, else split and its pages migrated afterwards.
          const nr_large = folio_nr_pages(mm, pfn);
          const r = migrate_large(mm, pfn, ops, alloc, cpu, split_list);
          if (r === 1) {
            res.succeeded += nr_large;
            unmapped = true;
          } else if (r === 0) retry[nretry++] = pfn;
          else if (r === -1) res.failed++;
          continue;
        }
        // migrate_folio_unmap(): the target first (-ENOMEM stops the whole call) ...
        if (ops !== null) dst = ops.get_new_folio(pfn);
        else {
          const nid = alloc!.nid >= 0 ? alloc!.nid : mm.page_zone(pfn)!.nid;
          dst = __alloc_pages(mm, alloc!.gfp, 0, nid, cpu);
        }
        if (dst < 0) {
          res.err = -12;
          res.failed++;
          folio_putback_lru(mm, pfn);
          continue;
        }
        const fl = f.flags[pfn];
        // ... then the page lock (a trylock; only the sync modes wait for it, and never under
        // PF_MEMALLOC or, in SYNC_LIGHT, for a page still being read: -EAGAIN) ...
        if (
          fl & PG_locked &&
          (mode === MIGRATE_ASYNC || pf_memalloc || (mode === MIGRATE_SYNC_LIGHT && !(fl & PG_uptodate)))
        ) {
          put_target(mm, ops, dst, cpu);
          retry[nretry++] = pfn;
          continue;
        }
        // ... then writeback, which only MIGRATE_SYNC waits for (-EBUSY otherwise) ...
        if (fl & PG_writeback) {
          if (mode !== MIGRATE_SYNC) {
            put_target(mm, ops, dst, cpu);
            folio_putback_lru(mm, pfn);
            res.failed++;
            continue;
          }
          folio_end_writeback(mm, pfn);
        }
        // ... and folio_migrate_mapping()'s reference check: pins are unexplained (-EAGAIN).
        if (folio_maybe_dma_pinned(mm, pfn)) {
          put_target(mm, ops, dst, cpu);
          retry[nretry++] = pfn;
          continue;
        }
        if (f.mapcount[pfn] > 0) unmapped = true;
        srcs[nmove] = pfn;
        dsts[nmove++] = dst;
      }
      // try_to_unmap_flush(): one TLB shootdown for the batch's unmapped pages.
      if (unmapped) mm.kernel_ns += mm.cost.ipi;
      // migrate_folios_move()
      for (let i = 0; i < nmove; i++) move_to_new_folio(mm, srcs[i], dsts[i], cpu);
      res.succeeded += nmove;
      const t = pending;
      pending = retry;
      retry = t;
      npending = nretry;
    }
    for (let i = 0; i < npending; i++) {
      if (f.flags[pending[i]] & PG_head) mm.vm_events[THP_MIGRATION_FAIL]++;
      folio_putback_lru(mm, pending[i]);
      res.failed++;
    }
  } finally {
    depth--;
  }
  // The pages of split THPs: one more ASYNC round (migrate_pages_batch(&split_folios, ...)).
  if (split_list.length) {
    const r = migrate_pages(mm, split_list, target, MIGRATE_ASYNC);
    mm.vm_events[PGMIGRATE_SUCCESS] -= r.succeeded;
    mm.vm_events[PGMIGRATE_FAIL] -= r.failed;
    res.succeeded += r.succeeded;
    res.failed += r.failed;
    if (r.err) res.err = r.err;
  }
  mm.vm_events[PGMIGRATE_SUCCESS] += res.succeeded;
  mm.vm_events[PGMIGRATE_FAIL] += res.failed;
  return res;
}
