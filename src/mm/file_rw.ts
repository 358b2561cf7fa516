/**
 * read() and write() through the page cache (mm/filemap.c filemap_read() and
 * generic_perform_write(), mm/shmem.c shmem_file_read_iter() and shmem_write_begin()). Only the
 * memory side is modelled: which pages are looked up, read in (with readahead), created,
 * dirtied and aged; no bytes move.
 */
import {
  type AddressSpace,
  filemap_create_folio,
  filemap_get_folio,
  folio_mark_accessed,
  folio_mark_dirty,
} from './filemap.ts';
import type { MM } from './mm.ts';
import { PAGE_SIZE } from './mmzone.ts';
import { PG_locked, PG_readahead } from './page-flags.ts';
import { balance_dirty_pages } from './page-writeback.ts';
import {
  type FileRaState,
  page_cache_async_ra,
  page_cache_sync_ra,
  type ReadaheadControl,
} from './readahead.ts';
import { type ShmemSbInfo, shmem_get_folio } from './shmem.ts';
import { vm_event_index } from './vmstat_items.ts';

const PGPGIN = vm_event_index('pgpgin');
/** current->nr_dirtied_pause at its start: 128 KiB of pages (mm/page-writeback.c). */
const DIRTIED_PAUSE = 32;

/** Where a read or write runs: its task's CPU and node, and the file's readahead state. */
export interface FileIoContext {
  nid: number;
  cpu: number;
  ra: FileRaState;
  /** FMODE_RANDOM (POSIX_FADV_RANDOM). */
  random?: boolean;
  now: number;
}

/** The result of a read or write: bytes done, or -errno (-ENOMEM, -ENOSPC). */
export type IoResult = number;

/**
 * kernel: mm/filemap.c filemap_read() (filemap_get_pages, filemap_readahead)
 * Read [pos, pos + len) clipped to i_size. A missing page starts synchronous readahead; a page
 * carrying the readahead mark starts the next window; each page read is marked accessed once
 * per read (not again for a read that stays in the page of the previous one). Returns the bytes
 * read, or -ENOMEM if not even the first page could be brought in.
 */
export function filemap_read(
  mm: MM,
  as: AddressSpace,
  pos: number,
  len: number,
  io: FileIoContext,
): IoResult {
  const end = Math.min(pos + len, as.i_size);
  if (pos >= end) return 0;
  const ra = io.ra;
  const ractl: ReadaheadControl = {
    mm,
    mapping: as,
    ra,
    nid: io.nid,
    cpu: io.cpu,
    random: io.random,
    nr_read: 0,
  };
  const first = Math.floor(pos / PAGE_SIZE);
  const last = Math.floor((end - 1) / PAGE_SIZE);
  // last_index: the request's own end, not clipped to i_size (readahead clips itself).
  const req_last = Math.ceil((pos + len) / PAGE_SIZE) - 1;
  const f = mm.frames;
  let done = pos;
  for (let index = first; index <= last; index++) {
    let pfn = filemap_get_folio(as, index);
    if (pfn < 0) {
      page_cache_sync_ra(ractl, index, req_last - index + 1);
      pfn = filemap_get_folio(as, index);
      if (pfn < 0) {
        // filemap_create_folio(): readahead could not allocate; read this page alone.
        pfn = filemap_create_folio(mm, as, index, io.nid, io.cpu);
        if (pfn < 0) break;
        mm.vm_events[PGPGIN] += 8;
      }
    }
    if (f.flags[pfn] & PG_readahead) {
      // The page is held (a folio reference in the kernel) while readahead allocates.
      f.flags[pfn] |= PG_locked;
      page_cache_async_ra(ractl, pfn, index, req_last - index + 1);
      f.flags[pfn] &= ~PG_locked;
    }
    // Rereading the page the previous read ended in does not count as a new access
    // (pos_same_folio(ki_pos, prev_pos - 1)).
    if (!(index === first && ra.prev_pos > 0 && Math.floor((ra.prev_pos - 1) / PAGE_SIZE) === index))
      folio_mark_accessed(mm, pfn);
    done = Math.min(end, (index + 1) * PAGE_SIZE);
  }
  if (done === pos) return -12; // -ENOMEM
  ra.prev_pos = done; // last_pos: the end of what was read
  copy_charge(mm, done - pos);
  return done - pos;
}

/**
 * kernel: mm/shmem.c shmem_file_read_iter()
 * A tmpfs read: holes read as zeroes without allocating; present pages are marked accessed.
 */
export function shmem_file_read(mm: MM, as: AddressSpace, pos: number, len: number): IoResult {
  const end = Math.min(pos + len, as.i_size);
  if (pos >= end) return 0;
  for (let index = Math.floor(pos / PAGE_SIZE); index <= Math.floor((end - 1) / PAGE_SIZE); index++) {
    const pfn = filemap_get_folio(as, index);
    if (pfn >= 0) folio_mark_accessed(mm, pfn);
  }
  copy_charge(mm, end - pos);
  return end - pos;
}

/**
 * kernel: mm/filemap.c generic_perform_write() with a block filesystem's write_begin/write_end,
 * or mm/shmem.c's for tmpfs (`sbinfo` set)
 * Write [pos, pos + len): each page is found or created — a disk file's partly overwritten page
 * inside i_size is read first — then dirtied; i_size grows to the end of the write. Afterwards
 * balance_dirty_pages() may wake or stand in for the flusher. Returns the bytes written, or
 * -ENOMEM / -ENOSPC if not even the first page could be written.
 */
export function generic_perform_write(
  mm: MM,
  as: AddressSpace,
  sbinfo: ShmemSbInfo | null,
  pos: number,
  len: number,
  io: FileIoContext,
): IoResult {
  if (len === 0) return 0;
  const end = pos + len;
  let done = pos;
  let err = 0;
  let dirtied = 0;
  for (let index = Math.floor(pos / PAGE_SIZE); done < end; index++) {
    let pfn: number;
    if (sbinfo) {
      pfn = shmem_get_folio(mm, as, sbinfo, index, io.nid, io.cpu);
    } else {
      pfn = filemap_get_folio(as, index);
      if (pfn < 0) {
        pfn = filemap_create_folio(mm, as, index, io.nid, io.cpu);
        const start = index * PAGE_SIZE;
        const whole = done <= start && end >= start + PAGE_SIZE;
        // block_write_begin(): a partial write inside the file reads the page first.
        if (pfn >= 0 && !whole && start < as.i_size) mm.vm_events[PGPGIN] += 8;
        if (pfn < 0) pfn = -12;
      }
    }
    if (pfn < 0) {
      err = pfn;
      break;
    }
    if (folio_mark_dirty(mm, as, pfn, io.now)) dirtied++;
    done = Math.min(end, (index + 1) * PAGE_SIZE);
    if (done > as.i_size) as.i_size = done;
    // balance_dirty_pages_ratelimited() after every folio: the writer stops to throttle once
    // it has dirtied nr_dirtied_pause (32) pages.
    if (!sbinfo && dirtied >= DIRTIED_PAUSE) {
      balance_dirty_pages(mm, as);
      dirtied = 0;
    }
  }
  if (!sbinfo && dirtied) balance_dirty_pages(mm, as);
  copy_charge(mm, done - pos);
  return done > pos ? done - pos : err;
}

/** copy_page_to_iter() / copy_page_from_iter(): the CPU time of copying `bytes`. */
function copy_charge(mm: MM, bytes: number): void {
  mm.kernel_ns += (bytes / PAGE_SIZE) * mm.cost.copy_page;
}
