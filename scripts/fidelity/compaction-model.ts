/**
 * compaction-model.ts — the model's side of docs/fidelity.md: the experiment that
 * scripts/fidelity/compaction-real.sh runs on the real kernel, run on a simulated 24 GiB machine.
 *
 * For each fragmentation pattern K (keep 1 page of every K), on a freshly booted machine (same
 * seed every time, so the output is byte-identical from run to run):
 *   1. settle: write 1 to /proc/sys/vm/compact_memory and let 30 s pass (as the real script does);
 *   2. a process maps 2 GiB of private anonymous memory (MADV_NOHUGEPAGE), touches every page
 *      (one write fault per 4 KiB page), then drops all but 1 page of every K with MADV_DONTNEED;
 *   3. "before": /proc/buddyinfo, /proc/vmstat and /proc/zoneinfo (Normal's pcp counts), and
 *      where the kept pages are (/proc/<pid>/pagemap read as root, as bench/c/fragment.c does);
 *   4. write 1 to /proc/sys/vm/compact_memory; "after0" at once, "after30" 30 simulated seconds
 *      later (the vmstat worker's decay_pcp_high drains the per-cpu lists meanwhile).
 * Everything is read through the machine's files, exactly as the real script reads the real ones.
 *
 * Usage: npx tsx scripts/fidelity/compaction-model.ts [--memory 24G] [--cpu 0] [--age 0] [--mib 2048]
 *          [--patterns 1,2,64,512] [--seed 1] [--no-settle] [--real docs/fidelity-data/compaction/real]
 * --memory 10G boots a machine whose zone Normal is what the real 24 GiB machine's lazily
 * initialised Normal had grown to during the experiment ([0x100000, 0x2c0000), 7 GiB; see
 * docs/fidelity.md): same zone span for the scanners, nearly the same watermarks and pcp high_max.
 * With --real (several directories may be given, comma-separated), the real kernel's captures (summary.tsv, fragment.jsonl, trace.txt of each run,
 * written by compaction-real.sh) are summarised next to the model's numbers: per pattern, the
 * median over the real runs, and the range.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  PROT_READ,
  PROT_WRITE,
} from '../../src/index.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { Process } from '../../src/vm/process.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const NORMAL_START_PFN = 0x100000;
const COUNTERS = [
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'pgmigrate_success',
  'pgmigrate_fail',
  'compact_daemon_wake',
  'thp_fault_alloc',
] as const;

/** One reading of the files we compare (zone Normal unless named otherwise). */
export interface Snapshot {
  /** Free blocks per order in Normal (/proc/buddyinfo). */
  orders: number[];
  managed: number;
  /** Normal's nr_free_pages: buddy lists only; pcp pages are not counted. */
  nrFree: number;
  /** Pages on Normal's per-cpu lists, all CPUs (/proc/zoneinfo count:). */
  pcp: number;
  counters: Record<(typeof COUNTERS)[number], number>;
}

/** Where the kept pages are (bench/c/fragment.c prints the same fields). */
export interface Placement {
  present: number;
  moved: number;
  normal: number;
  pageblocks: number;
  wholePageblocks: number;
  minPfn: number;
  maxPfn: number;
}

/** One pattern's result: the readings at each stage. */
export interface Run {
  k: number;
  start: Snapshot;
  touched: Placement;
  ready: Placement;
  before: Snapshot;
  after0: Snapshot;
  map0: Placement;
  after30: Snapshot;
  map30: Placement;
  /** Simulated nanoseconds the compact_memory write took. */
  compactNs: number;
  /** Real kernel only: the Normal pass of the compaction (trace), scanner end pfns. */
  meet?: { migrate: number; free: number; zoneEnd: number; status: string };
}

// ---------------------------------------------------------------------------------------------
// Parsing /proc files (the same code reads the model's files and the real captures).

