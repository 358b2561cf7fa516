/**
 * Dirty page limits and writeback (mm/page-writeback.c, fs/fs-writeback.c). Writers dirty page
 * cache pages; the flusher writes them to their device at its bandwidth: every
 * dirty_writeback_centisecs it writes inodes dirty for longer than dirty_expire_centisecs, and
 * whenever dirty memory exceeds the background threshold it writes until it is below. Pages
 * under writeback cannot be reclaimed until the write completes.
 *
 * balance_dirty_pages() throttles a writer above the dirty threshold until writeback brings
 * dirty memory back down. The throttled writer's wait is modelled by writing its own file's pages
 * until dirty memory is back under the limit, the writer waiting (wait_on_device()) while the
 * device writes them after what it already has queued.
 */
import {
  type AddressSpace,
  folio_end_writeback,
  folio_start_writeback,
  NR_FILE_DIRTY,
  NR_WRITEBACK,
} from './filemap.ts';
import type { MM } from './mm.ts';
import { PAGE_SIZE } from './mmzone.ts';
import { PG_writeback } from './page-flags.ts';
import { global_node_page_state, global_zone_page_state } from './vmstat.ts';
import { NR_FREE_PAGES, node_stat_index, vm_event_index } from './vmstat_items.ts';
import type { Work } from './workqueue.ts';

const NR_INACTIVE_FILE = node_stat_index('nr_inactive_file');
const NR_ACTIVE_FILE = node_stat_index('nr_active_file');
const PGPGOUT = vm_event_index('pgpgout');

/** The writeback sysctls of mm/page-writeback.c (vm_page_dirty_table), defaults of 6.18. */
export interface DirtySysctls {
  dirty_background_ratio: number;
  dirty_background_bytes: number;
  dirty_ratio: number;
  dirty_bytes: number;
  dirty_writeback_centisecs: number;
  dirty_expire_centisecs: number;
  laptop_mode: number;
}

export function default_dirty_sysctls(): DirtySysctls {
  return {
    dirty_background_ratio: 10,
    dirty_background_bytes: 0,
    dirty_ratio: 20,
    dirty_bytes: 0,
    dirty_writeback_centisecs: 500,
    dirty_expire_centisecs: 3000,
    laptop_mode: 0,
  };
}

/**
 * kernel: mm/page-writeback.c global_dirtyable_memory()
 * Free pages less the kernel's reserves (totalreserve_pages), plus the file LRU pages, plus 1 so
 * it is never 0 (no highmem on x86-64).
 */
export function global_dirtyable_memory(mm: MM): number {
  let x = global_zone_page_state(mm, NR_FREE_PAGES);
  x -= Math.min(x, mm.totalreserve_pages);
  x += global_node_page_state(mm, NR_INACTIVE_FILE);
  x += global_node_page_state(mm, NR_ACTIVE_FILE);
  return x + 1;
}

/**
 * kernel: mm/page-writeback.c domain_dirty_limits() (global domain, non-RT task)
 * dirty_bytes / dirty_background_bytes, when set, override the ratios (rounded up to pages). The
 * ratios become per-PAGE_SIZE fractions first (20% -> 819/4096, 10% -> 409/4096), so
 * thresh = 819 * avail / 4096 and bg = 409 * avail / 4096, floored; bg drops to thresh / 2 if it
 * reaches thresh. Worked example from the real machine: avail 6118478 gives 1223396 and 610951.
 */
export function domain_dirty_limits(
  avail: number,
  s: DirtySysctls = default_dirty_sysctls(),
): { background: number; dirty: number } {
  const ratio = Math.floor((s.dirty_ratio * PAGE_SIZE) / 100);
  const bg_ratio = Math.floor((s.dirty_background_ratio * PAGE_SIZE) / 100);
  let thresh = s.dirty_bytes ? Math.ceil(s.dirty_bytes / PAGE_SIZE) : Math.floor((ratio * avail) / PAGE_SIZE);
  let bg_thresh = s.dirty_background_bytes
    ? Math.ceil(s.dirty_background_bytes / PAGE_SIZE)
    : Math.floor((bg_ratio * avail) / PAGE_SIZE);
  if (thresh > 0xffffffff) thresh = 0xffffffff;
  if (bg_thresh >= thresh) bg_thresh = Math.floor(thresh / 2);
  return { background: bg_thresh, dirty: thresh };
}

