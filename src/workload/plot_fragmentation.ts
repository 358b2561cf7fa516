/**
 * Fragmentation events in the JSON schema of mcgrof/plot-fragmentation (fragmentation_tracker.py
 * writes it, fragmentation_visualizer.py and _fast.py plot it), so a simulated run and a real
 * kernel's trace can be plotted, and A/B-compared, by the same tool. docs/plot-fragmentation.md
 * maps each field to the model.
 *
 * The probes are closures: record() attaches them for one run only and puts the previous probes
 * back however the run ends (a clone taken meanwhile starts without them, as clone() leaves
 * probes behind).
 */
import { writeFileSync } from 'node:fs';
import { fragmentation_index } from '../mm/compaction.ts';
import { migratetype_names, zone_names } from '../mm/mmzone.ts';
import { COMPACT_SUCCESS } from '../mm/page_alloc/context.ts';
import type { Machine } from '../sim/machine.ts';

/** kmem:mm_page_alloc_extfrag, as the tracker writes it. */
export interface ExtfragEvent {
  timestamp: number;
  absolute_time: string;
  event_type: 'extfrag';
  pid: number;
  tid: number;
  comm: string;
  order: number;
  fallback_order: number;
  /** The type whose free block was taken (the tracepoint's fallback_migratetype). */
  migrate_from: string;
  /** The type the allocation asked for (alloc_migratetype). */
  migrate_to: string;
  /** A steal leaves the pageblock with its old type; a claim converts it (change_ownership). */
  is_steal: boolean;
  node: number;
  fragmentation_index: number;
}

/** A direct or kcompactd compaction run that ended with COMPACT_SUCCESS. */
export interface CompactionSuccessEvent {
  timestamp: number;
  absolute_time: string;
  event_type: 'compaction_success';
  pid: number;
  comm: string;
  order: number;
  fragmentation_index: number;
  zone: string;
  node: number;
}

/** A compaction run that ended with anything else; the tracker writes index -1 and no zone. */
export interface CompactionFailureEvent {
  timestamp: number;
  absolute_time: string;
  event_type: 'compaction_failure';
  pid: number;
  comm: string;
  order: number;
  fragmentation_index: -1;
}

export type PlotFragmentationEvent = ExtfragEvent | CompactionSuccessEvent | CompactionFailureEvent;

export interface PlotFragmentationTrace {
  metadata: {
    start_time: number;
    end_time: number;
    duration: number;
    total_events: number;
    kernel_version: string;
  };
  events: PlotFragmentationEvent[];
  statistics: {
    extfrag: Record<string, number>;
    compaction: Record<string, { success: number; failure: number }>;
  };
}

export interface RecordOptions {
  /**
   * Wall-clock seconds since the epoch that simulated time 0 of the run stands for: it feeds
   * metadata.start_time and each absolute_time. Fixed (default 0), so output depends on the
   * seed alone.
   */
  start_time?: number;
  /** metadata.kernel_version; default "6.18.0-mapcontig". */
  kernel_version?: string;
  /** The comm of every event (the model does not track which task allocates); default "mapcontig". */
  comm?: string;
}

/** The tracker's names are the kernel's migratetype_names, upper-cased (its colour keys). */
function mt_name(mt: number): string {
  const name = migratetype_names[mt];
  return name === undefined ? `TYPE_${mt}` : name.toUpperCase();
}

/** Python's datetime.isoformat() of a naive time: microseconds, no zone. */
function iso_time(seconds: number): string {
  const us = Math.round(seconds * 1e6);
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // 2025-09-03T13:03:33.518Z
  return `${iso.slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}`;
}

/**
 * Run `fn` on `machine` with probes on kmem:mm_page_alloc_extfrag and
 * compaction:mm_compaction_begin/end, and return what they saw as a plot-fragmentation trace.
 * Timestamps are simulated seconds since the call. Probes already attached keep firing.
 */
