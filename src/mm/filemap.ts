/**
 * The page cache (mm/filemap.c, include/linux/pagemap.h): every file's cached pages, found by
 * page index in the file's address_space. A cached page is a movable order-0 frame whose
 * `mapping` names its address_space (`id << 2`, no tag bits) and whose `index` is its offset in
 * the file, on the file LRU (or, for shmem/tmpfs, the anon LRU: its pages are swap-backed).
 * The cache holds the page; mappings add to its mapcount (the vm layer's file rmap).
 *
 * The model keeps order-0 folios only: its disk filesystem does not declare large-folio support
 * (mapping_large_folio_support() false, as ext4 before 6.16) and tmpfs defaults to huge=never.
 */
import { __GFP_ZERO, GFP_HIGHUSER_MOVABLE } from './gfp.ts';
import { folio_maybe_dma_pinned } from './gup.ts';
import { folio_lru_list, lru_activate, lruvec_add_folio, lruvec_del_folio } from './lru.ts';
import type { MM } from './mm.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_reclaim,
  PG_referenced,
  PG_swapbacked,
  PG_unevictable,
  PG_uptodate,
  PG_workingset,
  PG_writeback,
  PGI_alloc,
} from './page-flags.ts';
import type { ShmemSbInfo } from './shmem.ts';
import { NR_MLOCK, NR_ZONE_WRITE_PENDING, node_stat_index, vm_event_index } from './vmstat_items.ts';
import { XArray } from './xarray.ts';

export const NR_FILE_PAGES = node_stat_index('nr_file_pages');
export const NR_SHMEM = node_stat_index('nr_shmem');
export const NR_FILE_DIRTY = node_stat_index('nr_dirty');
export const NR_WRITEBACK = node_stat_index('nr_writeback');
export const NR_FILE_MAPPED = node_stat_index('nr_mapped');
const NR_DIRTIED = node_stat_index('nr_dirtied');
const NR_WRITTEN = node_stat_index('nr_written');
const PGROTATED = vm_event_index('pgrotated');
const UNEVICTABLE_PGCLEARED = vm_event_index('unevictable_pgs_cleared');

/** The tag bits of frames.mapping: 0 for a file page (anon is 1, page tables 3). */
export const PAGE_MAPPING_FILE = 0;

/**
 * A block device's writeback: the flusher writes dirty pages at `write_bw` bytes per second
 * (struct backing_dev_info's measured bandwidth; 6.18 starts every bdi at 100 MiB/s,
 * INIT_BW, and adapts it to the device).
 */
export interface BackingDev {
  name: string;
  /** Bytes per second the device writes. */
  write_bw: number;
  /**
   * bdi->io_pages: the device's largest request in pages (max_sectors_kb / 4), up to which a
   * large read or fadvise(WILLNEED) may read ahead past the readahead window.
   */
  io_pages: number;
  /** bdi->ra_pages: read_ahead_kb / 4, the readahead window a file opened on it starts with. */
  ra_pages: number;
}

/** struct address_space: one file's page cache (and, for tmpfs, its only copy of the data). */
/** Who charges a tmpfs file's pages to the commit count (the vm layer's Vm.shmem_acct()). */
export interface ShmemAcct {
  /** Charge `pages` (negative: give back) for the running task; false if overcommit refuses. */
  shmem_acct(pages: number): boolean;
}

export class AddressSpace {
  /** i_pages: page index → pfn. */
  readonly i_pages = new XArray();
  nrpages = 0;
  /** The dirty pages counted for writeback (PAGECACHE_TAG_DIRTY; tmpfs pages are not counted). */
  readonly dirty_pages = new Set<number>();
  /** The host inode's size in bytes (i_size). */
  i_size = 0;
  /** AS_UNEVICTABLE (ramfs, SHM_LOCK): its pages go to the unevictable list. */
  unevictable = false;
  /** mapping_gfp_mask(): how its pages are allocated. */
  gfp_mask = GFP_HIGHUSER_MOVABLE;
  /** inode->dirtied_when: simulated ns when the inode became dirty, or -1 while clean. */
  dirtied_when = -1;
  get nr_dirty(): number {
    return this.dirty_pages.size;
  }
  /**
   * shmem_acct_blocks() / shmem_unacct_blocks() of a tmpfs file charged page by page
   * (VM_NORESERVE: tmpfs files, memfds, MAP_NORESERVE shared memory): charge `pages` (negative
   * to give back) to the commit count; false when the overcommit policy refuses. Null: not
   * charged per page.
   */
  acct_blocks: ShmemAcct | null = null;
  /** Open files, mappings and the name that keep the inode (i_count + i_nlink, simplified). */
  refs = 0;

  /** shmem_mapping(): tmpfs / shared anonymous memory, swap-backed. */
  readonly shmem: boolean;