/** kernel: mm/page-writeback.c global_dirty_limits(): the limits /proc/vmstat prints. */
export function global_dirty_limits(mm: MM): { background: number; dirty: number } {
  return domain_dirty_limits(global_dirtyable_memory(mm), mm.dirty);
}

/** The flusher's state (struct bdi_writeback, one for the machine: the model has one disk). */
export class Writeback {
  /** Simulated ns until which the device is busy with writes already submitted. */
  busy_until = 0;
  /** A flusher run is queued on the clock. */
  queued = false;
  /** Address spaces with dirty pages, in the order they became dirty (b_dirty). */
  readonly b_dirty = new Set<AddressSpace>();
  /** WB_start_all: reclaim asked for everything dirty to be written. */
  start_all = false;
}

/** Pages the flusher submits per slice of one inode (MAX_WRITEBACK_PAGES). */
const MAX_WRITEBACK_PAGES = 1024;

/**
 * Submit writeback for up to `nr` dirty pages of `as` (those at page indices [first, last) if
 * given): each becomes PG_writeback and completes when the device has written it at its
 * bandwidth (a completion event per submitted batch). Returns the pages submitted.
 */
export function writeback_pages(
  mm: MM,
  as: AddressSpace,
  nr: number,
  first = 0,
  last = Number.POSITIVE_INFINITY,
): number {
  if (!as.bdi || !as.nr_dirty) return 0;
  const f = mm.frames;
  const batch: number[] = [];
  for (const pfn of as.dirty_pages) {
    if (batch.length >= nr) break;
    if (f.index[pfn] >= first && f.index[pfn] < last) batch.push(pfn);
  }
  if (!batch.length) return 0;
  for (const pfn of batch) folio_start_writeback(mm, as, pfn);
  mm.vm_events[PGPGOUT] += 8 * batch.length;
  const wb = mm.writeback;
  const now = mm.now();
  wb.busy_until = Math.max(wb.busy_until, now) + (batch.length * PAGE_SIZE * 1e9) / as.bdi.write_bw;
  mm.defer(wb.busy_until - now, new WritebackDone(mm, batch, f.mapping[batch[0]]));
  return batch.length;
}

/** The device finished writing a batch (end_bio → folio_end_writeback()). */
class WritebackDone implements Work {
  constructor(
    readonly mm: MM,
    readonly batch: number[],
    readonly mapping: number,
  ) {}

  run(): void {
    const { mm, batch, mapping } = this;
    const f = mm.frames;
    for (const pfn of batch) {
      // Truncation ends writeback of the pages it removes; skip those.
      if (f.flags[pfn] & PG_writeback && f.mapping[pfn] === mapping) folio_end_writeback(mm, pfn);
    }
  }
}

/** The flusher's work item (wb->dwork): one wb_workfn() run. */
class WbWork implements Work {
  constructor(readonly mm: MM) {}

  run(): void {
    wb_workfn(this.mm);
  }
}

/** The periodic flusher wake-up (wb_wakeup_delayed(), every dirty_writeback_centisecs). */
class WbPeriodic implements Work {
  constructor(readonly mm: MM) {}

  run(): void {
    const mm = this.mm;
    const period = mm.dirty.dirty_writeback_centisecs * 1e7;
    if (period && mm.writeback.b_dirty.size) wb_wakeup(mm);
    mm.defer(period || 5e9, this);
  }
}

/**
 * kernel: fs/fs-writeback.c wb_do_writeback() (wb_check_start_all, wb_check_old_data_flush,
 * wb_check_background_flush)
 * One flusher run: everything dirty when reclaim asked for it (start_all), else the inodes dirty
 * longer than dirty_expire_centisecs, then, oldest inode first, whatever keeps dirty memory above
 * the background threshold. A run submits at most a second's worth of device bandwidth and comes
 * back when the device has written it, until the work is done.
 */
