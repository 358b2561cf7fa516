/**
 * Page migration (mm/migrate.c): move an LRU page's contents, identity and mappings to a new
 * page. migrate_pages() takes isolated pages; for each it allocates a target, copies the page's
 * state (page-cache slot, anon_vma and index, LRU list, dirty/mlock state and their counters),
 * repoints every PTE through the rmap (the kernel's migration entries, made and removed in one
 * step here: nothing runs in between), and frees the old page.
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
import { folio_maybe_dma_pinned } from './gup.ts';
import { lruvec_add_folio, lruvec_del_folio } from './lru.ts';
import type { MM } from './mm.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_referenced,
  PG_swapbacked,
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
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_ISOLATED_ANON + (f.flags[pfn] & PG_swapbacked ? 0 : 1)]++;
  return true;
}

/** kernel: mm/migrate.c folio_putback_lru() for an isolated page. */
export function folio_putback_lru(mm: MM, pfn: number): void {
  const f = mm.frames;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_ISOLATED_ANON + (f.flags[pfn] & PG_swapbacked ? 0 : 1)]--;
  lruvec_add_folio(mm, pfn);
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
  PG_unevictable;

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
  }
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

/** The outcome of migrate_pages(): pages moved, pages that failed, and -ENOMEM if targets ran out. */
export interface MigrateResult {
  succeeded: number;
  failed: number;
  /** 0, or -ENOMEM when no target page could be allocated (the rest were not tried). */
  err: number;
}

/**
 * kernel: mm/migrate.c migrate_pages() for isolated order-0 pages
 * Migrate each page of `pfns` (isolated with folio_isolate_lru) to a target from `target`. A page
 * that cannot move now is retried up to NR_MAX_MIGRATE_PAGES_RETRY times, then put back on its
 * LRU and counted failed (pgmigrate_fail); moved pages count pgmigrate_success. Running out of
 * targets puts the rest back and returns -ENOMEM.
 */
export function migrate_pages(
  mm: MM,
  pfns: readonly number[],
  target: MigrationTarget,
  mode: number,
): MigrateResult {
  const f = mm.frames;
  const res: MigrateResult = { succeeded: 0, failed: 0, err: 0 };
  let pending = [...pfns];
  for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && pending.length && !res.err; pass++) {
    const retry: number[] = [];
    for (let i = 0; i < pending.length; i++) {
      const pfn = pending[i];
      if (res.err) {
        folio_putback_lru(mm, pfn);
        continue;
      }
      const fl = f.flags[pfn];
      // migrate_folio_unmap(): the page must be unlocked and not under writeback to move now.
      if (fl & PG_writeback) {
        if (mode !== MIGRATE_SYNC) {
          folio_putback_lru(mm, pfn);
          res.failed++;
          continue;
        }
        folio_end_writeback(mm, pfn); // MIGRATE_SYNC waits for the write.
      }
      if (fl & PG_locked && mode === MIGRATE_ASYNC) {
        folio_putback_lru(mm, pfn);
        res.failed++;
        continue;
      }
      // folio_migrate_mapping()'s reference check: pins are unexplained references.
      if (folio_maybe_dma_pinned(mm, pfn)) {
        retry.push(pfn);
        continue;
      }
      const nid = target.nid >= 0 ? target.nid : mm.page_zone(pfn)!.nid;
      const new_pfn = __alloc_pages(mm, target.gfp, 0, nid, target.cpu);
      if (new_pfn < 0) {
        res.err = -12;
        folio_putback_lru(mm, pfn);
        continue;
      }
      move_to_new_folio(mm, pfn, new_pfn, target.cpu);
      res.succeeded++;
    }
    pending = retry;
  }
  for (const pfn of pending) {
    folio_putback_lru(mm, pfn);
    res.failed++;
  }
  mm.vm_events[PGMIGRATE_SUCCESS] += res.succeeded;
  mm.vm_events[PGMIGRATE_FAIL] += res.failed;
  return res;
}