  constructor(
    readonly id: number,
    /** The tmpfs mount whose blocks its pages use; null for a disk file. */
    readonly sbinfo: ShmemSbInfo | null,
    /** The device that backs it; null for tmpfs. */
    readonly bdi: BackingDev | null,
  ) {
    this.shmem = sbinfo !== null;
  }
}

/** Every address_space of the machine, by id (id 0 is never used, so a file mapping is nonzero). */
export class PageCache {
  private readonly spaces: Array<AddressSpace | undefined> = [undefined];
  private readonly freeIds: number[] = [];

  create(sbinfo: ShmemSbInfo | null, bdi: BackingDev | null): AddressSpace {
    const id = this.freeIds.pop() ?? this.spaces.length;
    const as = new AddressSpace(id, sbinfo, bdi);
    this.spaces[id] = as;
    return as;
  }

  /** Forget an address_space whose pages are all gone (the inode was evicted). */
  destroy(as: AddressSpace): void {
    if (as.nrpages) throw new Error(`address_space ${as.id} still caches ${as.nrpages} pages`);
    this.spaces[as.id] = undefined;
    this.freeIds.push(as.id);
  }

  /** The address_space of a frames.mapping value of a file page. */
  of(mapping: number): AddressSpace {
    return this.spaces[mapping >> 2]!;
  }

  /** Live address_spaces. */
  *all(): IterableIterator<AddressSpace> {
    for (const as of this.spaces) if (as) yield as;
  }
}

/** frames.mapping of a page cached in `as`. */
export function file_mapping(as: AddressSpace): number {
  return (as.id << 2) | PAGE_MAPPING_FILE;
}

/** The page is in a page cache (folio_mapping() of a non-anonymous, non-table page). */
export function is_file_page(mm: MM, pfn: number): boolean {
  const m = mm.frames.mapping[pfn];
  return m !== 0 && (m & 3) === PAGE_MAPPING_FILE;
}

/** kernel: mm/filemap.c filemap_get_folio(): the pfn caching page `index`, or -1. */
export function filemap_get_folio(as: AddressSpace, index: number): number {
  return as.i_pages.get(index);
}

/**
 * kernel: mm/filemap.c filemap_add_folio()
 * A newly allocated page joins `as` at `index` (NR_FILE_PAGES, and NR_SHMEM for tmpfs) and goes
 * on the inactive list of its LRU (folio_add_lru): the file list, the anon list for swap-backed
 * shmem, the unevictable list for an unevictable mapping.
 */
export function filemap_add_folio(mm: MM, as: AddressSpace, pfn: number, index: number): void {
  const f = mm.frames;
  f.mapping[pfn] = file_mapping(as);
  f.index[pfn] = index;
  f.mapcount[pfn] = 0;
  if (as.shmem) f.flags[pfn] |= PG_swapbacked;
  if (as.unevictable) f.flags[pfn] |= PG_unevictable;
  as.i_pages.set(index, pfn);
  as.nrpages++;
  const node = mm.nodes[mm.page_zone(pfn)!.nid];
  node.vm_stat[NR_FILE_PAGES]++;
  if (as.shmem) node.vm_stat[NR_SHMEM]++;
  lruvec_add_folio(mm, pfn);
}

/**
 * kernel: mm/filemap.c filemap_alloc_folio() + filemap_add_folio()
 * A new page for `index` of `as` from the mapping's GFP mask, zeroed (a read of a hole, a tmpfs
 * page) and uptodate; -1 if memory ran out.
 */
export function filemap_create_folio(
  mm: MM,
  as: AddressSpace,
  index: number,
  nid: number,
  cpu: number,
): number {
  const pfn = __alloc_pages(mm, as.gfp_mask | __GFP_ZERO, 0, nid, cpu);
  if (pfn < 0) return -1;
  mm.frames.flags[pfn] |= PG_uptodate;
  filemap_add_folio(mm, as, pfn, index);
  return pfn;
}

/**
 * kernel: mm/swap.c folio_mark_accessed()
 * A use of a cached page through read()/write(): the first sets PG_referenced, the second
 * activates an inactive page (and clears the mark).
 */
export function folio_mark_accessed(mm: MM, pfn: number): void {
  const f = mm.frames;
  const fl = f.flags[pfn];
  if (!(fl & PG_referenced)) {
    f.flags[pfn] = fl | PG_referenced;
  } else if (!(fl & (PG_active | PG_unevictable)) && fl & PG_lru) {
    lru_activate(mm, pfn);
    f.flags[pfn] &= ~PG_referenced;
  }
}

/**
 * kernel: mm/page-writeback.c folio_mark_dirty() → filemap_dirty_folio() / noop_dirty_folio()
 * Set PG_dirty. For a file that writes back, a newly dirty page is accounted (nr_dirty,
 * nr_zone_write_pending, nr_dirtied) and the inode is dirtied at `now` (__mark_inode_dirty);
 * tmpfs pages are dirty without accounting. Returns whether the page newly became dirty.
 */