export function wb_workfn(mm: MM): void {
  const wb = mm.writeback;
  wb.queued = false;
  const now = mm.now();
  const expire = mm.dirty.dirty_expire_centisecs * 1e7;
  const limits = global_dirty_limits(mm);
  const over_bg = (): boolean => global_node_page_state(mm, NR_FILE_DIRTY) > limits.background;
  let budget = -1;
  let more = false;
  for (const as of [...wb.b_dirty]) {
    const expired = as.dirtied_when >= 0 && now - as.dirtied_when >= expire;
    if (!wb.start_all && !expired && !over_bg()) continue;
    if (budget < 0) budget = Math.floor(as.bdi!.write_bw / PAGE_SIZE);
    while (as.nr_dirty && budget > 0 && (wb.start_all || expired || over_bg()))
      budget -= writeback_pages(mm, as, Math.min(MAX_WRITEBACK_PAGES, budget));
    if (budget <= 0) {
      more = true;
      break;
    }
  }
  if (!wb.b_dirty.size) wb.start_all = false;
  // A run's worth was not enough: continue once the device has written it.
  if (more && wb.b_dirty.size) wb_wakeup(mm, Math.max(0, wb.busy_until - now));
}

/**
 * kernel: fs/fs-writeback.c wakeup_flusher_threads(WB_REASON_VMSCAN) → wb_start_writeback()
 * Reclaim found only dirty pages: write back everything that is dirty now.
 */
export function wakeup_flusher_threads(mm: MM): void {
  mm.writeback.start_all = true;
  wb_wakeup(mm);
}

/** Queue a flusher run `delay` ns from now (wb_wakeup / wb_start_background_writeback). */
export function wb_wakeup(mm: MM, delay = 0): void {
  const wb = mm.writeback;
  if (wb.queued) return;
  wb.queued = true;
  mm.defer(delay, new WbWork(mm));
}

/**
 * kernel: mm/page-writeback.c balance_dirty_pages_ratelimited()
 * After a write dirtied pages of `as`: wake the flusher above the background threshold; above
 * the dirty threshold, throttle the writer (see the file comment).
 */
export function balance_dirty_pages(mm: MM, as: AddressSpace): void {
  const limits = global_dirty_limits(mm);
  const dirty = global_node_page_state(mm, NR_FILE_DIRTY);
  if (dirty > limits.background) wb_wakeup(mm);
  while (
    as.nr_dirty &&
    global_node_page_state(mm, NR_FILE_DIRTY) + global_node_page_state(mm, NR_WRITEBACK) > limits.dirty
  ) {
    let n = 0;
    for (const pfn of as.dirty_pages) {
      if (n === MAX_WRITEBACK_PAGES) break;
      folio_start_writeback(mm, as, pfn);
      folio_end_writeback(mm, pfn);
      n++;
    }
    mm.vm_events[PGPGOUT] += 8 * n;
    wait_on_device(mm, as, n);
  }
}

/**
 * The running task waits while `as`'s device writes `nr_pages` after what it already has queued
 * (fsync(), a throttled writer): the device is busy that much longer, and the wait is part of
 * the task's time in the kernel.
 */
export function wait_on_device(mm: MM, as: AddressSpace, nr_pages: number): void {
  if (!as.bdi || !nr_pages) return;
  const wb = mm.writeback;
  const now = mm.now();
  wb.busy_until = Math.max(wb.busy_until, now) + (nr_pages * PAGE_SIZE * 1e9) / as.bdi.write_bw;
  mm.kernel_ns += wb.busy_until - now;
}

/** Arm the periodic flusher (dirty_writeback_centisecs; 0 disables periodic writeback). */
export function wb_start_periodic(mm: MM): void {
  mm.defer(mm.dirty.dirty_writeback_centisecs * 1e7 || 5e9, new WbPeriodic(mm));
}
