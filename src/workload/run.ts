/**
 * The scenario runner (docs/scenarios.md, "How a scenario runs"): boot the machine, make the
 * sysfs writes, run the phases' workloads on the clock, fire the timed events and take the
 * samples at their times, and at the end (or `compare.at`) ask every contender for the same
 * buffer on exact clones of the machine as it is then.
 *
 * Everything in the result is simulated and seeded: the same scenario and seed give a
 * byte-identical RunResult (wall-clock time is the caller's to measure). Order at one instant:
 * events in file order, then the sample, then the comparison; all before a phase that ends at
 * that instant stops its workloads, so a request "after 24 h" meets the 24 h workload in place.
 */

import { buffer_layout } from '../contig/buffer_layout.ts';
import {
  collateralProbe,
  type ResolvedProbeOptions,
  readVmstat,
  resolveProbeOptions,
} from '../contig/collateral.ts';
import {
  type Comparison,
  cloneCopies,
  compareContenders,
  costMark,
  costSince,
  type RequestCost,
} from '../contig/compare.ts';
import type { MapContigPolicyName } from '../contig/map_contig.ts';
import { count_segments } from '../contig/segments.ts';
import { formatDuration } from '../lib/duration.ts';
import { ErrnoError } from '../lib/errno.ts';
import { formatSize } from '../lib/size.ts';
import { __fragmentation_index } from '../mm/compaction.ts';
import { type BlockCensus, blockCensus, fragmentationSummary, largestFreeRun } from '../mm/fragmentation.ts';
import { MIGRATE_TYPES, migratetype_names, NR_PAGE_ORDERS, pageblock_order } from '../mm/mmzone.ts';
import { Machine } from '../sim/machine.ts';
import type { Process } from '../vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_PRIVATE,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';
import { type PhaseResult, runWorkloads } from './models.ts';
import { type PlotFragmentationTrace, record } from './plot_fragmentation.ts';
import { capNumbers, type Scenario, type ScenarioEvent } from './scenario.ts';

export const RUN_FORMAT = 'mapcontig-run/1';

/** What one timed event did. */
export interface EventResult {
  at_ns: number;
  action: ScenarioEvent['action'];
  /** One line saying what was asked, e.g. "map_contig 1 GiB as uid 1000 (best effort)". */
  what: string;
  ok: boolean;
  /** The errno name when it failed (EACCES, ENOMEM, …). */
  errno: string | null;
  /** What came of it: "512 of 512 pages", "3 segments", the error's message. */
  detail: string;
  /** For map_contig: what it cost (compare.ts's RequestCost). */
  cost: RequestCost | null;
  /** For map_contig: the physical segments the buffer got (1 = contiguous). */
  segments: number | null;
}

/** Samples as columns: one entry per sample time in each series. */
export interface Samples {
  t_ns: number[];
  /** Free blocks per order, all zones (always sampled: the free-pages-by-order plot). */
  free_by_order: number[][];
  /** Pageblocks per migratetype, all zones (always sampled). */
  pageblocks_by_type: number[][];
  /** The kernel's unusable free space index at the pageblock order, all zones, 0..1 (always). */
  unusable_index: number[];
  /** The kernel's fragmentation index at the pageblock order, all zones (always; -1 = no failure). */
  fragmentation_index: number[];
  /** 2 MiB blocks by the worst they hold: [free, movable, pinned, kernel] (always sampled). */
  blocks_by_occupant: number[][];
  /** The other metrics of sample.metrics that are one number each. */
  metrics: Record<string, number[]>;
  /** /proc/vmstat counters named in sample.counters. */
  counters: Record<string, number[]>;
  /** Text of each file in sample.files, per sample. */
  files: Record<string, string[]>;
}

/** Everything a run produced, JSON-serialisable and deterministic. */
export interface RunResult {
  format: typeof RUN_FORMAT;
  scenario: { name: string; description: string; seed: number };
  machine: {
    memory_bytes: number;
    nodes: number;
    cpus: number;
    /** Per zone with pages: node, name, present pages. */
    zones: Array<{ node: number; zone: string; present_pages: number }>;
  };
  migratetypes: string[];
  /** Simulated ns the run covered, from the scenario's time 0 (after boot and sysfs writes). */
  end_ns: number;
  phases: PhaseResult[];
  events: EventResult[];
  samples: Samples;
  /** The `compare:` section's result, the simulated time it was made at, and the probe's settings. */
  comparison: (Comparison & { at_ns: number; probe: ResolvedProbeOptions }) | null;
  /** Extfrag and compaction events in mcgrof/plot-fragmentation's JSON schema. */
  fragmentation: PlotFragmentationTrace;
  /** /proc/buddyinfo and /proc/pagetypeinfo when the run ended (before workloads stopped). */
  final: Record<string, string>;
}