export function parseBuddyinfoNormal(text: string): number[] {
  const line = text.split('\n').find((l) => /zone +Normal/.test(l));
  if (!line) throw new Error('no zone Normal in buddyinfo');
  return line.trim().split(/\s+/).slice(4).map(Number);
}

export function parseVmstat(text: string): Snapshot['counters'] {
  const out = {} as Snapshot['counters'];
  for (const name of COUNTERS) {
    const hit = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    out[name] = hit ? Number(hit[1]) : 0;
  }
  return out;
}

/** managed, nr_free_pages and the pcp count of zone Normal, from /proc/zoneinfo. */
export function parseZoneinfoNormal(text: string): { managed: number; nrFree: number; pcp: number } {
  let zone = '';
  let managed = 0;
  let nrFree = 0;
  let pcp = 0;
  for (const line of text.split('\n')) {
    const z = line.match(/^Node \d+, zone +(\S+)/);
    if (z) {
      zone = z[1];
      continue;
    }
    if (zone !== 'Normal') continue;
    const f = line.trim().split(/\s+/);
    if (f[0] === 'managed') managed = Number(f[1]);
    else if (f[0] === 'nr_free_pages') nrFree = Number(f[1]);
    else if (f[0] === 'count:') pcp += Number(f[1]);
  }
  return { managed, nrFree, pcp };
}

function snapshot(m: Machine): Snapshot {
  return {
    orders: parseBuddyinfoNormal(m.readFile('/proc/buddyinfo')),
    ...parseZoneinfoNormal(m.readFile('/proc/zoneinfo')),
    counters: parseVmstat(m.readFile('/proc/vmstat')),
  };
}

// ---------------------------------------------------------------------------------------------
// The model's experiment.

/** PFNs of pages [0, n) of the mapping at `base`, from /proc/<pid>/pagemap (-1: not present). */
function pagemap(m: Machine, p: Process, base: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const chunk = 1 << 16;
  for (let i = 0; i < n; i += chunk) {
    const len = Math.min(chunk, n - i);
    const bytes = m.readFileBytes(`/proc/${p.pid}/pagemap`, {
      offset: (base / PAGE + i) * 8,
      length: len * 8,
    });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let j = 0; j < len; j++) {
      const e = view.getBigUint64(j * 8, true);
      out[i + j] = e >> 63n ? Number(e & (2n ** 55n - 1n)) : -1;
    }
  }
  return out;
}

/** The placement of pages 0, k, 2k, … (bench/c/fragment.c's report()). */
function placement(pfns: Float64Array, k: number, first: Float64Array | null): Placement {
  const kept: number[] = [];
  let moved = 0;
  let normal = 0;
  for (let i = 0, j = 0; i < pfns.length; i += k, j++) {
    const pfn = pfns[i];
    if (pfn < 0) continue;
    if (first && first[j] !== pfn) moved++;
    if (pfn >= NORMAL_START_PFN) normal++;
    kept.push(pfn);
  }
  kept.sort((a, b) => a - b);
  let pageblocks = 0;
  let whole = 0;
  let run = 0;
  for (let i = 0; i < kept.length; i++) {
    if (i === 0 || kept[i] >>> 9 !== kept[i - 1] >>> 9) pageblocks++;
    run = i > 0 && kept[i] === kept[i - 1] + 1 && kept[i] & 511 ? run + 1 : 1;
    if (k === 1 && (kept[i] & 511) === 511 && run === 512) whole++;
  }
  return {
    present: kept.length,
    moved,
    normal,
    pageblocks,
    wholePageblocks: whole,
    minPfn: kept.length ? kept[0] : 0,
    maxPfn: kept.length ? kept[kept.length - 1] : 0,
  };
}

function keptPfns(pfns: Float64Array, k: number): Float64Array {
  const out = new Float64Array(Math.ceil(pfns.length / k));
  for (let i = 0, j = 0; i < pfns.length; i += k, j++) out[j] = pfns[i];
  return out;
}

