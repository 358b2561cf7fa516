/**
 * The snapshot's manifest (`snapshot.json`) and the one error every bad snapshot raises.
 * docs/snapshot.md describes the layout.
 */

/** The manifest's `format` value. */
export const SNAPSHOT_FORMAT = 'mapcontig-snapshot';
/** The manifest version this code writes; readers accept this one and below. */
export const SNAPSHOT_VERSION = 1;
/** Name of the manifest file at the snapshot's root. */
export const MANIFEST_NAME = 'snapshot.json';

/** A run of PFNs dumped from /proc/kpageflags and /proc/kpagecount, in file order. */
export interface PfnRange {
  start_pfn: number;
  nr_pages: number;
  /** The zone the range lies in, when the capture knew it ("Node 0, zone Normal" → node 0, "Normal"). */
  node?: number;
  zone?: string;
}

/** One stored file. */
export interface ManifestFile {
  /** Path inside the snapshot, no leading slash (`proc/buddyinfo`, `proc/kpageflags.gz`). */
  path: string;
  /** Size of the file's contents as read from the machine. */
  bytes: number;
  /** Size on disk after compression, for compressed files. */
  stored_bytes?: number;
  compression?: 'gzip';
}

/** A file the capture could not take, why, and what its absence costs an import. */
export interface ManifestMissing {
  path: string;
  reason: string;
  cost: string;
}

/** `snapshot.json`. */
export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  kernel_release: string;
  /** ISO 8601 wall-clock time of the capture: the only wall-clock value in mapcontig. */
  captured_at: string;
  /** Effective uid 0 at capture time. */
  root: boolean;
  /** The page size (kpageflags is per PFN of this size). */
  page_size: number;
  files: ManifestFile[];
  /** The PFN ranges of kpageflags/kpagecount, concatenated in this order; empty without them. */
  pfn_ranges: PfnRange[];
  /** How pfn_ranges were chosen. */
  pfn_ranges_source: string;
  missing: ManifestMissing[];
  /** Wall-clock milliseconds the capture took, and of that the kpageflags+kpagecount dump. */
  capture_ms: number;
  kpage_ms?: number;
  tool: string;
}

/** What each file's absence costs an import (docs/snapshot.md, "Privileges"). */
export const MISSING_COST: Record<string, string> = {
  'proc/pagetypeinfo':
    'free blocks per migratetype and pageblock type counts unknown: pageblock migratetypes are estimated',
  'proc/slabinfo': 'slab caches unknown: slab pages are sized from meminfo totals only',
  'proc/iomem': 'System RAM ranges unknown: holes are inferred from zoneinfo (spanned vs present)',
  'proc/kpageflags':
    'no per-page state: used pages are placed by estimate from buddyinfo/pagetypeinfo, so contiguity predictions are estimates',
  'proc/kpagecount': 'no map counts: shared and pinned pages cannot be told apart from private ones',
  'proc/vmstat': 'event counters and node page counts unknown',
  'proc/meminfo': 'memory totals (page cache, anon, slab, hugetlb) unknown',
  'proc/cmdline': 'boot parameters (cma=, hugepages=, kernelcore=, deferred_init=) unknown',
  'proc/swaps': 'swap devices unknown: reclaim is modelled without swap',
  'proc/config.gz':
    'kernel configuration unknown (CONFIG_CMA, CONFIG_PAGE_MAPCOUNT, …): Linux 6.18 defaults are assumed',
};
export const DEFAULT_MISSING_COST = 'the setting keeps its Linux 6.18 default on import';

/** A snapshot that cannot be used: names the file (relative to the snapshot) and the reason. */
export class SnapshotError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'SnapshotError';
  }
}