export interface RunOptions {
  /** Simulated ns per workload step (runWorkloads' slice). */
  slice?: number;
  /** Progress: simulated now and the end, after each slice. */
  onProgress?: (now_ns: number, end_ns: number) => void;
  /** Called last at the end of the run, before the workloads stop (to read the machine then). */
  atEnd?: (m: Machine) => void;
}

/**
 * `s` cut at `at_ns`: the phases up to then (the last one shortened), the events and comparison
 * up to then. What `mapcontig proc --at` and `compare --at` run.
 */
export function scenarioUntil(s: Scenario, at_ns: number): Scenario {
  const end = s.phases.reduce((t, p) => t + p.duration, 0);
  if (!(at_ns > 0 && at_ns <= end))
    throw new RangeError(`--at ${formatDuration(at_ns)} is not within the scenario's ${formatDuration(end)}`);
  const phases: Scenario['phases'] = [];
  let t = 0;
  for (const p of s.phases) {
    if (t >= at_ns) break;
    phases.push({ ...p, duration: Math.min(p.duration, at_ns - t) });
    t += p.duration;
  }
  const compare = s.compare && (s.compare.at ?? end) <= at_ns ? s.compare : undefined;
  return { ...s, phases, events: s.events.filter((e) => e.at <= at_ns), compare };
}

/** Metrics of sample.metrics sampled as one number each (the rest are always-on columns). */
const SCALAR_METRICS: Readonly<Record<string, (m: Machine, census: BlockCensus) => number>> = {
  largest_free_block: (m) => largestFreeRun(m.mm) * 4096,
  mixed_pageblocks: (_m, census) => census.mixed,
  hugepages_1g_possible: (_m, census) => census.gigantic,
};

/** Free blocks of every zone summed per order, and the kernel's indices over them. */
function freeState(m: Machine): { blocks: number[]; unusable: number; fragindex: number } {
  const blocks = new Array<number>(NR_PAGE_ORDERS).fill(0);
  for (const z of m.mm.zones) for (let o = 0; o < NR_PAGE_ORDERS; o++) blocks[o] += z.nr_free[o];
  let free_pages = 0;
  let total = 0;
  let suitable = 0;
  for (let o = 0; o < NR_PAGE_ORDERS; o++) {
    free_pages += blocks[o] << o;
    total += blocks[o];
    if (o >= pageblock_order) suitable += blocks[o] << (o - pageblock_order);
  }
  // kernel: mm/vmstat.c unusable_free_index(): (free - free in suitable blocks) / free
  const suitable_pages = suitable << pageblock_order;
  const unusable = free_pages ? (free_pages - suitable_pages) / free_pages : 0;
  const fragindex = __fragmentation_index(pageblock_order, {
    free_pages,
    free_blocks_total: total,
    free_blocks_suitable: suitable,
  });
  return { blocks, unusable, fragindex };
}

/** A timeline entry: something that happens at a simulated time. */
type Stop =
  | { t: number; kind: 'event'; event: ScenarioEvent }
  | { t: number; kind: 'sample' }
  | { t: number; kind: 'compare' }
  | { t: number; kind: 'end' };

/** The run's state outside the machine (the machine is cloned for the comparison). */
class ScenarioRun {
  readonly events: EventResult[] = [];
  readonly samples: Samples;
  comparison: RunResult['comparison'] = null;
  final: Record<string, string> = {};
  private readonly named = new Map<string, number>();
  private readonly timeline: Stop[] = [];
  private next = 0;
  /** Simulated time of the scenario's time 0 (the clock after boot and the sysfs writes). */
  private readonly t0: number;

  constructor(
    private readonly m: Machine,
    private readonly s: Scenario,
    end: number,
    private readonly atEnd?: (m: Machine) => void,
  ) {
    this.t0 = m.now;
    const sample = s.sample;
    this.samples = {
      t_ns: [],
      free_by_order: [],
      pageblocks_by_type: [],
      blocks_by_occupant: [],
      unusable_index: [],
      fragmentation_index: [],
      metrics: Object.fromEntries(
        (sample?.metrics ?? []).filter((k) => k in SCALAR_METRICS).map((k) => [k, [] as number[]]),
      ),
      counters: Object.fromEntries((sample?.counters ?? []).map((k) => [k, [] as number[]])),
      files: Object.fromEntries((sample?.files ?? []).map((k) => [k, [] as string[]])),
    };
    for (const event of s.events) this.timeline.push({ t: this.t0 + event.at, kind: 'event', event });
    // Samples at 0, every `every`, and at the end: a hundred by default.
    const every = sample?.every ?? Math.max(1e9, Math.round(end / 100 / 1e9) * 1e9);
    for (let t = 0; t < end; t += every) this.timeline.push({ t: this.t0 + t, kind: 'sample' });
    this.timeline.push({ t: this.t0 + end, kind: 'sample' });
    if (s.compare) this.timeline.push({ t: this.t0 + (s.compare.at ?? end), kind: 'compare' });
    // Stable: at one instant, events (file order), then the sample, then the comparison.
    this.timeline.push({ t: this.t0 + end, kind: 'end' });
    const rank = { event: 0, sample: 1, compare: 2, end: 3 };
    this.timeline.sort((a, b) => a.t - b.t || rank[a.kind] - rank[b.kind]);
  }

