/**
 * Readahead (mm/readahead.c, Linux 6.18): a read that misses the page cache reads a window of
 * pages ahead of it, and the page at the window's async mark (PG_readahead) starts the next,
 * larger window when the reader reaches it. Windows grow ×4 while small, ×2 up to ra_pages
 * (read_ahead_kb / 4: 32 pages for the default 128 KiB). Pages are order-0 (see filemap.ts).
 */
import { type AddressSpace, filemap_add_folio, filemap_get_folio } from './filemap.ts';
import type { MM } from './mm.ts';
import { __alloc_pages } from './page_alloc/alloc_pages.ts';
import { PG_locked, PG_readahead, PG_uptodate, PG_writeback } from './page-flags.ts';
import { vm_event_index } from './vmstat_items.ts';

/** VM_READAHEAD_PAGES: the default window, 128 KiB. */
export const VM_READAHEAD_PAGES = 32;

const PGPGIN = vm_event_index('pgpgin');

/** struct file_ra_state: one open file's readahead window. */
export class FileRaState {
  start = 0;
  size = 0;
  async_size = 0;
  /** The folio order the next window would use (grows by 2 per async window). */
  order = 0;
  /** ra_pages: the maximum window (0 disables readahead). */
  ra_pages = VM_READAHEAD_PAGES;
  /** Byte position where the previous read ended (-1 before the first read). */
  prev_pos = -1;
}

/** Where readahead allocates and what it read. */
export interface ReadaheadControl {
  mm: MM;
  mapping: AddressSpace;
  ra: FileRaState;
  nid: number;
  cpu: number;
  /** FMODE_RANDOM (POSIX_FADV_RANDOM): read exactly what is asked. */
  random?: boolean;
  /** Pages read from the device so far. */
  nr_read: number;
}

