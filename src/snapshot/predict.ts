/**
 * Predictions on an imported snapshot (docs/predict.md): how many hugetlb pages `nr_hugepages=N`
 * would yield now and after `compact_memory`, and whether each contender gets a contiguous buffer
 * now and after `compact_memory`, at what cost. Every question runs on its own copy of the
 * imported machine, so none sees another's effects.
 */
import { type Comparison, compareContenders, readVmstat } from '../contig/compare.ts';
import type { Machine } from '../sim/machine.ts';
import { type Imported, type ImportOptions, type ImportReport, importSnapshot } from './import.ts';
import type { Snapshot } from './read.ts';

export interface HugepagesOptions {
  /** The nr_hugepages value written. */
  count: number;
  /** Huge page size in kB (default 2048). */
  size_kb?: number;
}

/** One write of nr_hugepages and what it cost. */
export interface HugepagesWrite {
  /** nr_hugepages read back. */
  delivered: number;
  latency_ns: number;
  pages_migrated: number;
  compact_stall: number;
  pgsteal: number;
}

export interface HugepagesPrediction {
  size_kb: number;
  asked: number;
  /** The pool before (the snapshot's). */
  before: number;
  /** Delivered by the first write, now. */
  now: number;
  /** Delivered by the first write after `compact_memory` (the first pool released to it first). */
  after_compaction: number;
  /** The protocol's four writes in order: now, now again, after compaction, after compaction again. */
  writes: HugepagesWrite[];
  /** What `compact_memory` did: pages migrated and its latency. */
  compaction: { pages_migrated: number; latency_ns: number };
}

export interface ContigPrediction {
  bytes: number;
  now: Comparison;
  after_compaction: Comparison;
  /** compact_memory's own cost before the second round. */
  compaction: { pages_migrated: number; latency_ns: number };
}

/**
 * How far to trust an answer, from the fidelity measurements (docs/fidelity.md): the model's
 * prediction against what real kernels delivered on the same snapshots.
 */
export const EXPECTED_ERROR: Record<ImportReport['method'], { hugepages: string; contig: string }> = {
  kpageflags: {
    hugepages:
      'against Linux 6.1 (1 GiB QEMU guests, 55 runs): a median error of 2 pages, 11 at most, when unmovable ' +
      'memory decides (after compact_memory up to 61: the kernel itself jumps between two outcomes there); ' +
      '22 low on average, 44 at worst (25 after compact_memory) for a mixed load; a median of 53-82 and up to ' +
      '141 either way (87 after) when direct compaction races kswapd, where the kernel varies as much from ' +
      'boot to boot on the same state. Against Linux 6.18 with lazy zone growth: 48 of 48 writes exact. ' +
      '(docs/fidelity.md)',
    contig:
      'not measured against a real kernel (no kernel has MAP_CONTIG); it runs on the compaction, migration and ' +
      'reclaim whose nr_hugepages error is measured (docs/fidelity.md)',
  },
  estimate: {
    hugepages:
      'an ESTIMATE without kpageflags: against Linux 6.1 (51 runs) 32 low when unmovable memory decides, ' +
      '49 low on average for a mixed load, up to 378 off when compaction races kswapd; take a root snapshot ' +
      'for a closer answer (docs/fidelity.md)',
    contig:
      'an ESTIMATE without kpageflags, not measured against a real kernel: where pages sit is a guess, so ' +
      'answers that need compaction are the least certain (docs/import.md)',
  },
};

type Source = Snapshot | Imported;

function imported(src: Source, opts: ImportOptions): Imported {
  return 'machine' in src ? src : importSnapshot(src, opts);
}

/** The counters a write is measured by. */
function mark(m: Machine): { ns: number; v: Map<string, number> } {
  return { ns: m.kernel_ns, v: readVmstat(m) };
}

function delta(m: Machine, a: { ns: number; v: Map<string, number> }): Omit<HugepagesWrite, 'delivered'> {
  const v = readVmstat(m);
  const d = (k: string) => (v.get(k) ?? 0) - (a.v.get(k) ?? 0);
  return {
    latency_ns: m.kernel_ns - a.ns,
    pages_migrated: d('pgmigrate_success'),
    compact_stall: d('compact_stall'),
    pgsteal: d('pgsteal_kswapd') + d('pgsteal_direct') + d('pgsteal_khugepaged'),
  };
}

/** compact_memory on `m`, with what it migrated and took. */
function compactMemory(m: Machine): { pages_migrated: number; latency_ns: number } {
  const a = mark(m);
  m.writeFile('/proc/sys/vm/compact_memory', '1');
  const d = delta(m, a);
  return { pages_migrated: d.pages_migrated, latency_ns: d.latency_ns };
}

/**
 * The protocol the fidelity measurements use (docs/fidelity.md): write N twice and read back,
 * give the pool back, `compact_memory`, write N twice again, give it back.
 */
export function predictHugepages(
  src: Source,
  opts: HugepagesOptions,
  importOpts: ImportOptions = {},
): HugepagesPrediction {
  const size_kb = opts.size_kb ?? 2048;
  if (!Number.isInteger(opts.count) || opts.count < 0)
    throw new RangeError(`hugepages: ${opts.count} is not a page count`);
  const m = imported(src, importOpts).machine.clone();
  const path = `/sys/kernel/mm/hugepages/hugepages-${size_kb}kB/nr_hugepages`;
  let before: number;
  try {
    before = Number(m.readFile(path));
  } catch {
    throw new RangeError(`hugepages: the machine has no ${size_kb} kB huge page size`);
  }
  const write = (n: number): HugepagesWrite => {
    const a = mark(m);
    m.writeFile(path, String(n));
    return { delivered: Number(m.readFile(path)), ...delta(m, a) };
  };
  const writes = [write(opts.count), write(opts.count)];
  m.writeFile(path, String(before));
  const compaction = compactMemory(m);
  writes.push(write(opts.count), write(opts.count));
  m.writeFile(path, String(before));
  return {
    size_kb,
    asked: opts.count,
    before,
    now: writes[0].delivered,
    after_compaction: writes[2].delivered,
    writes,
    compaction,
  };
}

/** Each contender asks for `bytes` contiguous: on a copy as imported, and on a copy after compact_memory. */
export function predictContig(
  src: Source,
  opts: { bytes: number; policies?: string[]; uid?: number },
  importOpts: ImportOptions = {},
): ContigPrediction {
  const base = imported(src, importOpts).machine;
  const request = { bytes: opts.bytes, uid: opts.uid ?? 1000, gid: opts.uid ?? 1000 };
  const now = compareContenders({ copy: () => base.clone(), request, contenders: opts.policies });
  const compacted = base.clone();
  const compaction = compactMemory(compacted);
  const after_compaction = compareContenders({
    copy: () => compacted.clone(),
    request,
    contenders: opts.policies,
  });
  return { bytes: opts.bytes, now, after_compaction, compaction };
}