export function folio_mark_dirty(mm: MM, as: AddressSpace, pfn: number, now: number): boolean {
  const f = mm.frames;
  if (f.flags[pfn] & PG_dirty) return false;
  f.flags[pfn] |= PG_dirty;
  if (as.shmem) return true;
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  node.vm_stat[NR_FILE_DIRTY]++;
  node.vm_stat[NR_DIRTIED]++;
  zone.vm_stat[NR_ZONE_WRITE_PENDING]++;
  as.dirty_pages.add(pfn);
  if (as.dirtied_when < 0) {
    // __mark_inode_dirty(): the inode joins the flusher's b_dirty list.
    as.dirtied_when = now;
    mm.writeback.b_dirty.add(as);
  }
  return true;
}

/** kernel: mm/page-writeback.c folio_account_cleaned(): a dirty page stops being dirty. */
function folio_account_cleaned(mm: MM, as: AddressSpace, pfn: number): void {
  const zone = mm.page_zone(pfn)!;
  mm.nodes[zone.nid].vm_stat[NR_FILE_DIRTY]--;
  zone.vm_stat[NR_ZONE_WRITE_PENDING]--;
  as.dirty_pages.delete(pfn);
  if (as.dirty_pages.size === 0) {
    as.dirtied_when = -1;
    mm.writeback.b_dirty.delete(as);
  }
}

/**
 * kernel: mm/page-writeback.c folio_clear_dirty_for_io() + __folio_start_writeback()
 * The flusher (or reclaim) starts writing a dirty page: PG_dirty becomes PG_writeback, and the
 * shared mappings of the page are write-protected (folio_mkclean) so that a later store through
 * them dirties it again.
 */
export function folio_start_writeback(mm: MM, as: AddressSpace, pfn: number): void {
  const f = mm.frames;
  if (f.mapcount[pfn] > 0) mm.rmap.folio_mkclean(pfn);
  f.flags[pfn] = (f.flags[pfn] & ~PG_dirty) | PG_writeback;
  folio_account_cleaned(mm, as, pfn);
  const zone = mm.page_zone(pfn)!;
  mm.nodes[zone.nid].vm_stat[NR_WRITEBACK]++;
  zone.vm_stat[NR_ZONE_WRITE_PENDING]++;
}

/**
 * kernel: mm/filemap.c folio_end_writeback()
 * The write finished (nr_written). A page reclaim wanted (PG_reclaim) moves to the tail of its
 * inactive list so the next scan frees it (folio_rotate_reclaimable, pgrotated).
 */
export function folio_end_writeback(mm: MM, pfn: number): void {
  const f = mm.frames;
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  f.flags[pfn] &= ~PG_writeback;
  node.vm_stat[NR_WRITEBACK]--;
  node.vm_stat[NR_WRITTEN]++;
  zone.vm_stat[NR_ZONE_WRITE_PENDING]--;
  if (!(f.flags[pfn] & PG_reclaim)) return;
  f.flags[pfn] &= ~PG_reclaim;
  const fl = f.flags[pfn];
  if (fl & PG_lru && !(fl & (PG_active | PG_unevictable | PG_dirty))) {
    const list = node.lru_base + folio_lru_list(fl);
    f.list_del(pfn, list);
    f.list_add_tail(pfn, list);
    mm.vm_events[PGROTATED]++;
  }
}

/**
 * kernel: mm/filemap.c __filemap_remove_folio() + the final folio_put()
 * Take an unmapped page out of `as` and free it: off the LRU (unless reclaim isolated it), its
 * dirty accounting cancelled (truncation of a dirty page), NR_FILE_PAGES/NR_SHMEM dropped.
 */
export function filemap_remove_folio(mm: MM, as: AddressSpace, pfn: number, cpu: number): void {
  const f = mm.frames;
  as.i_pages.delete(f.index[pfn]);
  as.nrpages--;
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  node.vm_stat[NR_FILE_PAGES]--;
  if (as.sbinfo) {
    node.vm_stat[NR_SHMEM]--;
    // shmem_recalc_inode(): the block and its commit charge go back.
    as.sbinfo.used_blocks--;
    as.acct_blocks?.shmem_acct(-1);
  }
  const fl = f.flags[pfn];
  if (fl & PG_dirty && !as.shmem) folio_account_cleaned(mm, as, pfn);
  if (fl & PG_lru) lruvec_del_folio(mm, pfn);
  if (fl & PG_mlocked) {
    zone.vm_stat[NR_MLOCK]--;
    mm.vm_events[UNEVICTABLE_PGCLEARED]++;
  }
  f.flags[pfn] &= ~(
    PG_dirty |
    PG_uptodate |
    PG_swapbacked |
    PG_unevictable |
    PG_mlocked |
    PG_active |
    PG_referenced |
    PG_reclaim |
    PG_workingset
  );
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  // A pinned page stays allocated until its last unpin (unpin_folio frees it).
  if (!folio_maybe_dma_pinned(mm, pfn)) __free_pages(mm, pfn, 0, cpu);
}