export function record(machine: Machine, fn: () => void, opts: RecordOptions = {}): PlotFragmentationTrace {
  const start_time = opts.start_time ?? 0;
  if (!Number.isFinite(start_time) || start_time < 0)
    throw new RangeError(
      `plot-fragmentation: start_time ${start_time} is not a time in seconds since the epoch`,
    );
  const comm = opts.comm ?? 'mapcontig';
  const mm = machine.mm;
  const trace = mm.trace;
  const t0 = machine.now;
  const events: PlotFragmentationEvent[] = [];
  const extfrag: Record<string, number> = {};
  const compaction: Record<string, { success: number; failure: number }> = {};
  const seconds = (): number => (machine.now - t0) / 1e9;
  // The index each running compaction started from, by zone: what made the run look worthwhile.
  const begin_index = new Map<string, number>();

  const saved_extfrag = trace.mm_page_alloc_extfrag;
  const saved_begin = trace.mm_compaction_begin;
  const saved_end = trace.mm_compaction_end;
  trace.mm_page_alloc_extfrag = (pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed) => {
    saved_extfrag?.(pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed);
    const zone = mm.page_zone(pfn);
    const t = seconds();
    events.push({
      timestamp: t,
      absolute_time: iso_time(start_time + t),
      event_type: 'extfrag',
      pid: 0,
      tid: 0,
      comm,
      order: alloc_order,
      fallback_order,
      migrate_from: mt_name(fallback_mt),
      migrate_to: mt_name(alloc_mt),
      is_steal: !claimed,
      node: zone === undefined ? -1 : zone.nid,
      // The tracker writes a per-order placeholder here; the model has the real index.
      fragmentation_index: zone === undefined ? -1 : fragmentation_index(zone, alloc_order),
    });
    extfrag[alloc_order] = (extfrag[alloc_order] ?? 0) + 1;
  };
  trace.mm_compaction_begin = (nid, zoneidx, order, sync) => {
    saved_begin?.(nid, zoneidx, order, sync);
    // compact_memory and proactive runs (order -1) have no order to index.
    if (order < 0) return;
    begin_index.set(`${nid}:${zoneidx}`, fragmentation_index(mm.nodes[nid].node_zones[zoneidx], order));
  };
  trace.mm_compaction_end = (nid, zoneidx, order, status) => {
    saved_end?.(nid, zoneidx, order, status);
    if (order < 0) return;
    const t = seconds();
    const key = `${nid}:${zoneidx}`;
    const index = begin_index.get(key) ?? -1;
    begin_index.delete(key);
    const stats = compaction[order] ?? { success: 0, failure: 0 };
    compaction[order] = stats;
    if (status === COMPACT_SUCCESS) {
      stats.success++;
      events.push({
        timestamp: t,
        absolute_time: iso_time(start_time + t),
        event_type: 'compaction_success',
        pid: 0,
        comm,
        order,
        fragmentation_index: index,
        zone: zone_names[zoneidx] ?? 'Unknown',
        node: nid,
      });
    } else {
      stats.failure++;
      events.push({
        timestamp: t,
        absolute_time: iso_time(start_time + t),
        event_type: 'compaction_failure',
        pid: 0,
        comm,
        order,
        fragmentation_index: -1,
      });
    }
  };
  try {
    fn();
  } finally {
    trace.mm_page_alloc_extfrag = saved_extfrag;
    trace.mm_compaction_begin = saved_begin;
    trace.mm_compaction_end = saved_end;
  }
  const duration = seconds();
  return {
    metadata: {
      start_time,
      end_time: start_time + duration,
      duration,
      total_events: events.length,
      kernel_version: opts.kernel_version ?? '6.18.0-mapcontig',
    },
    events,
    statistics: { extfrag, compaction },
  };
}

/** The trace as the tracker's json.dump(output, f, indent=2) lays it out. */
export function format_trace(trace: PlotFragmentationTrace): string {
  return `${JSON.stringify(trace, null, 2)}\n`;
}

/** Write the trace to `path` (a new or existing file; its directory must exist). */
export function write_trace(path: string, trace: PlotFragmentationTrace): void {
  if (typeof path !== 'string' || path === '')
    throw new TypeError('plot-fragmentation: no output path given');
  try {
    writeFileSync(path, format_trace(trace));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'its directory does not exist'
        : e.code === 'EISDIR'
          ? 'it is a directory'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied'
            : (e.message ?? String(err));
    throw new Error(`plot-fragmentation: cannot write ${path}: ${why}`, { cause: err });
  }
}
