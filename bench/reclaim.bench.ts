/**
 * Page reclaim throughput (mm/vmscan.c): pages scanned (or aged, or stolen) per second of
 * reclaim, on a 4 GiB one-node machine without swap (2 GiB with --quick) whose memory is mostly
 * clean page cache. The kernel's boot-time slab is left out (`early` all zero) so the LRU lists
 * hold only the benchmark's pages.
 *
 * Reclaim consumes its own input, so these rows cannot replay one pass as timeOps does. Each
 * row instead times a sequence of samples with performance.now() — a batch of reclaim calls
 * over a large page cache — and reports the median sample's rate, with the spread of ns/page
 * over the samples (min, p99) as the other benchmarks do over passes. Untimed samples run
 * first so TurboFan has compiled the path (WARMUP). Between samples of the kswapd, fault and
 * aging rows an untimed step restores the state (writes the freed memory full of page cache
 * again, re-activates the aged pages); the direct-reclaim rows drain one large cache, each
 * sample scanning a few thousand pages of it.
 *
 * - direct reclaim: m.mm.hooks.try_to_free_pages(0, GFP_HIGHUSER_MOVABLE, ac), with the
 *   AllocContext prepare_alloc_pages() builds for an anonymous fault on CPU 0, called in
 *   batches of 32. One call is one __alloc_pages_direct_reclaim()'s reclaim: at DEF_PRIORITY it
 *   scans inactive_file >> 12 pages (proportional reclaim), frees them, and runs the slab
 *   shrinkers. This times reclaim alone: no fault, no allocation retry, no pcp drain.
 * - anonymous faults under pressure: the same reclaim reached end to end, from write faults on
 *   a machine full of clean page cache (kswapd is queued but, with the clock stopped, never
 *   runs), against the same faults with memory free. The difference per scanned page is more
 *   than the direct row's ns/page: it also holds the slow path (wake_all_kswapds, the
 *   min-watermark retry) on every fault below the low watermark and the drain_all_pages()
 *   after each reclaim (the freed pages sit on the pcp lists, outside NR_FREE_PAGES).
 * - mapped page cache: as direct reclaim, over pages a MAP_SHARED mapping has faulted in, so
 *   each scan walks the file rmap (folio_referenced) and each free unmaps (try_to_unmap). The
 *   PTEs start young: the first call rotates the whole list once (FOLIOREF_KEEP) before
 *   anything is freed, as the kernel's would; it is reported apart, the samples are the second
 *   trip.
 * - kswapd: file writes push the free pages below the low watermark, which queues kswapd; the
 *   sample is m.advance(0), in which balance_pgdat() reclaims until a zone is back above its
 *   high watermark (default watermark_scale_factor: ~1-3k pages a wake-up).
 * - aging: shrink_node() at DEF_PRIORITY with force_deactivate over a node whose file pages are
 *   all active and whose inactive file list starts empty, so the work is shrink_active_list()
 *   (pgrefill; the detail counts the inactive pages scanned, 0 when the row is clean); the
 *   deactivated pages are re-activated by reading them twice between samples.
 */
import { GFP_HIGHUSER_MOVABLE, gfp_migratetype, gfp_zone } from '../src/mm/gfp.ts';
import { LRU_ACTIVE_FILE, LRU_INACTIVE_FILE } from '../src/mm/lru.ts';
import { type PglistData, ZONE_NORMAL } from '../src/mm/mmzone.ts';
import { AllocContext } from '../src/mm/page_alloc/context.ts';
import { DEF_PRIORITY } from '../src/mm/shrinker.ts';
import { ScanControl, shrink_node } from '../src/mm/vmscan.ts';
import { node_stat_index, vm_event_index } from '../src/mm/vmstat_items.ts';
import { Machine } from '../src/sim/machine.ts';
import type { Process } from '../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../src/vm/uapi.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';

const MiB = 2 ** 20;
const PAGE = 4096;

const PGSCAN_DIRECT = vm_event_index('pgscan_direct');
const PGSTEAL_DIRECT = vm_event_index('pgsteal_direct');
const PGSCAN_KSWAPD = vm_event_index('pgscan_kswapd');
const PGSTEAL_KSWAPD = vm_event_index('pgsteal_kswapd');
const PGREFILL = vm_event_index('pgrefill');
const PGDEACTIVATE = vm_event_index('pgdeactivate');
const PAGEOUTRUN = vm_event_index('pageoutrun');
const NR_LRU_BASE = node_stat_index('nr_inactive_anon');
const NR_FILE_MAPPED = node_stat_index('nr_mapped');