  next_ns(): number {
    return this.next < this.timeline.length ? this.timeline[this.next].t : Number.POSITIVE_INFINITY;
  }

  at(_now: number): void {
    const stop = this.timeline[this.next++];
    if (stop.kind === 'event') this.events.push(this.fire(stop.event));
    else if (stop.kind === 'sample') this.sample();
    else if (stop.kind === 'compare') this.compare();
    else {
      this.final = Object.fromEntries(
        ['/proc/buddyinfo', '/proc/pagetypeinfo'].map((path) => [path, readOrError(this.m, path)]),
      );
      this.atEnd?.(this.m);
    }
  }

  /** Everything left after the phases (events may not outlive them; samples at the end may). */
  finish(): void {
    while (this.next < this.timeline.length) {
      const t = this.next_ns();
      if (this.m.now < t) this.m.advance(t - this.m.now);
      this.at(this.m.now);
    }
  }

  private sample(): void {
    const m = this.m;
    const sm = this.samples;
    sm.t_ns.push(m.now - this.t0);
    const f = freeState(m);
    sm.free_by_order.push(f.blocks);
    sm.unusable_index.push(Math.round(f.unusable * 1000) / 1000);
    sm.fragmentation_index.push(f.fragindex / 1000);
    sm.pageblocks_by_type.push(fragmentationSummary(m.mm).pageblocks);
    const census = blockCensus(m.mm);
    sm.blocks_by_occupant.push([census.free, census.movable, census.pinned, census.kernel]);
    for (const [k, series] of Object.entries(sm.metrics)) series.push(SCALAR_METRICS[k](m, census));
    if (Object.keys(sm.counters).length) {
      const v = readVmstat(m);
      for (const [k, series] of Object.entries(sm.counters)) series.push(v.get(k) ?? 0);
    }
    for (const [path, texts] of Object.entries(sm.files)) texts.push(readOrError(m, path));
    if (m.now >= this.timeline[this.timeline.length - 1].t) this.finalFiles();
  }

  private finalFiles(): void {
    for (const path of ['/proc/buddyinfo', '/proc/pagetypeinfo'])
      this.final[path] = readOrError(this.m, path);
  }

  private compare(): void {
    const c = this.s.compare;
    if (!c) return;
    const m = this.m;
    const probe = collateralProbe();
    const comparison = compareContenders({
      copy: cloneCopies(m),
      request: {
        bytes: c.request.bytes,
        uid: c.request.uid,
        gid: c.request.gid ?? c.request.uid,
        devices: c.request.devices,
      },
      contenders: c.policies,
      probe,
    });
    this.comparison = {
      at_ns: m.now - this.t0,
      ...comparison,
      probe: resolveProbeOptions(m, probe.options),
    };
  }