/** What a model run is booted and run with. */
export interface ModelOptions {
  /** Installed RAM: '24G' is the real machine; '10G' has the Normal zone its lazy init grew to. */
  memory: string;
  mib: number;
  seed: number;
  settle: boolean;
  /** The CPU the fragmenting process runs on (compact_memory runs on CPU 0). */
  cpu: number;
  /** MiB of aged background memory (see age()); 0 for a freshly booted machine. */
  ageMib: number;
}

/**
 * Age the machine the way hours of use aged the real one before the experiment: a background
 * process (standing for the page cache and other tasks' memory) touches `mib` MiB, then, in each
 * 4 MiB piece of it, either gives the whole piece back (probability 0.65) or gives back each of a
 * run of naturally aligned sub-pieces of random order 0..8 with probability 0.55. With 6144 MiB
 * on the 10G machine that leaves ~0.95 GiB used, spread over the whole Normal zone, with free
 * 2 MiB blocks between and ~1.1 GiB of free holes of order <= 8 among the used pages — what the
 * real machine showed at the start of each run (~230k used pages in Normal, ~1 GiB free in blocks
 * of order <= 8). A minute then passes so the per-cpu lists drain. The background process stays
 * alive; its pages are movable, as page cache is.
 */
function age(m: Machine, mib: number, seed: number, cpu: number): Process {
  const bg = m.spawn({ cpu });
  const len = mib * MiB;
  const n = len / PAGE;
  const base = bg.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  bg.madvise(base, len, MADV_NOHUGEPAGE);
  bg.touch(base, len, { write: true });
  const r = new Prng(seed * 7919 + 17);
  for (let unit = 0; unit < n; unit += 1024) {
    // Whole 4 MiB units go back as order-10 blocks; the others are riddled with holes.
    const end = Math.min(unit + 1024, n);
    if (r.next() < 0.65) {
      bg.madvise(base + unit * PAGE, (end - unit) * PAGE, MADV_DONTNEED);
      continue;
    }
    for (let i = unit; i < end; ) {
      // A random order in 0..8, lowered until i is aligned to it.
      let order = r.below(9);
      while (order > 0 && i % (1 << order)) order--;
      const nr = Math.min(1 << order, end - i);
      if (r.next() < 0.55) bg.madvise(base + i * PAGE, nr * PAGE, MADV_DONTNEED);
      i += nr;
    }
  }
  m.advance('60s');
  return bg;
}

export function runModel(k: number, o: ModelOptions): Run {
  const { mib, settle } = o;
  const m = Machine.boot({ memory: o.memory, cpus: 2, seed: o.seed });
  const bg = o.ageMib > 0 ? age(m, o.ageMib, o.seed, o.cpu) : null;
  if (settle) {
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    m.advance('30s');
  }
  const start = snapshot(m);
  const p = m.spawn({ cpu: o.cpu });
  const len = mib * MiB;
  const n = len / PAGE;
  const base = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(base, len, MADV_NOHUGEPAGE);
  p.touch(base, len, { write: true });
  const touched = placement(pagemap(m, p, base, n), 1, null);
  // Keep page i iff i % k == 0: drop the k - 1 pages after each kept one in one call.
  if (k > 1) {
    for (let i = 0; i < n; i += k) {
      const drop = Math.min(k - 1, n - i - 1);
      if (drop > 0) p.madvise(base + (i + 1) * PAGE, drop * PAGE, MADV_DONTNEED);
    }
  }
  const pfnsReady = pagemap(m, p, base, n);
  const ready = placement(pfnsReady, k, null);
  const first = keptPfns(pfnsReady, k);
  const before = snapshot(m);
  const t0 = m.now;
  m.writeFile('/proc/sys/vm/compact_memory', '1');
  const compactNs = m.now - t0;
  const after0 = snapshot(m);
  const map0 = placement(pagemap(m, p, base, n), k, first);
  m.advance('30s');
  const after30 = snapshot(m);
  const map30 = placement(pagemap(m, p, base, n), k, first);
  m.checkInvariants();
  p.exit();
  bg?.exit();
  return { k, start, touched, ready, before, after0, map0, after30, map30, compactNs };
}