/** Machine size and workload sizes for the full and the quick run. */
interface Sizes {
  memory: string;
  /** MiB of clean page cache the direct and mapped rows drain. */
  cacheMiB: number;
  /** Timed samples per row (after the row's untimed warm-up samples, WARMUP). */
  samples: number;
  /** Run the invariant checker after each row (≈ 0.1 s per GiB: the full run only). */
  check: boolean;
}

function sizes(ctx: BenchContext): Sizes {
  return ctx.quick
    ? { memory: '2G', cacheMiB: 1024, samples: 12, check: false }
    : { memory: '4G', cacheMiB: 3072, samples: 40, check: true };
}

/**
 * Untimed samples before each row's timed ones. TurboFan takes a few hundred reclaim calls to
 * settle (direct reclaim runs ~3x slower over its first 100 calls, aging over its first 400);
 * the counts below cover that, cheaply, in both modes.
 */
const WARMUP = { direct: 8, faults: 3, kswapd: 16, aging: 32 };

/** One timed sample: wall time and the pages it handled. */
interface Sample {
  ns: number;
  pages: number;
}

/** The q-quantile (0..1) of sorted `xs`, nearest rank. */
function quantile(xs: number[], q: number): number {
  return xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))];
}

/**
 * A row for samples of pages (or faults: `what`) handled: value is millions per second at the
 * median sample's ns per item, detail the spread of ns per item over the samples.
 */
function pagesRow(name: string, metric: string, samples: Sample[], extra = '', what = 'page'): Row {
  const per = perItem(samples);
  const med = quantile(per, 0.5);
  return {
    case: name,
    metric,
    value: 1e9 / med / 1e6,
    unit: `M ${what}s/s`,
    detail:
      `${med.toFixed(1)} ns/${what} (min ${per[0].toFixed(1)}, p99 ${quantile(per, 0.99).toFixed(1)}; ` +
      `${samples.length} samples)${extra}`,
  };
}

/** ns per item of each sample, sorted. */
function perItem(samples: Sample[]): number[] {
  return samples.map((x) => x.ns / x.pages).sort((a, b) => a - b);
}

function boot(memory: string): { m: Machine; p: Process; node: PglistData } {
  const m = Machine.boot({ memory, cpus: 2, early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 } });
  return { m, p: m.spawn(), node: m.mm.nodes[0] };
}

/** Append `mib` MiB to `fd` in 256 MiB writes, each written back (clean page cache). */
function writeClean(p: Process, fd: number, mib: number): void {
  for (let done = 0; done < mib; done += 256) {
    p.write(fd, Math.min(256, mib - done) * MiB);
    p.fsync(fd);
  }
}

/** The AllocContext prepare_alloc_pages() builds for `gfp` on node 0, CPU 0. */
function allocContext(m: Machine, gfp: number): AllocContext {
  const ac = new AllocContext();
  ac.highest_zoneidx = gfp_zone(gfp);
  ac.zonelist = m.mm.nodes[0].zonelist_fallback;
  ac.migratetype = gfp_migratetype(gfp);
  ac.cpu = 0;
  for (let i = 0; i < ac.zonelist.length; i++) {
    const zone = m.mm.zones[ac.zonelist[i]];
    if (zone.zone_idx <= ac.highest_zoneidx) {
      ac.preferred_index = i;
      ac.preferred_zone = zone;
      break;
    }
  }
  return ac;
}

function checkInvariants(m: Machine, s: Sizes, what: string): void {
  if (!s.check) return;
  const v = m.invariantViolations();
  if (v.length) throw new Error(`${what}: invariants broken after the run:\n  ${v.join('\n  ')}`);
}

/** Calls of try_to_free_pages per direct-reclaim sample. */
const CALLS_PER_SAMPLE = 32;

/**
 * Time batches of direct-reclaim calls over the node's page cache. Returns the samples and the
 * pages stolen per page scanned.
 */
function drainDirect(m: Machine, s: Sizes): { samples: Sample[]; steal: number; perCall: number } {
  const ev = m.mm.vm_events;
  const ac = allocContext(m, GFP_HIGHUSER_MOVABLE);
  const hooks = m.mm.hooks;
  const samples: Sample[] = [];
  let scanned = 0;
  let stolen = 0;
  for (let i = 0; i < WARMUP.direct + s.samples; i++) {
    const scan0 = ev[PGSCAN_DIRECT];
    const steal0 = ev[PGSTEAL_DIRECT];
    const t0 = performance.now();
    for (let c = 0; c < CALLS_PER_SAMPLE; c++) hooks.try_to_free_pages(0, GFP_HIGHUSER_MOVABLE, ac);
    const ns = (performance.now() - t0) * 1e6;
    const pages = ev[PGSCAN_DIRECT] - scan0;
    if (pages === 0) throw new Error('direct reclaim scanned nothing: the page cache ran out');
    if (i < WARMUP.direct) continue;
    samples.push({ ns, pages });
    scanned += pages;
    stolen += ev[PGSTEAL_DIRECT] - steal0;
  }
  return { samples, steal: stolen / scanned, perCall: scanned / (s.samples * CALLS_PER_SAMPLE) };
}