  private fire(ev: ScenarioEvent): EventResult {
    const m = this.m;
    const r: EventResult = {
      at_ns: m.now - this.t0,
      action: ev.action,
      what: '',
      ok: true,
      errno: null,
      detail: '',
      cost: null,
      segments: null,
    };
    try {
      switch (ev.action) {
        case 'map_contig': {
          r.what = `map_contig ${formatSize(ev.bytes)} as uid ${ev.uid}${ev.best_effort ? ' (best effort)' : ''}${ev.policy ? ` under ${ev.policy}` : ''}`;
          this.mapContig(ev, r);
          break;
        }
        case 'write':
          r.what = `write '${ev.value}' to ${ev.path}`;
          m.writeFile(ev.path, ev.value);
          break;
        case 'compact_memory':
          r.what = 'echo 1 > /proc/sys/vm/compact_memory';
          m.writeFile('/proc/sys/vm/compact_memory', '1');
          break;
        case 'nr_hugepages': {
          const path = `/sys/kernel/mm/hugepages/hugepages-${ev.size / 1024}kB/nr_hugepages`;
          r.what = `echo ${ev.count} > ${path}`;
          m.writeFile(path, String(ev.count));
          const got = Number(m.readFile(path).trim());
          r.ok = got >= ev.count;
          r.detail = `${got} of ${ev.count} pages`;
          break;
        }
        case 'spawn': {
          r.what = `spawn ${ev.name} as uid ${ev.uid}`;
          const p = m.spawn({
            name: ev.name,
            uid: ev.uid,
            gid: ev.gid ?? ev.uid,
            caps: capNumbers(ev.caps),
            rlimits: { memlock: ev.memlock === 'unlimited' ? Number.POSITIVE_INFINITY : ev.memlock },
          });
          this.named.set(ev.name, p.pid);
          r.detail = `pid ${p.pid}`;
          break;
        }
        case 'exit': {
          r.what = `exit ${ev.name}`;
          const pid = this.named.get(ev.name);
          const p = pid === undefined ? undefined : m.process(pid);
          if (!p) throw new ErrnoError('ESRCH', 'exit', `${ev.name} is not running`);
          p.exit();
          this.named.delete(ev.name);
          break;
        }
        case 'open_device': {
          r.what = `open ${ev.path} as uid ${ev.uid}`;
          const p = m.spawn({ name: 'open', uid: ev.uid, gid: ev.gid ?? ev.uid });
          try {
            p.open(ev.path, O_RDWR);
            r.detail = 'opened';
          } finally {
            p.exit();
          }
          break;
        }
      }
    } catch (e) {
      r.ok = false;
      r.errno = e instanceof ErrnoError ? e.code : null;
      r.detail = (e as Error).message;
      if (!(e instanceof ErrnoError)) throw e;
    }
    return r;
  }

  /** mmap(MAP_CONTIG) by a new process of that user, which keeps the buffer to the end. */
  private mapContig(ev: Extract<ScenarioEvent, { action: 'map_contig' }>, r: EventResult): void {
    const m = this.m;
    const policy = m.vm.map_contig?.name ?? 'linux';
    if (ev.policy && ev.policy !== policy)
      m.instantly(() => m.writeFile('/proc/sys/vm/contig_policy', ev.policy as string));
    const p: Process = m.spawn({
      name: 'map_contig',
      uid: ev.uid,
      gid: ev.gid ?? ev.uid,
      rlimits: { memlock: Number.POSITIVE_INFINITY },
    });
    const before = costMark(m, p);
    try {
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG | (ev.best_effort ? MAP_CONTIG_BEST_EFFORT : 0);
      const addr = p.mmap(0, ev.bytes, PROT_READ | PROT_WRITE, flags);
      r.segments = count_segments(buffer_layout(m.vm, p.mm, addr, ev.bytes).pfns);
      r.detail = r.segments === 1 ? 'one contiguous buffer' : `${r.segments} physical segments`;
    } finally {
      r.cost = costSince(m, p, before);
      if (ev.policy && ev.policy !== policy)
        m.instantly(() => m.writeFile('/proc/sys/vm/contig_policy', policy as MapContigPolicyName));
    }
  }
}

function readOrError(m: Machine, path: string): string {
  try {
    return m.readFile(path);
  } catch (e) {
    return `error: ${(e as Error).message}\n`;
  }
}

/** Run `s`; see the module comment for the order of things. */
export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const m = Machine.boot(s.machine);
  for (const [path, value] of Object.entries(s.sysfs)) m.writeFile(path, value);
  const end = s.phases.reduce((t, p) => t + p.duration, 0);
  const run = new ScenarioRun(m, s, end, opts.atEnd);
  const t0 = m.now;
  let phases: PhaseResult[] = [];
  const fragmentation = record(m, () => {
    phases = runWorkloads(m, s.phases, {
      slice: opts.slice,
      stops: run,
      onSlice: opts.onProgress && ((now) => opts.onProgress?.(now, end)),
    });
    run.finish();
  });
  const zones = m.mm.zones
    .filter((z) => z.present_pages > 0)
    .map((z) => ({ node: z.nid, zone: z.name, present_pages: z.present_pages }));
  return {
    format: RUN_FORMAT,
    scenario: { name: s.name, description: s.description, seed: s.seed },
    machine: {
      memory_bytes: zones.reduce((n, z) => n + z.present_pages, 0) * 4096,
      nodes: m.mm.nodes.length,
      cpus: m.mm.nr_cpus,
      zones,
    },
    migratetypes: migratetype_names.slice(0, MIGRATE_TYPES),
    end_ns: m.now - t0,
    phases: phases.map((p) => ({ ...p, start_ns: p.start_ns - t0, end_ns: p.end_ns - t0 })),
    events: run.events,
    samples: run.samples,
    comparison: run.comparison,
    fragmentation,
    final: run.final,
  };
}