/**
 * The page cache's invariants: every cached page points back at its address_space and index, is
 * allocated and on an LRU list; the per-mapping and global counters (nr_file_pages, nr_shmem,
 * nr_dirty, nr_writeback, nr_zone_write_pending, tmpfs blocks) equal what the pages say; no
 * frame claims a page cache that does not hold it.
 */
export function filemap_check(mm: MM): string[] {
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < 50) errors.push(msg);
  };
  const f = mm.frames;
  let file_pages = 0;
  let shmem = 0;
  let dirty = 0;
  const blocks = new Map<ShmemSbInfo, number>();
  for (const as of mm.page_cache.all()) {
    if (as.i_pages.size !== as.nrpages)
      report(`mapping ${as.id}: nrpages ${as.nrpages} but ${as.i_pages.size} pages`);
    for (const [index, pfn] of as.i_pages) {
      const fl = f.flags[pfn];
      if (f.mapping[pfn] !== file_mapping(as) || f.index[pfn] !== index)
        report(`mapping ${as.id}: page ${pfn} at index ${index} points at ${f.mapping[pfn]}/${f.index[pfn]}`);
      if (!(fl & PGI_alloc) || !(fl & PG_lru))
        report(`mapping ${as.id}: page ${pfn} not allocated or off the LRU`);
      if (fl & PG_locked) report(`mapping ${as.id}: page ${pfn} left locked`);
      if (((fl & PG_swapbacked) !== 0) !== as.shmem)
        report(`mapping ${as.id}: page ${pfn} PG_swapbacked is wrong`);
      if (!as.shmem && ((fl & PG_dirty) !== 0) !== as.dirty_pages.has(pfn))
        report(`mapping ${as.id}: page ${pfn} PG_dirty disagrees with the dirty set`);
    }
    file_pages += as.nrpages;
    if (as.shmem) shmem += as.nrpages;
    dirty += as.dirty_pages.size;
    if (as.sbinfo) blocks.set(as.sbinfo, (blocks.get(as.sbinfo) ?? 0) + as.nrpages);
    if (as.dirtied_when >= 0 !== as.dirty_pages.size > 0) report(`mapping ${as.id}: dirtied_when is stale`);
    if (as.dirty_pages.size > 0 && !mm.writeback.b_dirty.has(as))
      report(`mapping ${as.id}: dirty but not on b_dirty`);
  }
  for (const [sbinfo, n] of blocks) {
    if (sbinfo.used_blocks !== n) report(`tmpfs: used_blocks ${sbinfo.used_blocks} but ${n} pages`);
  }
  let writeback = 0;
  let write_pending = 0;
  for (let pfn = 0; pfn < f.nr_frames; pfn++) {
    const fl = f.flags[pfn];
    if (fl & PG_writeback) writeback++;
    const m = f.mapping[pfn];
    if (m !== 0 && (m & 3) === PAGE_MAPPING_FILE && !(fl & PG_anon)) {
      const as = mm.page_cache.of(m);
      if (!as || as.i_pages.get(f.index[pfn]) !== pfn)
        report(`pfn ${pfn}: claims mapping ${m >> 2} which does not hold it`);
    }
  }
  for (const zone of mm.zones) write_pending += zone.vm_stat[NR_ZONE_WRITE_PENDING];
  let node_file = 0;
  let node_shmem = 0;
  let node_dirty = 0;
  let node_wb = 0;
  for (const node of mm.nodes) {
    node_file += node.vm_stat[NR_FILE_PAGES];
    node_shmem += node.vm_stat[NR_SHMEM];
    node_dirty += node.vm_stat[NR_FILE_DIRTY];
    node_wb += node.vm_stat[NR_WRITEBACK];
  }
  if (node_file !== file_pages) report(`nr_file_pages ${node_file} but ${file_pages} cached pages`);
  if (node_shmem !== shmem) report(`nr_shmem ${node_shmem} but ${shmem} tmpfs pages`);
  if (node_dirty !== dirty) report(`nr_dirty ${node_dirty} but ${dirty} dirty pages`);
  if (node_wb !== writeback) report(`nr_writeback ${node_wb} but ${writeback} pages under writeback`);
  if (write_pending !== dirty + writeback)
    report(`nr_zone_write_pending ${write_pending} but ${dirty + writeback} dirty and writeback pages`);
  return errors;
}