/** Direct reclaim of clean, unmapped page cache. */
function directClean(s: Sizes): Row {
  const { m, p, node } = boot(s.memory);
  const fd = p.open('/data/cache', O_CREAT | O_RDWR);
  writeClean(p, fd, s.cacheMiB);
  // Anonymous memory for the rest, until allocations have had to reclaim: memory is full.
  const rest = Math.floor((freePages(m) * PAGE) / MiB) + 64;
  const a = p.mmap(0, rest * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.touch(a, rest * MiB, { write: true });
  if (m.mm.vm_events[PGSTEAL_DIRECT] === 0) throw new Error('the anonymous faults never reclaimed');
  const inactive = node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE];
  const { samples, steal, perCall } = drainDirect(m, s);
  checkInvariants(m, s, 'direct reclaim');
  return pagesRow(
    `direct reclaim, clean unmapped page cache (${s.cacheMiB / 1024} GiB file, memory full)`,
    'pages scanned/s',
    samples,
    `; try_to_free_pages x${CALLS_PER_SAMPLE} per sample, ${perCall.toFixed(0)} scanned/call ` +
      `of ${inactive} inactive file pages, ${(steal * 100).toFixed(0)}% stolen`,
  );
}

/** Anonymous faults per sample of the fault row. */
function faultRegion(s: Sizes): number {
  return (s.memory === '2G' ? 32 : 64) * MiB;
}

/**
 * Anonymous write faults on a machine whose memory is full of clean page cache, so the fault
 * path's allocations enter direct reclaim (kswapd is queued but, with the clock stopped, never
 * runs): the end-to-end cost reclaim adds to a fault, against the same faults with memory free.
 */
function faultUnderPressure(s: Sizes): Row {
  const { m, p } = boot(s.memory);
  const region = faultRegion(s);
  const faults = region / PAGE;
  const ev = m.mm.vm_events;
  const RW = PROT_READ | PROT_WRITE;
  const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
  const touch = (): number => {
    const a = p.mmap(0, region, RW, ANON);
    const t0 = performance.now();
    p.touch(a, region, { write: true });
    const ns = (performance.now() - t0) * 1e6;
    p.munmap(a, region);
    return ns;
  };
  const free: Sample[] = [];
  for (let i = 0; i < WARMUP.faults + s.samples; i++) {
    const ns = touch();
    if (i >= WARMUP.faults) free.push({ ns, pages: faults });
  }
  if (ev[PGSCAN_DIRECT] !== 0) throw new Error('faults with memory free reclaimed');
  // Clean page cache over all but 64 MiB, then anonymous memory until allocations reclaim.
  const fd = p.open('/data/cache', O_CREAT | O_RDWR);
  writeClean(p, fd, Math.floor((freePages(m) * PAGE) / MiB) - 64);
  const ballast = p.mmap(0, 128 * MiB, RW, ANON);
  p.touch(ballast, 128 * MiB, { write: true });
  if (ev[PGSTEAL_DIRECT] === 0) throw new Error('the anonymous faults never reclaimed');
  const full: Sample[] = [];
  let scanned = 0;
  let stalls = 0;
  const ALLOCSTALL = vm_event_index('allocstall_normal');
  const ALLOCSTALL_MOVABLE = vm_event_index('allocstall_movable');
  for (let i = 0; i < WARMUP.faults + s.samples; i++) {
    const scan0 = ev[PGSCAN_DIRECT];
    const stall0 = ev[ALLOCSTALL] + ev[ALLOCSTALL_MOVABLE];
    const ns = touch();
    if (i >= WARMUP.faults) {
      full.push({ ns, pages: faults });
      scanned += ev[PGSCAN_DIRECT] - scan0;
      stalls += ev[ALLOCSTALL] + ev[ALLOCSTALL_MOVABLE] - stall0;
    }
    // Memory full again: the unmapped region's pages become page cache.
    writeClean(p, fd, region / MiB);
  }
  checkInvariants(m, s, 'faults under pressure');
  const freeNs = quantile(perItem(free), 0.5);
  const fullNs = quantile(perItem(full), 0.5);
  const perFault = scanned / (s.samples * faults);
  return pagesRow(
    'anonymous write fault, memory full of clean page cache (direct reclaim in the fault path)',
    'faults/s',
    full,
    `; ${freeNs.toFixed(1)} ns/fault with memory free; per 1000 faults ${(perFault * 1000).toFixed(0)} ` +
      `pages scanned, ${((stalls / (s.samples * faults)) * 1000).toFixed(1)} allocstalls; ` +
      `(difference) / scanned = ${((fullNs - freeNs) / perFault).toFixed(0)} ns per scanned page`,
    'fault',
  );
}

