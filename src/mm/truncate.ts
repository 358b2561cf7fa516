/**
 * Dropping pages from the page cache (mm/truncate.c): truncation, which removes every page past
 * a new end of file (the caller unmapped them first, as truncate_pagecache() does), and
 * invalidation, which drops only what can go without losing data: clean, unmapped pages not
 * under writeback (drop_caches, fadvise DONTNEED).
 */
import { type AddressSpace, filemap_remove_folio, folio_end_writeback } from './filemap.ts';
import type { MM } from './mm.ts';
import { PG_dirty, PG_writeback } from './page-flags.ts';

/**
 * kernel: mm/truncate.c truncate_inode_pages_range()
 * Remove every cached page at indices [start, end) (to the end of the file by default). A page
 * under writeback is waited for (its write completes at once here). Returns the pages removed.
 */
export function truncate_inode_pages(
  mm: MM,
  as: AddressSpace,
  start: number,
  cpu: number,
  end = Number.POSITIVE_INFINITY,
): number {
  const f = mm.frames;
  const doomed: number[] = [];
  for (const [, pfn] of as.i_pages.range(start, end)) doomed.push(pfn);
  for (const pfn of doomed) {
    if (f.mapcount[pfn] > 0) throw new Error(`truncate: page ${pfn} is still mapped`);
    if (f.flags[pfn] & PG_writeback) folio_end_writeback(mm, pfn);
    filemap_remove_folio(mm, as, pfn, cpu);
  }
  return doomed.length;
}

/**
 * kernel: mm/truncate.c mapping_try_invalidate() / mapping_evict_folio()
 * Drop the clean, unmapped pages of `as` at indices [start, end) that are not under writeback.
 * Returns the pages dropped.
 */
export function invalidate_mapping_pages(
  mm: MM,
  as: AddressSpace,
  cpu: number,
  start = 0,
  end = Number.POSITIVE_INFINITY,
): number {
  const f = mm.frames;
  const victims: number[] = [];
  for (const [, pfn] of as.i_pages.range(start, end)) {
    if (f.flags[pfn] & (PG_dirty | PG_writeback) || f.mapcount[pfn] > 0) continue;
    victims.push(pfn);
  }
  for (const pfn of victims) filemap_remove_folio(mm, as, pfn, cpu);
  return victims.length;
}

/**
 * kernel: fs/drop_caches.c drop_pagecache_sb() over every super block
 * `echo 1 > drop_caches`: invalidate every file's page cache.
 */
export function drop_pagecache(mm: MM): number {
  let dropped = 0;
  for (const as of mm.page_cache.all()) dropped += invalidate_mapping_pages(mm, as, 0);
  return dropped;
}