function roundup_pow_of_two(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/** kernel: mm/readahead.c get_init_ra_size() */
export function get_init_ra_size(size: number, max: number): number {
  const newsize = roundup_pow_of_two(size);
  if (newsize <= max / 32) return newsize * 4;
  if (newsize <= max / 4) return newsize * 2;
  return max;
}

/** kernel: mm/readahead.c get_next_ra_size() */
export function get_next_ra_size(ra: FileRaState, max: number): number {
  const cur = ra.size;
  if (cur < max / 16) return 4 * cur;
  if (cur <= max / 2) return 2 * cur;
  return max;
}

/**
 * kernel: mm/readahead.c page_cache_ra_unbounded()
 * Allocate and read the missing pages of [index, index + nr_to_read), marking the page
 * `lookahead_size` from the end PG_readahead. Stops at the first allocation failure (readahead
 * allocations may fail quietly: readahead_gfp_mask adds __GFP_NORETRY | __GFP_NOWARN).
 */
export function page_cache_ra_unbounded(
  ractl: ReadaheadControl,
  index: number,
  nr_to_read: number,
  lookahead_size: number,
): void {
  const { mm, mapping } = ractl;
  const mark = lookahead_size <= nr_to_read ? nr_to_read - lookahead_size : -1;
  const gfp = mapping.gfp_mask | READAHEAD_GFP;
  const f = mm.frames;
  // The batch's pages stay locked until their read completes (read_pages): reclaim run by a
  // later allocation of the batch cannot take them.
  const batch: number[] = [];
  for (let i = 0; i < nr_to_read; i++) {
    if (filemap_get_folio(mapping, index + i) >= 0) continue;
    const pfn = __alloc_pages(mm, gfp, 0, ractl.nid, ractl.cpu);
    if (pfn < 0) break;
    f.flags[pfn] |= PG_locked | (i === mark ? PG_readahead : 0);
    filemap_add_folio(mm, mapping, pfn, index + i);
    batch.push(pfn);
    ractl.nr_read++;
    mm.vm_events[PGPGIN] += 8; // sectors (/proc/vmstat halves them into KiB)
  }
  // The device fills the pages: uptodate and unlocked when the read completes (at once here).
  for (const pfn of batch) f.flags[pfn] = (f.flags[pfn] & ~PG_locked) | PG_uptodate;
}

// __GFP_NORETRY | __GFP_NOWARN (readahead_gfp_mask).
const READAHEAD_GFP = 0x10000 | 0x2000;

/** kernel: mm/readahead.c do_page_cache_ra(): clipped to the file's last page. */
function do_page_cache_ra(
  ractl: ReadaheadControl,
  index: number,
  nr_to_read: number,
  lookahead: number,
): void {
  const isize = ractl.mapping.i_size;
  if (isize === 0) return;
  const end_index = Math.floor((isize - 1) / 4096);
  if (index > end_index) return;
  if (nr_to_read > end_index - index) nr_to_read = end_index - index + 1;
  page_cache_ra_unbounded(ractl, index, nr_to_read, lookahead);
}

/**
 * kernel: mm/readahead.c page_cache_ra_order() for a mapping without large folios: the order
 * goes back to 0 (so the next async window aligns its end to 4 pages again), then read the
 * window ra.start .. ra.start + ra.size with the async mark ra.async_size from its end.
 */
export function page_cache_ra_order(ractl: ReadaheadControl): void {
  const ra = ractl.ra;
  ra.order = 0;
  do_page_cache_ra(ractl, ra.start, ra.size, ra.async_size);
}

/**
 * kernel: mm/readahead.c ractl_max_pages(): a request larger than the readahead window may read
 * up to the device's optimal I/O size (bdi->io_pages).
 */
function ractl_max_pages(ractl: ReadaheadControl, req_size: number): number {
  const max_pages = ractl.ra.ra_pages;
  const io_pages = ractl.mapping.bdi?.io_pages ?? 0;
  if (req_size > max_pages && io_pages > max_pages) return Math.min(req_size, io_pages);
  return max_pages;
}

/**
 * kernel: mm/readahead.c force_page_cache_ra(): exactly the request, at most the larger of the
 * device's optimal I/O size and the readahead window, in 2 MiB chunks.
 */
export function force_page_cache_ra(ractl: ReadaheadControl, index: number, nr_to_read: number): void {
  nr_to_read = Math.min(nr_to_read, Math.max(ractl.mapping.bdi?.io_pages ?? 0, ractl.ra.ra_pages));
  while (nr_to_read > 0) {
    const chunk = Math.min(512, nr_to_read);
    do_page_cache_ra(ractl, index, chunk, 0);
    index += chunk;
    nr_to_read -= chunk;
  }
}

/** The first index at or below `index` that is not cached, within `max` (page_cache_prev_miss). */
function page_cache_prev_miss(as: AddressSpace, index: number, max: number): number {
  for (let i = 0; i < max; i++, index--) {
    if (index < 0) return -1; // ULONG_MAX: everything down to 0 is cached
    if (filemap_get_folio(as, index) < 0) return index;
  }
  return index;
}

/** The first index at or above `index` that is not cached, within `max` (page_cache_next_miss). */
function page_cache_next_miss(as: AddressSpace, index: number, max: number): number {
  for (let i = 0; i < max; i++, index++) if (filemap_get_folio(as, index) < 0) return index;
  return index;
}

/**
 * kernel: mm/readahead.c page_cache_sync_ra()
 * A read of `req_count` pages at `index` missed the cache: start a window at `index` (sequential
 * reads and reads from the start of the file), read the request alone (a random read), or size
 * the window from the run of cached pages before it (an interleaved sequential stream).
 */
export function page_cache_sync_ra(ractl: ReadaheadControl, index: number, req_count: number): void {
  const ra = ractl.ra;
  if (ractl.random || !ra.ra_pages) {
    force_page_cache_ra(ractl, index, ra.ra_pages ? req_count : 1);
    return;
  }
  const max_pages = ractl_max_pages(ractl, req_count);
  // (index - prev_index) is unsigned: only the page after the last read, or the same page, is
  // sequential (never a page before it, nor anything before the first read).
  const prev_index = ra.prev_pos < 0 ? -1 : Math.floor(ra.prev_pos / 4096);
  const sequential = prev_index >= 0 && index - prev_index >= 0 && index - prev_index <= 1;
  if (!index || req_count > max_pages || sequential) {
    ra.start = index;
    ra.size = get_init_ra_size(req_count, max_pages);
    ra.async_size = ra.size > req_count ? ra.size - req_count : ra.size >> 1;
  } else {
    const miss = page_cache_prev_miss(ractl.mapping, index - 1, max_pages);
    let contig_count = index - miss - 1;
    if (contig_count <= req_count) {
      do_page_cache_ra(ractl, index, req_count, 0);
      return;
    }
    if (miss < 0) contig_count *= 2;
    ra.start = index;
    ra.size = Math.min(contig_count + req_count, max_pages);
    ra.async_size = 1;
  }
  ra.order = 0;
  page_cache_ra_order(ractl);
}

/**
 * kernel: mm/readahead.c page_cache_async_ra()
 * The reader reached the PG_readahead page `pfn` at `index`: clear the mark and read the next
 * window, twice (or four times) the last while it is small.
 */
export function page_cache_async_ra(
  ractl: ReadaheadControl,
  pfn: number,
  index: number,
  req_count: number,
): void {
  const ra = ractl.ra;
  const f = ractl.mm.frames;
  if (!ra.ra_pages || f.flags[pfn] & PG_writeback) return;
  f.flags[pfn] &= ~PG_readahead;
  const max_pages = ractl_max_pages(ractl, req_count);
  const expected = ra.start + ra.size - ra.async_size;
  if (index === expected) {
    ra.start += ra.size;
    ra.size = Math.max(ra.size, get_next_ra_size(ra, max_pages));
  } else {
    const start = page_cache_next_miss(ractl.mapping, index + 1, max_pages);
    if (!start || start - index > max_pages) return;
    ra.start = start;
    ra.size = start - index; // the old async_size
    ra.size += req_count;
    ra.size = get_next_ra_size(ra, max_pages);
  }
  // 6.18 aligns the window's end to the folio order it would use next; for a mapping that
  // only takes order-0 pages page_cache_ra_order() resets the order, so this is always 4 pages.
  ra.order += 2;
  const align = 2 ** Math.min(ra.order, ffs(max_pages) - 1);
  const end = ra.start + ra.size;
  const aligned_end = end - (end % align);
  if (aligned_end > ra.start) ra.size -= end - aligned_end;
  ra.async_size = ra.size;
  page_cache_ra_order(ractl);
}

/** ffs(): the 1-based index of the lowest set bit. */
function ffs(x: number): number {
  return 31 - Math.clz32(x & -x) + 1;
}