// ---------------------------------------------------------------------------------------------
// The real kernel's captures (compaction-real.sh).

function readCapture(file: string): Snapshot {
  const text = readFileSync(file, 'utf8');
  const section = (name: string): string => {
    const m = text.split(/^# /m).find((s) => s.startsWith(name));
    return m ? m.slice(m.indexOf('\n') + 1) : '';
  };
  const zi = section('zoneinfo')
    .split('\n')
    .filter((l) => l.startsWith('Normal '))
    .map((l) => l.replace(/^Normal /, ''));
  let managed = 0;
  let nrFree = 0;
  let pcp = 0;
  for (const l of zi) {
    const f = l.trim().split(/\s+/);
    if (f[0] === 'managed') managed = Number(f[1]);
    else if (f[0] === 'nr_free_pages') nrFree = Number(f[1]);
    else if (f[0] === 'pcp' && f[2] === 'count:') pcp += Number(f[3]);
  }
  return {
    orders: parseBuddyinfoNormal(section('buddyinfo')),
    managed,
    nrFree,
    pcp,
    counters: parseVmstat(section('vmstat')),
  };
}

function readPlacement(line: string): Placement {
  const j = JSON.parse(line) as Record<string, number>;
  return {
    present: j.present,
    moved: j.moved,
    normal: j.normal,
    pageblocks: j.pageblocks,
    wholePageblocks: j.whole_pageblocks,
    minPfn: j.min_pfn,
    maxPfn: j.max_pfn,
  };
}

/** Every run compaction-real.sh recorded under `dir`, by pattern. */
export function readReal(dir: string): Map<number, Run[]> {
  const out = new Map<number, Run[]>();
  const rows = readFileSync(join(dir, 'summary.tsv'), 'utf8').trim().split('\n').slice(1);
  const tms = new Map<string, number>();
  const keys: Array<[number, number]> = [];
  for (const r of rows) {
    const f = r.split('\t');
    if (f[2] === 'after0') tms.set(`${f[0]}-${f[1]}`, Number(f[3]));
    if (f[2] === 'start') keys.push([Number(f[0]), Number(f[1])]);
  }
  for (const [k, run] of keys) {
    const d = join(dir, `K${k}-r${run}`);
    if (!existsSync(join(d, 'after30.txt'))) continue;
    const lines = readFileSync(join(d, 'fragment.jsonl'), 'utf8').trim().split('\n');
    const trace = existsSync(join(d, 'trace.txt')) ? readFileSync(join(d, 'trace.txt'), 'utf8') : '';
    const end = trace
      .split('\n')
      .find(
        (l) => l.includes('mm_compaction_end') && l.includes(`zone_start=0x${NORMAL_START_PFN.toString(16)}`),
      );
    const hex = (name: string): number =>
      Number.parseInt(end?.match(new RegExp(`${name}=0x([0-9a-f]+)`))?.[1] ?? '0', 16);
    const r: Run = {
      k,
      start: readCapture(join(d, 'start.txt')),
      touched: readPlacement(lines[0]),
      ready: readPlacement(lines[1]),
      before: readCapture(join(d, 'before.txt')),
      after0: readCapture(join(d, 'after0.txt')),
      map0: readPlacement(lines[2]),
      after30: readCapture(join(d, 'after30.txt')),
      map30: readPlacement(lines[3]),
      compactNs: (tms.get(`${k}-${run}`) ?? 0) * 1e6,
      meet: end
        ? {
            migrate: hex('migrate_pfn'),
            free: hex('free_pfn'),
            zoneEnd: hex('zone_end'),
            status: end.match(/status=(\w+)/)?.[1] ?? '?',
          }
        : undefined,
    };
    const list = out.get(k) ?? [];
    list.push(r);
    out.set(k, list);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tables.

/** Free memory of order >= 9 in 2 MiB units. */
function hugeBlocks(s: Snapshot): number {
  return s.orders[9] + 2 * s.orders[10];
}

function delta(a: Snapshot, b: Snapshot, name: (typeof COUNTERS)[number]): number {
  return b.counters[name] - a.counters[name];
}

/** The numbers the tables show for one run. */
function metrics(r: Run): Record<string, number> {
  return {
    'kept pages': r.ready.present,
    'pageblocks holding kept pages, before': r.ready.pageblocks,
    'pageblocks holding kept pages, after': r.map30.pageblocks,
    'kept pages moved': r.map30.moved,
    'Normal managed, before (pages)': r.before.managed,
    'Normal buddy free pages, before': r.before.nrFree,
    'Normal pcp pages, before': r.before.pcp,
    'Normal pcp pages, after0': r.after0.pcp,
    'Normal pcp pages, after30': r.after30.pcp,
    'order-9 blocks, before': r.before.orders[9],
    'order-10 blocks, before': r.before.orders[10],
    'order-9 blocks, after0': r.after0.orders[9],
    'order-10 blocks, after0': r.after0.orders[10],
    'order-9 blocks, after30': r.after30.orders[9],
    'order-10 blocks, after30': r.after30.orders[10],
    'free 2 MiB units gained, after0': hugeBlocks(r.after0) - hugeBlocks(r.before),
    'free 2 MiB units gained, after30': hugeBlocks(r.after30) - hugeBlocks(r.before),
    compact_migrate_scanned: delta(r.before, r.after0, 'compact_migrate_scanned'),
    compact_free_scanned: delta(r.before, r.after0, 'compact_free_scanned'),
    compact_isolated: delta(r.before, r.after0, 'compact_isolated'),
    pgmigrate_success: delta(r.before, r.after0, 'pgmigrate_success'),
    pgmigrate_fail: delta(r.before, r.after0, 'pgmigrate_fail'),
    'compact_memory time (ms)': r.compactNs / 1e6,
    'kcompactd wakes, before..after30': delta(r.before, r.after30, 'compact_daemon_wake'),
    // Other tasks' THP faults each take a free 2 MiB block (real machine only: the model runs
    // nothing else).
    'THP faults of other tasks, before..after30': delta(r.before, r.after30, 'thp_fault_alloc'),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  const sep = `|${w.map((n, i) => (i === 0 ? `${'-'.repeat(n + 2)}` : `${'-'.repeat(n + 1)}:`)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

function buddyRows(label: string, s: Snapshot): string[] {
  return [label, ...s.orders.map(String), String(s.pcp)];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      memory: { type: 'string', default: '24G' },
      cpu: { type: 'string', default: '0' },
      age: { type: 'string', default: '0' },
      mib: { type: 'string', default: '2048' },
      patterns: { type: 'string', default: '1,2,64,512' },
      seed: { type: 'string', default: '1' },
      'no-settle': { type: 'boolean', default: false },
      real: { type: 'string' },
    },
  });
  const mib = Number(values.mib);
  if (!Number.isInteger(mib) || mib <= 0 || mib > 4096) throw new Error('--mib: 1 .. 4096');
  const patterns = values.patterns.split(',').map(Number);
  const seed = Number(values.seed);
  // --real dir[,dir…]: every run recorded in any of the directories, by pattern.
  let real: Map<number, Run[]> | null = null;
  for (const dir of values.real ? values.real.split(',') : []) {
    real ??= new Map();
    for (const [k, runs] of readReal(dir)) real.set(k, [...(real.get(k) ?? []), ...runs]);
  }
  const opts: ModelOptions = {
    memory: values.memory,
    mib,
    seed,
    settle: !values['no-settle'],
    cpu: Number(values.cpu),
    ageMib: Number(values.age),
  };

  console.log(
    `# compact_memory: model (${opts.memory}, 2 CPUs, seed ${seed}, process on CPU ${opts.cpu}${opts.ageMib ? `, aged with ${opts.ageMib} MiB` : ''}${opts.settle ? '' : ', no settle'}) ${real ? 'vs real kernel ' : ''}— ${mib} MiB, keep 1 page of every K`,
  );
  for (const k of patterns) {
    const r = runModel(k, opts);
    const realRuns = real?.get(k) ?? [];
    console.log(`\n## K = ${k}${realRuns.length ? ` (real: ${realRuns.length} runs)` : ''}\n`);
    const orderHeader = ['zone Normal', ...Array.from({ length: 11 }, (_, o) => `o${o}`), 'pcp'];
    const rows: string[][] = [];
    for (const [stage, s] of [
      ['start', r.start],
      ['before', r.before],
      ['after0', r.after0],
      ['after30', r.after30],
    ] as const)
      rows.push(buddyRows(`model ${stage}`, s));
    for (const [i, rr] of realRuns.entries()) {
      for (const [stage, s] of [
        ['start', rr.start],
        ['before', rr.before],
        ['after0', rr.after0],
        ['after30', rr.after30],
      ] as const)
        rows.push(buddyRows(`real r${i + 1} ${stage}`, s));
    }
    console.log(table(orderHeader, rows));
    console.log();
    const mm = metrics(r);
    const rm = realRuns.map(metrics);
    const header = ['', 'model', ...(rm.length ? ['real median', 'real min..max'] : [])];
    const mrows = Object.keys(mm).map((key) => {
      const row = [key, fmt(mm[key])];
      if (rm.length) {
        const xs = rm.map((x) => x[key]);
        row.push(fmt(median(xs)), `${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}`);
      }
      return row;
    });
    console.log(table(header, mrows));
    const meets = realRuns.flatMap((x) => (x.meet ? [x.meet] : []));
    if (meets.length) {
      const pct = (pfn: number, end: number): string =>
        `${((100 * (pfn - NORMAL_START_PFN)) / (end - NORMAL_START_PFN)).toFixed(0)}%`;
      console.log(
        `\nreal: Normal's pass [0x${NORMAL_START_PFN.toString(16)}, 0x${meets[0].zoneEnd.toString(16)}) ended with ${meets
          .map(
            (x) =>
              `migrate 0x${x.migrate.toString(16)} (${pct(x.migrate, x.zoneEnd)}) free 0x${x.free.toString(16)} (${pct(x.free, x.zoneEnd)}) ${x.status}`,
          )
          .join('; ')}`,
      );
    }
    console.log(
      `model: kept pages' PFNs before [0x${r.ready.minPfn.toString(16)}, 0x${r.ready.maxPfn.toString(16)}], after [0x${r.map30.minPfn.toString(16)}, 0x${r.map30.maxPfn.toString(16)}]; whole pageblocks covered after touching: ${r.touched.wholePageblocks}; pages in DMA32: ${r.touched.present - r.touched.normal}`,
    );
    for (const [i, rr] of realRuns.entries()) {
      const x = metrics(rr);
      console.log(
        `real r${i + 1}: ${rr.meet?.status ?? '?'}, ${fmt(x['compact_memory time (ms)'])} ms, kept moved ${x['kept pages moved']}, pgmigrate_success ${x.pgmigrate_success}, 2 MiB units gained ${x['free 2 MiB units gained, after0']}/${x['free 2 MiB units gained, after30']}, THP faults ${x['THP faults of other tasks, before..after30']}; kept pages' PFNs before [0x${rr.ready.minPfn.toString(16)}, 0x${rr.ready.maxPfn.toString(16)}], after [0x${rr.map30.minPfn.toString(16)}, 0x${rr.map30.maxPfn.toString(16)}]; whole pageblocks covered after touching: ${rr.touched.wholePageblocks}; pages in DMA32: ${rr.touched.present - rr.touched.normal}`,
      );
    }
  }
}

main();