function freePages(m: Machine): number {
  let free = 0;
  for (const zone of m.mm.nodes[0].node_zones) free += zone.vm_stat[0];
  return free;
}

/** Direct reclaim of page cache mapped by a MAP_SHARED mapping (rmap walk + unmap per page). */
function directMapped(s: Sizes): Row {
  const { m, p, node } = boot(s.memory);
  const mib = (s.cacheMiB * 3) / 4;
  const fd = p.open('/data/mapped', O_CREAT | O_RDWR);
  writeClean(p, fd, mib);
  const a = p.mmap(0, mib * MiB, PROT_READ, MAP_SHARED, fd, 0);
  p.touch(a, mib * MiB);
  const mapped = node.vm_stat[NR_FILE_MAPPED];
  if (mapped !== (mib * MiB) / PAGE)
    throw new Error(`expected ${(mib * MiB) / PAGE} mapped pages, have ${mapped}`);
  // Every PTE is young, so the first call rotates the whole inactive list once (FOLIOREF_KEEP:
  // PG_referenced set, accessed bit cleared) before the second trip frees pages.
  const ev = m.mm.vm_events;
  const scan0 = ev[PGSCAN_DIRECT];
  const t0 = performance.now();
  m.mm.hooks.try_to_free_pages(0, GFP_HIGHUSER_MOVABLE, allocContext(m, GFP_HIGHUSER_MOVABLE));
  const firstNs = (performance.now() - t0) * 1e6;
  const firstScan = ev[PGSCAN_DIRECT] - scan0;
  const { samples, steal, perCall } = drainDirect(m, s);
  const unmapped = mapped - node.vm_stat[NR_FILE_MAPPED];
  checkInvariants(m, s, 'mapped reclaim');
  return pagesRow(
    `direct reclaim, mapped page cache (${mib / 1024} GiB MAP_SHARED, second trip)`,
    'pages scanned/s',
    samples,
    `; ${perCall.toFixed(0)} scanned/call, ${(steal * 100).toFixed(0)}% stolen, ${unmapped} unmapped; ` +
      `first call (all PTEs young) scanned ${firstScan} at ${(firstNs / firstScan).toFixed(1)} ns/page`,
  );
}

/** kswapd woken below the low watermark, timed until the node is balanced. */
function kswapdRun(s: Sizes): Row {
  const { m, p } = boot(s.memory);
  const k = m.mm.kswapd[0];
  const fd = p.open('/data/stream', O_CREAT | O_RDWR);
  // Most of memory in one go, then 1 MiB at a time until an allocation finds every zone below
  // its low watermark and wakes kswapd; written back before kswapd runs, so all of it is clean.
  writeClean(p, fd, Math.floor((freePages(m) * PAGE) / MiB) - 128);
  // Instantly: with time passing, kswapd would run as soon as the write that woke it returned.
  const wake = (): void =>
    m.instantly(() => {
      let n = 0;
      while (!k.queued) {
        p.write(fd, MiB);
        if (++n > 4096) throw new Error('writing never woke kswapd');
      }
      p.fsync(fd);
    });
  const ev = m.mm.vm_events;
  const samples: Sample[] = [];
  let runs = 0;
  let scanned = 0;
  for (let i = 0; i < WARMUP.kswapd + s.samples; i++) {
    wake();
    const steal0 = ev[PGSTEAL_KSWAPD];
    const scan0 = ev[PGSCAN_KSWAPD];
    const runs0 = ev[PAGEOUTRUN];
    const t0 = performance.now();
    m.advance(0);
    const ns = (performance.now() - t0) * 1e6;
    if (k.queued) throw new Error('kswapd still queued after advance(0)');
    const pages = ev[PGSTEAL_KSWAPD] - steal0;
    if (pages === 0) throw new Error('kswapd reclaimed nothing');
    if (i < WARMUP.kswapd) continue;
    samples.push({ ns, pages });
    runs += ev[PAGEOUTRUN] - runs0;
    scanned += ev[PGSCAN_KSWAPD] - scan0;
  }
  const stolen = samples.reduce((t, x) => t + x.pages, 0);
  checkInvariants(m, s, 'kswapd');
  return pagesRow(
    `kswapd, clean page cache, woken at the low watermark until balanced (${s.memory.replace('G', ' GiB')})`,
    'pages stolen/s',
    samples,
    `; ${(stolen / s.samples).toFixed(0)} stolen per wake-up (${(runs / s.samples).toFixed(1)} ` +
      `balance_pgdat runs), ${((stolen / scanned) * 100).toFixed(0)}% of scanned`,
  );
}

/** shrink_node() calls per aging sample. */
const AGING_CALLS = 24;

/** shrink_active_list over a large active file list. */
function aging(s: Sizes, mappedToo: boolean): Row {
  const { m, p, node } = boot(s.memory);
  const mib = (s.cacheMiB * 3) / 4;
  const pages = (mib * MiB) / PAGE;
  const fd = p.open('/data/hot', O_CREAT | O_RDWR);
  writeClean(p, fd, mib);
  if (mappedToo) {
    const a = p.mmap(0, mib * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(a, mib * MiB);
  }
  // Read twice: the second read of each page activates it.
  p.pread(fd, mib * MiB, 0);
  p.pread(fd, mib * MiB, 0);
  const active = node.vm_stat[NR_LRU_BASE + LRU_ACTIVE_FILE];
  if (active !== pages) throw new Error(`expected ${pages} active file pages, have ${active}`);
  const ev = m.mm.vm_events;
  const samples: Sample[] = [];
  // The active list's tail is the lowest file offsets (activated first): deactivation walks the
  // file in order, and re-reading the deactivated range puts it back at the head.
  let cursor = 0;
  let inactiveScanned = 0;
  for (let i = 0; i < WARMUP.aging + s.samples; i++) {
    const refill0 = ev[PGREFILL];
    const deact0 = ev[PGDEACTIVATE];
    const scan0 = ev[PGSCAN_DIRECT];
    const t0 = performance.now();
    for (let c = 0; c < AGING_CALLS; c++) {
      const sc = new ScanControl();
      sc.gfp_mask = GFP_HIGHUSER_MOVABLE;
      sc.reclaim_idx = ZONE_NORMAL;
      sc.priority = DEF_PRIORITY;
      sc.force_deactivate = true;
      shrink_node(m.mm, node, sc);
    }
    const ns = (performance.now() - t0) * 1e6;
    const refilled = ev[PGREFILL] - refill0;
    const deactivated = ev[PGDEACTIVATE] - deact0;
    if (refilled === 0) throw new Error('shrink_node aged nothing');
    if (i >= WARMUP.aging) {
      samples.push({ ns, pages: refilled });
      inactiveScanned += ev[PGSCAN_DIRECT] - scan0;
    }
    // Re-activate what was deactivated.
    let left = deactivated;
    while (left > 0) {
      const n = Math.min(left, pages - cursor);
      p.pread(fd, n * PAGE, cursor * PAGE);
      p.pread(fd, n * PAGE, cursor * PAGE);
      cursor = (cursor + n) % pages;
      left -= n;
    }
    const inactive = node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE];
    if (inactive !== 0) throw new Error(`re-activation left ${inactive} inactive file pages`);
  }
  const refilled = samples.reduce((t, x) => t + x.pages, 0);
  checkInvariants(m, s, 'aging');
  return pagesRow(
    `aging, shrink_active_list over ${mib / 1024} GiB of active ${mappedToo ? 'mapped ' : ''}page cache`,
    'pages aged/s (pgrefill)',
    samples,
    `; shrink_node x${AGING_CALLS} per sample at DEF_PRIORITY, ${(refilled / s.samples / AGING_CALLS).toFixed(0)} ` +
      `aged/call, ${inactiveScanned} inactive pages scanned in all`,
  );
}

export default defineBenchmark({
  title: 'page reclaim throughput (one node, no swap, clean page cache)',
  async run(ctx) {
    const s = sizes(ctx);
    const rows: Row[] = [];
    note('direct reclaim, unmapped');
    rows.push(directClean(s));
    note('anonymous faults under pressure');
    rows.push(faultUnderPressure(s));
    note('direct reclaim, mapped');
    rows.push(directMapped(s));
    note('kswapd');
    rows.push(kswapdRun(s));
    note('aging');
    rows.push(aging(s, false));
    note('aging, mapped');
    rows.push(aging(s, true));
    return rows;
  },
});
